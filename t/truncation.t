# truncation.t: the Responses API's truncation "auto". A conversation
# continued by previous_response_id grows until its next turn would not
# fit the context (512 tokens here): without truncation that turn is a
# 413 context_length_exceeded, with "auto" it is answered, its prompt
# the conversation less its oldest turns, the fewest that make room for
# max_output_tokens (so the prompt is within one turn of the limit, not
# cut to the last turn), the instructions kept, the drop logged; the
# object says truncation "auto", one without says "disabled"; the turn
# so answered is stored whole and continues; a last turn too long alone
# is a 413 still; a value the API does not know is a 400. Under Llama
# 3.1's template, whose tools live in the first user message, the first
# turn stays and the turns left out start at the second.

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;

my $PORT = 18142;
my $CTX = 512;
my $OUT = 4;

my $model = tiny_model(ctx => 1024);
my $s = SloraTest::Server->new(name => 'truncation', port => $PORT);
mkdir $s->prefix . '/adapters';
$s->{http} = slora_http(
    model => $model, adapters => $s->prefix . '/adapters',
    engine => "threads=1 slots=4 max_ctx=$CTX max_tokens=16",
    http_extra => "    slora_responses_store 1m;\n",
    server_extra => "        location /l31/v1/ {\n"
                    . "            slora_api openai;\n"
                    . "            slora_chat_template llama3.1;\n"
                    . "        }\n");
$s->start;
pass("nginx started, a context of $CTX tokens");

sub respond {
    my (%b) = @_;
    my $path = delete $b{path} // '/v1/responses';
    my $r = json_req($PORT, $path,
                     { model => 'base', max_output_tokens => $OUT,
                       temperature => 0, %b });
    return ($r->{status}, $r->{json} // {}, $r->{body});
}

# some 80 tokens a turn with its answer
my $TEXT = join(' ', map { "item$_" } 1 .. 30);
my $INSTRUCTIONS = 'Answer in one word.';

my ($st, $j, $body) = respond(instructions => $INSTRUCTIONS,
                              input => "turn 1: $TEXT");
is($st, 200, 'the first turn is answered') or diag($body);
is($j->{truncation} // '', 'disabled',
   'the object says truncation "disabled" where none was asked');

my @ids = ($j->{id} // '');
my @used = ($j->{usage}{input_tokens} // 0);
my ($over, $over_body);

for my $i (2 .. 20) {
    ($st, $j, $body) = respond(instructions => $INSTRUCTIONS,
                               input => "turn $i: $TEXT",
                               previous_response_id => $ids[-1]);
    if ($st != 200) {
        ($over, $over_body) = ($j, $body);
        last;
    }
    push @ids, $j->{id};
    push @used, $j->{usage}{input_tokens};
}

my $turns = scalar @ids;
ok($turns >= 3 && defined $over,
   "the conversation grows to $turns turns, the next one too long");
is($st, 413, 'without truncation the next turn is a 413')
    or diag($over_body);
is($over->{error}{code} // '', 'context_length_exceeded',
   '... context_length_exceeded');

# what one turn adds to the prompt: its input and the answer before it
my $per_turn = $used[-1] - $used[-2];
ok($per_turn > 20, "a turn adds $per_turn prompt tokens");

my $n = $turns + 1;
($st, $j, $body) = respond(instructions => $INSTRUCTIONS,
                           input => "turn $n: $TEXT",
                           previous_response_id => $ids[-1],
                           truncation => 'auto');
is($st, 200, 'with truncation "auto" the same turn is answered')
    or diag($body);
is($j->{truncation} // '', 'auto', '... the object says truncation "auto"');

my $in = $j->{usage}{input_tokens} // 0;
ok($in + $OUT <= $CTX,
   "... its prompt ($in tokens) leaves room for max_output_tokens");
ok($in > $CTX - $OUT - 2 * $per_turn,
   "... and is within a turn or so of the limit: the fewest turns "
   . "left out ($in tokens, a turn $per_turn)");
ok($in > $used[0] + $per_turn,
   '... more than the instructions and the last turn alone');
like($s->error_log,
     qr/truncation "auto" left out turns 1 to \d+ of the conversation's $n /,
     'the drop is logged, from the first turn on');

# the turn answered so is stored with the whole conversation before it
my $trunc_id = $j->{id} // '';
my $r = http_req($PORT, 'GET', "/v1/responses/$trunc_id/input_items?limit=100");
is($r->{status}, 200, 'the truncated turn is stored');
my @inputs = grep { ($_->{role} // '') eq 'user' } @{ $r->{json}{data} // [] };
is(scalar @inputs, $n, "... its input items list all $n user turns");

($st, $j, $body) = respond(input => 'And then?',
                           previous_response_id => $trunc_id,
                           truncation => 'auto');
is($st, 200, 'continuing it with truncation "auto" is answered')
    or diag($body);
($st, $j) = respond(input => 'And then?', previous_response_id => $trunc_id);
is($st, 413, '... without, a 413');

# a last turn longer than the context alone: nothing to leave out
my $HUGE = join(' ', map { "word$_" } 1 .. 400);
($st, $j, $body) = respond(input => $HUGE, previous_response_id => $ids[0],
                           truncation => 'auto');
is($st, 413, 'a last turn too long alone is a 413 with "auto" too')
    or diag($body);
is($j->{error}{code} // '', 'context_length_exceeded',
   '... context_length_exceeded');

# Llama 3.1's tools, written into the first user message: that turn
# stays, the turns left out start at the second
my @tools = ({ type => 'function', name => 'get_weather',
               description => 'The weather in a city.',
               parameters => { type => 'object',
                               properties => { city => { type => 'string' } },
                               required => ['city'] } });
my @l31 = (path => '/l31/v1/responses', tools => \@tools);
($st, $j, $body) = respond(@l31, input => "turn 1: $TEXT");
is($st, 200, 'Llama 3.1 with tools: the first turn is answered')
    or diag($body);
my @lids = ($j->{id} // '');
for my $i (2 .. 20) {
    ($st, $j) = respond(@l31, input => "turn $i: $TEXT",
                        previous_response_id => $lids[-1]);
    last if $st != 200;
    push @lids, $j->{id};
}
is($st, 413, 'Llama 3.1: the conversation outgrows the context too');
my $ln = @lids + 1;
($st, $j, $body) = respond(@l31, input => "turn $ln: $TEXT",
                           previous_response_id => $lids[-1],
                           truncation => 'auto');
is($st, 200, '... and with truncation "auto" its next turn is answered')
    or diag($body);
like($s->error_log,
     qr/truncation "auto" left out turns 2 to \d+ of the conversation's $ln /,
     '... the first turn, which carries the tools, kept');

($st, $j) = respond(input => 'Hi', truncation => 'middle');
is($st, 400, 'truncation "middle": 400');
is($j->{error}{param} // '', 'truncation', '... naming truncation');

$s->stop;
done_testing();
