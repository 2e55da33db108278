# vllm.t: vLLM's extensions to OpenAI's requests, through nginx on the
# real SmolLM2-135M-Instruct, each against the same request without it:
# include_stop_str_in_output (the stop string that matched ends the
# answer), return_tokens_as_token_ids (logprobs name tokens by id),
# allowed_token_ids (only those tokens are drawn, greedy and sampled;
# ids past the vocabulary, and a set that min_tokens would hold all of
# back, are a 400), stream_options.continuous_usage_stats (the counts
# so far in every chunk), truncate_prompt_tokens (a prompt cut to its
# last tokens), bad_words (their tokens never drawn), prompt_logprobs
# (each prompt token's log-probability and rank, as echo's figures),
# return_token_ids (the prompt's and the answer's ids beside the text)
# and cache_salt (the prefix cache shares a prompt's pages only between
# requests of one salt, chat and the Responses API alike; the directive
# slora_cache_salt folds a variable's value into it, so that users the
# operator names keep their pages apart whatever the clients send).

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;

my $PORT = 18180;

my $s = SloraTest::Server->new(name => 'vllm', port => $PORT,
                               ready_timeout => 120);
mkdir $s->prefix . '/adapters';
$s->{http} = slora_http(
    model => real_model(), adapters => $s->prefix . '/adapters',
    engine => 'threads=2 slots=16 max_ctx=8192 max_tokens=256 top_logprobs=20',
    server_extra => '        location /u/v1/ { slora_api openai; '
                    . 'slora_cache_salt $http_x_user; }');
$s->start;
pass('nginx started on SmolLM2, engine ready');

sub one_line { my ($t) = @_; $t =~ s/\s+/ /g; return substr($t, 0, 80) }

