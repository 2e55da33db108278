# input_tokens.t: the Responses API's input token count (POST
# .../responses/input_tokens, the client's responses.input_tokens.count)
# over a real nginx and engine (a tiny random model, greedy). A body
# counted and then sent to /v1/responses counts what the response's
# usage.input_tokens says, whatever makes its prompt: a string input;
# items with instructions and tools (which count: the same input without
# them is fewer); previous_response_id (the stored turns count); a
# conversation (its items count, and counting adds none to it);
# truncation "auto" on a conversation past the context (the kept turns
# only, where without it the count is the 413 the response gets). The
# count costs the engine nothing (its prompt token counter stands), a
# model is optional, another tenant's conversation is not found, and
# bad bodies, unknown ids and other methods get their errors.

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;

my $PORT = 18146;
my $CTX = 512;

my $model = tiny_model(ctx => 1024);
my $s = SloraTest::Server->new(name => 'input_tokens', port => $PORT);
mkdir $s->prefix . '/adapters';
$s->{http} = slora_http(
    model => $model, adapters => $s->prefix . '/adapters',
    engine => "threads=1 slots=4 max_ctx=$CTX max_tokens=16",
    http_extra => "    slora_responses_store 1m;\n",
    server_extra => <<'EOF');
        location ~ ^/t/(?<tenant>[a-z]+)/v1/ {
            slora_api openai;
            slora_tenant $tenant;
        }
EOF
$s->start;
pass("nginx started, a context of $CTX tokens, a store");

