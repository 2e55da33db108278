# config.t: `nginx -t` judges the module's directives without starting
# anything.
#
# Each bad configuration puts one bad directive on a line marked "# BAD";
# `nginx -t` must fail with an [emerg] that names the file and exactly that
# line.  A good configuration must pass.  The one idea to know: whether
# `nginx -t` spawned an engine is seen without trusting ps output of other
# people's servers: this test makes itself a child subreaper, so any
# process that `nginx -t` forked and left behind (alive or a zombie) is
# re-parented to it and shows up in `ps --ppid $$`.

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep);

my $PORT = 18106;
my %PRCTL = (x86_64 => 157, aarch64 => 167);
my $PR_SET_CHILD_SUBREAPER = 36;

my $arch = (POSIX::uname())[4];
my $nr = $PRCTL{$arch} // die "config.t: no prctl number for $arch\n";
is(syscall($nr, $PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0,
   'this test is a child subreaper');

my $model = tiny_model();
my $s = SloraTest::Server->new(name => 'config', port => $PORT);
my $ad = $s->prefix . '/adapters';
mkdir $ad;

sub children {
    my $out = `ps -o pid=,stat=,args= --ppid $$`;
    return grep { !/\bps -o\b/ } grep { /\S/ } split /\n/, $out;
}

# The same file by a path of some 1100 bytes ("./" over and over).
sub long_path {
    my ($path) = @_;
    my ($dir, $file) = $path =~ m{^(.*)/([^/]+)$};
    return "$dir/" . ('./' x 550) . $file;
}

sub reap {
    my $n = 0;
    $n++ while waitpid(-1, WNOHANG) > 0;
    return $n;
}

# Runs nginx -t on http text; returns (rc, output, line of "# BAD",
# children left behind).
sub try_conf {
    my ($http, %o) = @_;
    $s->{http} = $http;
    $s->{main} = $o{main};
    reap();
    my ($rc, $out) = $s->test_config;
    sleep(0.3);
    my @left = children();
    reap();
    my @lines = split /\n/, $s->config_text;
    my ($bad) = grep { $lines[$_ - 1] =~ /# BAD/ } 1 .. @lines;
    return ($rc, $out, $bad, \@left);
}

my $conf = $s->conf_path;
my $engine = "slora_engine model=$model device=cpu threads=1";

sub http_with {
    my (%o) = @_;
    my $e = $o{engine} // "    $engine;";
    my $loc = $o{loc} // '            slora_api openai;';
    my $adapters = $o{adapters} // "    slora_adapters dir=$ad;";
    my $http_extra = $o{http_extra} // '';
    return <<"EOF";
$e
$adapters
$http_extra
    server {
        listen 127.0.0.1:$PORT;
        location /v1/ {
$loc
        }
        location = /status {
            slora_status;
        }
        location = /metrics {
            slora_metrics;
        }
    }
EOF
}

# A good configuration: passes, and leaves no process behind.
{
    my ($rc, $out, undef, $left) = try_conf(http_with(
        http_extra => "    slora_chat_template chatml;\n",
        loc => "            slora_api openai;\n"
               . "            slora_deadline 30s;\n"
               . "            slora_tenant \$remote_addr;"));
    is($rc, 0, 'nginx -t passes on a good configuration') or diag($out);
    like($out, qr/syntax is ok/, '... syntax is ok');
    like($out, qr/test is successful/, '... test is successful');
    is(scalar @$left, 0, '... and spawns no process (no engine)')
        or diag(join("\n", @$left));
    unlike($s->error_log,
           qr/slora engine: (?:started|ready)|start slora engine/i,
           '... and logs no engine start');
}

# A random model with another model's tokenizer, on a GPU: nginx -t
# passes without loading either (the engine is not started by -t).
{
    my ($rc, $out, undef, $left) = try_conf(http_with(
        engine => "    slora_engine model=random:smollm2-135m,layers=2 "
                  . "tokenizer=$model device=cuda:0 tensor_parallel=2 "
                  . "cuda_lib=/nonexistent/libslora_cuda.so threads=1;"));
    is($rc, 0, 'nginx -t passes: random model, tokenizer=, device=cuda:0, '
               . 'tensor_parallel=2')
        or diag($out);
    is(scalar @$left, 0, '... and spawns no process')
        or diag(join("\n", @$left));
}

# The prefix cache is on or off; another value is refused, saying so.
for my $v (qw(on off)) {
    my ($rc, $out) = try_conf(http_with(
        engine => "    $engine prefix_cache=$v;"));
    is($rc, 0, "nginx -t passes with prefix_cache=$v") or diag($out);
}
{
    my ($rc, $out) = try_conf(http_with(
        engine => "    $engine prefix_cache=yes;  # BAD"));
    my $want = 'slora_engine: prefix_cache="yes" must be "on" or "off"';
    like($out, qr/\[emerg\] \Q$want\E/,
         'prefix_cache=yes: the [emerg] says it must be on or off');
}

# Speculation is lookup or off; another value is refused, saying so.
for my $v (qw(lookup off)) {
    my ($rc, $out) = try_conf(http_with(
        engine => "    $engine speculate=$v;"));
    is($rc, 0, "nginx -t passes with speculate=$v") or diag($out);
}
{
    my ($rc, $out) = try_conf(http_with(
        engine => "    $engine speculate=ngram;  # BAD"));
    my $want = 'slora_engine: speculate="ngram" must be "lookup" or "off"';
    like($out, qr/\[emerg\] \Q$want\E/,
         'speculate=ngram: the [emerg] says it must be lookup or off');
}
{
    my ($rc, $out) = try_conf(http_with(
        engine => "    $engine speculate=lookup speculate_requests=8;"));
    is($rc, 0, 'nginx -t passes with speculate_requests=8') or diag($out);
    ($rc, $out) = try_conf(http_with(
        engine => "    $engine pinned_max=25%;"));
    is($rc, 0, 'nginx -t passes with pinned_max=25%') or diag($out);
    ($rc, $out) = try_conf(http_with(
        engine => "    $engine speculate_requests=8;  # BAD"));
    my $want = 'slora_engine: speculate_requests= needs speculate=lookup';
    like($out, qr/\[emerg\] \Q$want\E/,
         'speculate_requests= without speculate=lookup: the [emerg] says so');
}

# The catalog's timeout is a time from 1ms to 60s; a bare number is
# seconds, so timeout=500 is over the bound, and the [emerg] says what
# the value may be.
{
    my $catalog = "    slora_catalog redis://127.0.0.1:9 roots=$ad";
    my ($rc, $out) = try_conf(http_with(
        http_extra => "$catalog timeout=500ms;"));
    is($rc, 0, 'nginx -t passes with slora_catalog timeout=500ms')
        or diag($out);
    ($rc, $out) = try_conf(http_with(
        http_extra => "$catalog timeout=500;  # BAD"));
    my $want = 'slora_catalog: timeout="500" must be a time from 1ms to'
               . ' 60s';
    like($out, qr/\[emerg\] \Q$want\E.* in \Q$conf\E:\d+/,
         'timeout=500 (seconds): the [emerg] says what it may be');
}

# registry= keeps the folder catalog's run-time registrations; beside
# slora_catalog (Redis keeps them) it is refused, the [emerg] saying why.
{
    my ($rc, $out) = try_conf(http_with(
        adapters => "    slora_adapters dir=$ad registry=state/kept.json;"));
    is($rc, 0, 'nginx -t passes with slora_adapters registry=') or diag($out);
    ($rc, $out) = try_conf(http_with(
        adapters => "    slora_adapters dir=$ad registry=/tmp/kept.json;",
        http_extra => "    slora_catalog redis://127.0.0.1:9 roots=$ad;"));
    isnt($rc, 0, 'nginx -t fails with registry= beside slora_catalog');
    like($out, qr/\[emerg\] slora_adapters: registry= keeps the folder/,
         '... the [emerg] says Redis keeps them');
}

# slots= is 1 to 4096, the most requests the engine lets wait: 4096
# passes, and 5000 of a zone small enough for the memory check (a short
# max_ctx) is refused at its line, the [emerg] naming the bound.
{
    my $small = 'max_ctx=256 max_tokens=128';
    my ($rc, $out) = try_conf(http_with(
        engine => "    $engine slots=4096 $small;"));
    is($rc, 0, 'nginx -t passes with slots=4096') or diag($out);
    ($rc, $out, my $line) = try_conf(http_with(
        engine => "    $engine slots=5000 $small;  # BAD"));
    isnt($rc, 0, 'nginx -t fails with slots=5000');
    my $want = 'slora_engine: slots="5000" must be from 1 to 4096';
    like($out, qr/\[emerg\] \Q$want\E in \Q$conf\E:$line\b/,
         '... the [emerg] names the bound and the line');
}

# The response store with a share for each tenant.
{
    my ($rc, $out) = try_conf(http_with(
        http_extra => "    slora_responses_store 1m tenant=64k;"));
    is($rc, 0, 'nginx -t passes with slora_responses_store 1m tenant=64k')
        or diag($out);
    ($rc, $out) = try_conf(http_with(
        http_extra => "    slora_responses_store 1m tenant=2m;  # BAD"));
    my $want = 'slora_responses_store tenant="2m": a size from';
    like($out, qr/\[emerg\] \Q$want\E \d+ to the store's/,
         'tenant= over the store: the [emerg] says what it may be');
}

# Bad values, one per configuration.
my @bad = (
    ['threads=abc', engine => "    $engine threads=abc;  # BAD"],
    ['threads=1025 (more than a thread pool may have)',
     engine => "    $engine threads=1025;  # BAD"],
    ['pool=lots', engine => "    $engine pool=lots;  # BAD"],
    ['unknown parameter', engine => "    $engine bogus=1;  # BAD"],
    ['no model=', engine => "    slora_engine device=cpu threads=1;  # BAD"],
    ['max_batch_tokens=0', engine => "    $engine max_batch_tokens=0;  # BAD"],
    ['speculate_requests=0',
     engine => "    $engine speculate=lookup speculate_requests=0;  # BAD"],
    ['max_running=-1', engine => "    $engine max_running=-1;  # BAD"],
    ['slots=0', engine => "    $engine slots=0;  # BAD"],
    ['max_ctx=abc', engine => "    $engine max_ctx=abc;  # BAD"],
    ['device=tpu', engine => "    $engine device=tpu;  # BAD"],
    ['device=cuda:x', engine => "    $engine device=cuda:x;  # BAD"],
    ['tensor_parallel=0', engine => "    $engine tensor_parallel=0;  # BAD"],
    ['tensor_parallel=65',
     engine => "    $engine tensor_parallel=65;  # BAD"],
    ['tensor_parallel=2 on the CPU',
     engine => "    $engine tensor_parallel=2;  # BAD"],
    ['a random model without tokenizer=',
     engine => "    slora_engine model=random:llama-7b threads=1;  # BAD"],
    ['tokenizer= that is no model',
     engine => "    $engine tokenizer=/nonexistent.gguf;  # BAD"],
    ['weights=q4', engine => "    $engine weights=q4;  # BAD"],
    ['model= by a path of 1024 bytes or more (the engine takes 1023)',
     engine => '    slora_engine model=' . long_path($model)
               . ' threads=1;  # BAD'],
    ['pinned_max=0%', engine => "    $engine pinned_max=0%;  # BAD"],
    ['pinned_max=101%', engine => "    $engine pinned_max=101%;  # BAD"],
    ['pinned_max=50 (no %)', engine => "    $engine pinned_max=50;  # BAD"],
    ['prefix_cache=yes', engine => "    $engine prefix_cache=yes;  # BAD"],
    ['prefix_cache=', engine => "    $engine prefix_cache=;  # BAD"],
    ['duplicate slora_engine',
     engine => "    $engine;\n    $engine;  # BAD"],
    ['slora_adapters without dir=',
     adapters => "    slora_adapters host_cache=1g;  # BAD"],
    ['slora_adapters host_cache=big',
     adapters => "    slora_adapters dir=$ad host_cache=big;  # BAD"],
    ['slora_adapters prefetch_threads=0',
     adapters => "    slora_adapters dir=$ad prefetch_threads=0;  # BAD"],
    ['slora_adapters registry= (no file)',
     adapters => "    slora_adapters dir=$ad registry=;  # BAD"],
    ['slora_adapters prefetch_threads=17',
     adapters => "    slora_adapters dir=$ad prefetch_threads=17;  # BAD"],
    ['slots=4097 (more than the engine lets wait)',
     engine => "    $engine slots=4097 max_ctx=256;  # BAD"],
    ['slots=4096 max_ctx=1000000 (a zone past half the memory)',
     engine => "    $engine slots=4096 max_ctx=1000000"
               . " max_tokens=1000000;  # BAD"],
    ['slora_adapters dir= of 1200 bytes',
     adapters => '    slora_adapters dir=' . ('/adapters' x 134)
                 . ';  # BAD'],
    ['slora_api grpc', loc => "            slora_api grpc;  # BAD"],
    ['slora_chat_template nosuch',
     http_extra => "    slora_chat_template nosuch;  # BAD"],
    ['slora_deadline never',
     loc => "            slora_api openai;\n"
            . "            slora_deadline never;  # BAD"],
    ['slora_deadline 0 (every request would fail at once)',
     loc => "            slora_api openai;\n"
            . "            slora_deadline 0;  # BAD"],
    ['slora_status in http{}', http_extra => "    slora_status;  # BAD"],
    ['slora_status beside slora_api in one location',
     loc => "            slora_api openai;\n"
            . "            slora_status;  # BAD"],
    ['slora_health twice in one location',
     loc => "            slora_health;\n"
            . "            slora_health;  # BAD"],
    ['slora_admin after proxy_pass in one location',
     loc => "            proxy_pass http://127.0.0.1:9;\n"
            . "            slora_admin;  # BAD"],
    ['slora_responses_store 16k (under 32k)',
     http_extra => "    slora_responses_store 16k;  # BAD"],
    ['slora_responses_store tenant=lots',
     http_extra => "    slora_responses_store 1m tenant=lots;  # BAD"],
    ['slora_responses_store tenant= over the store',
     http_extra => "    slora_responses_store 1m tenant=2m;  # BAD"],
    ['slora_responses_store share=64k',
     http_extra => "    slora_responses_store 1m share=64k;  # BAD"],
    ['slora_responses_store lots',
     http_extra => "    slora_responses_store lots;  # BAD"],
    ['duplicate slora_responses_store',
     http_extra => "    slora_responses_store 1m;\n"
                   . "    slora_responses_store 1m;  # BAD"],
    ['slora_responses_store in a location',
     loc => "            slora_api openai;\n"
            . "            slora_responses_store 1m;  # BAD"],
    ['slora_engine in a location',
     loc => "            slora_api openai;\n"
            . "            slora_engine model=$model;  # BAD"],
);

for my $b (@bad) {
    my ($name, %o) = @$b;
    my ($rc, $out, $line, $left) = try_conf(http_with(%o));
    isnt($rc, 0, "nginx -t fails: $name");
    ok(defined $line, '... the case marks its bad line') or next;
    like($out, qr/\[emerg\].* in \Q$conf\E:$line\b/,
         "... [emerg] names $conf:$line") or diag($out);
    is(scalar @$left, 0, '... and spawns nothing')
        or diag(join("\n", @$left));
}

# The engine must not appear even for a good config with the master
# process model: ps shows no "slora engine" below this test.
is(scalar(grep { /slora/ } children()), 0, 'no slora process under us');

done_testing();
