# sched.t: the admission policies through a real nginx on SmolLM2.
#
# 1. The directives: schedule= and its parameters are checked by nginx -t,
#    which names the file and line of a wrong one.
# 2. schedule=slo with a tight SLO, a burst: every prompt first runs
#    alone (greedy), which also teaches the engine its step times; then
#    24 requests arrive at once, half of them streamed. Some are refused
#    before any compute with 429, a Retry-After in whole seconds and an
#    OpenAI error body naming the SLO (a stream too: the status comes
#    before any event); every other one succeeds with the text its prompt
#    gave alone; the first of the burst is never refused. The status and
#    the metrics show the step-time model the estimates stood on.
# 3. schedule=fair against fcfs: a flooding tenant keeps 10 streams open
#    on 2 running slots while a quiet tenant sends requests one after
#    another. For each quiet request we count the flood requests whose
#    first token came after it was sent and before its own: with fcfs it
#    queues behind the flood's backlog, with fair it takes a slot from the
#    flood by preemption a step after it came (the requests admitted
#    before that are the most that can come ahead of it). fair preempts,
#    fcfs does not (requests.preempted in the status). The quiet tenant's
#    time to first token, alone and under the flood, is printed
#    (bench/fairness.sh measures it at length).

use strict;
use warnings;

use IO::Select;
use lib 't/lib';
use SloraTest;
use Test::More;
use Time::HiRes qw(time sleep);

my $PORT = 18131;
my $FAIR_PORT = 18132;

my $model = real_model();

# --- 1. directives ----------------------------------------------------------

{
    my $s = SloraTest::Server->new(name => 'sched-conf', port => $PORT);
    my @cases = (
        [ 'schedule=edf',
          qr/schedule="edf" must be "fcfs", "lcfs", "slo" or "fair"/ ],
        [ 'schedule=slo slo_ttft=500', qr/slo_ttft="500" must be a time/ ],
        [ 'schedule=fcfs slo_ttft=2s', qr/slo_ttft= needs schedule=slo/ ],
        [ 'schedule=slo fair_weights=1:2',
          qr/fair_weights= needs schedule=fair/ ],
        [ 'schedule=fair fair_weights=1', qr/fair_weights="1" must be P:D/ ],
    );
    for my $c (@cases) {
        $s->{http} = slora_http(model => $model, engine => $c->[0]);
        my ($rc, $out) = $s->test_config;
        ok($rc != 0 && $out =~ $c->[1] && $out =~ /nginx\.conf:\d+/,
           "nginx -t refuses '$c->[0]' with file:line")
            or diag($out);
    }
    for my $e ('schedule=slo slo_ttft=1500ms', 'schedule=fair fair_weights=1:3',
               'schedule=lcfs')
    {
        $s->{http} = slora_http(model => $model, engine => $e);
        my ($rc, $out) = $s->test_config;
        is($rc, 0, "nginx -t accepts '$e'") or diag($out);
    }
}

# --- 2. SLO admission with early abort ------------------------------------

# about 80 tokens each with the chat template: a burst of 24 is some 40 s
# of prefill on one thread here, six times the SLO (6 s, the paper's).
# The prefix cache is off: the answers each prompt gives alone, asked
# first, would leave the burst's prompts cached, and the burst would have
# next to nothing to prefill (the SLO estimate leaves cached tokens out:
# t/unit/test_sched_policy.c)
my $CONTEXT = ' Keep the answer short and plain, for a reader who is twelve'
              . ' years old, with one example from everyday life, and do not'
              . ' use lists, headings or any technical words without saying'
              . ' what they mean.';
my @PROMPTS = map { $_ . $CONTEXT } (
    'Describe how a bicycle works and why it stays upright when moving.',
    'Explain in simple words what makes the sky look blue during the day.',
    'Write a short note to a neighbour asking to borrow a ladder tomorrow.',
    'List the main steps of making a cup of tea, from kettle to cup.',
);
my $BURST = 24;

my $s = SloraTest::Server->new(name => 'sched', port => $PORT);
$s->{http} = slora_http(
    model => $model,
    engine => 'threads=1 slots=64 max_running=32 max_batch_tokens=128 '
              . 'max_ctx=512 max_tokens=64 schedule=slo slo_ttft=1s '
              . 'prefix_cache=off');
