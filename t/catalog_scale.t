# catalog_scale.t: 2000 adapters in a Redis catalog behind a real nginx,
# under the S-LoRA paper's workload: Poisson arrivals, power-law adapter
# popularity (alpha 0.3: the first adapters take most requests, the tail
# of the 2000 still gets some), prompt and output lengths uniform per
# request, ranks 8/16/32/64 round robin.  The stream is `bench/loadgen
# gen`'s trace for a fixed seed (t/lib/SloraAdapterSet.pm reads it); a
# request's prompt is that many words "Hello", its max_tokens the
# trace's output tokens.
#
# What it shows: every request of the stream completes (200) and equals
# its adapter run alone; the host tier and the pool both evict; the host
# tier never held more than slora_adapters host_cache= and the pool never
# had more pages in use than it has, over the whole run (the engine's
# high-water marks in /status, checked against samples taken every 100 ms
# during the stream), and the pool's arena fits slora_engine pool=.  Also
# `slora_adapters prefetch=`: a bad value fails nginx -t, and off runs
# the engine without its prefetch thread.
#
# The reference for a response is `slora generate --adapter DIR` on the
# adapter's folder, greedy: a separate process that is given the folder
# itself, with no nginx, no Redis, no catalog, no host tier or pool under
# pressure, no prefetch and no other adapter in its batch.  Replaying the
# request on the same server after the stream would share all of these:
# an adapter resolved to the wrong folder, or a host or pool copy that is
# wrong and stays resident, would give the same wrong answer twice.
# generate shares only the forward pass and the adapter reader, which
# t/unit/test_adapter.c (the pool copy holds exactly A and B^T),
# t/unit/test_engine.c and the llama.cpp goldens check on their own.
# There is one generate run for each distinct (adapter, prompt length,
# max_tokens) of the stream, which serves every request that asks it;
# where several adapters were asked the same lengths, their texts must
# mostly differ, so that the comparison tells adapters apart.
#
# Adapters are generated once into t/data/gen/ (about 10 s the first
# time, for a model of the same layer shapes; a marker says the set is
# whole); redis-server is started on a loopback port and stopped by pid.

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use SloraAdapterSet qw(adapter_name loadgen_trace make_adapter_set
                       shape_model);
use Test::More;
use Encode ();
use File::Path qw(make_path remove_tree);
use POSIX ();
use Time::HiRes qw(time sleep);

my $PORT = 18140;
my $REDIS_PORT = 18141;
my $N_ADAPTERS = 2000;
my @RANKS = (8, 16, 32, 64);
my $N_REQ = 400;
my $RATE = 32;                          # requests per second
my $ALPHA = 0.3;
my $SEED = 42;
my @IN = (4, 40);                       # prompt words, [lo, hi)
my @OUT = (4, 16);                      # max_tokens, [lo, hi)
my $HOST_CACHE = 2 * 1024 * 1024;
my $POOL = 1024 * 1024;
my $ROOT = repo_root();

my $model = tiny_model();
my $gen = "$ROOT/t/data/gen";

# first: the server's lock, so that a second run of this test (another
# prove in this tree) waits before it touches the work folder or Redis's
# port
my $s = SloraTest::Server->new(name => 'catalog-scale', port => $PORT);

# ---- the adapters, made once (two mkadapter processes at a time) ----

my $adir = make_adapter_set("$gen/catalog-scale-$N_ADAPTERS-r"
                            . join('-', @RANKS), shape_model(),
                            $N_ADAPTERS, \@RANKS);

my $work = "$gen/catalog-scale-work";
remove_tree($work);
make_path("$work/redis");

my $URL = "redis://127.0.0.1:$REDIS_PORT";

ok(start_redis($REDIS_PORT, "$work/redis"),
   "redis-server started on 127.0.0.1:$REDIS_PORT")
    or BAIL_OUT('cannot start redis-server');

{
    my ($rc, $out, $err) = run_cmd(slora_bin(), 'catalog', '--redis', $URL,
                                   'register', $adir);
    is($rc, 0, "slora catalog register: $N_ADAPTERS folders")
        or diag("$err$out");
    ($rc, $out, $err) = run_cmd(slora_bin(), 'catalog', '--redis', $URL,
                                'list');
    my @l = grep { /\S/ } split /\n/, $out;
    is(scalar @l, $N_ADAPTERS, "Redis holds $N_ADAPTERS adapters");
}

# ---- the server ----

