# speculate.t: `slora_engine speculate=lookup` drafts a request's next
# tokens from its own prompt and output (prompt lookup) and checks them
# in one step, on the real SmolLM2-135M-Instruct through nginx.
#
# The same requests go first to a server without it, then to one with
# it: every answer must be the same text (greedy, a seeded draw, on the
# base model and an adapter, streamed and not, alone and four at once),
# the usage the same and without prediction details (no client sent a
# prediction), while /status and /metrics count draft tokens taken, so
# the drafts did run. A wrong verify (a draft kept
# where the model picks otherwise, a generator not rewound) changes the
# text; a lookup that never drafts leaves the counts at 0.

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;

my $PORT = 18115;
my $model = real_model();

# Prompts whose answers repeat themselves or their prompt (SmolLM2
# restates a definition; code repeats its names), and one that does not;
# greedy but for one seeded draw.
sub ask {
    my ($model, $max, $content, %o) = @_;
    return { model => $model, max_tokens => $max, temperature => 0, %o,
             messages => [ { role => 'user', content => $content } ] };
}

my $EXPLAIN = 'Explain what a linked list is.';
my @REQS = (
    [ explain => ask('base', 160, $EXPLAIN) ],
    [ code => ask('base', 160, 'Write a Python function that returns the'
                  . ' sum of a list of numbers.') ],
    [ tuned => ask('tuned', 120, 'List the planets of the solar system,'
                   . ' one a line.') ],
    [ seeded => ask('base', 120, $EXPLAIN, temperature => 0.7, seed => 5) ],
    [ colours => ask('base', 60, 'Name three colours.') ],
);

sub chat {
    my ($port, $body) = @_;
    my $r = json_req($port, '/v1/chat/completions', $body);
    my $j = ref $r->{json} eq 'HASH' ? $r->{json} : {};
    return { status => $r->{status}, body => $r->{body},
             text => $j->{choices} ? $j->{choices}[0]{message}{content}
                                   : undef,
             finish => $j->{choices} ? $j->{choices}[0]{finish_reason} : undef,
             usage => $j->{usage} };
}

sub streamed {
    my ($port, $body) = @_;
    my $st = stream_start($port, 'POST', '/v1/chat/completions',
                          body => json_encode({
                              %$body, stream => JSON::PP::true(),
                              stream_options => {
                                  include_usage => JSON::PP::true() } }),
                          headers => { 'Content-Type' => 'application/json' });
    $st->wait_done(120);
    my ($bad, $sum) = $st->sse_check('chat');
    return { bad => $bad, text => $sum->{text}, usage => $sum->{usage} };
}

