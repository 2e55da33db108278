# background.t: the Responses API's background mode. A request with
# background true is answered at once: the object "queued", no output,
# usage null, Connection: close; the answer goes on without the client
# and GET .../responses/{id} shows it "in_progress", then as the same
# request in the foreground answers it (greedy, same text, same usage).
# Its input items are listed from the start; a response being answered
# cannot be continued (400) until it ends, then it can. POST
# .../{id}/cancel stops one being answered: the object "cancelled" at
# once, the engine's slot free within a tick or two, and nothing stored
# over it when its time would have been up; cancelling it again answers
# the same, cancelling one that ended is a 400. A DELETE stops one too,
# and it stays gone; deleting the one it continues does not: it ends
# and is stored. A reload (HUP) while one is answered loses nothing;
# its worker killed (kill -9) while it answers, the engine lets the slot
# go and the response reads "failed" (worker_lost), not running for
# ever. Streamed in the background, the events are the foreground's and
# a client that goes mid-way leaves the answer running to its end,
# stored whole, its response.created ("queued") sent at once even while
# it waits for the engine; GET ?stream=true&starting_after=N picks the
# events up after N and follows them to the end (several readers at
# once, any worker; a slow one has them all, one that stops reading is
# let go after send_timeout, as is a stream's own client, whose events
# were a whole prefix), ends for a cancelled one (as does the cancelled
# stream's own client's body), and ends a killed
# worker's with response.failed; a store with no room for a stream's
# events lets them go and says so, the answer stored whole; one full
# (a cache's usual state) drops others to cancel an answer, and an
# answer larger than half of it is stored "failed". background
# without store is a 400. The long answers
# last some seconds by the engine's measured speed (ignore_eos holds
# their length).

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;
use Time::HiRes qw(time sleep);

my $PORT = 18143;
my $SLOW_PORT = $PORT + 2;
my $MAX_CTX = 4096;
my $LONG_SECONDS = 4;

my $model = tiny_model(layers => 4, hidden => 256, heads => 4,
                       kv_heads => 2, ffn => 512, ctx => $MAX_CTX,
                       seed => 7);
my $s = SloraTest::Server->new(name => 'background', port => $PORT);
mkdir $s->prefix . '/adapters';
$s->{http} = slora_http(
    model => $model, adapters => $s->prefix . '/adapters',
    engine => "threads=1 slots=8 max_running=2 max_ctx=$MAX_CTX "
              . 'max_tokens=4000',
    http_extra => "    slora_responses_store 4m;\n"
                  # slow clients (1d): small buffers, a short send_timeout
                  . "    server {\n"
                  . "        listen 127.0.0.1:$SLOW_PORT sndbuf=4k;\n"
                  . "        send_timeout 1s;\n"
                  . "        location /v1/ {\n"
                  . "            slora_api openai;\n"
                  . "        }\n"
                  . "    }\n");
$s->start;
pass('nginx started, a store of responses');

