# device_faults.t: what the engine process does when its device fails.
#
# The backend is build/t/libslora_backend_faulty.so (t/backend/): the CPU
# backend behind the CUDA backend's entry point, loaded by `device=cuda
# cuda_lib=`, whose forward fails after $SLORA_FAULTY_STEPS good ones.
# The first two servers name a copy of it in their prefix by a path
# relative to the prefix, as nginx takes paths; the third by its full
# path.
#
# Lost (a GPU whose context is gone, SLORA_FATAL): the open stream gets an
# error event naming the fault, the engine exits at once (no retries on
# a dead device) and is respawned, and the new engine serves the same
# greedy text as before the fault.
#
# Error (a step that failed, SLORA_ERROR): the step's requests get the
# error and the engine stays; a second failure too; the third in a row
# respawns it, and the new engine serves as before.
#
# Held (its memory another process's, as in a binary upgrade): the
# engine cannot load, says why, and tries again in the same process
# until it can, then serves.
#
# The one idea to know: each engine process counts its forwards afresh,
# so the first requests after a respawn are good again.

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;
use File::Copy qw(copy);
use File::Path qw(make_path);

my $FAULTY = repo_root() . '/build/t/libslora_backend_faulty.so';
-f $FAULTY or BAIL_OUT("no $FAULTY: run make");

my $model = tiny_model(layers => 2, hidden => 64, seed => 3);
my $PROMPT = 'Once upon a time';

sub server {
    my ($name, $port, $mode, $steps) = @_;
    my $s = SloraTest::Server->new(
        name => $name, port => $port,
        main => "env SLORA_FAULTY_MODE=$mode;\n"
                . "env SLORA_FAULTY_STEPS=$steps;");
    make_path($s->prefix . '/lib');
    copy($FAULTY, $s->prefix . '/lib/libslora_backend_faulty.so')
        or die "copy $FAULTY: $!";
    $s->{http} = slora_http(
        model => $model,
        device => 'cuda cuda_lib=lib/libslora_backend_faulty.so',
        engine => 'slots=8 max_running=8 max_ctx=1024 max_tokens=512');
    $s->start;
    return $s;
}

sub complete {
    my ($port, $n) = @_;
    my $r = json_req($port, '/v1/completions',
                     json_encode({ model => 'base', prompt => $PROMPT,
                                   max_tokens => $n, temperature => 0 }),
                     timeout => 60);
    my $j = ref $r->{json} eq 'HASH' ? $r->{json} : {};
    my $c = ref $j->{choices} eq 'ARRAY' ? $j->{choices}[0] : {};
    return { status => $r->{status}, text => $c->{text},
             finish => $c->{finish_reason},
             error => ref $j->{error} eq 'HASH' ? $j->{error}{message} : undef,
             body => $r->{body} };
}

sub stream {
    my ($port, $n) = @_;
    my $st = stream_start($port, 'POST', '/v1/completions',
        body => json_encode({ model => 'base', prompt => $PROMPT,
                              max_tokens => $n, temperature => 0,
                              stream => JSON::PP::true() }),
        headers => { 'Content-Type' => 'application/json' });
    $st->wait_done(60);
    my ($err) = grep { ref $_->{json} eq 'HASH' && $_->{json}{error} }
                @{ $st->{events} };
    my $tokens = grep { ref $_->{json} eq 'HASH' && $_->{json}{choices} }
                 @{ $st->{events} };
    my $finished = grep { ref $_->{json} eq 'HASH'
                          && ref $_->{json}{choices} eq 'ARRAY'
                          && defined $_->{json}{choices}[0]{finish_reason} }
                   @{ $st->{events} };
    return ($st, $err, $tokens, $finished);
}

my @allowed = (qr/slora engine: the backend cannot go on/,
               qr/slora engine: \d+ steps failed in a row/,
               qr/slora engine: step failed, its requests were ended/,
               qr/slora engine process \d+ exited with code 1/,
               qr/engine \d+ exited with code 1/);

# The engine came back: a new pid, restarts + 1, and the same greedy text
# as $ref for a request of 8 tokens.
sub check_respawn {
    my ($s, $before, $ref, $why) = @_;
    my $new = wait_for(30, sub {
        my $x = $s->status or return 0;
        return $x->{engine}{ready} && $x->{engine}{pid}
               && $x->{engine}{pid} != $before->{engine}{pid} ? $x : 0;
    });
    ok($new, "$why: the engine was respawned and is ready");
    is($new ? $new->{engine}{restarts} : -1,
       $before->{engine}{restarts} + 1, 'restarts + 1');
    my $again = complete($s->port, 8);
    is($again->{status}, 200, 'the new engine answers');
    is($again->{text}, $ref->{text}, '... with the greedy text of before');
}

# Nothing in the log at [error] or worse but what the faults explain.
sub check_log {
    my ($s) = @_;
    my @bad = $s->bad_log_lines(errors => 1, allow => \@allowed);
    ok(!@bad, 'no other [error], [alert], [crit] or [emerg]')
        or diag(join("\n", @bad));
}

