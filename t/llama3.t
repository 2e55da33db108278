# llama3.t: Llama 3.1's chat template and its tool format through nginx.
#
# nginx runs on the real SmolLM2-135M-Instruct with its chat template set
# to Llama 3.1's (`slora_chat_template llama3.1`; a second location
# 3.2's), so that the prompt the server builds and the answers it reads
# can be held to Meta's own Jinja templates (the reference sdist's
# llama.cpp/models/templates, rendered by tools/chat-reference as
# transformers renders them). t/python/llama3_client.py makes the checks
# with the official openai client: the server's prompts are the
# templates' text (tools, calls, results, today's date for 3.2), calls
# come back in the format (named, "required", "auto" from the answer's
# first bytes), and what the format cannot carry is a 400.

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;

my $PORT = 18128;
my $TEMPLATES = SloraTest::repo_root()
                . '/ref/llama_cpp_python-0.3.36/vendor/llama.cpp/models/'
                . 'templates';

my ($rc_imp, undef, $err_imp) = SloraTest::run_cmd(
    'python3', '-c', 'import openai, jinja2');
is($rc_imp, 0, 'python3 can import openai and jinja2')
    or BAIL_OUT("no openai or jinja2 package: $err_imp");
ok(-f "$TEMPLATES/meta-llama-Llama-3.1-8B-Instruct.jinja",
   "Meta's templates in the reference sdist")
    or BAIL_OUT("no $TEMPLATES: run tools/fetch-reference");

my $s = SloraTest::Server->new(name => 'llama3', port => $PORT,
                               ready_timeout => 120);
$s->{http} = slora_http(
    model => real_model(),
    engine => 'threads=2 slots=8 max_ctx=2048 max_tokens=128',
    http_extra => "    slora_chat_template llama3.1;\n",
    server_extra => "        location /v32/v1/ {\n"
                    . "            slora_api openai;\n"
                    . "            slora_chat_template llama3.2;\n"
                    . "        }\n");
$s->start;
pass('nginx started on SmolLM2 with Llama 3.1\'s template');

python_checks('llama3_client.py', [
    (map { "llama3.1 $_: the server's prompt is Meta's template's text" }
     'a plain chat', 'no system message', 'tools',
     'a call and its results sent back', 'without the generation prompt'),
    'llama3.2 tools: the server\'s prompt is Meta\'s template\'s text, '
    . 'today\'s date',
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
], "http://127.0.0.1:$PORT/v1", "http://127.0.0.1:$PORT/v32/v1",
   $TEMPLATES);

unlike($s->error_log, qr/\[(alert|emerg|crit)\]/,
       'no alert, crit or emerg in the error log');
$s->stop;

done_testing();
