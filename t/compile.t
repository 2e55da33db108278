# compile.t: a request's constraint (a JSON schema, a guided_regex, a
# grammar, a choice, tools' parameters) is compiled on nginx's thread
# pool, not on the worker's event loop, and gives the same answers as
# where it is compiled at once.
#
# Two servers of one worker each on the same tiny model, each keeping
# responses: one with the thread pool (the default), one with
# "slora_thread_pool off". What each answers must be the same: the 400
# of a guided_regex that spends the compile's budget, of a schema with a
# lookahead (alone, and beside a second constraint), of tools whose
# second function's parameters are refused (naming tools[1]), of a
# Responses text.format refused after a stored history is read; and a
# greedy guided_choice, guided_regex and json_schema answer, the last
# on a response continuing a stored one;
# the same choice again taken as the engine keeps it compiled.
# And the compile must not hold the worker: a request whose regex
# spends the budget (some 4 ms, bench/RESULTS.md) and a GET /v1/models
# completed just after it on another connection: with the pool the GET
# is answered before its 400; with "off" after it (the worker compiles
# before it reads anything else). One such request, not more: compiles
# on more threads than the machine has cores take the worker's core. A
# client that goes while its compile is on the thread leaves the worker
# answering; one that goes while its request waits in the engine for
# the engine's own compile has its slot finished as cancelled, every
# slot back.

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;
use Time::HiRes qw(sleep time);

my $PORT = 18184;
my $PORT_OFF = 18185;
my $MAX_CTX = 512;

# spends the compile's work budget and is refused (too complex)
my $SLOW = '(.{0,10}){80}';

my $model = tiny_model(ctx => $MAX_CTX);

my %servers = pool_servers(name => 'compile', port => $PORT,
                           port_off => $PORT_OFF, model => $model,
                           max_ctx => $MAX_CTX,
                           http_extra => "    slora_responses_store 4m;\n");
pass('both servers started, engines ready');

my $on = $servers{0}->port;
my $off = $servers{1}->port;

my @ask = (messages => [{ role => 'user', content => 'Pick one.' }]);

my %cases = (
    slow_regex => [ '/v1/chat/completions',
                    { model => 'base', @ask, guided_regex => $SLOW } ],
    lookahead => [ '/v1/chat/completions',
                   { model => 'base', @ask, response_format => {
                         type => 'json_schema', json_schema => {
                             name => 'x', schema => {
                                 type => 'string',
                                 pattern => '^(?=a)' } } } } ],
    bad_tool => [ '/v1/chat/completions',
                  { model => 'base', @ask, tool_choice => 'required',
                    tools => [
                        { type => 'function', function => {
                              name => 'ok', parameters => {
                                  type => 'object' } } },
                        { type => 'function', function => {
                              name => 'send', parameters => {
                                  type => 'object', properties => {
                                      to => { type => 'string',
                                              pattern => '(?=@)' } } } } }
                    ] } ],
    # the schema refused, and a second constraint beside it: the same
    # error first either way
    two_errors => [ '/v1/chat/completions',
                    { model => 'base', @ask, guided_regex => 'a+',
                      response_format => {
                          type => 'json_schema', json_schema => {
                              name => 'x', schema => {
                                  type => 'string',
                                  pattern => '^(?=a)' } } } } ],
    choice => [ '/v1/chat/completions',
                { model => 'base', @ask, temperature => 0,
                  guided_choice => [ 'red', 'green', 'blue' ] } ],
    regex => [ '/v1/completions',
               { model => 'base', prompt => 'A code:', temperature => 0,
                 max_tokens => 16, guided_regex => '[a-f]{3}-[0-9]{2}' } ],
);

my %ans;

for my $p ($on, $off) {
    for my $name (sort keys %cases) {
        my ($r, $j) = json_post($p, @{ $cases{$name} });
        $ans{$p}{$name} = $r;
    }
}

for my $name (qw(slow_regex lookahead bad_tool two_errors)) {
    is($ans{$on}{$name}{status}, 400, "$name: 400 with the pool");
    is($ans{$on}{$name}{body}, $ans{$off}{$name}{body},
       "$name: the same 400 either way");
}

like($ans{$on}{slow_regex}{body}, qr/"param":"guided_regex"/,
     'the slow regex\'s 400 names guided_regex');
