# store.t: slora_responses_store at its smallest (32 KiB), where it must
# drop responses to keep new ones: a run of responses with long inputs
# leaves the first dropped (GET is a 404, previous_response_id a 404
# previous_response_not_found) and the last kept (GET gives its object,
# previous_response_id continues it); a response too large for the zone
# is answered all the same, not stored (nor does it drop the others to
# try), and logged; input_items lists a kept one's input, pages checked
# by their query; a conversation of ten turns keeps every turn (a
# response holds its own messages, not all before it), a turn deleted in
# the middle stays in the conversations that continue it, and a branch
# from a middle turn holds that turn's past only; a conversation longer
# than the whole store is answered on, its turn that does not fit not
# stored and its earlier turns kept; a background answer whose record
# is near half the store (two of it do not fit) is stored "failed"
# (store_full), not dropped; a reload keeps what is stored;
# /status and /metrics count the responses kept and those dropped for
# room; with tenant=, one tenant's run drops its own oldest, not
# another's, a background answer that would take its record past the
# share is stored "failed" (store_full), and a conversation an add would
# take past its share stays as it was (the add a 507), and a reload
# that turns tenant= off is refused. The one idea to
# know: eviction is by last use, so a response read again (here the
# second) outlives those stored before it.
# (t/openai.t checks the store's meaning through the official client.)

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;

my $PORT = 18119;

# room for a ten-turn conversation below
my $model = tiny_model(ctx => 4096);
my $s = SloraTest::Server->new(name => 'store', port => $PORT);
mkdir $s->prefix . '/adapters';
$s->{http} = slora_http(
    model => $model, adapters => $s->prefix . '/adapters',
    engine => 'threads=1 slots=8 max_ctx=4096 max_tokens=64',
    http_extra => "    slora_responses_store 32k;\n");
$s->start;
pass('nginx started with a 32k store');

# ~1.6 KB of input: its conversation and its object take a page or more
my $LONG = join(' ', map { "word$_" } 1 .. 260);

