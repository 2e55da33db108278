# keys.t: API keys in front of the API, the nginx way.
#
# OpenAI clients send `Authorization: Bearer KEY`. nginx's `map` turns
# the key into a tenant (or nothing), `return 401` refuses a request
# without a known key, and `limit_req` keyed by the tenant bounds each
# key's rate; `slora_tenant` hands the tenant to the engine (its fair
# share account, and with Redis its adapters and SLO). The module gives
# each of nginx's refusals OpenAI's error shape: 401 invalid_api_key, 429
# rate_limit_error with Retry-After, so an OpenAI client raises the
# exception a user expects, and counts them in its metrics. A known key
# is served, under its tenant (the access log's $slora_tenant), and the
# key is not in the log. With CORS (the module README's configuration),
# a browser's preflight, which carries no key, is let through to the
# module's 204 while the request itself still needs its key.

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;

my $PORT = 18110;

my $model = tiny_model();
my $s = SloraTest::Server->new(name => 'keys', port => $PORT);
$s->{http} = slora_http(
    model => $model,
    engine => 'threads=1 slots=16 max_ctx=256 max_tokens=16',
    http_extra => <<'EOF',
    map $http_authorization $key_tenant {
        default           "";
        "Bearer sk-alice" alice;
        "Bearer sk-bob"   bob;
    }

    limit_req_zone $key_tenant zone=per_key:1m rate=1r/m;
    limit_req_status 429;

    # a browser's preflight carries no key: refuse the rest only
    map $request_method:$key_tenant $key_refused {
        "~^OPTIONS:"  0;
        "~:$"         1;
        default       0;
    }
EOF
    server_extra => <<'EOF');
        location /keyed/v1/ {
            if ($key_tenant = "") {
                return 401;
            }

            slora_api openai;
            slora_tenant $key_tenant;
        }

        location /browser/v1/ {
            if ($key_refused) {
                return 401;
            }

            slora_api openai;
            slora_tenant $key_tenant;
            add_header Access-Control-Allow-Origin  $http_origin always;
            add_header Access-Control-Allow-Methods "GET, POST, OPTIONS" always;
            add_header Access-Control-Allow-Headers $http_access_control_request_headers always;
        }

        location /limited/v1/ {
            if ($key_tenant = "") {
                return 401;
            }

            limit_req zone=per_key;
            slora_api openai;
            slora_tenant $key_tenant;
        }
EOF
$s->start;
pass('nginx started, engine ready');

my $BODY = chat_body('base', 'Hello', max_tokens => 4);

sub post {
    my ($path, $key) = @_;
    my %h = ('Content-Type' => 'application/json');
    $h{Authorization} = "Bearer $key" if defined $key;
    return http_req($PORT, 'POST', $path, body => $BODY, headers => \%h);
}

