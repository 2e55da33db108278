# loadgen.t: bench/loadgen, its generator and its client against a real
# server.
#
# First t/python/test_loadgen.py (the generator's properties for fixed
# seeds, checked on the real generator and on broken ones; trace files),
# one TAP test per check.  Then loadgen runs against a tiny-model server
# with three adapters: a Poisson run whose every request must come back
# 200 with exactly the asked prompt tokens (the server's usage and its
# access log say so) and completion tokens, over the server's adapters;
# a burst far beyond the server's request slots, whose 429s must be
# recorded as aborted SLO misses; a trace with tenants replayed on the
# tenant path (the access log shows each request's tenant and adapter);
# the table command over both results.  The one idea to know: the test
# checks loadgen's records against what the server itself logged, not
# against loadgen's own summary.

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;
use File::Path qw(make_path remove_tree);

my $PORT = 18173;
my $ROOT = repo_root();
my $LOADGEN = "$ROOT/bench/loadgen";
my $OUT = "$ROOT/t/data/gen/loadgen-out";

# ---- the generator (Python) ----

{
    my ($rc, $out, $err) = run_cmd('python3',
                                   "$ROOT/t/python/test_loadgen.py");
    my ($line) = grep { /^\{"checks"/ } split /\n/, $out;
    my $res = defined $line ? json_decode_safe($line) : undef;
    ok($res && ref $res->{checks} eq 'ARRAY' && @{ $res->{checks} } >= 20,
       'test_loadgen.py ran and reported its checks')
        or diag("rc=$rc\n$err$out");
    for my $c (@{ $res ? $res->{checks} : [] }) {
        ok($c->[1], "generator: $c->[0]") or diag($c->[2]);
    }
    is($rc, 0, 'test_loadgen.py exit status 0');
}

{
    my ($rc, $out) = run_cmd($LOADGEN, '--help');
    is($rc, 0, 'loadgen --help: exit 0');
    like($out, qr/run.*gen.*table/s, '... lists run, gen and table');
    ($rc, $out) = run_cmd($LOADGEN, 'run', '--help');
    like($out, qr/--slo-ttft.*--rates.*--cv/s,
         'loadgen run --help: documents the options');
    my $err;
    ($rc, $out, $err) = run_cmd($LOADGEN, 'run', '--url',
                                'http://127.0.0.1:1', '--cv', '-1');
    isnt($rc, 0, 'a bad --cv is a usage error');
    like($err, qr/--cv.*must be > 0/, "... saying so: $err");
}

# ---- a server ----

remove_tree($OUT);
make_path($OUT);
my $model = tiny_model();
my $s = SloraTest::Server->new(name => 'loadgen', port => $PORT);
my $adir = $s->prefix . '/adapters';
my @adapters = make_adapters($adir, $model, [qw(ad0 ad1 ad2)], rank => 8);
$s->{http} = slora_http(
    model => $model, adapters => $adir,
    engine => 'threads=1 slots=24 max_running=4 max_ctx=1024 '
              . 'max_tokens=512',
    server_extra => tenant_location());
$s->start;
pass('server with adapters ad0, ad1, ad2 started');

sub loadgen {
    my ($name, @args) = @_;
    my ($rc, $out, $err) = run_cmd($LOADGEN, 'run', '--url',
                                   "http://127.0.0.1:$PORT",
                                   '--out', "$OUT/$name", '--label', $name,
                                   @args);
    my $doc;
    if (open(my $fh, '<', "$OUT/$name/results.json")) {
        local $/;
        $doc = json_decode_safe(<$fh>);
    }
    return ($rc, $out, $err, $doc);
}

sub log_lines {
    # access log lines of completions, from the line index on
    my ($from) = @_;
    my @l = grep { m{"POST [^"]*completions} } $s->access_log_lines;
    return @l[$from .. $#l];
}

# ---- 1. Poisson, over the server's adapters ----

my $seen = () = log_lines(0);
{
    my ($rc, $out, $err, $doc) = loadgen(
        'poisson', '-n', 3, '--alpha', '0.5', '--rate', 8,
        '--duration', 5, '--input-range', '8,64', '--output-range',
        '8,32', '--slo-ttft', 5);
    is($rc, 0, 'loadgen run (40 requests at 8 req/s): exit 0')
        or diag("$err$out");
    ok($doc, '... wrote results.json') or BAIL_OUT('no results');
    my $run = $doc->{runs}[0];
    my @r = @{ $run->{requests} };
    is(scalar @r, 40, '... 40 requests: floor(R * D)');
    is_deeply($doc->{config}{adapters_used}, \@adapters,
              '... over the adapters GET /v1/models lists');
    ok($doc->{config}{calibration}{exact},
       '... "Hello" counted as one token per word: '
       . json_encode($doc->{config}{calibration}{points}));
    is(scalar(grep { $_->{status} == 200 && $_->{outcome} eq 'ok' } @r), 40,
       '... every one 200 and ok');
    is(scalar(grep { $_->{usage_prompt_tokens} == $_->{prompt_tokens} } @r),
       40, '... each with exactly the asked prompt tokens (usage)');
    is(scalar(grep { $_->{usage_completion_tokens} == $_->{output_tokens}
                     && $_->{finish_reason} eq 'length' } @r),
       40, '... and the asked output tokens (max_tokens, finish length)');
    is(scalar(grep { $_->{ttft} > 0 && $_->{ttft} <= $_->{e2e}
                     && @{ $_->{itl} } > 0 } @r),
       40, '... TTFT > 0, <= end-to-end, inter-token latencies recorded');
    my %used = map { $_->{model} => 1 } @r;
    ok((grep { $used{$_} } @adapters) >= 2,
       '... the requests name the adapters: ' . join(',', sort keys %used));

    # what the server logged: prompt tokens and adapter per request
    my @l = log_lines($seen);
    is(scalar @l, 40 + 3, 'the server logged 40 requests and the 3 of '
                          . 'the calibration');
    my %want;
    $want{"$_->{model} $_->{prompt_tokens} $_->{output_tokens}"}++
        for @r;
    my %got;
    for (@l[3 .. $#l]) {
        $got{"$1 $2 $3"}++ if /a=(\S+) t=\S+ p=(\d+) c=(\d+)/;
    }
    is_deeply(\%got, \%want,
              '... each with the adapter, prompt and completion tokens '
              . 'loadgen asked for');

    my $sum = $run->{summary};
    is($sum->{ok}, 40, 'summary: 40 ok');
    is($sum->{attainment}, (grep { $_->{ttft} < 5 } @r) / 40,
       "... attainment = share with TTFT < SLO ($sum->{attainment})");
    like($out, qr/poisson\s+8\s+40\s+40\s+0\s+0\s/,
         '... printed as a table row');
    for my $png (qw(latency-cdf.png)) {
        my $f = "$OUT/poisson/$png";
        open(my $fh, '<:raw', $f);
        my $magic = '';
        read($fh, $magic, 8) if $fh;
        is($magic, "\x89PNG\r\n\x1a\n", "... wrote $png");
    }
    $seen += @l;
}

# ---- 2. a burst beyond the slots: 429s are aborted SLO misses ----

{
    my ($rc, $out, $err, $doc) = loadgen(
        'burst', '-n', 0, '--rate', 800, '--duration', '0.25', '--cv', 1,
        '--input-range', '8,16', '--output-range', '300,400',
        '--slo-ttft', 30, '--no-plots');
    is($rc, 0, 'loadgen burst (200 requests in 0.25 s, 24 slots): exit 0')
        or diag("$err$out");
    my @r = @{ $doc->{runs}[0]{requests} };
    my @t = grep { $_->{status} == 429 } @r;
    my @k = grep { $_->{status} == 200 } @r;
    cmp_ok(scalar @t, '>', 100, scalar(@t) . ' answers 429');
    is(scalar(@t) + scalar(@k), 200, '... the others 200');
    is(scalar(grep { $_->{outcome} eq 'aborted' && !$_->{slo_met}
                     && ($_->{error} // '') =~ /rate_limit/ } @t),
       scalar @t, '... each recorded as aborted, an SLO miss, with the '
                  . "server's error code");
    my $sum = $doc->{runs}[0]{summary};
    is($sum->{aborted_429}, scalar @t, '... counted in the summary');
    is($sum->{attainment}, (grep { $_->{slo_met} } @k) / 200,
       '... attainment over all 200 requests, 429s as misses: '
       . $sum->{attainment});
    is($sum->{ok}, scalar @k, '... its 200s counted in the summary');
    $seen = () = log_lines(0);
}

# ---- 3. a trace with tenants, on the tenant path ----

{
    my $trace = "$OUT/trace.csv";
    open(my $fh, '>', $trace) or die "$trace: $!";
    print $fh "arrival,tenant,adapter,prompt_tokens,output_tokens\n",
              "0.00,acme,ad1,12,5\n", "0.05,bob,ad2,20,6\n",
              "0.10,acme,,9,7\n", "0.20,carol,ad0,30,8\n";
    close $fh;
    my ($rc, $out, $err, $doc) = loadgen(
        'trace', '--trace', $trace, '--path', '/t/{tenant}/v1/completions',
        '--no-plots');
    is($rc, 0, 'loadgen replays a CSV trace on /t/{tenant}/v1/') or
        diag("$err$out");
    my @r = @{ $doc->{runs}[0]{requests} };
    is(scalar(grep { $_->{outcome} eq 'ok' } @r), 4, '... 4 requests ok');
    my @l = log_lines($seen);
    my @got = map { /a=(\S+) t=(\S+) p=(\d+) c=(\d+)/ ? "$2 $1 $3 $4" : $_ }
              @l[3 .. $#l];
    is_deeply([sort @got], [sort('acme ad1 12 5', 'bob ad2 20 6',
                                 'acme default 9 7', 'carol ad0 30 8')],
              '... the server saw each tenant, adapter ("default" when the '
              . 'row names none) and length')
        or diag(explain(\@l));
}

# ---- 4. the table over several results ----

{
    my ($rc, $out) = run_cmd($LOADGEN, 'table', "$OUT/poisson/results.json",
                             "$OUT/burst/results.json", '--markdown');
    is($rc, 0, 'loadgen table: exit 0');
    like($out, qr/\| poisson \| 8 \| 40 \| 40 \|.*\n\| burst \| 800 \| 200 \|/,
         '... one markdown row per run');
}

my @bad = $s->bad_log_lines;
is_deeply(\@bad, [], 'no alert or crit in the error log');
ok($s->stop->{graceful}, 'server stopped');

done_testing();
