# SloraTest: the harness for the t/*.t tests, which run a real nginx with
# ngx_http_slora_module loaded.
#
# A test makes a SloraTest::Server (a fresh prefix t/servroot-<name>/ with
# every path Debian's nginx compiled in overridden), starts it in the
# foreground (daemon off) as a child, or with daemon => 1 as Debian's
# systemd unit does (-g 'daemon on; master_process on;', the master read
# from the pid file), and waits until the status endpoint says the engine
# is ready.  The one idea to know: every byte the server
# sends is checked as it is read.  SloraTest::Stream parses the chunked
# transfer coding and the SSE events on top of it strictly, so a test sees
# framing errors as data and can assert on them, and many streams run at
# once from one process through IO::Select.
#
# Servers still running when the test ends (a failed assertion, a die) are
# stopped from an END block, by pid, never by name.

package SloraTest;

use strict;
use warnings;

use Cwd qw(abs_path);
use Errno qw(EAGAIN EINTR EINPROGRESS EWOULDBLOCK);
use Exporter qw(import);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

our @EXPORT = qw(
    repo_root module_path slora_bin real_model tiny_model make_adapters
    copy_adapters
    run_cmd http_req json_req json_encode json_decode_safe
    stream_start run_streams proc_alive wait_for chat_body
    check_error_object slora_http tenant_location start_redis stop_redis
    python_checks pool_servers pool_order pool_logs_clean json_post
    greedy_completion greedy_until model_ids
);

my $ROOT = abs_path(dirname(abs_path(__FILE__)) . '/../..');
my $JSON = JSON::PP->new->utf8->canonical;

$SIG{PIPE} = 'IGNORE';


sub repo_root { $ROOT }


# The module built by `make module` (mk/module.mk); SLORA_MODULE overrides.
sub module_path {
    return $ENV{SLORA_MODULE} if $ENV{SLORA_MODULE};

    my $p = "$ROOT/build/nginx/objs/ngx_http_slora_module.so";
    return $p if -f $p;

    die "ngx_http_slora_module.so not built (run `make module`, "
        . "or set SLORA_MODULE)\n";
}


# The nginx binary the tests run: Debian's, or SLORA_NGINX (another
# version's, built with the module by `make test-nginx-src`).
sub nginx_bin { return $ENV{SLORA_NGINX} || '/usr/sbin/nginx' }


sub slora_bin {
    my $b = "$ROOT/bin/slora";
    die "$b not built (run `make cli`)\n" unless -x $b;
    return $b;
}


sub real_model {
    my $m = "$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf";
    die "$m missing (run tools/fetch-model)\n" unless -f $m;
    return $m;
}


# run_cmd(@argv): returns (exit status, stdout, stderr); never uses a shell.
sub run_cmd {
    my (@cmd) = @_;
    my $tmp = "/tmp/slora-t-$$-" . int(rand(1e9));

    my $pid = fork() // die "fork: $!";
    if ($pid == 0) {
        open(STDOUT, '>', "$tmp.out") or POSIX::_exit(127);
        open(STDERR, '>', "$tmp.err") or POSIX::_exit(127);
        { no warnings q(exec); exec { $cmd[0] } @cmd; }
        POSIX::_exit(127);
    }
    waitpid($pid, 0);
    my $rc = $?;
    my $out = _slurp("$tmp.out");
    my $err = _slurp("$tmp.err");
    unlink "$tmp.out", "$tmp.err";

    return ($rc, $out, $err);
}


# tiny_model(layers => 2, hidden => 64, ...): a random Llama with SmolLM2's
# real tokenizer, made once into t/data/gen/ and reused (the name encodes
# every parameter, so a changed parameter makes a new file).
sub tiny_model {
    my (%o) = @_;
    my %p = (layers => 2, hidden => 64, heads => 4, kv_heads => 2,
             ffn => 128, ctx => 1024, seed => 1, %o);
    my $dir = "$ROOT/t/data/gen";
    my $name = join('-', 'tiny', map { "$_$p{$_}" } sort keys %p) . '.gguf';
    my $out = "$dir/$name";

    return $out if -s $out;

    make_path($dir);
    my $tmp = "$out.tmp$$";
    my @cmd = (slora_bin(), 'mkmodel', '--out', $tmp,
               '--tokenizer', real_model(),
               '--layers', $p{layers}, '--hidden', $p{hidden},
               '--heads', $p{heads}, '--kv-heads', $p{kv_heads},
               '--ffn', $p{ffn}, '--ctx', $p{ctx}, '--seed', $p{seed});
    my ($rc, $o, $e) = run_cmd(@cmd);
    if ($rc != 0 || !-s $tmp) {
        unlink $tmp;
        die "@cmd failed (rc=$rc): $e$o\n";
    }
    rename($tmp, $out) or die "rename $tmp: $!";

    return $out;
}