# Refusals: no key, an unknown key, a malformed header.
for my $c (['no Authorization header', undef],
           ['an unknown key', 'sk-mallory'],
           ['a key of a known one\'s prefix', 'sk-ali'])
{
    my $r = post('/keyed/v1/chat/completions', $c->[1]);
    my @why = check_error_object($r->{json});
    push @why, "status $r->{status}" if $r->{status} != 401;
    if (!@why) {
        push @why, "type $r->{json}{error}{type}"
            unless $r->{json}{error}{type} eq 'invalid_request_error';
        push @why, 'code ' . ($r->{json}{error}{code} // 'null')
            unless ($r->{json}{error}{code} // '') eq 'invalid_api_key';
    }
    ok(!@why, "$c->[0]: 401 invalid_api_key in OpenAI's shape")
        or diag(join('; ', @why) . ': ' . substr($r->{body} // '', 0, 300));
}

# A known key is served under its tenant.
my $r = post('/keyed/v1/chat/completions', 'sk-alice');
ok($r->{status} == 200 && ref $r->{json}{choices} eq 'ARRAY'
   && defined $r->{json}{choices}[0]{message}{content},
   'sk-alice: 200 with an answer')
    or diag("$r->{status}: " . substr($r->{body}, 0, 300));
my $m = http_req($PORT, 'GET', '/keyed/v1/models',
                 headers => { Authorization => 'Bearer sk-bob' });
ok($m->{status} == 200 && ref $m->{json}{data} eq 'ARRAY',
   'sk-bob: the model list');

# Keys and CORS: the preflight without a key is answered, the request
# without one is still refused (and says so to the page), with one served.
my $origin = 'http://app.example';
my $pre = http_req($PORT, 'OPTIONS', '/browser/v1/chat/completions',
                   headers => { Origin => $origin,
                                'Access-Control-Request-Method' => 'POST',
                                'Access-Control-Request-Headers'
                                    => 'authorization,content-type' });
ok($pre->{status} == 204
   && ($pre->{headers}{'access-control-allow-origin'} // '') eq $origin
   && ($pre->{headers}{'access-control-allow-headers'} // '')
      =~ /authorization/i,
   'browser: a preflight without a key: 204 with the CORS headers')
    or diag("$pre->{status} " . join(', ', %{ $pre->{headers} }));
my $nokey = http_req($PORT, 'POST', '/browser/v1/chat/completions',
                     body => $BODY, headers => { Origin => $origin });
ok($nokey->{status} == 401
   && ($nokey->{json}{error}{code} // '') eq 'invalid_api_key'
   && ($nokey->{headers}{'access-control-allow-origin'} // '') eq $origin,
   'browser: the request without a key: 401 invalid_api_key, readable '
   . 'by the page') or diag("$nokey->{status} $nokey->{body}");
my $keyed = http_req($PORT, 'POST', '/browser/v1/chat/completions',
                     body => $BODY,
                     headers => { Origin => $origin,
                                  Authorization => 'Bearer sk-alice',
                                  'Content-Type' => 'application/json' });
is($keyed->{status}, 200, 'browser: with a key, served');

# One request a minute a key: the second within the minute is a 429 in
# OpenAI's shape, with Retry-After; another key has its own budget.
my $first = post('/limited/v1/chat/completions', 'sk-bob');
my $second = post('/limited/v1/chat/completions', 'sk-bob');
my $other = post('/limited/v1/chat/completions', 'sk-alice');
is($first->{status}, 200, 'limited: sk-bob\'s first request is served');
{
    my @why = check_error_object($second->{json});
    push @why, "status $second->{status}" if $second->{status} != 429;
    if (!@why) {
        push @why, "type $second->{json}{error}{type}"
            unless $second->{json}{error}{type} eq 'rate_limit_error';
        push @why, 'code ' . ($second->{json}{error}{code} // 'null')
            unless ($second->{json}{error}{code} // '')
                   eq 'rate_limit_exceeded';
    }
    push @why, 'no Retry-After'
        unless ($second->{headers}{'retry-after'} // '') =~ /^\d+$/;
    ok(!@why, 'limited: its second is a 429 rate_limit_error with '
              . 'Retry-After')
        or diag(join('; ', @why) . ': '
                . substr($second->{body} // '', 0, 300));
}
is($other->{status}, 200, 'limited: sk-alice has a budget of her own');

# The official client: AuthenticationError for a bad key, RateLimitError
# past the limit, an answer with a good one.
my ($rc_imp) = SloraTest::run_cmd('python3', '-c', 'import openai');
is($rc_imp, 0, 'python3 can import openai');
my ($rc, $out, $err) = SloraTest::run_cmd('python3', '-c', <<"EOF");
import openai
def ask(path, key):
    c = openai.OpenAI(base_url="http://127.0.0.1:$PORT" + path,
                      api_key=key, max_retries=0, timeout=60)
    try:
        r = c.chat.completions.create(
            model="base", max_tokens=4,
            messages=[{"role": "user", "content": "Hello"}])
        return "ok " + str(len(r.choices))
    except openai.AuthenticationError as e:
        return "auth " + str(e.status_code)
    except openai.RateLimitError as e:
        return "rate " + str(e.status_code)
print(ask("/keyed/v1", "sk-mallory"))
print(ask("/keyed/v1", "sk-alice"))
print(ask("/limited/v1", "sk-alice"))
EOF
is($out, "auth 401\nok 1\nrate 429\n",
   'the openai client: AuthenticationError, an answer, RateLimitError')
    or diag("rc=$rc $err");

# The metrics count the refusals under their statuses (the 401s: three
# refusals, the browser's request without a key, the client's).
{
    my $m = http_req($PORT, 'GET', '/metrics');
    my %n = ($m->{body} // '')
            =~ /^slora_requests_total\{status="(\d+)"\} (\d+)$/mg;
    ok(($n{401} // 0) == 5 && ($n{429} // 0) == 2,
       'slora_requests_total: 5 with 401, 2 with 429 (' . ($n{401} // 0)
       . ', ' . ($n{429} // 0) . ')');
}

# The access log: the served requests under their tenants, no key.
my @log = $s->access_log_lines;
my @alice = grep { m{"POST /keyed/v1/chat/completions} && / 200 /
                   && /t=alice / } @log;
ok(scalar @alice >= 2, 'the access log has alice\'s answers under t=alice ('
   . scalar(@alice) . ')');
ok(!grep({ /sk-(?:alice|bob|mallory)/ } @log), 'no key in the access log');

my $stop = $s->stop;
ok($stop->{graceful}, 'nginx exits on QUIT');
my @bad = $s->bad_log_lines(
    errors => 1, allow => [qr/limiting requests, excess/]);
ok(!@bad, 'no [error] (but limit_req\'s own), [alert], [crit] or [emerg]'
          . ' in the error log')
    or diag(join("\n", @bad));

done_testing();
