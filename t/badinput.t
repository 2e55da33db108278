# badinput.t: every kind of bad request gets its documented status and an
# error body in OpenAI's shape, and none of them hurts the server.
#
# The cases are data: method, path, body, expected status (and error code
# where one is documented).  Each response must carry
# {"error":{"message","type","param","code"}} as JSON with a non-empty
# message and the type OpenAI gives client errors, invalid_request_error.
# After all of them a good request still works and the error log has no
# [error] (a client's mistake is not the server's), [alert], [crit] or
# [emerg].  The server's limits are
# small (max_ctx=256, max_tokens=128, client_max_body_size 1m) so that the
# limit cases are cheap. A location renders chats in Mistral's template,
# which writes the tools before each user message: a request that would
# render to hundreds of megabytes is a 413 before the text is made.
# Another serves tenants, with a store of responses and conversations:
# a tenant's name no request can carry is a 403 on every path.

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;

my $PORT = 18105;
my $MAX_CTX = 256;
my $MAX_TOKENS = 128;

my $model = tiny_model();
my $s = SloraTest::Server->new(name => 'badinput', port => $PORT);
make_adapters($s->prefix . '/adapters', $model, ['ad0']);
$s->{http} = slora_http(
    model => $model, adapters => $s->prefix . '/adapters',
    engine => "threads=1 slots=8 max_ctx=$MAX_CTX max_tokens=$MAX_TOKENS",
    http_extra => "    client_max_body_size 1m;\n"
                  . "    slora_responses_store 1m;\n",
    server_extra => "        location /mistral/v1/ {\n"
                    . "            slora_api openai;\n"
                    . "            slora_chat_template mistral;\n"
                    . "        }\n" . tenant_location()
                    . "        location /h/v1/ {\n"
                    . "            slora_api openai;\n"
                    . "            slora_tenant \$http_x_tenant;\n"
                    . "        }\n");
$s->start;
pass('nginx started, engine ready');

my $CHAT = '/v1/chat/completions';
my $COMP = '/v1/completions';

sub chat {
    my (%o) = @_;
    return json_encode({ model => 'base',
                         messages => [{ role => 'user', content => 'hi' }],
                         max_tokens => 4, %o });
}

sub comp {
    my (%o) = @_;
    return json_encode({ model => 'base', prompt => 'hi', max_tokens => 4,
                         %o });
}

my $long = join(' ', map { "word$_" } 1 .. 400);       # > 256 tokens
my $fits = join(' ', ('hello') x 180);                # < 256 tokens

