# install.t: `make install`, the module laid out as Debian's module
# packages lay theirs out, and an nginx that loads it from there.
#
# Staged under DESTDIR: the module in /usr/lib/nginx/modules (the same
# bytes as the build's), bin/slora in /usr/local/bin, the load_module
# line in /etc/nginx/modules-available/mod-http-slora.conf naming the
# installed path, enabled by a relative link in modules-enabled.
# Installed into folders of the test's own (MODULES_DIR, NGINX_CONF_DIR,
# BINDIR): nginx run as Debian's unit runs it, loading the module by
# including modules-enabled/*.conf as Debian's nginx.conf does, with
# device=cuda and no cuda_lib=: the engine finds the backend beside the
# installed module (here the test backend, the CPU's work behind the
# CUDA entry point, put there as libslora_cuda.so; nothing of that name
# is on the loader's path) and answers. `make uninstall` leaves none of
# the files.

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;
use File::Compare qw(compare);
use File::Copy qw(copy);
use File::Temp qw(tempdir);

my $PORT = 18120;
my $FAULTY = repo_root() . '/build/t/libslora_backend_faulty.so';
-f $FAULTY or BAIL_OUT("no $FAULTY: run make");

# make from the repository, not as a part of the make that runs prove
sub make {
    local %ENV = %ENV;
    delete @ENV{qw(MAKEFLAGS MAKELEVEL MFLAGS SLORA_CUDA_LIB)};
    return run_cmd('make', '-s', '-C', repo_root(), @_);
}

# the module the other tests load (SLORA_MODULE's, when that is set)
my $INSTALL = 'INSTALL_MODULE=' . module_path();

my $stage = tempdir(CLEANUP => 1);
my ($rc, $out, $err) = make('install', "DESTDIR=$stage", $INSTALL);
is($rc, 0, 'make install DESTDIR=... succeeds') or diag("$out$err");

my $mod = "$stage/usr/lib/nginx/modules/ngx_http_slora_module.so";
is(compare($mod, module_path()), 0,
   'the module in /usr/lib/nginx/modules, the build\'s bytes');
ok(-x "$stage/usr/local/bin/slora", 'slora in /usr/local/bin');
my $avail = "$stage/etc/nginx/modules-available/mod-http-slora.conf";
is(SloraTest::_slurp($avail),
   "load_module /usr/lib/nginx/modules/ngx_http_slora_module.so;\n",
   'modules-available names the installed module');
my $link = "$stage/etc/nginx/modules-enabled/50-mod-http-slora.conf";
is(readlink($link), '../modules-available/mod-http-slora.conf',
   'modules-enabled links to it');

# Into folders of the test's own, and run from there.
my $root = tempdir(CLEANUP => 1);
chmod(0755, $root);
my @dirs = ("MODULES_DIR=$root/modules", "NGINX_CONF_DIR=$root/etc",
            "BINDIR=$root/bin");
($rc, $out, $err) = make('install', @dirs, $INSTALL);
is($rc, 0, 'make install into the test\'s folders') or diag("$out$err");
copy($FAULTY, "$root/modules/libslora_cuda.so") or die "copy: $!";

my $model = tiny_model(layers => 2, hidden => 64, seed => 9);
my $s = SloraTest::Server->new(
    name => 'install', port => $PORT, daemon => 1, module => '',
    main => "include $root/etc/modules-enabled/*.conf;\n"
            . "env SLORA_FAULTY_MODE=error;\n"
            . "env SLORA_FAULTY_STEPS=1000000;");
$s->{http} = slora_http(model => $model, device => 'cuda',
                        engine => 'slots=8 max_running=8 max_ctx=1024');
{
    local $ENV{SLORA_CUDA_LIB};
    delete $ENV{SLORA_CUDA_LIB};
    $s->start;
}
pass('nginx loads the installed module and its engine is ready');
like($s->error_log, qr/ready: model .* on cuda/,
     'the engine runs device=cuda with no cuda_lib=');

my $r = json_req($PORT, '/v1/completions',
                 json_encode({ model => 'base', prompt => 'Once upon',
                               max_tokens => 8, temperature => 0 }),
                 timeout => 60);
is($r->{status}, 200, 'a completion is answered through the backend '
                      . 'beside the module') or diag($r->{body});
is($r->{json}{usage}{completion_tokens}, 8, 'all of its tokens');

my $st = $s->stop;
ok($st->{graceful} && $st->{engine_gone}, 'nginx and its engine stop');

($rc, $out, $err) = make('uninstall', @dirs);
is($rc, 0, 'make uninstall') or diag("$out$err");
my @left = grep { -f $_ || -l $_ } map { glob("$root/$_/*") }
           qw(modules bin etc/modules-available etc/modules-enabled);
is_deeply(\@left, [], 'it leaves none of the files');

done_testing();
