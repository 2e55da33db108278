# preload.t: `slora_adapters preload=on` fills the host tier before the
# engine says it is ready.
#
# A real nginx with the tiny model and four adapters, three times: with
# preload=on and room for all four, with room for two, and without it.
# The status endpoint must show the adapters in host memory before any
# request (and none without preload), the error log must say how many
# were preloaded, and a request for a preloaded adapter must not read it
# again (the load count stays; the upload comes from host memory). With
# one running slot, requests that wait have their adapters uploaded
# ahead, while the one before them runs.

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;

my $PORT = 18108;

my $model = tiny_model();
my $s = SloraTest::Server->new(name => 'preload', port => $PORT);
my $dir = $s->prefix . '/adapters';
my @names = make_adapters($dir, $model, [map { "ad$_" } 0 .. 3]);

# Starts the server with these slora_adapters parameters; its status.
sub serve {
    my ($extra, $running) = @_;
    $running //= 'max_running=4';
    $s->{http} = slora_http(
        model => $model,
        engine => "threads=1 slots=16 $running max_ctx=256",
        http_extra => "    slora_adapters dir=$dir $extra;");
    $s->start;
    return $s->status;
}

sub complete {
    my ($adapter) = @_;
    return json_req($PORT, '/v1/completions',
                    { model => $adapter, prompt => 'Count to five.',
                      max_tokens => 4, temperature => 0 },
                    headers => { 'Content-Type' => 'application/json' });
}

# Without preload: nothing in host memory until asked; one request reads
# its adapter, which gives the size of an image.
my $st = serve('host_cache=64m');
is($st->{adapters}{in_host}, 0, 'no preload: no adapter in host memory '
   . 'at start');
is($st->{adapters}{loads}, 0, '... and none read');
is(complete($names[0])->{status}, 200, '... a request for ad0 answers');
$st = $s->status;
is($st->{adapters}{loads}, 1, '... and reads ad0');
my $one = $st->{host}{bytes};
cmp_ok($one, '>', 0, "one adapter's host image: $one bytes");
$s->stop;

# Room for all four: all in host memory before any request.
$st = serve('host_cache=64m preload=on');
is($st->{adapters}{in_host}, 4, 'preload=on: all 4 adapters in host memory '
   . 'before any request');
is($st->{adapters}{loads}, 4, '... read once each');
is($st->{host}{bytes}, 4 * $one, '... the host tier holds 4 images');
like($s->error_log, qr/preloaded 4 of 4 adapters into host memory/,
     '... and the log says so');
is(complete($names[2])->{status}, 200, 'a request for ad2 answers');
$st = $s->status;
is($st->{adapters}{loads}, 4, '... without reading it again');
is($st->{host}{hits}, 1, '... its upload came from host memory');
$s->stop;

# One running slot and three requests for preloaded adapters: the two
# sent once the first streams (a long one, its end-of-sequence ignored,
# so that they wait behind it whatever the machine's speed) have theirs
# uploaded while the first runs, and their admission finds them in the
# pool.
$st = serve('host_cache=64m preload=on', 'max_running=1');
my @st;
for my $i (0 .. 2) {
    push @st, stream_start($PORT, 'POST', '/v1/completions',
        body => json_encode({ model => $names[$i], prompt => 'Count to five.',
                              max_tokens => $i ? 24 : 200,
                              ignore_eos => $i ? JSON::PP::false()
                                               : JSON::PP::true(),
                              temperature => 0, stream => JSON::PP::true() }),
        headers => { 'Content-Type' => 'application/json' });
    $st[0]->wait_events(1, 30) if $i == 0;
}
SloraTest::run_streams(\@st, 60);
is(scalar(grep { $_->result->{status} == 200 } @st), 3,
   'max_running=1: the three requests all answer');
$st = $s->status;
is($st->{adapters}{uploads_ahead}, 2, '... the two waiting ones\' '
   . "adapters went to the pool ahead (of $st->{adapters}{uploads} uploads)");
is($st->{adapters}{hits}, $st->{adapters}{uploads_ahead},
   '... and each of those admissions was a pool hit');
like(http_req($PORT, 'GET', '/metrics')->{body},
     qr/^slora_adapter_uploads_ahead_total $st->{adapters}{uploads_ahead}$/m,
     '... and the metrics say the same');
$s->stop;

# Room for two: two preloaded, the others read when asked.
my $two = int((2 * $one + $one / 2) / 1024) + 1;
$st = serve("host_cache=${two}k preload=on");
is($st->{adapters}{in_host}, 2, "host_cache=${two}k: 2 of 4 preloaded");
like($s->error_log, qr/preloaded 2 of 4 adapters/, '... as the log says');
is(complete($names[3])->{status}, 200, 'a request for ad3 answers');
$st = $s->status;
is($st->{adapters}{loads}, 3, '... ad3 was not preloaded: read now');
$s->stop;

# An adapter folder whose name is not UTF-8 (Latin-1 "caf\xe9") beside
# ad0: no JSON request can name it, and listed it would put bytes that
# are not JSON into the model list and the admin list, for every client.
# It is left out; ad0 is listed and served as ever.
my $odd = "caf\xe9";
copy_adapters($s->prefix . '/odd', $model, ['ad0', $odd]);
$s->{http} = slora_http(
    model => $model,
    engine => 'threads=1 slots=16 max_ctx=256',
    http_extra => '    slora_adapters dir=' . $s->prefix . '/odd;',
    server_extra => "        location /admin/ {\n"
                    . "            slora_admin;\n"
                    . "        }\n");
$s->start;
{
    my $res = http_req($PORT, 'GET', '/v1/models');
    my @ids = map { $_->{id} } @{ $res->{json}{data} // [] };
    ok($res->{status} == 200 && defined $res->{json}
       && (grep { $_ eq 'ad0' } @ids) && !(grep { /^caf/ } @ids),
       'a folder whose name is not UTF-8: GET /v1/models is JSON, with ad0 '
       . 'and without it') or diag("$res->{status} $res->{body}");
    $res = http_req($PORT, 'GET', '/admin/adapters');
    my @names = map { $_->{name} } @{ $res->{json}{data} // [] };
    ok($res->{status} == 200 && defined $res->{json}
       && (grep { $_ eq 'ad0' } @names) && !(grep { /^caf/ } @names),
       '... GET /admin/adapters too') or diag("$res->{status} $res->{body}");
    is(complete('ad0')->{status}, 200, '... and ad0 answers');
}
$s->stop;

done_testing();