like($ans{$on}{lookahead}{body}, qr/lookahead/,
     'the schema\'s 400 says lookahead');
like($ans{$on}{bad_tool}{body}, qr/tools\[1\]\.function\.parameters/,
     'the tools\' 400 names the second function\'s parameters');

my %text;

for my $p ($on, $off) {
    is($ans{$p}{choice}{status}, 200, "choice ($p): 200");
    is($ans{$p}{regex}{status}, 200, "regex ($p): 200");
    my $c = json_decode_safe($ans{$p}{choice}{body}) // {};
    my $g = json_decode_safe($ans{$p}{regex}{body}) // {};
    $text{$p}{choice} = $c->{choices}[0]{message}{content} // '';
    $text{$p}{regex} = $g->{choices}[0]{text} // '';
}

like($text{$on}{choice}, qr/^(red|green|blue)\z/,
     "the choice is one of the three: $text{$on}{choice}");
like($text{$on}{regex}, qr/^[a-f]{3}-[0-9]{2}\z/,
     "the regex's answer matches it whole: $text{$on}{regex}");
is($text{$on}{choice}, $text{$off}{choice}, 'the same choice either way');
is($text{$on}{regex}, $text{$off}{regex}, 'the same match either way');

# the engine keeps what it compiled: the same choice again is taken as
# kept, compiled no more (/status "constraints", /metrics)

