# lora_runtime.t: vLLM's runtime adapter endpoints, load_lora_adapter and
# unload_lora_adapter, under slora_admin, with the adapter folder as the
# catalog.
#
# A folder under the adapter directory (here its hidden ".versions",
# which the folder scan never serves by itself) is registered under a
# name: answered with vLLM's success text, then served with that folder's
# weights (the same greedy text as the folder of the same seed) and
# listed; a name already served is vLLM's 400 unless load_inplace, which
# swaps the weights; a name registered over a folder's shadows it until
# unloaded, and the folder answers again after. Refused, each with the
# error a client can act on and nothing registered or replaced: a body
# without lora_path, malformed JSON, a relative path, a path outside the
# adapter directory, one that does not exist (also named through a link
# to the root) and a folder with no adapter_config.json (404s, as
# vLLM's; one missing through a link outside, or through a link under
# the roots that leads out, is refused as outside), a folder that is no
# adapter of this model, weights that do not read (also in place of a
# registration's), a name that is no valid name, the names a request's
# model means otherwise (base, default, the model's id), a GET; a name
# a sub-folder made a moment ago holds. Unloading a folder's adapter is a
# 400 (remove the folder), an unknown name a 404, a registered one makes
# it unknown. Registrations outlive the engine: a killed engine's
# successor serves them again (one made through a link under the roots:
# the folder the link named then, not the one it names now), and so does
# the new engine of a reload that changes the engine's directives (a
# registration an old worker finishes reading during it is a 503, ask
# again; after a reload that failed past the registrations' copy, the old
# engine refuses them a few seconds, then takes them); one whose folder went
# away meanwhile is dropped, saying so in the error log. The zone keeps
# 1024 of them: the next is a 400 that says so, a name held may still be
# replaced, and a new engine serves all 1024 again. A path longer than a
# slot's prompt buffer (max_ctx=64: 256 bytes) is a 400 saying so. A
# reload onto a catalog in Redis leaves them be: none is written into
# Redis, none is tried there and dropped.

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;
use File::Copy qw(copy);
use File::Path qw(make_path remove_tree);
use IO::Socket::INET;

my $PORT = 18181;
my $REDIS_PORT = 18182;

my $model = tiny_model(layers => 2, hidden => 64, seed => 11);
my $s = SloraTest::Server->new(name => 'lora_runtime', port => $PORT);
my $dir = $s->prefix . '/adapters';
my $ver = "$dir/.versions";
my $outside = $s->prefix . '/outside';
make_adapters($dir, $model, [qw(a1 b c)]);          # seeds 1, 2, 3
make_adapters($ver, $model, [qw(v1 v2 v3)]);        # seeds 1, 2, 3
make_adapters($outside, $model, [qw(o1)]);          # seed 1
make_path("$ver/empty", "$ver/broken", "$ver/badweights");
copy("$ver/v2/adapter_config.json", "$ver/badweights/adapter_config.json")
    or die "copy: $!";
open(my $bw, '>', "$ver/badweights/adapter_model.safetensors") or die $!;
print {$bw} pack('Q<', 40) . '{"a": {"dtype": "F32", "shape": [2]}}' . "\0" x 3;
close($bw);
for my $f (qw(adapter_config.json adapter_model.safetensors)) {
    open(my $fh, '>', "$ver/broken/$f") or die "$f: $!";
    print {$fh} $f =~ /json/ ? '{"r": "eight", ' : "\0\0\0";
    close($fh);
}

(my $model_id = $model) =~ s{^.*/|\.gguf$}{}g;
my $slots = 8;
my $max_ctx = 4096;
my $catalog = '';
my $extra_listen = '';
sub configure {
    my $admin = $extra_listen;
    for my $p (qw(load_lora_adapter unload_lora_adapter)) {
        $admin .= "        location = /v1/$p {\n"
                  . "            slora_admin;\n"
                  . "            allow 127.0.0.1;\n"
                  . "            deny all;\n"
                  . "        }\n";
    }
    $s->{http} = slora_http(model => $model, adapters => $dir,
                            engine => "threads=1 slots=$slots max_running=8 "
                                      . "max_ctx=$max_ctx",
                            http_extra => $catalog,
                            server_extra => $admin);
    $s->write_config;
}
configure();
$s->start;

sub complete { return greedy_completion($PORT, $_[0]) }

sub listed { return model_ids($PORT) }

