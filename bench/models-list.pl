#!/usr/bin/env perl
# bench/models-list.pl: how long GET /v1/models takes for a tenant of a
# large catalog in Redis, where the engine answers the list in pages
# into the request's slot (t/models.t shows that the list is right; this
# prints how long it takes). A real redis-server and nginx on the tiny
# test model, N copies of one small adapter registered, a tenant allowed
# all N by name; the listing is asked REPEAT times and the median and
# the longest printed in ms, with the pages the slot's size implies.
# Then the same for GET /admin/adapters on a server whose catalog is the
# folder of those adapters.
#
#   perl bench/models-list.pl [N [MAX_CTX [REPEAT]]]   (20000 64 5)
#
# $MODULE names another build of ngx_http_slora_module.so to time (an
# A/B against an older commit's module). Run from the repository root
# after `make`.

use strict;
use warnings;

use FindBin qw($Bin);
use lib "$Bin/../t/lib";
use SloraTest;

my $N = $ARGV[0] // 20000;
my $MAX_CTX = $ARGV[1] // 64;
my $REPEAT = $ARGV[2] // 5;
my $PORT = 18190;
my $REDIS_PORT = 18191;
my $URL = "redis://127.0.0.1:$REDIS_PORT";

my $model = tiny_model();
my $s = SloraTest::Server->new(name => 'bench-models', port => $PORT,
                               ($ENV{MODULE} ? (module => $ENV{MODULE})
                                             : ()));
my $dir = $s->prefix . '/adapters';

my @names = map { sprintf('m%06d', $_) } 0 .. $N - 1;
copy_adapters($dir, $model, \@names);

start_redis($REDIS_PORT, $s->prefix . '/redis') or die "redis-server\n";
for my $cmd (['register', $dir], ['tenant', 'big', '--allow', $names[0]]) {
    my ($rc, $out, $err) = run_cmd(slora_bin(), 'catalog', '--redis', $URL,
                                   @$cmd);
    die "slora catalog $cmd->[0]: $err$out\n" if $rc != 0;
}

# the rest of the allow list straight into its set, a thousand names a
# command: as one argument of `slora catalog tenant` it would pass
# Linux's 128 KiB limit on one argument
my $cmds = $s->prefix . '/allow.redis';
open(my $fh, '>', $cmds) or die "$cmds: $!\n";
for (my $i = 0; $i < @names; $i += 1000) {
    my $j = $i + 999 < $#names ? $i + 999 : $#names;
    print $fh "SADD slora:tenant:big:adapters @names[$i .. $j]\n";
}
close $fh;
system("redis-cli -p $REDIS_PORT < '$cmds' > /dev/null") == 0
    or die "redis-cli\n";

$s->{http} = slora_http(
    model => $model,
    engine => "threads=1 slots=4 max_ctx=$MAX_CTX max_tokens=16",
    http_extra => "    slora_catalog $URL roots=$dir;\n",
    server_extra => tenant_location());
$s->start;

# timed by curl, which only reads the body (decoding 20 000 entries of
# JSON in Perl would take longer than the server does); checked once
my $res = http_req($PORT, 'GET', '/t/big/v1/models', timeout => 600);
my $got = scalar(@{ $res->{json}{data} // [] });
die "status $res->{status}, $got listed\n"
    if $res->{status} != 200 || $got != $N;

my @ms = time_get('/t/big/v1/models');

$s->stop;
SloraTest::stop_redis($REDIS_PORT);

# GET /admin/adapters of a folder catalog of the same adapters: a record
# of some 100 bytes each, so many more pages
my $f = SloraTest::Server->new(name => 'bench-models-admin', port => $PORT,
                               ($ENV{MODULE} ? (module => $ENV{MODULE})
                                             : ()));
$f->{http} = slora_http(
    model => $model, adapters => $dir,
    engine => "threads=1 slots=4 max_ctx=$MAX_CTX max_tokens=16",
    server_extra => "        location /admin/ {\n            slora_admin;\n"
                    . "        }\n");
$f->start;
my @admin = time_get('/admin/adapters');
$f->stop;

sub time_get {
    my ($path) = @_;
    my @t;
    my $url = "http://127.0.0.1:$PORT$path";
    for (1 .. $REPEAT) {
        my $t = `curl -s -o /dev/null -w '%{time_total}' $url`;
        die "curl failed\n" if $? != 0;
        push @t, 1e3 * $t;
    }
    return sort { $a <=> $b } @t;
}

my @sorted = sort { $a <=> $b } @ms;
printf("%d adapters, max_ctx %d: a tenant's models (pages of about %d "
       . "names) median %.1f ms, longest %.1f; the admin list (pages of "
       . "about %d) median %.1f ms, longest %.1f (%d each)\n", $N, $MAX_CTX,
       int($MAX_CTX * 4 / (length($names[0]) + 2)),
       $sorted[int($#sorted / 2)], $sorted[-1], int($MAX_CTX * 4 / 100),
       $admin[int($#admin / 2)], $admin[-1], $REPEAT);