my $before = $servers{0}->status->{constraints} // {};
my ($again) = json_post($on, @{ $cases{choice} });
is($again->{status}, 200, 'the choice again: 200');
my $after = {};
wait_for(5, sub {
    $after = $servers{0}->status->{constraints} // {};
    return ($after->{hits} // 0) > ($before->{hits} // 0);
});
is($after->{hits}, ($before->{hits} // 0) + 1,
   "the engine took it as kept: $after->{hits} taken");
is($after->{compiles}, $before->{compiles},
   'and compiled nothing for it: ' . ($after->{compiles} // 'none'));
ok(($after->{kept} // 0) >= 2 && ($after->{bytes} // 0) > 0,
   'the choice and the regex kept: '
   . ($after->{kept} // 'none') . ', ' . ($after->{bytes} // 0) . ' bytes');

# a constraint the engine does not keep is compiled on its compile
# thread before the request is submitted, which then takes it as kept

$before = $after;
my ($fresh, $fj) = json_post($on, '/v1/completions',
                        { model => 'base', prompt => 'A tag:',
                          temperature => 0, max_tokens => 16,
                          guided_regex => '#[a-z]{4}' });
is($fresh->{status}, 200, 'a new regex: 200');
like($fj->{choices}[0]{text} // '', qr/^#[a-z]{4}\z/,
     'its answer matches it: ' . ($fj->{choices}[0]{text} // 'none'));
wait_for(5, sub {
    $after = $servers{0}->status->{constraints} // {};
    return ($after->{compiles} // 0) > ($before->{compiles} // 0);
});
ok(($after->{compiles} // 0) == ($before->{compiles} // 0) + 1
   && ($after->{hits} // 0) == ($before->{hits} // 0) + 1
   && ($after->{compiling} // -1) == 0,
   'compiled once, on the thread, then taken as kept by its submit: '
   . "compiles $before->{compiles} -> " . ($after->{compiles} // '?')
   . ", hits $before->{hits} -> " . ($after->{hits} // '?'));

my $m = http_req($on, 'GET', '/metrics')->{body} // '';
like($m, qr/^slora_constraints_total\{kind="kept"\} \Q$after->{hits}\E$/m,
     'the metrics count the same');

# a constraint the engine keeps compiled is not compiled again by the
# worker to check it (nor sent to the thread): its key is in the zone;
# /status's constraints "known" counts the request, on both servers (not
# one refused for another field); its answer is the one before. One the
# engine refused is never known: it is compiled and refused again, with
# the same 400.

for my $k (0, 1) {
    my $port = $servers{$k}->port;
    my $was = $servers{$k}->status->{constraints} // {};
    my ($r, $j) = json_post($port, @{ $cases{regex} });
    my $now = $servers{$k}->status->{constraints} // {};
    my $what = $k ? 'off' : 'pool';
    is($r->{status}, 200, "$what: the regex again: 200");
    is($j->{choices}[0]{text} // '', $text{$port}{regex},
       "$what: the same match");
    ok(($now->{known} // 0) == ($was->{known} // 0) + 1
       && ($now->{hits} // 0) == ($was->{hits} // 0) + 1
       && ($now->{compiles} // 0) == ($was->{compiles} // 0),
       "$what: known to the worker (" . ($was->{known} // '?') . ' -> '
       . ($now->{known} // '?') . '), taken as kept by the engine');

    # the same regex in a request refused after it (a stop of the wrong
    # type): not counted
    my ($path, $body) = @{ $cases{regex} };
    ($r) = json_post($port, $path, { %$body, stop => 5 });
    my $after_stop = $servers{$k}->status->{constraints} // {};
    is($r->{status}, 400, "$what: the regex with a bad stop: 400");
    is($after_stop->{known}, $now->{known},
       "$what: a request refused after its constraint: not counted known");

    ($r) = json_post($port, @{ $cases{lookahead} });
    my $after_bad = $servers{$k}->status->{constraints} // {};
    is($r->{body}, $ans{$port}{lookahead}{body},
       "$what: a refused schema again: the same 400");
    is($after_bad->{known}, $now->{known}, "$what: not known");
}

like(http_req($on, 'GET', '/metrics')->{body} // '',
     qr/^slora_constraints_known_total [1-9]/m,
     'the metrics count the known');

# the slot that waited on the compile is stepped as soon as it is in the
# engine, not after the engine's idle poll (a second): a new regex's
# request takes about what the same request takes again, kept

my %took;

for my $k (1 .. 3) {
    my $body = { model => 'base', prompt => 'A tag:', temperature => 0,
                 max_tokens => 1, guided_regex => "#[a-z]{$k}x" };

    for my $pass ('new', 'kept') {
        my $t = time;
        my ($r) = json_post($on, '/v1/completions', $body);
        $took{$pass}[$k] = time - $t;
        is($r->{status}, 200, "regex $k, $pass: 200");
    }

    ok($took{new}[$k] - $took{kept}[$k] < 0.5,
       sprintf('regex %d: its first request not held by the idle poll '
               . '(%.0f ms, then %.0f ms kept)', $k,
               1000 * $took{new}[$k], 1000 * $took{kept}[$k]));
}

# a Responses body continuing a stored one: its history is read on the
# worker, its format compiled on the thread, given that history

my $schema = { type => 'object', additionalProperties => JSON::PP::false(),
               required => ['n'],
               properties => { n => { type => 'integer',
                                      minimum => 0, maximum => 99 } } };
my %resp;

for my $p ($on, $off) {
    my ($r, $j) = json_post($p, '/v1/responses',
                       { model => 'base', input => 'Count.',
                         max_output_tokens => 4, temperature => 0 });
    is($r->{status}, 200, "a response to continue ($p): 200");

    ($r, my $k) = json_post($p, '/v1/responses',
                       { model => 'base', input => 'A number as JSON.',
                         previous_response_id => $j->{id},
                         max_output_tokens => 24, temperature => 0,
                         text => { format => { type => 'json_schema',
                                               name => 'n',
                                               schema => $schema } } });
    is($r->{status}, 200, "its continuation with a json_schema ($p): 200")
        or diag(substr($r->{body}, 0, 300));
    $resp{$p}{text} = $k->{output}[0]{content}[0]{text};
    $resp{$p}{usage} = $k->{usage};

    ($r) = json_post($p, '/v1/responses',
                { model => 'base', input => 'Again.',
                  previous_response_id => $j->{id},
                  text => { format => { type => 'json_schema', name => 'n',
                                        schema => { type => 'string',
                                                    pattern => '^(?=a)' }
                                      } } });
    is($r->{status}, 400, "a refused format after the history ($p): 400");
    $resp{$p}{bad} = $r->{body};
}

my $obj = json_decode_safe($resp{$on}{text} // '');
ok($obj && ref $obj eq 'HASH' && defined $obj->{n} && $obj->{n} =~ /^\d+\z/
   && $obj->{n} <= 99, 'the continuation is the schema\'s object: '
   . ($resp{$on}{text} // 'none'));
is($resp{$on}{text}, $resp{$off}{text}, 'the same object either way');
is_deeply($resp{$on}{usage}, $resp{$off}{usage}, 'the same usage either way');
is($resp{$on}{bad}, $resp{$off}{bad}, 'the same 400 either way');
like($resp{$on}{bad}, qr/lookahead/, 'the 400 says lookahead');

# the order: a compile that spends the budget, then a GET on another
# connection; where the thread compiles the GET is answered first

my $slow_body = json_encode($cases{slow_regex}[1]);

pool_order(servers => \%servers, path => '/v1/chat/completions',
           body => $slow_body, status => 400, what => 'the compile');

# a client that goes while its compile is on the thread: the request is
# made again when the compile is done, answers a closed connection, and
# the worker goes on (nothing freed under the thread)

my $gone = stream_start($on, 'POST', '/v1/chat/completions',
                        body => $slow_body,
                        headers => { 'Content-Type' => 'application/json' });
sleep(0.001);
$gone->abort;
sleep(0.3);
my ($rg) = json_post($on, @{ $cases{choice} });
is($rg->{status}, 200, 'after a client went mid-compile, the next request '
   . 'is answered');
is($rg->{body} =~ /"content":"(\w+)"/ ? $1 : '', $text{$on}{choice},
   'with the same choice');

# a client that goes while its request waits in the engine for its
# constraint's compile: the engine's compile thread works through its
# jobs in turn, so a request sent with six of some 3 ms each, and its
# own longer, waits there some 20 ms; its client goes then. The slot is
# finished as cancelled (the engine logs it), every slot comes back, the
# engine is the same one, and the next request is answered. The window
# is the machine's speed: a first batch, no client gone, times its last
# request's answer, and the tries go at fractions of that time.

my $engine = $servers{0}->status->{engine} // {};
my ($caught, $tries, $fill_ok) = (0, 0, 0);
my $fill_body = sub {
    my ($re) = @_;
    return json_encode({ model => 'base', prompt => 'A text:',
                         max_tokens => 1, stream => JSON::PP::true(),
                         guided_regex => $re });
};

# six and the last: the server's eight slots hold them all; each batch's
# regexes new to the engine
my $batch = sub {
    my $n = 600 + 8 * $tries;
    my @fill = map {
        stream_start($on, 'POST', '/v1/completions',
                     body => $fill_body->('(.|\n){0,' . ($n + $_) . '}'),
                     headers => { 'Content-Type' => 'application/json' })
    } 0 .. 5;
    # the longest compile: done last on the worker's threads, so last in
    # the engine's line
    my $last = stream_start($on, 'POST', '/v1/completions',
                            body => $fill_body->('(.|\n){0,'
                                                 . (700 + $tries++)
                                                 . '}z'),
                            headers => { 'Content-Type'
                                         => 'application/json' });
    return ($last, @fill);
};

my $t0 = time;
my ($probe, @probe_fill) = $batch->();
$probe->wait_done(30);
my $batch_s = time - $t0;
$_->wait_done(30) for @probe_fill;
is($probe->{status}, 200, sprintf('a batch none leaves: answered in %.0f ms',
                                  1000 * $batch_s));

for my $part (0.5, 0.35, 0.65, 0.25, 0.8, 0.15, 0.45, 0.7, 0.55, 0.3,
              0.9, 0.1)
{
    my ($last, @fill) = $batch->();
    sleep($part * $batch_s);
    $last->abort;
    $_->wait_done(30) for @fill;
    $fill_ok = grep { ($_->{status} // 0) == 200 } @fill;
    $_->abort for @fill;
    $caught = wait_for(2, sub {
        return $servers{0}->error_log
               =~ /cancelled while its constraint compiled/;
    });
    last if $caught;
}

is($fill_ok, 6, 'the six before it answered');
ok($caught, "a client gone while its constraint compiled in the engine "
   . "(batch $tries): its slot finished as cancelled");
my $idle = wait_for(10, sub {
    my $x = $servers{0}->status or return 0;
    return $x->{slots}{used} == 0 && $x->{requests}{running} == 0
           && $x->{requests}{waiting} == 0 ? $x : 0;
});
ok($idle, 'every slot back, nothing running or waiting')
    or diag(json_encode($servers{0}->status));
is($idle ? $idle->{engine}{pid} : 0, $engine->{pid},
   'the same engine (not respawned)');
($rg) = json_post($on, @{ $cases{choice} });
is($rg->{status}, 200, 'the next request is answered');

pool_logs_clean(\%servers);

$_->stop for values %servers;

done_testing();