sub respond {
    my (%b) = @_;
    my $r = json_req($PORT, '/v1/responses',
                     { model => 'base', temperature => 0, %b });
    return ($r->{status}, $r->{json} // {}, $r);
}

sub get {
    my ($id, $tail) = @_;
    my $r = http_req($PORT, 'GET', "/v1/responses/$id" . ($tail // ''));
    return ($r->{status}, $r->{json} // {});
}

sub cancel {
    my ($id) = @_;
    my $r = json_req($PORT, "/v1/responses/$id/cancel", '');
    return ($r->{status}, $r->{json} // {});
}

sub text_of {
    my ($j) = @_;
    return join('', map { $_->{text} // '' }
                    map { @{ $_->{content} // [] } }
                    grep { ($_->{type} // '') eq 'message' }
                    @{ $j->{output} // [] });
}

# polls until the response is no longer queued or in progress
sub settle {
    my ($id, $secs) = @_;
    my %seen;
    my $j = wait_for($secs, sub {
        my ($st, $x) = get($id);
        return 0 if $st != 200;
        $seen{ $x->{status} // '' } = 1;
        return ($x->{status} // '') =~ /^(queued|in_progress)$/ ? 0 : $x;
    });
    return ($j || {}, \%seen);
}

# a long answer in the background, its access log line tagged
sub start_long {
    my ($tag) = @_;
    my $r = http_req($PORT, 'POST', '/v1/responses',
                     body => json_encode({ model => 'base', temperature => 0,
                                           input => 'Once upon a time',
                                           max_output_tokens => $main::LONG,
                                           ignore_eos => JSON::PP::true(),
                                           background => JSON::PP::true() }),
                     headers => { 'Content-Type' => 'application/json',
                                  'X-Test-Id' => $tag });
    return $r->{json} // {};
}

# the tokens the engine made for the request tagged so, once it ended
sub made {
    my ($tag) = @_;
    my ($l) = grep { /id=$tag / } $s->access_log_lines;
    return defined $l && $l =~ / c=(\d+) / ? $1 : -1;
}

sub idle {
    return wait_for(5, sub {
        my $x = $s->status or return 0;
        return $x->{slots}{used} == 0 && $x->{requests}{running} == 0;
    });
}

my $INPUT = 'Once upon a time';
my $SHORT = 48;

# the foreground answer, and the engine's speed
my $t0 = time();
my ($st, $ref) = respond(input => $INPUT, max_output_tokens => $SHORT,
                         ignore_eos => JSON::PP::true());
my $dt = time() - $t0;
is($st, 200, 'the foreground answer');
my $rate = ($ref->{usage}{output_tokens} // 0) / ($dt || 1);
our $LONG = int($rate * $LONG_SECONDS);
$LONG = 3000 if $LONG > 3000;
$LONG = 200 if $LONG < 200;
diag(sprintf('engine speed %.0f tokens/s; long answers of %d tokens',
             $rate, $LONG));

# 1. In the background: answered at once, then the same answer stored.
my ($bst, $bg, $br) = respond(input => $INPUT, max_output_tokens => $SHORT,
                              ignore_eos => JSON::PP::true(),
                              background => JSON::PP::true());
is($bst, 200, 'background: 200');
is($bg->{status} // '', 'queued', '... the object "queued"');
ok($bg->{background}, '... background true');
ok(!defined $bg->{usage} && ref $bg->{output} eq 'ARRAY'
   && !@{ $bg->{output} }, '... no output, usage null');
like($br->{headers}{connection} // '', qr/close/i, '... Connection: close');
my $id = $bg->{id} // '';
like($id, qr/^resp_/, '... an id');

my ($ist, $items) = get($id, '/input_items');
is($ist, 200, 'its input items at once');
is($items->{data}[0]{content}[0]{text} // '', $INPUT, '... the input');

my ($done, $seen) = settle($id, 60);
is($done->{status} // '', $ref->{status},
   "it ends as the foreground one did ($ref->{status})");
ok(length text_of($ref) && text_of($done) eq text_of($ref),
   '... the same text');
is($done->{usage}{output_tokens}, $ref->{usage}{output_tokens},
   '... the same output tokens');
ok($done->{background}, '... background true still');

my ($cst, $cont) = respond(input => 'And then?', max_output_tokens => 4,
                           previous_response_id => $id);
is($cst, 200, 'a response that ended in the background continues');
($cst, my $cj) = cancel($id);
is($cst, 400, 'cancelling it now: 400');

# 1b. Streamed in the background: the events as in the foreground, the
# last object "background" true and stored; a client that goes mid-way
# does not end it: the answer runs to its end and is stored whole.
sub bg_stream {
    my ($n) = @_;
    return stream_start($PORT, 'POST', '/v1/responses',
        body => json_encode({ model => 'base', input => $INPUT,
                              max_output_tokens => $n, temperature => 0,
                              ignore_eos => JSON::PP::true(),
                              background => JSON::PP::true(),
                              stream => JSON::PP::true() }),
        headers => { 'Content-Type' => 'application/json' });
}
# the id a stream's response.created gave
sub response_id {
    my ($st) = @_;
    my ($created) = grep { ($_->{event} // '') eq 'response.created' }
                    @{ $st->{events} };
    return $created->{json}{response}{id} // '';
}
my $bs = bg_stream($SHORT);
$bs->wait_done(60);
my @bev = @{ $bs->{events} };
my $blast = @bev ? $bev[-1] : {};
my $bobj = $blast->{json}{response} // {};
my $btext = join('', map { $_->{json}{delta} // '' }
                     grep { ($_->{event} // '') eq
                            'response.output_text.delta' } @bev);
ok(($bev[0]{event} // '') eq 'response.created'
   && ($blast->{event} // '') eq 'response.incomplete'
   && $bobj->{background} && $btext eq text_of($ref),
   'a background stream: its events, the last object background true, '
   . 'the foreground\'s text');
my ($gst0, $gobj) = get($bobj->{id} // '');
ok($gst0 == 200 && ($gobj->{status} // '') eq 'incomplete'
   && text_of($gobj) eq $btext, '... and stored so');

my $gone = bg_stream($LONG);
ok($gone->wait_events(8, 10) >= 8, 'a long background stream running');
my $gid = response_id($gone);
$gone->abort;

# 1c. Picked up again (GET ?stream=true&starting_after=N): the events
# after N, then each as it comes while the answer runs, to its end; any
# number of readers, and without starting_after all of them, the bytes
# the first client had.
sub resume {
    my ($rid, $query) = @_;
    return stream_start($PORT, 'GET', "/v1/responses/$rid?stream=true"
                                      . ($query // ''));
}
sub deltas {
    return join('', map { $_->{json}{delta} // '' }
                    grep { ($_->{event} // '') eq
                           'response.output_text.delta' } @_);
}
sub seqs_from {
    my ($from, @ev) = @_;
    my @seq = map { $_->{json}{sequence_number} // -1 } @ev;
    return @seq && !grep { $seq[$_] != $from + $_ } 0 .. $#seq;
}
my @first = @{ $gone->{events} };
my $k = $first[-1]{json}{sequence_number} // -1;
my $rs = resume($gid, "&starting_after=$k");
ok($rs->wait_events(1, 10) >= 1, "resumed after event $k: events come");
my ($rst, $mid) = get($gid);
is($mid->{status} // '', 'in_progress', '... while the answer still runs');
my $rs2 = resume($gid, '&starting_after=2');
$rs->wait_done(60 + 4 * $LONG_SECONDS);
$rs2->wait_done(10);
my @rev = @{ $rs->{events} };
is($rs->{status}, 200, '... 200');
like($rs->{headers}{'content-type'} // '', qr{^text/event-stream},
     '... an event stream');
ok(seqs_from($k + 1, @rev), '... numbered on from ' . ($k + 1)
   . ' with none missing (' . scalar(@rev) . ' events)');
is($rev[-1]{event} // '', 'response.incomplete', '... to its end');
($done) = settle($gid, 60 + 4 * $LONG_SECONDS);
is($done->{status} // '', 'incomplete',
   '... its client gone, it runs to its end');
is($done->{usage}{output_tokens} // 0, $LONG, "... all $LONG tokens");
ok(length(deltas(@first)) && deltas(@first, @rev) eq text_of($done)
   && text_of($rev[-1]{json}{response} // {}) eq text_of($done),
   '... the first client\'s text and the resumed text are the answer');
ok(seqs_from(3, @{ $rs2->{events} })
   && deltas(@first[0 .. 2], @{ $rs2->{events} }) eq text_of($done),
   'a second reader at the same time, after event 2: the same answer');
my $all = resume($gid);
$all->wait_done(10);
my @aev = @{ $all->{events} };
ok(seqs_from(0, @aev) && @aev == @first + @rev
   && !grep({ $aev[$_]{raw} ne $first[$_]{raw} } 0 .. $#first),
   'after the end, all of them: from 0, the first client\'s bytes');

my ($rj);
($rst, $rj) = get($gid, '?stream=false');
ok($rst == 200 && ($rj->{status} // '') eq 'incomplete',
   'stream=false: the object');
($rst, $rj) = get($id, '?stream=true');
ok($rst == 400 && ($rj->{error}{param} // '') eq 'stream'
   && ($rj->{error}{message} // '') =~ /not created with background and/,
   'a background response not streamed: 400 saying why');
($rst, $rj) = get($gid, '?stream=true&starting_after=x');
ok($rst == 400 && ($rj->{error}{param} // '') eq 'starting_after',
   'starting_after not a number: 400 naming it');
($rst, $rj) = get($gid, '?stream=yes');
ok($rst == 400 && ($rj->{error}{param} // '') eq 'stream',
   'stream neither true nor false: 400 naming it');
($rst) = get('resp_nosuch', '?stream=true');
is($rst, 404, 'an unknown id streamed: 404');

# 1d. Slow clients (a 4 KB receive window; send_timeout 1s there): a
# reader of the ended answer that takes its events slowly has all of
# them and the stream's end; one that stops reading while the answer
# runs is let go after send_timeout (the answer runs on); a background
# stream's own client that stops reading is let go too, the events it
# had a whole prefix of the stream, the rest picked up again, nothing
# for nginx's writer to trip on.
sub slow {
    my ($method, $path, %o) = @_;
    return stream_start($SLOW_PORT, $method, $path, rcvbuf => 4096, %o);
}
my $sr = slow('GET', "/v1/responses/$gid?stream=true");
sleep(0.5);
$sr->wait_done(30);
my @sev = @{ $sr->{events} };
ok($sr->{done} && !@{ $sr->{errors} } && seqs_from(0, @sev)
   && @sev == @aev && deltas(@sev) eq text_of($done),
   'a slow reader of an ended answer: every event and the end ('
   . scalar(@sev) . ' events' . ($sr->{errors}[0] ? ", $sr->{errors}[0]"
                                                  : '') . ')');

my $run = bg_stream($LONG);
ok($run->wait_events(8, 10) >= 8, 'a long background stream');
my $runid = response_id($run);
$run->abort;
my $stall = slow('GET', "/v1/responses/$runid?stream=true");
$stall->wait_events(2, 5);
sleep(3);
$stall->wait_done(10);
my ($rundone) = settle($runid, 60 + 4 * $LONG_SECONDS);
ok($stall->{closed} && !$stall->{done}
   && @{ $stall->{events} } < 2 * $LONG,
   'a reader that stops reading while it runs is let go ('
   . scalar(@{ $stall->{events} }) . ' events, '
   . ($stall->{errors}[0] // 'no error') . ')');
is($rundone->{usage}{output_tokens} // 0, $LONG,
   '... and the answer runs to its end');

my $own = slow('POST', '/v1/responses',
               body => json_encode({ model => 'base', input => $INPUT,
                                     max_output_tokens => $LONG,
                                     temperature => 0,
                                     ignore_eos => JSON::PP::true(),
                                     background => JSON::PP::true(),
                                     stream => JSON::PP::true() }),
               headers => { 'Content-Type' => 'application/json' });
$own->wait_events(2, 5);
sleep(3);
$own->wait_done(30);
my @oev = @{ $own->{events} };
my $ownid = response_id($own);
my ($owndone) = settle($ownid, 60 + 4 * $LONG_SECONDS);
my $orest = resume($ownid, '&starting_after='
                           . ($oev[-1]{json}{sequence_number} // -1));
$orest->wait_done(10);
ok($own->{closed} && !$own->{done} && seqs_from(0, @oev)
   && !grep({ !defined $_->{json} } @oev),
   'a background stream\'s own client that stops reading is let go: '
   . 'its events a whole prefix (' . scalar(@oev) . ')');
ok($orest->{done} && deltas(@oev, @{ $orest->{events} })
                     eq text_of($owndone)
   && ($owndone->{usage}{output_tokens} // 0) == $LONG,
   '... the rest picked up again: the whole answer');

# 2. Cancel one being answered.
my $long = start_long('cancelled');
my $lid = $long->{id} // '';
my $running = wait_for(10, sub {
    my ($g, $x) = get($lid);
    return ($x->{status} // '') eq 'in_progress';
});
ok($running, 'a long one in the background: "in_progress"');
is($s->status->{responses_store}{running} // -1, 1,
   '... /status counts it running');
($cst, $cont) = respond(input => 'And then?', max_output_tokens => 4,
                        previous_response_id => $lid);
is($cst, 400, 'one being answered cannot be continued');
like($cont->{error}{message} // '', qr/background/, '... it says why');

($cst, $cj) = cancel($lid);
is($cst, 200, 'cancel: 200');
is($cj->{status} // '', 'cancelled', '... the object "cancelled"');
ok(idle(), '... the engine lets it go (no slot held, none running)');
is($s->status->{responses_store}{running} // -1, 0,
   '... /status counts none running');
my $n = made('cancelled');
ok($n >= 0 && $n < $LONG, "... having made $n of its $LONG tokens");
($cst, $cj) = cancel($lid);
is($cj->{status} // '', 'cancelled', 'cancelling it again: the same');
sleep($LONG_SECONDS + 1);
my ($gst, $gj) = get($lid);
is($gj->{status} // '', 'cancelled',
   'after its time: still "cancelled", nothing stored over it');
($cst) = respond(input => 'And then?', max_output_tokens => 4,
                 previous_response_id => $lid);
is($cst, 400, 'a cancelled one cannot be continued');

# 2b. A reader following a background stream that is cancelled: its
# stream ends (with what was sent before the cancel), it does not hang.
my $cs = bg_stream($LONG);
ok($cs->wait_events(8, 10) >= 8, 'a long background stream');
my $csid = response_id($cs);
$cs->abort;
my $cr = resume($csid);
ok($cr->wait_events(8, 10) >= 8, '... followed by a reader');
($cst) = cancel($csid);
is($cst, 200, '... cancelled');
ok($cr->wait_done(5), '... the reader\'s stream ends');
my $ctext = deltas(@{ $cr->{events} });
ok(length($ctext)
   && !grep({ ($_->{event} // '') =~ /^response\.(completed|incomplete)$/ }
            @{ $cr->{events} }),
   '... short of an end event (' . scalar(@{ $cr->{events} })
   . ' events)');
ok(idle(), '... the engine lets it go');
my $cs2 = bg_stream($LONG);
ok($cs2->wait_events(8, 10) >= 8, 'a long background stream, its client '
   . 'still reading');
($cst) = cancel(response_id($cs2));
ok($cst == 200 && $cs2->wait_done(5) && !@{ $cs2->{errors} },
   '... cancelled: its stream ends, the body whole ('
   . ($cs2->{errors}[0] // 'no error') . ')');
ok(!grep({ ($_->{event} // '') =~ /^response\.(completed|incomplete)$/ }
         @{ $cs2->{events} }), '... short of an end event');
ok(idle(), '... the engine lets it go');

# 2c. A background stream that waits for the engine (two long answers
# take both of max_running=2) has its response.created, "queued", at
# once: its client knows the id before any token. When a place frees,
# response.in_progress and the answer follow, numbered on.
my @hold = map { start_long("hold$_") } 1 .. 2;
ok(wait_for(10, sub { (($s->status // {})->{requests}{running} // 0) == 2 }),
   'two long answers running (max_running=2)');
my $ws = bg_stream($SHORT);
ok($ws->wait_events(1, 5) >= 1, 'a background stream behind them: an '
   . 'event at once');
my $we = $ws->{events}[0] // {};
my $waits = wait_for(5, sub {
    (($s->status // {})->{requests}{waiting} // 0) >= 1 });
ok(($we->{event} // '') eq 'response.created'
   && ($we->{json}{response}{status} // '') eq 'queued'
   && $waits && $ws->wait_events(2, 0.5) == 1,
   '... response.created, "queued", alone while it waits');
cancel($_->{id} // '') for @hold;
$ws->wait_done(60);
my @wev = @{ $ws->{events} };
ok(($wev[1]{event} // '') eq 'response.in_progress'
   && ($wev[-1]{event} // '') eq 'response.incomplete'
   && deltas(@wev) eq text_of($ref) && seqs_from(0, @wev),
   '... then response.in_progress and the foreground\'s text, numbered on');
ok(idle(), '... and nothing held after');

# 3. Delete one being answered.
$long = start_long('deleted');
my $did = $long->{id} // '';
ok(wait_for(10, sub { ((get($did))[1]{status} // '') eq 'in_progress' }),
   'another long one in progress');
my $dr = http_req($PORT, 'DELETE', "/v1/responses/$did");
is($dr->{status}, 200, 'DELETE while it is answered: 200');
ok(idle(), '... the engine lets it go');
$n = made('deleted');
ok($n >= 0 && $n < $LONG, "... having made $n of its $LONG tokens");
sleep($LONG_SECONDS + 1);
($gst) = get($did);
is($gst, 404, '... and it stays deleted after its time');

# 3b. The response a long one continues deleted while it is answered:
# the answer ends and is stored all the same (it was left "in_progress"
# for ever, held from eviction), and it is continued in its turn.
my (undef, $parent) = respond(input => $INPUT, max_output_tokens => 4);
my (undef, $child) = respond(input => 'And then?',
                             max_output_tokens => $LONG,
                             ignore_eos => JSON::PP::true(),
                             background => JSON::PP::true(),
                             previous_response_id => $parent->{id} // '');
my $chid = $child->{id} // '';
ok(wait_for(10, sub { ((get($chid))[1]{status} // '') eq 'in_progress' }),
   'a long one continuing another in progress');
is(http_req($PORT, 'DELETE', "/v1/responses/$parent->{id}")->{status}, 200,
   '... the one it continues deleted');
($done) = settle($chid, 60 + 4 * $LONG_SECONDS);
ok(($done->{status} // '') eq 'incomplete'
   && ($done->{usage}{output_tokens} // 0) == $LONG,
   '... it ends and is stored (' . ($done->{status} // 'running') . ')');
($st) = respond(input => 'More?', max_output_tokens => 4,
                previous_response_id => $chid);
is($st, 200, '... and is continued');

# 4. A reload while one is answered loses nothing.
$long = start_long('reloaded');
my $hid = $long->{id} // '';
ok(wait_for(10, sub { ((get($hid))[1]{status} // '') eq 'in_progress' }),
   'a long one in progress before a reload');
$s->signal('HUP');
($done) = settle($hid, 60 + 4 * $LONG_SECONDS);
is($done->{status} // '', 'incomplete',
   '... ends across the reload (max_output_tokens)');
is($done->{usage}{output_tokens} // 0, $LONG, "... all $LONG tokens");
ok(wait_for(10, sub { $s->error_log =~ /reconfiguring/ }), 'nginx reloaded');

# 5. Its worker killed while it answers (kill -9: nothing of the worker
# runs): the engine lets the worker's slot go within a second or two,
# and the response, next read, is "failed" (worker_lost), not running
# for ever; the new workers serve on.
sub workers {
    my $master = $s->pid;
    my @w;
    for my $d (glob '/proc/[0-9]*') {
        open(my $f, '<', "$d/stat") or next;
        my $stat = <$f> // '';
        close($f);
        my ($pid, $ppid) = $stat =~ /^(\d+) \(.*\) \S (\d+)/ or next;
        next unless $ppid == $master;
        open(my $c, '<', "$d/cmdline") or next;
        my $cmd = <$c> // '';
        close($c);
        push @w, $pid if $cmd =~ /worker process/;
    }
    return @w;
}
$long = start_long('killed');
my $kid = $long->{id} // '';
ok(wait_for(10, sub { ((get($kid))[1]{status} // '') eq 'in_progress' }),
   'a long one in progress before its worker is killed');
my $ks = bg_stream($LONG);
ok($ks->wait_events(8, 10) >= 8, '... and a long background stream');
my $ksid = response_id($ks);
my @w = workers();
ok(@w >= 1 && kill('KILL', @w) == @w, "its workers killed (@w)");
ok(idle(), '... the engine lets the dead worker\'s slot go');
like($s->error_log, qr/slots of a worker that died let go/,
     '... and says so');
my ($kst, $kj);
ok(wait_for(10, sub { ($kst, $kj) = get($kid); $kst == 200 }),
   'the new workers answer');
is($kj->{status} // '', 'failed', '... the response "failed"');
is($kj->{error}{code} // '', 'worker_lost', '... error worker_lost');
($st) = respond(input => 'And then?', max_output_tokens => 4,
                previous_response_id => $kid);
is($st, 400, '... not continued (it has no answer)');
($st) = cancel($kid);
is($st, 400, '... nor cancelled');
my $kr = resume($ksid);
ok($kr->wait_done(10), 'the stream\'s events read again: they end');
my $kl = $kr->{events}[-1] // {};
ok(@{ $kr->{events} } > 8 && seqs_from(0, @{ $kr->{events} })
   && ($kl->{event} // '') eq 'response.failed'
   && ($kl->{json}{response}{error}{code} // '') eq 'worker_lost',
   '... with response.failed (worker_lost), numbered on');
($st) = respond(input => 'Hi', max_output_tokens => 4);
is($st, 200, 'a request after it is answered');

# 6. What is refused.
($st, my $e) = respond(input => 'Hi', background => JSON::PP::true(),
                       store => JSON::PP::false());
is($st, 400, 'background with store false: 400');
is($e->{error}{param} // '', 'background', '... naming background');
($st) = cancel('resp_nosuch');
is($st, 404, 'cancelling an unknown id: 404');
is(http_req($PORT, 'GET', "/v1/responses/$id/cancel")->{status}, 405,
   'GET .../cancel: 405');

ok(idle(), 'nothing held at the end');
my @bad = $s->bad_log_lines(errors => 1,
                            allow => [qr/exited on signal 9/]);
ok(!@bad, 'no [error], [crit], [alert] or [emerg] in the error log')
    or diag(join("\n", @bad));

$s->stop;

# 7. A store too small for a long stream's events: they are let go, the
# answer goes on and is stored whole; a reader following it gets an
# error event, a new one a 400, and the error log says why.
my $small = SloraTest::Server->new(name => 'background-small',
                                   port => $PORT + 1);
mkdir $small->prefix . '/adapters';
$small->{http} = slora_http(
    model => $model, adapters => $small->prefix . '/adapters',
    engine => "threads=1 slots=4 max_ctx=$MAX_CTX max_tokens=4000",
    http_extra => "    slora_responses_store 64k;\n");
$small->start;
my $big = stream_start($PORT + 1, 'POST', '/v1/responses',
    body => json_encode({ model => 'base', input => $INPUT,
                          max_output_tokens => 600, temperature => 0,
                          ignore_eos => JSON::PP::true(),
                          background => JSON::PP::true(),
                          stream => JSON::PP::true() }),
    headers => { 'Content-Type' => 'application/json' });
ok($big->wait_events(8, 10) >= 8, 'a small store: a long background stream');
my $bid = response_id($big);
my $follow = stream_start($PORT + 1, 'GET',
                          "/v1/responses/$bid?stream=true");
$big->wait_done(60);
$follow->wait_done(10);
my $blast_ev = $big->{events}[-1] // {};
is($blast_ev->{event} // '', 'response.incomplete',
   '... its client has all its events');
my $fl = $follow->{events}[-1] // {};
ok(($fl->{event} // '') eq 'error'
   && ($fl->{json}{code} // '') eq 'stream_not_kept',
   '... a reader following it: an error event, stream_not_kept');
my $sg = http_req($PORT + 1, 'GET', "/v1/responses/$bid");
ok($sg->{status} == 200
   && ($sg->{json}{usage}{output_tokens} // 0) == 600,
   '... the answer stored whole');
$sg = http_req($PORT + 1, 'GET', "/v1/responses/$bid?stream=true");
ok($sg->{status} == 400
   && ($sg->{json}{error}{code} // '') eq 'stream_not_kept',
   '... a new reader: 400 stream_not_kept');
like($small->error_log,
     qr/events of background response \S+ are no longer kept/,
     '... and the error log says why');
is($small->status->{responses_store}{events_lost} // -1, 1,
   '... and /status counts it');

# 7b. The store full, as a cache's is: a cancel drops the least
# recently used others for the "cancelled" record's room (it was a 500,
# and the answer ran on).
my $WORDS = join(' ', map { "word$_" } 1 .. 260);
my $fb = json_req($PORT + 1, '/v1/responses',
                  { model => 'base', temperature => 0, input => "bg $WORDS",
                    max_output_tokens => 2500,
                    ignore_eos => JSON::PP::true(),
                    background => JSON::PP::true() })->{json} // {};
for my $i (1 .. 40) {
    json_req($PORT + 1, '/v1/responses',
             { model => 'base', input => "$i: $WORDS",
               max_output_tokens => 2 });
}
my $fs = $small->status->{responses_store} // {};
my $fc = json_req($PORT + 1, '/v1/responses/' . ($fb->{id} // 'none')
                             . '/cancel', '');
ok($fs->{running} == 1 && $fs->{evictions} > 0
   && $fc->{status} == 200 && ($fc->{json}{status} // '') eq 'cancelled',
   'a full store: a background answer cancelled ('
   . "$fc->{status}, $fs->{free} bytes free)")
    or diag($fc->{body});

# 7c. An answer larger than half the store: stored "failed" (store_full)
# as one past the room left is, not left "in_progress" for ever
my $hb = json_req($PORT + 1, '/v1/responses',
                  { model => 'base', temperature => 0, input => $INPUT,
                    max_output_tokens => 3000,
                    ignore_eos => JSON::PP::true(),
                    background => JSON::PP::true() })->{json} // {};
my $hend = wait_for(30, sub {
    my $g = http_req($PORT + 1, 'GET', '/v1/responses/' . ($hb->{id} // ''));
    return ($g->{json}{status} // '') =~ /^(queued|in_progress)$/ ? 0 : $g;
});
ok($hend && ($hend->{json}{status} // '') eq 'failed'
   && ($hend->{json}{error}{code} // '') eq 'store_full'
   && $small->status->{responses_store}{running} == 0,
   'an answer larger than half the store: "failed", store_full')
    or diag($hend ? $hend->{body} : 'still running');
like($small->error_log,
     qr/\(\d+ bytes\) does not fit slora_responses_store \(half of it/,
     '... which the error log says');
$small->stop;

done_testing();
