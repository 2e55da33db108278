# reload.t: the engine across reloads that change it, and reloads that
# fail for want of resources.
#
# A reload that changes the engine's directives starts a new engine on a
# new zone while a stream on the old one runs to its end, whole; the old
# engine then exits, and the new one holds only its own eventfds and
# zones (as many as the first engine had) and the master's log files,
# not the old ones it was forked with. A model file replaced in place
# (same path) and reloaded gets a new engine that answers with the new
# weights; a reload that changes nothing after it keeps that engine. A
# reload whose eventfds pass the open files limit fails (the error log
# says which limit), and nginx goes on as it was: the same master, the
# same engine, answering. A reload whose engine cannot be forked (a pids
# cgroup at its limit) is not the master's end: it lives on, says why in
# the error log, and the next reload, the limit lifted, starts the
# engine and answers. The one idea to know: before these were fixed the
# last two ended the master (init_module's failure is fatal to nginx),
# and the new engine kept the old eventfds and zone for its life; each
# case asserts what that program did not do.

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;
use File::Copy qw(copy);
use Time::HiRes qw(time sleep);

my $PORT = 18148;
my $PROMPT = 'Once upon a time';
my $STREAM_SECONDS = 3;

my $model_a = tiny_model(layers => 4, hidden => 256, heads => 4,
                         kv_heads => 2, ffn => 512, ctx => 4096, seed => 7);
my $model_b = tiny_model(layers => 4, hidden => 256, heads => 4,
                         kv_heads => 2, ffn => 512, ctx => 4096, seed => 8);

my $s = SloraTest::Server->new(name => 'reload', port => $PORT);
my $model = $s->prefix . '/model.gguf';
copy($model_a, $model) or die "copy: $!";

my %engine = (slots => 8, max_running => 8, max_tokens => 4000);

sub configure {
    my $e = join(' ', 'threads=1 max_ctx=4096',
                 map { "$_=$engine{$_}" } sort keys %engine);
    $s->{http} = slora_http(model => $model, engine => $e);
    $s->write_config;
}

sub complete {
    my ($n, %o) = @_;
    my $t = time();
    my $r = json_req($PORT, '/v1/completions',
                     json_encode({ model => 'model', prompt => $PROMPT,
                                   max_tokens => $n, temperature => 0, %o }),
                     timeout => 120);
    my $c = $r->{json} && ref $r->{json}{choices} eq 'ARRAY'
            ? $r->{json}{choices}[0] : {};
    return { status => $r->{status}, text => $c->{text},
             finish => $c->{finish_reason}, secs => time() - $t,
             body => $r->{body} };
}

