# faults.t: what happens to a stream when something goes wrong around it.
#
# A client that disconnects mid-stream frees its slots (a request of n
# choices has n) and its KV pages; one that stops reading holds its slot,
# not the engine, until it reads again or send_timeout lets it go; a
# `kill -9` of the engine fails the open stream with an error event within
# 2 s and the master respawns the engine (new pid, restarts + 1, new
# epoch), which then serves the same greedy text as before (a Responses
# API stream gets its error event and response.failed and adds nothing
# to its conversation, a background
# one too, for its client and a reader following it, a bare-text stream
# a line saying the error); the engine's poll() failing (its file limit
# lowered under it) for 0.3 s keeps the engine and its stream, and for
# good makes it exit to be respawned; a reload (HUP)
# mid-stream lets the stream finish, byte for byte, and keeps the engine;
# QUIT mid-stream lets the stream finish before nginx exits.  The one idea
# to know: the stream must last long enough for the fault to land in its
# middle, so its length is calibrated from the engine's measured speed,
# and a greedy reference run of the same request says what "finished
# completely" means.

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;
use Time::HiRes qw(time sleep);

my $PORT = 18104;
my $SLOW_PORT = 18114;     # a small send buffer, for the slow readers
my $STREAM_SECONDS = 3;
my $MAX_CTX = 4096;
my $PROMPT = 'Once upon a time';

my $model = tiny_model(layers => 4, hidden => 256, heads => 4,
                       kv_heads => 2, ffn => 512, ctx => $MAX_CTX,
                       seed => 7);
my $s = SloraTest::Server->new(name => 'faults', port => $PORT);
$s->{http} = slora_http(
    model => $model, adapters => $s->prefix . '/adapters',
    engine => "threads=1 slots=16 max_running=16 max_ctx=$MAX_CTX "
              . 'max_tokens=4000',
    server_extra => "        listen 127.0.0.1:$SLOW_PORT sndbuf=4096;\n"
                    . "        send_timeout 6s;\n"
                    . "        location /dl/ {\n"
                    . "            slora_api openai;\n"
                    . "            slora_deadline 3s;\n"
                    . "        }\n",
    http_extra => "    slora_responses_store 1m;\n");
mkdir $s->prefix . '/adapters';
$s->start;
pass('nginx started, engine ready');

sub body {
    my ($n, %o) = @_;
    return json_encode({ model => 'base', prompt => $PROMPT,
                         max_tokens => $n, temperature => 0, %o });
}

sub complete {
    my ($n) = @_;
    my $t = time();
    my $r = json_req($PORT, '/v1/completions', body($n), timeout => 120);
    my $c = $r->{json} && ref $r->{json}{choices} eq 'ARRAY'
            ? $r->{json}{choices}[0] : {};
    return { status => $r->{status}, text => $c->{text},
             finish => $c->{finish_reason},
             n => $r->{json} ? $r->{json}{usage}{completion_tokens} : undef,
             secs => time() - $t, body => $r->{body} };
}

sub open_stream {
    my ($n, %o) = @_;
    return stream_start($PORT, 'POST', '/v1/completions',
                        body => body($n, stream => JSON::PP::true(), %o),
                        headers => { 'Content-Type' => 'application/json' });
}

# Calibration: tokens per second of one greedy stream, then the reference
# text of a request that runs about $STREAM_SECONDS.
my $cal = complete(64);
is($cal->{status}, 200, 'calibration request answered')
    or diag($cal->{body});
is($cal->{finish}, 'length', 'calibration runs to max_tokens');
my $rate = 64 / ($cal->{secs} || 0.001);
my $N = int($rate * $STREAM_SECONDS);
$N = 100 if $N < 100;
$N = 4000 if $N > 4000;
diag(sprintf('engine speed %.0f tokens/s; streams of %d tokens', $rate, $N));

