# templates.t: chat templates and their tool formats, held to the models'
# own Jinja templates.
#
# The reference is tools/chat-reference, which renders a chat with a
# model's Jinja template as transformers does (and vLLM through it); the
# server's side is the prompt it builds (/tokenize, read back by
# /detokenize). Two servers:
#
# - the real SmolLM2-135M-Instruct: its own template (ChatML, and the
#   system message it writes when a chat has none, from the GGUF), and
#   `slora_chat_template llama3.1` (and `llama3.2` on a second location)
#   against Meta's Llama 3.1 and 3.2 templates from the reference sdist;
#   calls come back in Llama 3.1's format (named, "required", "auto"
#   from the answer's first bytes), and what it cannot carry is a 400;
# - a tiny random Qwen2 model made with Qwen2.5-7B-Instruct's template
#   (slora mkmodel --chat-template): its default system message and
#   Hermes' tools, calls and results, exactly as that template writes
#   them;
# - six tiny models made with Mistral's templates (NeMo's, Small 3.2's,
#   Devstral's, Ministral 3's), Qwen3's (its earlier replies' reasoning
#   dropped, a tool loop's kept) and DeepSeek-R1-Distill-Llama's (its
#   earlier replies' reasoning dropped): plain chats with and without
#   a system message (the template's default, today's date in Small
#   3.2's); Mistral's tools, calls with their ids (OpenAI's long ones
#   cut to the 9 characters the templates take) and results, each in
#   its template's own format.
#
# t/python/templates_client.py makes the checks with the openai client.

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;
use File::Path qw(make_path);

my $PORT = 18128;
my $QPORT = 18129;
my $MODELS = SloraTest::repo_root()
             . '/ref/llama_cpp_python-0.3.36/vendor/llama.cpp/models';
my $TEMPLATES = "$MODELS/templates";

my ($rc_imp, undef, $err_imp) = SloraTest::run_cmd(
    'python3', '-c', 'import openai, jinja2');
is($rc_imp, 0, 'python3 can import openai and jinja2')
    or BAIL_OUT("no openai or jinja2 package: $err_imp");
ok(-f "$TEMPLATES/meta-llama-Llama-3.1-8B-Instruct.jinja"
   && -f "$MODELS/ggml-vocab-qwen2.gguf",
   "the templates and Qwen2's vocabulary in the reference sdist")
    or BAIL_OUT("no $TEMPLATES: run tools/fetch-reference");

my $s = SloraTest::Server->new(name => 'templates', port => $PORT,
                               ready_timeout => 120);
$s->{http} = slora_http(
    model => real_model(),
    engine => 'threads=2 slots=8 max_ctx=2048 max_tokens=128',
    server_extra => join('', map {
        my ($loc, $t) = @$_;
        "        location /$loc/v1/ {\n"
        . "            slora_api openai;\n"
        . "            slora_chat_template $t;\n"
        . "        }\n"
    } ['l31', 'llama3.1'], ['l32', 'llama3.2'], ['mn', 'mistral-v3-tekken'],
      ['m7', 'mistral-v7-tekken']));
$s->start;
pass('nginx started on SmolLM2');

# a Qwen2 of random weights with Qwen2.5's template: only its prompts are
# looked at
my $qdir = $s->prefix . '/qwen';
make_path($qdir);
my $qwen = "$qdir/qwen25.gguf";
my ($rc_mk, undef, $err_mk) = SloraTest::run_cmd(
    slora_bin(), 'mkmodel', '--out', $qwen, '--arch', 'qwen2',
    '--tokenizer', "$MODELS/ggml-vocab-qwen2.gguf",
    '--chat-template', "$TEMPLATES/Qwen-Qwen2.5-7B-Instruct.jinja",
    '--layers', 1, '--hidden', 16, '--heads', 2, '--kv-heads', 1,
    '--ffn', 16, '--tied', 1, '--ctx', 1024);
is($rc_mk, 0, 'a tiny Qwen2 with Qwen2.5\'s template') or diag($err_mk);
my $q = SloraTest::Server->new(name => 'templates-qwen', port => $QPORT,
                               ready_timeout => 120);
$q->{http} = slora_http(model => $qwen,
                        engine => 'threads=1 slots=4 max_ctx=1024');
$q->start;
pass('nginx started on it');