sub post {
    my ($path, $obj) = @_;
    my $r = json_req($PORT, $path, $obj);
    return ($r->{status}, $r->{json} // {}, $r->{body} // '');
}

sub count {
    my (%b) = @_;
    my $path = delete $b{prefix} // '/v1';
    return post("$path/responses/input_tokens", { %b });
}

sub respond {
    my (%b) = @_;
    my $path = delete $b{prefix} // '/v1';
    return post("$path/responses",
                { max_output_tokens => 4, temperature => 0, %b });
}

# one body counted, then answered: the same number of prompt tokens
sub same_as_response {
    my ($what, %b) = @_;
    my %body = (model => 'base', max_output_tokens => 4, temperature => 0,
                %b);
    my ($sc, $c, $cb) = count(%body);
    chomp $cb;
    my ($sr, $r, $rb) = respond(%body);
    my $n = $c->{input_tokens};

    ok($sc == 200 && ($c->{object} // '') eq 'response.input_tokens'
       && defined $n && $n =~ /^\d+$/ && $n > 0,
       "$what: 200, a response.input_tokens object ($cb)");
    ok($sr == 200 && defined $n && $n == ($r->{usage}{input_tokens} // -1),
       "$what: the count is the response's usage.input_tokens ($n)")
        or diag($rb);
    return ($n // 0, $r);
}

my $TOOLS = [{ type => 'function', name => 'get_weather',
               description => 'The weather in a city.',
               parameters => { type => 'object',
                               properties => { city => { type => 'string' } },
                               required => ['city'] } }];

# 1. what makes the prompt counts
my ($n_plain) = same_as_response('a string input', input => 'Hello there!');

my @items = ({ type => 'message', role => 'user', content => 'Hi.' },
             { role => 'assistant',
               content => [{ type => 'output_text', text => 'Hello!' }] },
             { role => 'user', content => 'Weather in Paris?' });
my ($n_tools) = same_as_response('items, instructions and tools',
                                 input => \@items, tools => $TOOLS,
                                 instructions => 'Be brief.');
my ($sb, $bare) = count(input => \@items);
ok($sb == 200 && $bare->{input_tokens} < $n_tools,
   "the same items without instructions and tools count fewer "
   . "($bare->{input_tokens} < $n_tools)");

my ($n_first, $first) = same_as_response('a first turn',
                                         input => 'Remember: seven.');
my ($n_cont) = same_as_response('previous_response_id',
                                previous_response_id => $first->{id},
                                input => 'What did I say?');
my ($sa, $alone) = count(input => 'What did I say?');
my $answered = $first->{usage}{output_tokens} // 0;
ok($sa == 200 && $answered > 0
   && $n_cont > $alone->{input_tokens} + $answered,
   "the stored turn counts: $n_cont > the input alone "
   . "($alone->{input_tokens}) + the first turn's answer ($answered)");

# 2. a conversation's items count, and counting adds none
my ($sv, $conv) = post('/v1/conversations', { items => \@items });
my $cid = $conv->{id} // '';
is($sv, 200, "a conversation made: $cid");
same_as_response('a conversation', conversation => $cid,
                 input => 'And in Rome?');
my $l = http_req($PORT, 'GET', "/v1/conversations/$cid/items?limit=100");
my ($c2) = count(conversation => $cid, input => 'And in Oslo?');
my $l2 = http_req($PORT, 'GET', "/v1/conversations/$cid/items?limit=100");
ok($c2 == 200 && scalar @{ $l->{json}{data} } == 5
   && $l2->{body} eq $l->{body},
   'the response added its two items, the count none');

# 3. truncation: a conversation grown past the context
my $TEXT = join(' ', map { "item$_" } 1 .. 30);
my ($prev, $tst, $tj, $tb);
for my $i (1 .. 12) {
    ($tst, $tj, $tb) = respond(model => 'base', input => "turn $i: $TEXT",
                               truncation => 'auto',
                               $prev ? (previous_response_id => $prev) : ());
    last if $tst != 200;
    $prev = $tj->{id};
}
is($tst, 200, 'twelve turns answered with truncation auto') or diag($tb);
my ($s413, $e413) = count(previous_response_id => $prev, input => 'More?');
is($s413, 413, 'without truncation the count is a 413');
is($e413->{error}{code} // '', 'context_length_exceeded',
   '... context_length_exceeded, as the response would get');
my ($n_cut) = same_as_response('truncation auto',
                               previous_response_id => $prev,
                               input => 'More?', truncation => 'auto');
cmp_ok($n_cut, '<=', $CTX, "... the kept turns only: $n_cut <= $CTX");

# 4. nothing reaches the engine
my $before = $s->status->{tokens}{prompt};
my ($sc) = count(input => \@items, tools => $TOOLS);
my $after = $s->status->{tokens}{prompt};
ok($sc == 200 && defined $before && $before == $after,
   "a count leaves the engine's prompt tokens as they were ($before)");

# 5. tenants and errors
my ($st, $tc) = post('/t/alice/v1/conversations', { items => \@items });
my ($sx, $ex) = count(prefix => '/t/bob/v1', conversation => $tc->{id},
                      input => 'Hi.');
my ($so) = count(prefix => '/t/alice/v1', conversation => $tc->{id},
                 input => 'Hi.');
ok($st == 200 && $so == 200 && $sx == 404,
   "another tenant's conversation is a 404 ($sx), its own a 200 ($so)");

my @bad = (
    ['{"input": ', 400, 'invalid_json', undef, 'malformed JSON'],
    [{ model => 'base' }, 400, 'missing_required_parameter', 'input',
     'no input'],
    [{ input => 7 }, 400, 'invalid_type', 'input', 'a number as input'],
    [{ input => 'x', previous_response_id => 'resp_nope' }, 404,
     'previous_response_not_found', 'previous_response_id',
     'an unknown previous_response_id'],
    [{ input => 'x', conversation => 'conv_nope' }, 404, 'not_found',
     'conversation', 'an unknown conversation'],
    [{ input => 'x', truncation => 'middle' }, 400, 'invalid_value',
     'truncation', 'a truncation the API does not know'],
);
for my $b (@bad) {
    my ($body, $want, $code, $param, $what) = @$b;
    my $r = json_req($PORT, '/v1/responses/input_tokens', $body);
    my @shape = check_error_object($r->{json});
    ok($r->{status} == $want && !@shape
       && ($r->{json}{error}{code} // '') eq $code
       && (!defined $param || ($r->{json}{error}{param} // '') eq $param),
       "$what: $want $code") or diag($r->{body});
}

my $g = http_req($PORT, 'GET', '/v1/responses/input_tokens');
ok($g->{status} == 405 && ($g->{headers}{allow} // '') eq 'POST',
   'GET is a 405, Allow: POST') or diag("$g->{status} $g->{body}");

my @lines = $s->bad_log_lines(errors => 1);
ok(!@lines, 'no [error], [alert], [crit] or [emerg]')
    or diag(join("\n", @lines));
$s->stop;

done_testing();