# the logprobs' tokens named "token_id:N": their ids (-1 for another name)
sub token_ids {
    my ($r) = @_;
    return map { /^token_id:(\d+)$/ ? $1 + 0 : -1 }
           @{ $r->{json}{choices}[0]{logprobs}{tokens} // [] };
}

# vLLM's include_stop_str_in_output: the stop string that matched ends
# the answer instead of being cut off, whole and streamed, finish stop
# either way. The stop string is a piece of the greedy answer itself, so
# it is sure to come.
{
    my %b = (model => 'base', temperature => 0, max_tokens => 24,
             messages => [{ role => 'user',
                            content => 'Name three colours.' }]);
    my $a = json_req($PORT, '/v1/chat/completions', \%b);
    my $at = $a->{json}{choices}[0]{message}{content} // '';
    my $stop = substr($at, 8, 3);
    my $end = index($at, $stop);
    my $cut = json_req($PORT, '/v1/chat/completions',
                       { %b, stop => [$stop] });
    my %inc = (%b, stop => [$stop],
               include_stop_str_in_output => JSON::PP::true());
    my $in = json_req($PORT, '/v1/chat/completions', \%inc);
    my $st = stream_start($PORT, 'POST', '/v1/chat/completions',
                          body => json_encode({ %inc,
                                                stream => JSON::PP::true() }),
                          headers => { 'Content-Type' => 'application/json' });
    $st->wait_done(60);
    my ($bad, $sum) = $st->sse_check('chat');
    my ($cc, $ic) = map { $_->{json}{choices}[0] // {} } $cut, $in;
    ok(length($at) > 11 && $end >= 0
       && ($cc->{message}{content} // "\0") eq substr($at, 0, $end)
       && ($cc->{finish_reason} // '') eq 'stop'
       && ($ic->{message}{content} // "\0")
          eq substr($at, 0, $end + length $stop)
       && ($ic->{finish_reason} // '') eq 'stop'
       && !@$bad && $sum->{text} eq ($ic->{message}{content} // "\0")
       && "@{ $sum->{finish} }" eq 'stop',
       'include_stop_str_in_output: the answer to the end of its stop '
       . 'string "' . one_line($stop) . '", not cut before it; finish stop, '
       . 'whole and streamed')
        or diag($a->{body}, "\n", $cut->{body}, "\n", $in->{body}, "\n",
                join("\n", @$bad), "\n", $sum->{text});
}

# vLLM's return_tokens_as_token_ids: logprobs name each token
# "token_id:N": a completion's ids detokenized are its text and each
# chosen one is among its row's keys, all of them ids; a chat's entries
# keep their own bytes and figures (as without it), only the names ids.
{
    my %c = (model => 'base', prompt => 'The capital of France is',
             temperature => 0, max_tokens => 8, logprobs => 2,
             return_tokens_as_token_ids => JSON::PP::true());
    my $a = json_req($PORT, '/v1/completions', \%c);
    my $ch = $a->{json}{choices}[0] // {};
    my @tok = @{ $ch->{logprobs}{tokens} // [] };
    my @tid = map { /^token_id:(\d+)$/ ? $1 + 0 : -1 } @tok;
    my $d = json_req($PORT, '/v1/detokenize',
                     { tokens => [grep { $_ >= 0 } @tid] });
    my $tops = $ch->{logprobs}{top_logprobs} // [];
    my @badrow = grep { my $t = $tops->[$_];
                        ref $t ne 'HASH' || !exists $t->{$tok[$_]}
                        || grep { !/^token_id:\d+$/ } keys %$t } 0 .. $#tok;
    ok(@tok == 8 && !grep({ $_ < 0 } @tid) && !@badrow
       && ($d->{json}{prompt} // "\0") eq ($ch->{text} // "\1"),
       'completion with return_tokens_as_token_ids: ' . join(' ', @tok)
       . ', detokenized the text, each among its row\'s id keys')
        or diag($a->{body});

    my %m = (model => 'base', temperature => 0, max_tokens => 6,
             logprobs => JSON::PP::true(), top_logprobs => 2,
             messages => [{ role => 'user', content => 'Name a colour.' }]);
    my $p = json_req($PORT, '/v1/chat/completions', \%m);
    my $q = json_req($PORT, '/v1/chat/completions',
                     { %m, return_tokens_as_token_ids => JSON::PP::true() });
    my @pc = @{ $p->{json}{choices}[0]{logprobs}{content} // [] };
    my @qc = @{ $q->{json}{choices}[0]{logprobs}{content} // [] };
    my @bad = grep {
        my ($x, $y) = ($pc[$_], $qc[$_]);
        ($y->{token} // '') !~ /^token_id:\d+$/
        || json_encode($y->{bytes} // 0) ne json_encode($x->{bytes} // 1)
        || abs(($y->{logprob} // 9) - ($x->{logprob} // -9)) > 1e-6
        || grep({ ($_->{token} // '') !~ /^token_id:\d+$/ }
                @{ $y->{top_logprobs} // [{}] })
    } 0 .. $#pc;
    ok(@pc == 6 && @qc == 6 && !@bad,
       'chat with return_tokens_as_token_ids: ' . join(' ',
       map { $_->{token} // '?' } @qc) . ', bytes and figures as without')
        or diag($p->{body}, "\n", $q->{body});
}

# vLLM's allowed_token_ids: only those tokens are drawn, greedy and
# sampled (the tokens named by id to check each), where without it the
# answer has others; an id past the vocabulary is a 400 naming it, and
# so is a set of stop ids alone while min_tokens holds those back (no
# token could be drawn).
{
    my $tk = json_req($PORT, '/v1/tokenize',
                      { prompt => ' yes no maybe',
                        add_special_tokens => JSON::PP::false() });
    my @allow = @{ $tk->{json}{tokens} // [] };
    my %in = map { $_ => 1 } @allow;
    my %c = (model => 'base', prompt => 'The capital of France is',
             temperature => 0, max_tokens => 6, logprobs => 0,
             return_tokens_as_token_ids => JSON::PP::true());
    my @free = token_ids(json_req($PORT, '/v1/completions', \%c));
    my $g = json_req($PORT, '/v1/completions',
                     { %c, allowed_token_ids => [map { $_ + 0 } @allow] });
    my @greedy = token_ids($g);
    my @drawn = token_ids(json_req($PORT, '/v1/completions',
                                   { %c, temperature => 1.5, seed => 3,
                                     max_tokens => 24,
                                     allowed_token_ids =>
                                         [map { $_ + 0 } @allow] }));
    ok(@allow == 3 && @free == 6 && grep({ !$in{$_} } @free),
       "without allowed_token_ids the answer has other tokens: @free");
    ok(@greedy == 6 && !grep({ !$in{$_} } @greedy),
       "allowed_token_ids @allow, greedy: each token one of them: @greedy ("
       . one_line($g->{json}{choices}[0]{text} // '') . ')');
    ok(@drawn == 24 && !grep({ !$in{$_} } @drawn),
       "allowed_token_ids @allow, sampled at 1.5: each of 24 one of them");

    my $b = json_req($PORT, '/v1/completions',
                     { %c, allowed_token_ids => [5, 49152] });
    ok($b->{status} == 400
       && ($b->{json}{error}{param} // '') eq 'allowed_token_ids',
       'allowed_token_ids naming 49152: 400 naming it: '
       . ($b->{json}{error}{message} // $b->{status}));
    my %h = (model => 'base', max_tokens => 4, min_tokens => 2,
             messages => [{ role => 'user', content => 'Hi' }]);
    $b = json_req($PORT, '/v1/chat/completions',
                  { %h, allowed_token_ids => [2] });
    ok($b->{status} == 400
       && ($b->{json}{error}{param} // '') eq 'allowed_token_ids',
       'allowed_token_ids <|im_end|> alone under min_tokens 2: 400: '
       . ($b->{json}{error}{message} // $b->{status}));
    $b = json_req($PORT, '/v1/chat/completions',
                  { %h, allowed_token_ids => [2, 28] });
    ok($b->{status} == 200,
       'allowed_token_ids <|im_end|> and another under min_tokens 2: '
       . 'answered');
}

# vLLM's stream_options.continuous_usage_stats: with include_usage every
# chunk carries the counts so far, the completion's growing a token a
# chunk to the last chunk's usage, the prompt's the same throughout
{
    my %b = (model => 'base', temperature => 0, max_tokens => 12,
             stream => JSON::PP::true(),
             stream_options => { include_usage => JSON::PP::true(),
                                 continuous_usage_stats => JSON::PP::true() },
             messages => [{ role => 'user', content => 'Name a colour.' }]);
    my $st = stream_start($PORT, 'POST', '/v1/chat/completions',
                          body => json_encode(\%b),
                          headers => { 'Content-Type' => 'application/json' });
    $st->wait_done(60);
    my @ev = grep { ref $_->{json} eq 'HASH' } @{ $st->{events} };
    my @chunks = grep { @{ $_->{json}{choices} // [] } } @ev;
    my ($last) = grep { !@{ $_->{json}{choices} // [1] } } @ev;
    my @n = map { $_->{json}{usage}{completion_tokens} // -1 } @chunks;
    my @p = map { $_->{json}{usage}{prompt_tokens} // -1 } @chunks;
    my $u = $last ? $last->{json}{usage} // {} : {};
    my @tot = grep { ($_->{json}{usage}{total_tokens} // -1)
                     != ($_->{json}{usage}{prompt_tokens} // 0)
                        + ($_->{json}{usage}{completion_tokens} // 0) }
              @chunks;
    my @down = grep { $n[$_] < $n[$_ - 1] } 1 .. $#n;
    ok(@chunks > 3 && !@down && !@tot && !grep({ $_ != ($u->{prompt_tokens}
                                                      // -2) } @p)
       && $n[-1] == ($u->{completion_tokens} // -2) && $n[0] <= 1,
       'continuous_usage_stats: every chunk\'s counts, '
       . join(' ', @n) . ' of ' . ($u->{completion_tokens} // '?')
       . ' completion tokens, prompt ' . ($u->{prompt_tokens} // '?'))
        or diag(join("\n", map { json_encode($_->{json}) } @ev));
}

# vLLM's truncate_prompt_tokens: a prompt cut to its last k tokens (as
# /tokenize gives them), echoed as those; a text far past the context
# answered from its last 100 where without it is a 413; token ids cut as
# text is; a chat's rendered prompt cut alike; -1 keeps the context's
# worth, which leaves no room for the answer: a 413 still.
{
    my $P = 'The capital of France is';
    my @all = @{ json_req($PORT, '/v1/tokenize', { prompt => $P })
                 ->{json}{tokens} // [] };
    my $last3 = json_req($PORT, '/v1/detokenize',
                         { tokens => [@all[-3 .. -1]] })->{json}{prompt};
    my $e = json_req($PORT, '/v1/completions',
                     { model => 'base', prompt => $P, max_tokens => 0,
                       echo => JSON::PP::true(), truncate_prompt_tokens => 3 });
    ok(@all > 3 && ($e->{json}{usage}{prompt_tokens} // 0) == 3
       && ($e->{json}{choices}[0]{text} // "\0") eq ($last3 // "\1"),
       "truncate_prompt_tokens 3 of $P: 3 prompt tokens, echoed as \""
       . ($e->{json}{choices}[0]{text} // '?') . '"');
    my $ids = json_req($PORT, '/v1/completions',
                       { model => 'base', prompt => [map { $_ + 0 } @all],
                         max_tokens => 0, echo => JSON::PP::true(),
                         truncate_prompt_tokens => 3 });
    is($ids->{json}{choices}[0]{text} // "\0", $last3 // "\1",
       'truncate_prompt_tokens 3 of its token ids: the same last 3');

    my $long = join(' ', ('the long road home') x 3000);
    my %l = (model => 'base', prompt => $long, max_tokens => 4,
             temperature => 0);
    my $no = json_req($PORT, '/v1/completions', \%l);
    my $cut = json_req($PORT, '/v1/completions',
                       { %l, truncate_prompt_tokens => 100 });
    my $tk = json_req($PORT, '/v1/tokenize',
                      { prompt => $long, truncate_prompt_tokens => 100 });
    ok($no->{status} == 413 && $cut->{status} == 200
       && ($cut->{json}{usage}{prompt_tokens} // 0) == 100
       && ($tk->{json}{count} // 0) == 100,
       'a text of some 12000 tokens: 413 whole, answered from its last 100 '
       . '(and /tokenize counts 100)')
        or diag($no->{status}, ' ', $cut->{body});
    my $ctx = json_req($PORT, '/v1/completions',
                       { %l, truncate_prompt_tokens => -1 });
    ok($ctx->{status} == 413
       && ($ctx->{json}{error}{code} // '') eq 'context_length_exceeded',
       'truncate_prompt_tokens -1: the context\'s worth, no room left: 413');

    my %c = (model => 'base', max_tokens => 2,
             messages => [{ role => 'user', content => $long }]);
    my $chat = json_req($PORT, '/v1/chat/completions',
                        { %c, truncate_prompt_tokens => 50 });
    ok($chat->{status} == 200
       && ($chat->{json}{usage}{prompt_tokens} // 0) == 50,
       'a chat past the context with truncate_prompt_tokens 50: answered '
       . 'from 50 prompt tokens')
        or diag($chat->{body});
}

# vLLM's bad_words: " Paris", the greedy answer's first token, is never
# drawn once "Paris" is a bad word (its tokens, with a space before it
# and without, as vLLM makes them); the answer goes another way. A
# control token's text is that token: "<|im_end|>" banned, a chat that
# ended runs on to max_tokens. A word of more than 64 tokens, and 17
# words, are a 400.
{
    my %c = (model => 'base', prompt => 'The capital of France is',
             temperature => 0, max_tokens => 8, logprobs => 0,
             return_tokens_as_token_ids => JSON::PP::true());
    my $free = json_req($PORT, '/v1/completions', \%c);
    my @paris = @{ json_req($PORT, '/v1/tokenize',
                            { prompt => ' Paris',
                              add_special_tokens => JSON::PP::false() })
                   ->{json}{tokens} // [] };
    my $b = json_req($PORT, '/v1/completions',
                     { %c, bad_words => ['Paris'] });
    my @free = token_ids($free);
    my @got = token_ids($b);
    my $sampled = json_req($PORT, '/v1/completions',
                           { %c, bad_words => ['Paris'], temperature => 1,
                             seed => 9, max_tokens => 48 });
    my @drawn = token_ids($sampled);
    ok(@paris == 1 && @free && $free[0] == $paris[0]
       && @got == 8 && !grep({ $_ == $paris[0] } @got, @drawn),
       "bad_words [Paris]: token $paris[0] drawn first without it, never "
       . 'with it, greedy or sampled: "'
       . one_line($b->{json}{choices}[0]{text} // '') . '"')
        or diag($free->{body}, "\n", $b->{body});
    my %h = (model => 'base', temperature => 0, max_tokens => 24,
             messages => [{ role => 'user', content => 'What is 2+2?' }]);
    my $ends = json_req($PORT, '/v1/chat/completions', \%h);
    my $runs = json_req($PORT, '/v1/chat/completions',
                        { %h, bad_words => ['<|im_end|>'] });
    my ($ec, $rc) = map { $_->{json}{choices}[0] // {} } $ends, $runs;
    ok(($ec->{finish_reason} // '') eq 'stop'
       && ($ends->{json}{usage}{completion_tokens} // 99) < 24
       && ($rc->{finish_reason} // '') eq 'length'
       && ($runs->{json}{usage}{completion_tokens} // 0) == 24
       && index($rc->{message}{content} // '',
                $ec->{message}{content} // "\0") == 0,
       'bad_words [<|im_end|>]: the control token banned, the answer runs '
       . 'past where it ended ("' . one_line($ec->{message}{content} // '')
       . '") to max_tokens')
        or diag($ends->{body}, "\n", $runs->{body});
    my $long = json_req($PORT, '/v1/completions',
                        { %c, bad_words => [join(' ', ('q') x 100)] });
    ok($long->{status} == 400
       && ($long->{json}{error}{param} // '') eq 'bad_words',
       'a bad word of more than 64 tokens: 400: '
       . ($long->{json}{error}{message} // $long->{status}));
}

# vLLM's prompt_logprobs: a list as long as the prompt, null and then
# an object a token, keyed by the prompt's ids as /tokenize gives them:
# the token's figure (echo's, from the same record) and its rank (1 + the
# alternatives likelier than it, or past them all where none is less
# likely), then the row's likeliest ranked 1, 2 (echo's alternatives);
# the decoded token the token's text. Chat's once, beside usage, over
# its rendered prompt; a completion of max_tokens 0 the prompt's alone;
# n choices of two prompts each show their own prompt's list (read once
# a prompt); past 2^19 entries a request (echo's with logprobs counted
# too) a 400; a stream refuses it with
# vLLM's words (0 passes and is not sent).
{
    my $P = 'The capital of France is Paris. The capital of Germany is';
    my @ids = @{ json_req($PORT, '/v1/tokenize', { prompt => $P })
                 ->{json}{tokens} // [] };
    my $r = json_req($PORT, '/v1/completions',
                     { model => 'base', prompt => $P, max_tokens => 1,
                       temperature => 0, prompt_logprobs => 2,
                       echo => JSON::PP::true(), logprobs => 2, n => 2 });
    my $c = $r->{json}{choices} // [];
    my $pl = $c->[0]{prompt_logprobs} // [];
    my $lp = $c->[0]{logprobs} // {};
    my ($keyed, $same, $ranked, $firsts, $texts) = (0, 0, 0, 0, 0);
    for my $i (1 .. $#$pl) {
        my $e = $pl->[$i] // {};
        my $t = $e->{ $ids[$i] // -1 } or next;
        $keyed++;
        $same++ if abs(($t->{logprob} // 9)
                       - ($lp->{token_logprobs}[$i] // -9)) < 1e-6;
        $texts++ if ($t->{decoded_token} // "\0")
                    eq ($lp->{tokens}[$i] // "\1");
        my @alts = grep { $_ ne $ids[$i] } keys %$e;
        my $more = grep { $e->{$_}{logprob} > $t->{logprob} } @alts;
        my @r = sort { $a <=> $b } map { $e->{$_}{rank} } @alts;
        $ranked++ if $more < 2 ? $t->{rank} == $more + 1
                               : $t->{rank} > 2;
        $firsts++ if "@r" eq ($t->{rank} <= 2 ? ($t->{rank} == 1 ? '2'
                                                                 : '1')
                                              : '1 2');
    }
    my $n = $#ids;
    ok(@ids > 8 && @$pl == @ids && !defined $pl->[0] && $keyed == $n
       && $same == $n && $texts == $n && $ranked == $n && $firsts == $n
       && ($r->{json}{usage}{prompt_tokens} // 0) == @ids,
       "prompt_logprobs 2 of a completion: null and then $n entries keyed "
       . 'by the prompt\'s ids, echo\'s figures and texts, ranks that order '
       . 'them with the alternatives ranked 1 and 2')
        or diag("$keyed $same $texts $ranked $firsts of $n: ", $r->{body});
    my $two = json_req($PORT, '/v1/completions',
                       { model => 'base', prompt => ['Hello there', $P],
                         max_tokens => 1, prompt_logprobs => 1, n => 2 });
    my $tc = $two->{json}{choices} // [];
    my @len = map { scalar @{ $_->{prompt_logprobs} // [] } } @$tc;
    my $js = JSON::PP->new->canonical;
    ok(@$c == 2 && $js->encode($c->[1]{prompt_logprobs} // [])
                   eq $js->encode($pl)
       && @$tc == 4 && $len[0] == $len[1] && $len[2] == $len[3]
       && $len[2] == @ids && $len[0] >= 2 && $len[0] < $len[2]
       && $js->encode($tc->[3]{prompt_logprobs})
          eq $js->encode($tc->[2]{prompt_logprobs}),
       "with n 2 each choice shows its prompt's list: one prompt's, and "
       . "two prompts' (@len entries)")
        or diag($two->{body});
    my $firstrank = grep { my $e = $pl->[$_] // {};
                           ($e->{ $ids[$_] }{rank} // 0) == 1 } 1 .. $#$pl;
    my $later = grep { my $e = $pl->[$_] // {};
                       ($e->{ $ids[$_] }{rank} // 0) > 2 } 1 .. $#$pl;
    ok($firstrank > 0 && $later > 0, "ranks say something: $firstrank of "
       . "the prompt's tokens were the likeliest, $later past the second");

    my $alone = json_req($PORT, '/v1/completions',
                         { model => 'base', prompt => $P, max_tokens => 0,
                           prompt_logprobs => 0 });
    my $ac = $alone->{json}{choices}[0] // {};
    my $apl = $ac->{prompt_logprobs} // [];
    ok($alone->{status} == 200 && ($ac->{text} // "\0") eq ''
       && ($ac->{finish_reason} // '') eq 'length' && @$apl == @ids
       && !grep({ keys %{ $apl->[$_] // {} } != 1
                  || abs($apl->[$_]{ $ids[$_] }{logprob}
                         - $pl->[$_]{ $ids[$_] }{logprob}) > 1e-6 }
                1 .. $#ids),
       'max_tokens 0 with prompt_logprobs 0: no text, each entry the '
       . 'token alone with the same figure')
        or diag($alone->{body});

    my @m = ({ role => 'user', content => 'Say hi.' });
    my @cids = @{ json_req($PORT, '/v1/tokenize',
                           { model => 'base', messages => \@m })
                  ->{json}{tokens} // [] };
    my $ch = json_req($PORT, '/v1/chat/completions',
                      { model => 'base', messages => \@m, max_tokens => 2,
                        prompt_logprobs => 1 });
    my $cpl = $ch->{json}{prompt_logprobs} // [];
    ok(@cids > 4 && @$cpl == @cids && !defined $cpl->[0]
       && !defined $ch->{json}{choices}[0]{prompt_logprobs}
       && !grep({ !exists(($cpl->[$_] // {})->{ $cids[$_] })
                  || keys %{ $cpl->[$_] } > 2 } 1 .. $#cids),
       'chat: prompt_logprobs 1 once beside usage, over the rendered '
       . 'prompt\'s ' . scalar(@cids) . ' tokens')
        or diag($ch->{body});

    # the server's bound: 2^19 entries a request (each prompt token after
    # the first, and its alternatives)
    my $w = join(' ', ('the long road home') x 500);
    my $nw = json_req($PORT, '/v1/tokenize', { prompt => $w })
             ->{json}{count} // 0;
    my $m = $nw > 1 ? int(524288 / (($nw - 1) * 21)) + 1 : 99;
    my $over = json_req($PORT, '/v1/completions',
                        { model => 'base', prompt => [($w) x $m],
                          max_tokens => 1, prompt_logprobs => 20 });
    my $one = json_req($PORT, '/v1/completions',
                       { model => 'base', prompt => $w, max_tokens => 1,
                         prompt_logprobs => 20 });
    my $ol = $one->{json}{choices}[0]{prompt_logprobs} // [];
    ok($m <= 16 && $over->{status} == 400
       && ($over->{json}{error}{param} // '') eq 'prompt_logprobs'
       && ($over->{json}{error}{message} // '') =~ /more than the 524288/
       && $one->{status} == 200 && @$ol == $nw
       && keys %{ $ol->[1] // {} } >= 20,
       "prompt_logprobs 20 over $m prompts of $nw tokens: 400 past the "
       . 'bound of 2^19 entries; one of them answered, 20 alternatives a '
       . 'token')
        or diag($over->{status}, ' ', $over->{json}{error}{message} // '');
    # echo's lists count too: each choice lists every prompt token
    my $w5 = join(' ', ('the long road home') x 1250);
    my $echo = json_req($PORT, '/v1/completions',
                        { model => 'base', prompt => $w5, max_tokens => 1,
                          echo => JSON::PP::true(), logprobs => 5,
                          n => 16 });
    ok($echo->{status} == 400
       && ($echo->{json}{error}{param} // '') eq 'logprobs'
       && ($echo->{json}{error}{message} // '') =~ /in each choice's echo/,
       'echo with logprobs 5 and n 16 over a prompt of some 5000 tokens: '
       . '400 past the same bound')
        or diag($echo->{status}, ' ', $echo->{body});

    my $st = json_req($PORT, '/v1/completions',
                      { model => 'base', prompt => $P, max_tokens => 2,
                        prompt_logprobs => 1, stream => JSON::PP::true() });
    ok($st->{status} == 400
       && ($st->{json}{error}{param} // '') eq 'prompt_logprobs'
       && ($st->{json}{error}{message} // '')
          eq '`prompt_logprobs` are not available when `stream=True`.',
       'a stream with prompt_logprobs 1: 400 in vLLM\'s words');
    my $s0 = stream_start($PORT, 'POST', '/v1/completions',
                          body => json_encode({ model => 'base', prompt => $P,
                                                max_tokens => 2,
                                                prompt_logprobs => 0,
                                                stream => JSON::PP::true() }),
                          headers => { 'Content-Type' => 'application/json' });
    $s0->wait_done(60);
    my ($bad, $sum) = $s0->sse_check('text');
    ok(!@$bad && length($sum->{text}) > 0
       && $s0->{body} !~ /prompt_logprobs/,
       'a stream with prompt_logprobs 0: answered, nothing of it sent')
        or diag(join("\n", @$bad));
}

# vLLM's return_token_ids: the prompt's ids (/tokenize's) and each
# choice's generated ones, which detokenize to its text and end in the
# stop id that ended it (the text leaves it out); streamed, the prompt's
# in a choice's first chunk alone and each chunk's own ids, all of them
# together the answer's. Completions: each choice its own prompt's.
{
    my @m = ({ role => 'user', content => 'What is 2+2?' });
    my %b = (model => 'base', temperature => 0, max_tokens => 24,
             messages => \@m, return_token_ids => JSON::PP::true());
    my $a = json_req($PORT, '/v1/chat/completions', \%b);
    my $ac = $a->{json}{choices}[0] // {};
    my @ids = @{ $ac->{token_ids} // [] };
    my @pids = @{ json_req($PORT, '/v1/tokenize',
                           { model => 'base', messages => \@m })
                  ->{json}{tokens} // [] };
    my $stop = ($ac->{finish_reason} // '') eq 'stop';
    my @text_ids = $stop ? @ids[0 .. $#ids - 1] : @ids;
    my $dt = json_req($PORT, '/v1/detokenize', { tokens => \@text_ids })
             ->{json}{prompt};
    my $eos = json_req($PORT, '/v1/detokenize',
                       { tokens => [$ids[-1] // 0] })->{json}{prompt};
    ok($stop && @ids == ($a->{json}{usage}{completion_tokens} // 0)
       && ($dt // "\0") eq ($ac->{message}{content} // "\1")
       && "@{ $a->{json}{prompt_token_ids} // [] }" eq "@pids" && @pids > 4,
       'chat: prompt_token_ids /tokenize\'s, token_ids the answer\'s text '
       . "and then its stop id ($ids[-1], \"" . one_line($eos // '')
       . '"), as many as usage counts')
        or diag($a->{body});

    my $st = stream_start($PORT, 'POST', '/v1/chat/completions',
                          body => json_encode({ %b,
                                                stream => JSON::PP::true() }),
                          headers => { 'Content-Type' => 'application/json' });
    $st->wait_done(60);
    my ($bad, $sum) = $st->sse_check('chat');
    my @evs = grep { $_->{json} } @{ $st->{events} };
    my @streamed = map { @{ $_->{json}{choices}[0]{token_ids} // [] } } @evs;
    my @with_prompt = grep { $_->{json}{prompt_token_ids} } @evs;
    ok(!@$bad && "@streamed" eq "@ids" && @with_prompt == 1
       && $with_prompt[0] == $evs[0]
       && "@{ $evs[0]{json}{prompt_token_ids} }" eq "@pids",
       'streamed: the chunks\' token_ids together the answer\'s, the '
       . 'prompt\'s in the first chunk alone')
        or diag(join("\n", @$bad), "\n", $st->{body});

    my $two = json_req($PORT, '/v1/completions',
                       { model => 'base', prompt => ['Hello there', 'The sky'],
                         max_tokens => 4, temperature => 0, n => 2,
                         return_token_ids => JSON::PP::true() });
    my @want = map { join ' ', @{ json_req($PORT, '/v1/tokenize',
                                           { prompt => $_ })
                                  ->{json}{tokens} // [] } }
               'Hello there', 'The sky';
    my $right = grep {
        my $c = $two->{json}{choices}[$_] // {};
        my $t = json_req($PORT, '/v1/detokenize',
                         { tokens => $c->{token_ids} // [] })->{json}{prompt};
        "@{ $c->{prompt_token_ids} // [] }" eq $want[int($_ / 2)]
        && ($t // "\0") eq ($c->{text} // "\1")
    } 0 .. 3;
    is($right, 4, 'completions of two prompts, n 2: each choice its '
       . 'prompt\'s ids and token_ids that are its text');

    my $cs = stream_start($PORT, 'POST', '/v1/completions',
                          body => json_encode({ model => 'base',
                                                prompt => 'The sky',
                                                max_tokens => 4,
                                                temperature => 0, n => 2,
                                                return_token_ids =>
                                                    JSON::PP::true(),
                                                stream => JSON::PP::true() }),
                          headers => { 'Content-Type' => 'application/json' });
    $cs->wait_done(60);
    my %firsts;
    my $order = 1;
    for my $ev (grep { $_->{json} } @{ $cs->{events} }) {
        my $c = $ev->{json}{choices}[0] // next;
        if ($c->{prompt_token_ids}) {
            $order = 0 if exists $firsts{ $c->{index} };
            $firsts{ $c->{index} } = "@{ $c->{prompt_token_ids} }";
        } elsif (!exists $firsts{ $c->{index} }) {
            $order = 0;
        }
    }
    ok($order && keys %firsts == 2
       && !grep({ $_ ne $want[1] } values %firsts),
       'a completions stream of n 2: each choice\'s first chunk, and only '
       . 'it, with the prompt\'s ids');
}

# the Responses API takes the sampling ones as chat does:
# allowed_token_ids, bad_words and include_stop_str_in_output
{
    my @allow = @{ json_req($PORT, '/v1/tokenize',
                            { prompt => ' yes no',
                              add_special_tokens => JSON::PP::false() })
                   ->{json}{tokens} // [] };
    my $r = json_req($PORT, '/v1/responses',
                     { model => 'base', input => 'Is it raining?',
                       temperature => 0, max_output_tokens => 6,
                       allowed_token_ids => [map { $_ + 0 } @allow] });
    my $text = $r->{json}{output}[0]{content}[0]{text} // '';
    ok(@allow == 2 && $text =~ /^(?: yes| no)+$/,
       "responses with allowed_token_ids @allow: \"$text\"")
        or diag($r->{body});
    my $b = json_req($PORT, '/v1/responses',
                     { model => 'base', input => 'Hi', max_output_tokens => 4,
                       bad_words => [1] });
    ok($b->{status} == 400
       && ($b->{json}{error}{param} // '') eq 'bad_words',
       'responses with bad_words [1]: 400 naming it, as chat');
}

# a greedy answer to a system prompt and a question, chat (or the
# Responses API: responses => 1) under location loc (/v1), with
# cache_salt salt and the header X-User user where given: its status,
# body, text, prompt tokens and of them those the prefix cache gave
sub cache_ask {
    my (%o) = @_;
    my $loc = $o{loc} // '/v1';
    my %b = (model => 'base', temperature => 0,
             defined $o{salt} ? (cache_salt => $o{salt}) : ());
    my %h = (headers => { 'Content-Type' => 'application/json',
                          defined $o{user} ? ('X-User' => $o{user}) : () });
    my $r = $o{responses}
        ? json_req($PORT, "$loc/responses",
                   { %b, instructions => $o{sys}, input => $o{ask},
                     max_output_tokens => $o{max} }, %h)
        : json_req($PORT, "$loc/chat/completions",
                   { %b, max_tokens => $o{max},
                     messages => [{ role => 'system', content => $o{sys} },
                                  { role => 'user', content => $o{ask} }] },
                   %h);
    my $j = ref $r->{json} eq 'HASH' ? $r->{json} : {};
    my $u = $j->{usage} // {};
    my $d = $u->{prompt_tokens_details} // $u->{input_tokens_details} // {};
    return { status => $r->{status}, body => $r->{body},
             text => $o{responses} ? $j->{output}[0]{content}[0]{text}
                                   : $j->{choices}[0]{message}{content},
             prompt => $u->{prompt_tokens} // $u->{input_tokens} // 0,
             cached => $d->{cached_tokens} // 0 };
}

# vLLM's cache_salt: the same long prompt's pages serve a later request
# only where both carry the same salt (or neither does); the answer is
# the same text whichever pages it used
{
    my $sys = join(' ', ('The harbour office keeps the tide tables, the '
                         . 'pilots\' rota and the lamp room\'s logs.') x 8);
    my $ask = sub {
        my ($salt, $responses) = @_;
        return cache_ask(sys => $sys, ask => 'Who keeps the tide tables?',
                         max => 8, salt => $salt, responses => $responses);
    };
    my @r = map { $ask->(@$_) }
        [undef], [undef], ['tenant-a-3f9c'], ['tenant-a-3f9c'],
        ['tenant-b-77e1'], [undef, 1], ['tenant-a-3f9c', 1];
    my $figs = join(', ', map { "$_->{status} $_->{cached}/$_->{prompt}" }
                    @r);
    ok(!grep({ $_->{status} != 200 } @r) && $r[0]{prompt} > 100,
       "seven requests of a $r[0]{prompt}-token prompt: 200 ($figs)")
        or diag(join("\n", map { $_->{body} } @r));
    ok($r[1]{cached} > 0 && $r[3]{cached} > 0 && $r[5]{cached} > 0
       && $r[6]{cached} > 0,
       'cached tokens again without a salt, with the same salt, and on the '
       . "Responses API for each ($figs)");
    ok($r[2]{cached} == 0 && $r[4]{cached} == 0,
       "none for a salt's first request, though the prompt was cached "
       . "without one, nor for another salt's ($figs)");
    my %texts = map { ($_->{text} // '') => 1 } @r[0 .. 4];
    ok(keys %texts == 1 && length((keys %texts)[0]),
       'the chat answers all the same text, cached or not: "'
       . one_line((keys %texts)[0]) . '"') or diag(join("\n", keys %texts));
}

# slora_cache_salt $http_x_user on /u/v1/: the user's value is part of
# the salt, so alice's pages serve alice alone; without the header the
# location is as /v1/; a client's cache_salt of "alice" elsewhere, or
# alice adding a cache_salt of her own, reaches none of them
{
    my $sys = join(' ', ('The ferry leaves the north quay at seven, calls '
                         . 'at the island at eight and is back by ten.')
                        x 8);
    my $ask = sub {
        my ($loc, $user, $salt) = @_;
        return cache_ask(loc => $loc, sys => $sys, ask => 'When does it '
                         . 'leave?', max => 6, salt => $salt, user => $user);
    };
    my @r = map { $ask->(@$_) }
        ['/v1'],                    # 0: the prompt cached unsalted
        ['/u/v1', 'alice'],         # 1: alice's first
        ['/u/v1', 'alice'],         # 2: alice's second
        ['/u/v1', 'bob'],           # 3: bob's first
        ['/u/v1'],                  # 4: no header: unsalted
        ['/v1', undef, 'alice'],    # 5: a client's salt "alice"
        ['/u/v1', 'alice', 'x'];    # 6: alice with her own salt
    my $figs = join(', ', map { "$_->{status} $_->{cached}/$_->{prompt}" }
                    @r);
    ok(!grep({ $_->{status} != 200 } @r) && $r[0]{prompt} > 100,
       "slora_cache_salt: seven requests of a $r[0]{prompt}-token prompt"
       . " ($figs)") or diag(join("\n", map { $_->{body} } @r));
    ok($r[1]{cached} == 0 && $r[2]{cached} > 0 && $r[3]{cached} == 0,
       "a user's first request takes none of the pages cached unsalted, "
       . "her second hers, another user's none ($figs)");
    ok($r[4]{cached} > 0,
       "without the header the location shares the unsalted pages ($figs)");
    ok($r[5]{cached} == 0 && $r[6]{cached} == 0,
       "a client's cache_salt \"alice\" elsewhere takes none of alice's, "
       . "nor does alice under a salt of her own ($figs)");
    my %texts = map { ($_->{text} // '') => 1 } @r;
    ok(keys %texts == 1, 'the same answer all seven times')
        or diag(join("\n", keys %texts));
}

my $stop = $s->stop;
ok($stop->{graceful}, 'nginx exits on QUIT');
my @bad = $s->bad_log_lines(errors => 1);
ok(!@bad, 'no [error], [alert], [crit] or [emerg] in the log')
    or diag(join("\n", @bad));

done_testing();
