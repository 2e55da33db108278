# daemon.t: nginx run as Debian's systemd unit runs it, with
# -g 'daemon on; master_process on;' (Type=forking, the master read from
# the pid file).
#
# `nginx -t` passes; the command returns at once with status 0, leaving a
# master in a session of its own whose child the engine is: the module
# daemonizes before it spawns the engine, so the engine keeps the master
# that reaps and respawns it (spawned before nginx's own daemonizing, its
# parent would be the command's process, gone). A completion is answered;
# the step log the engine opens is not world-writable under the daemon's
# umask 0; a killed engine is respawned by that master and answers the
# same greedy text; `nginx -s reload` (the unit's ExecReload) keeps the
# engine; a HUP after WINCH, while the engine still drains a stream,
# starts a new engine on a zone of its own and the stream ends whole;
# `nginx -s reopen` (logrotate) moves the engine's lines to the
# new log; a binary upgrade (USR2, QUIT to the old master) hands over to
# the new master's own engine; QUIT (the unit's ExecStop) ends the
# master, its workers and the engine. With master_process off nothing is
# respawned, and the log says so.

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;
use Time::HiRes ();

my $PORT = 18116;

# large enough that a stream of some thousand tokens lasts seconds
my $model = tiny_model(layers => 4, hidden => 256, heads => 4,
                       kv_heads => 2, ffn => 512, ctx => 4096, seed => 7);
my $s = SloraTest::Server->new(name => 'daemon', port => $PORT,
                               daemon => 1);
# the engine runs as the workers' user: a folder anyone may write
mkdir($s->prefix . '/steps') && chmod(01777, $s->prefix . '/steps')
    or die "mkdir: $!";
my $steps = $s->prefix . '/steps/steps.csv';
$s->{main} = "env SLORA_STEP_LOG=$steps;";
$s->{http} = slora_http(model => $model,
                        engine => 'threads=1 slots=8 max_running=8');

# The parent pid and session id of a process, from /proc.
sub ppid_sid {
    my ($pid) = @_;
    open(my $fh, '<', "/proc/$pid/stat") or return ();
    my $st = <$fh>;
    return $st =~ /^\d+ \(.*\) \S+ (\d+) \d+ (\d+)/ ? ($1, $2) : ();
}

# The pids whose parent is $pid.
sub children {
    my ($pid) = @_;
    my @c;
    for my $d (glob('/proc/[0-9]*')) {
        my ($pp) = ppid_sid((split m{/}, $d)[-1]);
        push @c, (split m{/}, $d)[-1] if defined $pp && $pp == $pid;
    }
    return sort { $a <=> $b } @c;
}

sub complete {
    my $r = json_req($PORT, '/v1/completions',
                     json_encode({ model => 'base', prompt => 'Once upon',
                                   max_tokens => 12, temperature => 0 }),
                     timeout => 60);
    return $r->{status} == 200 && $r->{json}
           ? $r->{json}{choices}[0]{text} : "HTTP $r->{status}: $r->{body}";
}

my ($rc, $out) = $s->test_config;
is($rc, 0, "nginx -t with daemon on passes") or diag($out);
like($out, qr/test is successful/, 'nginx -t says so');

$s->start;
is($s->{launcher_status}, 0, 'the nginx command returned with status 0')
    or diag($s->log_tail);
my $master = $s->pid;
isnt($master, $s->{launcher}, 'the master is not the command\'s process');
my ($mppid, $msid) = ppid_sid($master);
is($msid, $master, 'the master leads a session of its own (setsid)');
isnt($mppid, $s->{launcher}, 'the master outlived its launcher');

my $epid = $s->engine_pid;
ok($epid, "the engine runs (pid $epid)");
is((ppid_sid($epid))[0], $master, 'the engine is the master\'s child');
my @kids = children($master);
is(scalar(@kids), 3, 'the master has two workers and the engine')
    or diag("children: @kids");
ok((grep { $_ == $epid } @kids), 'the engine among them');

my $text = complete();
like($text, qr/\S/, 'a completion is answered')
    or diag($text);

# The probe's endpoint: 200 while requests go to the engine.
my $h = SloraTest::http_req($PORT, 'GET', '/health');
is($h->{status}, 200, 'slora_health: 200');
is_deeply($h->{json}, { status => 'ok' }, 'saying ok');
$h = SloraTest::http_req($PORT, 'HEAD', '/health');
is($h->{status}, 200, 'HEAD too');
is($h->{body}, '', 'with no body');
$h = SloraTest::http_req($PORT, 'POST', '/health', body => '{}');
is($h->{status}, 405, 'POST is 405');
is($h->{headers}{allow}, 'GET, HEAD', '... naming GET and HEAD (Allow)');
like(SloraTest::http_req($PORT, 'GET', '/metrics')->{body},
     qr/^slora_engine_ready 1$/m, 'metrics: slora_engine_ready 1');

