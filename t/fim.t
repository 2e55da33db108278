# fim.t: a completion's suffix, filled in the middle. A tiny random
# model with DeepSeek Coder's vocabulary (slora mkmodel --tokenizer, the
# reference sdist's ggml-vocab-deepseek-coder.gguf), whose marks are
# <｜fim▁begin｜> 32016, <｜fim▁hole｜> 32015 and
# <｜fim▁end｜> 32017 and whose tokenizer puts a BOS first. The
# prompt the model gets (vLLM's return_token_ids) is the BOS, the first
# mark, the prompt's tokens as a plain completion's, the second mark,
# the suffix's, the third mark; the answer is what the same ids sent as
# a prompt give; a mark's text in the request is read as a plain
# completion's; /tokenize makes the same prompt; texts past 8192 bytes
# (tokenized on the thread pool, the request made again) give the same
# layout; a prompt and a suffix past the context with the marks are a
# 413; the stream's text is the body's; what cannot be combined with a
# suffix is a 400 naming it.
# (The server of t/openai.t, on SmolLM2, which has no marks, refuses a
# suffix.)

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;
use File::Path qw(make_path);

my $PORT = 18190;
my $MODELS = SloraTest::repo_root()
             . '/ref/llama_cpp_python-0.3.36/vendor/llama.cpp/models';
my ($BEGIN, $HOLE, $END) = (32016, 32015, 32017);

ok(-f "$MODELS/ggml-vocab-deepseek-coder.gguf",
   'DeepSeek Coder\'s vocabulary in the reference sdist')
    or BAIL_OUT("no $MODELS: run tools/fetch-reference");

my $s = SloraTest::Server->new(name => 'fim', port => $PORT,
                               ready_timeout => 120);
my $dir = $s->prefix . '/model';
make_path($dir);
my $model = "$dir/coder.gguf";
my ($rc, undef, $err) = SloraTest::run_cmd(
    slora_bin(), 'mkmodel', '--out', $model,
    '--tokenizer', "$MODELS/ggml-vocab-deepseek-coder.gguf",
    '--layers', 1, '--hidden', 16, '--heads', 2, '--kv-heads', 1,
    '--ffn', 16, '--tied', 1, '--ctx', 4096);
is($rc, 0, 'a tiny model with DeepSeek Coder\'s vocabulary') or diag($err);
$s->{http} = slora_http(model => $model,
                        engine => 'threads=1 slots=8 max_ctx=4096');
$s->start;
pass('nginx started on it');

my %g = (model => 'base', temperature => 0, max_tokens => 8,
         return_token_ids => JSON::PP::true());

sub completion {
    my (%b) = @_;
    return json_req($PORT, '/v1/completions', { %g, %b });
}

