# encode.t: long texts are tokenized on nginx's thread pool
# (slora_thread_pool), not on the worker's event loop, and give the same
# tokens as on it.
#
# Two servers of one worker each on the same tiny model: one with the
# thread pool (the default), one with "slora_thread_pool off". What each
# answers to the same long requests must be the same: /v1/tokenize's ids
# (and the CLI's), a Responses request's input tokens with truncation
# "auto" (every try of its search an encoding on the pool, the request
# made again after each), a greedy chat's text, a 413's message. And a
# prompt that takes the tokenizer most of a second (one word of 900 KB:
# byte-pair merges over the whole of it) must not hold the worker: a
# request sent after it is answered before it on the server with the
# pool.

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;
use Time::HiRes qw(sleep);

my $PORT = 18174;
my $PORT_OFF = 18175;
my $MAX_CTX = 4096;

my $model = tiny_model(ctx => $MAX_CTX);

my %servers = pool_servers(name => 'encode', port => $PORT,
                           port_off => $PORT_OFF, model => $model,
                           max_ctx => $MAX_CTX,
                           http_extra => "    client_max_body_size 2m;\n");
pass('both servers started, engines ready');

my $on = $servers{0}->port;
my $off = $servers{1}->port;

# English words, about five bytes a token
my @dict = qw(the of and to in is was for on that with as by at from his
              her which this are be had not have but were they one all an
              their been has more when who will would there out into time
              only other some could first two years after over new most
              city world water house music river paper light market school);
srand(7);
my @words = map { $dict[int(rand(@dict))] } 1 .. 8000;

# tokenize: a 20 KB text, over the length that goes to the pool

my $text = substr(join(' ', @words), 0, 10000);
ok(length($text) > 8192, 'the text is longer than what is encoded at once');

my $tok = { model => 'base', prompt => $text };
my ($ra, $ja) = json_post($on, '/v1/tokenize', $tok);
my ($rb, $jb) = json_post($off, '/v1/tokenize', $tok);
is($ra->{status}, 200, 'tokenize on the pool: 200');
is($rb->{status}, 200, 'tokenize on the event loop: 200');
ok($ja && $ja->{count} > 1500, "tokenize: $ja->{count} tokens");
is_deeply($ja->{tokens}, $jb->{tokens}, 'tokenize: the same ids either way');

my ($rc, $out, $err) = run_cmd(slora_bin(), 'tokenize', '--model', $model,
                               '--text', $text);
is($rc, 0, 'slora tokenize ran');
my @cli = $out =~ /(-?\d+)/g;
is_deeply($ja->{tokens}, \@cli, "tokenize: the CLI's ids");

# a greedy chat whose prompt goes to the pool, answered as without

my $long = substr(join(' ', @words), 0, 12000);
my $chat = { model => 'base', max_tokens => 8, temperature => 0,
             messages => [{ role => 'user', content => $long }] };
($ra, $ja) = json_post($on, '/v1/chat/completions', $chat);
($rb, $jb) = json_post($off, '/v1/chat/completions', $chat);
is($ra->{status}, 200, 'chat of 12 KB on the pool: 200');
is($rb->{status}, 200, 'chat of 12 KB on the event loop: 200');
ok($ja->{usage}{prompt_tokens} > 2000,
   "chat: $ja->{usage}{prompt_tokens} prompt tokens");
is($ja->{usage}{prompt_tokens}, $jb->{usage}{prompt_tokens},
   'chat: the same prompt tokens either way');
is($ja->{choices}[0]{message}{content}, $jb->{choices}[0]{message}{content},
   'chat: the same greedy text either way');
my $chat_text = $ja->{choices}[0]{message}{content};

# truncation "auto": 24 turns of some 1 KB words each, too long together;
# its search encodes a try at a time, each over 8 KB

