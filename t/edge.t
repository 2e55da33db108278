# edge.t: two slora servers behind a plain nginx configured by
# conf/edge.conf (DESIGN.md section 9).
#
# Servers a and b each run their own engine on the tiny model, with their
# own prefix and zone; each names itself in an X-Slora-Node header (plain
# add_header).  The edge is conf/edge.conf itself with the test's ports
# put in (each replacement must hit exactly once, so the test follows the
# file).  It shows: a tenant sticks to one server (every answer and the
# servers' own request counters agree); when that server's master is
# stopped (TERM, by pid) while it streams, only what was in flight
# there is affected: a stream that had started fails visibly (status 200,
# tokens, no finish_reason, then an error event and [DONE]: the worker
# fails its open streams as it exits), a request still queued there (no
# byte sent yet) is resent by the edge to the other server and
# completes; a stream on the other server goes on untouched; new
# requests of the tenant succeed on the other server; once the server is
# back and fail_timeout has passed, the tenant returns to it.  The one
# idea to know: "in flight" is made certain, not hoped for: server a
# admits one request at a time (max_running=1), and the stream's length
# is calibrated from the engine's measured speed to outlast the kill.

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;
use Time::HiRes qw(time sleep);

my ($PORT_A, $PORT_B, $PORT_EDGE) = (18170, 18171, 18172);
my $MAX_CTX = 4096;
my $STREAM_SECONDS = 6;
my $ROOT = repo_root();

my $model = tiny_model(layers => 4, hidden => 256, heads => 4,
                       kv_heads => 2, ffn => 512, ctx => $MAX_CTX,
                       seed => 7);

# ---- the two slora servers ----

my %srv;
my %port = (a => $PORT_A, b => $PORT_B);
for my $n (qw(a b)) {
    my $s = SloraTest::Server->new(name => "edge-$n", port => $port{$n},
                                   workers => 1);
    my $running = $n eq 'a' ? 1 : 4;
    $s->{http} = slora_http(
        model => $model,
        engine => "threads=1 slots=16 max_running=$running "
                  . "max_ctx=$MAX_CTX max_tokens=4000",
        server_extra => <<"EOF");
        add_header X-Slora-Node $n always;

        location ~ ^/t/(?<tenant>[\\w-]+)/v1/ {
            slora_api openai;
            slora_tenant \$tenant;
        }
EOF
    $s->start;
    $srv{$n} = $s;
}
pass('slora servers a and b started (own prefix, engine and zone each)');
isnt($srv{a}->engine_pid, $srv{b}->engine_pid, '... two engines');

# ---- the edge: conf/edge.conf with the test's ports ----

package EdgeServer;
our @ISA = ('SloraTest::Server');

sub config_text { $_[0]{conf_text} }

# no engine behind this nginx: never ask for one (SloraTest::Server would
# take a proxied /status answer for its own and kill that engine)
sub status { undef }
sub engine_pid { undef }

sub wait_ready {
    my ($self, $timeout) = @_;
    return SloraTest::wait_for($timeout, sub {
        return 0 unless SloraTest::proc_alive($self->{pid});
        my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $self->{port},
                                      Proto => 'tcp');
        return $c ? 1 : 0;
    });
}

package main;

my $conf = do {
    open(my $fh, '<', "$ROOT/conf/edge.conf") or die "conf/edge.conf: $!";
    local $/;
    <$fh>;
};
my %subst = ('server  127.0.0.1:8081' => "server  127.0.0.1:$PORT_A",
             'server  127.0.0.1:8082' => "server  127.0.0.1:$PORT_B",
             'listen       127.0.0.1:8080' =>
                 "listen       127.0.0.1:$PORT_EDGE");
for my $from (sort keys %subst) {
    my $n = () = $conf =~ /\Q$from\E/g;
    is($n, 1, "conf/edge.conf has '$from' once (replaced by the test)")
        or BAIL_OUT('conf/edge.conf changed: update t/edge.t');
    $conf =~ s/\Q$from\E/$subst{$from}/;
}
like($conf, qr/hash\s+\$slora_route\s+consistent;/,
     'conf/edge.conf: consistent hash on the route key');
like($conf, qr/proxy_buffering\s+off;/, '... proxy_buffering off');
unlike($conf, qr/load_module/, '... a plain nginx, no slora module');

my $edge = EdgeServer->new(name => 'edge', port => $PORT_EDGE,
                           conf_text => $conf);
{
    my ($rc, $out) = $edge->test_config;
    is($rc, 0, 'nginx -t accepts conf/edge.conf') or diag($out);
}
$edge->start;
pass('edge nginx started');

# ---- helpers ----

