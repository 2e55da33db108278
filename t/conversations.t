# conversations.t: the Conversations API over a real nginx and engine
# (a tiny random model, greedy): a conversation made with items and
# metadata is read back (its object, its items a page at a time); a
# response in it reads its items before its input (the same tokens and
# the same answer as those items sent as input) and adds its input and
# answer to it, store false or not (stored, its own turn: continued by
# the conversation, not by previous_response_id); streamed and
# background ones add at their end, a cancelled one nothing; an item
# removed is gone from the list and from the next prompt while the
# others keep their ids; items added answer with their ids; metadata is
# replaced; sixteen requests adding to one large conversation at once
# all land; another tenant finds nothing, and a tenant named
# "responses" or "conversations" its own; a deleted conversation is a
# 404 for GET and for a response; /status and /metrics count the
# conversations; HEAD is answered where GET is; bad bodies, ids,
# methods and paths each get their error. (t/openai.t drives the same
# through the official client.)

use strict;
use warnings;

use lib 't/lib';
use IO::Socket::INET;
use SloraTest;
use Test::More;

my $PORT = 18160;

my $model = tiny_model(ctx => 4096);
my $s = SloraTest::Server->new(name => 'conversations', port => $PORT);
mkdir $s->prefix . '/adapters';
$s->{http} = slora_http(
    model => $model, adapters => $s->prefix . '/adapters',
    engine => 'threads=1 slots=16 max_ctx=4096 max_tokens=3000',
    http_extra => "    slora_responses_store 1m;\n",
    server_extra => <<'EOF');
        location ~ ^/t/(?<tenant>[a-z]+)/v1/ {
            slora_api openai;
            slora_tenant $tenant;
        }
EOF
$s->start;
pass('nginx started with a store');