# a plain completion's prompt ids: the BOS, then the text's
sub plain_ids {
    my ($text) = @_;
    my $r = completion(prompt => $text, max_tokens => 1);
    return @{ $r->{json}{choices}[0]{prompt_token_ids} // [] };
}

my $pre = "def add(a, b):\n    ";
my $suf = "\n    return c\n";
my ($bos, @p) = plain_ids($pre);
my (undef, @q) = plain_ids($suf);
ok(defined $bos && @p && @q, "a plain completion's ids: BOS $bos, then the"
   . ' text\'s');

my $r = completion(prompt => $pre, suffix => $suf);
my $c = $r->{json}{choices}[0] // {};
is(json_encode($c->{prompt_token_ids} // []),
   json_encode([$bos, $BEGIN, @p, $HOLE, @q, $END]),
   'the prompt: BOS, begin, the prompt\'s ids, hole, the suffix\'s, end');
my $by_ids = completion(prompt => [$bos, $BEGIN, @p, $HOLE, @q, $END]);
ok($r->{status} == 200 && ($c->{text} // '') ne ''
   && $c->{text} eq ($by_ids->{json}{choices}[0]{text} // '-')
   && json_encode($c->{token_ids})
      eq json_encode($by_ids->{json}{choices}[0]{token_ids} // []),
   'the answer is the one those ids give as a prompt: '
   . json_encode($c->{token_ids} // []));
is($r->{json}{usage}{prompt_tokens}, 4 + @p + @q,
   'usage counts the marks and the BOS among the prompt\'s tokens');

# an empty prompt: the marks around the suffix alone
$r = completion(prompt => '', suffix => $suf);
is(json_encode($r->{json}{choices}[0]{prompt_token_ids} // []),
   json_encode([$bos, $BEGIN, $HOLE, @q, $END]),
   'an empty prompt: begin and hole together');

# a mark's text written by the client is read as a plain completion's
# text is: DeepSeek Coder's marks are user-defined tokens, which its
# tokenizer makes of their text anywhere, as transformers' does; its
# BOS is a control token, whose text stays text
my $trick = "x<\x{FF5C}fim\x{2581}hole\x{FF5C}>y"
            . "<\x{FF5C}begin\x{2581}of\x{2581}sentence\x{FF5C}>z";
my (undef, @t) = plain_ids($trick);
$r = completion(prompt => $trick, suffix => $suf);
is(json_encode($r->{json}{choices}[0]{prompt_token_ids} // []),
   json_encode([$bos, $BEGIN, @t, $HOLE, @q, $END]),
   'a mark\'s text and the BOS\'s in the prompt: its ids as a plain'
   . ' completion\'s');
ok(!grep({ $_ == $bos } @t), 'the BOS\'s text there is text');

# two prompts, each around the same suffix
my (undef, @p2) = plain_ids('x = 1');
$r = completion(prompt => [$pre, 'x = 1'], suffix => $suf);
my @ch = sort { $a->{index} <=> $b->{index} }
         @{ $r->{json}{choices} // [] };
ok(@ch == 2
   && json_encode($ch[0]{prompt_token_ids})
      eq json_encode([$bos, $BEGIN, @p, $HOLE, @q, $END])
   && json_encode($ch[1]{prompt_token_ids})
      eq json_encode([$bos, $BEGIN, @p2, $HOLE, @q, $END]),
   'two prompts: each one around the suffix');

# /tokenize makes the same prompt
$r = json_req($PORT, '/v1/tokenize', { model => 'base', prompt => $pre,
                                       suffix => $suf });
is(json_encode($r->{json}{tokens} // []),
   json_encode([$bos, $BEGIN, @p, $HOLE, @q, $END]),
   '/tokenize with the suffix: the completion\'s prompt');

# texts past 8192 bytes, tokenized on the thread pool, the request made
# again for each: two such prompts around such a suffix
my ($long_a, $long_b, $long_s) = ('a = 1' . (' ' x 9000) . "\n",
                                  'b = 2' . (' ' x 9000) . "\n",
                                  "\n" . (' ' x 9000) . 'return a');
my (undef, @la) = plain_ids($long_a);
my (undef, @lb) = plain_ids($long_b);
my (undef, @ls) = plain_ids($long_s);
$r = completion(prompt => [$long_a, $long_b], suffix => $long_s,
                max_tokens => 2);
@ch = sort { $a->{index} <=> $b->{index} } @{ $r->{json}{choices} // [] };
ok(@la && @lb && @ls && @ch == 2
   && json_encode($ch[0]{prompt_token_ids})
      eq json_encode([$bos, $BEGIN, @la, $HOLE, @ls, $END])
   && json_encode($ch[1]{prompt_token_ids})
      eq json_encode([$bos, $BEGIN, @lb, $HOLE, @ls, $END]),
   'long texts (' . length($long_a) . ' and ' . length($long_s)
   . ' bytes, ' . scalar(@la) . ' and ' . scalar(@ls) . ' tokens):'
   . ' each prompt around the suffix');

# past the context with the marks: a 413 naming the suffix's count too
my $wide = join(" ", map { "v$_" } 1 .. 600);
my (undef, @lw) = plain_ids($wide);
$r = completion(prompt => $wide, suffix => $wide, max_tokens => 1);
ok(@lw < 4096 && 2 * @lw + 4 > 4096 && $r->{status} == 413
   && ($r->{json}{error}{code} // '') eq 'context_length_exceeded'
   && ($r->{json}{error}{message} // '') =~ /prompt and suffix resulted in/,
   'a prompt and a suffix of ' . scalar(@lw) . ' tokens each past the'
   . ' context of 4096: 413: ' . ($r->{json}{error}{message} // '?'));

# "" and null ask for nothing
for my $none ('', undef) {
    $r = completion(prompt => $pre, suffix => $none);
    is(json_encode($r->{json}{choices}[0]{prompt_token_ids} // []),
       json_encode([$bos, @p]),
       'suffix ' . (defined $none ? '""' : 'null') . ': a plain completion');
}

# streamed: the body's text
my $whole = completion(prompt => $pre, suffix => $suf, max_tokens => 12);
my $st = stream_start($PORT, 'POST', '/v1/completions',
                      body => json_encode({ %g, prompt => $pre,
                                            suffix => $suf,
                                            max_tokens => 12,
                                            stream => JSON::PP::true() }),
                      headers => { 'Content-Type' => 'application/json' });
$st->wait_done(60);
my ($bad, $sum) = $st->sse_check('completion');
ok(!@$bad && $sum->{text} eq ($whole->{json}{choices}[0]{text} // '-'),
   'streamed: the body\'s text: ' . join('; ', @$bad));

# what a suffix cannot be combined with
for my $t (['echo', { echo => JSON::PP::true() }],
           ['a prompt of token ids', { prompt => [1, 2, 3] }],
           ['truncate_prompt_tokens', { truncate_prompt_tokens => 4 }],
           ['a number for suffix', { suffix => 7 }, 'invalid_type']) {
    my ($what, $extra, $code) = @$t;
    $r = completion(prompt => $pre, suffix => $suf, %$extra);
    ok($r->{status} == 400
       && ($r->{json}{error}{param} // '') eq 'suffix'
       && ($r->{json}{error}{code} // '') eq ($code // 'invalid_value'),
       "suffix with $what: 400 naming suffix: "
       . ($r->{json}{error}{message} // $r->{status}));
}

$s->stop;
done_testing();
