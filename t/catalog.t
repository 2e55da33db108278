# catalog.t: the adapter catalog in Redis behind a real nginx: tenant
# routing, the admin endpoints (adapter operations, the prefix cache's
# flush), 200+ adapters under a Poisson stream with power-law
# popularity, Redis and adapter-file faults, and path confinement.
#
# A redis-server is started by the test on a loopback port (a failed
# start fails the test) and stopped by pid.  Adapters are generated with
# `slora mkadapter` for the tiny model (SmolLM2's real tokenizer) and
# registered with `slora catalog register`; tenants are set with `slora
# catalog tenant`, which publishes the change on slora:events.  The
# reference for every adapter's answer is the same folder served by a
# second nginx whose catalog is the adapter directory, greedy.

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;
use File::Copy qw(copy);
use File::Path qw(make_path remove_tree);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

my $PORT = 18107;
my $REF_PORT = 18108;
my $REDIS_PORT = 18117;
my $N_ADAPTERS = 210;
my $HOST_CACHE = 1024 * 1024;
my $ROOT = repo_root();

my $model = tiny_model();
my $gen = "$ROOT/t/data/gen";

# The adapters, made once and reused (a marker says the set is whole).
my $adir = "$gen/catalog-adapters-r8-$N_ADAPTERS";
my @names = map { sprintf('a%03d', $_) } 0 .. $N_ADAPTERS - 1;
if (!-f "$adir/.complete") {
    remove_tree($adir);
    make_adapters($adir, $model, \@names, rank => 8);
    open(my $fh, '>', "$adir/.complete") or die "$adir: $!";
    close $fh;
}

# Adapters this test breaks, and a folder outside the roots.
my $work = "$gen/catalog-work";
remove_tree($work);
make_path("$work/root", "$work/outside");
for my $n (qw(gone1 corrupt1)) {
    make_path("$work/root/$n");
    copy("$adir/a000/$_", "$work/root/$n/$_") or die "copy: $!"
        for qw(adapter_config.json adapter_model.safetensors);
}
make_path("$work/outside/evil");
copy("$adir/a001/$_", "$work/outside/evil/$_") or die "copy: $!"
    for qw(adapter_config.json adapter_model.safetensors);
symlink("$work/outside/evil", "$work/root/link")
    or die "symlink: $!";

my $URL = "redis://127.0.0.1:$REDIS_PORT";

sub catalog {
    my (@args) = @_;
    my ($rc, $out, $err) = run_cmd(slora_bin(), 'catalog', '--redis', $URL,
                                   @args);
    diag("slora catalog @args: rc=$rc $err$out") if $rc != 0;
    return $rc == 0;
}

sub rcli {
    my ($rc, $out, $err) = run_cmd('redis-cli', '-p', $REDIS_PORT, @_);
    return $rc == 0 ? $out : undef;
}

sub register_all {
    my (%o) = @_;
    return catalog('register', $adir)
        && ($o{broken_ok} || catalog('register', "$work/root"))
        && catalog('tenant', 'acme', '--default', 'a000',
                   '--allow', 'a000,a001')
        && catalog('tenant', 'beta', '--default', 'a002', '--allow', '*');
}

ok(start_redis($REDIS_PORT, "$work/redis"),
   "redis-server started on 127.0.0.1:$REDIS_PORT")
    or BAIL_OUT('cannot start redis-server');
ok(register_all(), "$N_ADAPTERS adapters and two tenants registered");

my $PROMPT = 'Name a colour.';
my $MAX = 6;

