# browser.t: the demo page (conf/html/index.html), served by nginx next to
# the API, streams an answer into the DOM in a real headless Chromium.
#
# nginx runs SmolLM2-135M-Instruct.  The same chat request is first made
# non-streamed and greedy; that text is what both of the page's transports
# must show: the EventSource on the GET stream endpoint and fetch() POST
# with a ReadableStream.  The page is opened with auto=1 and
# transport=both; Chromium's --dump-dom prints the DOM once the virtual
# time budget has run out, which does not happen while a request is
# pending. The page runs twice: over HTTP/1.1, and over TLS where the
# browser and nginx agree on HTTP/2 by ALPN (a certificate made for the
# run, which Chromium is told to accept); both must show the same text,
# and the access log the protocol each request came in.
#
# Then from another origin (a server of its own on another port) calling
# the API across origins: through a location with the module README's
# CORS configuration (add_header with a map of allowed origins; the
# module answers the fetch's preflight OPTIONS with 204) both transports
# show the same text; through the plain /v1/, which adds no such
# headers, the browser refuses both. Asked directly, the preflight
# answers an origin the map does not allow without the headers.

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;
use File::Path qw(make_path);

my $PORT = 18103;
my $TLS_PORT = 18113;
my $PAGE_PORT = 18124;      # the other origin's page
my $PROMPT = 'Say hello & tell me <one> fact about "cats".';
my $MAX_TOKENS = 24;

my ($chromium) = grep { -x $_ } qw(/usr/bin/chromium /usr/bin/chromium-browser
                                   /usr/bin/google-chrome);
ok($chromium, 'chromium installed (apt-get install -y chromium)')
    or BAIL_OUT('no chromium');

my $model = real_model();
my $s = SloraTest::Server->new(name => 'browser', port => $PORT,
                               ready_timeout => 120);