sub post {
    my ($path, $obj) = @_;
    my $r = json_req($PORT, $path, $obj);
    return ($r->{status}, $r->{json} // {}, $r->{body} // '');
}

sub get {
    my ($path, $method) = @_;
    my $r = http_req($PORT, $method // 'GET', $path);
    return ($r->{status}, $r->{json} // {}, $r->{body} // '');
}

my ($T, $F) = (JSON::PP::true(), JSON::PP::false());

sub user { return { role => 'user', content => $_[0] } }

sub respond {
    my (%b) = @_;
    return post('/v1/responses', { model => 'base', max_output_tokens => 6,
                                   temperature => 0, %b });
}

sub out_text {
    my ($j) = @_;
    return join '', map { $_->{text} // '' }
                    map { @{ $_->{content} // [] } }
                    grep { ($_->{type} // '') eq 'message' }
                    @{ $j->{output} // [] };
}

sub all_items {
    my ($cid) = @_;
    my ($st, $j) = get("/v1/conversations/$cid/items?order=asc&limit=100");
    return $st == 200 ? $j->{data} : undef;
}

my @start = ({ type => 'message', role => 'user', content => 'Hello there.' },
             { role => 'assistant',
               content => [{ type => 'output_text', text => 'Hi! Ask.' }] });

# 1. made with items and metadata, and read back
my ($st, $c, $body) = post('/v1/conversations',
                           { items => \@start,
                             metadata => { topic => 'demo' } });
is($st, 200, 'POST /v1/conversations: 200') or diag($body);
my $cid = $c->{id} // '';
like($cid, qr/^conv_[0-9a-f]{24}$/, "its id: $cid");
ok(($c->{object} // '') eq 'conversation'
   && ($c->{metadata}{topic} // '') eq 'demo'
   && abs(($c->{created_at} // 0) - time()) < 60,
   'its object: conversation, the metadata, created now');

my ($st2, $c2) = get("/v1/conversations/$cid");
is_deeply([$st2, $c2], [200, $c], 'GET gives the same object');

my ($sl, $page) = get("/v1/conversations/$cid/items");
my $hex = substr($cid, 5);
is($sl, 200, 'GET .../items: 200');
is_deeply([map { $_->{id} } @{ $page->{data} }],
          ["msg_${hex}_1", "msg_${hex}_0"],
          'two items, newest first, named after the conversation');
is_deeply([map { ($_->{role}, $_->{content}[0]{type}, $_->{content}[0]{text}) }
           reverse @{ $page->{data} }],
          ['user', 'input_text', 'Hello there.',
           'assistant', 'output_text', 'Hi! Ask.'],
          'their roles, parts and texts as given');
ok(!$page->{has_more} && $page->{first_id} eq "msg_${hex}_1",
   'one page: has_more false, first_id the newest');

# 2. a response in it: the items first, then the input
my ($sr, $r1, $rb) = respond(conversation => $cid, input => 'Question one?');
is($sr, 200, 'a response with conversation: 200') or diag($rb);
is_deeply($r1->{conversation}, { id => $cid }, '... its conversation echoed');
my ($se, $e1) = respond(input => [@start, user('Question one?')]);
ok($se == 200
   && $r1->{usage}{input_tokens} == $e1->{usage}{input_tokens}
   && out_text($r1) eq out_text($e1) && length(out_text($r1)),
   '... the same prompt and answer as the items sent as input ('
   . "$r1->{usage}{input_tokens} tokens)");

my $items = all_items($cid);
is(scalar @$items, 4, 'the conversation now has four items');
is_deeply([map { $_->{content}[0]{text} } @$items[2, 3]],
          ['Question one?', out_text($r1)],
          '... the input and the answer added, in order');
is($items->[3]{role}, 'assistant', '... the answer as the assistant\'s');
is($items->[3]{id}, $r1->{output}[0]{id},
   '... under the id its item had in the response');
my ($sgi, $gi) = get("/v1/conversations/$cid/items/$items->[3]{id}");
ok($sgi == 200 && $gi->{content}[0]{text} eq out_text($r1),
   '... and read back by it');

# store false: not stored, but added to the conversation all the same
my ($sf, $rf) = respond(conversation => { id => $cid }, store => $F,
                        input => 'Question two?');
ok($sf == 200 && !$rf->{store}, 'store false, conversation as {"id"}: 200');
is((get("/v1/responses/$rf->{id}"))[0], 404, '... the response not stored');
$items = all_items($cid);
is(scalar @$items, 6, '... its input and answer added all the same');
is($items->[4]{content}[0]{text}, 'Question two?', '... in order');

# a stored response made in a conversation: stored with its own turn
# (GET, input_items), and continued by the conversation, not by its id
my ($sg1, $g1) = get("/v1/responses/$r1->{id}");
my ($si1, $i1) = get("/v1/responses/$r1->{id}/input_items?order=asc");
ok($sg1 == 200 && out_text($g1) eq out_text($r1)
   && $si1 == 200
   && join('|', map { $_->{content}[0]{text} } @{ $i1->{data} // [] })
      eq 'Question one?',
   'a response made in it is stored: GET gives it, input_items its own'
   . ' input alone');
my ($sp, $rp) = respond(previous_response_id => $r1->{id},
                        input => 'Question three?');
ok($sp == 400 && $rp->{error}{param} eq 'previous_response_id'
   && $rp->{error}{message} =~ /\Q$cid\E.*continue it with conversation/,
   '... previous_response_id naming it: 400, continue the conversation')
    or diag(json_encode($rp));

# 3. an item removed: gone, the others keep their ids, the prompt lacks it
my ($sd, $d) = get("/v1/conversations/$cid/items/msg_${hex}_0", 'DELETE');
ok($sd == 200 && ($d->{id} // '') eq $cid && $d->{object} eq 'conversation',
   'DELETE an item: 200, the conversation\'s object');
is((get("/v1/conversations/$cid/items/msg_${hex}_0"))[0], 404,
   '... the item is a 404 now');
my ($sg, $g) = get("/v1/conversations/$cid/items/msg_${hex}_2");
ok($sg == 200 && $g->{content}[0]{text} eq 'Question one?',
   '... the third keeps its id');
$items = all_items($cid);
is_deeply([map { $_->{id} } @$items],
          ["msg_${hex}_1", "msg_${hex}_2", $r1->{output}[0]{id},
           "msg_${hex}_4", $rf->{output}[0]{id}],
          '... the list lacks it alone');
my ($s4, $r4) = respond(conversation => $cid, input => 'Four?');
my ($s5, $e4) = respond(input => [
    { role => 'assistant', content => 'Hi! Ask.' },
    { role => 'user', content => 'Question one?' },
    { role => 'assistant', content => out_text($r1) },
    { role => 'user', content => 'Question two?' },
    { role => 'assistant', content => out_text($rf) },
    { role => 'user', content => 'Four?' }]);
ok($s4 == 200 && $r4->{usage}{input_tokens} == $e4->{usage}{input_tokens}
   && out_text($r4) eq out_text($e4),
   '... and the next prompt lacks it');

# 4. items added, metadata replaced
my ($sa, $added) = post("/v1/conversations/$cid/items",
                        { items => [{ role => 'user', content => 'x' },
                                    { type => 'function_call', call_id => 'c1',
                                      name => 'f', arguments => '{}' }] });
is($sa, 200, 'POST .../items: 200');
is_deeply([map { $_->{id} } @{ $added->{data} // [] }],
          ["msg_${hex}_8", "fc_${hex}_9_0"],
          '... answered with the two new items under their places');
my ($sm, $m) = post("/v1/conversations/$cid", { metadata => { k => 'v' } });
ok($sm == 200 && !exists $m->{metadata}{topic} && $m->{metadata}{k} eq 'v',
   'POST metadata: replaced');
is_deeply((get("/v1/conversations/$cid"))[1]{metadata}, { k => 'v' },
          '... and kept');

# 5. sixteen adding at once, on both workers: every one lands. The
# conversation is made large first (some 300 KB), so that each add's
# read, change and write back takes milliseconds and they overlap: an
# add written over another's would lose it.
my $BIG = 'lorem ipsum ' x 1250;
my $bc = (post('/v1/conversations',
               { items => [map { { role => 'user', content => "$_ $BIG" } }
                           1 .. 20] }))[1]{id} // 'none';
my @add = map {
    stream_start($PORT, 'POST', "/v1/conversations/$bc/items",
                 body => json_encode({ items => [user("at once $_")] }),
                 headers => { 'Content-Type' => 'application/json' })
} 1 .. 16;
run_streams(\@add, 60);
is(scalar(grep { $_->result->{status} == 200 } @add), 16,
   'sixteen POST .../items at once on a 300 KB conversation: all 200');
my %texts = map { ($_->{content}[0]{text} // '') => 1 } @{ all_items($bc) };
is(scalar(grep { $texts{"at once $_"} } 1 .. 16), 16,
   '... and all sixteen items are in the conversation');
is((get("/v1/conversations/$bc", 'DELETE'))[0], 200, '... deleted after');

# streamed, and in the background: added when they end; a background
# one cancelled adds nothing
{
    my $n0 = scalar @{ all_items($cid) };
    my $r = json_req($PORT, '/v1/responses',
                     { model => 'base', conversation => $cid, stream => $T,
                       input => 'Streamed?', max_output_tokens => 6,
                       temperature => 0 });
    my ($done) = grep {
        ($_->{event} // '') =~ /^response\.(completed|incomplete)$/
    } @{ $r->{events} // [] };
    my $stext = $done ? out_text($done->{json}{response}) : '';
    my $it = all_items($cid);
    ok($r->{status} == 200 && $done && @$it == $n0 + 2
       && $it->[-2]{content}[0]{text} eq 'Streamed?'
       && $it->[-1]{content}[0]{text} eq $stext,
       'a streamed response in it: its input and answer added at its end');
    is_deeply($done ? $done->{json}{response}{conversation} : undef,
              { id => $cid }, '... its last object names the conversation');

    my ($sbg, $bg) = respond(conversation => $cid, background => $T,
                             input => 'In the background?');
    my $fin = wait_for(30, sub {
        my ($st, $x) = get("/v1/responses/$bg->{id}");
        return ($x->{status} // '') =~ /^(completed|incomplete)$/ ? $x : 0;
    });
    $it = all_items($cid);
    ok($sbg == 200 && ($bg->{status} // '') eq 'queued' && $fin
       && @$it == $n0 + 4
       && $it->[-2]{content}[0]{text} eq 'In the background?'
       && $it->[-1]{content}[0]{text} eq out_text($fin),
       'a background response in it: added when it ends');

    # long enough (3000 tokens, ignore_eos) to be cancelled while it runs
    my ($scx, $cx) = respond(conversation => $cid, background => $T,
                             input => 'Cancelled?', max_output_tokens => 3000,
                             ignore_eos => $T);
    my $ran = wait_for(10, sub {
        (get("/v1/responses/$cx->{id}"))[1]{status} eq 'in_progress' });
    my ($sc, $cj) = get("/v1/responses/$cx->{id}/cancel", 'POST');
    my $calm = wait_for(10, sub {
        $s->status->{requests}{running} == 0 });
    $it = all_items($cid);
    ok($scx == 200 && $ran && $sc == 200 && ($cj->{status} // '') eq 'cancelled'
       && $calm && @$it == $n0 + 4
       && !grep({ ($_->{content}[0]{text} // '') eq 'Cancelled?' } @$it),
       '... one cancelled while it runs adds nothing');
}

# 6. tenants, and the store's figures
my ($sa1, $ta) = post('/t/a/v1/conversations', {});
ok($sa1 == 200 && $ta->{id}, 'tenant a makes one (an empty body {})');
is((get("/t/b/v1/conversations/$ta->{id}"))[0], 404, '... tenant b gets 404');
is((get("/v1/conversations/$ta->{id}"))[0], 404, '... no tenant: 404');
is((get("/t/a/v1/conversations/$ta->{id}"))[0], 200, '... a finds it');
my ($stb, $rb2) = post('/t/b/v1/responses',
                       { model => 'base', conversation => $ta->{id},
                         input => 'hi', max_output_tokens => 2 });
is($stb, 404, '... and b cannot answer in it');

my $ss = $s->status->{responses_store} // {};
my $metrics = (get('/metrics'))[2];
my ($mc) = $metrics =~ /^slora_conversations_stored (\d+)$/m;
ok(($ss->{conversations} // -1) == 2 && ($mc // -1) == 2,
   '/status and /metrics: two conversations kept');
ok(($ss->{responses} // -1) >= 3, '... counted apart from the responses');

# a tenant named after an endpoint: its path holds "/responses/" (or
# "/conversations/") twice, and the id is the one after the last
my ($stn, $rn) = post('/t/responses/v1/responses',
                      { model => 'base', input => 'hi',
                        max_output_tokens => 2 });
my $rnid = $rn->{id} // 'none';
is(join(' ', $stn, map { (get("/t/responses/v1/responses/$rnid$_"))[0] }
                   '', '/input_items'),
   '200 200 200', 'tenant "responses": its response read, its input_items');
is((get("/t/responses/v1/responses/$rnid", 'DELETE'))[0], 200,
   '... and deleted');
my ($scn, $cn) = post('/t/conversations/v1/conversations', {});
is((get('/t/conversations/v1/conversations/' . ($cn->{id} // 'none')))[0],
   200, 'tenant "conversations": its conversation read');

# 7. deleted
my ($sx, $x) = get("/t/a/v1/conversations/$ta->{id}", 'DELETE');
is_deeply([$sx, $x], [200, { id => $ta->{id},
                             object => 'conversation.deleted',
                             deleted => JSON::PP::true() }],
          'DELETE: conversation.deleted');
is((get("/t/a/v1/conversations/$ta->{id}"))[0], 404, '... then GET 404');
my ($sy, $y) = post('/t/a/v1/responses',
                    { model => 'base', conversation => $ta->{id},
                      input => 'hi', max_output_tokens => 2 });
ok($sy == 404 && $y->{error}{code} eq 'not_found'
   && $y->{error}{param} eq 'conversation',
   '... and a response in it 404, naming conversation');

# HEAD where GET is: the header alone, its Content-Length the GET's body's
sub head_req {
    my ($path) = @_;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $PORT, Timeout => 10)
        or return ('', '');
    print $sock "HEAD $path HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    local $/;
    my $all = <$sock> // '';
    my ($head, $rest) = split /\r\n\r\n/, $all, 2;
    return ($head // '', $rest // '');
}
for my $path ("/v1/conversations/$cid", "/v1/conversations/$cid/items",
              "/v1/conversations/$cid/items/msg_${hex}_1",
              "/v1/responses/$r1->{id}", "/v1/responses/$r1->{id}/input_items")
{
    my ($head, $rest) = head_req($path);
    my $body = (get($path))[2];
    my ($len) = $head =~ /^Content-Length: (\d+)\r?$/mi;
    ok($head =~ m{^HTTP/1\.1 200 } && defined $len
       && $len == length($body) && $rest eq '',
       "HEAD $path: 200, the GET's length, no body")
        or diag($head);
}

# 8. errors
my @bad = (
    [ 'POST', '/v1/conversations', '{"items":', 400, 'invalid_json' ],
    [ 'POST', '/v1/conversations', '{"metadata":{"a":1}}', 400,
      'invalid_value' ],
    [ 'POST', '/v1/conversations', '{"items":[{"role":"wizard"}]}', 400,
      'invalid_value' ],
    [ 'POST', "/v1/conversations/$cid/items", '{"items":[]}', 400,
      'invalid_type' ],
    [ 'POST', "/v1/conversations/$cid", '{}', 400,
      'missing_required_parameter' ],
    [ 'GET', '/v1/conversations/conv_nope', undef, 404, 'not_found' ],
    [ 'GET', "/v1/conversations/$cid/items/msg_nope_1", undef, 404,
      'not_found' ],
    [ 'GET', "/v1/conversations/$cid/items?order=up", undef, 400,
      'invalid_value' ],
    [ 'GET', "/v1/conversations/$cid/foo", undef, 404, 'unknown_url' ],
    [ 'PUT', '/v1/conversations', '{}', 405, undef ],
    [ 'PATCH', "/v1/conversations/$cid/items/msg_${hex}_1", undef, 405,
      undef ],
    [ 'GET', "/v1/conversations/$cid/", undef, 404, 'unknown_url' ],
);
for my $b (@bad) {
    my ($method, $path, $bd, $want, $code) = @$b;
    my $r = http_req($PORT, $method, $path,
                     defined $bd ? (body => $bd,
                                    headers => { 'Content-Type'
                                                 => 'application/json' })
                                 : ());
    ok($r->{status} == $want
       && (!defined $code || ($r->{json}{error}{code} // '') eq $code),
       "$method $path" . (defined $bd ? " $bd" : '') . ": $want"
       . (defined $code ? " $code" : ''))
        or diag($r->{body});
}
my ($sb, $both) = respond(conversation => $cid,
                          previous_response_id => $r1->{id}, input => 'x');
ok($sb == 400 && $both->{error}{code} eq 'mutually_exclusive_parameters',
   'conversation with previous_response_id: 400');
is((get("/v1/responses/$cid"))[0], 404,
   'a conversation is not a response: GET /v1/responses/{conv} 404');
is((get("/v1/conversations/$r1->{id}"))[0], 404,
   '... nor a response a conversation');

like($s->error_log, qr/conversation \Q$cid\E created/,
     'the error log (info) tells of the conversations made');
my @lines = $s->bad_log_lines(errors => 1);
ok(!@lines, 'no [error], [alert], [crit] or [emerg]')
    or diag(join("\n", @lines));
$s->stop;

done_testing();