$s->start;
pass('nginx started with schedule=slo slo_ttft=1s');

sub body_for {
    my ($i, $stream) = @_;
    return chat_body('base', $PROMPTS[$i], temperature => 0, max_tokens => 6,
                     ($stream ? (stream => JSON::PP::true) : ()));
}

my %H = ('Content-Type' => 'application/json');
my @ref;
for my $i (0 .. $#PROMPTS) {
    my $r = json_req($PORT, '/v1/chat/completions',
                     JSON::PP->new->decode(body_for($i, 0)), headers => \%H);
    my $t = ref $r->{json} eq 'HASH'
            ? $r->{json}{choices}[0]{message}{content} : undef;
    ok($r->{status} == 200 && defined $t && length $t,
       "prompt $i alone: 200 with text")
        or diag(substr($r->{body}, 0, 300));
    $ref[$i] = $t // '';
}

# the first of the burst reaches the engine before the rest are sent (two
# workers would otherwise race them there), so its estimate sees an empty
# queue
my $total0 = ($s->status // {})->{requests}{total} // 0;
my @burst;
for my $k (0 .. $BURST - 1) {
    my $i = $k % @PROMPTS;
    my $stream = $k % 2;
    push @burst, { k => $k, i => $i, stream => $stream,
                   st => stream_start($PORT, 'POST', '/v1/chat/completions',
                                      body => body_for($i, $stream),
                                      headers => \%H) };
    if ($k == 0) {
        ok(wait_for(10, sub {
               my $st = $s->status or return 0;
               return $st->{requests}{total} > $total0;
           }), 'the first of the burst reached the engine alone');
    }
}
my $left = run_streams([map { $_->{st} } @burst], 240);
is($left, 0, 'every burst request ended');

my ($n_ok, $n_429, $n_429_stream, @bad);
for my $b (@burst) {
    my $r = $b->{st}->result;
    my $what = "burst $b->{k} (" . ($b->{stream} ? 'stream' : 'json') . ')';

    if ($r->{status} == 429) {
        $n_429++;
        $n_429_stream++ if $b->{stream};
        my $j = $r->{json};
        my @e = check_error_object($j);
        push @e, 'Retry-After ' . ($r->{headers}{'retry-after'} // 'absent')
            unless ($r->{headers}{'retry-after'} // '') =~ /^[1-9]\d*$/;
        push @e, 'not JSON' unless ($r->{headers}{'content-type'} // '')
                                   =~ m{^application/json};
        if (!@e) {
            push @e, "type $j->{error}{type}"
                unless $j->{error}{type} eq 'rate_limit_error';
            push @e, "code " . ($j->{error}{code} // 'null')
                unless ($j->{error}{code} // '') eq 'slo_unattainable';
            push @e, "message '$j->{error}{message}'"
                unless $j->{error}{message}
                       =~ /time\ to\ first\ token\ estimated\ at\ [\d.]+\ s,
                           \ above\ its\ SLO\ of\ 1\.000\ s/x;
        }
        push @bad, "$what: 429: @e: $r->{body}" if @e;
        next;
    }

    if ($r->{status} != 200) {
        push @bad, "$what: status $r->{status}: " . substr($r->{body}, 0, 200);
        next;
    }

    $n_ok++;
    my $text;
    if ($b->{stream}) {
        my ($p, $sum) = $b->{st}->sse_check('chat');
        push @bad, "$what: @$p" if @$p;
        $text = $sum->{text};
    } else {
        $text = ref $r->{json} eq 'HASH'
                ? $r->{json}{choices}[0]{message}{content} : undef;
    }
    push @bad, "$what: text '" . ($text // 'undef') . "' is not '$ref[$b->{i}]'"
        unless defined $text && $text eq $ref[$b->{i}];
}

cmp_ok($n_429 // 0, '>=', 2, 'some of the burst refused by admission '
       . "control (" . ($n_429 // 0) . " of $BURST)");
cmp_ok($n_429_stream // 0, '>=', 1, 'streams among them: 429 before any '
       . 'event (' . ($n_429_stream // 0) . ')');
cmp_ok($n_ok // 0, '>=', 1, 'some succeed (' . ($n_ok // 0) . ')');
is(($n_ok // 0) + ($n_429 // 0), $BURST, 'nothing else: 200 or 429');
is(scalar @bad, 0, 'refusals are well-formed 429s; successes give the '
   . 'text each prompt gave alone') or diag(join("\n", @bad));
is($burst[0]{st}->result->{status}, 200,
   'the first of the burst, estimated within its SLO, is served');

{
    my $m = http_req($PORT, 'GET', '/metrics');
    my ($c) = $m->{body} =~ /^slora_requests_total\{status="429"\} (\d+)/m;
    is($c, $n_429, 'metrics count the 429s');
    my $ab = wait_for(3, sub {
        my $st = $s->status or return 0;
        return ($st->{requests}{slo_aborted} // -1) == $n_429 ? $st : 0;
    });
    ok($ab, "status counts $n_429 refused by schedule=slo")
        or diag(json_encode($s->status // {}));
    my $m2 = http_req($PORT, 'GET', '/metrics');
    my ($sa) = $m2->{body} =~ /^slora_slo_aborted_total (\d+)$/m;
    is($sa, $n_429, 'so does slora_slo_aborted_total');
    my $log = SloraTest::_slurp($s->prefix . '/logs/access.log');
    my @l = grep { / 429 / } split /\n/, $log;
    is(scalar @l, $n_429, 'the access log has them');

    # the step-time model the estimates stood on, fitted to the steps run:
    # the CPU times its attention, so every term is there
    my $sm = ($s->status // {})->{step_model} // {};
    ok(($sm->{per_token_ms} // 0) > 0 && ($sm->{per_pair_ns} // 0) > 0
       && ($sm->{per_step_ms} // -1) >= 0 && $sm->{per_token_ms} < 1000,
       'status shows the step model: '
       . join(', ', map { "$_ $sm->{$_}" } sort keys %$sm));
    my $m3 = http_req($PORT, 'GET', '/metrics');
    my ($tok) = $m3->{body}
        =~ /^slora_step_model_seconds\{term="token"\} ([0-9.]+)$/m;
    my ($pair) = $m3->{body}
        =~ /^slora_step_model_seconds\{term="pair"\} ([0-9.]+)$/m;
    ok(defined $tok && defined $pair
       && abs($tok * 1e3 - $sm->{per_token_ms}) < 0.002
       && abs($pair * 1e9 - $sm->{per_pair_ns}) < 0.002,
       'so do the metrics, in seconds (' . ($tok // 'none') . ', '
       . ($pair // 'none') . ')');
}

my $stop = $s->stop;
ok($stop->{graceful}, 'server stopped');
unlike($s->error_log, qr/\[(alert|emerg|crit)\]/, 'no alert in the log');

# --- 3. fair share ------------------------------------------------------------

my $FLOOD = 10;
my $QUIET = 4;

# A flood stream or a quiet request: a completion of a few tokens.
sub open_req {
    my ($port, $tenant, $prompt, $max) = @_;
    my $st = stream_start($port, 'POST', '/v1/completions',
        body => json_encode({ model => 'base', prompt => $prompt,
                              max_tokens => $max, temperature => 0,
                              stream => JSON::PP::true }),
        headers => { %H, 'X-Tenant' => $tenant });
    return { st => $st, sent => time(), first => undef, tenant => $tenant };
}

# Runs the flood (when $flood) and $n quiet requests one after another;
# returns the quiet ones with, for each, the flood requests whose first
# token came between its sending and its own first token.
sub fair_round {
    my ($port, $flood, $n) = @_;
    my (@flood, @quiet, @done_flood, $cur, $deadline);

    if ($flood) {
        push @flood, open_req($port, 'flood', "Flood request $_:", 12)
            for 1 .. $FLOOD;
        # let the backlog build
        my $t = time() + 2;
        while (time() < $t) {
            pump_all(\@flood, undef, \@done_flood, $port, 1);
        }
    }

    $deadline = time() + 180;
    while (@quiet < $n || ($cur && !$cur->{st}{closed})) {
        last if time() > $deadline;
        if (!$cur || $cur->{st}{closed}) {
            $cur = open_req($port, 'quiet', 'Quiet request ' . scalar(@quiet)
                                            . ':', 2);
            push @quiet, $cur;
        }
        pump_all(\@flood, $cur, \@done_flood, $port, $flood);
    }

    for my $f (@flood) {
        $f->{st}->abort unless $f->{st}{closed};
    }

    for my $q (@quiet) {
        $q->{overtaken} = grep {
            defined $_->{first} && defined $q->{first}
            && $_->{first} > $q->{sent} && $_->{first} < $q->{first}
        } @done_flood, @flood;
    }

    return @quiet;
}

# Reads what is there and notes first tokens; finished flood streams go
# to @$done and, when $refill, are replaced by new ones.
sub pump_all {
    my ($flood, $quiet, $done, $port, $refill) = @_;
    my @live = grep { !$_->{st}{closed} } @$flood, ($quiet ? $quiet : ());
    my %by = map { fileno($_->{st}{sock}) => $_ } @live;
    my $sel = IO::Select->new(map { $_->{st}{sock} } @live);

    for my $fh ($sel->count ? $sel->can_read(0.05) : ()) {
        my $q = $by{fileno($fh)} or next;
        $q->{st}->pump;
        $q->{first} //= time() if @{ $q->{st}{events} };
    }

    for my $k (0 .. $#$flood) {
        next unless $flood->[$k]{st}{closed} && !$flood->[$k]{counted}++;
        push @$done, $flood->[$k];
        $flood->[$k] = open_req($port, 'flood', "Flood request $k:", 12)
            if $refill;
    }
}

sub median {
    my @v = sort { $a <=> $b } @_;
    return @v ? $v[int($#v / 2)] : 0;
}

my %res;
for my $policy ('fair', 'fcfs') {
    my $f = SloraTest::Server->new(name => "sched-$policy", port => $FAIR_PORT);
    $f->{http} = slora_http(
        model => $model,
        engine => 'threads=1 slots=64 max_running=2 max_batch_tokens=64 '
                  . "max_ctx=256 max_tokens=32 schedule=$policy",
        http_extra => '    slora_tenant $http_x_tenant;');
    $f->start;

    my @alone = fair_round($FAIR_PORT, 0, 3);
    my @under = fair_round($FAIR_PORT, 1, $QUIET);

    is(scalar @alone, 3, "$policy: 3 quiet requests alone");
    is(scalar @under, $QUIET, "$policy: $QUIET under the flood");
    my @bad = grep { !$_->{first} || ($_->{st}{status} // 0) != 200 }
              @alone, @under;
    is(scalar @bad, 0, "$policy: every quiet request served");

    # the status is copied from the engine after its steps: wait for it
    my $st = wait_for(3, sub {
        my $x = $f->status or return 0;
        return $policy eq 'fcfs' || ($x->{requests}{preempted} // 0) > 0
               ? $x : 0;
    }) || $f->status;

    $res{$policy} = {
        alone => median(map { ($_->{first} // 0) - $_->{sent} } @alone),
        under => median(map { ($_->{first} // 0) - $_->{sent} } @under),
        overtaken => [ map { $_->{overtaken} } @under ],
        preempted => $st ? $st->{requests}{preempted} // -1 : -1,
    };
    diag(sprintf("%s: quiet TTFT median alone %.3f s, under the flood "
                 . "%.3f s (%.1fx); flood requests ahead of each quiet "
                 . "one: %s; preempted: %d", $policy, $res{$policy}{alone},
                 $res{$policy}{under},
                 $res{$policy}{under} / ($res{$policy}{alone} || 1),
                 join(' ', @{ $res{$policy}{overtaken} }),
                 $res{$policy}{preempted}));

    ok($f->stop->{graceful}, "$policy: server stopped");
    unlike($f->error_log, qr/\[(alert|emerg|crit)\]/,
           "$policy: no alert in the log");
}

cmp_ok(median(@{ $res{fcfs}{overtaken} }), '>=', 5,
       'fcfs: a quiet request waits behind the flood\'s backlog');
cmp_ok((sort { $b <=> $a } @{ $res{fair}{overtaken} })[0], '<=', 3,
       'fair: no quiet request waits behind more than 3 flood requests');
cmp_ok($res{fair}{preempted}, '>=', 1, 'fair: flood requests preempted '
       . "for the quiet tenant ($res{fair}{preempted})");
is($res{fcfs}{preempted}, 0, 'fcfs: nothing preempted');

done_testing();
