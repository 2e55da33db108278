# lora_registry_file.t: adapters registered at run time (vLLM's
# load_lora_adapter) kept across an nginx restart with
# `slora_adapters registry=FILE`.
#
# A registration is written to the file (its name and its folder's
# realpath) as it is made, and an unloading takes it out; nginx stopped
# and started again (a new master, an empty zone) serves it again from
# the file, with its folder's weights. A file edited by hand registers
# nothing a request could not: entries outside the roots, with names
# that are no names, or that are not a name and a path, are passed over
# or dropped, each said in the error log, and the rest served. A file
# that is not the registry's JSON is said and kept aside as FILE.unread,
# FILE written anew; one that cannot be set aside is left as it is and
# not written while the engine runs. A FILE that is a symlink stays one,
# the file it leads to written. A file that cannot be written leaves the
# registration made (200), the error log saying, at the engine's start
# and at each registration, that a restart will not serve them again.

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;
use File::Path qw(make_path);

my $PORT = 18183;

my $model = tiny_model(layers => 2, hidden => 64, seed => 11);
my $s = SloraTest::Server->new(name => 'lora_registry_file', port => $PORT);
my $dir = $s->prefix . '/adapters';
my $ver = "$dir/.versions";
my $outside = $s->prefix . '/outside';
my $state = $s->prefix . '/state';
my $file = "$state/registered.json";
make_adapters($dir, $model, [qw(a1 b)]);            # seeds 1, 2
make_adapters($ver, $model, [qw(v1 v2)]);           # seeds 1, 2
make_adapters($outside, $model, [qw(o1)]);          # seed 1
# the engine writes it as the workers' user (nobody, under root)
make_path($state);
chmod(0777, $state) or die "chmod: $!";

my $registry = $file;
sub configure {
    my $admin = '';
    for my $p (qw(load_lora_adapter unload_lora_adapter)) {
        $admin .= "        location = /v1/$p {\n"
                  . "            slora_admin;\n"
                  . "            allow 127.0.0.1;\n"
                  . "            deny all;\n"
                  . "        }\n";
    }
    $s->{http} = slora_http(model => $model,
                            adapters => "$dir registry=$registry",
                            engine => 'threads=1 slots=8 max_ctx=4096',
                            server_extra => $admin);
    $s->write_config;
}
configure();
$s->start;

sub complete { return greedy_completion($PORT, $_[0]) }

sub load {
    my ($name, $path) = @_;
    return json_req($PORT, '/v1/load_lora_adapter',
                    { lora_name => $name, lora_path => $path });
}

sub unload {
    return json_req($PORT, '/v1/unload_lora_adapter', { lora_name => $_[0] });
}