sub ask {
    my ($tenant, %o) = @_;
    my $path = defined $tenant ? "/t/$tenant/v1/completions"
                               : '/v1/completions';
    my $r = json_req($PORT_EDGE, $path,
                     { model => 'base', prompt => 'Hello',
                       max_tokens => $o{max_tokens} // 4, temperature => 0 },
                     timeout => 60);
    return $r;
}

sub node_of {
    my ($r) = @_;
    return $r->{headers}{'x-slora-node'} // '?';
}

# answered 200, with a completion, by server n
sub served_by {
    my ($r, $n) = @_;
    return $r->{status} == 200 && node_of($r) eq $n
           && ref $r->{json} eq 'HASH' && ref $r->{json}{choices} eq 'ARRAY'
           && defined $r->{json}{choices}[0]{text};
}

sub total {
    my ($n) = @_;
    my $st = $srv{$n}->{stopped} ? undef : $srv{$n}->status;
    return $st ? $st->{requests}{total} : undef;
}

sub stream_body {
    my ($n) = @_;
    return json_encode({ model => 'base', prompt => 'Once upon a time',
                         max_tokens => $n, temperature => 0,
                         stream => JSON::PP::true() });
}

sub open_stream {
    my ($tenant, $n) = @_;
    return stream_start($PORT_EDGE, 'POST', "/t/$tenant/v1/completions",
                        body => stream_body($n),
                        headers => { 'Content-Type' => 'application/json' });
}

# ---- 1. a tenant sticks to one server ----

my @tenants = map { sprintf('t%02d', $_) } 0 .. 19;
my %home;
my %count = (a => 0, b => 0);
my %before = (a => total('a'), b => total('b'));
my @bad;
for my $t (@tenants) {
    my %seen;
    for (1 .. 3) {
        my $r = ask($t);
        push @bad, "$t: HTTP $r->{status}" unless $r->{status} == 200;
        my $n = node_of($r);
        my $up = $r->{headers}{'x-slora-upstream'} // '';
        push @bad, "$t: node $n but upstream $up"
            unless $n =~ /^[ab]$/ && $up eq "127.0.0.1:$port{$n}";
        $seen{$n}++;
        $count{$n}++ if $n =~ /^[ab]$/;
    }
    push @bad, "$t answered by " . join(',', sort keys %seen)
        if keys %seen != 1;
    ($home{$t}) = keys %seen;
}
is_deeply(\@bad, [], '60 requests of 20 tenants: 200, and each tenant '
                     . 'always answered by one server');
my @on_a = grep { $home{$_} eq 'a' } @tenants;
my @on_b = grep { $home{$_} eq 'b' } @tenants;
ok(@on_a && @on_b, sprintf('the tenants spread: %d on a, %d on b',
                           scalar @on_a, scalar @on_b))
    or BAIL_OUT('no tenant on one of the servers: nothing to fail over');
for my $n (qw(a b)) {
    is(total($n) - $before{$n}, $count{$n},
       "server $n counted $count{$n} requests (status requests.total), "
       . 'as many as answers naming it');
}
{
    my (%seen, $good);
    $good = 0;
    for (1 .. 3) {
        my $r = ask(undef);
        $good++ if $r->{status} == 200 && node_of($r) =~ /^[ab]$/;
        $seen{ node_of($r) }++;
    }
    is($good, 3, 'untenanted requests answered 200 by a or b');
    is(scalar keys %seen, 1,
       'untenanted requests (by client address) stay on one server too');
}

# ---- 2. stop a tenant's server while it streams ----

my $victim = $on_a[0];
my $bystander = $on_b[0];

# tokens per second of one stream on a, to size a stream that outlasts
# the kill by far
my $t0 = time();
my $probe = ask($victim, max_tokens => 200);
my $secs = time() - $t0;
is($probe->{status}, 200, "probe on a: 200 in ${\ sprintf('%.2f', $secs)} s");
my $tps = 200 / ($secs || 0.01);
my $N = int($tps * $STREAM_SECONDS);
$N = 4000 if $N > 4000;
$N = 400 if $N < 400;
diag(sprintf('a: about %.0f tokens/s: streams of %d tokens', $tps, $N));

my $running = open_stream($victim, $N);
$running->wait_events(3, 30);
my $queued = open_stream($victim, 16);
my $other = open_stream($bystander, $N);
$other->wait_events(3, 30);

# a admits one request at a time: the second one waits in its engine
my $queued_ok = wait_for(10, sub {
    my $st = $srv{a}->status or return 0;
    return $st->{requests}{waiting} >= 1 && $st->{requests}{running} == 1;
});
ok($queued_ok, "on a: one stream running, one request waiting");
$queued->pump;
ok(!defined $queued->{status}, '... the waiting one has no response yet');
cmp_ok(scalar @{ $running->{events} }, '>=', 3,
       '... the running one has streamed tokens');
my $engine_a = $srv{a}->engine_pid;

$srv{a}->signal('TERM');
my $st = $srv{a}->wait_exit(15);
ok(defined $st, "server a's master (pid $srv{a}{pid}) stopped by TERM");
ok(wait_for(5, sub { !proc_alive($engine_a) }), "... and a's engine gone");

my $t_kill = time();
run_streams([$running, $queued, $other], 120);

# the stream that had started fails, visibly: TERM makes a's engine fail
# its slots ("the engine is shutting down") and a's worker exit at once;
# whichever comes first, the worker ends the stream with an error event
# (server_error: the engine's message, or its own "the server is
# shutting down" as it exits) and [DONE], relayed by the edge: no
# finish_reason and no clean end.
{
    my $r = $running->result;
    is($r->{status}, 200, 'the running stream (header sent before the '
                          . 'kill) kept its 200');
    my @ev = @{ $r->{events} };
    my @done = grep { ($_->{data} // '') eq '[DONE]' } @ev;
    my @err = grep { ref $_->{json} eq 'HASH' && $_->{json}{error} } @ev;
    my ($bad, $sum) = $running->sse_check('text');
    cmp_ok(length($sum->{text}), '>', 0, '... it had streamed text');
    is(scalar @{ $sum->{finish} }, 0, '... no finish_reason: not complete');

    my $errored = $r->{done} && @err == 1 && @done == 1
                  && ($ev[-1]{data} // '') eq '[DONE]'
                  && $ev[-2] == $err[0]
                  && !check_error_object($err[0]{json})
                  && $err[0]{json}{error}{type} eq 'server_error'
                  && $err[0]{json}{error}{message}
                     =~ /^the (server|engine) is shutting down$/;
    ok($errored, '... it ends with an error event, then [DONE]: '
       . ($errored ? '"' . $err[0]{json}{error}{message} . '"'
          : json_encode([map { $_->{raw} } @ev[-3 .. -1]])
            . ' ' . ($r->{framing} // '')));
}

# the request a held without having sent a byte: resent to b
{
    my ($bad, $sum) = $queued->sse_check('text');
    is_deeply($bad, [], 'the request queued on a completes, well formed');
    is(node_of($queued->result), 'b', '... answered by b');
    like($queued->{headers}{'x-slora-upstream'} // '',
         qr/^127\.0\.0\.1:$PORT_A, 127\.0\.0\.1:$PORT_B$/,
         '... after the edge tried a: '
         . ($queued->{headers}{'x-slora-upstream'} // ''));
    is($sum->{finish}[0], 'length', '... to its max_tokens');
}

# the stream on b: untouched
{
    my ($bad, $sum) = $other->sse_check('text');
    is_deeply($bad, [], "the bystander tenant's stream on b completes");
    is($sum->{finish}[0], 'length', '... to its max_tokens');
}

# new requests: the victim's tenant now lives on b, the others stay
{
    my @moved = grep { !served_by(ask($_), 'b') } @on_a;
    is_deeply(\@moved, [], scalar(@on_a) . " tenants of a: 200 from b now");
    my @kept = grep { !served_by(ask($_), 'b') } @on_b;
    is_deeply(\@kept, [], scalar(@on_b) . ' tenants of b: still on b, 200');
    my $s = open_stream($victim, 16);
    $s->wait_done(60);
    my ($bad, $sum) = $s->sse_check('text');
    is_deeply($bad, [], "a new stream of $victim succeeds");
    is(node_of($s->result), 'b', '... on b');
}

my @log = grep { /upstream/ && /\[(?:error|warn)\]/ }
          split /\n/, $edge->error_log;
ok((grep { /127\.0\.0\.1:$PORT_A/ } @log),
   'the edge logged the failures of a: ' . ($log[0] // 'none'));

# ---- 3. a comes back: its tenants return after fail_timeout ----

$srv{a}->start;
my $t_up = time();
pass(sprintf('server a started again, %.1f s after the kill',
             $t_up - $t_kill));
my $back = wait_for(20, sub { served_by(ask($victim), 'a') });
ok($back, sprintf("$victim is served by a again, %.1f s after the kill, "
                  . '%.1f s after a was back (fail_timeout=10s)',
                  time() - $t_kill, time() - $t_up));
my @stray = grep { !served_by(ask($_), $home{$_}) } @tenants;
is_deeply(\@stray, [], 'every tenant is on its first server again');

# ---- the end ----

for my $n (qw(a b)) {
    my @l = $srv{$n}->bad_log_lines;
    is_deeply(\@l, [], "server $n: no alert or crit in its error log");
}
my $stop = $edge->stop;
ok($stop->{graceful}, 'edge stopped');
for my $n (qw(a b)) {
    ok($srv{$n}->stop->{graceful}, "server $n stopped");
}

done_testing();
