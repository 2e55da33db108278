# models.t: GET /v1/models over more adapters than one answer of the
# engine holds, behind a real nginx and a real Redis.
#
# With the catalog in Redis only the engine knows what a tenant may use,
# so the worker asks it, and the engine answers into the request's slot,
# whose buffer holds some 35 names at max_ctx=64. A longer list comes
# back in pages: the worker asks again after the last name of the page
# before, and the engine starts the next page at the first name past it.
# 700 adapter folders (copies of one small adapter of the test model)
# make some 20 pages. Tenant "big" may use all 700 by name (its allow
# list, which the engine sorts); tenant "all" may use any ("*"), and is
# answered from the catalog's own sorted list of the adapters it has
# found, which requests through /v1 fill.
#
# The admin listing (GET /admin/adapters, a record of some 100 bytes
# an adapter) is paged the same way; a second server, whose catalog is
# the folder itself, lists all of them.
#
# A folder of more names than the shared zone holds (2300 of 120
# bytes, over its 256 KiB): the worker then asks the engine for the list
# and leaves an adapter name it does not hold to the engine to resolve.
#
# What it shows: every one of the 700 is listed once, in name order; a
# name that sorts between two others ("x0349y", big's default, not in
# its allow list) and a name that is a prefix of others ("x07" before
# "x0700") land where they belong; the
# same list on a second request; for "all", the adapters found so far,
# sorted, and one more after it is found; the admin list, whole and in
# order; the 2300 long names listed whole, the first and the last
# answered, and a name none of them 404 with model_not_found. A model's
# object carries vLLM's max_model_len, the context /tokenize gives.

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;
use File::Copy ();

my $PORT = 18109;
my $REDIS_PORT = 18118;
my $URL = "redis://127.0.0.1:$REDIS_PORT";
my $N = 700;

my $model = tiny_model();
my $s = SloraTest::Server->new(name => 'models', port => $PORT);
my $dir = $s->prefix . '/adapters';

# one small adapter of the test model, copied into every folder
my @names = ((map { sprintf('x%04d', $_) } 0 .. $N - 1), 'x0349y', 'x07');
copy_adapters($dir, $model, \@names);
is(scalar(grep { -s "$dir/$_/adapter_model.safetensors" } @names),
   scalar(@names), scalar(@names) . ' adapter folders');
my @want = sort @names;

ok(start_redis($REDIS_PORT, $s->prefix . '/redis'),
   "redis-server started on 127.0.0.1:$REDIS_PORT")
    or BAIL_OUT('cannot start redis-server');

sub catalog {
    my ($rc, $out, $err) = run_cmd(slora_bin(), 'catalog', '--redis', $URL,
                                   @_);
    diag("slora catalog @_[0 .. 1]: $err$out") if $rc != 0;
    return $rc == 0;
}

ok(catalog('register', $dir), scalar(@names) . ' adapters registered');
ok(catalog('tenant', 'big', '--default', 'x0349y', '--allow',
           join(',', grep { $_ ne 'x0349y' } reverse @names))
   && catalog('tenant', 'all', '--allow', '*'),
   'tenant big may use each by name (x0349y as its default), tenant all '
   . 'any');

$s->{http} = slora_http(
    model => $model,
    engine => 'threads=1 slots=4 max_ctx=64 max_tokens=16',
    http_extra => "    slora_catalog $URL roots=$dir;\n",
    server_extra => tenant_location());
$s->start;
pass('nginx started with the catalog in Redis');