ok(-s $steps, 'the engine writes its step log');
my $mode = (stat($steps))[2] & 07777;
is(sprintf('%04o', $mode), '0644',
   'the step log is 0644 under the daemon\'s umask 0');

# A killed engine: the daemonized master reaps and respawns it.
my $before = $s->status;
ok(kill('KILL', $epid), "engine $epid killed");
my $new = SloraTest::wait_for(30, sub {
    my $st = $s->status or return 0;
    my $p = $st->{engine}{pid};
    return $st->{engine}{ready} && $p && $p != $epid ? $st : 0;
});
ok($new, 'a new engine is ready');
my $epid2 = $new ? $new->{engine}{pid} : 0;
is((ppid_sid($epid2))[0], $master, 'respawned by the master');
is($new->{engine}{restarts}, ($before->{engine}{restarts} // 0) + 1,
   'restarts counted');
is(complete(), $text, 'the respawned engine answers the same text');

# nginx -s reload, as the unit's ExecReload: new workers, the same engine.
my @workers = grep { $_ != $epid2 } children($master);
($rc, $out) = SloraTest::run_cmd($s->nginx_args('-s', 'reload'));
is($rc, 0, 'nginx -s reload') or diag($out);
ok(SloraTest::wait_for(20, sub {
    my @now = grep { $_ != $epid2 } children($master);
    return @now == 2 && !grep { my $w = $_; grep { $_ == $w } @workers }
                                @now;
}), 'the master runs two new workers');
like($s->error_log,
     qr/engine configuration unchanged, keeping engine process $epid2/,
     'the reload keeps the engine');
is($s->engine_pid, $epid2, 'the same engine after the reload');
is(complete(), $text, 'and it answers');

# WINCH (the workers and the engine told to finish and exit), then HUP
# with the configuration unchanged while the engine still runs a stream:
# the new engine starts on a zone of its own, not on the one the old
# engine drains on (two engines on one ring: the new one failed the old
# one's stream as its dead predecessor's); the stream ends whole, and a
# reload after it keeps the new engine.
{
    my $body = sub {
        json_encode({ model => 'base', prompt => 'Once upon a time',
                      max_tokens => $_[0], temperature => 0,
                      ignore_eos => JSON::PP::true(), @_[1 .. $#_] });
    };
    my $t0 = Time::HiRes::time();
    json_req($PORT, '/v1/completions', $body->(64), timeout => 60);
    my $n = int(64 / (Time::HiRes::time() - $t0 || 0.001) * 4);
    $n = 100 if $n < 100;
    $n = 3900 if $n > 3900;
    my $ref = json_req($PORT, '/v1/completions', $body->($n),
                       timeout => 120);
    my $reftext = $ref->{json} ? $ref->{json}{choices}[0]{text} : '';
    my $mark = length($s->error_log);
    my $st = stream_start($PORT, 'POST', '/v1/completions',
        body => $body->($n, stream => JSON::PP::true()),
        headers => { 'Content-Type' => 'application/json' });
    ok($st->wait_events(3, 10) >= 3, "a stream of $n tokens runs");
    $s->signal('WINCH');
    ok(SloraTest::wait_for(10, sub {
        substr($s->error_log, $mark) =~ /slora engine: quitting after 1 / }),
       'WINCH: the engine finishes its stream before it exits');
    $s->signal('HUP');
    my $up = SloraTest::wait_for(30, sub {
        my $x = $s->status or return 0;
        my $p = $x->{engine}{pid};
        return $x->{engine}{ready} && $p && $p != $epid2 ? $p : 0;
    });
    ok($up, 'HUP: a new engine is ready');
    ok(SloraTest::proc_alive($epid2), 'while the old one drains');
    $st->wait_done(120);
    my ($bad, $sum) = $st->sse_check('text');
    ok(!@$bad, 'the stream is well-formed') or diag(join("\n", @$bad));
    ok(length($reftext) && $sum->{text} eq $reftext,
       'and whole: the reference text');
    ok(SloraTest::wait_for(20, sub { !SloraTest::proc_alive($epid2) }),
       'the old engine exits after it');
    is(complete(), $text, 'the new engine answers');
    $mark = length($s->error_log);
    $s->signal('HUP');
    ok(SloraTest::wait_for(20, sub {
        substr($s->error_log, $mark)
            =~ /engine configuration unchanged, keeping engine process $up/
    }), 'a reload after it keeps the new engine');
    is(complete(), $text, 'which answers');
    $epid2 = $up;
}

# nginx -s reopen, as logrotate's postrotate: the engine writes into the
# new error log, not the one moved away.
my $elog = $s->prefix . '/logs/error.log';
rename($elog, "$elog.1") or die "rename: $!";
($rc, $out) = SloraTest::run_cmd($s->nginx_args('-s', 'reopen'));
is($rc, 0, 'nginx -s reopen') or diag($out);
ok(SloraTest::wait_for(10, sub {
       (SloraTest::_slurp("$elog.1") // '')
           =~ /$epid2#\d+: slora engine: reopening logs/ }),
   'the engine is told, and says so in the log it leaves');

# A binary upgrade (USR2, then QUIT to the old master): the new master,
# the old one's child, spawns an engine of its own, and serves once the
# old master, its workers and its engine are gone.
my @old = ($master, children($master));
ok(kill('USR2', $master), 'USR2 to the master');
my $pidfile = $s->prefix . '/logs/nginx.pid';
my $new_master = SloraTest::wait_for(20, sub {
    my $p = SloraTest::_slurp($pidfile) // '';
    return $p =~ /^(\d+)$/m && $1 != $master ? $1 : 0;
});
ok($new_master, "a new master ($new_master) wrote the pid file");
is((ppid_sid($new_master))[0], $master, 'the old master\'s child');
my $engine_of = sub {
    my ($m) = @_;
    for my $c (children($m)) {
        my $cmd = SloraTest::_slurp("/proc/$c/cmdline") // '';
        return $c if $cmd =~ /slora engine/;
    }
    return 0;
};
my $epid3 = SloraTest::wait_for(20, sub { $engine_of->($new_master) });
ok($epid3 && $epid3 != $epid2, "the new master runs its own engine ($epid3)");
ok(kill('QUIT', $master), 'QUIT to the old master');
ok(SloraTest::wait_for(20, sub { !grep { proc_alive($_) } @old }),
   'the old master, its workers and its engine are gone');
like($s->error_log, qr/$epid2#\d+: slora engine: exit/,
     'the old engine\'s last line is in the new log');
unlike(SloraTest::_slurp("$elog.1"), qr/$epid2#\d+: slora engine: exit/,
       'not in the one moved away');
$s->{pid} = $new_master;
ok(SloraTest::wait_for(20, sub { my $st = $s->status;
                                 $st && $st->{engine}{ready}
                                 && $st->{engine}{pid} == $epid3 }),
   'the status is the new engine\'s');
is(complete(), $text, 'the new engine answers the same text');
$master = $new_master;

# QUIT, as the unit's ExecStop: every process of this nginx ends.
my @all = ($master, children($master));
my $r = $s->stop;
ok($r->{graceful}, 'the master exits on QUIT');
ok($r->{engine_gone}, 'the engine exits with it');
ok(SloraTest::wait_for(10, sub { !grep { proc_alive($_) } @all }),
   'no process of this nginx is left');

my @rotated = grep { /\[(?:alert|crit|emerg|error)\]/ && !/exited on signal 9/ }
              split /\n/, SloraTest::_slurp("$elog.1");
ok(!@rotated, 'nothing bad in the log moved away either')
    or diag(join("\n", @rotated));
my @bad = $s->bad_log_lines(
    errors => 1, allow => [qr/\[alert\] \d+#\d+: .*exited on signal 9/]);
ok(!@bad, 'no [error], [alert], [crit] or [emerg] but the killed engine')
    or diag(join("\n", @bad));

# master_process off: nginx respawns nothing, which the log warns of at
# start; a killed engine stays dead and requests get 503.
my $one = SloraTest::Server->new(name => 'daemon-single', port => $PORT,
                                 master => 0);
$one->{http} = slora_http(model => $model,
                          engine => 'threads=1 slots=8 max_running=8');
$one->start;
like($one->error_log,
     qr/\[warn\] .*"master_process off": nginx respawns no process/,
     'master_process off: the log warns that nothing is respawned');
like(complete(), qr/\S/, 'a completion is answered');
my $lone = $one->engine_pid;
ok(kill('KILL', $lone), "engine $lone killed");
# reaped (nginx's SIGCHLD handler waits for it), not just a zombie: the
# pid gone is what a worker goes by
ok(SloraTest::wait_for(10, sub { !kill(0, $lone) }), 'it is gone');
my $gone = json_req($PORT, '/v1/completions',
                    json_encode({ model => 'base', prompt => 'Once upon',
                                  max_tokens => 4 }), timeout => 30);
is($gone->{status}, 503, 'then requests get 503');
is($gone->{json}{error}{code}, 'engine_not_ready', 'engine_not_ready')
    or diag($gone->{body});
$h = SloraTest::http_req($PORT, 'GET', '/health');
is($h->{status}, 503, 'slora_health: 503');
is($h->{json}{error}{code}, 'engine_not_ready', 'engine_not_ready');
like($h->{json}{error}{message}, qr/the engine process is gone/,
     'saying why');
like(SloraTest::http_req($PORT, 'GET', '/metrics')->{body},
     qr/^slora_engine_ready 0$/m, 'metrics: slora_engine_ready 0');
# a probe's 503 is its answer, not an incident: info, not warn
my $log = $one->error_log;
like($log, qr/\[info\] .*slora: 503 The engine is not ready.*"GET \/health /,
     'the probe\'s 503 is logged at info');
unlike($log, qr/\[warn\] .*"GET \/health /, '... not at warn');
like($log, qr/\[warn\] .*slora: 503 .*"POST \/v1\/completions /,
     'a request\'s 503 still at warn');
ok($one->stop->{graceful}, 'nginx stops on QUIT');

# The model where the workers' user may not read it (a tree under root's
# or a user's private home folder, with the master started as root and
# the workers as nobody; or a file of mode 0): the engine cannot load,
# /health and the log say so, which file and as which user (the engine's
# own, as /proc has it); made readable, the model loads on a later try
# with no restart. Run as root the folder is 0700 and the file 0644; as
# another user the file is 0000, which its owner cannot read either.
{
    my $dir = $one->prefix . '/private';
    mkdir($dir, 0700) or die "mkdir $dir: $!";
    my $hidden = "$dir/model.gguf";
    SloraTest::_spew($hidden, SloraTest::_slurp($model));
    chmod($> == 0 ? 0644 : 0000, $hidden) or die "chmod: $!";
    my $seen = $dir . '.health';
    my $kid = fork() // die "fork: $!";
    if ($kid == 0) {
        sleep(3);
        my $r = eval { SloraTest::http_req($PORT, 'GET', '/health',
                                           timeout => 5) };
        if (open(my $o, '>', $seen)) {
            print {$o} ($r ? "$r->{status} $r->{body}" : 'none');
            close($o);
        }
        chmod(0755, $dir);
        chmod(0644, $hidden);
        POSIX::_exit(0);
    }
    my $p = SloraTest::Server->new(name => 'daemon-private', port => $PORT);
    $p->{http} = slora_http(model => $hidden,
                            engine => 'threads=1 slots=8 max_running=8');
    $p->start;
    waitpid($kid, 0);
    pass('nginx started with the model unreadable, and became ready');
    my $health = SloraTest::_slurp($seen) // '';
    like($health, qr/^503 .*engine_not_ready/,
         'while unreadable: /health 503 engine_not_ready');
    like($health, qr/\Q$hidden\E: Permission denied/,
         '... naming the file and the cause');
    my ($user) = $health =~ /the engine runs as user \\"([^"\\]+)\\"/;
    my $uid = $p->engine_pid
              && (SloraTest::_slurp('/proc/' . $p->engine_pid . '/status')
                  // '') =~ /^Uid:\s+(\d+)/m ? $1 : -1;
    ok(defined $user && defined getpwnam($user)
       && (getpwnam($user))[2] == $uid,
       "... and the user it reads as, the engine's own ("
       . ($user // 'none') . ", uid $uid)") or diag($health);
    like($p->error_log,
         qr/\[emerg\] .*cannot load "\Q$hidden\E": .*Permission denied .*the engine runs as user "[^"]+", nginx's "user"\); trying again in 1 s/,
         'the log says the same, and when it tries again');
    is($p->status->{engine}{restarts}, 0,
       'made readable, loaded on a later try, not respawned');
    like(complete(), qr/\S/, 'then a completion is answered');
    my @bad = $p->bad_log_lines(errors => 1,
                                allow => [qr/slora engine: cannot load/]);
    ok(!@bad, 'no other [error], [alert], [crit] or [emerg]')
        or diag(join("\n", @bad));
    ok($p->stop->{graceful}, 'nginx stops on QUIT');
}

done_testing();