sub load {
    my ($body) = @_;
    return json_req($PORT, '/v1/load_lora_adapter', $body);
}

sub unload {
    my ($name) = @_;
    return json_req($PORT, '/v1/unload_lora_adapter', { lora_name => $name });
}

# "STATUS code: message" of an answer, for is() and like()
sub said {
    my ($r) = @_;
    my $e = $r->{json} && ref $r->{json} eq 'HASH' ? $r->{json}{error} : undef;
    return "$r->{status} " . ($e ? ($e->{code} // '') . ': '
                                   . ($e->{message} // '')
                                 : $r->{body});
}

sub until_answer { return greedy_until($PORT, @_) }

# engine_after(pid): the status of a ready engine other than pid (60 s at
# most), or 0
sub engine_after {
    my ($old) = @_;
    return SloraTest::wait_for(60, sub {
        my $x = $s->status or return 0;
        return $x->{engine}{ready} && $x->{engine}{pid}
               && $x->{engine}{pid} != $old ? $x : 0;
    });
}

my %text = map { $_ => complete($_)->{text} } qw(a1 b c);
ok(defined $text{$_}, "$_ answers at start") for qw(a1 b c);
ok($text{a1} ne $text{b} && $text{b} ne $text{c} && $text{a1} ne $text{c},
   'seeds 1, 2 and 3 give three texts (each folder can be told apart)');
is(complete('sql')->{code}, 'model_not_found', 'sql: unknown at start');
ok(!listed()->{'.versions'} && !listed()->{v1},
   'the hidden folder and its sub-folders are not served by the scan');

# Registered.
my $prefetched = $s->status->{host}{prefetched};
my $r = load({ lora_name => 'sql', lora_path => "$ver/v3" });
is(said($r), "200 Success: LoRA adapter 'sql' added successfully.",
   'load_lora_adapter: vLLM\'s success text');
like($r->{headers}{'content-type'} // '', qr{^text/plain},
     '... as text/plain');
is(complete('sql')->{text}, $text{c}, 'sql: served with v3\'s weights '
   . '(seed 3: c\'s text)');
ok(listed()->{sql}, 'sql: listed in /v1/models');
is(http_req($PORT, 'GET', '/v1/models/sql')->{status}, 200,
   'sql: GET /v1/models/sql');
like($s->error_log, qr/adapter "sql" registered from \Q$ver\E\/v3/,
     'the error log says what was registered from where');
my $read_ahead;
SloraTest::wait_for(5, sub {
    $read_ahead = $s->status->{host}{prefetched} - $prefetched;
    return $read_ahead >= 1;
});
is($read_ahead, 1, 'the folder read once: the check\'s image became '
   . 'sql\'s host copy (host.prefetched)');

# Taken names.
is(said(load({ lora_name => 'sql', lora_path => "$ver/v1" })),
   "400 invalid_value: The lora adapter 'sql' has already been loaded.",
   'sql again: vLLM\'s 400');
is(complete('sql')->{text}, $text{c}, '... sql unchanged');
like(said(load({ lora_name => 'b', lora_path => "$ver/v1" })),
     qr/^400 invalid_value: The lora adapter 'b' has already been loaded/,
     'b (a folder\'s adapter): 400 as well');

# A sub-folder made a moment ago is a name taken too, before any scan.
make_adapters($dir, $model, [qw(fresh)]);
like(said(load({ lora_name => 'fresh', lora_path => "$ver/v1" })),
     qr/^400 invalid_value: The lora adapter 'fresh' has already been loaded/,
     'fresh (a folder made just now): 400');
is(complete('fresh')->{text}, $text{a1}, '... fresh: its folder\'s weights');

# load_inplace swaps the weights.
$r = load({ lora_name => 'sql', lora_path => "$ver/v1",
            load_inplace => JSON::PP::true });
is($r->{status}, 200, 'load_inplace: 200');
is(complete('sql')->{text}, $text{a1}, 'sql: v1\'s weights now (a1\'s '
   . 'text), not the copy made of v3');

# Refused, nothing registered.
my $toroot = $s->prefix . '/toroot';
my $tooutside = $s->prefix . '/tooutside';
for ([$dir, $toroot], [$outside, $tooutside], [$outside, "$ver/outlink"],
     ["$outside/missing", "$ver/dangling"], ["$ver/loop2", "$ver/loop1"],
     ["$ver/loop1", "$ver/loop2"]) {
    unlink($_->[1]);
    symlink($_->[0], $_->[1]) or die "symlink: $!";
}
my @bad = (
    [ { lora_name => 'x' }, 400, qr/^missing_required_parameter: Both 'lora_name' and 'lora_path' must be provided\.$/,
      'no lora_path' ],
    [ { lora_path => "$ver/v2" }, 400, qr/^missing_required_parameter: /,
      'no lora_name' ],
    [ '{"lora_name": "x", "lora_path": ', 400, qr/./, 'malformed JSON' ],
    [ { lora_name => 'x', lora_path => 'adapters/.versions/v2' }, 400,
      qr/absolute path/, 'a relative path' ],
    [ { lora_name => 'x', lora_path => 7 }, 400, qr/^invalid_type: /,
      'a path that is no string' ],
    [ { lora_name => 'x', lora_path => "$outside/o1" }, 400,
      qr/outside the adapter roots/, 'a folder outside the adapter dir' ],
    [ { lora_name => 'x', lora_path => "$ver/../../outside/o1" }, 400,
      qr/^invalid_value: adapter x: \S+ holds "\.\.": name the folder without it$/,
      '.. leading out of it' ],
    [ { lora_name => 'x',
        lora_path => "$outside/o1/../../adapters/.versions/v2" },
      400, qr/^invalid_value: adapter x: \S+ holds "\.\.": name the folder without it$/,
      '.. leading back in: the same, nothing said of what it passed' ],
    [ { lora_name => 'x', lora_path => "$outside/nothing" }, 400,
      qr/^invalid_value: adapter x: \S+ is outside the adapter roots: refused$/,
      'a missing path outside: as a folder there, nothing said of it' ],
    [ { lora_name => 'x', lora_path => "$outside/o1/adapter_config.json" },
      400,
      qr/^invalid_value: adapter x: \S+ is outside the adapter roots: refused$/,
      'a file outside: the same words' ],
    [ { lora_name => 'x', lora_path => "$ver/nothing" }, 404,
      qr/^model_not_found: No adapter found at /,
      'a path that does not exist' ],
    [ { lora_name => 'x', lora_path => "$toroot/.versions/nothing" }, 404,
      qr/^model_not_found: No adapter found at /,
      'one missing, named through a link to the root: 404 as well' ],
    [ { lora_name => 'x', lora_path => "$toroot/nothing" }, 404,
      qr/^model_not_found: No adapter found at /,
      '... right under the root' ],
    [ { lora_name => 'x', lora_path => "$ver/outlink/nothing" }, 400,
      qr/^invalid_value: adapter x: \S+ is outside the adapter roots: refused$/,
      'one missing through a link under the roots that leads out: refused '
      . 'as outside, nothing said of what is there' ],
    [ { lora_name => 'x', lora_path => "$ver/deep/er/nothing" }, 404,
      qr/^model_not_found: No adapter found at /,
      'one missing two folders deep under the root: 404' ],
    [ { lora_name => 'x', lora_path => "$ver/v2/adapter_config.json/x" },
      400, qr/^invalid_value: No adapter found at \S+: Not a directory$/,
      'a path through a file under the root: said so, not outside' ],
    [ { lora_name => 'x', lora_path => "$ver/dangling/x" }, 400,
      qr/^invalid_value: adapter x: \S+ is outside the adapter roots: refused$/,
      'through a link under the roots whose target is missing: refused '
      . 'as outside, nothing said of its target' ],
    [ { lora_name => 'x', lora_path => "$ver/dangling" }, 400,
      qr/^invalid_value: adapter x: \S+ is outside the adapter roots: refused$/,
      '... the link itself alike' ],
    [ { lora_name => 'x', lora_path => "$ver/loop1/x" }, 400,
      qr/^invalid_value: adapter x: \S+ is outside the adapter roots: refused$/,
      'through a link loop: alike' ],
    [ { lora_name => 'x', lora_path => "$tooutside/nothing" }, 400,
      qr/^invalid_value: adapter x: \S+ is outside the adapter roots: refused$/,
      'one missing through a link outside: refused, nothing said of it' ],
    [ { lora_name => 'x', lora_path => "$ver/v2/adapter_config.json" }, 400,
      qr/is not a folder/, 'a file' ],
    [ { lora_name => 'x', lora_path => "$ver/empty" }, 404,
      qr/^model_not_found: No adapter found at .*adapter_config\.json/,
      'a folder without an adapter (vLLM\'s 404)' ],
    [ { lora_name => 'x', lora_path => "$ver/broken" }, 400,
      qr/adapter_config\.json/, 'a broken adapter_config.json' ],
    [ { lora_name => 'x', lora_path => "$ver/badweights" }, 400,
      qr/adapter_model\.safetensors/, 'weights that do not read' ],
    [ { lora_name => 'sql', lora_path => "$ver/badweights",
        load_inplace => JSON::PP::true }, 400,
      qr/adapter_model\.safetensors/, 'load_inplace with weights that do '
      . 'not read' ],
    [ { lora_name => '../x', lora_path => "$ver/v2" }, 400,
      qr/not a valid adapter name/, 'a name with ..' ],
    [ { lora_name => "x\x{1}", lora_path => "$ver/v2" }, 400,
      qr/not a valid adapter name/, 'a name with a control character' ],
    [ { lora_name => 'x' x 200, lora_path => "$ver/v2" }, 400,
      qr/not a valid adapter name/, 'a name of 200 bytes' ],
    (map { [ { lora_name => $_, lora_path => "$ver/v2" }, 400,
             qr/^invalid_value: "\Q$_\E" names the base model or a tenant's default adapter/,
             "the name $_ (a request's model means another thing by it)" ] }
         'base', 'default', $model_id),
);
for my $b (@bad) {
    my ($body, $status, $msg, $what) = @$b;
    $r = load($body);
    my $e = $r->{json} && ref $r->{json} eq 'HASH' ? $r->{json}{error} : {};
    is($r->{status}, $status, "$what: $status") or diag(said($r));
    like(($e->{code} // '') . ': ' . ($e->{message} // ''), $msg,
         "... $what: says so");
    is_deeply([check_error_object($r->{json})], [], "... an OpenAI error "
              . 'object');
}
is(complete('x')->{code}, 'model_not_found', 'x: nothing was registered');
is(complete('sql')->{text}, $text{a1}, 'sql: still v1\'s weights');
is(http_req($PORT, 'GET', '/v1/load_lora_adapter')->{status}, 405,
   'GET load_lora_adapter: 405');
is(http_req($PORT, 'GET', '/v1/load_lora_adapter')->{headers}{allow},
   'POST', '... Allow: POST');

# Unloading.
like(said(unload('b')),
     qr/^400 invalid_value: adapter "b" is a folder of the adapter directory/,
     'unload b (a folder\'s): 400, remove the folder');
is(complete('b')->{text}, $text{b}, '... b still served');
is(said(unload('nope')),
   "404 model_not_found: The lora adapter 'nope' cannot be found.",
   'unload an unknown name: vLLM\'s 404');
like(said(json_req($PORT, '/v1/unload_lora_adapter', { lora_int_id => 1 })),
     qr/^400 missing_required_parameter: lora_name must be provided/,
     'unload by lora_int_id alone: 400');
is(said(unload('sql')), "200 Success: LoRA adapter 'sql' removed successfully.",
   'unload sql: vLLM\'s success text');
is(complete('sql')->{code}, 'model_not_found', 'sql: unknown once unloaded');
ok(!listed()->{sql}, 'sql: no longer listed');

# A registration shadows a folder of its name; unloaded, the folder is back.
$r = load({ lora_name => 'c', lora_path => "$ver/v2",
            load_inplace => JSON::PP::true });
is($r->{status}, 200, 'c registered over its folder (load_inplace)');
is(complete('c')->{text}, $text{b}, 'c: v2\'s weights (b\'s text)');
is(unload('c')->{status}, 200, 'c unloaded');
my $back = until_answer('c', sub { $_[0]{status} == 200 });
is($back->{text}, $text{c}, 'c: its folder answers again (c\'s text)');

# Registrations outlive the engine.
is(load({ lora_name => 'keep', lora_path => "$ver/v2" })->{status}, 200,
   'keep registered');
remove_tree("$ver/tmp");
make_adapters("$ver/tmp", $model, [qw(g)]);
is(load({ lora_name => 'gone', lora_path => "$ver/tmp/g" })->{status}, 200,
   'gone registered');
is(complete('gone')->{text}, $text{a1}, 'gone: served (seed 1)');
remove_tree("$ver/tmp");

# a registration through a link under the roots is of the folder the
# link named then: the zone keeps that, not the link
symlink("$ver/v2", "$ver/current") or die "symlink: $!";
is(load({ lora_name => 'link', lora_path => "$ver/current" })->{status},
   200, 'link registered through a symbolic link to v2');
like($s->error_log, qr/adapter "link" registered from \Q$ver\E\/v2$/m,
     '... the error log names the folder, v2');
unlink("$ver/current") or die "unlink: $!";
symlink("$ver/v3", "$ver/current") or die "symlink: $!";

my $epid = $s->engine_pid;
ok(kill('KILL', $epid), "engine $epid killed");
my $st = engine_after($epid);
ok($st, 'a new engine is ready') or diag($s->log_tail);
is(complete('keep')->{text}, $text{b}, 'keep: served by the new engine');
is(complete('link')->{text}, $text{b}, 'link: v2\'s weights still, though '
   . 'the link names v3 now');
ok(listed()->{keep}, 'keep: listed');
is(complete('gone')->{code}, 'model_not_found',
   'gone: its folder went away, not served');
like($s->error_log, qr/adapter "gone", registered at run time from \Q$ver\E\/tmp\/g, is no longer served/,
     'the error log says why gone is not served');
like($s->error_log, qr/2 adapters registered at run time served again/,
     'the error log counts the registrations served again (keep, link)');
is(unload('link')->{status}, 200, 'link unloaded');

# A reload that changes the engine's directives: a new zone, a new engine.
$epid = $st->{engine}{pid};
$slots = 9;
configure();
# a registration whose body an old worker finishes reading once the
# reload began would go to the old engine, and be lost to the new one
my $held = stream_start($PORT, 'POST', '/v1/load_lora_adapter',
                        body => json_encode({ lora_name => 'late',
                                              lora_path => "$ver/v2" }),
                        headers => { 'Content-Type' => 'application/json' },
                        hold => 4);
$s->signal('HUP');
$st = engine_after($epid);
ok($st, 'reloaded with slots=9: a new engine is ready')
    or diag($s->log_tail);
$held->release;
$held->wait_done(30);
is(said($held->result),
   '503 engine_not_ready: nginx is reloading or stopping: ask again',
   'a registration an old worker read during the reload: 503, ask again');
is(load({ lora_name => 'late', lora_path => "$ver/v2" })->{status}, 200,
   '... asked again: 200');
is(complete('late')->{text}, $text{b}, '... late served (v2\'s weights)');
is(unload('late')->{status}, 200, '... and unloaded');
is(complete('keep')->{text}, $text{b}, 'keep: served after the reload');

# A reload that fails after its master copied the registrations (its new
# listen taken): the old engine refuses registrations a few seconds, as
# it would until told to quit, then takes them again.
my $taker = IO::Socket::INET->new(LocalAddr => '127.0.0.1:18183',
                                  Listen => 1, ReuseAddr => 1)
    or die "listen 18183: $!";
$slots = 10;
$extra_listen = "        listen 127.0.0.1:18183;\n";
configure();
my $log_at = length($s->error_log // '');
$s->signal('HUP');
ok(SloraTest::wait_for(30, sub {
       substr($s->error_log // '', $log_at)
           =~ /bind\(\) to 127\.0\.0\.1:18183 failed/
   }), 'a reload whose new listen is taken fails');
my $t_failed = time();
is(said(load({ lora_name => 'late2', lora_path => "$ver/v2" })),
     '503 engine_not_ready: nginx is reloading or stopping: ask again',
     '... a registration just after: 503, ask again');
sleep(1) while time() < $t_failed + 6;
is(load({ lora_name => 'late2', lora_path => "$ver/v2" })->{status}, 200,
   '... seconds later, taken (the reload failed: no engine took over)');
is(unload('late2')->{status}, 200, '... and unloaded');
close($taker);

# A reload that leaves the engine's directives as they were keeps the
# engine and its zone: a registration an old worker finishes reading
# during it goes to that engine, which keeps it.
$slots = 9;
$extra_listen = "        location = /reloaded { return 204; }\n";
configure();
$epid = $s->engine_pid;
$held = stream_start($PORT, 'POST', '/v1/load_lora_adapter',
                     body => json_encode({ lora_name => 'kept',
                                           lora_path => "$ver/v2" }),
                     headers => { 'Content-Type' => 'application/json' },
                     hold => 4);
$s->signal('HUP');
ok(SloraTest::wait_for(30, sub {
       (http_req($PORT, 'GET', '/reloaded')->{status} // 0) == 204
   }), 'a reload of a location alone: its new workers answer')
    or diag($s->log_tail);
is($s->engine_pid, $epid, '... the engine kept');
$held->release;
$held->wait_done(30);
like(said($held->result), qr/^200 /,
     '... a registration an old worker read during it: taken');
is(complete('kept')->{text}, $text{b}, '... and served (v2\'s weights)');
is(unload('kept')->{status}, 200, '... and unloaded');
$extra_listen = '';
configure();
is(unload('keep')->{status}, 200, 'keep: unloaded on the new engine');
is(complete('keep')->{code}, 'model_not_found', 'keep: gone');
is(complete('a1')->{text}, $text{a1}, 'a1: served throughout');

# The zone keeps 1024 registrations: the next is refused, saying so, and
# a new engine serves all of them again.
my $taken = 0;
for my $i (0 .. 1023) {
    $taken++ if load({ lora_name => sprintf('r%04d', $i),
                       lora_path => "$ver/v" . (1 + $i % 3) })->{status}
                == 200;
}
is($taken, 1024, '1024 names registered');
like(said(load({ lora_name => 'r1024', lora_path => "$ver/v1" })),
     qr/^400 invalid_value: 1024 adapters are registered at run time, the most this server keeps/,
     'the 1025th: 400, saying why');
is(load({ lora_name => 'r0007', lora_path => "$ver/v3",
          load_inplace => JSON::PP::true })->{status}, 200,
   '... a name held may still be replaced');
$epid = $s->engine_pid;
ok(kill('KILL', $epid), "engine $epid killed");
$st = engine_after($epid);
ok($st, 'a new engine is ready') or diag($s->log_tail);
like($s->error_log, qr/1024 adapters registered at run time served again/,
     '... all 1024 registrations served again');
is(complete('r1022')->{text}, $text{c}, 'r1022: v3\'s weights (c\'s text)');
is(complete('r0007')->{text}, $text{c}, 'r0007: its replacement, v3');
is(complete('r0000')->{text}, $text{a1}, 'r0000: v1\'s weights');
is(scalar(grep { /^r\d{4}$/ } keys %{ listed() }), 1024,
   '/v1/models lists the 1024');

# A slot carries the folder's path in its prompt buffer, 4 bytes a token
# of max_ctx: a longer path is a 400 saying so, not written past it.
$epid = $s->engine_pid;
$max_ctx = 64;
configure();
$s->signal('HUP');
$st = engine_after($epid);
ok($st, 'reloaded with max_ctx=64: a new engine is ready')
    or diag($s->log_tail);
my $deep = "$ver/" . ('d' x 200) . '/' . ('e' x 100);
make_adapters($deep, $model, [qw(w)]);
like(said(load({ lora_name => 'deep', lora_path => "$deep/w" })),
     qr/^400 invalid_value: lora_path is \d+ bytes, more than the 256 a request slot holds here/,
     'a path longer than a slot\'s 256 bytes: 400, saying so');
is(load({ lora_name => 'r0001', lora_path => "$ver/v1",
          load_inplace => JSON::PP::true })->{status}, 200,
   '... a short one taken after it (r0001 replaced by v1)');
is(complete('r0001')->{text}, $text{a1}, 'r0001: served with v1\'s weights');

# A reload onto a catalog in Redis: the zone's registrations are the
# folder catalog's, and none is written into Redis.
ok(start_redis($REDIS_PORT, $s->prefix . '/redis'),
   "redis-server started on 127.0.0.1:$REDIS_PORT")
    or BAIL_OUT('cannot start redis-server');
$epid = $st->{engine}{pid};
my $mark = length($s->error_log);
$catalog = "    slora_catalog redis://127.0.0.1:$REDIS_PORT;\n";
configure();
$s->signal('HUP');
$st = engine_after($epid);
ok($st, 'reloaded onto Redis: a new engine is ready') or diag($s->log_tail);
my ($rc, $keys) = run_cmd('redis-cli', '-p', $REDIS_PORT, 'KEYS',
                          'slora:adapter:*');
$keys =~ s/\s+//g;
is("$rc:$keys", '0:', '... nothing written into Redis from the zone');
is(complete('r0001')->{code}, 'model_not_found',
   '... r0001, which Redis never held, is not served');
unlike(substr($s->error_log, $mark), qr/registered at run time from/,
       '... the zone\'s registrations left alone, none tried and dropped');
stop_redis($REDIS_PORT);

$s->stop;
done_testing;