sub ask {
    my ($port, $prefix, $model_name, %o) = @_;
    my %b = (messages => [{ role => 'user',
                            content => $o{prompt} // $PROMPT }],
             temperature => 0, max_tokens => $o{max_tokens} // $MAX);
    $b{model} = $model_name if defined $model_name;
    $b{stream} = JSON::PP::true() if $o{stream};
    $b{n} = $o{n} if $o{n};
    return json_req($port, "$prefix/chat/completions", \%b,
                    timeout => $o{timeout} // 60);
}

sub text_of {
    my ($res) = @_;
    return undef unless $res->{status} == 200 && ref $res->{json} eq 'HASH';
    return $res->{json}{choices}[0]{message}{content};
}

# ---- the reference: the folder catalog ----

my %ref;
my @sample = qw(a000 a001 a002 a005 a017 a042 a099 a150 a209);
{
    my $r = SloraTest::Server->new(name => 'catalog-ref', port => $REF_PORT);
    $r->{http} = slora_http(model => $model, adapters => $adir,
                            engine => 'threads=1 slots=16 max_running=8 '
                                      . 'max_ctx=256 max_tokens=32');
    $r->start;
    for my $n (@sample, 'base') {
        $ref{$n} = text_of(ask($REF_PORT, '/v1', $n));
    }
    my $st = $r->stop;
    ok($st->{graceful}, 'reference server (folder catalog) stopped');
}
is(scalar(grep { defined } values %ref), @sample + 1,
   'the folder catalog answers every sampled adapter and the base model')
    or BAIL_OUT('no reference texts to compare the Redis catalog with');
# every comparison below tells one adapter from another only if their
# texts differ
my %distinct = map { ($_ // '') => 1 } values %ref;
is(scalar keys %distinct, @sample + 1,
   'each sampled adapter gives a text of its own, none the base model\'s')
    or BAIL_OUT('sampled adapters share a text: pick other seeds');

# ---- the server with the catalog in Redis ----

my $s = SloraTest::Server->new(name => 'catalog', port => $PORT);
$s->{http} = slora_http(
    model => $model,
    engine => 'threads=1 slots=64 max_running=16 max_ctx=256 max_tokens=32 '
              . 'pool=1m',
    http_extra => "    slora_adapters dir=$adir host_cache=$HOST_CACHE;\n"
                  . "    slora_catalog $URL roots=$adir,$work/root"
                  . " timeout=300ms;\n",
    server_extra => tenant_location() . <<'EOF');

        location /admin/ {
            slora_admin;
            allow 127.0.0.1;
            deny all;
        }

        location /admin2/ {
            slora_admin;
            allow 127.0.0.2;
            deny all;
        }
EOF
$s->start;
pass('nginx with slora_catalog started, engine ready');

# ---- 1. routing ----

{
    my $res = ask($PORT, '/v1', 'a042');
    is(text_of($res), $ref{a042},
       'an adapter named in model resolves through Redis (= folder catalog)');

    $res = ask($PORT, '/t/acme/v1', undef);
    is(text_of($res), $ref{a000},
       'tenant acme without model gets its default a000');
    $res = ask($PORT, '/t/acme/v1', 'default');
    is(text_of($res), $ref{a000}, '... and with model "default"');
    $res = ask($PORT, '/t/acme/v1', 'a001');
    is(text_of($res), $ref{a001}, 'tenant acme may use a001');
    $res = ask($PORT, '/t/beta/v1', 'a150');
    is(text_of($res), $ref{a150}, 'tenant beta ("*") may use a150');

    $res = ask($PORT, '/t/acme/v1', 'a005');
    is($res->{status}, 403, 'acme asking for a005 (not allowed): 403');
    is_deeply([check_error_object($res->{json})], [], '... OpenAI error body');
    is($res->{json}{error}{type}, 'permission_error',
       '... type permission_error');
    is($res->{json}{error}{code}, 'adapter_not_allowed',
       '... code adapter_not_allowed');
    like($res->{json}{error}{message}, qr/a005.*not allowed.*acme/,
         '... the engine\'s message: ' . ($res->{json}{error}{message} // ''));

    $res = ask($PORT, '/t/acme/v1', 'a005', stream => 1);
    is($res->{status}, 403,
       'the same as a stream: 403 too (the header waits for the engine)');
    like($res->{headers}{'content-type'} // '', qr{application/json},
         '... with a JSON body, not an event stream');

    $res = ask($PORT, '/t/nobody/v1', undef);
    is($res->{status}, 403, 'an unknown tenant: 403');
    is($res->{json}{error}{code}, 'unknown_tenant', '... code unknown_tenant');
    like($res->{json}{error}{message}, qr/unknown tenant.*nobody/,
         '... message: ' . ($res->{json}{error}{message} // ''));

    $res = ask($PORT, '/v1', 'zz-none');
    is($res->{status}, 404, 'an adapter Redis does not know: 404');
    is($res->{json}{error}{code}, 'model_not_found',
       '... model_not_found');

    # a stream that works still streams
    my $st = stream_start($PORT, 'POST', '/t/acme/v1/chat/completions',
        body => json_encode({ messages => [{ role => 'user',
                                             content => $PROMPT }],
                              temperature => 0, max_tokens => $MAX,
                              stream => JSON::PP::true() }),
        headers => { 'Content-Type' => 'application/json' });
    $st->wait_done(30);
    my ($bad, $sum) = $st->sse_check('chat');
    is($st->{status}, 200, 'a tenant stream: 200');
    is_deeply($bad, [], '... well-formed events');
    is($sum->{text}, $ref{a000}, '... the default adapter\'s text');

    $res = http_req($PORT, 'GET', '/t/acme/v1/models');
    my @ids = map { $_->{id} } @{ $res->{json}{data} // [] };
    is_deeply(\@ids, [qw(a000 a001)], 'GET /t/acme/v1/models: a000, a001');
    my ($d) = grep { $_->{default} } @{ $res->{json}{data} // [] };
    is($d && $d->{id}, 'a000', '... a000 marked as the default');
    $res = http_req($PORT, 'GET', '/t/nobody/v1/models');
    is($res->{status}, 403, 'models of an unknown tenant: 403');

    # the default changes in Redis: no reload; the change event, not the
    # cache's expiry, brings it
    my $inv0 = $s->status->{catalog}{invalidations};
    ok(catalog('tenant', 'acme', '--default', 'a001'),
       'acme\'s default set to a001 (slora catalog tenant)');
    my $seen = wait_for(5, sub {
        my $t = text_of(ask($PORT, '/t/acme/v1', undef));
        return defined $t && $t eq $ref{a001};
    });
    ok($seen, 'the new default serves acme');
    cmp_ok($s->status->{catalog}{invalidations}, '>', $inv0,
           '... through a change event (status: catalog invalidations)');
}

# ---- a tenant's rate (slora catalog tenant --rate), and the base model
# under tenants: a tenant without a default adapter may ask for it by
# name, one with a default may not ----

{
    my $res = ask($PORT, '/t/acme/v1', 'base');
    is($res->{status}, 403, 'acme (default a001) asking for "base": 403');
    is($res->{json}{error}{code}, 'adapter_not_allowed',
       '... adapter_not_allowed');
    like($res->{json}{error}{message},
         qr/base model is not allowed for tenant acme/,
         '... ' . ($res->{json}{error}{message} // ''));

    # a rate of one request in five seconds: a bucket of one
    ok(catalog('tenant', 'slow', '--allow', 'a005', '--rate', '0.2')
       && catalog('tenant', 'slow3', '--allow', 'a005', '--rate', '0.2'),
       'tenants slow and slow3: 0.2 requests a second, no default');
    my $l0 = $s->status->{requests}{rate_limited} // -1;
    $res = ask($PORT, '/t/slow/v1', 'base');
    is(text_of($res), $ref{base},
       'slow\'s first request, for "base": the base model\'s text');
    $res = http_req($PORT, 'GET', '/t/slow/v1/models');
    my @ids = map { $_->{id} . ($_->{default} ? '*' : '') }
              @{ $res->{json}{data} // [] };
    is_deeply(\@ids, [qw(base* a005)],
              'GET /t/slow/v1/models: base, its default, then a005');
    is(http_req($PORT, 'GET', '/t/slow/v1/models/base')->{json}{id}, 'base',
       'GET /t/slow/v1/models/base: the base model\'s object');
    is(http_req($PORT, 'GET', '/t/acme/v1/models/base')->{status}, 404,
       '... which acme (a default adapter) does not list: 404');

    $res = ask($PORT, '/t/slow/v1', 'a005');
    is($res->{status}, 429, 'its second at once: 429');
    is_deeply([check_error_object($res->{json})], [], '... OpenAI error body');
    is($res->{json}{error}{type}, 'rate_limit_error',
       '... type rate_limit_error');
    is($res->{json}{error}{code}, 'rate_limit_exceeded',
       '... code rate_limit_exceeded');
    like($res->{json}{error}{message},
         qr{tenant slow is over its rate \(0\.2 requests/s\)},
         '... the engine\'s message: ' . ($res->{json}{error}{message} // ''));
    my $after = $res->{headers}{'retry-after'} // '';
    ok($after =~ /^\d+$/ && $after >= 1 && $after <= 5,
       "... Retry-After within the rate's 5 s: '$after'");
    $res = ask($PORT, '/t/slow/v1', 'a005', stream => 1);
    is($res->{status}, 429, 'as a stream: 429 too');
    like($res->{headers}{'content-type'} // '', qr{application/json},
         '... with a JSON body');

    $res = ask($PORT, '/t/slow3/v1', 'a005', n => 3);
    is($res->{status}, 200, 'n = 3 under a bucket of one: one request, 200');
    is(scalar @{ ref $res->{json}{choices} eq 'ARRAY'
                 ? $res->{json}{choices} : [] }, 3, '... with 3 choices');
    is(ask($PORT, '/t/slow3/v1', 'a005')->{status}, 429,
       '... and it spent the bucket: the next 429');

    my $l1 = wait_for(5, sub {
        my $x = $s->status or return 0;
        my $n = $x->{requests}{rate_limited} // -1;
        return $n == $l0 + 3 ? $n : 0;
    });
    is($l1, $l0 + 3, 'status: requests.rate_limited counts the three');
    my $m = http_req($PORT, 'GET', '/metrics')->{body} // '';
    my ($rl) = $m =~ /^slora_rate_limited_total (\d+)$/m;
    is($rl, $l0 + 3, '... as slora_rate_limited_total does');

    # a rate no engine would read is refused by the tool, not written
    my ($rc, $out, $err) = run_cmd(slora_bin(), 'catalog', '--redis', $URL,
                                   'tenant', 'slow', '--rate', 'inf');
    ok($rc != 0 && $err =~ /--rate wants a number >= 0/,
       "slora catalog tenant --rate inf: refused: $err");
    is(rcli('HGET', 'slora:tenant:slow', 'rate'), "0.2\n",
       '... slow keeps its rate of 0.2');
}

# ---- an idle engine sleeps, though the catalog's thread writes its wake
# fd (invalidations, hints): CPU time over 1.5 s idle ----

{
    my $pid = $s->engine_pid;
    my $cpu = sub {
        open(my $fh, '<', "/proc/$pid/stat") or return undef;
        my $l = <$fh>;
        close $fh;
        my @f = split ' ', ($l =~ /\) (.*)/)[0];
        return ($f[11] + $f[12]) / POSIX::sysconf(POSIX::_SC_CLK_TCK());
    };
    ok(catalog('tenant', 'beta', '--default', 'a002', '--allow', '*'),
       'a change is published while nothing runs');
    sleep(0.2);
    my $c0 = $cpu->();
    sleep(1.5);
    my $c1 = $cpu->();
    ok(defined $c0 && defined $c1 && $c1 - $c0 < 0.3,
       sprintf('the idle engine used %.2f s of CPU in 1.5 s',
               ($c1 // 0) - ($c0 // 0)));
}

# ---- admin ----

{
    my $res = http_req($PORT, 'POST', '/admin/adapters/a017/pin');
    is($res->{status}, 200, 'POST /admin/adapters/a017/pin: 200');
    $res = http_req($PORT, 'GET', '/admin/adapters');
    is($res->{status}, 200, 'GET /admin/adapters: 200');
    my %by = map { $_->{name} => $_ } @{ $res->{json}{data} // [] };
    my $a = $by{a017} // {};
    ok($a->{pinned} && $a->{tier} eq 'pool',
       'a017 is pinned and in the pool');
    ok(defined $a->{rank} && $a->{rank} == 8 && $a->{pool_pages} > 0
       && defined $a->{host_bytes} && ($a->{refs} // -1) == 1,
       '... with rank 8, pool pages, host bytes, held once (its pin)')
        or diag(json_encode($a));
    $res = http_req($PORT, 'POST', '/admin/adapters/a017/unload');
    is($res->{status}, 409, 'unloading a pinned adapter: 409');
    $res = http_req($PORT, 'POST', '/admin/adapters/a017/unpin');
    is($res->{status}, 200, 'unpin: 200');
    $res = http_req($PORT, 'POST', '/admin/adapters/a017/unload');
    is($res->{status}, 200, 'unload: 200');
    $res = http_req($PORT, 'GET', '/admin/adapters');
    %by = map { $_->{name} => $_ } @{ $res->{json}{data} // [] };
    is($by{a017} && $by{a017}{tier}, 'disk', '... a017 back on disk');
    $res = http_req($PORT, 'POST', '/admin/adapters/a018/load');
    is($res->{status}, 200, 'load a018: 200');
    $res = http_req($PORT, 'GET', '/admin/adapters');
    %by = map { $_->{name} => $_ } @{ $res->{json}{data} // [] };
    is($by{a018} && $by{a018}{tier}, 'pool', '... a018 in the pool');
    $res = http_req($PORT, 'POST', '/admin/adapters/zz-none/load');
    is($res->{status}, 404, 'load of an unknown adapter: 404');
    $res = http_req($PORT, 'GET', '/admin/adapters/a018/load');
    is($res->{status}, 405, 'GET on an operation: 405');

    # vLLM's runtime registration writes to Redis with a catalog there
    my $v = "$work/root/.v";
    for my $n (qw(a005 a099)) {
        make_path("$v/$n");
        copy("$adir/$n/$_", "$v/$n/$_") or die "copy: $!"
            for qw(adapter_config.json adapter_model.safetensors);
    }
    $res = json_req($PORT, '/admin/load_lora_adapter',
                    { lora_name => 'zz-new', lora_path => "$v/a005" });
    is("$res->{status} $res->{body}",
       "200 Success: LoRA adapter 'zz-new' added successfully.",
       'load_lora_adapter with Redis as the catalog: 200');
    like(rcli('HGET', 'slora:adapter:zz-new', 'path') // '',
         qr{^\Q$v\E/a005$}m, '... written to Redis, its path');
    like(rcli('HGET', 'slora:adapter:zz-new', 'sha256') // '',
         qr/^[0-9a-f]{64}$/m, '... and its weights\' sha256');
    is(text_of(ask($PORT, '/v1', 'zz-new')), $ref{a005},
       'zz-new served with a005\'s weights');
    $res = json_req($PORT, '/admin/load_lora_adapter',
                    { lora_name => 'zz-new', lora_path => "$v/a099" });
    is("$res->{status} " . ($res->{json}{error}{message} // ''),
       "400 The lora adapter 'zz-new' has already been loaded.",
       'zz-new again: 400');
    $res = json_req($PORT, '/admin/load_lora_adapter',
                    { lora_name => 'zz-new', lora_path => "$v/a099",
                      load_inplace => JSON::PP::true });
    is($res->{status}, 200, 'load_inplace: 200');
    is(text_of(ask($PORT, '/v1', 'zz-new')), $ref{a099},
       'zz-new served with a099\'s weights now');
    $res = json_req($PORT, '/admin/load_lora_adapter',
                    { lora_name => 'zz-out',
                      lora_path => "$work/outside/evil" });
    like("$res->{status} " . ($res->{json}{error}{message} // ''),
         qr/^400 .*outside the adapter roots/, 'a folder outside the roots:'
         . ' 400');
    is(rcli('EXISTS', 'slora:adapter:zz-out') // '', "0\n",
       '... nothing written to Redis');
    $res = json_req($PORT, '/admin/unload_lora_adapter',
                    { lora_name => 'zz-new' });
    is("$res->{status} $res->{body}",
       "200 Success: LoRA adapter 'zz-new' removed successfully.",
       'unload_lora_adapter: 200');
    is(rcli('EXISTS', 'slora:adapter:zz-new') // '', "0\n",
       '... removed from Redis');
    is(ask($PORT, '/v1', 'zz-new')->{status}, 404, '... zz-new unknown');
    $res = json_req($PORT, '/admin/unload_lora_adapter',
                    { lora_name => 'zz-none' });
    is("$res->{status} " . ($res->{json}{error}{message} // ''),
       "404 The lora adapter 'zz-none' cannot be found.",
       'unloading an adapter Redis never held: 404');

    # a name this engine never looked up, written by another writer:
    # the unload looks it up, then removes it
    make_path("$work/root/.cli/zz-cli");
    copy("$adir/a005/$_", "$work/root/.cli/zz-cli/$_") or die "copy: $!"
        for qw(adapter_config.json adapter_model.safetensors);
    ok(catalog('register', "$work/root/.cli"), 'zz-cli registered by '
       . 'bin/slora catalog');
    $res = json_req($PORT, '/admin/unload_lora_adapter',
                    { lora_name => 'zz-cli' });
    is("$res->{status} $res->{body}",
       "200 Success: LoRA adapter 'zz-cli' removed successfully.",
       'unload_lora_adapter of a name the engine never looked up: 200');
    is(rcli('EXISTS', 'slora:adapter:zz-cli') // '', "0\n",
       '... removed from Redis');

    # registrations at once: each waits for the write before it, in
    # whatever slots the workers gave them
    my @names = map { "zz-c$_" } 1 .. 6;
    my @st = map {
        stream_start($PORT, 'POST', '/admin/load_lora_adapter',
                     body => json_encode({ lora_name => $_,
                                           lora_path => "$v/a005" }),
                     headers => { 'Content-Type' => 'application/json' })
    } @names;
    run_streams(\@st, 60);
    is(join(' ', map { $_->result->{status} } @st), join(' ', (200) x 6),
       'six registrations at once: each 200');
    is(join(' ', map { rcli('EXISTS', "slora:adapter:$_") =~ s/\s+//r }
                 @names),
       join(' ', (1) x 6), '... each written to Redis');
    is(text_of(ask($PORT, '/v1', 'zz-c6')), $ref{a005},
       '... the last served with its folder\'s weights');
    is(join(' ', map { json_req($PORT, '/admin/unload_lora_adapter',
                                { lora_name => $_ })->{status} } @names),
       join(' ', (200) x 6), '... and each unloaded');
}

# ---- admin: pins hold at most pinned_max (50%) of the pool ----

{
    my $m = http_req($PORT, 'GET', '/metrics')->{body} // '';
    my $total = 0;
    $total += $1 while $m =~ /^slora_pool_pages\{kind="\w+"\} (\d+)$/mg;
    my (@pinned, $refused);
    for my $n (map { sprintf 'a%03d', $_ } 100 .. 163) {
        my $res = http_req($PORT, 'POST', "/admin/adapters/$n/pin");
        if ($res->{status} == 200) {
            push @pinned, $n;
            next;
        }
        $refused = [$n, $res];
        last;
    }
    my %by = map { $_->{name} => $_ }
             @{ http_req($PORT, 'GET', '/admin/adapters')->{json}{data} // [] };
    my $held = 0;
    $held += $by{$_}{pool_pages} // 0 for @pinned;
    ok($refused && $refused->[1]{status} == 409
       && ($refused->[1]{body} // '') =~ /pinned_max/,
       "pins past the cap refused: 409 naming pinned_max")
        or diag($refused ? $refused->[1]{body} : 'no pin refused');
    ok($total > 0 && @pinned >= 1 && $held <= $total / 2,
       "... after " . scalar(@pinned) . " pins holding $held of $total "
       . 'pages, at most half');
    for my $n (@pinned) {
        is(http_req($PORT, 'POST', "/admin/adapters/$n/unpin")->{status},
           200, "unpin $n");
    }
    %by = map { $_->{name} => $_ }
          @{ http_req($PORT, 'GET', '/admin/adapters')->{json}{data} // [] };
    is(scalar(grep { $by{$_}{pinned} } @pinned), 0, '... none pinned now');
}

# ---- admin: the prefix cache's flush ----
# A greedy chat whose system message fills several KV pages (some 150
# tokens; a page holds 8 at least), twice: the second takes pages of it
# from the prefix cache. POST <loc>prefix_cache/flush returns every kept
# page to the pool at once, so the status, asked right after its answer,
# shows none kept and none indexed; the same chat then finds nothing and
# computes the same text whole, and the one after it finds pages again.

{
    my $SYSTEM = 'Quillon Point museum notes. The lighthouse at Quillon '
        . 'Point was built in 1871 from granite quarried on the island, '
        . 'and its first keeper, Agnes Marrow, kept a log of every ship '
        . 'that passed for thirty-two years. The lens is a second-order '
        . 'Fresnel lens made in Paris; it turned on a bath of mercury and '
        . 'was wound by hand every four hours. In 1923 the light was '
        . 'electrified, and in 1968 the last keeper left. The museum now '
        . 'holds the keepers\' logs, a collection of brass instruments, '
        . 'charts of the reefs to the north, and the foghorn, which '
        . 'visitors may sound at noon on Sundays. When visitors ask a '
        . 'question, answer in one short sentence, plainly, using only '
        . 'these notes.';
    my $chat = sub {
        my $r = json_req($PORT, '/v1/chat/completions',
            { model => 'base', temperature => 0, max_tokens => $MAX,
              messages => [{ role => 'system', content => $SYSTEM },
                           { role => 'user',
                             content => 'When was the lighthouse built?' }]
            }, timeout => 60);
        my $j = ref $r->{json} eq 'HASH' ? $r->{json} : {};
        my $u = ref $j->{usage} eq 'HASH' ? $j->{usage} : {};
        my $d = ref $u->{prompt_tokens_details} eq 'HASH'
                ? $u->{prompt_tokens_details} : {};
        return { status => $r->{status}, body => $r->{body},
                 text => text_of($r), prompt => $u->{prompt_tokens} // -1,
                 cached => $d->{cached_tokens} };
    };
    my $show = sub {
        my ($r) = @_;
        return "$r->{status}: " . substr($r->{body} // '', 0, 300);
    };
    my $idle = sub {
        return wait_for(5, sub {
            my $x = $s->status or return 0;
            return $x->{requests}{running} == 0 ? $x : 0;
        }) // {};
    };

    my $one = $chat->();
    my $two = $chat->();
    ok($one->{status} == 200 && $one->{prompt} > 100
       && defined $one->{text},
       "a long greedy chat ($one->{prompt} prompt tokens): 200")
        or diag($show->($one));
    ok($two->{status} == 200 && ($two->{cached} // 0) > 0
       && $two->{cached} < $two->{prompt}
       && ($two->{text} // '') eq ($one->{text} // ''),
       'the same chat again: cached_tokens ' . ($two->{cached} // 'undef')
       . ', the same text') or diag($show->($two));

    my $st = $idle->();
    my $kept = $st->{pool}{pages_cached} // 0;
    ok($kept > 0 && ($st->{prefix_cache}{pages} // 0) > 0,
       "idle, the prefix cache keeps $kept pages no request holds")
        or diag(json_encode([$st->{pool}, $st->{prefix_cache}]));
    my $free = $st->{pool}{pages_free} // 0;

    my $res = http_req($PORT, 'POST', '/admin/prefix_cache/flush');
    is($res->{status}, 200, 'POST /admin/prefix_cache/flush: 200')
        or diag($res->{body});
    my $j = ref $res->{json} eq 'HASH' ? $res->{json} : {};
    ok(($j->{object} // '') eq 'prefix_cache.operation'
       && ($j->{op} // '') eq 'flush' && $j->{ok}
       && ($j->{flushed} // 0) > 0 && $j->{flushed} == $kept,
       "... answers {\"flushed\":" . ($j->{flushed} // 'undef')
       . "}: the $kept kept pages, back in the pool")
        or diag($res->{body});
    like($res->{headers}{'content-type'} // '', qr{^application/json},
         '... as JSON');

    # no wait: the engine publishes its stats before it answers
    $st = $s->status // {};
    is($st->{prefix_cache}{pages}, 0,
       'status right after: prefix_cache.pages 0');
    is($st->{pool}{pages_cached}, 0, '... pool.pages_cached 0');
    is($st->{pool}{pages_free}, $free + $kept,
       '... and pool.pages_free grew by them');

    my $three = $chat->();
    ok($three->{status} == 200 && defined $three->{cached}
       && $three->{cached} == 0
       && ($three->{text} // '') eq ($one->{text} // ''),
       'the same chat after the flush: cached_tokens 0, the same text')
        or diag($show->($three));
    my $four = $chat->();
    ok($four->{status} == 200 && ($four->{cached} // 0) > 0
       && ($four->{text} // '') eq ($one->{text} // ''),
       '... and once more: cached_tokens ' . ($four->{cached} // 'undef')
       . ' again, the same text') or diag($show->($four));

    $res = http_req($PORT, 'GET', '/admin/prefix_cache/flush');
    is($res->{status}, 405, 'GET on the flush: 405');
    is($res->{headers}{allow}, 'POST', '... Allow: POST');
    is($res->{json}{error}{code}, 'method_not_allowed',
       '... code method_not_allowed');
    $res = http_req($PORT, 'POST', '/admin/prefix_cache');
    is($res->{status}, 404, 'POST /admin/prefix_cache (no op): 404');
}

# ---- 2. scale: a Poisson stream with power-law popularity ----

{
    srand(7);
    my $N = 400;
    my $rate = 60;                      # requests per second
    my @w = map { 1 / ($_ ** 0.9) } 1 .. $N_ADAPTERS;
    my $tw = 0;
    $tw += $_ for @w;
    my @perm = @names;
    for my $i (reverse 1 .. $#perm) {
        my $j = int(rand($i + 1));
        @perm[$i, $j] = @perm[$j, $i];
    }
    my $pick = sub {
        my $x = rand($tw);
        for my $i (0 .. $#w) {
            $x -= $w[$i];
            return $perm[$i] if $x <= 0;
        }
        return $perm[-1];
    };

    my (@plan, $t);
    $t = 0;
    for my $i (0 .. $N - 1) {
        $t += -log(1 - rand()) / $rate;
        push @plan, { at => $t, model => $pick->() };
    }
    # every sampled adapter appears at least once
    my $k = 0;
    for my $n (@sample) {
        $plan[$k++ * 7]{model} = $n;
    }
    my %used = map { $_->{model} => 1 } @plan;

    my (@live, @done);
    my $t0 = time();
    my $next = 0;
    while ($next < @plan || @live) {
        my $now = time() - $t0;
        while ($next < @plan && $plan[$next]{at} <= $now) {
            my $p = $plan[$next++];
            $p->{st} = stream_start($PORT, 'POST', '/v1/chat/completions',
                body => json_encode({ model => $p->{model},
                                      messages => [{ role => 'user',
                                                     content => $PROMPT }],
                                      temperature => 0,
                                      max_tokens => $MAX }),
                headers => { 'Content-Type' => 'application/json' });
            push @live, $p;
        }
        SloraTest::run_streams([map { $_->{st} } @live], 0.02);
        push @done, grep { $_->{st}{closed} } @live;
        @live = grep { !$_->{st}{closed} } @live;
        last if time() - $t0 > 240;
    }

    my $ok = grep { $_->{st}->result->{status} == 200 } @done;
    is($ok, $N, "all $N requests of the Poisson stream over "
               . scalar(keys %used) . " adapters answered 200");
    my ($match, $checked) = (0, 0);
    for my $p (grep { exists $ref{$_->{model}} } @done) {
        $checked++;
        my $txt = text_of($p->{st}->result);
        $match++ if defined $txt && $txt eq $ref{$p->{model}};
    }
    cmp_ok($checked, '>=', scalar @sample, "$checked sampled responses");
    is($match, $checked, '... each equals that adapter served alone');

    my $st = $s->status;
    cmp_ok($st->{host}{evictions}, '>', 0,
           "host tier evictions: $st->{host}{evictions}");
    cmp_ok($st->{adapters}{evictions}, '>', 0,
           "pool evictions: $st->{adapters}{evictions}");
    cmp_ok($st->{host}{budget}, '==', $HOST_CACHE,
           'host budget is slora_adapters host_cache=');
    cmp_ok($st->{host}{bytes}, '<=', $st->{host}{budget},
           "host bytes $st->{host}{bytes} within the budget");
    cmp_ok($st->{host}{hits} + $st->{host}{misses}, '>', 0,
           "host tier lookups: $st->{host}{hits} hits,"
           . " $st->{host}{misses} misses, $st->{host}{prefetched}"
           . ' prefetched');
    is($st->{catalog}{source}, 'redis', 'status: catalog source redis');
    ok($st->{catalog}{up}, '... up');
    my $m = http_req($PORT, 'GET', '/metrics')->{body};
    like($m, qr/^slora_host_tier_evictions_total [1-9]/m,
         '/metrics: slora_host_tier_evictions_total');
    like($m, qr/^slora_catalog_up 1$/m, '/metrics: slora_catalog_up 1');
    like($m, qr/^slora_catalog_invalidations_total [1-9]/m,
         '/metrics: slora_catalog_invalidations_total');
}

# ---- 3. faults ----

{
    # an adapter file deleted, another corrupted, before their first use
    unlink("$work/root/gone1/adapter_model.safetensors");
    open(my $fh, '+<', "$work/root/corrupt1/adapter_model.safetensors")
        or die "corrupt1: $!";
    seek($fh, 200, 0);
    print $fh "\xff" x 64;
    close $fh;

    my @st = map {
        stream_start($PORT, 'POST', '/v1/chat/completions',
            body => json_encode({ model => $_, temperature => 0,
                                  max_tokens => $MAX,
                                  messages => [{ role => 'user',
                                                 content => $PROMPT }] }),
            headers => { 'Content-Type' => 'application/json' })
    } qw(gone1 a042 corrupt1 a099);
    SloraTest::run_streams(\@st, 60);
    my @r = map { $_->result } @st;
    is($r[0]{status}, 500, 'deleted adapter file: 500');
    like($r[0]{json}{error}{message} // '', qr/gone1|safetensors/,
         '... ' . ($r[0]{json}{error}{message} // ''));
    is($r[2]{status}, 500, 'corrupted adapter file: 500');
    like($r[2]{json}{error}{message} // '', qr/corrupt1|sha256|safetensors/,
         '... ' . ($r[2]{json}{error}{message} // ''));
    is(text_of($r[1]), $ref{a042}, 'a request beside them is unaffected');
    is(text_of($r[3]), $ref{a099}, '... and another one');

    # Redis dies: the engine, whose connections it resets, lives on (a
    # write to one is EPIPE: the engine ignores SIGPIPE, as nginx's
    # processes do)
    my $epid = $s->engine_pid;
    my ($ign) = (SloraTest::_slurp("/proc/$epid/status") // '')
                =~ /^SigIgn:\s*([0-9a-f]+)/m;
    ok(defined $ign && (hex(substr($ign, -4)) >> 12) & 1,
       "the engine ignores SIGPIPE (SigIgn $ign)");
    stop_redis($REDIS_PORT);
    ok(wait_for(5, sub { my $x = $s->status; $x && !$x->{catalog}{up} }),
       'status shows the catalog down after redis-server is killed');
    my $res = ask($PORT, '/t/acme/v1', undef);
    is(text_of($res), $ref{a001}, 'a cached tenant keeps being served');
    $res = ask($PORT, '/t/beta/v1', 'a150');
    is(text_of($res), $ref{a150}, '... with a cached adapter too');
    $res = ask($PORT, '/t/stranger/v1', undef);
    is($res->{status}, 503, 'a tenant never read: 503');
    like($res->{json}{error}{message} // '', qr/catalog unavailable/,
         '... ' . ($res->{json}{error}{message} // ''));
    like($res->{headers}{'retry-after'} // '', qr/^[1-9]\d*$/,
         '... with Retry-After in whole seconds');
    $res = json_req($PORT, '/admin/load_lora_adapter',
                    { lora_name => 'zz-down',
                      lora_path => "$work/root/.v/a005" });
    is(($res->{status} // '') . ' ' . ($res->{json}{error}{code} // ''),
       '503 catalog_unavailable', 'load_lora_adapter while Redis is down:'
       . ' 503 catalog_unavailable');

    # Redis again, same port
    ok(start_redis($REDIS_PORT, "$work/redis"),
       'redis-server started again on the same port');
    ok(register_all(broken_ok => 1),
       'catalog registered again (the adapter folder and the tenants)');
    ok(catalog('tenant', 'acme', '--default', 'a002', '--allow', 'a002'),
       'acme changed: default a002');
    ok(wait_for(10, sub {
           my $t = text_of(ask($PORT, '/t/acme/v1', undef));
           defined $t && $t eq $ref{a002};
       }), 'the change flows again after the reconnection');
    my $st = $s->status;
    cmp_ok($st->{catalog}{reconnects}, '>', 0,
           "status: catalog reconnects $st->{catalog}{reconnects}");
    is($s->engine_pid, $epid, 'the same engine process throughout');
}

# ---- 4. security ----

{
    ok(defined rcli('HSET', 'slora:adapter:evil-dots',
                    'path', "$work/root/../outside/evil", 'rank', '8'),
       'evil-dots registered with ".." in its path (redis-cli HSET)');
    ok(defined rcli('HSET', 'slora:adapter:evil-abs',
                    'path', "$work/outside/evil", 'rank', '8'),
       'evil-abs registered with an absolute path outside the roots');
    ok(defined rcli('HSET', 'slora:adapter:evil-link',
                    'path', "$work/root/link", 'rank', '8'),
       'evil-link registered with a symlink leading out');
    ok(defined rcli('HSET', 'slora:adapter:..evil',
                    'path', "$work/root/gone1", 'rank', '8'),
       '"..evil" registered (a name with "..")');

    for my $n (qw(evil-dots evil-abs evil-link)) {
        my $res = ask($PORT, '/v1', $n);
        is($res->{status}, 404, "$n: refused (404)");
        like($res->{json}{error}{message} // '', qr/outside/,
             '... ' . ($res->{json}{error}{message} // ''));
    }
    my $res = ask($PORT, '/v1', '..evil');
    is($res->{status}, 404, '"..evil": refused (404)');
    like($res->{json}{error}{message} // '', qr/not a valid adapter name/,
         '... ' . ($res->{json}{error}{message} // ''));
    $res = ask($PORT, '/v1', '../outside/evil');
    is($res->{status}, 404, 'a model that is a path: refused (404)');
    like($res->{json}{error}{message} // '', qr/not a valid adapter name/,
         '... as no name, never opened: '
         . ($res->{json}{error}{message} // ''));

    $res = http_req($PORT, 'GET', '/admin2/adapters');
    is($res->{status}, 403,
       'admin location allowing 127.0.0.2 only: 403 for 127.0.0.1');
    $res = http_req($PORT, 'POST', '/admin2/adapters/a000/pin');
    is($res->{status}, 403, '... for an operation too');
    $res = http_req($PORT, 'POST', '/admin2/prefix_cache/flush');
    is($res->{status}, 403, '... and for the prefix cache\'s flush');
}

my $r = $s->stop;
ok($r->{graceful}, 'nginx stopped on QUIT');
ok($r->{engine_gone}, 'the engine exited with it');
my @bad = $s->bad_log_lines;
ok(!@bad, 'no [alert], [crit] or [emerg] in the error log')
    or diag(join("\n", @bad));

done_testing();