# What a process holds: its eventfds, its anonymous shared mappings
# (nginx's zones: "/dev/zero (deleted)" in maps) and the log files it has
# open (past stdin, stdout and stderr).
sub holdings {
    my ($pid) = @_;
    my $efd = grep { (readlink($_) // '') eq 'anon_inode:[eventfd]' }
              glob("/proc/$pid/fd/*");
    my $logs = grep { m{/(\d+)$} && $1 > 2
                      && (readlink($_) // '') =~ m{/logs/[^/]+\.log$} }
               glob("/proc/$pid/fd/*");
    open(my $fh, '<', "/proc/$pid/maps") or return {};
    my $zones = grep { m{ /dev/zero \(deleted\)$} } <$fh>;
    return { eventfds => $efd, zones => $zones, logs => $logs };
}

# Reloads and waits for an engine other than $old to be ready.
sub reload_to_new_engine {
    my ($old, $what) = @_;
    configure();
    $s->signal('HUP');
    my $st = wait_for(60, sub {
        my $x = $s->status or return 0;
        return $x->{engine}{ready} && $x->{engine}{pid}
               && $x->{engine}{pid} != $old ? $x : 0;
    });
    ok($st, "$what: a new engine is ready")
        or diag($s->log_tail);
    return $st ? $st->{engine}{pid} : 0;
}

sub error_log_since {
    my ($mark) = @_;
    return substr($s->error_log, $mark);
}

configure();
$s->start;
pass('nginx started, engine ready');
my $master = $s->pid;
my $e1 = $s->engine_pid;
my $first = holdings($e1);
cmp_ok($first->{eventfds}, '>=', $engine{slots} + 1,
       "the engine holds its eventfds ($first->{eventfds})");
cmp_ok($first->{zones}, '>=', 1, "and its zone ($first->{zones} mappings)");
is($first->{logs}, holdings($master)->{logs},
   'and the log files the master has open, not the log of -e the master'
   . ' closed after the start');

# The stream's length: about $STREAM_SECONDS of this engine's speed.
my $cal = complete(64, ignore_eos => JSON::PP::true());
is($cal->{status}, 200, 'calibration answered') or diag($cal->{body});
my $N = int(64 / ($cal->{secs} || 0.001) * $STREAM_SECONDS);
$N = 100 if $N < 100;
$N = 3900 if $N > 3900;
my $ref = complete($N, ignore_eos => JSON::PP::true());
is($ref->{finish}, 'length', "reference run of $N tokens");
my $text_a = complete(24)->{text};
ok(length($text_a // ''), 'model A answers');

# 1. A reload that changes the engine, a stream running on the old one.
{
    my $st = stream_start($PORT, 'POST', '/v1/completions',
        body => json_encode({ model => 'model', prompt => $PROMPT,
                              max_tokens => $N, temperature => 0,
                              ignore_eos => JSON::PP::true(),
                              stream => JSON::PP::true() }),
        headers => { 'Content-Type' => 'application/json' });
    ok($st->wait_events(3, 10) >= 3, 'a stream runs before the reload');
    $engine{max_tokens} = 3999;
    my $e2 = reload_to_new_engine($e1, 'max_tokens changed');
    ok(SloraTest::proc_alive($e1), 'the old engine runs on meanwhile');
    $st->wait_done(120);
    my ($bad, $sum) = $st->sse_check('text', model => 'model');
    ok(!@$bad, 'the stream across the reload is well-formed')
        or diag(join("\n", @$bad));
    ok($sum->{text} eq ($ref->{text} // ''),
       'and whole: the reference text')
        or diag('got ' . length($sum->{text}) . ' chars of '
                . length($ref->{text} // ''));
    ok(wait_for(20, sub { !SloraTest::proc_alive($e1) }),
       'the old engine exits after it');
    my $h = holdings($e2);
    is($h->{eventfds}, $first->{eventfds},
       'the new engine holds as many eventfds as the first (not the old'
       . ' engine\'s too)');
    is($h->{zones}, $first->{zones},
       'and as many zones (not the old one)');
    is($h->{logs}, holdings($master)->{logs},
       'and the log files the master has open (not the old'
       . ' configuration\'s too)');
    is(complete(24)->{text}, $text_a, 'the new engine answers as before');
    $e1 = $e2;
}

# 2. The model file replaced in place, then a reload.
{
    copy($model_b, "$model.new") or die "copy: $!";
    rename("$model.new", $model) or die "rename: $!";
    my $e3 = reload_to_new_engine($e1, 'the model file replaced');
    my $text_b = complete(24)->{text};
    ok(length($text_b // ''), 'the new engine answers');
    isnt($text_b, $text_a, '... with the new weights');
    my $mark = length($s->error_log);
    configure();
    $s->signal('HUP');
    ok(wait_for(20, sub {
        error_log_since($mark) =~ /engine configuration unchanged,/ }),
       'a reload that changes nothing after it keeps that engine');
    is($s->engine_pid, $e3, 'the same engine');
    is(complete(24)->{text}, $text_b, 'answering the same');
    $e1 = $e3;
}

# 2b. The same under paths so long (tokenizer= naming the model by a
# path of some 4000 bytes, "./" over and over, and a cuda_lib= the CPU
# ignores as long; nginx takes no parameter of 4096) that the
# engine's configuration, the files' identity last, runs past 8 KiB:
# the model replaced in place still gets a new engine.
{
    $engine{tokenizer} = $s->prefix . '/' . ('./' x 2000) . 'model.gguf';
    $engine{cuda_lib} = '/nonexistent/' . ('./' x 2010) . 'libslora_cuda.so';
    my $e = reload_to_new_engine($e1, 'tokenizer= and cuda_lib= of '
                                 . length($engine{tokenizer}) . ' and '
                                 . length($engine{cuda_lib}) . ' bytes');
    copy($model_a, "$model.new") or die "copy: $!";
    rename("$model.new", $model) or die "rename: $!";
    $e1 = reload_to_new_engine($e, '... the model file replaced under them');
    is(complete(24)->{text}, $text_a, '... answering with its weights');
    delete @engine{qw(tokenizer cuda_lib)};
    $e1 = reload_to_new_engine($e1, 'the short configuration again');
}

# 3. A reload whose eventfds pass the open files limit.
{
    # the limit where 12 numbers are left free (new fds take the lowest)
    my %open = map { m{/(\d+)$} ? ($1 => 1) : () } glob("/proc/$master/fd/*");
    my ($low, $free) = (0, 0);
    $free += !$open{$low++} while $free < 12;
    my ($limits) = grep { /^Max open files/ }
                   split /\n/, SloraTest::_slurp("/proc/$master/limits");
    my ($soft, $hard) = $limits =~ /(\d+)\s+(\d+)/;
    my ($rc, $out, $err) = SloraTest::run_cmd('prlimit', "--pid=$master",
                                              "--nofile=$low:$hard");
    is($rc, 0, "the master's open files limit lowered to $low")
        or diag("$out$err");
    my $mark = length($s->error_log);
    $engine{slots} = 64;
    configure();
    $s->signal('HUP');
    ok(wait_for(20, sub {
        error_log_since($mark)
            =~ /eventfd\(\) failed for slot \d+ of 64 \(raise the open files/
    }),
       'the reload fails: the error log says which limit')
        or diag(error_log_since($mark));
    sleep(1);
    ok(SloraTest::proc_alive($master), 'the master lives on');
    is($s->engine_pid, $e1, 'the same engine');
    my $r = complete(24);
    is($r->{status}, 200, 'nginx answers as it was') or diag($r->{body});
    is($s->status->{slots}{total}, 8, 'with the old configuration\'s slots');

    ($rc, $out, $err) = SloraTest::run_cmd('prlimit', "--pid=$master",
                                           "--nofile=$soft:$hard");
    is($rc, 0, 'the limit restored') or diag("$out$err");
    my $e4 = reload_to_new_engine($e1, 'the reload again');
    is($s->status->{slots}{total}, 64, 'the new configuration\'s slots');
    $e1 = $e4;
}

# 4. A reload whose engine cannot be forked: a pids cgroup at its limit.
my $cg;
{
    $cg = pids_cgroup();
    ok($cg, 'a pids cgroup made for the master (needs root and cgroups)')
        or BAIL_OUT('no writable pids cgroup controller');
    SloraTest::_spew("$cg->{dir}/cgroup.procs", "$master\n");
    SloraTest::_spew("$cg->{dir}/pids.max", "1\n");
    my $mark = length($s->error_log);
    $engine{max_running} = 7;
    configure();
    $s->signal('HUP');
    ok(wait_for(20, sub {
        error_log_since($mark)
            =~ /could not spawn the engine process: requests are answered 503/
    }),
       'the engine\'s fork fails on the reload: the error log says so')
        or diag(error_log_since($mark));
    sleep(1);
    ok(SloraTest::proc_alive($master), 'the master lives on');
    SloraTest::_spew("$cg->{dir}/pids.max", "max\n");
    my $e5 = reload_to_new_engine($e1, 'the limit lifted, a reload');
    my $r = complete(24);
    is($r->{status}, 200, 'the new engine answers') or diag($r->{body});
    is($r->{text}, complete(24)->{text}, 'greedily, the same twice');
}

# The module added to a running nginx by a reload, then taken out by
# another: the master spawns the engine, then outlives it (the master
# logs an engine's exit with the name it was spawned under, which lived
# in the module's data, unmapped by then: the master crashed, its workers
# left orphaned).
{
    my $plain = <<'EOF';
    server {
        listen 127.0.0.1:%%PORT%%;
        location / { return 200 "plain\n"; }
    }
EOF
    my $f = SloraTest::Server->new(name => 'reload-first', port => 18184,
                                   module => '', http => $plain,
                                   workers => 1);
    $f->start(no_engine => 1);
    is(http_req(18184, 'GET', '/')->{body}, "plain\n",
       'nginx without the module serves');
    $f->{module} = undef;
    $f->{http} = slora_http(model => $model_a,
                            engine => 'threads=1 slots=4 max_ctx=256');
    $f->write_config;
    $f->signal('HUP');
    ok($f->wait_ready(60), 'the module added by a reload: its engine ready')
        or diag($f->log_tail);
    my $epid = $f->engine_pid;
    is(json_req(18184, '/v1/completions',
                { model => 'base', prompt => 'Once upon', max_tokens => 4,
                  temperature => 0 })->{status}, 200,
       '... and answering');
    $f->{module} = '';
    $f->{http} = $plain;
    $f->write_config;
    $f->signal('HUP');
    ok(SloraTest::wait_for(30, sub { !SloraTest::proc_alive($epid) }),
       'the module taken out by a reload: its engine exits');
    sleep(1);
    ok(SloraTest::proc_alive($f->{pid}), '... and the master lives on')
        or diag($f->log_tail);
    like($f->error_log, qr/slora engine $epid exited with code 0/,
         '... having logged the engine\'s exit by its name');
    is(http_req(18184, 'GET', '/v1/models')->{body}, "plain\n",
       '... the plain configuration served');
    ok($f->stop->{graceful}, 'that nginx stops on QUIT');
}

my $stop = $s->stop;
ok($stop->{graceful}, 'nginx stops on QUIT');
is($s->sanitizer_reports, '', 'no sanitizer reports');
# nginx passes each worker it failed to fork a channel it closed
# (sendmsg's EBADF), its own way with a failed fork
my @allow = (qr/eventfd\(\) failed/, qr/could not spawn the engine/,
             qr/fork\(\) failed while spawning/,
             qr/sendmsg\(\) failed \(9: Bad file descriptor\)/);
my @bad = $s->bad_log_lines(allow => \@allow);
ok(!@bad, 'no alert or worse in the error log but the faults\' own')
    or diag(join("\n", @bad));

done_testing();


# A pids cgroup (v1, or v2's unified tree) this test may put the master
# in; removed at the end, its processes moved back.
sub pids_cgroup {
    my ($dir, $parent);
    if (-d '/sys/fs/cgroup/pids' && -w '/sys/fs/cgroup/pids') {
        $parent = '/sys/fs/cgroup/pids';
    } elsif ((SloraTest::_slurp('/sys/fs/cgroup/cgroup.controllers') // '')
             =~ /\bpids\b/) {
        $parent = '/sys/fs/cgroup';
        eval { SloraTest::_spew("$parent/cgroup.subtree_control",
                                "+pids\n") };
    } else {
        return undef;
    }
    $dir = "$parent/slora-test-reload-$$";
    mkdir($dir) or return undef;
    return -e "$dir/pids.max" ? { dir => $dir, parent => $parent } : undef;
}

END {
    if ($cg) {
        $s->stop if $s && !$s->{stopped};
        for my $p (split /\n/, SloraTest::_slurp("$cg->{dir}/cgroup.procs")
                               // '') {
            eval { SloraTest::_spew("$cg->{parent}/cgroup.procs", "$p\n") };
        }
        wait_for(10, sub { rmdir($cg->{dir}) });
    }
}