sub respond {
    my (%b) = @_;
    my $r = json_req($PORT, '/v1/responses',
                     { model => 'base', max_output_tokens => 2,
                       temperature => 0, %b });
    return ($r->{status}, $r->{json} // {}, $r->{body});
}

sub get_resp {
    my ($id) = @_;
    my $r = http_req($PORT, 'GET', "/v1/responses/$id");
    return ($r->{status}, $r->{json} // {});
}

my @ids;
for my $i (1 .. 14) {
    my ($st, $j, $body) = respond(input => "$i: $LONG");
    push @ids, $j->{id} // '';
    if ($st != 200 || !$j->{store}) {
        fail("response $i stored") or diag($body);
    }
    # the second is read after each new one: the most recently used
    get_resp($ids[1]) if $i > 2;
}
is(scalar(grep { /^resp_/ } @ids), 14, 'fourteen responses answered');

# the store's figures, as /status and /metrics give them
sub store_figures {
    my $ss = $s->status->{responses_store} // {};
    my $m = http_req($PORT, 'GET', '/metrics')->{body} // '';
    my %prom = $m =~ /^(slora_responses_\w+(?:\{kind="\w+"\})?) (\d+)$/mg;
    return ($ss, \%prom);
}
my ($ss, $prom) = store_figures();
my $kept = grep { (get_resp($_))[0] == 200 } @ids;
ok($kept >= 2 && $kept < 14 && ($ss->{responses} // -1) == $kept
   && ($ss->{evictions} // -1) == 14 - $kept && $ss->{running} == 0,
   "/status: the $kept responses kept, the " . (14 - $kept)
   . ' dropped for room counted');
ok($ss->{size} > 16384 && $ss->{size} <= 32768
   && $ss->{free} < $ss->{size},
   "... the zone's size ($ss->{size}) and free bytes ($ss->{free})");
is_deeply([ map { $prom->{$_} // -1 } qw(slora_responses_stored
            slora_responses_evictions_total slora_responses_running
            slora_responses_store_bytes{kind="size"}) ],
          [ $ss->{responses}, $ss->{evictions}, 0, $ss->{size} ],
          '/metrics: the same figures');

my ($st_first, $first) = get_resp($ids[0]);
is($st_first, 404, 'the first, least recently used, is dropped');
is($first->{error}{code} // '', 'not_found', '... a 404 not_found');

my ($st_last, $last) = get_resp($ids[-1]);
is($st_last, 200, 'the last is kept');
is($last->{id} // '', $ids[-1], '... GET gives its object');

my ($st_second) = get_resp($ids[1]);
is($st_second, 200, 'the second, read after each new one, is kept too');

my ($st_prev, $prev) = respond(input => 'And then?',
                               previous_response_id => $ids[0]);
is($st_prev, 404, 'continuing the dropped one: 404');
is($prev->{error}{code} // '', 'previous_response_not_found',
   '... previous_response_not_found, naming the field')
    && is($prev->{error}{param}, 'previous_response_id',
          '... param previous_response_id');

my ($st_cont, $cont) = respond(input => 'And then?',
                               previous_response_id => $ids[-1]);
is($st_cont, 200, 'continuing the last one: 200');
cmp_ok($cont->{usage}{input_tokens} // 0, '>', 300,
       '... its input holds the stored conversation');

# input_items through HTTP: a dropped response's is a 404, the kept one's
# lists its input; the query's faults are 400s naming the field; only GET
my $items = http_req($PORT, 'GET', "/v1/responses/$ids[0]/input_items");
is($items->{status}, 404, 'input_items of the dropped one: 404');
$items = http_req($PORT, 'GET',
                  "/v1/responses/$cont->{id}/input_items?order=asc");
my @texts = map { $_->{content}[0]{text} // '' }
            @{ $items->{json}{data} // [] };
is_deeply([ map { $_->{role} // '' } @{ $items->{json}{data} // [] } ],
          [ 'user', 'assistant', 'user' ],
          'input_items of the continued one: its input, the stored answer '
          . 'between');
is($texts[2] // '', 'And then?', '... the last its own input');
for my $q (['limit=0', 'limit'], ['limit=abc', 'limit'],
           ['order=sideways', 'order'], ['after=msg_nope', 'after'])
{
    my $r = http_req($PORT, 'GET',
                     "/v1/responses/$cont->{id}/input_items?$q->[0]");
    is($r->{status} . ' ' . ($r->{json}{error}{param} // ''),
       "400 $q->[1]", "input_items?$q->[0]: 400 naming $q->[1]");
}
my $post = http_req($PORT, 'POST', "/v1/responses/$cont->{id}/input_items");
is($post->{status} . ' ' . ($post->{headers}{allow} // ''), '405 GET, HEAD',
   'input_items POST: 405, Allow: GET, HEAD');

# a response larger than the zone: answered, not stored, logged (its
# metadata at OpenAI's limits, 16 values of 512 four-byte characters:
# 32 KB)
my ($st_big, $big) = respond(input => 'Hi',
                             metadata => { map { ("k$_" => "\x{1F600}" x 512) }
                                           1 .. 16 });
is($st_big, 200, 'a response larger than the store is answered');
my ($st_bget) = get_resp($big->{id} // 'none');
is($st_bget, 404, '... and not stored');
like($s->error_log, qr/does not fit slora_responses_store/,
     '... which the error log says');
my ($st_kept) = get_resp($ids[-1]);
is($st_kept, 200, '... and which dropped nothing to try');

# a conversation of ten turns, each continuing the last: a response keeps
# its own messages and points to the one it continues, so the chain takes
# ten turns' bytes (some 20 KB here), not the 55 of ten records each
# holding all before it; every turn stays, the first included
my $MID = join(' ', map { "item$_" } 1 .. 80);
my @chain;
for my $i (0 .. 9) {
    my @prev = @chain ? (previous_response_id => $chain[-1]) : ();
    my ($st, $j, $body) = respond(input => "c$i: $MID", @prev);
    if ($st != 200 || !$j->{store}) {
        fail("turn $i answered and stored") or diag($body);
    }
    push @chain, $j->{id} // '';
}
is(scalar(grep { (get_resp($_))[0] == 200 } @chain), 10,
   'a ten-turn conversation: every turn is kept, the first included');

sub user_texts {
    my ($id) = @_;
    my $r = http_req($PORT, 'GET',
                     "/v1/responses/$id/input_items?order=asc&limit=100");
    return join(' ', map { ($_->{content}[0]{text} // '') =~ /^(c\d+):/ }
                     grep { ($_->{role} // '') eq 'user' }
                     @{ $r->{json}{data} // [] });
}

is(user_texts($chain[-1]), join(' ', map { "c$_" } 0 .. 9),
   '... the last one\'s input_items: the ten turns\' inputs, in order');
is(user_texts($chain[5]), join(' ', map { "c$_" } 0 .. 5),
   '... the sixth one\'s: its own and those before, none after');

# a turn deleted in the middle: gone for GET and for continuing it, kept
# for the turns that continue it
my ($before) = store_figures();
my $del = http_req($PORT, 'DELETE', "/v1/responses/$chain[3]");
is($del->{status}, 200, 'the fourth turn deleted');
my ($after) = store_figures();
is($after->{responses}, $before->{responses} - 1,
   '... /status counts one response fewer (' . $after->{responses} . ')');
is((get_resp($chain[3]))[0], 404, '... GET of it: 404');
my ($st_d, $j_d) = respond(input => 'again',
                           previous_response_id => $chain[3]);
is($st_d . ' ' . ($j_d->{error}{code} // ''),
   '404 previous_response_not_found', '... continuing it: 404');
is(user_texts($chain[-1]), join(' ', map { "c$_" } 0 .. 9),
   '... the last turn\'s conversation still holds its input');
my ($st_b, $j_b) = respond(input => 'c10: and then?',
                           previous_response_id => $chain[5]);
is($st_b, 200, 'a branch from the sixth turn is answered');
is(user_texts($j_b->{id} // 'none'), join(' ', map { "c$_" } 0 .. 5, 10),
   '... its conversation: the first six turns, then its own input');

# a reload keeps the zone and what it holds
$s->signal('HUP');
ok(wait_for(10, sub { my ($st) = get_resp($j_b->{id} // 'none');
                      $st == 200 }),
   'after a reload the last response stored is still kept');

# a conversation longer than the whole store: its turns hold each other,
# so once they fill it the next turn is answered but not stored (a
# warning), and continuing that one is a 404; the turns before stay
my ($last_kept, $unstored, $turn0) = ('', '', '');
for my $i (0 .. 59) {
    my @prev = $last_kept ne '' ? (previous_response_id => $last_kept) : ();
    my ($st, $j) = respond(input => "t$i", @prev);
    last if $st != 200;
    $turn0 = $j->{id} if $i == 0;
    if ((get_resp($j->{id} // 'none'))[0] != 200) {
        $unstored = $j->{id} // '';
        last;
    }
    $last_kept = $j->{id};
}
ok($unstored ne '', 'a conversation outgrowing the store: a turn answered'
   . ' and not stored');
like($s->error_log, qr/response \Q$unstored\E \(\d+ bytes\) does not fit/,
     '... which the error log says');
my ($st_u, $j_u) = respond(input => 'more', previous_response_id => $unstored);
is($st_u . ' ' . ($j_u->{error}{code} // ''),
   '404 previous_response_not_found', '... continuing it: 404');
is((get_resp($turn0))[0], 200, '... its first turn still kept');
my ($st_k) = respond(input => 'more', previous_response_id => $last_kept);
is($st_k, 200, '... and its last kept turn still continued');

# a background answer whose record is near half the store (3 of its 6
# pages): its next record and a "failed" copy cannot both fit beside it,
# so the copy takes its room: stored "failed" (store_full), not dropped
# (a poll was a 404)
{
    my $r = json_req($PORT, '/v1/responses',
                     { model => 'base', max_output_tokens => 8,
                       temperature => 0, background => JSON::PP::true(),
                       input => 'Hi',
                       metadata => { map { ("k$_" => 'x' x 512) } 1 .. 16 } });
    my $id = $r->{json}{id} // 'none';
    my $end = wait_for(20, sub {
        my $g = http_req($PORT, 'GET', "/v1/responses/$id");
        my $st = $g->{json} ? $g->{json}{status} // '' : '';
        return $g->{status} == 200 && $st =~ /^(queued|in_progress)$/
               ? 0 : $g;
    });
    ok($r->{status} == 200 && $end && $end->{status} == 200
       && ($end->{json}{status} // '') eq 'failed'
       && ($end->{json}{error}{code} // '') eq 'store_full',
       'a background answer near half the store: "failed", store_full')
        or diag($end ? "$end->{status} $end->{body}" : 'still running');
}

my @bad = $s->bad_log_lines(errors => 1);
ok(!@bad, 'no [error], [alert], [crit] or [emerg]')
    or diag(join("\n", @bad));

$s->stop;

# tenant=: each tenant's responses within its share. In a store as small
# (64k), tenant a's run of long responses drops a's own oldest, not the
# response b stored before it (which the run above, with no shares,
# would have dropped); one larger than a share is answered, not stored.
my $ts = SloraTest::Server->new(name => 'store-tenants', port => 18125);
mkdir $ts->prefix . '/adapters';
$ts->{http} = slora_http(
    model => $model, adapters => $ts->prefix . '/adapters',
    engine => 'threads=1 slots=8 max_ctx=4096 max_tokens=64',
    http_extra => "    slora_responses_store 64k tenant=12k;\n",
    server_extra => <<'EOF');
        location ~ ^/t/(?<tenant>[a-z]+)/v1/ {
            slora_api openai;
            slora_tenant $tenant;
        }
EOF
$ts->start;

sub t_respond {
    my ($tenant, %b) = @_;
    my $r = json_req(18125, "/t/$tenant/v1/responses",
                     { model => 'base', max_output_tokens => 2,
                       temperature => 0, %b });
    return ($r->{status}, $r->{json} // {});
}

sub t_get {
    my ($tenant, $id) = @_;
    return http_req(18125, 'GET', "/t/$tenant/v1/responses/$id")->{status};
}

my (undef, $b1) = t_respond('b', input => "b: $LONG");
my @a_ids;
for my $i (1 .. 14) {
    my (undef, $j) = t_respond('a', input => "$i: $LONG");
    push @a_ids, $j->{id} // '';
}
is(t_get('b', $b1->{id} // 'none'), 200,
   'tenant=12k: b\'s response kept through a\'s run of 14');
my @a_kept = grep { t_get('a', $_) == 200 } @a_ids;
ok(@a_kept >= 1 && @a_kept < 5 && $a_kept[-1] eq $a_ids[-1]
   && t_get('a', $a_ids[0]) == 404,
   '... a\'s oldest dropped for a\'s own, its last ' . scalar(@a_kept)
   . ' kept');
cmp_ok(($ts->status->{responses_store}{evictions} // 0), '>=',
       14 - @a_kept, '... and counted as dropped for room');
# some 12.5 KB of input: over the 12k share, under half the zone
my ($st_share, $big_a) = t_respond('a', input => 'word ' x 2500);
ok($st_share == 200 && t_get('a', $big_a->{id} // 'none') == 404,
   'a response larger than the share: answered, not stored');
like($ts->error_log,
     qr/does not fit slora_responses_store within its tenant's share/,
     '... which the error log says');
is(t_get('a', $a_ids[-1]), 200, '... and it dropped none of a\'s to try');
my (undef, $b2) = t_respond('b', input => "b2: $LONG");
ok(t_get('b', $b2->{id} // 'none') == 200
   && t_get('b', $b1->{id} // 'none') == 200, 'b stores another beside it');
# a background response whose answer takes its record past the share:
# stored "failed" (store_full), not dropped (a poll then found nothing).
# Inputs grow 50 bytes at a time: the first whose answer does not fit is
# one whose queued record did (the answer adds some hundreds of bytes).
{
    my ($words, $got) = (2000, undef);
    while ($words < 2600 && !$got) {
        my $r = json_req(18125, '/t/e/v1/responses',
                         { model => 'base', max_output_tokens => 64,
                           temperature => 0, background => JSON::PP::true(),
                           input => 'word ' x $words });
        my $id = $r->{json}{id} // last;
        my $end = wait_for(30, sub {
            my $g = http_req(18125, 'GET', "/t/e/v1/responses/$id");
            my $st = $g->{json} ? $g->{json}{status} // '' : '';
            return $g->{status} == 200 && $st =~ /^(queued|in_progress)$/
                   ? 0 : $g;
        });
        $got = $end if !$end || $end->{status} != 200
                       || ($end->{json}{status} // '')
                          !~ /^(completed|incomplete)$/;
        $words += 10;
    }
    ok($got && $got->{status} == 200
       && ($got->{json}{status} // '') eq 'failed'
       && ($got->{json}{error}{code} // '') eq 'store_full',
       'a background answer past its share: stored "failed", store_full'
       . " (input of $words words)")
        or diag($got ? "$got->{status} $got->{body}" : 'every one stored');
}
# a conversation that an add would take past its tenant's share is left
# as it was (the add a 507), not dropped to make room for the new one
{
    my $c = json_req(18125, '/t/c/v1/conversations',
                     { items => [{ role => 'user',
                                   content => 'word ' x 1400 }] });
    my $cid = $c->{json}{id} // 'none';
    my $add = json_req(18125, "/t/c/v1/conversations/$cid/items",
                       { items => [{ role => 'user',
                                     content => 'more ' x 1200 }] });
    my $l = http_req(18125, 'GET', "/t/c/v1/conversations/$cid/items");
    ok($c->{status} == 200 && $add->{status} == 507
       && ($add->{json}{error}{code} // '') eq 'store_full'
       && $l->{status} == 200 && @{ $l->{json}{data} // [] } == 1,
       'an add past the share: 507, the conversation kept as it was')
        or diag(json_encode([$c->{status}, $add->{body}, $l->{body}]));
    my $fit = qr/conversation \Q$cid\E \(\d+ bytes\) does not fit/;
    like($ts->error_log, qr/$fit slora_responses_store within its tenant/,
         '... which the error log says');
    my $small = json_req(18125, "/t/c/v1/conversations/$cid/items",
                         { items => [{ role => 'user', content => 'ok' }] });
    $l = http_req(18125, 'GET', "/t/c/v1/conversations/$cid/items");
    ok($small->{status} == 200 && @{ $l->{json}{data} // [] } == 2,
       '... and a small add then lands');
}

my @tbad = $ts->bad_log_lines(errors => 1);
ok(!@tbad, 'no [error], [alert], [crit] or [emerg]')
    or diag(join("\n", @tbad));

# tenant= is not turned off (or on) by a reload: each tenant's bytes are
# counted only under it, so off and on again left the counts of records
# that went meanwhile, and a tenant whose count was its share had
# nothing it could store
sub t_reload {
    my ($http) = @_;
    my $n = () = $ts->error_log =~ /reconfiguring/g;
    $ts->{http} = $http;
    $ts->write_config;
    $ts->signal('HUP');
    wait_for(10, sub { (() = $ts->error_log =~ /reconfiguring/g) > $n });
    sleep(1);
}
my $shares = $ts->{http};
(my $no_shares = $shares) =~ s/ tenant=12k//;
t_reload($no_shares);
like($ts->error_log, qr/tenant= is not turned on or off by a reload/,
     'a reload leaving tenant= out: refused, saying why');
http_req(18125, 'DELETE', "/t/a/v1/responses/$_") for @a_ids;
t_reload($shares);
my (undef, $a2) = t_respond('a', input => "again: $LONG");
is(t_get('a', $a2->{id} // 'none'), 200,
   '... a\'s responses deleted, a stores another');
$ts->stop;

done_testing();
