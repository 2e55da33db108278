# stream.t: 64 concurrent streams over 8 adapters through 2 nginx workers
# give, token for token, what each request gives when it runs alone.
#
# Every (adapter, prompt) request first runs alone, greedy and not
# streamed; that text, finish reason and usage are the reference.  Then all
# 64 run at once with "stream": true and include_usage.  Each stream's
# chunked framing and SSE events are checked byte for byte (SloraTest),
# its deltas must concatenate to the reference text, and its usage must
# match.  The status endpoint, sampled during the run, must show more than
# one request running at once; the access log must show both workers and
# the module's variables.

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;
use Time::HiRes qw(time sleep);

my $PORT = 18101;
my $N_ADAPTERS = 8;
my @PROMPTS = (
    'Write a haiku about the sea.',
    'What is the capital of France?',
    'List three colours.',
    'Count from one to ten.',
    'Tell me a joke about cats.',
    'Explain what a LoRA adapter is, briefly.',
    "Translate \"good morning\" into Spanish.",
    'Name a prime number larger than 100.',
);

my $model = tiny_model();
my $s = SloraTest::Server->new(name => 'stream', port => $PORT);
my @adapters = make_adapters($s->prefix . '/adapters', $model,
                             [map { "ad$_" } 0 .. $N_ADAPTERS - 1]);

$s->{http} = slora_http(
    model => $model, adapters => $s->prefix . '/adapters',
    engine => 'threads=1 slots=128 max_running=64 max_ctx=512 '
              . 'max_tokens=128',
    listen => ' reuseport');
$s->start;
pass('nginx started, engine ready');

# The 64 requests: adapter i % 8, prompt i / 8; every fourth one is a text
# completion, the rest are chat; max_tokens varies from 12 to 40.
my @req;
for my $i (0 .. 63) {
    my $chat = $i % 4 != 3;
    my %b = (model => $adapters[$i % $N_ADAPTERS], temperature => 0,
             max_tokens => 12 + ($i * 7) % 29);
    if ($chat) {
        $b{messages} = [{ role => 'user', content => $PROMPTS[int($i / 8)] }];
    } else {
        $b{prompt} = $PROMPTS[int($i / 8)];
    }
    push @req, { i => $i, chat => $chat, body => \%b,
                 path => $chat ? '/v1/chat/completions' : '/v1/completions' };
}