my @cases = (
    # name, method, path, body, status, code
    ['malformed JSON', 'POST', $CHAT, '{"model": "base", "messages": [', 400],
    ['JSON array body', 'POST', $CHAT, '[1, 2]', 400],
    ['empty body', 'POST', $CHAT, '', 400],
    ['trailing garbage', 'POST', $CHAT, chat() . 'x', 400],
    ['messages a string', 'POST', $CHAT,
     json_encode({ model => 'base', messages => 'hi' }), 400],
    ['messages missing', 'POST', $CHAT, json_encode({ model => 'base' }),
     400],
    ['messages empty', 'POST', $CHAT,
     json_encode({ model => 'base', messages => [] }), 400],
    ['content a number', 'POST', $CHAT,
     json_encode({ model => 'base',
                   messages => [{ role => 'user', content => 5 }] }), 400],
    ['role missing', 'POST', $CHAT,
     json_encode({ model => 'base', messages => [{ content => 'hi' }] }),
     400],
    ['model missing', 'POST', $CHAT,
     json_encode({ messages => [{ role => 'user', content => 'hi' }] }),
     400],
    ['model a number', 'POST', $CHAT, chat(model => 7), 400],
    ['max_tokens a string', 'POST', $CHAT, chat(max_tokens => '10'), 400],
    ['max_tokens 0', 'POST', $CHAT, chat(max_tokens => 0), 400],
    ['max_tokens -5', 'POST', $CHAT, chat(max_tokens => -5), 400],
    ['max_tokens 1.5', 'POST', $CHAT, '{"model":"base","messages":[{"role"'
     . ':"user","content":"hi"}],"max_tokens":1.5}', 400],
    ['max_tokens above the limit', 'POST', $CHAT,
     chat(max_tokens => $MAX_TOKENS + 1), 400],
    ['max_tokens huge', 'POST', $CHAT, '{"model":"base","messages":[{"role"'
     . ':"user","content":"hi"}],"max_tokens":100000000000000000000}', 400],
    ['temperature a string', 'POST', $CHAT, chat(temperature => 'hot'), 400],
    ['temperature negative', 'POST', $CHAT, chat(temperature => -1), 400],
    ['stream a string', 'POST', $CHAT, chat(stream => 'yes'), 400],
    ['n = 0', 'POST', $CHAT, chat(n => 0), 400],
    ['n = 17, streamed', 'POST', $CHAT,
     chat(n => 17, stream => JSON::PP::true()), 400],
    ['n a string', 'POST', $COMP, comp(n => '2'), 400],
    ['invalid UTF-8 in content', 'POST', $CHAT,
     qq({"model":"base","messages":[{"role":"user","content":"a\xff\xfeb"}],)
     . qq("max_tokens":4}), 400],
    ['overlong UTF-8 in content', 'POST', $CHAT,
     qq({"model":"base","messages":[{"role":"user","content":"\xc0\xaf"}],)
     . qq("max_tokens":4}), 400],
    ['unknown model', 'POST', $CHAT, chat(model => 'nosuch'), 404],
    ['unknown model, streamed', 'POST', $CHAT,
     chat(model => 'nosuch', stream => JSON::PP::true()), 404],
    ['prompt longer than the context', 'POST', $CHAT,
     chat(messages => [{ role => 'user', content => $long }]), 413,
     'context_length_exceeded'],
    ['prompt + max_tokens beyond the context', 'POST', $CHAT,
     chat(messages => [{ role => 'user', content => $fits }],
          max_tokens => 100), 413, 'context_length_exceeded'],
    ['10 MB body', 'POST', $CHAT,
     '{"model":"base","messages":[{"role":"user","content":"'
     . ('a' x (10 << 20)) . '"}]}', 413],
    ['completions: prompt a number', 'POST', $COMP, comp(prompt => 3), 400],
    ['completions: prompt missing', 'POST', $COMP,
     json_encode({ model => 'base' }), 400],
    ['completions: invalid UTF-8', 'POST', $COMP,
     qq({"model":"base","prompt":"\xed\xa0\x80","max_tokens":4}), 400],
    ['completions: max_tokens 0', 'POST', $COMP, comp(max_tokens => 0), 400],
    ['completions: unknown model', 'POST', $COMP, comp(model => 'zz'), 404],
    ['completions: prompt too long', 'POST', $COMP, comp(prompt => $long),
     413, 'context_length_exceeded'],
    ['GET chat/completions', 'GET', $CHAT, '', 405],
    ['PUT completions', 'PUT', $COMP, comp(), 405],
    ['POST models', 'POST', '/v1/models', '{}', 405],
    ['GET unknown path', 'GET', '/v1/nope', '', 404],
    # quoted in the message: cut or raw, it must stay UTF-8 (JSON)
    ['unknown model of 200 two-byte characters (the message cut in one)',
     'POST', $CHAT, chat(model => "\x{e9}" x 200), 404, 'model_not_found'],
    ['unknown path with a raw 0xFF byte', 'GET', '/v1/%FF', '', 404],
    ['POST unknown path', 'POST', '/v1/chat/nope', chat(), 404],
    # quoted in the message, a long URI fills the message's buffer: its
    # end is cut, never written past
    ['unknown path of 600 bytes', 'GET', '/v1/' . ('x' x 600), '', 404,
     'unknown_url'],
    ['PUT a model of 600 bytes', 'PUT', '/v1/models/' . ('m' x 600), '{}',
     405, 'method_not_allowed'],
    ['stream: no prompt', 'GET', '/v1/stream?model=base', '', 400],
    ['stream: unknown model', 'GET', '/v1/stream?model=nosuch&prompt=hi', '',
     404],
    ['stream: max_tokens 0', 'GET',
     '/v1/stream?model=base&prompt=hi&max_tokens=0', '', 400],
    ['stream: invalid UTF-8 prompt', 'GET',
     '/v1/stream?model=base&prompt=%FF%FE', '', 400],
    ['stream: format neither sse nor text', 'GET',
     '/v1/stream?model=base&prompt=hi&format=json', '', 400,
     'invalid_value'],
    ['stream: format text, unknown model', 'GET',
     '/v1/stream?model=nosuch&prompt=hi&format=text', '', 404],
    # an escape that is none: refused, not read as something else
    ['stream: "%zz" in the prompt', 'GET',
     '/v1/stream?model=base&prompt=a%zzb', '', 400, 'invalid_value'],
    ['stream: a "%" ending the query', 'GET',
     '/v1/stream?model=base&prompt=hi%', '', 400, 'invalid_value'],
    ['stream: "%4" ending the query', 'GET',
     '/v1/stream?model=base&prompt=hi%4', '', 400, 'invalid_value'],
    ['a stored response with "true%" for its stream', 'GET',
     '/v1/responses/resp_x?stream=true%', '', 400, 'invalid_value'],
);