sub counts {
    my ($s) = @_;
    my $l = ($s->status // {})->{lookup};
    return ref $l eq 'HASH' ? $l : {};
}

sub server {
    my ($name, $extra) = @_;
    my $s = SloraTest::Server->new(name => $name, port => $PORT,
                                   ready_timeout => 120);
    make_adapters($s->prefix . '/adapters', $model, ['tuned'], rank => 8);
    $s->{http} = slora_http(
        model => $model, adapters => $s->prefix . '/adapters',
        engine => "threads=2 slots=16 max_ctx=1024 max_tokens=256$extra");
    $s->start;
    return $s;
}

sub stopped {
    my ($s, $what) = @_;
    my $stop = $s->stop;
    ok($stop->{graceful}, "$what: nginx exits on QUIT");
    my @bad = $s->bad_log_lines(errors => 1);
    ok(!@bad, "$what: no [error], [alert], [crit] or [emerg] in the log")
        or diag(join("\n", @bad));
}

# Without speculate: the answers to compare with, and no drafts.
my %plain;
{
    my $s = server('speculate-off', '');
    $plain{$_->[0]} = chat($PORT, $_->[1]) for @REQS;
    ok(!grep({ $plain{$_}{status} != 200 || !length($plain{$_}{text} // '') }
             keys %plain),
       'without speculate: every request answered')
        or diag(json_encode({ map { $_ => $plain{$_}{body} } keys %plain }));
    is(json_encode(counts($s)), '{"accepted":0,"rejected":0}',
       'without speculate: /status counts no lookup drafts');
    stopped($s, 'without speculate');
}

# Drafts while four requests are held (the default is one), so that
# four at once draft beside each other.
my $s = server('speculate', ' speculate=lookup speculate_requests=4');
like(SloraTest::_slurp($s->prefix . '/logs/error.log'),
     qr/slora engine: ready: .*, speculate lookup/,
     'the engine says it is ready with speculate lookup');

my $c0 = counts($s);
for my $r (@REQS) {
    my ($name, $body) = @$r;
    my $got = chat($PORT, $body);
    my $want = $plain{$name};
    ok($got->{status} == 200 && defined $got->{text}
       && $got->{text} eq ($want->{text} // '')
       && ($got->{finish} // '') eq ($want->{finish} // ''),
       "$name: the answer without speculate, word for word")
        or diag(json_encode([$want->{text}, $got->{text}]));
    my ($u, $w) = ($got->{usage} // {}, $want->{usage} // {});
    ok(($u->{completion_tokens} // -1) == ($w->{completion_tokens} // -2)
       && ($u->{prompt_tokens} // -1) == ($w->{prompt_tokens} // -2)
       && !exists $u->{completion_tokens_details},
       "$name: the same usage, with no prediction details")
        or diag(json_encode([$w, $u]));
}

my $c1 = counts($s);
my $taken = ($c1->{accepted} // 0) - ($c0->{accepted} // 0);
my $lost = ($c1->{rejected} // 0) - ($c0->{rejected} // 0);
my $n_tokens = 0;
$n_tokens += $plain{$_}{usage}{completion_tokens} // 0 for keys %plain;
ok($taken > $n_tokens / 10,
   "/status: $taken draft tokens taken ($lost not) of the $n_tokens "
   . 'answered: a tenth at least came from drafts')
    or diag(json_encode([$c0, $c1]));

{
    my $m = http_req($PORT, 'GET', '/metrics');
    like($m->{body},
         qr/^slora_lookup_tokens_total\{kind="accepted"\}
             \ \Q$c1->{accepted}\E\n
             slora_lookup_tokens_total\{kind="rejected"\}
             \ \Q$c1->{rejected}\E$/mx,
         '/metrics counts the drafts as /status does');
}

# Streamed: the same text, the same usage.
for my $name (qw(explain seeded)) {
    my ($body) = map { $_->[1] } grep { $_->[0] eq $name } @REQS;
    my $got = streamed($PORT, $body);
    ok(!@{ $got->{bad} } && $got->{text} eq ($plain{$name}{text} // ''),
       "$name streamed: the answer without speculate")
        or diag(join('; ', @{ $got->{bad} }) . ' '
                . json_encode([$plain{$name}{text}, $got->{text}]));
}

# Four at once: drafts of some rows beside others' plain tokens in one
# step, each answer still its own.
{
    my @names = qw(explain code tuned seeded);
    my %body = map { $_->[0] => $_->[1] } @REQS;
    my @st = map {
        stream_start($PORT, 'POST', '/v1/chat/completions',
                     body => json_encode($body{$_}),
                     headers => { 'Content-Type' => 'application/json' })
    } @names;
    SloraTest::run_streams(\@st, 180);
    my @differ;
    for my $i (0 .. $#names) {
        my $j = $st[$i]->result->{json};
        my $text = ref $j eq 'HASH' && $j->{choices}
                   ? $j->{choices}[0]{message}{content} : undef;
        push @differ, $names[$i]
            unless defined $text && $text eq ($plain{$names[$i]}{text} // '');
    }
    ok(!@differ, 'four at once: each the answer it gets alone without '
                 . 'speculate') or diag("differ: @differ");
}

stopped($s, 'with speculate');

done_testing();
