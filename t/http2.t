# http2.t: the API over HTTP/2. nginx listens on one port as HTTP/1.1
# and on another with `http2` (cleartext, prior knowledge), and
# t/python/h2_client.py drives the second frame by frame with the `h2`
# library: answers whole and streamed, six streams multiplexed on one
# connection, a stream reset mid-answer (its slot freed, its tokens
# stopped, the connection going on), a body over many windows, a reader
# that grants no window, one that never does (send_timeout ends it), the
# errors, and a prompt of one 900 KB word whose merges, on the thread
# pool, hold no other stream; each answer the same request's over
# HTTP/1.1. The browser
# over TLS and HTTP/2 is in browser.t.

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;

my $PORT = 18111;
my $H2_PORT = 18112;

my ($rc_imp, undef, $err_imp) = SloraTest::run_cmd('python3', '-c',
                                                   'import h2');
is($rc_imp, 0, 'python3 can import h2 (pip install h2)')
    or BAIL_OUT("no h2 package: $err_imp");

my $model = real_model();
my $s = SloraTest::Server->new(name => 'http2', port => $PORT,
                               ready_timeout => 120);
make_adapters($s->prefix . '/adapters', $model, ['tuned'], rank => 8);
$s->{http} = slora_http(
    model => $model, adapters => $s->prefix . '/adapters',
    engine => 'threads=2 slots=16 max_ctx=1024 max_tokens=1024',
    http_extra => "    slora_responses_store 1m;\n",
    server_extra => "        listen 127.0.0.1:$H2_PORT http2;\n"
                    . "        send_timeout 5s;\n"
                    . "        location = /connections { stub_status; }\n");
$s->start;
pass('nginx started on SmolLM2, HTTP/1.1 and HTTP/2 ports');

python_checks('h2_client.py', [
    'h2 chat: 200, application/json, the HTTP/1.1 answer and token counts',
    'h2 stream: text/event-stream, the deltas the HTTP/1.1 answer, its '
    . 'finish_reason, [DONE] last',
    'h2 multiplexed: six streams at once on one connection (chat and '
    . 'completions, base and adapter), each its own answer',
    'h2 multiplexed: the streams\' DATA frames interleave (answered '
    . 'together, not one after another)',
    'h2 reset: RST_STREAM mid-answer frees the engine\'s slot, its tokens '
    . 'stop well short of max_tokens',
    'h2 reset: the same connection then serves another stream',
    'h2 background: the queued object ends its stream while the answer '
    . 'goes on, and the same connection polls it to its end',
    'h2 background stream: reset after 8 events, the same connection '
    . 'picks it up after the last it had (another reader reset mid-way) '
    . 'and follows it to its end',
    'h2 body: 512 KB over many DATA frames and windows read whole, the '
    . 'small body\'s answer',
    'h2 malformed JSON: 400, OpenAI\'s error object',
    'h2 body over client_max_body_size: 413, OpenAI\'s error object',
    'h2 long word: a stream opened after it is answered first (the worker '
    . 'not held by its merges), then the word\'s 413',
    'h2 no window: nothing sent while the window is shut, the engine\'s '
    . 'request run to its end meanwhile (its slot given back, its tokens '
    . 'kept by the worker), another client answered; then the whole '
    . 'stream',
    'h2 never a window: send_timeout resets the stream, its slot let go',
    'h2 an error under a shut window, then the client gone: its '
    . 'connection closed',
], $H2_PORT, $PORT, 'tuned');

# the access log names the protocol of each request
my @h2 = grep { m{"POST /v1/(?:chat/)?completions HTTP/2\.0"} }
         $s->access_log_lines;
my ($reset) = grep { /c=(\d+) / && $1 >= 4 && $1 < 500 && / f=- r=/ } @h2;
ok(@h2 >= 13, scalar(@h2) . ' requests logged as HTTP/2.0');
ok($reset, 'the reset stream logged with the tokens it got and no finish')
    or diag(join("\n", @h2));

my $stop = $s->stop;
ok($stop->{graceful}, 'nginx exits on QUIT');
my @bad = $s->bad_log_lines(errors => 1,
                            allow => [qr/client intended to send too large/]);
ok(!@bad, 'no [error], [alert], [crit] or [emerg] but the 413\'s')
    or diag(join("\n", @bad));

done_testing();