# 1. Lost: one failed step is enough to start over.
{
    my $s = server('device-lost', 18121, 'lost', 40);
    pass('nginx started on the faulty backend (lost after 40 steps), '
         . 'cuda_lib= relative to the prefix');
    my $ref = complete(18121, 8);
    is($ref->{status}, 200, 'a request before the fault is answered')
        or diag($ref->{body});
    is($ref->{finish}, 'length', '... to max_tokens');
    my $before = $s->status;

    my ($st, $err, $tokens, $finished) = stream(18121, 200);
    ok($err, 'the open stream gets an error event');
    like($err ? $err->{json}{error}{message} // '' : '',
         qr/context is lost/, '... that names the lost device');
    is($err ? $err->{json}{error}{type} : '', 'server_error',
       '... of type server_error');
    ok($tokens > 0 && $tokens < 200 && !$finished,
       "... after $tokens of its 200 tokens, with no finish_reason");
    ok($st->{done}, 'the stream then ends (terminal chunk)');
    ok(!@{ $st->{errors} }, 'its framing is valid')
        or diag(join("\n", @{ $st->{errors} }));

    check_respawn($s, $before, $ref, 'one lost step');
    my $log = $s->error_log;
    is(() = $log =~ /the backend cannot go on, exiting to be respawned/g, 1,
       'the engine exited at the first failed step, saying why');
    unlike($log, qr/step failed, its requests were ended/,
           'no retry of a lost device');
    check_log($s);
    $s->stop;
}

# 2. Error: failed steps fail their requests; three in a row start over.
{
    my $s = server('device-error', 18122, 'error', 12);
    pass('nginx started on the faulty backend (failing after 12 steps)');
    my $ref = complete(18122, 8);
    is($ref->{status}, 200, 'a request before the fault is answered')
        or diag($ref->{body});
    my $before = $s->status;

    my ($st, $err, $tokens) = stream(18122, 100);
    like($err ? $err->{json}{error}{message} // '' : '',
         qr/faulty backend: the step failed/,
         "the stream's failed step gives it an error event (after "
         . "$tokens tokens)");
    ok($st->{done} && !@{ $st->{errors} }, '... and a valid end');
    is($s->status->{engine}{pid}, $before->{engine}{pid},
       'one failed step: the engine stays');

    my $second = complete(18122, 4);
    is($second->{status}, 500, 'the next request fails too: 500');
    like($second->{error} // '', qr/faulty backend: the step failed/,
         '... with the step\'s error');
    is($s->status->{engine}{pid}, $before->{engine}{pid},
       'two failed steps: the engine stays');

    my $third = complete(18122, 4);
    is($third->{status}, 500, 'the third fails: 500');
    like($third->{error} // '', qr/faulty backend: the step failed/,
         '... with the step\'s error');
    check_respawn($s, $before, $ref, 'three failed steps in a row');
    my $log = $s->error_log;
    like($log, qr/3 steps failed in a row, exiting to be respawned/,
         'the log says why');
    is(() = $log =~ /step failed, its requests were ended/g, 2,
       'the two failures before it were logged and survived');
    check_log($s);
    $s->stop;
}

# 3. Held (a binary upgrade's new engine while the old one holds the
# GPU's memory): the engine cannot load, says so and why, /health is a
# 503 naming the cause, and it tries again (1 s, then 2, 4, ...) in the
# same process: once the memory is free it loads and serves, no respawn.
{
    my $hold = '/tmp/slora-device-held.' . $$;
    my $seen = "$hold.health";
    open(my $h, '>', $hold) or die "$hold: $!";
    close($h);
    my $kid = fork() // die "fork: $!";
    if ($kid == 0) {
        sleep(3);
        my $r = eval { http_req(18123, 'GET', '/health', timeout => 5) };
        if (open(my $o, '>', $seen)) {
            print {$o} ($r ? "$r->{status} $r->{body}" : 'none');
            close($o);
        }
        unlink($hold);
        POSIX::_exit(0);
    }
    my $s = SloraTest::Server->new(
        name => 'device-held', port => 18123,
        main => "env SLORA_FAULTY_MODE=error;\n"
                . "env SLORA_FAULTY_STEPS=1000000;\n"
                . "env SLORA_FAULTY_HOLD=$hold;");
    $s->{http} = slora_http(
        model => $model, device => "cuda cuda_lib=$FAULTY",
        engine => 'slots=8 max_running=8 max_ctx=1024 max_tokens=512');
    $s->start;
    waitpid($kid, 0);
    pass('nginx started with the device held, and became ready');
    my $health = do { local (@ARGV, $/) = ($seen); <> } // '';
    unlink($seen);
    like($health, qr/^503 .*out of device memory/,
         'while it was held: /health 503, naming the cause');
    my $log = $s->error_log;
    like($log, qr/cannot load .*out of device memory \(held while .*; trying again in 1 s/,
         'the log says the load failed, why, and when it tries again');
    like($log, qr/trying again in 2 s/, '... then waits longer');
    my $st = $s->status;
    is($st->{engine}{restarts}, 0, 'loaded on a later try, not respawned');
    my $r = complete(18123, 8);
    is($r->{status}, 200, 'then it serves') or diag($r->{body});
    my @bad = $s->bad_log_lines(errors => 1,
                                allow => [qr/slora engine: cannot load/]);
    ok(!@bad, 'no other [error], [alert], [crit] or [emerg]')
        or diag(join("\n", @bad));
    $s->stop;
}

done_testing();
