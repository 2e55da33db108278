# reasoning.t: `slora_reasoning on` reads a chat answer's think block
# (<think> ... </think>) into the message's "reasoning", apart from its
# content, on the real SmolLM2-135M-Instruct through nginx.
#
# The same requests go to a location without it (/v1/) and to one with
# it (/r/v1/; /m7/v1/ with Mistral's template and marks; a tiny model
# with DeepSeek-R1-Distill's template, whose prompt opens the block).
# guided_regex makes the model write a think block (or none, or one
# never closed); the answer is greedy, so both locations get the same
# text: with reasoning on, "<think>" + reasoning + "</think>" +
# content must be the text the other location answered,
# the block's text exactly what the pattern let in, and a stream's
# delta.reasoning and delta.content the same as the whole answer's, the
# reasoning all before the content. Without a block the answer is all
# content and reasoning null; a block never closed is all reasoning. The
# Responses API has it as a reasoning item before the message, streamed
# as reasoning_text events; with logprobs the message's output_text has
# the entries of its own tokens only, whole and streamed. A stored
# response keeps it (Qwen3's template writes it back when continued),
# and a conversation lists it as the item it was, under its id.

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;

my $PORT = 18133;

my $s = SloraTest::Server->new(name => 'reasoning', port => $PORT,
                               ready_timeout => 120);

# a tiny model of random weights with DeepSeek-R1-Distill's template,
# whose generation prompt opens the think block (SmolLM2's vocabulary)
my $r1 = $s->prefix . '/r1.gguf';
my ($rc_mk, undef, $err_mk) = SloraTest::run_cmd(
    slora_bin(), 'mkmodel', '--out', $r1, '--tokenizer', real_model(),
    '--chat-template', SloraTest::repo_root()
    . '/ref/llama_cpp_python-0.3.36/vendor/llama.cpp/models/templates/'
    . 'deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja', '--layers', 1,
    '--hidden', 16, '--heads', 2, '--kv-heads', 1, '--ffn', 16,
    '--tied', 1, '--ctx', 1024);
is($rc_mk, 0, 'a tiny model with DeepSeek-R1-Distill\'s template')
    or diag($err_mk);
my $r1s = SloraTest::Server->new(name => 'reasoning-r1', port => $PORT + 1,
                                 ready_timeout => 120);
$r1s->{http} = slora_http(model => $r1,
                          engine => 'threads=1 slots=4 max_ctx=1024',
                          server_extra => "        location /r/v1/ {\n"
                                          . "            slora_api openai;\n"
                                          . "            slora_reasoning on;\n"
                                          . "        }\n");
$r1s->start;
$s->{http} = slora_http(
    model => real_model(),
    engine => 'threads=2 slots=8 max_ctx=1024 max_tokens=128',
    server_extra => "        location /r/v1/ {\n"
                    . "            slora_api openai;\n"
                    . "            slora_reasoning on;\n"
                    . "        }\n"
                    . "        location /m7/v1/ {\n"
                    . "            slora_api openai;\n"
                    . "            slora_chat_template mistral-v7-tekken;\n"
                    . "            slora_reasoning on;\n"
                    . "        }\n"
                    . "        location /r1/v1/ {\n"
                    . "            slora_api openai;\n"
                    . "            slora_chat_template deepseek-r1;\n"
                    . "            slora_reasoning on;\n"
                    . "        }\n");
$s->start;
pass('nginx started on SmolLM2, /r/ with slora_reasoning on');

sub ask {
    my ($regex, %o) = @_;
    return { model => 'base', max_tokens => 60, temperature => 0,
             guided_regex => $regex, %o,
             messages => [ { role => 'user',
                             content => 'Think, then name a colour.' } ] };
}

sub whole {
    my ($path, $body) = @_;
    my $r = json_req($PORT, "$path/chat/completions", $body);
    my $j = ref $r->{json} eq 'HASH' ? $r->{json} : {};
    my $m = $j->{choices} ? $j->{choices}[0]{message} : {};
    return { status => $r->{status}, body => $r->{body}, msg => $m,
             finish => $j->{choices} ? $j->{choices}[0]{finish_reason}
                                     : undef };
}