for my $c (@cases) {
    my ($name, $method, $path, $body, $want, $code) = @$c;
    my %h = length $body || $method ne 'GET'
            ? ('Content-Type' => 'application/json') : ();
    my $r = http_req($PORT, $method, $path, body => $body,
                     headers => \%h, timeout => 30);
    my @why;
    push @why, "status $r->{status}" if $r->{status} != $want;
    push @why, 'Content-Type ' . ($r->{headers}{'content-type'} // 'none')
        unless ($r->{headers}{'content-type'} // '')
               =~ m{^application/json};
    push @why, check_error_object($r->{json});
    if (!@why) {
        push @why, "error.type $r->{json}{error}{type}"
            unless $r->{json}{error}{type} eq 'invalid_request_error';
    }
    if (defined $code && !@why) {
        push @why, 'error.code ' . ($r->{json}{error}{code} // 'null')
            unless ($r->{json}{error}{code} // '') eq $code;
    }
    if (!@why && $want == 429) {
        push @why, 'no Retry-After' unless $r->{headers}{'retry-after'};
    }
    ok(!@why, "$name: $want" . (defined $code ? " $code" : '')
              . ' with an OpenAI error body')
        or diag(join('; ', @why) . ': '
                . substr($r->{body} // '', 0, 300));
}

# escapes that are escapes are read as before: a prompt with "%2C%20",
# "+" a space, gets its answer
{
    my $r = http_req($PORT, 'GET', '/v1/stream?model=base&prompt=Hi%2C%20'
                     . 'how+are+you%3F&max_tokens=2&format=text',
                     timeout => 30);
    ok($r->{status} == 200 && length($r->{body} // ''),
       'stream: a prompt of valid escapes: 200 with text')
        or diag("status $r->{status}: " . substr($r->{body} // '', 0, 200));
}

# A prompt too long for the context: the 413 counts its tokens up to
# twice the context (the count needed to know how much to cut), and says
# "more than" that beyond, where the worker stopped encoding. " hello"
# is one token a word: the counts of 100 and 200 give that of 300.
{
    my @n = map {
        my $r = json_req($PORT, '/v1/tokenize',
                         { model => 'base',
                           prompt => join(' ', ('hello') x $_) });
        $r->{json}{count} // -1;
    } 100, 200;
    my $want = 2 * $n[1] - $n[0];
    ok($n[1] > $n[0] && $want > $MAX_CTX && $want < 2 * $MAX_CTX,
       "300 hellos are $want tokens, past the context, within twice it");
    for my $c ([300, qr/resulted in $want tokens/],
               [3000, qr/resulted in more than ${\(2 * $MAX_CTX)} tokens/])
    {
        my $r = json_req($PORT, $COMP,
                         { model => 'base', max_tokens => 4,
                           prompt => join(' ', ('hello') x $c->[0]) });
        my $msg = $r->{json}{error}{message} // '';
        ok($r->{status} == 413 && $msg =~ $c->[1],
           "$c->[0] hellos: 413 saying $c->[1]")
            or diag("$r->{status}: $msg");
    }
}

# A template that repeats a part a turn (Mistral's tools before each
# user message): 600 KB of messages that would render to some 400 MB.
# A 413 saying so, before the text is made: no worker's memory ever
# grows past 200 MB (it held the whole render before).
{
    my @msgs = ({ role => 'user', content => 'x' });
    push @msgs, { role => 'assistant', content => 'y' },
                { role => 'user', content => 'x' } for 1 .. 8000;
    my $r = json_req($PORT, '/mistral/v1/chat/completions',
                     { model => 'base', messages => \@msgs,
                       tools => [{ type => 'function', function => {
                           name => 'f', description => 'd' x 50000,
                           parameters => { type => 'object',
                                           properties => {} } } }] },
                     timeout => 60);
    ok($r->{status} == 413
       && ($r->{json}{error}{code} // '') eq 'context_length_exceeded'
       && ($r->{json}{error}{message} // '') =~ /render to \d+ bytes/,
       'messages that render to 400 MB: 413 before the text is made')
        or diag("$r->{status}: " . substr($r->{body} // '', 0, 300));
    my @peak;
    for my $d (glob('/proc/[0-9]*')) {
        my $st = SloraTest::_slurp("$d/status") // next;
        next unless $st =~ /^PPid:\s+(\d+)$/m && $1 == $s->pid;
        next unless (SloraTest::_slurp("$d/cmdline") // '') =~ /worker/;
        push @peak, $st =~ /^VmHWM:\s+(\d+) kB$/m ? $1 : 0;
    }
    ok(@peak && !grep({ $_ > 200 * 1024 } @peak),
       'no worker past 200 MB at its peak (' . join(', ', @peak) . ' kB)');
}

# A tenant's name longer than a request slot's field (127 bytes) is no
# tenant's: a 403 unknown_tenant wherever it is used, a conversation
# made under it too (the store refused its record as if full: a 507).
for my $c (['chat', '/chat/completions', chat()],
           ['conversation', '/conversations', '{}'],
           ['conversation with items', '/conversations',
            json_encode({ items => [{ role => 'user', content => 'x' }] })])
{
    my $r = json_req($PORT, '/t/' . ('z' x 200) . "/v1$c->[1]", $c->[2]);
    my @why = check_error_object($r->{json});
    push @why, "status $r->{status}" if $r->{status} != 403;
    push @why, 'error.code ' . ($r->{json}{error}{code} // 'none')
        if !@why && $r->{json}{error}{code} ne 'unknown_tenant';
    ok(!@why, "$c->[0] under a tenant name of 200 bytes: 403 unknown_tenant")
        or diag(join('; ', @why) . ': ' . substr($r->{body} // '', 0, 300));
}

# Without slora_catalog a tenant is only a name, its fair share
# account: one that no Redis catalog could hold ("/", a leading ".")
# is served all the same, as any other.
for my $t ('acme/prod', '.ops') {
    my $r = http_req($PORT, 'POST', '/h/v1/chat/completions', body => chat(),
                     headers => { 'Content-Type' => 'application/json',
                                  'X-Tenant' => $t });
    ok($r->{status} == 200 && ref $r->{json}{choices} eq 'ARRAY',
       "tenant \"$t\" without a catalog: served")
        or diag("$r->{status} " . substr($r->{body} // '', 0, 300));
}

# More choices than the server has slots: 429, the slots it took for the
# first eight given back (below).
{
    my $r = http_req($PORT, 'POST', $CHAT, body => chat(n => 9),
                     headers => { 'Content-Type' => 'application/json' });
    my @why = check_error_object($r->{json});
    push @why, "status $r->{status}" if $r->{status} != 429;
    push @why, 'error.type ' . ($r->{json}{error}{type} // 'none')
        if !@why && $r->{json}{error}{type} ne 'rate_limit_error';
    push @why, 'no Retry-After' unless $r->{headers}{'retry-after'};
    ok(!@why, 'n = 9 on 8 slots: 429 rate_limit_error with Retry-After')
        or diag(join('; ', @why) . ': ' . substr($r->{body} // '', 0, 300));
}

# The status endpoint counts no request left running or holding a slot.
my $st = wait_for(5, sub {
    my $x = $s->status or return 0;
    return $x->{slots}{used} == 0 && $x->{requests}{running} == 0 ? $x : 0;
});
ok($st, 'no slot held after the bad requests');

# The same server still answers good requests, chat and text, base and
# adapter, with the limits just inside.
for my $g (['chat, base', $CHAT, chat()],
           ['chat, adapter', $CHAT, chat(model => 'ad0')],
           ['chat, max_tokens at the limit', $CHAT,
            chat(max_tokens => $MAX_TOKENS)],
           ['text completion', $COMP, comp()],
           ['valid UTF-8 content', $CHAT,
            chat(messages => [{ role => 'user',
                                content => "caf\x{e9} \x{1F600}" }])])
{
    my $r = http_req($PORT, 'POST', $g->[1], body => $g->[2],
                     headers => { 'Content-Type' => 'application/json' });
    my $j = ref $r->{json} eq 'HASH' ? $r->{json} : {};
    my $c = ref $j->{choices} eq 'ARRAY' ? $j->{choices} : [];
    my $u = ref $j->{usage} eq 'HASH' ? $j->{usage} : {};
    my $text = $g->[1] eq $CHAT ? ($c->[0]{message}{content} // undef)
                                : ($c->[0]{text} // undef);
    ok($r->{status} == 200 && @$c == 1 && defined $text
       && ($c->[0]{finish_reason} // '') =~ /^(?:stop|length)$/
       && ($u->{prompt_tokens} // 0) > 0
       && ($u->{completion_tokens} // 0) > 0
       && $u->{total_tokens} == $u->{prompt_tokens}
                                + $u->{completion_tokens},
       "good request: $g->[0]: one choice with its text, finish_reason and"
       . ' usage') or diag("$r->{status}: " . substr($r->{body}, 0, 300));
}

# As many choices as slots: each its index, text and finish_reason; usage
# counts the prompt once and each choice's tokens (one log-probability
# entry a token).
{
    my $r = http_req($PORT, 'POST', $CHAT,
                     body => chat(n => 8, temperature => 1, seed => 5,
                                  logprobs => JSON::PP::true()),
                     headers => { 'Content-Type' => 'application/json' });
    my $j = ref $r->{json} eq 'HASH' ? $r->{json} : {};
    my $c = ref $j->{choices} eq 'ARRAY' ? $j->{choices} : [];
    my $u = ref $j->{usage} eq 'HASH' ? $j->{usage} : {};
    my $tokens = 0;
    $tokens += scalar @{ $_->{logprobs}{content} // [] } for @$c;
    ok($r->{status} == 200
       && join(',', map { $_->{index} // '?' } @$c) eq '0,1,2,3,4,5,6,7'
       && !grep({ !defined $_->{message}{content}
                  || ($_->{finish_reason} // '') !~ /^(?:stop|length)$/ }
                @$c)
       && $tokens > 0 && ($u->{completion_tokens} // -1) == $tokens
       && $u->{total_tokens} == $u->{prompt_tokens} + $tokens,
       'n = 8 on 8 slots: eight choices, usage their tokens')
        or diag("$r->{status}: " . substr($r->{body}, 0, 300));
}

my $stop = $s->stop;
ok($stop->{graceful}, 'nginx exits on QUIT');
my @bad = $s->bad_log_lines(
    errors => 1, allow => [qr/client intended to send too large body/]);
ok(!@bad, 'no [error] (but nginx\'s own for the 10 MB body), [alert], '
          . '[crit] or [emerg] in the error log')
    or diag(join("\n", @bad));
unlike($s->error_log, qr/exited on signal/, 'no process crashed');

done_testing();