my @input;
for my $i (0 .. 23) {
    my $t = join(' ', @words[$i * 300 .. $i * 300 + 299]);
    push @input, { role => 'user', content => "turn $i: $t" },
                 { role => 'assistant', content => "noted $i" };
}
push @input, { role => 'user', content => 'and now?' };
my $resp = { model => 'base', input => \@input, truncation => 'auto',
             max_output_tokens => 16 };
($ra, $ja) = json_post($on, '/v1/responses/input_tokens', $resp);
($rb, $jb) = json_post($off, '/v1/responses/input_tokens', $resp);
is($ra->{status}, 200, 'input tokens with truncation on the pool: 200');
is($rb->{status}, 200, 'input tokens with truncation on the event loop: 200');
ok($ja->{input_tokens} > 2000 && $ja->{input_tokens} <= $MAX_CTX - 16,
   "truncation: $ja->{input_tokens} input tokens kept");
is($ja->{input_tokens}, $jb->{input_tokens},
   'truncation: the same turns kept either way');

# a prompt too long: the same 413 either way

my $huge = join(' ', @words) x 4;
my $comp = { model => 'base', prompt => $huge, max_tokens => 4 };
($ra, $ja) = json_post($on, '/v1/completions', $comp);
($rb, $jb) = json_post($off, '/v1/completions', $comp);
is($ra->{status}, 413, 'too long on the pool: 413');
is($ra->{body}, $rb->{body}, 'too long: the same answer either way');
is_deeply([check_error_object($ja)], [], 'too long: an error object');

# one word of 900 KB: most of a second of merges; a request sent after
# it is answered first where the pool has it

my $word = join('', map { chr(97 + int(rand(26))) } 1 .. 900_000);
my $big_body = json_encode({ model => 'base', prompt => $word,
                             max_tokens => 4 });

my $big = stream_start($on, 'POST', '/v1/completions', body => $big_body,
                       headers => { 'Content-Type' => 'application/json' });
sleep(0.2);
my $small = stream_start($on, 'GET', '/v1/models');
run_streams([$big, $small], 60);

is($small->{status}, 200, 'the request after the long word: 200');
is($big->{status}, 413, 'the long word: 413');
ok(defined $small->{t_eof} && defined $big->{t_eof}
   && $small->{t_eof} < $big->{t_eof},
   'the request after the long word is answered before it (the worker '
   . 'was not held)')
    or diag(sprintf('small at %.3f s, big at %.3f s after the big one began',
                    ($small->{t_eof} // 0) - $big->{t0},
                    ($big->{t_eof} // 0) - $big->{t0}));

# a client that goes while its word is on the thread: the request is
# made again when the encoding is done, answers a closed connection, and
# the worker goes on (nothing freed under the thread: make asan runs this
# too)

my $gone = stream_start($on, 'POST', '/v1/completions', body => $big_body,
                        headers => { 'Content-Type' => 'application/json' });
sleep(0.2);
$gone->abort;
sleep(1.5);
my ($rg, $jg) = json_post($on, '/v1/chat/completions', $chat);
is($rg->{status}, 200, 'after a client went mid-encoding, the next request '
   . 'is answered');
is($jg->{choices}[0]{message}{content}, $chat_text,
   'with the same greedy text');

pool_logs_clean(\%servers);

$_->stop for values %servers;

# a pool nginx does not have is nginx's configuration error

my $bad = SloraTest::Server->new(name => 'encode-conf', port => $PORT,
                                 workers => 1);
$bad->{http} = slora_http(
    model => $model, engine => "threads=1 max_ctx=$MAX_CTX",
    http_extra => "    slora_thread_pool nosuchpool;\n");
my ($trc, $tout) = $bad->test_config;
isnt($trc, 0, 'slora_thread_pool naming no thread_pool: nginx -t fails');
like($tout, qr/unknown thread pool "nosuchpool"/, 'and says which pool');

$bad->{main} = "thread_pool nosuchpool threads=2;";
($trc, $tout) = $bad->test_config;
is($trc, 0, 'the same with that thread_pool declared: nginx -t passes')
    or diag($tout);

done_testing();