mkdir $s->prefix . '/adapters';
my $root = repo_root();
my $pfx = $s->prefix;
my ($rc_tls, undef, $err_tls) = SloraTest::run_cmd(
    'openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    '-keyout', "$pfx/tls.key", '-out', "$pfx/tls.crt");
is($rc_tls, 0, 'a TLS certificate for the run (openssl)')
    or BAIL_OUT("openssl: $err_tls");
my $page_origin = "http://127.0.0.1:$PAGE_PORT";
$s->{http} = slora_http(
    model => $model, adapters => $s->prefix . '/adapters',
    engine => 'threads=2 slots=8 max_ctx=1024 max_tokens=256',
    http_extra => <<"EOF",
    map \$http_origin \$cors_origin {
        default            "";
        "$page_origin"     \$http_origin;
    }

    server {
        listen 127.0.0.1:$PAGE_PORT;
        location / {
            root $root/conf/html;
        }
    }
EOF
    server_extra => "        listen 127.0.0.1:$TLS_PORT ssl http2;\n"
                    . "        ssl_certificate $pfx/tls.crt;\n"
                    . "        ssl_certificate_key $pfx/tls.key;\n"
                    . "        location / {\n"
                    . "            root $root/conf/html;\n"
                    . "        }\n"
                    . <<'EOF');
        location /cors/v1/ {
            slora_api openai;
            add_header Access-Control-Allow-Origin  $cors_origin always;
            add_header Access-Control-Allow-Methods "GET, POST, DELETE, OPTIONS" always;
            add_header Access-Control-Allow-Headers $http_access_control_request_headers always;
            add_header Access-Control-Max-Age       600 always;
            add_header Vary                         Origin always;
        }
EOF
$s->start;
pass('nginx started on SmolLM2, engine ready');

my $page = http_req($PORT, 'GET', '/');
is($page->{status}, 200, 'the demo page is served at /');
like($page->{body}, qr/EventSource/, '... and it is the demo page');
unlike($page->{body}, qr{\b(?:src|href)=["']?(?:https?:)?//}i,
       '... loading nothing from outside');

my $ref = json_req($PORT, '/v1/chat/completions', chat_body(
    'base', $PROMPT, max_tokens => $MAX_TOKENS, temperature => 0));
is($ref->{status}, 200, 'reference chat completion') or diag($ref->{body});
my $c = $ref->{json} ? $ref->{json}{choices}[0] : {};
my $want = $c->{message}{content} // '';
my $finish = $c->{finish_reason} // '';
ok(length $want, 'reference text non-empty');

my %q = (auto => 1, transport => 'both', model => 'base',
         max_tokens => $MAX_TOKENS, temperature => 0, prompt => $PROMPT);
my $query = join('&', map { "$_=" . uri_escape($q{$_}) } sort keys %q);
page("http://127.0.0.1:$PORT", '1.1');
page("https://127.0.0.1:$TLS_PORT", '2.0');

# Across origins: the preflight asked directly, then the page.
my $pre = http_req($PORT, 'OPTIONS', '/cors/v1/chat/completions',
                   headers => { Origin => $page_origin,
                                'Access-Control-Request-Method' => 'POST',
                                'Access-Control-Request-Headers'
                                    => 'content-type' });
is($pre->{status}, 204, 'a preflight OPTIONS: 204');
is($pre->{headers}{allow}, 'POST, OPTIONS', '... Allow: POST, OPTIONS');
is($pre->{headers}{'access-control-allow-origin'}, $page_origin,
   '... allowing the page\'s origin');
is($pre->{headers}{'access-control-allow-headers'}, 'content-type',
   '... and the header it asked for');
my $evil = http_req($PORT, 'OPTIONS', '/cors/v1/chat/completions',
                    headers => { Origin => 'http://evil.example' });
ok($evil->{status} == 204
   && !exists $evil->{headers}{'access-control-allow-origin'},
   'an origin the map does not allow gets no Access-Control-Allow-Origin');
my $err = http_req($PORT, 'POST', '/cors/v1/chat/completions',
                   body => '{', headers => { Origin => $page_origin });
ok($err->{status} == 400
   && ($err->{headers}{'access-control-allow-origin'} // '') eq $page_origin,
   'an error carries it too (always), so the page can read it');

cross_origin("http://127.0.0.1:$PORT/cors/v1/", 1);
cross_origin("http://127.0.0.1:$PORT/v1/", 0);

my $stop = $s->stop;
ok($stop->{graceful}, 'nginx exits on QUIT');
my @bad = $s->bad_log_lines(errors => 1);
ok(!@bad, 'no [error], [alert], [crit] or [emerg] in the error log')
    or diag(join("\n", @bad));

done_testing();


# page(origin, protocol): the demo page opened from origin in Chromium,
# both transports' answers in its DOM checked against the reference, and
# the access log's lines of its requests in that HTTP version.
sub page {
    my ($origin, $proto) = @_;
    my ($label) = $origin =~ m{^(\w+)};
    my $dom = chromium_dom($label, "$origin/index.html?$query",
                           '--ignore-certificate-errors');

    for my $id (qw(answer-es answer-fetch)) {
        my $a = answer($dom, $id);
        ok($a, "$label: $id is in the DOM") or next;
        is($a->{state}, 'done', "$label: $id: stream finished")
            or diag($a->{why} // 'no error shown');
        is($a->{text}, $want,
           "$label: $id: the streamed DOM text is the non-streamed greedy "
           . 'text');
        is($a->{finish}, $finish, "$label: $id: finish_reason $finish");
    }

    # Both transports reached the server, in that HTTP version.
    my @log = $s->access_log_lines;
    ok((grep { m{"GET /v1/stream\?[^"]* HTTP/\Q$proto\E" id=\S* a=base}
               && /^\d+ 200 / } @log),
       "$label: the EventSource GET stream was served (200) over HTTP/"
       . "$proto");
    # URLSearchParams writes spaces as '+'; decoding the query must not
    # rewrite the request line that $request logs.
    my ($es_line) = grep { m{"GET /v1/stream\?\S* HTTP/\Q$proto\E"} } @log;
    like($es_line // '',
         qr{"GET /v1/stream\?\S*prompt=Say\+hello\+\S* HTTP/\Q$proto\E"},
         "$label: the logged request line is the one the browser sent");
    ok((grep { m{"POST /v1/chat/completions HTTP/\Q$proto\E"}
               && /^\d+ 200 / } @log) >= ($proto eq '1.1' ? 2 : 1),
       "$label: the fetch() POST stream was served (200)");
}


# cross_origin(api, allowed): the demo page from the other origin with
# api= the API at another; allowed, both transports' answers are the
# reference, else the browser refuses both.
sub cross_origin {
    my ($api, $allowed) = @_;
    my $label = $allowed ? 'cors' : 'no-cors';
    my $dom = chromium_dom($label, "$page_origin/index.html?$query&api="
                                   . uri_escape($api));

    for my $id (qw(answer-es answer-fetch)) {
        my $a = answer($dom, $id);
        ok($a, "$label: $id is in the DOM") or next;
        if ($allowed) {
            is($a->{state}, 'done',
               "$label: $id: stream finished across origins")
                or diag($a->{why} // 'no error shown');
            is($a->{text}, $want, "$label: $id: the greedy text");
        } else {
            is($a->{state}, 'error', "$label: $id: the browser refused it")
                or diag("state $a->{state}: $a->{text}");
            is($a->{text}, '', "$label: $id: no text reached the page");
        }
    }
}


# chromium_dom(label, url, flags...): the page's DOM once Chromium's
# virtual time has run out (kept as dom-<label>.html in the prefix). A
# dump can come while a stream is still open (the page's state
# "streaming": the dump's timing, not the server's): the page is loaded
# again, twice at most, and the last dump is the one checked.
sub chromium_dom {
    my ($label, $url, @flags) = @_;
    my $profile = $s->prefix . "/chromium-profile-$label";
    make_path($profile);
    my ($rc, $dom, $err);
    for my $try (1 .. 3) {
        ($rc, $dom, $err) = SloraTest::run_cmd(
            'timeout', '90', $chromium, '--headless', '--no-sandbox',
            '--disable-gpu', '--disable-quic', '--no-first-run',
            '--disable-background-networking', '--disable-component-update',
            '--disable-sync', @flags, "--user-data-dir=$profile",
            '--virtual-time-budget=30000', '--dump-dom', $url);
        last if $rc != 0
                || ($dom // '') !~ /<div\b[^>]*\bdata-state="streaming"/;
        diag("$label: the DOM was dumped with a stream open (try $try)");
    }
    is($rc, 0, "$label: chromium ran") or diag($err);
    SloraTest::_spew($s->prefix . "/dom-$label.html", $dom);
    return $dom;
}


# answer(dom, id): the page's answer div: its state, finish reason, text
# (unescaped) and error; undef where it is not in the DOM.
sub answer {
    my ($dom, $id) = @_;
    my ($attrs, $text) = $dom =~ m{<div\ ([^>]*\bid="\Q$id\E"[^>]*)>
                                   \s*<div\ class="who">[^<]*</div>
                                   \s*<pre\ class="text">(.*?)</pre>}sx;
    return undef unless defined $attrs;
    my ($state) = $attrs =~ /\bdata-state="([^"]*)"/;
    my ($fin) = $attrs =~ /\bdata-finish="([^"]*)"/;
    my ($why) = $dom =~ m{id="\Q$id\E".*?<div class="err">([^<]*)}s;
    return { state => $state // '', finish => $fin, why => $why,
             text => html_unescape($text // '') };
}


sub uri_escape {
    my ($v) = @_;
    utf8::encode($v) if utf8::is_utf8($v);
    $v =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge;
    return $v;
}


# The DOM dump is UTF-8 and escapes & < > (and a no-break space); returns
# characters, as JSON::PP gives the reference text.
sub html_unescape {
    my ($h) = @_;
    utf8::decode($h);
    $h =~ s/&lt;/</g;
    $h =~ s/&gt;/>/g;
    $h =~ s/&quot;/"/g;
    $h =~ s/&nbsp;/\x{a0}/g;
    $h =~ s/&#(\d+);/chr $1/ge;
    $h =~ s/&#x([0-9a-fA-F]+);/chr hex $1/ge;
    $h =~ s/&amp;/&/g;
    return $h;
}