# Mistral's templates and Qwen3's, each on a tiny model that carries it
# (SmolLM2's vocabulary: the control words are plain text there, read
# back as written)
my @MISTRAL = ('mistralai-Mistral-Nemo-Instruct-2407.jinja',
               'Mistral-Small-3.2-24B-Instruct-2506.jinja',
               'unsloth-mistral-Devstral-Small-2507.jinja',
               'mistralai-Ministral-3-14B-Reasoning-2512.jinja',
               'Qwen-Qwen3-0.6B.jinja',
               'deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja');
my (@mservers, @mpairs);
for my $i (0 .. $#MISTRAL) {
    my $m = "$qdir/mistral$i.gguf";
    my ($rc, undef, $err) = SloraTest::run_cmd(
        slora_bin(), 'mkmodel', '--out', $m, '--tokenizer', real_model(),
        '--chat-template', "$TEMPLATES/$MISTRAL[$i]", '--layers', 1,
        '--hidden', 16, '--heads', 2, '--kv-heads', 1, '--ffn', 16,
        '--tied', 1, '--ctx', 2048);
    is($rc, 0, "a tiny model with $MISTRAL[$i]") or diag($err);
    my $ms = SloraTest::Server->new(name => "templates-mistral$i",
                                    port => 18150 + $i,
                                    ready_timeout => 120);
    $ms->{http} = slora_http(model => $m,
                             engine => 'threads=1 slots=4 max_ctx=2048');
    $ms->start;
    push @mservers, $ms;
    push @mpairs, 'http://127.0.0.1:' . (18150 + $i) . "=$MISTRAL[$i]";
}

python_checks('templates_client.py', [
    (map { my $t = $_; map { "$t $_: the server's prompt is the template's "
                             . 'text' }
                        'without a system message', 'with one',
                        'several turns' } @MISTRAL),
    (map { my $t = $_; map { "$t $_: the server's prompt is the template's "
                             . 'text' }
                        'tools', 'calls and their results sent back',
                        'the chat ending with the results' }
     @MISTRAL[0 .. 3]),
    "$MISTRAL[0]: call ids under 9 characters: a 400",
    "$MISTRAL[1]: call ids under 9 characters: a 400",
    "$MISTRAL[2]: call ids under 9 characters: the template's text",
    "$MISTRAL[3]: call ids under 9 characters: the template's text",
    (map { "Qwen-Qwen3-0.6B.jinja $_: the server's prompt is the "
           . "template's text" } 'enable_thinking false', 'tools',
                                 'calls and their results sent back',
                                 'earlier reasoning dropped',
                                 'a tool loop\'s reasoning kept',
                                 'reasoning_content kept',
                                 'the last message\'s empty block'),
    "$MISTRAL[5] earlier reasoning dropped: the server's prompt is the "
    . "template's text",
    (map { "smollm2 $_: the server's prompt is its template's text" }
     'without a system message', 'with one', 'without the generation '
     . 'prompt'),
    (map { "llama3.1 $_: the server's prompt is Meta's template's text" }
     'a plain chat', 'no system message', 'tools',
     'a call and its results sent back', 'without the generation prompt'),
    'llama3.2 tools: the server\'s prompt is Meta\'s template\'s text, '
    . 'today\'s date',
    (map { "qwen2.5 $_: the server's prompt is the template's text" }
     'without a system message', 'tools', 'tools and a system message',
     'calls and their results sent back'),
    (map { ("mistral $_ auto, shown calls in its format: the answer calls, "
            . 'the first get_weather, each admitted, content null, finish '
            . 'tool_calls', "mistral $_ auto stream: the same calls") }
     'list', 'named'),
    'named: one call of that function, its arguments admitted, content '
    . 'null, finish stop',
    'named stream: the same call under index 0',
    'required: one call (one a message in Llama 3.1\'s format), admitted, '
    . 'finish tool_calls',
    'required stream: the same call',
    'auto, shown calls in its format: the answer a call, admitted, content '
    . 'null, finish tool_calls',
    'auto stream: the same call under index 0',
    'auto, nothing to call: text, the stream the same',
    'a call and its result sent back: answered, the prompt the tokens '
    . '/tokenize counts',
    'two calls in one message raise BadRequestError',
    'tools with no user message raise BadRequestError',
], "http://127.0.0.1:$PORT", "http://127.0.0.1:$QPORT", $TEMPLATES,
   real_model(), @mpairs);

unlike(join('', map { $_->error_log } $s, $q, @mservers),
       qr/\[(alert|emerg|crit)\]/,
       'no alert, crit or emerg in the error logs');
$_->stop for @mservers;
$q->stop;
$s->stop;

done_testing();