sub streamed {
    my ($path, $body) = @_;
    my $st = stream_start($PORT, 'POST', "$path/chat/completions",
                          body => json_encode({ %$body,
                                                stream => JSON::PP::true() }),
                          headers => { 'Content-Type' => 'application/json' });
    $st->wait_done(120);
    my ($bad, $sum) = $st->sse_check('chat');
    return { bad => $bad, text => $sum->{text},
             reasoning => $sum->{reasoning} // '' };
}

# A Responses request on /r/ (of port, $PORT where not given), whole and
# streamed: the whole answer, its output, its message's output_text
# part, and the stream with its events, output_text deltas and done
# event.
sub responses_both {
    my ($body, $port) = @_;
    $port //= $PORT;
    my $r = json_req($port, '/r/v1/responses', $body);
    my $out = ref $r->{json} eq 'HASH' ? $r->{json}{output} : [];
    my ($msg) = grep { $_->{type} eq 'message' } @$out;
    my $st = stream_start($port, 'POST', '/r/v1/responses',
                          body => json_encode({ %$body,
                                                stream => JSON::PP::true() }),
                          headers => { 'Content-Type' => 'application/json' });
    $st->wait_done(120);
    my @ev = grep { $_->{json} } @{ $st->{events} };
    my ($done) = grep { ($_->{event} // '') eq 'response.output_text.done' }
                 @ev;
    return { r => $r, out => $out, part => $msg ? $msg->{content}[0] : {},
             st => $st, done => $done, events => \@ev,
             deltas => [ grep { ($_->{event} // '') eq
                                'response.output_text.delta' } @ev ] };
}

# a closed block, then an answer
my $closed = ask('<think>[a-z ]{8,40}</think>\n\n[A-Za-z ]{2,30}');
my $off = whole('/v1', $closed);
my $on = whole('/r/v1', $closed);
is($off->{status}, 200, 'without reasoning: answered') or diag($off->{body});
like($off->{msg}{content} // '', qr{^<think>[a-z ]+</think>\n\n},
     'without reasoning: the think block is in the content');
ok(!exists $off->{msg}{reasoning},
   'without reasoning: the message has no reasoning field');
is($on->{status}, 200, 'with reasoning: answered') or diag($on->{body});
like($on->{msg}{reasoning} // '', qr{^[a-z ]{8,40}$},
     'with reasoning: the block\'s text, without its marks, is the '
     . 'reasoning');
is('<think>' . ($on->{msg}{reasoning} // '') . '</think>'
   . ($on->{msg}{content} // ''), $off->{msg}{content},
   'with reasoning: "<think>" + reasoning + "</think>" + content is the '
   . 'answer without it');
like($on->{msg}{content} // '', qr{^\n\n[A-Za-z ]+$},
     'with reasoning: the content is what follows the block');

my $st = streamed('/r/v1', $closed);
ok(!@{ $st->{bad} }, 'with reasoning, streamed: a well-formed stream, the '
   . 'reasoning all before the content')
    or diag(join("\n", @{ $st->{bad} }));
is($st->{reasoning}, $on->{msg}{reasoning},
   'with reasoning, streamed: delta.reasoning is the whole answer\'s '
   . 'reasoning');
is($st->{text}, $on->{msg}{content},
   'with reasoning, streamed: delta.content is its content');
my $st_off = streamed('/v1', $closed);
is($st_off->{reasoning}, '', 'without reasoning, streamed: no '
   . 'delta.reasoning');
is($st_off->{text}, $off->{msg}{content},
   'without reasoning, streamed: the block in the content');

# no block: all content
my $plain = ask('[A-Za-z ]{4,30}');
$on = whole('/r/v1', $plain);
$off = whole('/v1', $plain);
ok($on->{status} == 200 && exists $on->{msg}{reasoning}
   && !defined $on->{msg}{reasoning}
   && ($on->{msg}{content} // '') eq ($off->{msg}{content} // 'x'),
   'an answer without a block: reasoning null, the content all of it')
    or diag($on->{body});
$st = streamed('/r/v1', $plain);
ok(!@{ $st->{bad} } && $st->{reasoning} eq ''
   && $st->{text} eq $off->{msg}{content},
   'an answer without a block, streamed: all content');

# a block never closed: all reasoning
my $open = ask('<think>[a-z ]{200}', max_tokens => 12);
$on = whole('/r/v1', $open);
$off = whole('/v1', $open);
ok($on->{status} == 200 && ($on->{msg}{content} // 'x') eq ''
   && '<think>' . ($on->{msg}{reasoning} // '') eq $off->{msg}{content}
   && $on->{finish} eq 'length',
   'a block the answer ran out inside: all of it reasoning, the content '
   . 'empty, finish length')
    or diag($on->{body});
$st = streamed('/r/v1', $open);
ok(!@{ $st->{bad} } && $st->{text} eq ''
   && $st->{reasoning} eq $on->{msg}{reasoning},
   'a block never closed, streamed: reasoning only');

# a block not first: content
my $late = ask('[A-Z][a-z]{2,8} <think>[a-z ]{4,20}</think>');
$on = whole('/r/v1', $late);
$off = whole('/v1', $late);
ok(!defined $on->{msg}{reasoning}
   && ($on->{msg}{content} // '') eq ($off->{msg}{content} // 'x'),
   'a think block after other text is content')
    or diag($on->{body});

# Mistral's marks, with their template (plain text in SmolLM2's
# vocabulary, control tokens in Mistral's, shown as text there)
my $mistral = ask('\[THINK\][a-z ]{8,40}\[/THINK\][A-Za-z ]{2,30}');
$on = whole('/m7/v1', $mistral);
ok($on->{status} == 200 && ($on->{msg}{reasoning} // '') =~ /^[a-z ]{8,40}$/
   && ($on->{msg}{content} // '') =~ /^[A-Za-z ]{2,30}$/,
   'mistral-v7-tekken: a [THINK] block is the reasoning')
    or diag($on->{body});
$on = whole('/m7/v1', $closed);
ok($on->{status} == 200 && !defined $on->{msg}{reasoning}
   && ($on->{msg}{content} // '') =~ /^<think>/,
   'mistral-v7-tekken: a <think> block is not its mark: content')
    or diag($on->{body});

# DeepSeek-R1's generation prompt opens the block: the answer begins
# inside it
{
    my $body = ask('[a-z ]{4,30}</think>\n\n[A-Za-z ]{2,20}');
    my $r = json_req($PORT + 1, '/r/v1/chat/completions', $body);
    my $m = ref $r->{json} eq 'HASH' ? $r->{json}{choices}[0]{message} : {};
    my $p = json_req($PORT + 1, '/v1/chat/completions', $body);
    my $pm = ref $p->{json} eq 'HASH' ? $p->{json}{choices}[0]{message}
                                      : {};
    ok($r->{status} == 200 && ($m->{reasoning} // '') =~ /^[a-z ]{4,30}$/
       && ($m->{reasoning} // '') . '</think>' . ($m->{content} // '')
          eq ($pm->{content} // 'x'),
       'a template that opens the block: the answer begins as reasoning, '
       . 'its content after </think>')
        or diag($r->{body});
}

# the ids of the think block's closing mark, as SmolLM2 writes it (a
# logit_bias on them closes the block at once)
sub close_mark_ids {
    my $mark = json_req($PORT, '/v1/tokenize',
                        { model => 'base', prompt => '</think>',
                          add_special_tokens => JSON::PP::false() });
    return ref $mark->{json} eq 'HASH' ? @{ $mark->{json}{tokens} } : ();
}

# a JSON answer of a model that thinks first (SmolLM2 under
# DeepSeek-R1's template, whose prompt opens the block): the schema holds
# after the block (its closing mark favoured, so that it comes at once;
# were the schema to hold from the first token, the mark could never
# come and the whole answer would be reasoning)
{
    my @ids = close_mark_ids();
    my $body = { model => 'base', max_tokens => 60, temperature => 0,
                 logit_bias => { map { $_ => 8 } @ids },
                 response_format => {
                     type => 'json_schema',
                     json_schema => { name => 'n', schema => {
                         type => 'object', required => ['n'],
                         additionalProperties => JSON::PP::false(),
                         properties => { n => { type => 'integer',
                                                minimum => 0,
                                                maximum => 9 } } } } },
                 messages => [ { role => 'user',
                                 content => 'Pick a digit.' } ] };
    my $r = json_req($PORT, '/r1/v1/chat/completions', $body);
    my $c = ref $r->{json} eq 'HASH' ? $r->{json}{choices}[0] : {};
    my $json = SloraTest::json_decode_safe($c->{message}{content} // '');
    ok(@ids && $r->{status} == 200 && exists $c->{message}{reasoning}
       && ref $json eq 'HASH' && defined $json->{n}
       && $json->{n} =~ /^-?\d$/ && $c->{finish_reason} eq 'stop',
       'a schema and a prompt that opens the think block: the block '
       . '(here closed at once), then the content a value the schema '
       . 'admits, which ends it')
        or diag($r->{body});
}

# a structural tag's at_least_one where the answer thinks first: the
# first tag comes after the block (the engine starts it at the closing
# mark, the triggers' gate), here the whole content with
# stop_after_first
{
    my @ids = close_mark_ids();
    my $body = { model => 'base', max_tokens => 60, temperature => 0,
                 logit_bias => { map { $_ => 8 } @ids },
                 response_format => {
                     type => 'structural_tag', format => {
                         type => 'triggered_tags', triggers => ['#'],
                         tags => [ { type => 'tag', begin => '#<t>',
                                     content => { type => 'json_schema',
                                                  json_schema => {
                                         type => 'object',
                                         required => ['n'],
                                         additionalProperties =>
                                             JSON::PP::false(),
                                         properties => { n => {
                                             type => 'integer',
                                             minimum => 0,
                                             maximum => 9 } } } },
                                     end => '</t>' } ],
                         at_least_one => JSON::PP::true(),
                         stop_after_first => JSON::PP::true() } },
                 messages => [ { role => 'user',
                                 content => 'Pick a digit.' } ] };
    my $r = json_req($PORT, '/r1/v1/chat/completions', $body);
    my $c = ref $r->{json} eq 'HASH' ? $r->{json}{choices}[0] : {};
    my $content = $c->{message}{content} // '';
    my ($inner) = $content =~ /^#<t>(.*)<\/t>\z/s;
    my $json = SloraTest::json_decode_safe($inner // '');
    ok(@ids && $r->{status} == 200 && exists $c->{message}{reasoning}
       && ref $json eq 'HASH' && defined $json->{n}
       && $json->{n} =~ /^\d$/ && $c->{finish_reason} eq 'stop',
       'a structural tag\'s at_least_one and a prompt that opens the '
       . 'think block: the block, then the content one whole tag from its '
       . 'first byte')
        or diag($r->{body});
}

# tools ("auto") where the answer thinks first: the tag's trigger waits
# behind the closing mark (its gate: unit-tested in test_json_choice),
# and the answer comes back as the others do
{
    my $body = { model => 'base', max_tokens => 24, temperature => 0,
                 tools => [ { type => 'function', function => {
                     name => 'get_time', parameters => {
                         type => 'object', properties => {} } } } ],
                 messages => [ { role => 'user',
                                 content => 'What time is it?' } ] };
    my $r = json_req($PORT, '/r1/v1/chat/completions', $body);
    my $m = ref $r->{json} eq 'HASH' ? $r->{json}{choices}[0]{message} : {};
    ok($r->{status} == 200 && length($m->{reasoning} // ''),
       'tools where the answer thinks first: answered, its reasoning apart')
        or diag($r->{body});
}

# the Responses API: the reasoning an item of its own, before the message
{
    my $input = [ { role => 'user', content => 'Think, then name a colour.' } ];
    my $chat = json_req($PORT + 1, '/r/v1/chat/completions',
                        { model => 'base', max_tokens => 12, temperature => 0,
                          messages => $input });
    my $cm = ref $chat->{json} eq 'HASH'
             ? $chat->{json}{choices}[0]{message} : {};
    my $want = $cm->{reasoning} // '';
    my $r = json_req($PORT + 1, '/r/v1/responses',
                     { model => 'base', max_output_tokens => 12,
                       temperature => 0, input => $input,
                       store => JSON::PP::false() });
    my $out = ref $r->{json} eq 'HASH' ? $r->{json}{output} : [];
    ok(length $want && $r->{status} == 200 && ref $out eq 'ARRAY' && @$out == 2
       && $out->[0]{type} eq 'reasoning' && $out->[0]{id} =~ /^rs_/
       && ($out->[0]{content}[0]{type} // '') eq 'reasoning_text'
       && ($out->[0]{content}[0]{text} // '') eq $want
       && $out->[1]{type} eq 'message'
       && ($out->[1]{content}[0]{text} // 'x') eq ($cm->{content} // ''),
       'responses: a reasoning item of the think block, the chat\'s '
       . 'reasoning, then the message of its content')
        or diag($r->{body});

    my $st = stream_start($PORT + 1, 'POST', '/r/v1/responses',
                          body => json_encode({
                              model => 'base', max_output_tokens => 12,
                              temperature => 0, input => $input,
                              store => JSON::PP::false(),
                              stream => JSON::PP::true() }),
                          headers => { 'Content-Type' => 'application/json' });
    $st->wait_done(120);
    my @ev = grep { $_->{json} } @{ $st->{events} };
    my $deltas = join '', map { $_->{json}{delta} }
                 grep { ($_->{event} // '') eq 'response.reasoning_text.delta' }
                 @ev;
    my ($done) = grep { ($_->{event} // '') eq 'response.reasoning_text.done' }
                 @ev;
    my @added = map { $_->{json}{item}{type} }
                grep { ($_->{event} // '') eq 'response.output_item.added' }
                @ev;
    my ($last) = grep { ($_->{event} // '') eq 'response.incomplete'
                        || ($_->{event} // '') eq 'response.completed' } @ev;
    ok($deltas eq $want && $done && $done->{json}{text} eq $want
       && "@added" eq 'reasoning message' && $last
       && $last->{json}{response}{output}[0]{content}[0]{text} eq $want,
       'responses, streamed: reasoning_text deltas, its done event and the '
       . 'last response object hold the same reasoning, its item first')
        or diag(join("\n", map { $_->{raw} } @{ $st->{events} }));

    # the output sent back as input: the reasoning item taken, not
    # rendered
    my $next = json_req($PORT + 1, '/r/v1/responses',
                        { model => 'base', max_output_tokens => 4,
                          store => JSON::PP::false(),
                          input => [ @$input, @$out,
                                     { role => 'user', content => 'And?' } ] });
    is($next->{status}, 200, 'responses: an earlier reasoning item sent '
       . 'back as input is taken') or diag($next->{body});
}

# the Responses API with logprobs: the message's output_text entries are
# its own tokens', not the think block's (chat's cover every token). The
# tiny R1 model's answer is all block (its prompt opens it and random
# weights never close it), so its message has text and entries of none.
{
    my $input = [ { role => 'user', content => 'Think, then name a colour.' } ];
    my $chat = json_req($PORT + 1, '/r/v1/chat/completions',
                        { model => 'base', max_tokens => 12, temperature => 0,
                          logprobs => JSON::PP::true(), messages => $input });
    my $cj = ref $chat->{json} eq 'HASH' ? $chat->{json}{choices}[0] : {};
    my $body = { model => 'base', max_output_tokens => 12, temperature => 0,
                 include => [ 'message.output_text.logprobs' ],
                 store => JSON::PP::false(), input => $input };
    my $b = responses_both($body, $PORT + 1);
    my ($r, $out, $part, $st) = @{$b}{qw(r out part st)};
    ok($chat->{status} == 200
       && length($cj->{message}{reasoning} // '')
       && @{ $cj->{logprobs}{content} // [] } == 12
       && $r->{status} == 200 && ($out->[0]{type} // '') eq 'reasoning'
       && ($part->{text} // 'x') eq ''
       && ref $part->{logprobs} eq 'ARRAY' && !@{ $part->{logprobs} },
       'responses with logprobs: the think block\'s 12 tokens have entries '
       . 'in chat, none in the message\'s output_text')
        or diag($chat->{body}, "\n", $r->{body});

    my @ev = @{ $b->{events} };
    my @entries = map { @{ $_->{json}{logprobs} // [] } }
                  grep { ($_->{event} // '') =~ /^response\.output_text\./ }
                  @ev;
    my ($last) = grep { ($_->{event} // '') eq 'response.incomplete'
                        || ($_->{event} // '') eq 'response.completed' } @ev;
    my ($lm) = grep { $_->{type} eq 'message' }
               @{ $last ? $last->{json}{response}{output} : [] };
    ok($last && $lm && !@entries && !@{ $lm->{content}[0]{logprobs} // [] },
       'responses with logprobs, streamed: no output_text event and not '
       . 'the last response object carry the block\'s entries')
        or diag(join("\n", map { $_->{raw} } @{ $st->{events} }));
}

# the same with a block that closes: SmolLM2 held to a think block and a
# short answer (guided_regex); the message's entries spell its text, the
# block's tokens none of them
{
    my $body = { model => 'base', max_output_tokens => 60, temperature => 0,
                 guided_regex => '<think>[a-z ]{8,40}</think>\n\n'
                                 . '[A-Za-z ]{2,30}',
                 include => [ 'message.output_text.logprobs' ],
                 store => JSON::PP::false(),
                 input => 'Think, then name a colour.' };
    my $b = responses_both($body);
    my ($r, $out, $part, $st) = @{$b}{qw(r out part st)};
    my $tokens = join '', map { $_->{token} } @{ $part->{logprobs} // [] };
    ok($r->{status} == 200 && ($out->[0]{type} // '') eq 'reasoning'
       && length($out->[0]{content}[0]{text} // '') >= 8
       && ($part->{text} // '') =~ /^\n\n[A-Za-z ]+$/
       && $tokens eq $part->{text},
       'responses with logprobs, a closed block: the message\'s entries '
       . 'spell its text, none of the block\'s')
        or diag($r->{body});

    my @deltas = @{ $b->{deltas} };
    my $done = $b->{done};
    my $text = join '', map { $_->{json}{delta} } @deltas;
    my $streamed = join '', map { $_->{token} }
                   map { @{ $_->{json}{logprobs} // [] } } @deltas;
    my $kept = join '', map { $_->{token} }
               @{ $done ? $done->{json}{logprobs} // [] : [] };
    ok(length $text && $text eq ($part->{text} // '') && $streamed eq $text
       && $kept eq $text,
       'responses with logprobs, a closed block, streamed: the deltas\' and '
       . 'the done event\'s entries spell the message\'s text')
        or diag(join("\n", map { $_->{raw} } @{ $st->{events} }));
}

# usage counts the answer's reasoning tokens: those that began in the
# block, its marks with them (chat's completion_tokens_details, the
# Responses API's output_tokens_details). The count is read here off
# chat's logprobs, which cover every token: the tokens starting before
# the block's end.
{
    my $regex = '<think>[a-z ]{8,40}</think>\n\n[A-Za-z ]{2,30}';
    my $body = { %{ ask($regex) }, logprobs => JSON::PP::true() };
    my $r = json_req($PORT, '/r/v1/chat/completions', $body);
    my $j = ref $r->{json} eq 'HASH' ? $r->{json} : {};
    my $c = $j->{choices} ? $j->{choices}[0] : {};
    my $block = length('<think>' . ($c->{message}{reasoning} // '')
                       . '</think>');
    my ($at, $want) = (0, 0);
    for my $e (@{ $c->{logprobs}{content} // [] }) {
        $want++ if $at < $block;
        $at += length $e->{token};
    }
    my $u = $j->{usage} // {};
    my $got = $u->{completion_tokens_details}{reasoning_tokens};
    ok($r->{status} == 200 && $want > 3 && $at > $block
       && $want < ($u->{completion_tokens} // 0)
       && defined $got && $got == $want,
       "usage: a closed block's $want tokens are the chat answer's "
       . 'reasoning_tokens, the content\'s not')
        or diag($r->{body});

    my $st = stream_start($PORT, 'POST', '/r/v1/chat/completions',
                          body => json_encode({ %$body,
                                                stream => JSON::PP::true(),
                                                stream_options =>
                                                { include_usage =>
                                                  JSON::PP::true() } }),
                          headers => { 'Content-Type'
                                       => 'application/json' });
    $st->wait_done(120);
    my ($bad, $sum) = $st->sse_check('chat');
    my $su = $sum->{usage} // {};
    ok(!@$bad && ($su->{completion_tokens_details}{reasoning_tokens} // -1)
                 == $want
       && ($su->{completion_tokens} // -1) == ($u->{completion_tokens} // -2),
       'usage, streamed: the same reasoning_tokens in the usage chunk')
        or diag(json_encode([$bad, $su]));

    my $b = responses_both({ model => 'base', max_output_tokens => 60,
                             temperature => 0, guided_regex => $regex,
                             store => JSON::PP::false(),
                             input => 'Think, then name a colour.' });
    my $ru = ref $b->{r}{json} eq 'HASH' ? $b->{r}{json}{usage} // {} : {};
    my ($last) = grep { ($_->{event} // '') eq 'response.completed' }
                 @{ $b->{events} };
    my $lu = $last ? $last->{json}{response}{usage} // {} : {};
    ok(($ru->{output_tokens_details}{reasoning_tokens} // -1) == $want
       && ($ru->{output_tokens} // -1) == ($u->{completion_tokens} // -2)
       && ($lu->{output_tokens_details}{reasoning_tokens} // -1) == $want,
       'usage: the Responses answer\'s reasoning_tokens the same, whole '
       . 'and streamed')
        or diag(json_encode([$ru, $lu]));

    $r = json_req($PORT, '/r/v1/chat/completions',
                  ask('<think>[a-z ]{200}', max_tokens => 12));
    $u = ref $r->{json} eq 'HASH' ? $r->{json}{usage} // {} : {};
    ok(($u->{completion_tokens} // 0) == 12
       && ($u->{completion_tokens_details}{reasoning_tokens} // -1) == 12,
       'usage: a block never closed: every token a reasoning token')
        or diag($r->{body});

    $r = json_req($PORT, '/r/v1/chat/completions', ask('[A-Za-z ]{4,30}'));
    $u = ref $r->{json} eq 'HASH' ? $r->{json}{usage} // {} : {};
    my $r2 = json_req($PORT, '/v1/chat/completions', ask('[A-Za-z ]{4,30}'));
    my $u2 = ref $r2->{json} eq 'HASH' ? $r2->{json}{usage} // {} : {};
    ok(($u->{completion_tokens} // 0) > 0
       && ($u->{completion_tokens_details}{reasoning_tokens} // -1) == 0
       && ($u2->{completion_tokens} // 0) > 0
       && !exists $u2->{completion_tokens_details},
       'usage: no block, no reasoning tokens; without slora_reasoning no '
       . 'completion_tokens_details')
        or diag($r->{body}, "\n", $r2->{body});
}

# the same where a stop string holds back the closing mark and the text
# after it (it might be "</think>\n\nSorry"): a stream then reads the
# mark with the message's first tokens at once, and its deltas must
# still carry the entries the whole answer's message has, each once, in
# order, and spelling its text. Chat's entries cover every token: its
# stream's chunks, reasoning and content, carry the whole answer's list.
{
    my $regex = '<think>[a-z ]{8,40}</think>\n\n[A-Za-z ]{2,30}';
    my $stop = [ "</think>\n\nSorry" ];
    my $body = { model => 'base', max_output_tokens => 60, temperature => 0,
                 guided_regex => $regex, stop => $stop, top_logprobs => 2,
                 include => [ 'message.output_text.logprobs' ],
                 store => JSON::PP::false(),
                 input => 'Think, then name a colour.' };
    my $b = responses_both($body);
    my ($r, $part, $st, $done) = @{$b}{qw(r part st done)};
    my @deltas = @{ $b->{deltas} };
    my @whole = map { json_encode($_) } @{ $part->{logprobs} // [] };
    my @lp = map { @{ $_->{json}{logprobs} // [] } } @deltas;
    my @streamed = map { json_encode($_) } @lp;
    my @kept = map { json_encode($_) }
               @{ $done ? $done->{json}{logprobs} // [] : [] };
    my $text = join '', map { $_->{json}{delta} } @deltas;
    ok($r->{status} == 200 && ($part->{text} // '') =~ /^\n\n[A-Za-z ]+$/
       && join('', map { $_->{token} } @{ $part->{logprobs} }) eq $part->{text}
       && $text eq $part->{text}
       && join('', map { $_->{token} } @lp) eq $text
       && "@streamed" eq "@whole" && "@kept" eq "@whole",
       'responses with logprobs, the closing mark held back by a stop '
       . 'string: the deltas\' entries are the whole message\'s, one by one, '
       . 'and spell its text')
        or diag($r->{body}, "\n",
                join("\n", map { $_->{raw} } @{ $st->{events} }));

    my $chat = { model => 'base', max_tokens => 60, temperature => 0,
                 guided_regex => $regex, stop => $stop,
                 logprobs => JSON::PP::true(), top_logprobs => 2,
                 messages => [ { role => 'user',
                                 content => 'Think, then name a colour.' } ] };
    my $c = json_req($PORT, '/r/v1/chat/completions', $chat);
    my $cj = ref $c->{json} eq 'HASH' ? $c->{json}{choices}[0] : {};
    my @cw = map { json_encode($_) } @{ $cj->{logprobs}{content} // [] };
    my $cs = stream_start($PORT, 'POST', '/r/v1/chat/completions',
                          body => json_encode({ %$chat,
                                                stream => JSON::PP::true() }),
                          headers => { 'Content-Type' => 'application/json' });
    $cs->wait_done(120);
    my @cst = map { json_encode($_) }
              map { @{ $_->{json}{choices}[0]{logprobs}{content} // [] } }
              grep { $_->{json} && $_->{json}{choices}
                     && @{ $_->{json}{choices} } } @{ $cs->{events} };
    ok($c->{status} == 200 && length($cj->{message}{reasoning} // '')
       && @cw > 0 && "@cst" eq "@cw",
       'chat with logprobs, the same answer streamed: its chunks\' entries '
       . 'are the whole answer\'s, one by one')
        or diag($c->{body});
}

# a stop string inside the block (its closing mark) ends the answer
# there: the block is all of it, so the message has neither text nor
# entries; the tokens the stop string cut are the block's too, whole
# and streamed
{
    my $body = { model => 'base', max_output_tokens => 60, temperature => 0,
                 guided_regex => '<think>[a-z ]{8,40}</think>\n\n'
                                 . '[A-Za-z ]{2,30}',
                 stop => [ '</think>' ],
                 include => [ 'message.output_text.logprobs' ],
                 store => JSON::PP::false(),
                 input => 'Think, then name a colour.' };
    my $b = responses_both($body);
    my ($r, $out, $part, $st, $done) = @{$b}{qw(r out part st done)};
    my @entries = map { @{ $_->{json}{logprobs} // [] } }
                  grep { ($_->{event} // '') =~ /^response\.output_text\./ }
                  @{ $b->{events} };
    my ($last) = grep { ($_->{event} // '') eq 'response.completed' }
                 @{ $b->{events} };
    my ($lm) = grep { $_->{type} eq 'message' }
               @{ $last ? $last->{json}{response}{output} : [] };
    ok($r->{status} == 200 && ($out->[0]{type} // '') eq 'reasoning'
       && length($out->[0]{content}[0]{text} // '') >= 8
       && ($part->{text} // 'x') eq ''
       && ref $part->{logprobs} eq 'ARRAY' && !@{ $part->{logprobs} },
       'responses with logprobs, a stop string at the closing mark: the '
       . 'message has no text and no entries')
        or diag($r->{body});
    ok($last && !@entries && !($lm && @{ $lm->{content}[0]{logprobs} // [] }),
       'responses with logprobs, a stop string at the closing mark, '
       . 'streamed: no output_text event and not the last response object '
       . 'carry the block\'s entries')
        or diag(join("\n", map { $_->{raw} } @{ $st->{events} }));
}

# stop strings see the whole answer: one inside the block ends it there
my $stop = ask('<think>[a-z ]{8,40}</think>\n\n[A-Za-z ]{2,30}',
               stop => ['</think>']);
$on = whole('/r/v1', $stop);
ok($on->{status} == 200 && length($on->{msg}{reasoning} // '') >= 8
   && ($on->{msg}{content} // 'x') eq '' && $on->{finish} eq 'stop',
   'a stop string that is the closing mark: the reasoning, no content')
    or diag($on->{body});

# a stored response's reasoning is kept with it: continued by
# previous_response_id, Qwen3's template writes the think block of an
# answer past the last user query back, as it does when the reasoning
# item is sent back as input (a tiny model with Qwen3's template,
# SmolLM2's vocabulary)
{
    my $qwen = $s->prefix . '/qwen3.gguf';
    my ($rc, undef, $err) = SloraTest::run_cmd(
        slora_bin(), 'mkmodel', '--out', $qwen, '--tokenizer', real_model(),
        '--chat-template', SloraTest::repo_root()
        . '/ref/llama_cpp_python-0.3.36/vendor/llama.cpp/models/templates/'
        . 'Qwen-Qwen3-0.6B.jinja', '--layers', 1, '--hidden', 16,
        '--heads', 2, '--kv-heads', 1, '--ffn', 16, '--tied', 1,
        '--ctx', 1024);
    is($rc, 0, 'a tiny model with Qwen3\'s template') or diag($err);
    my $qs = SloraTest::Server->new(name => 'reasoning-qwen3',
                                    port => $PORT + 2, ready_timeout => 120);
    $qs->{http} = slora_http(model => $qwen,
                             engine => 'threads=1 slots=4 max_ctx=1024',
                             http_extra => '    slora_responses_store 1m;',
                             server_extra =>
                                 "        location /r/v1/ {\n"
                                 . "            slora_api openai;\n"
                                 . "            slora_reasoning on;\n"
                                 . "        }\n");
    $qs->start;

    my $ask = { role => 'user', content => 'Weather in Paris?' };
    my $first = json_req($PORT + 2, '/r/v1/responses', {
        model => 'base', temperature => 0, max_output_tokens => 60,
        input => [ $ask ],
        guided_regex => '<think>\nLook it up\.\n</think>\n\nSunny\.' });
    my $j = ref $first->{json} eq 'HASH' ? $first->{json} : {};
    my @out = @{ $j->{output} // [] };
    my @types = map { $_->{type} } @out;
    ok($first->{status} == 200 && "@types" eq 'reasoning message',
       'qwen3 responses: the think block a reasoning item, then the message')
        or diag($first->{body});

    # the turn continued, and sent back whole with and without the
    # reasoning item: an assistant's message after it keeps the answer
    # past the last user query, where the template writes its reasoning
    my $more = { role => 'assistant', content => 'More.' };
    my $next = sub {
        my ($body) = @_;
        my $r = json_req($PORT + 2, '/r/v1/responses', {
            model => 'base', max_output_tokens => 1,
            store => JSON::PP::false(), %$body });
        return ref $r->{json} eq 'HASH' && $r->{status} == 200
               ? $r->{json}{usage}{input_tokens} : "status $r->{status}";
    };
    my $continued = $next->({ previous_response_id => $j->{id} // '',
                              input => [ $more ] });
    my $sent = $next->({ input => [ $ask, @out, $more ] });
    my $bare = $next->({ input => [ $ask, $out[-1] // {}, $more ] });
    ok($continued eq $sent && $bare =~ /^\d+$/ && $sent > $bare,
       'qwen3 responses: continued by previous_response_id, the stored '
       . 'reasoning is in the prompt as when sent back '
       . "($continued, $sent; $bare tokens without it)");

    # in a conversation, the answer's reasoning is listed among its items
    # as the reasoning item it was, under the id it had, before its message
    my $made = json_req($PORT + 2, '/r/v1/conversations', {});
    my $cid = ref $made->{json} eq 'HASH' ? $made->{json}{id} // '' : '';
    my $in = json_req($PORT + 2, '/r/v1/responses', {
        model => 'base', temperature => 0, max_output_tokens => 60,
        conversation => $cid, input => [ $ask ],
        guided_regex => '<think>\nLook it up\.\n</think>\n\nSunny\.' });
    my @given = ref $in->{json} eq 'HASH' ? @{ $in->{json}{output} // [] }
                                          : ();
    my $page = http_req($PORT + 2, 'GET',
                        "/r/v1/conversations/$cid/items?order=asc");
    my @items = ref $page->{json} eq 'HASH' ? @{ $page->{json}{data} // [] }
                                            : ();
    my $shape = sub { join ' ', $_[0]{type} // '', $_[0]{id} // '',
                               $_[0]{content}[0]{text} // '' };
    ok(@given == 2 && @items == 3
       && join('|', map { $shape->($_) } @items[1, 2])
          eq join('|', map { $shape->($_) } @given),
       'qwen3 conversation: the answer\'s reasoning item listed under its '
       . 'id, with its text, before its message')
        or diag($in->{body}, $page->{body});

    ok($qs->stop->{graceful}, 'the Qwen3 nginx exits on QUIT');
    my @bad_q = $qs->bad_log_lines(errors => 1);
    ok(!@bad_q, 'no [error], [alert], [crit] or [emerg] in its log')
        or diag(join("\n", @bad_q));
}

ok($r1s->stop->{graceful}, 'the second nginx exits on QUIT');
my @bad_r1 = $r1s->bad_log_lines(errors => 1);
ok(!@bad_r1, 'no [error], [alert], [crit] or [emerg] in its log')
    or diag(join("\n", @bad_r1));
my $stop_res = $s->stop;
ok($stop_res->{graceful}, 'nginx exits on QUIT');
my @bad = $s->bad_log_lines(errors => 1);
ok(!@bad, 'no [error], [alert], [crit] or [emerg] in the log')
    or diag(join("\n", @bad));

done_testing();