sub ids {
    my ($path) = @_;
    my $res = http_req($PORT, 'GET', $path);
    my @data = @{ $res->{json}{data} // [] };
    return ($res->{status}, [map { $_->{id} } @data],
            [map { $_->{id} } grep { $_->{default} } @data]);
}

for my $round (1, 2) {
    my ($st, $ids, $dflt) = ids('/t/big/v1/models');
    is($st, 200, "GET /t/big/v1/models, round $round: 200");
    is(scalar(@$ids), scalar(@want), '... ' . scalar(@want) . ' listed');
    is_deeply($ids, \@want, '... each once, in name order, the default '
              . 'among them')
        or diag(join(' ', @{$ids}[0 .. 40]));
    is_deeply($dflt, ['x0349y'], '... x0349y marked as the default');
}

# one model (GET .../models/{id}), from the engine's list for the tenant
{
    my $one = http_req($PORT, 'GET', '/t/big/v1/models/x0349y');
    my $j = $one->{json} // {};
    ok($one->{status} == 200 && ($j->{id} // '') eq 'x0349y'
       && ($j->{object} // '') eq 'model' && $j->{default}
       && defined $j->{parent},
       'GET /t/big/v1/models/x0349y: the default adapter\'s object');
    my $ctx = json_req($PORT, '/v1/tokenize', { prompt => 'hi' })
              ->{json}{max_model_len};
    ok(defined $ctx && $ctx > 0 && ($j->{max_model_len} // -1) == $ctx,
       "... its max_model_len the context /tokenize gives ("
       . ($j->{max_model_len} // 'none') . ' and ' . ($ctx // 'none') . ')');
    $one = http_req($PORT, 'GET', '/t/big/v1/models/x0699');
    ok($one->{status} == 200 && ($one->{json}{id} // '') eq 'x0699'
       && !$one->{json}{default}, '... x0699, the last page\'s');
    $one = http_req($PORT, 'GET', '/t/big/v1/models/x06');
    ok($one->{status} == 404
       && ($one->{json}{error}{code} // '') eq 'model_not_found',
       '... x06, a prefix of names it may use but none itself: 404 '
       . 'model_not_found');
}

# "all": the catalog's found adapters, which requests fill: an adapter
# is found when a request names it
my @asked = qw(x0699 x07 x0001 x0349y x0350 x0349);
for my $n (@asked) {
    http_req($PORT, 'POST', '/t/all/v1/chat/completions',
             body => json_encode({ model => $n, max_tokens => 1,
                                   messages => [{ role => 'user',
                                                  content => 'hi' }] }),
             headers => { 'Content-Type' => 'application/json' });
}
my ($st, $ids) = ids('/t/all/v1/models');
is($st, 200, 'GET /t/all/v1/models: 200');
is_deeply([grep { /^x/ } @$ids], [sort @asked],
          '... the adapters found so far, sorted')
    or diag("@$ids");

http_req($PORT, 'POST', '/t/all/v1/chat/completions',
         body => json_encode({ model => 'x0000', max_tokens => 1,
                               messages => [{ role => 'user',
                                              content => 'hi' }] }),
         headers => { 'Content-Type' => 'application/json' });
($st, $ids) = ids('/t/all/v1/models');
is_deeply([grep { /^x/ } @$ids], [sort(@asked, 'x0000')],
          '... and one more once it is found')
    or diag("@$ids");

my $r = $s->stop;
ok($r->{graceful} && $r->{engine_gone}, 'nginx and its engine stopped on QUIT');

# GET /admin/adapters: every adapter the catalog knows, with its tier,
# answered by the engine in pages the same way; a folder catalog knows
# all 702, and at max_ctx=64 a page holds two or three records
my $f = SloraTest::Server->new(name => 'models-admin', port => $PORT);
$f->{http} = slora_http(
    model => $model, adapters => $dir,
    engine => 'threads=1 slots=4 max_ctx=64 max_tokens=16',
    server_extra => <<'EOF');
        location /admin/ {
            slora_admin;
        }
        location /models/v1/ {
            slora_api openai;
        }
EOF
$f->start;
my $res = http_req($PORT, 'GET', '/admin/adapters');
is($res->{status}, 200, 'GET /admin/adapters over a folder of 702: 200');
# one model from the zone's names (they all fit)
{
    my $one = http_req($PORT, 'GET', '/v1/models/x0001');
    ok($one->{status} == 200 && ($one->{json}{id} // '') eq 'x0001'
       && defined $one->{json}{parent},
       'GET /v1/models/x0001 from the zone: its object, with its parent');
    my $ctx = json_req($PORT, '/v1/tokenize', { prompt => 'hi' })
              ->{json}{max_model_len};
    ok(defined $ctx && $ctx > 0
       && ($one->{json}{max_model_len} // -1) == $ctx,
       "... its max_model_len the context /tokenize gives ("
       . ($one->{json}{max_model_len} // 'none') . ' and '
       . ($ctx // 'none') . ')');
    $one = http_req($PORT, 'GET', '/v1/models/base');
    ok($one->{status} == 200 && ($one->{json}{id} // '') eq 'base'
       && !exists $one->{json}{parent}, '... base: the base model\'s');
    $one = http_req($PORT, 'GET', '/v1/models/x9999');
    ok($one->{status} == 404
       && ($one->{json}{error}{code} // '') eq 'model_not_found'
       && ($one->{json}{error}{message} // '') =~ /x9999/,
       '... x9999: 404 model_not_found naming it');
    $one = http_req($PORT, 'POST', '/v1/models/x0001', body => '{}');
    ok($one->{status} == 405 && ($one->{headers}{allow} // '') =~ /GET/,
       '... a POST: 405, Allow GET') or diag("$one->{status} $one->{body}");
}
# an API location whose own prefix has "/models/" in it (as a tenant
# named "models" has in /t/models/v1/): only the URI's last segment is
# the id of .../models/{id}, so the other routes are routed as ever
{
    my ($st, $ids) = ids('/models/v1/models');
    is($st, 200, 'GET /models/v1/models: 200, the list');
    is(scalar(grep { /^x/ } @$ids), scalar(@want), '... of them all');
    my $one = http_req($PORT, 'GET', '/models/v1/models/x0001');
    ok($one->{status} == 200 && ($one->{json}{id} // '') eq 'x0001',
       'GET /models/v1/models/x0001: its object')
        or diag("$one->{status} $one->{body}");
    my $res = json_req($PORT, '/models/v1/completions',
                       { model => 'base', prompt => 'hi', max_tokens => 2 });
    ok($res->{status} == 200 && $res->{json}{choices},
       'POST /models/v1/completions: a completion, not 405')
        or diag("$res->{status} $res->{body}");
}
my @listed = map { $_->{name} } @{ $res->{json}{data} // [] };
is_deeply(\@listed, \@want, '... each once, in name order')
    or diag(scalar(@listed) . " listed: @listed[0 .. 20]");
is(scalar(grep { ($_->{tier} // '') eq 'disk' && !$_->{pinned} }
          @{ $res->{json}{data} // [] }), scalar(@want),
   '... all on disk, none pinned');
$r = $f->stop;
ok($r->{graceful} && $r->{engine_gone}, 'that nginx stopped on QUIT too');

# a folder of more names than the shared zone's 256 KiB of them holds
# (2300 names of 120 bytes): the worker cannot list them or know them
# from the zone, so it asks the engine for both
my $L = 2300;
my $ldir = $s->prefix . '/long';
my @long = map { 'z' . sprintf('%0119d', $_) } 0 .. $L - 1;
copy_adapters($ldir, $model, \@long);
my $g = SloraTest::Server->new(name => 'models-long', port => $PORT);
$g->{http} = slora_http(
    model => $model, adapters => $ldir,
    engine => 'threads=1 slots=4 max_ctx=1024 max_tokens=16');
$g->start;
like(SloraTest::_slurp($g->prefix . '/logs/error.log') // '',
     qr/2300 adapter names do not fit in 262144 bytes; \d+ published/,
     "$L long names: the engine says they do not all fit the zone");
($st, $ids) = ids('/v1/models');
is($st, 200, 'GET /v1/models: 200');
is_deeply([grep { /^z/ } @$ids], \@long,
          "... all $L, from the engine, in name order")
    or diag(scalar(grep { /^z/ } @$ids) . ' listed');
{
    my $one = http_req($PORT, 'GET', "/v1/models/$long[-1]");
    ok($one->{status} == 200 && ($one->{json}{id} // '') eq $long[-1],
       'GET /v1/models/{the last}, a name not in the zone: from the '
       . 'engine\'s list');
    $one = http_req($PORT, 'GET', '/v1/models/base');
    ok($one->{status} == 200 && ($one->{json}{id} // '') eq 'base',
       '... base too');
    $one = http_req($PORT, 'GET', '/v1/models/z' . ('9' x 119));
    is($one->{status}, 404, '... a name none of them: 404');
}
for my $n ($long[0], $long[-1]) {
    my $res = json_req($PORT, '/v1/chat/completions',
                       { model => $n, max_tokens => 2, temperature => 0,
                         messages => [{ role => 'user', content => 'hi' }] });
    ok($res->{status} == 200 && ref $res->{json} eq 'HASH'
       && ($res->{json}{model} // '') eq $n
       && defined $res->{json}{choices}[0]{message}{content},
       'a chat with adapter ' . substr($n, -4)
       . ' of them: 200, answered as that adapter (the last is not in the'
       . ' zone)') or diag($res->{body});
}
my $res2 = json_req($PORT, '/v1/chat/completions',
                    { model => 'z' . ('9' x 119), max_tokens => 2,
                      messages => [{ role => 'user', content => 'hi' }] });
is($res2->{status}, 404, 'an adapter it does not have: 404 from the engine');
is($res2->{json}{error}{code}, 'model_not_found', '... model_not_found')
    or diag($res2->{body});
$r = $g->stop;
ok($r->{graceful} && $r->{engine_gone}, 'and that nginx stopped on QUIT');

# A base model whose file name JSON escapes six times over (control
# characters), and a tenant of one-letter adapters: each object of the
# engine's list names that model as its parent, so the answer is mostly
# parents, escaped; its buffer must count one a record.
my $odd = $s->prefix . '/m' . ("\x01" x 100) . '.gguf';
File::Copy::copy($model, $odd) or die "copy: $!";
my $sdir = $s->prefix . '/short';
my @short = ('a' .. 'z', 0 .. 9);
copy_adapters($sdir, $model, \@short);
ok(catalog('register', $sdir)
   && catalog('tenant', 'short', '--allow', join(',', @short)),
   scalar(@short) . ' one-letter adapters, tenant short allowed them');
# and, written into Redis by hand, a name that is not UTF-8 (no adapter
# can have it): listed, the answer would not be JSON
{
    my ($rc) = run_cmd('redis-cli', '-p', $REDIS_PORT, 'SADD',
                       'slora:tenant:short:adapters', "caf\xe9");
    is($rc, 0, '... and "caf\\xe9" (Latin-1) in its set');
}
my $h = SloraTest::Server->new(name => 'models-odd', port => $PORT);
$h->{http} = slora_http(
    model => $odd, engine => 'threads=1 slots=4 max_ctx=1024 max_tokens=16',
    http_extra => "    slora_catalog $URL roots=$sdir;\n",
    server_extra => tenant_location()
                    . "        location /h/v1/ {\n"
                    . "            slora_api openai;\n"
                    . "            slora_tenant \$http_x_tenant;\n"
                    . "        }\n");
$h->start;
# a tenant's name no catalog entry can have (from a header here): an
# unknown tenant, 403 unknown_tenant, for a chat as for its model list
for my $path ('/h/v1/chat/completions', '/h/v1/models') {
    my $res = $path =~ /models$/
              ? http_req($PORT, 'GET', $path,
                         headers => { 'X-Tenant' => 'acme/prod' })
              : http_req($PORT, 'POST', $path,
                         body => chat_body('a', 'hi', max_tokens => 1),
                         headers => { 'Content-Type' => 'application/json',
                                      'X-Tenant' => 'acme/prod' });
    ok($res->{status} == 403
       && ($res->{json}{error}{code} // '') eq 'unknown_tenant',
       "$path under tenant \"acme/prod\": 403 unknown_tenant")
        or diag("$res->{status} $res->{body}");
}
{
    my $res = http_req($PORT, 'GET', '/t/short/v1/models');
    my @data = @{ $res->{json}{data} // [] };
    my $base = 'm' . ("\x01" x 100);
    is($res->{status}, 200, 'GET /t/short/v1/models, the base model\'s name'
       . ' escaped in each: 200');
    is_deeply([map { $_->{id} } @data], ['base', sort @short],
              '... the base model (the tenant\'s default: it has no'
              . ' default adapter), then every adapter, in name order,'
              . ' JSON without the name that is not UTF-8')
        or diag($res->{body});
    is(scalar(grep { ($_->{parent} // '') eq $base } @data), scalar(@short),
       '... each with the base model as its parent');
}
$r = $h->stop;
ok($r->{graceful} && $r->{engine_gone}, 'that nginx stopped on QUIT too');
my @crash = grep { /exited on signal|\[alert\]|\[crit\]/ }
            split /\n/, $h->error_log;
ok(!@crash, '... no worker died') or diag(join("\n", @crash));

done_testing();