my $short = complete(16);
is($short->{status}, 200, 'a short request answers 200');
ok(length($short->{text} // ''), '... with text') or diag($short->{body});
my $ref = complete($N);
is($ref->{finish}, 'length', "reference run goes to $N tokens")
    or diag("the model stops early (finish $ref->{finish} after "
            . ($ref->{n} // '?') . ' tokens): pick another seed');
is($ref->{n}, $N, 'reference completion_tokens');

# Idle: nothing running, and the KV page count settled (the engine frees
# a finished request's pages at its next step, after the slot is free).
my $idle = wait_for(10, sub {
    my $a = $s->status or return 0;
    return 0 unless $a->{slots}{used} == 0 && $a->{requests}{running} == 0
                    && $a->{requests}{waiting} == 0;
    sleep(0.3);
    my $b = $s->status or return 0;
    return $b->{slots}{used} == 0
           && $b->{pool}{pages_kv} == $a->{pool}{pages_kv} ? $b : 0;
});
ok($idle, 'idle: no slot used, KV pages settled');
my $idle_kv = $idle->{pool}{pages_kv};
diag("idle pool: " . json_encode($idle->{pool}));

# 1. Disconnects: four streams, one of them of three choices, each closed
# after a few events.
{
    my @st = ((map { open_stream($N) } 1 .. 3), open_stream($N, n => 3));
    my $got = 0;
    $got += ($_->wait_events(3, 10) >= 3) for @st;
    is($got, 4, 'four streams running');
    my $busy = $s->status;
    is($busy->{slots}{used}, 6, 'six slots used mid-stream (3 + 3 choices)');
    cmp_ok($busy->{pool}{pages_kv}, '>', $idle_kv,
           'KV pages held mid-stream');
    ok(!(grep { $_->{done} } @st), 'no stream finished yet');
    $_->abort for @st;
    my $t = time();
    my $back = wait_for(5, sub {
        my $x = $s->status or return 0;
        return $x->{slots}{used} == 0 && $x->{requests}{running} == 0
               && $x->{pool}{pages_kv} == $idle_kv ? $x : 0;
    });
    ok($back, sprintf('after the disconnects: slots and KV pages back to '
                      . 'idle in %.2f s', time() - $t))
        or diag('status now: ' . json_encode($s->status));
}

# 1b. A client that stops reading (HTTP/1.1, a small window): the engine
# runs its request to the end all the same, its tokens waiting in its slot
# until then and in its worker after (its KV pages and its slot back), and
# serves others; read again, the stream is whole. One that never reads
# again is let go after send_timeout (6 s here).
{
    my %b = (ignore_eos => JSON::PP::true());
    # a second's tokens, well inside send_timeout, and at 600 or more
    # some 90 KB of events, far over the two buffers
    my $n = int($rate);
    $n = 600 if $n < 600;
    $n = 2000 if $n > 2000;
    my $r = json_req($PORT, '/v1/completions', body($n, %b), timeout => 120);
    my $want = $r->{json} ? $r->{json}{choices}[0]{text} : undef;
    ok(defined $want && $r->{json}{usage}{completion_tokens} == $n,
       "the non-streamed reference: $n tokens");
    my $slow_stream = sub {
        my ($id) = @_;
        return stream_start($SLOW_PORT, 'POST', '/v1/completions',
                            body => body($n, stream => JSON::PP::true(), %b),
                            headers => { 'Content-Type' => 'application/json',
                                         'X-Test-Id' => $id },
                            rcvbuf => 4096);
    };
    my $logged = sub {
        my ($id) = @_;
        return grep { / id=\Q$id\E / } $s->access_log_lines;
    };

    # begun: seen running, or past the prefix cache's lookup at its
    # admission (a second's work, which a loaded machine's polls can
    # miss; the counters of requests and tokens move only as it is sent)
    my $before = $s->status;
    my $slow = $slow_stream->('slow');
    my $began = $before && wait_for(10, sub {
        my $x = $s->status or return 0;
        return $x->{requests}{running} == 1
               || $x->{prefix_cache}{lookups}
                  > $before->{prefix_cache}{lookups};
    });
    my $ran = wait_for(60, sub {
        my $x = $s->status or return 0;
        return $x->{requests}{running} == 0 && $x->{requests}{waiting} == 0
               && $x->{pool}{pages_kv} == $idle_kv ? $x : 0;
    });
    ok($began && $ran && $ran->{slots}{used} == 0,
       'a client that stops reading: its request run to the end (KV pages '
       . 'back), its slot given back (the tokens it has not taken kept by '
       . 'its worker)')
        or diag('status: ' . json_encode($s->status));
    ok(!$logged->('slow'), '... the response not all sent yet (not logged)');
    my $other = complete(16);
    is($other->{text}, $short->{text},
       '... another request answered meanwhile');
    $slow->wait_done(60);
    my ($bad, $sum) = $slow->sse_check('text', model => 'base');
    ok(!@$bad, '... read again, the stream is well-formed')
        or diag(join("\n", @$bad));
    ok(defined $want && $sum->{text} eq $want,
       '... and the whole text, the non-streamed one')
        or diag('got ' . length($sum->{text}) . ' chars of '
                . length($want // ''));

    # sixteen choices, every slot there is, stalled the same way: once
    # the engine is done the slots are free for others; read again, the
    # backlog goes out a pass of events at a time, every choice whole and
    # in order. 64 tokens each (some 150 KB of events in all, far over
    # the buffers), so the engine is done well inside send_timeout.
    my $m = 64;
    my $r64 = json_req($PORT, '/v1/completions', body($m, %b),
                       timeout => 60);
    my $want64 = $r64->{json} ? $r64->{json}{choices}[0]{text} : undef;
    my $tok0 = $s->status->{tokens}{completion};
    my $all = stream_start($SLOW_PORT, 'POST', '/v1/completions',
                           body => body($m, stream => JSON::PP::true(),
                                        n => 16, %b),
                           headers => { 'Content-Type'
                                            => 'application/json' },
                           rcvbuf => 4096);
    ok(wait_for(10, sub {
           my $x = $s->status;
           return $x && $x->{slots}{used} == 16;
       }), 'sixteen choices of a stalled stream: every slot taken');
    ok(wait_for(5, sub {
           my $x = $s->status or return 0;
           return $x->{requests}{running} == 0
                  && $x->{requests}{waiting} == 0
                  && $x->{slots}{used} == 0;
       }), '... run to the end, every slot given back while the client '
           . 'has read none of it')
        or diag('status: ' . json_encode($s->status));
    my $beside = complete(16);
    is($beside->{text}, $short->{text},
       '... another request answered meanwhile (no slot left before)')
        or diag("status $beside->{status}: $beside->{body}");
    $all->wait_done(60);
    my (%text, %finish, $last);
    for my $ev (@{ $all->{events} }) {
        $last = $ev->{data};
        my $c = $ev->{json} && ref $ev->{json}{choices} eq 'ARRAY'
                ? $ev->{json}{choices}[0] : undef;
        next unless $c;
        $text{ $c->{index} } .= $c->{text} // '';
        push @{ $finish{ $c->{index} } }, $c->{finish_reason}
            if defined $c->{finish_reason};
    }
    ok($all->{done} && ($last // '') eq '[DONE]'
       && !@{ $all->{errors} }, '... read again, it ends with [DONE]')
        or diag(join("\n", @{ $all->{errors} }));
    is(scalar(grep { defined $want64 && ($text{$_} // '') eq $want64
                     && @{ $finish{$_} // [] } == 1
                     && $finish{$_}[0] eq 'length' } 0 .. 15), 16,
       '... each of the sixteen the whole text, finished once');
    my $tok1;
    ok(wait_for(5, sub {
           $tok1 = $s->status->{tokens}{completion};
           return $tok1 == $tok0 + 16 * $m + 16;
       }), '... its tokens counted once each, taken after the slots went')
        or diag("completion tokens $tok0 -> $tok1, want +" . (16 * $m + 16));

    # the same with logprobs: the records are kept with the tokens
    my $lb = body($m, logprobs => 3, %b);
    my $lr = json_req($PORT, '/v1/completions', $lb, timeout => 60);
    my $lwant = $lr->{json} ? $lr->{json}{choices}[0]{logprobs} : {};
    my $ls = stream_start($SLOW_PORT, 'POST', '/v1/completions',
                          body => body($m, stream => JSON::PP::true(),
                                       logprobs => 3, n => 2, %b),
                          headers => { 'Content-Type'
                                           => 'application/json' },
                          rcvbuf => 4096);
    ok(wait_for(10, sub {
           my $x = $s->status or return 0;
           return $x->{requests}{running} == 0
                  && $x->{requests}{waiting} == 0
                  && $x->{slots}{used} == 0;
       }) && !$ls->{done},
       'a stalled stream with logprobs: its slots given back unread');
    $ls->wait_done(60);
    my %lp;
    for my $ev (@{ $ls->{events} }) {
        my $c = $ev->{json} && ref $ev->{json}{choices} eq 'ARRAY'
                ? $ev->{json}{choices}[0] : undef;
        next unless $c && $c->{logprobs};
        my $l = $lp{ $c->{index} } //= { tokens => [], token_logprobs => [],
                                         top_logprobs => [] };
        push @{ $l->{$_} }, @{ $c->{logprobs}{$_} // [] }
            for qw(tokens token_logprobs top_logprobs);
    }
    my $same_lp = sub {
        my ($got) = @_;
        return 0 unless $got && @{ $lwant->{tokens} // [] } == $m
                        && @{ $got->{tokens} } == $m;
        for my $k (0 .. $m - 1) {
            return 0 unless $got->{tokens}[$k] eq $lwant->{tokens}[$k]
                && abs($got->{token_logprobs}[$k]
                       - $lwant->{token_logprobs}[$k]) < 1e-4
                && join(',', sort keys %{ $got->{top_logprobs}[$k] })
                   eq join(',', sort keys %{ $lwant->{top_logprobs}[$k] });
        }
        return 1;
    };
    is(scalar(grep { $same_lp->($lp{$_}) } 0 .. 1), 2,
       '... read again, each choice has every token with the '
       . 'non-streamed answer\'s log-probabilities');

    # the deadline (3 s at /dl/) bounds the engine's work; an answer the
    # engine finished is the client's to take within as long again from
    # its end: read after the request's deadline, it is whole; not taken
    # in time, it is let go
    my $late_stream = sub {
        my ($id) = @_;
        return stream_start($SLOW_PORT, 'POST', '/dl/v1/completions',
                            body => body($n, stream => JSON::PP::true(),
                                         %b),
                            headers => { 'Content-Type'
                                             => 'application/json',
                                         'X-Test-Id' => $id },
                            rcvbuf => 4096);
    };
    my $done_running = sub {
        return wait_for(10, sub {
                   my $x = $s->status;
                   return $x && $x->{requests}{running} == 1;
               })
               && wait_for(30, sub {
                   my $x = $s->status or return 0;
                   return $x->{requests}{running} == 0
                          && $x->{requests}{waiting} == 0
                          && $x->{slots}{used} == 0;
               });
    };
    my $t0 = time();
    my $late = $late_stream->('late');
    my $fin = $done_running->();
    my $t_fin = time();
    sleep($t0 + 3.3 - time()) if time() < $t0 + 3.3;
    $late->wait_done(60);
    my ($lbad, $lsum) = $late->sse_check('text', model => 'base');
    ok($fin && !@$lbad && defined $want && $lsum->{text} eq $want,
       sprintf('a stream read %.1f s after its start (deadline 3 s), the '
               . 'engine done at %.1f s: whole', 3.3, $t_fin - $t0))
        or diag(join("\n", @$lbad));

    my $stale = $late_stream->('stale');
    $fin = $done_running->();
    $t_fin = time();
    my $gone = wait_for(10, sub { $logged->('stale') });
    my $held = time() - $t_fin;
    ok($fin && $gone && $held >= 2.5,
       sprintf('an answer not taken within the deadline of its end is let '
               . 'go (%.1f s after the end)', $held));
    $stale->abort;

    my $stuck = $slow_stream->('stuck');
    my $t = time();
    $gone = wait_for(30, sub { $logged->('stuck') });
    my $took = time() - $t;
    ok($gone && $took >= 6, sprintf('a client that never reads again is '
                                    . 'let go after send_timeout (%.1f s)',
                                    $took));
    ok(wait_for(5, sub { my $x = $s->status; $x && $x->{slots}{used} == 0 }),
       '... and its slot with it');
    $stuck->abort;
}

# 1c. A whole answer (not a stream) larger than the sockets' buffers, to a
# client that reads it only a second later: the rest waits in nginx's
# buffers and goes out whole once the client reads (was: the request made
# after its prompt's tokens took the send's "not all sent" for an encoding
# still on the thread pool, was never finalized, and the rest of the
# answer never went).
{
    my $text = join '', map { chr(0x4e00 + $_ * 7919 % 0x5000) } 1 .. 1500;
    my $body = json_encode({ model => 'base', prompt => $text });
    my $want = json_req($PORT, '/v1/tokenize', $body, timeout => 60);
    my $j = json_decode_safe($want->{body});
    ok($want->{status} == 200 && $j && $j->{count} > 2000
       && length($want->{body}) > 16384,
       'tokenize: ' . ($j ? $j->{count} : '?') . ' tokens, '
       . length($want->{body}) . ' bytes of answer');
    my $late = stream_start($SLOW_PORT, 'POST', '/v1/tokenize',
                            body => $body,
                            headers => { 'Content-Type'
                                             => 'application/json' },
                            rcvbuf => 4096);
    sleep(1);
    $late->wait_done(10);
    ok($late->{done} && ($late->{status} // 0) == 200
       && ($late->{body} // '') eq $want->{body},
       'the same answer to a client that reads it a second later: whole')
        or diag('got ' . length($late->{body} // '') . ' bytes, status '
                . ($late->{status} // '-') . ', done '
                . ($late->{done} // 0));
    $late->abort;
}

# 2. Reload (HUP) mid-stream: the stream finishes; the engine stays.
{
    my $before = $s->status;
    my $st = open_stream($N);
    ok($st->wait_events(3, 10) >= 3, 'stream running before the reload');
    $s->signal('HUP');
    $st->wait_done(60);
    my ($bad, $sum) = $st->sse_check('text', model => 'base');
    ok(!@$bad, 'stream across a reload is well-formed')
        or diag(join("\n", @$bad));
    ok($sum->{text} eq ($ref->{text} // ''),
       'stream across a reload gives the whole reference text')
        or diag('got ' . length($sum->{text}) . ' chars of '
                . length($ref->{text} // ''));
    is($sum->{finish}[0], 'length', 'finish_reason length');
    ok(wait_for(10, sub { $s->error_log =~ /reconfiguring/ }),
       'nginx reloaded');
    my $after = $s->status;
    is($after->{engine}{pid}, $before->{engine}{pid},
       'engine pid unchanged by the reload');
    is($after->{engine}{restarts}, $before->{engine}{restarts},
       'no engine restart');
    is($after->{engine}{epoch}, $before->{engine}{epoch}, 'same epoch');
    my $again = complete(16);
    is($again->{text}, $short->{text}, 'new workers serve the same text');
}

# 3. kill -9 of the engine mid-stream, the stream of two choices.
{
    my $before = $s->status;
    my $epid = $before->{engine}{pid};
    my $st = open_stream($N, n => 2);
    ok($st->wait_events(3, 10) >= 3, 'stream running before the kill');
    ok(kill('KILL', $epid), "engine $epid killed");
    $st->wait_done(15);
    my ($err) = grep { ref $_->{json} eq 'HASH' && $_->{json}{error} }
                @{ $st->{events} };
    ok($err, 'the open stream gets an error event');
    if ($err) {
        my $e = $err->{json}{error};
        ok(($e->{type} // '') eq 'server_error'
           && ($e->{code} // '') eq 'engine_failed'
           && ($e->{message} // '') =~ /engine/,
           '... server_error engine_failed, with a message: '
           . ($e->{message} // ''));
        is($err->{data} =~ /^\{"error":/ ? 1 : 0, 1,
           '... as data: {"error":...}');
        ok(!grep({ ref $_->{json} eq 'HASH'
                   && ref $_->{json}{choices} eq 'ARRAY'
                   && defined $_->{json}{choices}[0]{finish_reason} }
                 @{ $st->{events} }),
           '... and no finish_reason: the stream did not pretend to end');
    } else {
        fail('... the error event\'s fields') for 1 .. 3;
        my @e = @{ $st->{events} };
        @e = @e[-3 .. -1] if @e > 3;
        diag('last events: ' . join(' | ', map { $_->{raw} } @e));
    }
    ok($st->{done}, 'the stream then ends (terminal chunk)');
    ok(!@{ $st->{errors} }, 'its framing is valid')
        or diag(join("\n", @{ $st->{errors} }));

    my $new = wait_for(30, sub {
        my $x = $s->status or return 0;
        return $x->{engine}{ready} && $x->{engine}{pid}
               && $x->{engine}{pid} != $epid ? $x : 0;
    });
    ok($new, 'engine respawned and ready');
    $new //= {};
    isnt($new->{engine}{pid}, $epid, 'new engine pid');
    is($new->{engine}{restarts}, ($before->{engine}{restarts} // 0) + 1,
       'restarts incremented');
    cmp_ok($new->{engine}{epoch} // 0, '>', $before->{engine}{epoch} // 0,
           'epoch bumped');
    ok(!proc_alive($epid), 'old engine gone');
    my $again = complete(16);
    is($again->{status}, 200, 'a new request succeeds after the respawn');
    is($again->{text}, $short->{text}, '... with the same greedy text');
    my $clean = wait_for(5, sub {
        my $x = $s->status or return 0;
        return $x->{slots}{used} == 0 && $x->{pool}{pages_kv} == $idle_kv;
    });
    ok($clean, 'no slot or KV page left from the dead epoch')
        or diag('status now: ' . json_encode($s->status));
}

# 3b. kill -9 of the engine mid-stream of a Responses API stream (in a
# conversation): an error event, then response.failed with the error and
# the text sent so far, and nothing after it; nothing is added to the
# conversation, which the respawned engine then answers in.
{
    my $conv = json_req($PORT, '/v1/conversations',
                        { items => [{ role => 'user', content => 'Hi' }] });
    my $cid = $conv->{json}{id} // 'none';
    my $count = sub {
        my $l = http_req($PORT, 'GET',
                         "/v1/conversations/$cid/items?limit=100");
        return $l->{status} == 200 ? scalar @{ $l->{json}{data} } : -1;
    };
    my $epid = $s->engine_pid;
    my $st = stream_start($PORT, 'POST', '/v1/responses',
        body => json_encode({ model => 'base', input => $PROMPT,
                              conversation => $cid,
                              max_output_tokens => $N, temperature => 0,
                              ignore_eos => JSON::PP::true(),
                              stream => JSON::PP::true() }),
        headers => { 'Content-Type' => 'application/json' });
    ok($st->wait_events(6, 10) >= 6, 'responses stream running before the '
       . 'kill');
    ok(kill('KILL', $epid), "engine $epid killed");
    $st->wait_done(15);
    my @ev = @{ $st->{events} };
    my @names = map { $_->{event} // '(none)' } @ev;
    my $sent = join('', map { $_->{json}{delta} // '' }
                        grep { ($_->{event} // '') eq
                               'response.output_text.delta' } @ev);
    my ($err, $failed) = @ev >= 2 ? @ev[-2, -1] : ({}, {});
    ok(($err->{event} // '') eq 'error'
       && ($err->{json}{type} // '') eq 'error'
       && ($err->{json}{code} // '') eq 'engine_failed'
       && ($err->{json}{message} // '') =~ /engine/,
       'an error event, engine_failed, with a message')
        or diag('last events: ' . join(' ', @names[-4 .. -1]));
    my $r = $failed->{json}{response} // {};
    ok(($failed->{event} // '') eq 'response.failed'
       && ($r->{status} // '') eq 'failed'
       && ($r->{error}{code} // '') eq 'engine_failed'
       && length($sent) > 0
       && ($r->{output}[0]{content}[0]{text} // "\0") eq $sent,
       'then response.failed, last: the error and the text sent so far');
    ok(!grep({ /response\.(completed|incomplete)/ } @names),
       '... and no response.completed: it did not pretend to end');
    ok($st->{done} && !@{ $st->{errors} }, 'the stream then ends, well '
       . 'framed') or diag(join("\n", @{ $st->{errors} }));
    ok(wait_for(30, sub {
        my $x = $s->status or return 0;
        return $x->{engine}{ready} && $x->{engine}{pid} != $epid;
    }), 'engine respawned and ready');
    is($count->(), 1, '... the conversation still holds its one item');
    my $again = json_req($PORT, '/v1/responses',
                         { model => 'base', input => 'Again?',
                           conversation => $cid, max_output_tokens => 4 });
    ok($again->{status} == 200 && $count->() == 3,
       '... and the respawned engine answers in it, adding two');
}

# 3c. kill -9 of the engine mid-way through a background stream: its
# client and a reader following it (GET ?stream=true) both get the error
# event and response.failed last, and the response is stored "failed".
{
    my $epid = $s->engine_pid;
    my $st = stream_start($PORT, 'POST', '/v1/responses',
        body => json_encode({ model => 'base', input => $PROMPT,
                              max_output_tokens => $N, temperature => 0,
                              ignore_eos => JSON::PP::true(),
                              background => JSON::PP::true(),
                              stream => JSON::PP::true() }),
        headers => { 'Content-Type' => 'application/json' });
    ok($st->wait_events(6, 10) >= 6,
       'a background stream running before the kill');
    my $rid = $st->{events}[0]{json}{response}{id} // '';
    my $rd = stream_start($PORT, 'GET',
                          "/v1/responses/$rid?stream=true&starting_after=2");
    ok($rd->wait_events(3, 10) >= 3, '... and a reader following it');
    ok(kill('KILL', $epid), "engine $epid killed");
    $st->wait_done(15);
    $rd->wait_done(15);
    for my $c ([ 'its client', $st ], [ 'the reader', $rd ]) {
        my @ev = @{ $c->[1]{events} };
        my ($err, $failed) = @ev >= 2 ? @ev[-2, -1] : ({}, {});
        ok(($err->{event} // '') eq 'error'
           && ($err->{json}{code} // '') eq 'engine_failed'
           && ($failed->{event} // '') eq 'response.failed'
           && ($failed->{json}{response}{error}{code} // '')
              eq 'engine_failed'
           && $c->[1]{done},
           "... $c->[0]: the error event, then response.failed, the end");
    }
    my $g = http_req($PORT, 'GET', "/v1/responses/$rid");
    ok(($g->{json}{status} // '') eq 'failed'
       && ($g->{json}{error}{code} // '') eq 'engine_failed',
       '... stored "failed" (engine_failed)');
    ok(wait_for(30, sub {
        my $x = $s->status or return 0;
        return $x->{engine}{ready} && $x->{engine}{pid} != $epid;
    }), 'engine respawned and ready');
}

# 3d. The bare-text stream (GET stream format=text): whole, the greedy
# text and a line's end in several chunks; killed mid-way, the text so
# far, then a line saying the error, and a well-framed end.
sub plain_stream {
    my ($n) = @_;
    return stream_start($PORT, 'GET', '/v1/stream?model=base&prompt='
                        . 'Once+upon+a+time&temperature=0&format=text'
                        . "&max_tokens=$n");
}
{
    my $st = plain_stream(16);
    $st->wait_done(30);
    ok($st->{done} && !@{ $st->{errors} }
       && ($st->{headers}{'content-type'} // '') =~ m{^text/plain},
       'a bare-text stream: text/plain, well framed');
    my $whole = $st->{body};
    utf8::decode($whole);
    is($whole, ($short->{text} // '') . "\n",
       '... the greedy text and a line\'s end');
    cmp_ok(scalar @{ $st->{raw_chunks} }, '>', 2,
           '... in chunks as the tokens come');

    my $epid = $s->engine_pid;
    $st = plain_stream($N);
    ok(wait_for(10, sub { $st->pump; length($st->{body}) >= 20 }),
       'a long bare-text stream running before the kill');
    ok(kill('KILL', $epid), "engine $epid killed");
    $st->wait_done(15);
    my $body = $st->{body};
    utf8::decode($body);    # as the reference's JSON text: characters
    my ($text, $line) = $body =~ /\A(.*)\n\[error\] (.*)\n\z/s;
    ok(defined $text && length($text) >= 20
       && $text eq substr($ref->{text} // '', 0, length $text),
       '... the text so far, the reference\'s start');
    like($line // '', qr/^engine_failed: .*engine/,
         '... then a line saying the error');
    ok($st->{done} && !@{ $st->{errors} }, '... and a well-framed end')
        or diag(join("\n", @{ $st->{errors} }));
    ok(wait_for(30, sub {
        my $x = $s->status or return 0;
        return $x->{engine}{ready} && $x->{engine}{pid} != $epid;
    }), 'engine respawned and ready');
}

# prlimit on the engine's soft file limit, as the engine's user where it
# is not ours (a process's limits are its user's to change; root's own
# call needs CAP_SYS_RESOURCE, which a container may lack).
sub engine_nofile {
    my ($pid, $soft, $hard) = @_;
    my $st = SloraTest::_slurp("/proc/$pid/status") // '';
    my ($uid) = $st =~ /^Uid:\s+(\d+)/m;
    my ($gid) = $st =~ /^Gid:\s+(\d+)/m;
    my @as = defined $uid && $uid != $>
             ? ('setpriv', "--reuid=$uid", "--regid=$gid", '--clear-groups')
             : ();
    my ($rc, $out, $err) = run_cmd(@as, 'prlimit', "--pid=$pid",
                                   "--nofile=$soft:$hard");
    diag("prlimit --nofile=$soft:$hard: $err$out") if $rc != 0;
    return $rc == 0;
}

# 3c. poll() failing in the engine, caused with prlimit: a file limit
# lowered under the three fds it polls (EINVAL). A failure that passes
# within the second the engine allows keeps it and the stream it runs;
# one that lasts makes it exit with status 1, and the master respawns it
# (nginx respawns nothing that exits with status 2).
{
    my $before = $s->status;
    my $epid = $before->{engine}{pid};
    my ($lim, $hard) = (SloraTest::_slurp("/proc/$epid/limits") // '')
                       =~ /^Max open files\s+(\d+)\s+(\d+)/m;
    ok(defined $hard, "the engine's file limit: " . ($lim // '?') . ', '
                      . ($hard // '?'))
        or BAIL_OUT('no /proc/PID/limits');
    my $st = open_stream($N);
    ok($st->wait_events(3, 10) >= 3, 'stream running before poll() fails');
    my $low = engine_nofile($epid, 2, $hard);
    sleep(0.3);
    ok(engine_nofile($epid, $lim, $hard) && $low,
       'the limit lowered under the engine for 0.3 s');
    $st->wait_done(60);
    my ($bad, $sum) = $st->sse_check('text', model => 'base');
    ok(!@$bad && $sum->{text} eq ($ref->{text} // ''),
       '... the stream gives the whole reference text')
        or diag('got ' . length($sum->{text}) . ' chars of '
                . length($ref->{text} // '') . '; ' . join("\n", @$bad));
    my $mid = $s->status // {};
    is($mid->{engine}{pid}, $epid, '... the same engine');
    is($mid->{engine}{restarts}, $before->{engine}{restarts},
       '... not restarted');
    like($s->error_log, qr/poll\(\) failed, trying again/,
         '... which said poll() failed');
    like($s->error_log, qr/poll\(\) works again after \d+ failures/,
         '... and that it works again');

    ok(engine_nofile($epid, 2, $hard), 'the limit lowered and left so');
    my $new = wait_for(30, sub {
        my $x = $s->status or return 0;
        return $x->{engine}{ready} && $x->{engine}{pid}
               && $x->{engine}{pid} != $epid ? $x : 0;
    });
    ok($new, 'a second later the engine exits, respawned and ready')
        or diag($s->log_tail);
    is(($new // {})->{engine}{restarts}, $before->{engine}{restarts} + 1,
       '... restarts incremented');
    like($s->error_log,
         qr/poll\(\) failed for a second, exiting to be respawned/,
         '... saying why');
    is(complete(16)->{text}, $short->{text},
       '... and the new engine serves the same text');
}

# 4. QUIT mid-stream: the stream completes, then nginx exits.
{
    my $epid = $s->engine_pid;
    my $st = open_stream($N);
    ok($st->wait_events(3, 10) >= 3, 'stream running before QUIT');
    $s->signal('QUIT');
    $st->wait_done(60);
    my ($bad, $sum) = $st->sse_check('text', model => 'base');
    ok(!@$bad, 'stream across QUIT is well-formed')
        or diag(join("\n", @$bad));
    ok($sum->{text} eq ($ref->{text} // ''),
       'stream across QUIT gives the whole reference text')
        or diag('got ' . length($sum->{text}) . ' chars of '
                . length($ref->{text} // ''));
    my $st_exit = $s->wait_exit(20);
    ok(defined $st_exit, 'nginx exits after the stream');
    is($st_exit, 0, 'exit status 0');
    ok(wait_for(5, sub { !proc_alive($epid) }), 'the engine exits too');
}

my @bad = $s->bad_log_lines(
    errors => 1,
    allow => [qr/\[alert\] \d+#\d+: .*exited on signal 9/,
              qr/\[alert\] \d+#\d+: slora engine: poll\(\) failed/]);
ok(!@bad, 'no [error], [alert], [crit] or [emerg] but the killed engine'
          . ' and poll()\'s failures')
    or diag(join("\n", @bad));
like($s->error_log, qr/exited on signal 9/,
     'the master saw the engine die');

done_testing();