# 1. Alone, not streamed.
my $alone_ok = 0;
for my $r (@req) {
    my $res = json_req($PORT, $r->{path}, $r->{body},
                       headers => { 'Content-Type' => 'application/json',
                                    'X-Test-Id' => "alone$r->{i}" });
    my $j = $res->{json};
    my @bad;
    push @bad, "status $res->{status}" unless $res->{status} == 200;
    push @bad, "framing: $res->{framing}" if $res->{framing};
    push @bad, 'not a JSON object' unless ref $j eq 'HASH';
    if (ref $j eq 'HASH') {
        my $obj = $r->{chat} ? 'chat.completion' : 'text_completion';
        push @bad, "object " . ($j->{object} // 'undef')
            unless ($j->{object} // '') eq $obj;
        push @bad, 'no id' unless defined $j->{id} && length $j->{id};
        push @bad, 'model ' . ($j->{model} // 'undef')
            unless ($j->{model} // '') eq $r->{body}{model};
        my $c = ref $j->{choices} eq 'ARRAY' && @{ $j->{choices} } == 1
                ? $j->{choices}[0] : undef;
        push @bad, 'not exactly one choice' unless $c;
        my $u = $j->{usage};
        push @bad, 'no usage' unless ref $u eq 'HASH';
        if ($c && ref $u eq 'HASH') {
            my $text = $r->{chat} ? $c->{message}{content} : $c->{text};
            push @bad, 'message role is not assistant'
                if $r->{chat} && ($c->{message}{role} // '') ne 'assistant';
            push @bad, 'no text' unless defined $text;
            my $f = $c->{finish_reason} // '';
            push @bad, "finish_reason '$f'" unless $f =~ /^(stop|length)$/;
            my ($p, $n, $t) = @{$u}{qw(prompt_tokens completion_tokens
                                       total_tokens)};
            push @bad, 'usage not integers'
                unless grep({ defined $_ && /^\d+$/ } $p, $n, $t) == 3;
            if (!@bad) {
                push @bad, 'prompt_tokens 0' unless $p > 0;
                push @bad, 'total != prompt + completion'
                    unless $t == $p + $n;
                push @bad, "completion_tokens $n > max_tokens"
                    if $n > $r->{body}{max_tokens};
                push @bad, "finish length but $n tokens"
                    if $f eq 'length' && $n != $r->{body}{max_tokens};
                push @bad, 'finish stop at max_tokens'
                    if $f eq 'stop' && $n >= $r->{body}{max_tokens};
            }
            $r->{alone} = { text => $text, finish => $f, prompt => $p,
                            completion => $n };
        }
    }
    $alone_ok++ unless @bad;
    diag("request $r->{i} alone: @bad: " . substr($res->{body}, 0, 300))
        if @bad;
}
is($alone_ok, 64, 'all 64 requests succeed alone (200, well-formed)');

# The adapters are applied: for each prompt, each of the 8 adapters gives
# a text of its own (so the batched run below would show a request given
# another's adapter), and no text is empty.
my (@distinct, $nonempty);
for my $p (0 .. $#PROMPTS) {
    my %t = map { ($_->{alone}{text} // '') => 1 }
            grep { int($_->{i} / 8) == $p && $_->{alone} } @req;
    push @distinct, scalar keys %t;
}
$nonempty = grep { length($_->{alone}{text} // '') } @req;
is_deeply(\@distinct, [(8) x @PROMPTS],
          'for every prompt the 8 adapters give 8 different texts')
    or diag("distinct texts by prompt: @distinct");
is($nonempty, 64, 'no text is empty');

# Repeating one request alone gives the same text (greedy is
# deterministic, so the comparison below means something).
{
    my $r = $req[5];
    my $res = json_req($PORT, $r->{path}, $r->{body});
    my $c = $res->{json} && $res->{json}{choices}
            ? $res->{json}{choices}[0] : {};
    is($c->{message}{content}, $r->{alone}{text},
       'a repeated greedy request gives the same text');
}

# Prompt tokens as `slora tokenize --chat` counts them (the chat template
# applied, as the server does).
{
    my @ids_bad;
    for my $r (grep { $_->{chat} } @req[0 .. 7]) {
        my ($rc, $out, $err) = SloraTest::run_cmd(
            slora_bin(), 'tokenize', '--model', $model, '--chat', '--text',
            $PROMPTS[int($r->{i} / 8)]);
        my @ids = $out =~ /(\d+)/g;
        push @ids_bad, "request $r->{i}: tokenize rc=$rc gives "
                       . scalar(@ids) . " ids, server says "
                       . ($r->{alone}{prompt} // 'undef') . " $err"
            unless $rc == 0 && @ids
                   && @ids == ($r->{alone}{prompt} // -1);
    }
    ok(!@ids_bad, 'prompt_tokens equals `slora tokenize --chat`')
        or diag(join("\n", @ids_bad));
}

# 2. All 64 at once, streamed.  A forked sampler polls the status
# endpoint during the run and reports the peaks.
my $peak_file = $s->prefix . '/peaks';
my $sampler = fork() // die "fork: $!";
if ($sampler == 0) {
    my ($run, $used, $n) = (0, 0, 0);
    my $stop = 0;
    local $SIG{TERM} = sub { $stop = 1 };
    while (!$stop) {
        my $st = $s->status;
        if ($st) {
            $n++;
            my $r = $st->{requests}{running} // 0;
            my $u = $st->{slots}{used} // 0;
            $run = $r if $r > $run;
            $used = $u if $u > $used;
        }
        open(my $fh, '>', "$peak_file.tmp") or POSIX::_exit(1);
        print $fh "$run $used $n\n";
        close $fh;
        rename("$peak_file.tmp", $peak_file);
        sleep(0.02);
    }
    POSIX::_exit(0);
}
wait_for(5, sub { -e $peak_file });

my @streams;
my $t0 = time();
for my $r (@req) {
    my %b = (%{ $r->{body} }, stream => JSON::PP::true(),
             stream_options => { include_usage => JSON::PP::true() });
    my $st = stream_start($PORT, 'POST', $r->{path},
                          body => json_encode(\%b),
                          headers => { 'Content-Type' => 'application/json',
                                       'X-Test-Id' => "stream$r->{i}" });
    $st->{req} = $r;
    push @streams, $st;
}
my $left = run_streams(\@streams, 60);
for my $st (@streams) {
    my ($first) = grep { ref $_->{json} eq 'HASH' && $_->{json}{id} }
                  @{ $st->{events} };
    $st->{req}{stream_id} = $first ? $first->{json}{id} : undef;
}
my $elapsed = time() - $t0;
kill('TERM', $sampler);
waitpid($sampler, 0);

is($left, 0, sprintf('all 64 streams ended (%.2f s)', $elapsed));

my ($ok_frame, $ok_text, $ok_usage, $ok_finish) = (0, 0, 0, 0);
for my $st (@streams) {
    my $r = $st->{req};
    my ($bad, $sum) = $st->sse_check($r->{chat} ? 'chat' : 'text',
                                     model => $r->{body}{model});
    if (@$bad) {
        my @b = @$bad > 5 ? @$bad[0 .. 4] : @$bad;
        diag("stream $r->{i}: " . join('; ', @b));
    } else {
        $ok_frame++;
    }
    my $a = $r->{alone} // {};
    if (defined $a->{text} && $sum->{text} eq $a->{text}) {
        $ok_text++;
    } else {
        diag("stream $r->{i} text differs:\n  alone:  "
             . json_encode([$a->{text}]) . "\n  stream: "
             . json_encode([$sum->{text}]));
    }
    if (@{ $sum->{finish} } == 1 && defined $a->{finish}
        && $sum->{finish}[0] eq $a->{finish})
    {
        $ok_finish++;
    } else {
        diag("stream $r->{i} finish @{ $sum->{finish} } vs "
             . ($a->{finish} // 'undef'));
    }
    my $u = $sum->{usage} // {};
    my $ce = $sum->{content_events} // 0;
    if (defined $u->{prompt_tokens} && defined $a->{prompt}
        && $u->{prompt_tokens} == $a->{prompt}
        && defined $u->{completion_tokens}
        && $u->{completion_tokens} == $a->{completion}
        && ($u->{total_tokens} // -1)
           == $u->{prompt_tokens} + $u->{completion_tokens}
        && $ce <= $u->{completion_tokens}
        && ($ce > 0 || $sum->{text} eq ''))
    {
        $ok_usage++;
    } else {
        diag("stream $r->{i} usage " . json_encode($u)
             . " ($ce content events) vs alone prompt="
             . ($a->{prompt} // 'undef') . ' completion='
             . ($a->{completion} // 'undef'));
    }
}
is($ok_frame, 64, 'chunked + SSE framing well-formed in all 64 streams');
is($ok_text, 64, 'every stream\'s deltas concatenate to its alone text');
is($ok_finish, 64, 'every stream has its alone finish_reason, once');
is($ok_usage, 64, 'every stream\'s usage matches (include_usage)');

# The run was concurrent.
my ($peak_run, $peak_used, $samples) = split ' ',
    (SloraTest::_slurp($peak_file) // '0 0 0');
cmp_ok($samples, '>', 0, "status sampled during the run ($samples times)");
cmp_ok($peak_run, '>', 1,
       "requests ran at once (peak running $peak_run, slots $peak_used)");

# The access log: both workers served streams; the module's variables.
my (%pids, $log_ok, $log_seen);
for my $l ($s->access_log_lines) {
    next unless $l =~ m{^(\d+)\ (\d+)\ "POST\ \S+\ [^"]*"\ id=stream(\d+)
                        \ a=(\S*)\ t=\S*\ p=(\S*)\ c=(\S*)\ ttft=(\S*)
                        \ f=(\S*)\ r=(\S*)$}x;
    my ($pid, $code, $i, $ad, $p, $c, $ttft, $f, $rid) = ($1, $2, $3, $4, $5,
                                                          $6, $7, $8, $9);
    my $a = $req[$i]{alone} // {};
    $log_seen++;
    $pids{$pid}++;
    if ($code == 200 && $ad eq $req[$i]{body}{model}
        && $p eq ($a->{prompt} // 'x') && $c eq ($a->{completion} // 'x')
        && $f eq ($a->{finish} // 'x') && $ttft =~ /^\d+$/
        && $rid eq ($req[$i]{stream_id} // 'x'))
    {
        $log_ok++;
    } else {
        diag("access log line for stream $i: $l");
    }
}
is($log_seen, 64, 'the access log has a line per stream');
is($log_ok // 0, 64,
   'log variables: adapter, token counts, finish, ttft, the stream\'s id');
is(scalar keys %pids, 2, 'both workers served streams ('
   . join(', ', map { "$_: $pids{$_}" } sort keys %pids) . ')');

# Idle again: no slot or KV page held.
my $idle = wait_for(5, sub {
    my $st = $s->status or return 0;
    return $st->{slots}{used} == 0 && $st->{requests}{running} == 0
           && $st->{requests}{waiting} == 0 ? $st : 0;
});
ok($idle, 'after the run: no slot used, nothing running or waiting');

# The step that ends the last request publishes the engine's counters
# before the worker learns of the end: /status read right after the
# answer shows it gone (not at the next idle wake-up, a second later).
# The total is the workers' count, taken in the log phase after the
# answer's last byte went out, so another worker may answer /status
# first: it has a moment to catch up.
my $one_more = 0;       # its completion tokens, for the count below
{
    my $before = $s->status // {};
    my $res = json_req($PORT, '/v1/completions',
                       { model => $adapters[0], prompt => $PROMPTS[0],
                         max_tokens => 4, temperature => 0 },
                       headers => { 'Content-Type' => 'application/json' });
    is($res->{status}, 200, 'one more completion');
    $one_more = $res->{json}{usage}{completion_tokens} // 0;
    my $st = $s->status // {};
    ok(defined $st->{requests}{running} && $st->{requests}{running} == 0,
       '/status read right after the answer: 0 running')
        or diag(json_encode($st->{requests}));
    my $want = ($before->{requests}{total} // -1) + 1;
    my $counted = wait_for(2, sub {
        my $now = $s->status or return 0;
        return ($now->{requests}{total} // -1) == $want ? $now : 0;
    });
    ok($counted, "... and one more in total ($want)")
        or diag(json_encode(($s->status // {})->{requests}));
}

# The token counters saw every completion token above: each request alone
# and streamed, the repeat of request 5 and the one more completion; and
# /metrics agrees with the status endpoint.
{
    my $sum = 0;
    $sum += 2 * ($_->{alone}{completion} // 0) for @req;
    $sum += ($req[5]{alone}{completion} // 0) + $one_more;
    my $st = $s->status // {};
    is($st->{tokens}{completion} // 0, $sum,
       "status counts the $sum completion tokens served");
    my $m = http_req($PORT, 'GET', '/metrics');
    is($m->{status}, 200, '/metrics answers');
    my @lines = grep { !/^#/ && /\S/ } split /\n/, $m->{body};
    my @odd = grep {
        !/^[a-zA-Z_:][a-zA-Z0-9_:]*
           (?:\{[a-zA-Z_]+="[^"]*"(?:,[a-zA-Z_]+="[^"]*")*\})?
           \ [-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\+Inf|NaN)$/x
    } @lines;
    ok(@lines && !@odd, 'metrics are in Prometheus text format')
        or diag(join("\n", @odd[0 .. ($#odd > 4 ? 4 : $#odd)]));
    my ($mc) = $m->{body}
               =~ /^slora_tokens_total\{kind="completion"\} (\d+)$/m;
    is($mc, $st->{tokens}{completion},
       'metrics and status count the same completion tokens');
}

my $stop = $s->stop;
ok($stop->{graceful}, 'nginx exits on QUIT');
ok($stop->{engine_gone}, 'the engine exits with nginx');
my @bad = $s->bad_log_lines(errors => 1);
ok(!@bad, 'no [error], [alert], [crit] or [emerg] in the error log')
    or diag(join("\n", @bad[0 .. ($#bad > 9 ? 9 : $#bad)]));

done_testing();