# make_adapters($dir, $model, [names], rank => R): one adapter folder per
# name (seed = its index + 1); returns the names.
sub make_adapters {
    my ($dir, $model, $names, %o) = @_;
    my $rank = $o{rank} // 8;

    make_path($dir);
    my $i = 0;
    for my $n (@$names) {
        $i++;
        my @cmd = (slora_bin(), 'mkadapter', '--model', $model,
                   '--out', "$dir/$n", '--rank', $rank,
                   '--seed', ($o{seed_base} // 0) + $i);
        my ($rc, $out, $err) = run_cmd(@cmd);
        die "@cmd failed (rc=$rc): $err$out\n" if $rc != 0;
    }

    return @$names;
}


# copy_adapters($dir, $model, [names], rank => R): one small adapter made
# (in "$dir.src") and copied into a folder of $dir per name, for catalogs
# of thousands that differ in name only; returns the names.
sub copy_adapters {
    my ($dir, $model, $names, %o) = @_;

    make_adapters("$dir.src", $model, ['a'], rank => $o{rank} // 4);
    my %files = map { $_ => _slurp("$dir.src/a/$_") }
                qw(adapter_config.json adapter_model.safetensors);
    die "mkadapter wrote no adapter in $dir.src/a\n"
        if grep { !defined || !length } values %files;

    for my $n (@$names) {
        make_path("$dir/$n");
        _spew("$dir/$n/$_", $files{$_}) for keys %files;
    }

    return @$names;
}


sub json_encode { $JSON->encode($_[0]) }


sub json_decode_safe {
    my ($text) = @_;
    my $v = eval { $JSON->decode($text) };
    return $v;
}


# slora_http(model => PATH, adapters => DIR, engine => 'k=v ...',
# listen => ' reuseport', http_extra => TEXT, server_extra => TEXT): the
# http{} text of a test server: the engine, the adapters, a log format
# with the module's variables, /v1/ (OpenAI API), /status, /metrics.
# The location that serves the API per tenant, /t/<tenant>/v1/, for a
# server_extra of slora_http().
sub tenant_location {
    return <<'EOF';
        location ~ ^/t/(?<tenant>[\w-]+)/v1/ {
            slora_api openai;
            slora_tenant $tenant;
        }
EOF
}


sub slora_http {
    my (%o) = @_;
    my $engine = "model=$o{model} device=" . ($o{device} // 'cpu') . ' '
                 . ($o{engine} // '');
    my $adapters = $o{adapters} ? "slora_adapters dir=$o{adapters};" : '';
    my $listen = $o{listen} // '';
    my $http_extra = $o{http_extra} // '';
    my $server_extra = $o{server_extra} // '';

    return <<"EOF";
    log_format slora '\$pid \$status "\$request" id=\$http_x_test_id '
                     'a=\$slora_adapter t=\$slora_tenant '
                     'p=\$slora_prompt_tokens c=\$slora_completion_tokens '
                     'ttft=\$slora_ttft_ms f=\$slora_finish_reason '
                     'r=\$slora_response_id';

    slora_engine $engine;
    $adapters
$http_extra
    server {
        listen 127.0.0.1:%%PORT%%$listen;
        access_log %%PREFIX%%/logs/access.log slora;

        location /v1/ {
            slora_api openai;
        }

        location = /status {
            slora_status;
        }

        location = /metrics {
            slora_metrics;
        }

        location = /health {
            slora_health;
        }
$server_extra
    }
EOF
}


# pool_servers(name, port, port_off, model, max_ctx, http_extra): two
# started servers of one worker each on model, the same but for
# "slora_thread_pool off" in the second (name-off, port_off): { 0 => the
# one with nginx's thread pool, 1 => the one without }.
sub pool_servers {
    my (%o) = @_;
    my %servers;

    for my $off (0, 1) {
        my $s = SloraTest::Server->new(name => $o{name} . ($off ? '-off' : ''),
                                       port => $off ? $o{port_off}
                                                    : $o{port},
                                       workers => 1);
        $s->{http} = slora_http(
            model => $o{model},
            engine => "threads=1 slots=8 max_ctx=$o{max_ctx} max_tokens=64",
            http_extra => $o{http_extra}
                          . ($off ? "    slora_thread_pool off;\n" : ''));
        $s->start;
        $servers{$off} = $s;
    }

    return %servers;
}


# pool_order(servers => \%servers, path, body, status, what): three times
# on each of pool_servers' two, a POST of body to path (long work on its
# worker: what; body a code ref: its text for the server, given 0 for
# the pool's and 1 for the other) held with a GET /v1/models on another
# connection, both released at once: the POST answers status, the GET 200;
# with the pool the GET ends first (the worker not held), with "off" after
# (the worker does the work before it reads anything else).
sub pool_order {
    my (%o) = @_;

    for my $off (0, 1) {
        my $p = $o{servers}{$off}->port;
        my $body = ref $o{body} eq 'CODE' ? $o{body}->($off) : $o{body};

        for my $try (1 .. 3) {
            my $big = stream_start($p, 'POST', $o{path}, body => $body,
                                   headers => { 'Content-Type'
                                                => 'application/json' },
                                   hold => 1);
            my $small = stream_start($p, 'GET', '/v1/models', hold => 1);
            sleep(0.2);
            $big->release;
            $small->release;
            run_streams([$big, $small], 60);

            Test::More::is($big->{status}, $o{status},
                           "order $try ($p): $o{what}'s request, "
                           . $o{status});
            Test::More::is($small->{status}, 200,
                           "order $try ($p): the GET, 200");

            my $first = defined $small->{t_eof} && defined $big->{t_eof}
                        && $small->{t_eof} < $big->{t_eof};
            Test::More::ok($off ? !$first : $first,
                $off ? "order $try, off: the GET after $o{what} (the "
                       . 'worker held)'
                     : "order $try, pool: the GET before $o{what} ends "
                       . '(the worker not held)')
                or Test::More::diag(sprintf('GET done %.1f ms after the '
                                            . 'POST', 1000
                                            * (($small->{t_eof} // 0)
                                               - ($big->{t_eof} // 0))));
        }
    }
}


# pool_logs_clean(\%servers): neither of pool_servers' two logged an
# [alert], [crit] or [emerg], or lost a worker.
sub pool_logs_clean {
    my ($servers) = @_;

    for my $off (0, 1) {
        my @bad = $servers->{$off}->bad_log_lines;
        Test::More::ok(!@bad, ($off ? 'off' : 'pool') . ': no [alert], '
                       . '[crit] or [emerg] in the error log')
            or Test::More::diag(join("\n", @bad));
        Test::More::unlike($servers->{$off}->error_log,
                           qr/exited on signal/,
                           ($off ? 'off' : 'pool') . ': no worker died');
    }
}


# json_post(port, path, obj): the answer and its body decoded (undef
# where it is no JSON).
sub json_post {
    my ($port, $path, $obj) = @_;
    my $r = json_req($port, $path, $obj, timeout => 60);
    return ($r, json_decode_safe($r->{body}));
}


# python_checks(script, [want], args...): runs t/python/<script> with
# args and makes each check it reports (client_checks.py) a TAP test; each
# name in want must have run, and the script must exit 0.
sub python_checks {
    my ($script, $want, @args) = @_;
    my ($rc, $out, $err) = run_cmd('python3', "$ROOT/t/python/$script",
                                   @args);
    my ($line) = grep { /^\{"checks"/ } split /\n/, $out;
    my $res = json_decode_safe($line // '');
    Test::More::ok($res && ref $res->{checks} eq 'ARRAY', "$script reported")
        or Test::More::diag("rc=$rc\nstdout: $out\nstderr: $err");
    my @checks = $res ? @{ $res->{checks} } : ();
    my %ran = map { $_->[0] => 1 } @checks;
    my @missing = grep { !$ran{$_} } @$want;
    Test::More::ok(!@missing, "each of $script\'s " . scalar(@$want)
                   . ' unconditional checks ran')
        or Test::More::diag("missing: @missing");
    for my $c (@checks) {
        Test::More::ok($c->[1], "$script: $c->[0]")
            or Test::More::diag($c->[2]);
    }
    Test::More::is($rc, 0, "$script exits 0") or Test::More::diag($err);
}


# chat_body(model, prompt, %extra): a chat/completions request body.
sub chat_body {
    my ($model, $prompt, %extra) = @_;
    return json_encode({ model => $model,
                         messages => [{ role => 'user',
                                        content => $prompt }],
                         %extra });
}


# check_error_object($json): the list of what is wrong with an OpenAI error
# body ({"error":{"message","type","param","code"}}); empty when it is right.
sub check_error_object {
    my ($j) = @_;
    my @bad;

    return ('body is not JSON') unless defined $j;
    return ('body is not a JSON object') unless ref $j eq 'HASH';
    my $e = $j->{error};
    return ('no "error" object') unless ref $e eq 'HASH';
    push @bad, 'error.message missing or empty'
        unless defined $e->{message} && !ref $e->{message}
               && length $e->{message};
    push @bad, 'error.type missing or empty'
        unless defined $e->{type} && !ref $e->{type} && length $e->{type};
    for my $k (qw(param code)) {
        push @bad, "error.$k absent" unless exists $e->{$k};
        push @bad, "error.$k is neither a string nor null"
            if ref $e->{$k} && !JSON::PP::is_bool($e->{$k});
    }

    return @bad;
}


sub proc_alive {
    my ($pid) = @_;
    return 0 unless $pid && kill(0, $pid);
    my $st = _slurp("/proc/$pid/stat") // return 0;
    return $st =~ /^\d+ \(.*\) ([A-Za-z])/ && $1 ne 'Z' && $1 ne 'X';
}


# wait_for(timeout, sub): polls sub every 50 ms; returns its first true
# value, or undef at the timeout.
sub wait_for {
    my ($timeout, $cb) = @_;
    my $end = time() + $timeout;
    while (1) {
        my $v = $cb->();
        return $v if $v;
        return undef if time() > $end;
        sleep(0.05);
    }
}


# start_redis(port, dir): a redis-server of its own on 127.0.0.1:port,
# no persistence, its files and logs in dir; true once it answers PING.
# stop_redis(port) kills it by pid (also done at exit for any left).
my %REDIS;

sub start_redis {
    my ($port, $dir) = @_;
    make_path($dir);
    my $pid = fork() // die "fork: $!";
    if ($pid == 0) {
        open(STDIN, '<', '/dev/null');
        open(STDOUT, '>>', "$dir/stdout.log");
        open(STDERR, '>&', \*STDOUT);
        no warnings 'exec';
        exec('redis-server', '--port', $port, '--bind', '127.0.0.1',
             '--save', '', '--appendonly', 'no', '--dir', $dir,
             '--daemonize', 'no', '--logfile', "$dir/redis.log");
        POSIX::_exit(127);
    }
    $REDIS{$port} = $pid;
    return wait_for(10, sub {
        return 0 unless proc_alive($pid);
        my ($rc, $out) = run_cmd('redis-cli', '-p', $port, 'ping');
        return $rc == 0 && $out =~ /PONG/;
    });
}

sub stop_redis {
    my ($port) = @_;
    my $pid = delete $REDIS{$port} or return;
    kill('KILL', $pid);
    waitpid($pid, 0);
}

END { local $?; stop_redis($_) for keys %REDIS }


# http_req(port, method, path, body => ..., headers => {...},
# timeout => s): one request on its own connection (Connection: close).
# Returns a hash: status, headers (lower-case names), body (de-chunked),
# chunked, framing (the first framing error or undef), json (or undef).
sub http_req {
    my ($port, $method, $path, %o) = @_;
    my $st = stream_start($port, $method, $path, %o);

    $st->wait_done($o{timeout} // 60);

    return $st->result;
}


# greedy_completion(port, model): 8 greedy tokens after "Once upon" on
# model: { status, code, message (an error's), text (a 200's) }.
sub greedy_completion {
    my ($port, $model) = @_;
    my $r = json_req($port, '/v1/completions',
                     { model => $model, prompt => 'Once upon',
                       max_tokens => 8, temperature => 0 },
                     timeout => 60);
    my $e = ref $r->{json} eq 'HASH' ? $r->{json}{error} : undef;
    return { status => $r->{status},
             code => $e ? $e->{code} : undef,
             message => $e ? $e->{message} : undef,
             text => $r->{status} == 200 ? $r->{json}{choices}[0]{text}
                                         : undef };
}


# greedy_until(port, model, ok): greedy_completion until ok->(answer)
# holds, 15 s at most; the last answer.
sub greedy_until {
    my ($port, $model, $ok) = @_;
    my $last;
    wait_for(15, sub { $last = greedy_completion($port, $model);
                       $ok->($last) });
    return $last;
}


# model_ids(port): { id => 1 } of each model GET /v1/models lists.
sub model_ids {
    my ($port) = @_;
    my $r = http_req($port, 'GET', '/v1/models');
    return { map { $_->{id} => 1 } @{ $r->{json}{data} // [] } };
}


sub json_req {
    my ($port, $path, $obj, %o) = @_;
    return http_req($port, 'POST', $path,
                    body => ref $obj ? json_encode($obj) : $obj,
                    headers => { 'Content-Type' => 'application/json' },
                    %o);
}


sub stream_start {
    return SloraTest::Stream->new(@_);
}


# run_streams(\@streams, timeout, on_event => sub { ($st, $ev) }): reads
# every stream until each has ended (EOF or error) or the timeout passes.
sub run_streams {
    my ($streams, $timeout, %o) = @_;
    my $end = time() + $timeout;

    while (1) {
        my @live = grep { !$_->{closed} } @$streams;
        last unless @live;
        my $left = $end - time();
        last if $left <= 0;

        my $sel = IO::Select->new(map { $_->{sock} } @live);
        my %by = map { fileno($_->{sock}) => $_ } @live;
        for my $fh ($sel->can_read($left < 0.2 ? $left : 0.2)) {
            my $st = $by{fileno($fh)};
            my $n = scalar @{ $st->{events} };
            $st->pump;
            if ($o{on_event}) {
                $o{on_event}->($st, $_)
                    for @{ $st->{events} }[$n .. $#{ $st->{events} }];
            }
        }
    }

    return scalar grep { !$_->{closed} } @$streams;
}


sub _slurp {
    my ($f) = @_;
    open(my $fh, '<:raw', $f) or return undef;
    local $/;
    my $d = <$fh>;
    close $fh;
    return $d // '';
}


sub _spew {
    my ($f, $d) = @_;
    open(my $fh, '>:raw', $f) or die "$f: $!";
    print $fh $d;
    close $fh or die "$f: $!";
}


# ---------------------------------------------------------------------------

package SloraTest::Stream;

# One HTTP exchange read incrementally: status line and headers, then the
# body by Content-Length, the chunked coding (checked byte for byte: hex
# size CRLF, data, CRLF, and a last 0 CRLF CRLF with nothing after it) or
# EOF.  The decoded body is split into SSE blocks ("...\n\n"); each block is
# an event { data, lines, raw, t } where data is the payload of a lone
# "data: " line (undef otherwise).

use strict;
use warnings;

use Errno qw(EAGAIN EINTR EWOULDBLOCK);
use IO::Socket::INET;
use Socket qw(SOL_SOCKET SO_RCVBUF inet_aton pack_sockaddr_in);
use Time::HiRes qw(time);


sub new {
    my ($class, $port, $method, $path, %o) = @_;
    my $self = bless {
        port => $port, events => [], comments => [], errors => [],
        inbuf => '', body => '', ssebuf => '', head => undef,
        headers => {}, status => undef, chunked => 0, state => 'head',
        closed => 0, done => 0, t0 => time(), after_end => '',
        raw_chunks => [],
    }, $class;

    # rcvbuf => N: a receive buffer that small, set before connecting so
    # that the window offered is small too (a client slow to read)
    my $sock = $o{rcvbuf}
        ? IO::Socket::INET->new(Proto => 'tcp')
        : IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                Proto => 'tcp', Timeout => 5);
    die "socket: $!\n" unless $sock;
    if ($o{rcvbuf}) {
        setsockopt($sock, SOL_SOCKET, SO_RCVBUF, $o{rcvbuf})
            or die "SO_RCVBUF: $!\n";
        $sock->connect(pack_sockaddr_in($port, inet_aton('127.0.0.1')))
            or die "connect 127.0.0.1:$port: $!\n";
    }
    $self->{sock} = $sock;

    my $body = $o{body} // '';
    my %h = ('Host' => "127.0.0.1:$port", 'Connection' => 'close',
             %{ $o{headers} // {} });
    $h{'Content-Length'} = length $body
        if length $body || $method eq 'POST' || $method eq 'PUT';
    delete $h{'Content-Length'} if $o{no_content_length};

    my $req = "$method $path HTTP/1.1\r\n"
              . join('', map { "$_: $h{$_}\r\n" } sort keys %h) . "\r\n";
    $sock->blocking(1);

    # hold => N: the request's last N bytes kept back until release(), so
    # that requests on several connections can be completed in an order
    if ($o{hold}) {
        my $all = $req . $body;
        $self->{held} = substr($all, -$o{hold});
        $self->_send_all(substr($all, 0, length($all) - $o{hold}));
        $sock->blocking(0);
        return $self;
    }

    $self->_send_all($req);
    $self->_send_body($body) if length $body;
    $sock->blocking(0);

    return $self;
}


# Sends what hold => N kept back.
sub release {
    my ($self) = @_;
    $self->{sock}->blocking(1);
    $self->_send_all(delete $self->{held});
    $self->{sock}->blocking(0);
    $self->{t_sent} = time();
}


# Sends a large body while watching for an early response (nginx answers
# 413 before it has read the body, then closes).
sub _send_body {
    my ($self, $body) = @_;
    my $sock = $self->{sock};
    my $off = 0;

    $sock->blocking(0);
    while ($off < length $body) {
        my $n = syswrite($sock, $body, 65536, $off);
        if (defined $n) {
            $off += $n;
            next;
        }
        last unless $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
        my ($r, $w) = ('', '');
        vec($r, fileno($sock), 1) = 1;
        vec($w, fileno($sock), 1) = 1;
        select($r, $w, undef, 5) or last;
        if (vec($r, fileno($sock), 1)) {
            $self->{body_sent} = $off;
            $self->{body_cut} = 1;
            return;
        }
    }
    $self->{body_sent} = $off;
}


sub _send_all {
    my ($self, $d) = @_;
    my $off = 0;
    while ($off < length $d) {
        my $n = syswrite($self->{sock}, $d, length($d) - $off, $off);
        die "write: $!\n" unless defined $n;
        $off += $n;
    }
}


sub error {
    my ($self, $msg) = @_;
    push @{ $self->{errors} }, $msg;
}


# Reads what is available (non-blocking) and parses it; returns 0 at EOF.
sub pump {
    my ($self) = @_;
    return 0 if $self->{closed};

    while (1) {
        my $n = sysread($self->{sock}, my $buf, 65536);
        if (!defined $n) {
            return 1 if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
            $self->error("read: $!") unless $self->{done};
            $self->_eof;
            return 0;
        }
        if ($n == 0) {
            $self->_eof;
            return 0;
        }
        $self->{inbuf} .= $buf;
        $self->_parse;
    }
}


sub _eof {
    my ($self) = @_;
    $self->{closed} = 1;
    $self->{t_eof} = time();
    close $self->{sock};

    if ($self->{state} eq 'head') {
        $self->error('connection closed before the response header');
    } elsif ($self->{state} eq 'body' && $self->{chunked}) {
        $self->error('connection closed inside the chunked body '
                     . '(no terminal 0 chunk)');
    } elsif ($self->{state} eq 'body' && defined $self->{left}) {
        $self->error("connection closed $self->{left} bytes short "
                     . 'of Content-Length');
    } elsif ($self->{state} eq 'body') {
        $self->{done} = 1;
        $self->_sse_end;
    }
}


sub abort {
    my ($self) = @_;
    return if $self->{closed};
    $self->{closed} = 1;
    $self->{aborted} = 1;
    close $self->{sock};
}


sub _parse {
    my ($self) = @_;

    if ($self->{state} eq 'head') {
        my $i = index($self->{inbuf}, "\r\n\r\n");
        return if $i < 0;
        my $head = substr($self->{inbuf}, 0, $i);
        substr($self->{inbuf}, 0, $i + 4, '');
        $self->{head} = $head;
        my ($sl, @hl) = split /\r\n/, $head;
        unless ($sl =~ m{^HTTP/1\.[01] (\d{3})(?: (.*))?$}) {
            $self->error("bad status line: $sl");
            $self->{state} = 'junk';
            return;
        }
        $self->{status} = $1;
        $self->{t_head} = time();
        for (@hl) {
            unless (/^([!#\$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*$/) {
                $self->error("bad header line: $_");
                next;
            }
            my $k = lc $1;
            $self->{headers}{$k} = exists $self->{headers}{$k}
                                   ? "$self->{headers}{$k}, $2" : $2;
        }
        my $te = $self->{headers}{'transfer-encoding'} // '';
        if ($te ne '') {
            if (lc $te ne 'chunked') {
                $self->error("unexpected Transfer-Encoding: $te");
            }
            $self->{chunked} = 1;
            $self->{cstate} = 'size';
        } elsif (defined $self->{headers}{'content-length'}) {
            $self->{left} = $self->{headers}{'content-length'};
        }
        $self->{state} = 'body';
    }

    if ($self->{state} eq 'end') {
        if (length $self->{inbuf}) {
            $self->{after_end} .= $self->{inbuf};
            $self->error('bytes after the end of the response: '
                         . _show(substr($self->{inbuf}, 0, 40)));
            $self->{inbuf} = '';
        }
        return;
    }
    return unless $self->{state} eq 'body';

    if (!$self->{chunked}) {
        my $d = $self->{inbuf};
        $self->{inbuf} = '';
        if (defined $self->{left}) {
            if (length $d > $self->{left}) {
                $self->error('more bytes than Content-Length');
                $d = substr($d, 0, $self->{left});
            }
            $self->{left} -= length $d;
        }
        $self->_body($d);
        if (defined $self->{left} && $self->{left} == 0) {
            $self->{state} = 'end';
            $self->{done} = 1;
            $self->_sse_end;
        }
        return;
    }

    while (1) {
        if ($self->{cstate} eq 'size') {
            my $i = index($self->{inbuf}, "\r\n");
            if ($i < 0) {
                if (length $self->{inbuf} > 32) {
                    $self->error('chunk size line too long: '
                                 . _show(substr($self->{inbuf}, 0, 32)));
                    $self->{state} = 'junk';
                }
                return;
            }
            my $line = substr($self->{inbuf}, 0, $i);
            substr($self->{inbuf}, 0, $i + 2, '');
            unless ($line =~ /^[0-9a-fA-F]{1,8}$/) {
                $self->error('bad chunk size line: ' . _show($line));
                $self->{state} = 'junk';
                return;
            }
            $self->{csize} = hex $line;
            $self->{cstate} = $self->{csize} ? 'data' : 'last';
        }
        if ($self->{cstate} eq 'data') {
            return if length $self->{inbuf} < $self->{csize} + 2;
            my $d = substr($self->{inbuf}, 0, $self->{csize});
            my $crlf = substr($self->{inbuf}, $self->{csize}, 2);
            substr($self->{inbuf}, 0, $self->{csize} + 2, '');
            if ($crlf ne "\r\n") {
                $self->error('chunk data not followed by CRLF: '
                             . _show($crlf));
                $self->{state} = 'junk';
                return;
            }
            push @{ $self->{raw_chunks} }, $d;
            $self->_body($d);
            $self->{cstate} = 'size';
            next;
        }
        if ($self->{cstate} eq 'last') {
            return if length $self->{inbuf} < 2;
            my $crlf = substr($self->{inbuf}, 0, 2);
            substr($self->{inbuf}, 0, 2, '');
            if ($crlf ne "\r\n") {
                $self->error('terminal chunk not followed by CRLF '
                             . '(trailers?): ' . _show($crlf));
            }
            $self->{state} = 'end';
            $self->{done} = 1;
            $self->{t_done} = time();
            $self->_sse_end;
            $self->_parse if length $self->{inbuf};
            return;
        }
    }
}


sub _show {
    my ($s) = @_;
    $s =~ s/([^\x20-\x7e])/sprintf('\\x%02x', ord $1)/ge;
    return "\"$s\"";
}


sub _body {
    my ($self, $d) = @_;
    $self->{body} .= $d;

    my $ct = $self->{headers}{'content-type'} // '';
    return unless $ct =~ m{^text/event-stream}i;

    $self->{ssebuf} .= $d;
    while ((my $i = index($self->{ssebuf}, "\n\n")) >= 0) {
        my $block = substr($self->{ssebuf}, 0, $i);
        substr($self->{ssebuf}, 0, $i + 2, '');
        my $ev = { raw => $block, t => time(),
                   lines => [split /\n/, $block, -1] };
        if ($block =~ /^:/ && $block !~ /\n/) {
            push @{ $self->{comments} }, $ev;
            next;
        }
        # one data line, after the event's name where it has one (the
        # Responses API's events)
        if ($block =~ /\A (?:event:\ ([^\n\r]*)\n)? data:\ ([^\n\r]*) \z/x) {
            $ev->{event} = $1;
            $ev->{data} = $2;
            $ev->{json} = SloraTest::json_decode_safe($2)
                unless $2 eq '[DONE]';
        }
        push @{ $self->{events} }, $ev;
    }
}


sub _sse_end {
    my ($self) = @_;
    if (length $self->{ssebuf}) {
        $self->error('SSE stream ends inside an event: '
                     . _show(substr($self->{ssebuf}, 0, 60)));
    }
}


# Blocks until the response has ended (or the timeout); returns done.
sub wait_done {
    my ($self, $timeout) = @_;
    SloraTest::run_streams([$self], $timeout);
    return $self->{done};
}


# Blocks until at least n events arrived, the stream ended or the timeout.
sub wait_events {
    my ($self, $n, $timeout) = @_;
    my $end = time() + $timeout;
    while (!$self->{closed} && @{ $self->{events} } < $n && time() < $end) {
        my ($r) = ('');
        vec($r, fileno($self->{sock}), 1) = 1;
        select($r, undef, undef, 0.1);
        $self->pump;
    }
    return scalar @{ $self->{events} };
}


sub result {
    my ($self) = @_;
    return {
        status => $self->{status} // 0,
        headers => $self->{headers},
        body => $self->{body},
        chunked => $self->{chunked},
        done => $self->{done},
        framing => $self->{errors}[0],
        errors => $self->{errors},
        json => SloraTest::json_decode_safe($self->{body}),
        events => $self->{events},
    };
}


# sse_check(mode): checks the event sequence of an OpenAI stream; returns
# (list of problems, summary hash { text, finish, usage, id, roles,
# content_events, error, reasoning (a chat's delta.reasoning, all before
# its content) }).  mode 'chat' or 'text'.
sub sse_check {
    my ($self, $mode, %o) = @_;
    my (@bad, %sum);
    my $evs = $self->{events};
    my $object = $mode eq 'chat' ? 'chat.completion.chunk'
                                 : 'text_completion';

    push @bad, @{ $self->{errors} };
    push @bad, "status $self->{status}, not 200"
        unless ($self->{status} // 0) == 200;
    push @bad, 'Content-Type is not text/event-stream'
        unless ($self->{headers}{'content-type'} // '')
               =~ m{^text/event-stream};
    push @bad, 'not chunked' unless $self->{chunked};
    push @bad, 'no events' unless @$evs;

    $sum{text} = '';
    $sum{finish} = [];
    my $done_at;
    for my $i (0 .. $#$evs) {
        my $ev = $evs->[$i];
        if (!defined $ev->{data}) {
            push @bad, "event $i is not one \"data: \" line: "
                       . _show($ev->{raw});
            next;
        }
        if ($ev->{data} eq '[DONE]') {
            $done_at //= $i;
            next;
        }
        push @bad, "event $i after [DONE]" if defined $done_at;
        my $j = $ev->{json};
        if (ref $j ne 'HASH') {
            push @bad, "event $i is not a JSON object: "
                       . _show(substr($ev->{data}, 0, 80));
            next;
        }
        if ($j->{error}) {
            $sum{error} = $j->{error};
            push @bad, "event $i is an error: "
                       . SloraTest::json_encode($j);
            next;
        }
        push @bad, "event $i object is " . ($j->{object} // 'undef')
            unless ($j->{object} // '') eq $object;
        $sum{id} //= $j->{id};
        push @bad, "event $i id " . ($j->{id} // 'undef')
                   . " differs from $sum{id}"
            unless defined $j->{id} && defined $sum{id}
                   && $j->{id} eq $sum{id};
        $sum{created} //= $j->{created};
        push @bad, "event $i created differs"
            unless defined $j->{created} && $j->{created} eq $sum{created};
        push @bad, "event $i model is " . ($j->{model} // 'undef')
            if defined $o{model} && ($j->{model} // '') ne $o{model};

        if (defined $j->{usage} && ref $j->{usage} eq 'HASH') {
            push @bad, "event $i: a second usage" if $sum{usage};
            $sum{usage} = $j->{usage};
        }
        if (ref $j->{choices} ne 'ARRAY') {
            push @bad, "event $i has no choices array";
            next;
        }
        if (@{ $j->{choices} } == 0) {
            push @bad, "event $i: empty choices without usage"
                unless $j->{usage};
            next;
        }
        push @bad, "event $i has " . scalar(@{ $j->{choices} })
                   . ' choices' if @{ $j->{choices} } != 1;
        my $c = $j->{choices}[0];
        push @bad, "event $i choice index is not 0"
            unless defined $c->{index} && $c->{index} == 0;
        my $piece;
        if ($mode eq 'chat') {
            if (ref $c->{delta} ne 'HASH') {
                push @bad, "event $i has no delta";
                next;
            }
            if (defined $c->{delta}{role}) {
                push @{ $sum{roles} }, [$i, $c->{delta}{role}];
            }
            $piece = $c->{delta}{content};
            my $think = $c->{delta}{reasoning};
            if (defined $think && length $think) {
                $sum{reasoning} .= $think;
                push @bad, "event $i: reasoning after content or "
                           . 'finish_reason'
                    if $sum{content_events} || @{ $sum{finish} };
            }
        } else {
            $piece = $c->{text};
        }
        if (defined $piece && length $piece) {
            $sum{text} .= $piece;
            $sum{content_events}++;
            push @bad, "event $i: content after finish_reason"
                if @{ $sum{finish} };
        }
        if (defined $c->{finish_reason}) {
            push @{ $sum{finish} }, $c->{finish_reason};
        }
    }

    if ($mode eq 'chat') {
        my $r = $sum{roles} // [];
        push @bad, 'first delta does not carry role "assistant"'
            unless @$r && $r->[0][1] eq 'assistant'
                   && $r->[0][0] == _first_data($evs);
        push @bad, 'role sent ' . scalar(@$r) . ' times' if @$r > 1;
    }
    push @bad, 'finish_reason sent ' . scalar(@{ $sum{finish} })
               . ' times, not once' if @{ $sum{finish} } != 1;
    push @bad, 'no data: [DONE]' unless defined $done_at;
    push @bad, 'data: [DONE] is not the last event'
        if defined $done_at && $done_at != $#$evs;
    push @bad, 'stream did not end' unless $self->{done};

    return (\@bad, \%sum);
}


sub _first_data {
    my ($evs) = @_;
    for my $i (0 .. $#$evs) {
        return $i if defined $evs->[$i]{json};
    }
    return -1;
}


# ---------------------------------------------------------------------------

package SloraTest::Server;

use strict;
use warnings;

use Fcntl ();
use File::Path qw(make_path remove_tree);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

my @LIVE;
my @ALL;
my $OWNER = $$;


# new(name => 'stream', port => 18101, http => TEXT, main => TEXT,
# workers => 2, status => '/status', daemon => 0, master => 1,
# module => PATH): makes the fresh prefix t/servroot-<name>/ (removed
# first) with conf/ logs/ tmp/ html/.  In the http text %%PREFIX%%
# %%PORT%% %%ROOT%% are replaced.  module '' writes no load_module line
# (main's text loads it); master 0 is master_process off.
sub new {
    my ($class, %o) = @_;
    my $prefix = SloraTest::repo_root() . "/t/servroot-$o{name}";
    _workers_can_read();
    my $lock = _lock($o{name});

    _port_free($o{port})
        or die "port 127.0.0.1:$o{port} is taken by a process this test "
               . "did not start\n";
    remove_tree($prefix) if -d $prefix;
    make_path(map { "$prefix/$_" } qw(conf logs tmp html));

    my $self = bless {
        workers => 2, status => '/status', ready_timeout => 60,
        %o, prefix => $prefix, lock => $lock,
    }, $class;

    return $self;
}


# Run as root, nginx runs its workers and the engine as nobody (no `user`
# in the tests' configurations, as in Debian's), who must read the tree:
# a tree under /root or a 0700 home folder would fail every test with the
# engine's "Permission denied", so the harness says why at once instead.
my $READABLE;
sub _workers_can_read {
    return if $> != 0 || $READABLE;
    my ($uid, $gid) = (getpwnam('nobody'))[2, 3];
    my $root = SloraTest::repo_root();
    my ($rc) = SloraTest::run_cmd('setpriv', "--reuid=$uid", "--regid=$gid",
                                  '--clear-groups', 'test', '-r',
                                  "$root/t/lib/SloraTest.pm");
    $rc == 0
        or die "the tests run as root, so nginx's workers and engine run "
               . "as nobody, who cannot read $root: put the tree where "
               . "others may read it (not under /root or a 0700 home "
               . "folder)\n";
    $READABLE = 1;
}


# Two runs of one test in one tree would share its prefix and port (and
# with reuseport both nginx would listen): a run waits for the other's
# lock, held until this process exits.
sub _lock {
    my ($name) = @_;
    my $dir = SloraTest::repo_root() . '/t/data/gen';
    make_path($dir);
    open(my $fh, '>>', "$dir/servroot-$name.lock") or die "lock: $!";

    my $said = 0;
    my $end = time() + 600;
    until (flock($fh, Fcntl::LOCK_EX() | Fcntl::LOCK_NB())) {
        die "another run of the $name test held its lock for 600 s\n"
            if time() > $end;
        print STDERR "# waiting for another run of the $name test\n"
            unless $said++;
        sleep(0.5);
    }

    return $fh;
}


sub _port_free {
    my ($port) = @_;
    my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $port, Proto => 'tcp');
    return 1 unless $c;
    close $c;
    return 0;
}


sub prefix { $_[0]{prefix} }
sub port   { $_[0]{port} }
sub pid    { $_[0]{pid} }


sub conf_path { "$_[0]{prefix}/conf/nginx.conf" }


# The whole nginx.conf; line numbers of the user's http text are
# conf_line_of() away.
sub config_text {
    my ($self) = @_;
    my $p = $self->{prefix};
    my $m = $self->{module} // SloraTest::module_path();
    my $load = $m eq '' ? '' : "load_module $m;\n";

    # sanitized, a binary upgrade's new nginx (an exec, with only the env
    # directive's variables) needs the runtime preloaded too
    $load .= "env LD_PRELOAD;\nenv ASAN_OPTIONS;\nenv UBSAN_OPTIONS;\n"
        if $ENV{SLORA_NGINX_PRELOAD};
    my $http = $self->{http} // '';
    my $root = SloraTest::repo_root();

    for ($http) {
        s/%%PREFIX%%/$p/g;
        s/%%PORT%%/$self->{port}/g;
        s/%%ROOT%%/$root/g;
    }

    my $daemon = $self->{daemon} ? ''
               : "daemon off;\nmaster_process "
                 . (($self->{master} // 1) ? 'on' : 'off') . ";\n";

    return <<"EOF";
${load}${daemon}worker_processes $self->{workers};
pid $p/logs/nginx.pid;
lock_file $p/logs/nginx.lock;
error_log $p/logs/error.log info;
@{[ $self->{main} // '' ]}
events {
    worker_connections 1024;
}

http {
    access_log $p/logs/access.log;
    client_body_temp_path $p/tmp/body;
    proxy_temp_path $p/tmp/proxy;
    fastcgi_temp_path $p/tmp/fastcgi;
    uwsgi_temp_path $p/tmp/uwsgi;
    scgi_temp_path $p/tmp/scgi;

$http
}
EOF
}


sub write_config {
    my ($self) = @_;
    SloraTest::_spew($self->conf_path, $self->config_text);
}


sub nginx_args {
    my ($self, @extra) = @_;
    my @daemon = $self->{daemon} ? ('-g', 'daemon on; master_process on;')
                                 : ();

    return ($self->sanitizer_env, SloraTest::nginx_bin(), @daemon, @extra,
            '-p', "$self->{prefix}/", '-c', $self->conf_path,
            '-e', "$self->{prefix}/logs/error.log");
}


# With SLORA_NGINX_PRELOAD (make asan: the ASan runtime, for a module
# built with sanitizers into an nginx that was not): env(1) and what it
# sets for nginx alone, not for the test's other programs. Reports go to
# logs/san/asan.<pid> and ubsan.<pid> of the prefix (a folder anyone may
# write: the workers run as nobody), which sanitizer_reports reads; leaks
# are not looked for (nginx leaves its pools to the exit).
sub sanitizer_env {
    my ($self) = @_;
    my $pre = $ENV{SLORA_NGINX_PRELOAD} or return ();
    my $l = "$self->{prefix}/logs/san";

    make_path($l);
    chmod(01777, $l);

    return ('/usr/bin/env', "LD_PRELOAD=$pre",
            "ASAN_OPTIONS=log_path=$l/asan:detect_leaks=0:abort_on_error=1",
            "UBSAN_OPTIONS=log_path=$l/ubsan:print_stacktrace=1"
            . ":halt_on_error=1");
}


# The sanitizer reports this server's processes wrote, as one text ('' for
# none), each returned once: the report files, and the lines of one that
# reached the error log (a process's stderr) instead.
sub sanitizer_reports {
    my ($self) = @_;
    my $l = "$self->{prefix}/logs";
    my $text = '';

    for my $f (sort glob("$l/san/asan.* $l/san/ubsan.*")) {
        next if $self->{reported}{$f}++;
        $text .= "== $f\n" . (SloraTest::_slurp($f) // '');
    }

    for my $f ("$l/error.log", "$l/stderr.log") {
        my @lines = grep { /runtime error: |Sanitizer|ERROR: Can't open/ }
                    split /\n/, SloraTest::_slurp($f) // '';
        my $seen = $self->{reported}{$f} // 0;
        next if @lines <= $seen;
        $self->{reported}{$f} = @lines;
        $text .= "== $f\n" . join("\n", @lines[$seen .. $#lines]) . "\n";
    }

    return $text;
}


# nginx -t on the current config: (exit status, stdout+stderr).
sub test_config {
    my ($self) = @_;
    $self->write_config;
    my ($rc, $out, $err) = SloraTest::run_cmd($self->nginx_args('-t'));
    return ($rc, $out . $err);
}


# Starts nginx and waits for the engine; dies with the error log's tail
# when it does not come up. Daemonized, the command's own process is
# waited for (its pid and wait status in launcher and launcher_status)
# and pid is the master's, from the pid file. no_engine => 1: a
# configuration without the module; waits for the port alone.
sub start {
    my ($self, %o) = @_;
    $self->write_config;

    my @cmd = $self->nginx_args;
    my $pid = fork() // die "fork: $!";
    if ($pid == 0) {
        open(STDIN, '<', '/dev/null');
        open(STDOUT, '>>', "$self->{prefix}/logs/stderr.log");
        open(STDERR, '>&', \*STDOUT);
        # nginx as a shell or systemd starts it, SIGPIPE not ignored
        # (this file ignores it for the tests' own sockets)
        $SIG{PIPE} = 'DEFAULT';
        { no warnings q(exec); exec { $cmd[0] } @cmd; }
        POSIX::_exit(127);
    }
    $self->{pid} = $pid;
    $self->{stopped} = 0;
    push @LIVE, $self;
    push @ALL, $self;

    if ($self->{daemon}) {
        $self->{launcher} = $pid;
        SloraTest::wait_for($self->{ready_timeout},
                            sub { waitpid($pid, WNOHANG) == $pid })
            or die "nginx -g 'daemon on' (pid $pid) did not return in "
                   . "$self->{ready_timeout} s\n" . $self->log_tail;
        $self->{launcher_status} = $?;
        my $master = SloraTest::wait_for(10, sub {
            my $p = SloraTest::_slurp("$self->{prefix}/logs/nginx.pid");
            return $p && $p =~ /^(\d+)$/m ? $1 : 0;
        }) or die "no pid file after nginx daemonized (launcher status "
                  . "$self->{launcher_status})\n" . $self->log_tail;
        $self->{pid} = $master;
    }

    if ($o{no_engine}) {
        SloraTest::wait_for($self->{ready_timeout}, sub {
            IO::Socket::INET->new(PeerAddr => "127.0.0.1:$self->{port}",
                                  Timeout => 1)
        }) or die "nginx (pid $self->{pid}) did not listen in "
                  . "$self->{ready_timeout} s\n" . $self->log_tail;
        return $self;
    }

    $self->wait_ready($self->{ready_timeout})
        or die "nginx (pid $self->{pid}) did not become ready in "
               . "$self->{ready_timeout} s; last status: "
               . ($self->{last_status_error} // 'none') . "\n"
               . $self->log_tail;

    return $self;
}


sub log_tail {
    my ($self) = @_;
    my $log = $self->error_log;
    my @l = split /\n/, $log;
    @l = @l[-30 .. -1] if @l > 30;
    my $se = SloraTest::_slurp("$self->{prefix}/logs/stderr.log") // '';
    return "---- error.log (tail) ----\n" . join("\n", @l)
           . "\n---- stderr ----\n$se";
}


# status(): the decoded status JSON, or undef (reason in last_status_error).
sub status {
    my ($self) = @_;
    my $r = eval {
        SloraTest::http_req($self->{port}, 'GET', $self->{status},
                            timeout => 5);
    };
    if (!$r) {
        $self->{last_status_error} = $@ || 'no response';
        return undef;
    }
    if ($r->{status} != 200 || ref $r->{json} ne 'HASH') {
        $self->{last_status_error} = "HTTP $r->{status}: "
                                     . substr($r->{body}, 0, 200);
        return undef;
    }
    $self->{last_engine_pid} = $r->{json}{engine}{pid}
        if ref $r->{json}{engine} eq 'HASH' && $r->{json}{engine}{pid};

    return $r->{json};
}


sub wait_ready {
    my ($self, $timeout) = @_;
    return SloraTest::wait_for($timeout, sub {
        if (!SloraTest::proc_alive($self->{pid})) {
            $self->{last_status_error} = 'nginx exited';
            return 1;
        }
        my $s = $self->status or return 0;
        return $s->{engine} && $s->{engine}{ready}
               && $s->{engine}{pid} ? $s : 0;
    }) && SloraTest::proc_alive($self->{pid}) && $self->status;
}


sub engine_pid {
    my ($self) = @_;
    my $s = $self->status or return undef;
    return $s->{engine}{pid};
}


sub signal {
    my ($self, $sig) = @_;
    kill($sig, $self->{pid});
}


# Waits for the master to exit; returns its wait status or undef (a
# daemonized master, not this process's child, exits with 0 here).
sub wait_exit {
    my ($self, $timeout) = @_;
    my $end = time() + $timeout;
    if ($self->{daemon}) {
        SloraTest::wait_for($timeout,
                            sub { !SloraTest::proc_alive($self->{pid}) })
            or return undef;
        $self->{stopped} = 1;
        return $self->{exit_status} = 0;
    }
    while (time() < $end) {
        my $r = waitpid($self->{pid}, WNOHANG);
        if ($r == $self->{pid}) {
            $self->{stopped} = 1;
            $self->{exit_status} = $?;
            return $?;
        }
        if ($r < 0) {
            $self->{stopped} = 1;
            return $self->{exit_status} // 0;
        }
        sleep(0.05);
    }
    return undef;
}


# stop(): QUIT, then TERM, then KILL; returns a hash: graceful (exited on
# QUIT), status (wait status), engine_gone (the engine pid seen last is
# not running any more; 0 when no engine pid was ever seen).
sub stop {
    my ($self) = @_;
    my $engine;

    if ($self->{stopped}) {
        $engine = $self->{last_engine_pid};
        return { graceful => 1, status => $self->{exit_status} // 0,
                 engine_gone => $engine && SloraTest::wait_for(5,
                     sub { !SloraTest::proc_alive($engine) }) ? 1 : 0 };
    }

    $engine = eval { $self->engine_pid } // $self->{last_engine_pid};
    my %r = (graceful => 0);

    kill('QUIT', $self->{pid});
    my $st = $self->wait_exit(20);
    if (defined $st) {
        $r{graceful} = 1;
    } else {
        kill('TERM', $self->{pid});
        $st = $self->wait_exit(5);
        if (!defined $st) {
            kill('KILL', $self->{pid});
            $st = $self->wait_exit(5);
        }
    }
    $r{status} = $st;
    $r{engine_gone} = $engine
        && SloraTest::wait_for(5, sub { !SloraTest::proc_alive($engine) })
        ? 1 : 0;
    kill('KILL', $engine) if $engine && SloraTest::proc_alive($engine);

    if ($ENV{SLORA_NGINX_PRELOAD}) {
        my $rep = $self->sanitizer_reports;
        Test::More::ok($rep eq '', "$self->{name}: no sanitizer report")
            or Test::More::diag($rep);
    }

    return \%r;
}


sub error_log {
    my ($self) = @_;
    return SloraTest::_slurp("$self->{prefix}/logs/error.log") // '';
}


# The error log's lines at [alert], [crit] or [emerg] (and [error] too
# with errors => 1), minus those matching one of the allow regexes. A log
# that is not this nginx's (no worker start in it: empty, missing, or
# another file) is one bad line itself, so "no bad lines" cannot pass on
# a log nobody wrote.
sub bad_log_lines {
    my ($self, %o) = @_;
    my $log = $self->error_log;
    return ("$self->{prefix}/logs/error.log: no 'start worker process' "
            . 'line: not this server\'s log')
        unless $log =~ /start worker process \d+/;
    my $lv = $o{errors} ? qr/\[(?:alert|crit|emerg|error)\]/
                        : qr/\[(?:alert|crit|emerg)\]/;
    my @allow = @{ $o{allow} // [] };
    my @l = grep { /$lv/ } split /\n/, $log;
    for my $a (@allow) {
        @l = grep { !/$a/ } @l;
    }
    return @l;
}


sub access_log_lines {
    my ($self) = @_;
    my $d = SloraTest::_slurp("$self->{prefix}/logs/access.log") // '';
    return split /\n/, $d;
}


# Runs after the END below (the later one runs first): reports that no
# stop() saw, from servers stopped there or never stopped, fail the test
# file through its exit status.
END {
    if ($$ == $OWNER && $ENV{SLORA_NGINX_PRELOAD}) {
        my $rep = join '', map { $_->sanitizer_reports } @ALL;
        if ($rep ne '') {
            print STDERR "# sanitizer reports:\n$rep";
            $? ||= 1;
        }
    }
}


END {
    local $?;

    if ($$ == $OWNER) {
        for my $s (grep { !$_->{stopped} } @LIVE) {
            kill('TERM', $s->{pid});
            if (!defined $s->wait_exit(5)) {
                kill('KILL', $s->{pid});
                $s->wait_exit(3);
            }
            my $e = $s->{last_engine_pid};
            kill('KILL', $e) if $e && SloraTest::proc_alive($e);
        }
    }
}


1;