# the file's entries as "name=path" in its order, or undef
sub kept {
    my $j = SloraTest::json_decode_safe(SloraTest::_slurp($file) // '');
    return undef unless ref $j eq 'HASH' && ref $j->{registered} eq 'ARRAY';
    return join(' ', map { "$_->{name}=$_->{path}" } @{ $j->{registered} });
}

sub restart {
    my $r = $s->stop;
    ok($r->{graceful}, "$_[0]: nginx stopped") or diag($s->log_tail);
    $s->start;
}

my %text = map { $_ => complete($_)->{text} } qw(a1 b);
ok(defined $text{a1} && defined $text{b} && $text{a1} ne $text{b},
   'a1 and b answer, two texts');
is(kept(), '', 'the engine wrote the file at its start, no registration '
   . 'in it (a folder it cannot write is said then)');

my $real1 = Cwd::realpath("$ver/v1");
my $real2 = Cwd::realpath("$ver/v2");
is(load('sql', "$ver/v1")->{status}, 200, 'sql registered (v1)');
is(load('web', "$ver/v2")->{status}, 200, 'web registered (v2)');
is(kept(), "sql=$real1 web=$real2",
   'the file holds both, each at its folder\'s realpath');
is(unload('sql')->{status}, 200, 'sql unloaded');
is(kept(), "web=$real2", '... and taken out of the file');

restart('a restart');
is(complete('web')->{text}, $text{b},
   'web served again after the restart, with v2\'s weights');
is(complete('sql')->{code}, 'model_not_found', '... sql, unloaded, not');
like($s->error_log, qr/1 run-time registrations read from \Q$file\E/,
     '... the error log says where they came from');
is(kept(), "web=$real2", '... the file as it was');

# Edited by hand: outside the roots, a name that is no name, an entry of
# no path, one of a number; web kept.
SloraTest::_spew($file, SloraTest::json_encode({ registered => [
    { name => 'out', path => "$outside/o1" },
    { name => '../x', path => $real1 },
    { name => 'nopath' },
    { name => 7, path => $real1 },
    { name => 'web', path => $real2 },
    { name => 'api', path => $real1 },
]}));
restart('a restart onto an edited file');
is(complete('web')->{text}, $text{b}, 'web still served');
is(complete('api')->{text}, $text{a1}, 'api, added by hand, served (v1)');
is(complete('out')->{code}, 'model_not_found', 'out (outside the roots) not');
my $log = $s->error_log;
like($log, qr/adapter "out", registered at run time from \Q$outside\E\/o1, is no longer served: .*outside the adapter roots/,
     '... the error log says why out is dropped');
like($log, qr/adapter "\.\.\/x", registered at run time .* is no longer served: .*refused/,
     '... and ../x, a name refused');
like($log,
     qr/4 run-time registrations read from \Q$file\E, some entries passed over/,
     '... four read (out, ../x, web, api), the two that are not a name and'
     . ' a path passed over, said');
is(kept(), "web=$real2 api=$real1",
   'the file written anew with what is served, the rest dropped');

# Not the registry's JSON: said, kept aside as FILE.unread rather than
# written over, served without them, FILE written anew.
SloraTest::_spew($file, "{\"registered\": 3}");
restart('a restart onto a file of no registry');
like($s->error_log, qr/\Q$file\E holds no \{"registered": \[\.\.\.\]\}: .* it is kept as \Q$file\E\.unread/,
     'the error log says the file holds no registry, kept aside');
is(SloraTest::_slurp("$file.unread"), "{\"registered\": 3}",
   '... FILE.unread holds it as it was');
is(kept(), '', '... FILE written anew, empty');
is(complete('web')->{code}, 'model_not_found', '... web not served');
is(load('web', "$ver/v2")->{status}, 200, 'web registered again');
is(kept(), "web=$real2", '... the file holds it');

# FILE a symlink (the name a configuration gives a file kept elsewhere):
# it stays one, each change written to the file it leads to
my $kept_at = "$state/elsewhere/registered.json";
make_path("$state/elsewhere");
chmod(0777, "$state/elsewhere") or die "chmod: $!";
rename($file, $kept_at) or die "rename: $!";
symlink($kept_at, $file) or die "symlink: $!";
restart('a restart onto a symlinked file');
is(complete('web')->{text}, $text{b}, 'web served from the file it leads to');
is(load('lnk', "$ver/v1")->{status}, 200, 'lnk registered');
ok(-l $file && readlink($file) eq $kept_at,
   '... FILE still the symlink, not replaced by a file');
is(kept(), "web=$real2 lnk=$real1", '... the file it leads to holds both');
is(unload('lnk')->{status}, 200, 'lnk unloaded');
unlink($file) or die "unlink: $!";
rename($kept_at, $file) or die "rename: $!";

# One that does not read and cannot be set aside (FILE.unread a folder
# with a file in it): left as it is, not written while the engine runs.
unlink("$file.unread");
make_path("$file.unread/full");
SloraTest::_spew($file, "not json");
restart('a restart onto a file that cannot be set aside');
like($s->error_log, qr/\Q$file\E holds no .* cannot be set aside as \Q$file\E\.unread: it is left as it is/,
     'the error log says it is left as it is');
is(load('again', "$ver/v1")->{status}, 200, 'again registered');
is(SloraTest::_slurp($file), 'not json', '... the file not written over');

# A file that cannot be written: the registration stands, said.
$registry = $s->prefix . '/nowhere/registered.json';
configure();
restart('a restart onto a file in a missing folder');
like($s->error_log,
     qr/the run-time registrations cannot be kept in \Q$registry\E/,
     'the error log says so at the engine\'s start');
is(load('late', "$ver/v1")->{status}, 200,
   'late registered though its file cannot be written');
is(complete('late')->{text}, $text{a1}, '... and served');
my @said = $s->error_log
           =~ /the run-time registrations cannot be kept in \Q$registry\E/g;
cmp_ok(scalar @said, '>=', 2,
       '... the error log says again that a restart will not serve it');

$s->stop;
done_testing;