sub http_conf {
    my ($prefetch, $extra) = @_;
    return slora_http(
        model => $model,
        engine => 'threads=1 slots=128 max_running=16 max_ctx=256 '
                  . "max_tokens=32 pool=$POOL",
        http_extra => "    slora_adapters dir=$adir host_cache=$HOST_CACHE"
                      . " prefetch=$prefetch " . ($extra // '') . ";\n"
                      . "    slora_catalog $URL roots=$adir timeout=300ms;\n");
}

# the engine's threads (the prefetch thread among them), from /proc
sub engine_threads {
    my ($srv) = @_;
    my $pid = $srv->engine_pid or return -1;
    open(my $fh, '<', "/proc/$pid/status") or return -1;
    my ($n) = map { /^Threads:\s+(\d+)/ ? $1 : () } <$fh>;
    close $fh;
    return $n // -1;
}

# the engine's default number of loader threads: half the cores, 1 to 4
my $cores = `nproc` + 0 || 1;
my $default_loaders = int($cores / 2);
$default_loaders = 1 if $default_loaders < 1;
$default_loaders = 4 if $default_loaders > 4;

$s->{http} = http_conf('maybe');
{
    my ($rc, $out) = $s->test_config;
    ok($rc != 0 && $out =~ /invalid parameter "prefetch=maybe"/
       && $out =~ /nginx\.conf:\d+/,
       'nginx -t refuses prefetch=maybe, naming file and line');
}
$s->{http} = http_conf('on');
$s->start;
pass('nginx with slora_catalog started, engine ready');
my $threads_on = engine_threads($s);

# ---- the stream ----

my @plan = loadgen_trace(file => "$work/trace.csv",
                         n_adapters => $N_ADAPTERS, alpha => $ALPHA,
                         rate => $RATE, cv => 1, requests => $N_REQ,
                         seed => $SEED, in => \@IN, out => \@OUT);
my %used = map { $_->{adapter} => 1 } @plan;
my ($max_i) = sort { $b <=> $a } keys %used;

sub prompt_of {
    my ($words) = @_;
    return join(' ', ('Hello') x $words);
}

my $s0 = $s->status;
my (@live, @done, @samples);
my $t0 = time();
my $next = 0;
my $t_sample = 0;
my $k = 0;

while ($next < @plan || @live) {
    my $now = time() - $t0;
    while ($next < @plan && $plan[$next]{at} <= $now) {
        my $p = $plan[$next++];
        $p->{stream} = $k++ % 2;
        my %b = (model => $p->{name}, temperature => 0,
                 max_tokens => $p->{max_tokens},
                 messages => [{ role => 'user',
                                content => prompt_of($p->{words}) }]);
        if ($p->{stream}) {
            $b{stream} = JSON::PP::true();
            $b{stream_options} = { include_usage => JSON::PP::true() };
        }
        $p->{st} = stream_start($PORT, 'POST', '/v1/chat/completions',
            body => json_encode(\%b),
            headers => { 'Content-Type' => 'application/json' });
        push @live, $p;
    }
    SloraTest::run_streams([map { $_->{st} } @live], 0.02);
    push @done, grep { $_->{st}{closed} } @live;
    @live = grep { !$_->{st}{closed} } @live;

    if ($now - $t_sample >= 0.1) {
        $t_sample = $now;
        my $x = $s->status;
        push @samples, $x if $x;
    }
    last if time() - $t0 > 180;
}
my $secs = time() - $t0;
my $s1 = $s->status;

my (%got, @bad);
for my $p (@done) {
    my $res = $p->{st}->result;
    my %r = (status => $res->{status});
    if ($p->{stream}) {
        my ($problems, $sum) = $p->{st}->sse_check('chat');
        push @bad, "$p->{name} (stream): @$problems" if @$problems;
        @r{qw(text finish usage)} = @$sum{qw(text finish usage)};
    } elsif (ref $res->{json} eq 'HASH' && $res->{json}{choices}) {
        $r{text} = $res->{json}{choices}[0]{message}{content};
        $r{finish} = $res->{json}{choices}[0]{finish_reason};
        $r{usage} = $res->{json}{usage};
    }
    $p->{r} = \%r;
}

is(scalar @done, $N_REQ, sprintf('the stream of %d requests ended in %.1f s'
                                 . ' (%d adapters used, highest index %d)',
                                 $N_REQ, $secs, scalar keys %used, $max_i));
is(scalar(grep { $_->{r}{status} == 200 } @done), $N_REQ,
   'every request answered 200');
is_deeply(\@bad, [], 'every stream well-formed');
# the trace itself, not the server: it must reach the catalog's tail for
# the run above to mean what it says
$max_i >= $N_ADAPTERS * 0.9
    or BAIL_OUT("the trace reached adapter $max_i of $N_ADAPTERS only");

# ---- the tiers and the budgets ----

ok($s0 && $s1, 'status read before and after the stream');
my $d = sub {
    my ($a, $b) = @_;
    return $s1->{$a}{$b} - $s0->{$a}{$b};
};
cmp_ok($d->('host', 'evictions'), '>', 0,
       'host tier evictions during the stream: ' . $d->('host', 'evictions'));
cmp_ok($d->('adapters', 'evictions'), '>', 0,
       'pool evictions during the stream: ' . $d->('adapters', 'evictions'));
my $lookups = $d->('adapters', 'hits') + $d->('host', 'hits')
              + $d->('host', 'misses');
cmp_ok($lookups, '>=', $N_REQ,
       sprintf('each request found its adapter in a tier: pool %d, host %d'
               . ' (prefetched %d), disk %d',
               $d->('adapters', 'hits'), $d->('host', 'hits'),
               $d->('host', 'prefetched'), $d->('host', 'misses')));
is($s1->{engine}{restarts}, $s0->{engine}{restarts}, 'no engine restart');

my $budget = $s1->{host}{budget};
is($budget, $HOST_CACHE, 'host budget is slora_adapters host_cache=');
my ($max_host, $max_used, $over) = (0, 0, 0);
for my $x (@samples) {
    my $used = $x->{pool}{pages_kv} + $x->{pool}{pages_adapter};
    $max_host = $x->{host}{bytes} if $x->{host}{bytes} > $max_host;
    $max_used = $used if $used > $max_used;
    $over++ if $x->{host}{bytes} > $budget
               || $used > $x->{pool}{pages_total};
}
cmp_ok(scalar @samples, '>=', 20, scalar(@samples) . ' status samples');
is($over, 0, "no sample over a budget (host bytes at most $max_host,"
             . " pool pages in use at most $max_used)");
cmp_ok($s1->{host}{peak}, '<=', $budget,
       "host tier high-water mark $s1->{host}{peak} <= host_cache=$budget");
cmp_ok($s1->{host}{peak}, '>=', $max_host,
       '... and at least every sample (it is a real high-water mark)');
cmp_ok($s1->{host}{peak}, '>', $budget / 2,
       '... the budget was put to use');
cmp_ok($s1->{pool}{pages_used_peak}, '<=', $s1->{pool}{pages_total},
       "pool pages in use at most $s1->{pool}{pages_used_peak} of"
       . " $s1->{pool}{pages_total}");
cmp_ok($s1->{pool}{pages_used_peak}, '>=', $max_used,
       '... and at least every sample');
ok($s1->{pool}{bytes} > 0 && $s1->{pool}{bytes} <= $POOL,
   "the pool's arena, $s1->{pool}{bytes} bytes, fits pool=$POOL");
is($s1->{catalog}{source}, 'redis', 'status: catalog source redis');
ok($s1->{catalog}{up}, '... up');

{
    my $m = http_req($PORT, 'GET', '/metrics')->{body};
    like($m, qr/^slora_host_tier_peak_bytes \Q$s1->{host}{peak}\E$/m,
         '/metrics: slora_host_tier_peak_bytes as in /status');
    my $used = $s1->{pool}{pages_used_peak};
    like($m, qr/^slora_pool_pages_used_peak \Q$used\E$/m,
         '/metrics: slora_pool_pages_used_peak as in /status');
    like($m, qr/^slora_pool_bytes \Q$s1->{pool}{bytes}\E$/m,
         '/metrics: slora_pool_bytes as in /status');
}

my $r = $s->stop;
ok($r->{graceful}, 'nginx stopped on QUIT');
my @badlog = $s->bad_log_lines(
    errors => 1, allow => [qr/invalid parameter "prefetch=maybe"/]);
ok(!@badlog, 'no [error], [alert], [crit] or [emerg] in the error log'
             . ' (but nginx -t\'s)')
    or diag(join("\n", @badlog));

# prefetch=off reaches the engine: it runs without the loader threads
{
    my $off = SloraTest::Server->new(name => 'catalog-scale-off',
                                     port => $PORT);
    $off->{http} = http_conf('off');
    $off->start;
    my $threads_off = engine_threads($off);
    is($threads_off, $threads_on - $default_loaders,
       "prefetch=off: the engine runs $threads_off threads, its"
       . " $default_loaders loader(s) fewer than with prefetch=on"
       . " ($threads_on)");
    my $res = json_req($PORT, '/v1/chat/completions',
                       { model => adapter_name(1999), max_tokens => 4,
                         messages => [{ role => 'user',
                                        content => 'Hello' }] });
    is($res->{status}, 200, '... and serves');
    ok($off->stop->{graceful}, '... and stops on QUIT');
}

# prefetch_threads=3 reaches the engine: three loader threads instead of
# the default
{
    my $three = SloraTest::Server->new(name => 'catalog-scale-three',
                                       port => $PORT);
    $three->{http} = http_conf('on', 'prefetch_threads=3');
    $three->start;
    my $threads_three = engine_threads($three);
    my $want = $threads_on - $default_loaders + 3;
    is($threads_three, $want, "prefetch_threads=3: the engine runs "
       . "$threads_three threads ($threads_on with the default)");
    ok($three->stop->{graceful}, '... and stops on QUIT');
}
stop_redis($REDIS_PORT);

# ---- every response against its adapter alone (nginx and Redis are
# stopped: the two generate processes have the machine) ----

# what a request asks: its adapter, prompt length and max_tokens
sub ask_of {
    my ($p) = @_;
    return "$p->{name} $p->{words} $p->{max_tokens}";
}

my %asks = map { ask_of($_) => $_ } @plan;
my %ref;
{
    my @keys = sort keys %asks;
    my @kids;
    for my $kid (0, 1) {
        my $pid = fork() // die "fork: $!";
        if ($pid == 0) {
            open(my $fh, '>', "$work/ref$kid.json") or POSIX::_exit(1);
            for (my $j = $kid; $j < @keys; $j += 2) {
                my $p = $asks{ $keys[$j] };
                my ($rc, $out, $err) = run_cmd(slora_bin(), 'generate',
                    '--model', $model, '--adapter', "$adir/$p->{name}",
                    '--chat', prompt_of($p->{words}),
                    '--max-tokens', $p->{max_tokens}, '--threads', 1);
                print $fh json_encode({ ask => $keys[$j], rc => $rc,
                                        out => $out, err => $err }), "\n";
            }
            close $fh;
            POSIX::_exit(0);
        }
        push @kids, $pid;
    }
    waitpid($_, 0) for @kids;
    for my $kid (0, 1) {
        open(my $fh, '<', "$work/ref$kid.json") or next;
        while (my $l = <$fh>) {
            my $x = json_decode_safe($l) or next;
            next unless $x->{rc} == 0
                && $x->{err} =~ /(\d+) prompt tokens, (\d+) generated/;
            my ($np, $ng) = ($1, $2);
            my $text = Encode::decode('UTF-8', $x->{out});
            $text =~ s/\n\z//;
            $ref{ $x->{ask} } = { text => $text, prompt => $np,
                                  gen => $ng };
        }
        close $fh;
    }
}

is(scalar keys %ref, scalar keys %asks,
   sprintf('slora generate answered for each of the %d (adapter, prompt'
           . ' length, max_tokens) the stream asks', scalar keys %asks));

my ($same, @diff) = (0);
for my $p (@done) {
    my $x = $ref{ ask_of($p) } or next;
    my $u = $p->{r}{usage} // {};
    if (defined $p->{r}{text} && $p->{r}{text} eq $x->{text}
        && ($u->{completion_tokens} // -1) == $x->{gen}
        && ($u->{prompt_tokens} // -1) == $x->{prompt})
    {
        $same++;
    } else {
        push @diff, $p;
    }
}
is($same, $N_REQ, "all $N_REQ responses equal their adapter run alone"
                  . ' (text, prompt and completion tokens)');
for my $p (@diff[0 .. ($#diff < 4 ? $#diff : 4)]) {
    my $x = $ref{ ask_of($p) } // { text => undef, gen => -1 };
    diag(sprintf("%s: served %s (%s tokens), alone %s (%d tokens)",
                 ask_of($p), json_encode([$p->{r}{text}]),
                 $p->{r}{usage}{completion_tokens} // '-',
                 json_encode([$x->{text}]), $x->{gen}));
}

# the comparison tells adapters apart: where several adapters were asked
# the same prompt and max_tokens, they mostly answer different texts
{
    my %by_len;
    for my $k (keys %ref) {
        my $p = $asks{$k};
        $by_len{"$p->{words} $p->{max_tokens}"}{ $ref{$k}{text} }++;
    }
    my ($n, $distinct, $groups) = (0, 0, 0);
    for my $texts (values %by_len) {
        my $m = 0;
        $m += $_ for values %$texts;
        next if $m < 2;
        $groups++;
        $n += $m;
        $distinct += keys %$texts;
    }
    cmp_ok($distinct, '>', $n / 2,
           "the adapters give different texts for the same prompt:"
           . " $distinct distinct of $n answers ($groups prompt and"
           . ' max_tokens asked of several adapters)');
}

done_testing();
