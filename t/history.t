# history.t: a Responses request's stored history (previous_response_id's
# chain, or a conversation) is parsed on nginx's thread pool where it is
# long (over 32 KB), not on the worker's event loop, and gives the same
# answers as where it is parsed at once.
#
# Two servers of one worker each on the same tiny model, each keeping
# responses: one with the thread pool (the default), one with
# "slora_thread_pool off". Each stores the same chain of three responses
# of 4096 input items (some 3.6 MB), and the same conversation of 200
# KB. What each answers must be the same: the input tokens of a request
# continuing the chain, a greedy response continuing it, a 400 for a
# field the parse finds bad after the history, a request in the
# conversation. And the history's parse must not hold the worker: a
# request continuing the chain with bad tools (its 400 comes right after
# the parse: nothing else long follows it on either server) and a GET
# /v1/models completed just after it on another connection: with the
# pool the GET is answered first; with "off" after it (the worker parses
# before it reads anything else). A client that goes while its history
# is on the thread leaves the worker answering.

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;
use Time::HiRes qw(sleep);

my $PORT = 18176;
my $PORT_OFF = 18177;
my $MAX_CTX = 4096;

my $model = tiny_model(ctx => $MAX_CTX);

my %servers = pool_servers(name => 'history', port => $PORT,
                           port_off => $PORT_OFF, model => $model,
                           max_ctx => $MAX_CTX,
                           http_extra => "    client_max_body_size 8m;\n"
                                         . "    slora_responses_store 64m;\n");
pass('both servers started, engines ready');

my $on = $servers{0}->port;
my $off = $servers{1}->port;

# the chain: three responses of 4096 short turns each, truncation "auto"
# keeping what fits; greedy, so that both servers store the same answers

my %last;

for my $k (1 .. 3) {
    my @input = map {
        { role => $_ % 2 ? 'assistant' : 'user',
          content => "turn $k.$_: " . ('lorem ipsum dolor ' x 14) }
    } 0 .. 4095;

    for my $p ($on, $off) {
        my ($r, $j) = json_post($p, '/v1/responses',
                           { model => 'base', input => \@input,
                             truncation => 'auto', max_output_tokens => 1,
                             temperature => 0,
                             ($last{$p} ? (previous_response_id => $last{$p})
                                        : ()) });
        is($r->{status}, 200, "chain link $k on port $p: 200")
            or diag(substr($r->{body}, 0, 300));
        $last{$p} = $j->{id};
    }
}

my $ss = $servers{0}->status->{responses_store} // {};
my $held = ($ss->{size} // 0) - ($ss->{free} // 0);
ok($held > 3_000_000, "the store holds the chain: $held bytes");

# the same answers either way

my %ans;

for my $p ($on, $off) {
    my ($r, $j) = json_post($p, '/v1/responses/input_tokens',
                       { model => 'base', previous_response_id => $last{$p},
                         input => 'and now?', truncation => 'auto' });
    is($r->{status}, 200, "input tokens continuing the chain ($p): 200")
        or diag(substr($r->{body}, 0, 300));
    $ans{$p}{count} = $j->{input_tokens};

    ($r, $j) = json_post($p, '/v1/responses',
                    { model => 'base', previous_response_id => $last{$p},
                      input => 'and now?', truncation => 'auto',
                      max_output_tokens => 8, temperature => 0,
                      store => JSON::PP::false() });
    is($r->{status}, 200, "a response continuing the chain ($p): 200")
        or diag(substr($r->{body}, 0, 300));
    $ans{$p}{text} = $j->{output}[0]{content}[0]{text};
    $ans{$p}{usage} = $j->{usage};

    ($r, $j) = json_post($p, '/v1/responses',
                    { model => 'base', previous_response_id => $last{$p},
                      input => 'and now?', tools => 'none' });
    is($r->{status}, 400, "bad tools after the chain ($p): 400");
    $ans{$p}{bad} = $r->{body};
}

ok($ans{$on}{count} > 1000 && $ans{$on}{count} <= $MAX_CTX,
   "input tokens: $ans{$on}{count} kept");
is($ans{$on}{count}, $ans{$off}{count}, 'input tokens: the same either way');
ok(defined $ans{$on}{text}, 'the response has a text');
is($ans{$on}{text}, $ans{$off}{text}, 'the same greedy text either way');
is_deeply($ans{$on}{usage}, $ans{$off}{usage}, 'the same usage either way');
is($ans{$on}{bad}, $ans{$off}{bad}, 'the same 400 either way');
like($ans{$on}{bad}, qr/"param":"tools"/, 'the 400 names tools');

# a conversation of 200 KB: 20 items of 10 KB

my @items = map {
    { role => 'user', content => "item $_: " . ('sit amet ' x 1100) }
} 1 .. 20;
my %conv;

for my $p ($on, $off) {
    my ($r, $j) = json_post($p, '/v1/conversations', { items => \@items });
    is($r->{status}, 200, "a conversation of 200 KB ($p): 200");
    ($r, $j) = json_post($p, '/v1/responses/input_tokens',
                    { model => 'base', conversation => $j->{id},
                      input => 'and?', truncation => 'auto' });
    is($r->{status}, 200, "input tokens in it ($p): 200")
        or diag(substr($r->{body}, 0, 300));
    $conv{$p} = $j->{input_tokens};
}
is($conv{$on}, $conv{$off}, "the conversation's input tokens: the same "
   . "either way ($conv{$on})");

# the order: the bad tools' 400 comes right after the history's parse; a
# GET completed just after it is answered first where the thread parses

pool_order(servers => \%servers, path => '/v1/responses',
           body => sub {
               json_encode({ model => 'base', input => 'and now?',
                             previous_response_id
                                 => $last{$_[0] ? $off : $on},
                             tools => 'none' });
           },
           status => 400, what => "the history's parse");

# a client that goes while its history is on the thread: the request is
# made again when the parse is done, answers a closed connection, and the
# worker goes on (nothing freed under the thread)

my $gone_body = json_encode({ model => 'base', input => 'and now?',
                              previous_response_id => $last{$on},
                              truncation => 'auto' });
my $gone = stream_start($on, 'POST', '/v1/responses/input_tokens',
                        body => $gone_body,
                        headers => { 'Content-Type' => 'application/json' });
sleep(0.005);
$gone->abort;
sleep(0.5);
my ($rg, $jg) = json_post($on, '/v1/responses/input_tokens',
                     { model => 'base', previous_response_id => $last{$on},
                       input => 'and now?', truncation => 'auto' });
is($rg->{status}, 200, 'after a client went mid-parse, the next request is '
   . 'answered');
is($jg->{input_tokens}, $ans{$on}{count}, 'with the same count');

pool_logs_clean(\%servers);

$_->stop for values %servers;

done_testing();
