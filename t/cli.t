# cli.t: the slora tool's benchmark and conformance commands, run as a
# user runs them, on the CPU.
#
# What it shows: `slora conform` with the CPU as both device and
# reference agrees with itself (alone, batched, and across two engines);
# its batched run starts every request in one step even with several
# adapter loader threads; it measures the drift between two runs' margins
# (none between identical arithmetic; some between the CPU's Q8_0 and
# exact paths, with a verdict on each parting), also on a random model
# spec, and says so; and with sampled requests (the backend's draws
# equal the host sampler's). $SLORA_STEP_LOG writes a CSV line a step.
# `slora bench --batches` prints one line per batch size and adapter
# setting (with the full step: all the batch decoding), over a catalog
# of random adapters made in memory; the batched run counts its full
# steps apart; `slora bench --long-prompt` gives each run's first
# request a longer prompt; `slora bench --preload 1` reads the adapters
# into host memory before the timed run, which then reads none (every
# upload from host memory), as many as --host-cache holds. `slora
# replay` plays a trace at its arrival times and reports as loadgen
# does, early abort included; `slora mkadapter --count --ranks` writes the
# folders with ranks in turn; `slora conform --lookup 1` drafts on the device
# under test and still agrees; `slora generate --json-schema` answers with an
# object the schema admits and refuses a keyword it cannot enforce; bad option
# values are refused by name. `slora bench --batches` says when the pool
# never held a batch in flight; bench/steps.py and bench/kernel-times.py
# sum up a step log and an Nsight Compute CSV of a decode step's kernels.
# `slora bench --lookup 1` drafts from the requests' own tokens: the same
# tokens generated, some of them drafts taken, and says how many.

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;
use File::Temp qw(tempdir);
use JSON::PP;

my $slora = repo_root() . '/bin/slora';
ok(-x $slora, 'bin/slora is built') or BAIL_OUT('run make first');

my $model = tiny_model();

# slora bench --batches' row of BATCH requests over ADAPTERS adapters:
# its decode step, on device, host rows and full step columns (ms), or
# undef where the output has no such row
sub bench_row {
    my ($out, $batch, $adapters) = @_;
    my @c = $out =~ /^\s+$batch\s+$adapters\s+([\d.]+) ms\s+([\d.]+) ms\s+([\d.]+) ms\s+([\d.]+) ms\s/m
        or return undef;
    return { decode => $c[0], device => $c[1], rows => $c[2],
             full => $c[3] };
}

# conform: CPU against CPU, two adapters of a random catalog
{
    my ($rc, $out, $err) = SloraTest::run_cmd(
        $slora, 'conform', '--model', $model, '--device', 'cpu',
        '--ref', 'cpu', '--threads', '1', '--requests', '4', '--gen', '8',
        '--adapters', 'random:n=3,ranks=4+8,targets=q+v');
    is($rc, 0, 'conform cpu vs cpu exits 0') or diag("$out\n$err");
    like($out, qr/ALL EQUAL\s*$/, '... and says ALL EQUAL');
    my @rows = grep { /^\s+\d+\s+(none|yes)\s+batched equal \| equal/ }
               split /\n/, $out;
    is(scalar @rows, 4, '... one equal row per request') or diag($out);
    like($out, qr/^drift, device against reference: 0\.0000 at most, 0\.0000 at the 99th percentile, over 32 agreeing steps$/m,
         '... no drift between two exact runs, over all 4 x 8 steps')
        or diag($out);
    like($out, qr/^adapters on cpu: request 1 .*request 3 [^\n]*$/m,
         '... and says, request by request, what the adapters change')
        or diag($out);
    like($out, qr/^adapters on cpu: .*parts from without at \d+/m,
         '... where they move tokens from the base model\'s')
        or diag($out);
}

# conform with adapters too small to move a token: no evidence for the
# LoRA path, so neither ALL EQUAL nor exit 0
{
    my ($rc, $out, $err) = SloraTest::run_cmd(
        $slora, 'conform', '--model', $model, '--device', 'cpu',
        '--ref', 'cpu', '--threads', '1', '--requests', '4', '--gen', '8',
        '--adapters', 'random:n=3,ranks=4+8,targets=q+v,scale=0.000001');
    is($rc >> 8, 3, 'conform with inert adapters exits 3')
        or diag("$out\n$err");
    like($out, qr/^adapters on cpu: request 1 as without, request 2 as without, request 3 as without$/m,
         '... no request parts from the base model') or diag($out);
    like($out, qr/ADAPTERS INERT\s*$/, '... and says ADAPTERS INERT')
        or diag($out);
}

# conform --logprobs: two exact runs give the same log-probabilities;
# the quantized path's differ from the exact one's, a little
{
    my @cmd = ($slora, 'conform', '--model', $model, '--device', 'cpu',
               '--ref', 'cpu', '--threads', '1', '--requests', '3',
               '--gen', '8', '--logprobs', '1');
    my ($rc, $out, $err) = SloraTest::run_cmd(@cmd);
    like($out, qr/^logprobs, device against reference: 0\.0000 at most, 0\.0000 on average, over 8 agreeing tokens$/m,
         'conform --logprobs: exact runs, the same figures for request '
         . '1\'s 8 tokens') or diag("$out\n$err");
    like($out, qr/^prompt logprobs, device against reference: 0\.0000 at most, 0\.0000 on average, over 31 positions$/m,
         '... and for its prompt\'s 31 positions after the first')
        or diag("$out\n$err");
    ($rc, $out, $err) = SloraTest::run_cmd(@cmd, '--weights', 'q8_0');
    my ($gap, $n) = $out =~ /^logprobs, device against reference: ([\d.]+) at most, [\d.]+ on average, over (\d+) agreeing tokens$/m;
    ok(defined $gap && $gap > 0 && $gap < 0.1 && $n > 0,
       'q8_0 against f32: log-probabilities apart, a little ('
       . ($gap // '?') . " over " . ($n // '?') . ' tokens)')
        or diag("$out\n$err");
    my ($pgap) = $out =~ /^prompt logprobs, device against reference: ([\d.]+) at most, [\d.]+ on average, over 31 positions$/m;
    ok(defined $pgap && $pgap > 0 && $pgap < 0.1,
       '... and the prompt\'s too (' . ($pgap // '?') . ')')
        or diag("$out\n$err");
}

# conform --lookup: the device under test drafts from each request's own
# tokens, alone and batched, adapters among them; its tokens are still
# the reference's, and it says how many drafts it took
{
    my ($rc, $out, $err) = SloraTest::run_cmd(
        $slora, 'conform', '--model', $model, '--device', 'cpu',
        '--ref', 'cpu', '--threads', '1', '--requests', '4', '--gen', '64',
        '--adapters', 'random:n=3,ranks=4+8,targets=q+v', '--lookup', '1');
    is($rc, 0, 'conform --lookup exits 0') or diag("$out\n$err");
    like($out, qr/ALL EQUAL\s*$/, '... and says ALL EQUAL');
    my ($alone, $batched) = $out =~ /^lookup's drafts on cpu: alone (\d+) tokens taken, \d+ rejected; batched (\d+) taken, \d+ rejected$/m;
    ok(defined $alone && $alone > 0 && $batched > 0,
       '... with draft tokens taken alone (' . ($alone // '?')
       . ') and batched (' . ($batched // '?') . ')') or diag($out);
}

# conform --penalties: the odd-numbered requests sampled on the host from
# their own histories, beside the others, alone and batched alike
{
    my ($rc, $out, $err) = SloraTest::run_cmd(
        $slora, 'conform', '--model', $model, '--device', 'cpu',
        '--ref', 'cpu', '--threads', '1', '--requests', '4', '--gen', '8',
        '--adapters', 'random:n=3,ranks=4+8,targets=q+v',
        '--penalties', '1.5,-0.5,1.3');
    is($rc, 0, 'conform --penalties exits 0') or diag("$out\n$err");
    like($out,
         qr/^cpu on 1 GPU\(s\) against cpu on 1, greedy, with penalties$/m,
         '... says the requests carry penalties');
    like($out, qr/ALL EQUAL\s*$/, '... and ALL EQUAL, batched as alone');
    ($rc, $out, $err) = SloraTest::run_cmd(
        $slora, 'conform', '--model', $model, '--penalties', '3,0,1');
    ok($rc >> 8 == 1 && $err =~ /--penalties "3,0,1": not F,P,R/,
       "a penalty out of range is refused: $err");
}

# conform --weights q8_0: the quantized path against the exact one drifts;
# batched against alone on the same path does not; each parting (if the
# drift makes one) gets a verdict from the measured drift
{
    my ($rc, $out, $err) = SloraTest::run_cmd(
        $slora, 'conform', '--model', $model, '--device', 'cpu',
        '--weights', 'q8_0', '--ref', 'cpu', '--threads', '1',
        '--requests', '8', '--gen', '32',
        '--adapters', 'random:n=3,ranks=4+8,targets=q+v');
    is($rc >> 8, 2, 'conform --weights q8_0 runs through and says PARTS')
        or diag("$out\n$err");
    like($out, qr/^drift, device batched against alone: 0\.0000 at most/m,
         '... batched against alone: no drift');
    my ($drift, $steps) = $out =~
        /^drift, device against reference: ([\d.]+) at most, [\d.]+ at the 99th percentile, over (\d+) agreeing steps$/m;
    ok(defined $drift && $drift > 0, "... against exact f32: drift "
       . ($drift // 'none') . ' > 0') or diag($out);
    my $parts = () = $out =~ /\| parts at/g;
    my @verdicts = $out =~ /^  request \d+ parts at \d+, margin ([\d.]+): (within|beyond) the drift/mg;
    ok($parts > 0, "... the drift parts some of 8 requests ($parts)")
        or diag($out);
    is(scalar(@verdicts) / 2, $parts, '... a verdict for each parting')
        or diag($out);
    for (my $i = 0; $i < @verdicts; $i += 2) {
        is($verdicts[$i + 1], $verdicts[$i] <= $drift ? 'within' : 'beyond',
           "... margin $verdicts[$i] against drift $drift");
    }
    ok($steps > 0 && $steps < 8 * 32,
       "... over the steps before the partings ($steps of 256)");
}

# conform's batched run is one batch every run: with several loader
# threads a request for an adapter on disk would wait for its read and
# join a later step, which one depending on the read's time; conform
# reads the adapters first, so the four requests start in one step
{
    my $dir = tempdir(CLEANUP => 1);
    my ($rc, $out, $err) = SloraTest::run_cmd(
        $slora, 'mkadapter', '--model', $model, '--out', "$dir/ad",
        '--count', '3', '--ranks', '4,8,4', '--targets', 'q,v');
    is($rc, 0, 'mkadapter for the batched conform') or diag($err);
    my $log = "$dir/steps.csv";
    local $ENV{SLORA_STEP_LOG} = $log;
    ($rc, $out, $err) = SloraTest::run_cmd(
        $slora, 'conform', '--model', $model, '--device', 'cpu',
        '--ref', 'cpu', '--threads', '1', '--prefetch-threads', '4',
        '--requests', '4', '--prompt-len', '8', '--gen', '4',
        '--adapters', "$dir/ad");
    is($rc, 0, 'conform with 4 loader threads exits 0') or diag("$out\n$err");
    like($out, qr/ALL EQUAL\s*$/, '... and says ALL EQUAL');
    my @rows = map { [split /,/] } grep { !/^ms,/ }
               split /\n/, SloraTest::_slurp($log) // '';
    is(scalar(grep { $_->[3] == 4 && $_->[4] == 32 } @rows), 2,
       '... both batched runs take the 4 prompts in one step')
        or diag(join("\n", map { join(',', @$_[3 .. 5]) } @rows));
}

# conform --sample: the CPU backend's own draws against the host
# sampler's over the reference's logits, alone and batched
{
    my ($rc, $out, $err) = SloraTest::run_cmd(
        $slora, 'conform', '--model', $model, '--device', 'cpu',
        '--ref', 'cpu', '--threads', '1', '--requests', '3', '--gen', '8',
        '--adapters', 'random:n=2,ranks=4+8,targets=q+v', '--sample', '0.9');
    is($rc, 0, 'conform --sample exits 0') or diag("$out\n$err");
    like($out, qr/against cpu on 1, sampled\n/, '... says sampled');
    like($out, qr/ALL EQUAL\s*$/, '... and ALL EQUAL');
}

# conform on a model named by a random spec
{
    my ($rc, $out, $err) = SloraTest::run_cmd(
        $slora, 'conform', '--model',
        'random:smollm2-135m,layers=1,vocab=256,seed=1',
        '--device', 'cpu', '--ref', 'cpu', '--threads', '1',
        '--requests', '2', '--gen', '6');
    is($rc, 0, 'a random model conforms to itself') or diag("$out\n$err");
}

# generate's penalties: the tiny model's greedy answer repeats nothing;
# a negative presence penalty raises what it has said, so it repeats
{
    my @cmd = ($slora, 'generate', '--model', $model, '--threads', '1',
               '--prompt', 'one two three', '--max-tokens', '16', '--ids', '1');
    my ($rc, $plain) = SloraTest::run_cmd(@cmd);
    my ($rc2, $neg) = SloraTest::run_cmd(@cmd, '--presence-penalty', '-2');
    my %n;
    $n{$_}++ for split ' ', $neg;
    my ($most) = sort { $b <=> $a } values %n;
    my %p;
    $p{$_}++ for split ' ', $plain;
    ok($rc == 0 && $rc2 == 0 && keys(%p) == 16 && ($most // 0) > 1
       && $neg ne $plain,
       'generate --presence-penalty -2 repeats what the plain answer does '
       . "not (a token $most times)");
    my ($rc3, undef, $err) = SloraTest::run_cmd(@cmd, '--frequency-penalty',
                                                '2.5');
    ok($rc3 >> 8 == 1 && $err =~ /--frequency-penalty "2\.5": bad value/,
       "a frequency penalty past 2 is refused: $err");
}

# generate --prompt-logprobs: the prompt's log-probability over its tokens
# after the first (as many as tokenize gives, less one), and its
# perplexity; --max-tokens 0 needs it
{
    my @cmd = ($slora, 'generate', '--model', $model, '--threads', '1',
               '--max-tokens', '0', '--prompt-logprobs', '1');
    my ($rc, undef, $err) = SloraTest::run_cmd(@cmd, '--prompt',
                                               'one two three four five');
    my ($lp, $n, $ppl) = $err =~ /log-probability (-[\d.]+) over its (\d+) tokens after the first \(perplexity ([\d.]+)\)/;
    my ($rc2, $ids) = SloraTest::run_cmd($slora, 'tokenize',
        '--model', $model, '--text', 'one two three four five');
    my @ids = $ids =~ /(\d+)/g;
    ok($rc == 0 && $rc2 == 0 && defined $n && $n == @ids - 1
       && abs(exp(-$lp / $n) - $ppl) < 1e-3 * $ppl,
       "generate --prompt-logprobs: $n tokens, perplexity "
       . ($ppl // '?') . ' = exp(-log-probability / tokens)')
        or diag($err);
    my ($rc3, undef, $err3) = SloraTest::run_cmd($slora, 'generate',
        '--model', $model, '--threads', '1', '--max-tokens', '0',
        '--prompt', 'one two');
    ok($rc3 >> 8 == 1 && $err3 =~ /--max-tokens 0 needs --prompt-logprobs 1/,
       "--max-tokens 0 alone is refused: $err3");
}

# generate --json-schema: the tiny model's random answer is still one
# object the schema admits, its keys in order; a schema with a keyword the
# engine cannot enforce is refused, naming it
{
    my $schema = '{"type":"object","required":["n","tag"],"properties":'
                 . '{"n":{"type":"integer"},"tag":{"enum":["a","b"]},'
                 . '"more":{"type":"array","maxItems":2,'
                 . '"items":{"type":"boolean"}}}}';
    my ($rc, $out, $err) = SloraTest::run_cmd(
        $slora, 'generate', '--model', $model, '--threads', '1',
        '--prompt', 'one two', '--max-tokens', '120',
        '--json-schema', $schema);
    my $o = eval { JSON::PP->new->decode($out) };
    ok($rc == 0 && ref $o eq 'HASH' && $o->{n} =~ /^-?\d+$/
       && $o->{tag} =~ /^[ab]$/ && $out =~ /"n".*"tag"/s
       && (!exists $o->{more} || @{ $o->{more} } <= 2),
       'generate --json-schema: an object the schema admits: '
       . join(' ', split ' ', $out)) or diag($err);
    ($rc, undef, $err) = SloraTest::run_cmd(
        $slora, 'generate', '--model', $model, '--threads', '1',
        '--prompt', 'one two', '--json-schema',
        '{"type":"object","properties":{"n":{"type":"integer",'
        . '"multipleOf":2}}}');
    ok($rc >> 8 == 1
       && $err =~ m{"multipleOf" is not supported \(at #/properties/n\)},
       "a schema it cannot enforce is refused: $err");
}

# generate --choice: the answer is one of the texts, as it is; texts of
# which one starts another are refused
{
    my ($rc, $out, $err) = SloraTest::run_cmd(
        $slora, 'generate', '--model', $model, '--threads', '1',
        '--prompt', 'one two', '--max-tokens', '20',
        '--choice', '["red apple","green pear","blue {plum}"]');
    ok($rc == 0 && $out =~ /\A(?:red apple|green pear|blue \{plum\})\n?\z/,
       "generate --choice: one of the texts: $out") or diag($err);
    ($rc, undef, $err) = SloraTest::run_cmd(
        $slora, 'generate', '--model', $model, '--threads', '1',
        '--prompt', 'one two', '--choice', '["red","red apple"]');
    ok($rc >> 8 == 1 && $err =~ /one is the start of the other/,
       "choices of which one starts another are refused: $err");
}

# generate --regex: the answer matches the expression whole; one the
# automaton cannot hold is refused with its reason
{
    my ($rc, $out, $err) = SloraTest::run_cmd(
        $slora, 'generate', '--model', $model, '--threads', '1',
        '--prompt', 'The year the war ended was', '--max-tokens', '12',
        '--regex', ' (1[89]|20)[0-9]{2}\\.');
    ok($rc == 0 && $out =~ /\A (?:1[89]|20)[0-9]{2}\.\n?\z/,
       "generate --regex: a whole match: $out") or diag($err);
    ($rc, undef, $err) = SloraTest::run_cmd(
        $slora, 'generate', '--model', $model, '--threads', '1',
        '--prompt', 'one two', '--regex', '(a)\\1');
    ok($rc >> 8 == 1 && $err =~ /guided_regex: back references are not/,
       "a regex with a back reference is refused: $err");

    # a long bounded repeat (an answer of up to 500 characters) is held,
    # not refused as too large
    ($rc, $out, $err) = SloraTest::run_cmd(
        $slora, 'generate', '--model', $model, '--threads', '1',
        '--prompt', 'Describe the sea in a few words:', '--max-tokens', '8',
        '--regex', '[a-z ]{1,500}');
    ok($rc == 0 && $out =~ /\A[a-z ]{1,500}\n?\z/,
       "generate --regex '[a-z ]{1,500}': an answer of its class: $out")
        or diag($err);
}

# $SLORA_STEP_LOG: one CSV line a step, appended, the header once
{
    my $log = "/tmp/slora-steps-$$.csv";
    unlink $log;
    local $ENV{SLORA_STEP_LOG} = $log;
    for my $run (1, 2) {
        my ($rc, $out, $err) = SloraTest::run_cmd(
            $slora, 'generate', '--model', $model, '--threads', '1',
            '--prompt', 'one two three', '--max-tokens', '5', '--ids', '1');
        is($rc, 0, "generate with a step log, run $run") or diag($err);
    }
    my @lines = split /\n/, SloraTest::_slurp($log) // '';
    unlink $log;
    is($lines[0], 'ms,host_ms,run_ms,items,prefill,decode,running,waiting,'
                  . 'failed,install_ms,resolve_ms,plan_ms,warm_ms,device_ms,'
                  . 'captured,setup_ms,pairs,attention_ms,rows_ms',
       '... the header first');
    is(scalar(grep { /^ms,/ } @lines), 1, '... and once over two runs');
    my @rows = map { [split /,/] } grep { !/^ms,/ } @lines;
    is(scalar @rows, 10, '... 5 steps a run: the prompt, then 4 decodes');
    is_deeply([map { "$_->[4]/$_->[5]" } @rows[0 .. 4]],
              ['3/0', '0/1', '0/1', '0/1', '0/1'],
              '... prefill / decode tokens of each step')
        or diag(join("\n", @lines));
    is($rows[4][6], 0, '... nothing running after the last step');
    ok(!grep({ $_->[1] < 0 || $_->[2] <= 0 } @rows),
       '... host and forward times');
    ok(!grep({ my $r = $_; my $parts = 0; $parts += $r->[$_] for 9 .. 12;
               @$r != 19 || grep({ $r->[$_] < 0 } 9 .. 12)
               || abs($parts - $r->[1]) > 0.01 } @rows),
       '... and the host time\'s four parts, which add up to it')
        or diag(join("\n", @lines));
    ok(!grep({ $_->[13] ne '0.000' } @rows),
       '... and no device time on the CPU') or diag(join("\n", @lines));
    ok(!grep({ $_->[14] ne '0' } @rows),
       '... nor graph captures') or diag(join("\n", @lines));
    ok(!grep({ $_->[15] ne '0.000' } @rows),
       '... nor GEMM plans') or diag(join("\n", @lines));
    is_deeply([map { $_->[16] } @rows[0 .. 4]], [6, 4, 5, 6, 7],
              '... the attention work: 1 + 2 + 3 keys for the prompt, '
              . 'then its context for each token')
        or diag(join("\n", @lines));
    ok(!grep({ $_->[17] <= 0 || $_->[17] > $_->[2] } @rows),
       '... and the CPU\'s time in attention, within the forward\'s')
        or diag(join("\n", @lines));
    ok(!grep({ $_->[18] < 0 || $_->[18] > $_->[2] } @rows),
       '... and the host rows\' time, within the forward\'s')
        or diag(join("\n", @lines));

    # bench/steps.py reads it back: 10 steps, the parts named
    open(my $f, '>', $log) or die;
    print $f join("\n", @lines), "\n";
    close $f;
    my ($rc, $out, $err) = SloraTest::run_cmd('python3', 'bench/steps.py',
                                              '--top', '2', $log);
    unlink $log;
    ok($rc == 0 && $out =~ /^== \S+: 10 steps$/m
       && $out =~ /^total: .*\(host: install [\d.]+ s, resolve [\d.]+ s, plan [\d.]+ s, warm [\d.]+ s\)$/m
       && $out !~ /captured/ && $out !~ /GEMM plans/
       && (() = $out =~ /^  at /mg) == 2,
       '... and bench/steps.py sums it up') or diag("$out\n$err");

    # a GPU's log marks the steps that captured a decode graph (two
    # here) and those that made GEMM plans (the first, 84.5 ms)
    my @gpu = @lines;
    for my $i (1 .. 3) {
        my @c = split /,/, $gpu[$i];
        $c[14] = 1 if $i >= 2;
        $c[15] = '84.500' if $i == 1;
        $gpu[$i] = join ',', @c;
    }
    open($f, '>', $log) or die;
    print $f join("\n", @gpu), "\n";
    close $f;
    ($rc, $out, $err) = SloraTest::run_cmd('python3', 'bench/steps.py', $log);
    unlink $log;
    ok($rc == 0 && $out =~ /^total: .*\(2 steps captured a decode graph: forward [\d.]+ s\) \(1 steps made GEMM plans: 0\.085 s\)/m,
       '... which counts the steps that captured a graph and made plans')
        or diag("$out\n$err");
}

# bench --batches over 2000 random adapters, base then adapters
{
    my ($rc, $out, $err) = SloraTest::run_cmd(
        $slora, 'bench', '--model', $model, '--threads', '1',
        '--adapters', 'random:n=2000,ranks=8+16,targets=q+k+v+o',
        '--prompt-len', '8', '--gen', '4', '--single', '0',
        '--batches', '1,4');
    is($rc, 0, 'bench --batches exits 0') or diag("$out\n$err");
    my @rows = grep { /^\s+\d+\s+\d+\s+[\d.]+ ms/ } split /\n/, $out;
    is(scalar @rows, 4, '... 2 sizes x (base, adapters): 4 rows')
        or diag($out);
    like($rows[3] // '', qr/^\s+4\s+2000\s/,
         '... the last at batch 4 over 2000 adapters');
    is(scalar(grep { /^\s+\d+\s+\d+\s+[\d.]+ ms\s+0\.000 ms\s/ } @rows), 4,
       '... none with device time on the CPU') or diag($out);

    # the full step: decode-only steps with every request decoding; at
    # batch 1 every decode-only step is one, at 4 at least one is
    for my $b (1, 4) {
        for my $a (0, 2000) {
            my $row = bench_row($out, $b, $a) // {};
            my $full = $row->{full};
            ok(defined $full && $full > 0, "... a full step at batch $b ("
               . ($full // 'none') . ' ms)') or diag($out);
            is($full, $row->{decode}, '... at batch 1 the mean decode step')
                if $b == 1;
        }
    }
}

# a batch the pool cannot hold in flight at once: the row's steps are
# of smaller batches, no full step, and a line after the row says so
# (a 1 MiB pool holds some 2000 of the tiny model's tokens: four
# prompts of 408, not eight)
{
    my ($rc, $out, $err) = SloraTest::run_cmd(
        $slora, 'bench', '--model', $model, '--threads', '1',
        '--prompt-len', '400', '--gen', '8', '--single', '0',
        '--batches', '4,8', '--pool', '1');
    is($rc, 0, 'bench --batches 4,8 in a 1 MiB pool exits 0')
        or diag("$out\n$err");
    my $full4 = (bench_row($out, 4, 0) // {})->{full};
    my $full8 = (bench_row($out, 8, 0) // {})->{full};
    ok(defined $full4 && $full4 > 0, '... batch 4 held: a full step ('
       . ($full4 // 'none') . ' ms)') or diag($out);
    is($full8, '0.000', '... batch 8 never all in flight: no full step')
        or diag($out);
    unlike($out, qr/^batch 4:/m, '... no word on batch 4');
    my ($most) = $out =~ /^batch 8: no step decoded all 8 at once \(at most (\d+): the pool's room\), so the row above is of smaller batches$/m;
    ok(defined $most && $most >= 4 && $most < 8,
       '... and a line after batch 8\'s row says it held at most '
       . ($most // 'none')) or diag($out);
}

# the host rows column: a decode step's rows worked out on the host (a
# presence penalty on every request here) take time, greedy ones none
{
    my %rows;
    for my $pen (0, 4) {
        my ($rc, $out, $err) = SloraTest::run_cmd(
            $slora, 'bench', '--model', $model, '--threads', '1',
            '--prompt-len', '8', '--gen', '8', '--single', '0',
            '--batches', '4', '--penalized', $pen);
        $rows{$pen} = (bench_row($out, 4, 0) // {})->{rows};
        ok($rc == 0 && defined $rows{$pen},
           "bench --penalized $pen: a host rows figure ("
           . ($rows{$pen} // 'none') . ' ms)') or diag("$out\n$err");
    }
    ok(($rows{4} // 0) > 0 && ($rows{0} // 1) < ($rows{4} // 0),
       '... some with four penalized rows a step, less without');
}

# the batched run's full steps: 6 requests, 4 in flight, 8 tokens each:
# the first 4 decode together for 7 steps (full), the last 2 for 7 more
# (not full: 2 of the 4 in flight)
{
    my ($rc, $out, $err) = SloraTest::run_cmd(
        $slora, 'bench', '--model', $model, '--threads', '1',
        '--prompt-len', '8', '--gen', '8', '--single', '0',
        '--requests', '6', '--concurrency', '4');
    is($rc, 0, 'bench of 6 requests, 4 in flight, exits 0')
        or diag("$out\n$err");
    like($out, qr/^decode-only steps: 14, mean [\d.]+ ms at a mean batch of 3\.0; 7 of them full \(every request in flight decoding\), mean [\d.]+ ms$/m,
         '... 14 decode-only steps, the 7 of the first four full')
        or diag($out);
}

# bench --lookup 1: the tiny model's greedy answers of 200 tokens repeat
# themselves here and there, so some tokens are drafts taken; without it
# no drafts, and the same number of tokens either way
{
    my %out;
    for my $lookup (0, 1) {
        my ($rc, $out, $err) = SloraTest::run_cmd(
            $slora, 'bench', '--model', $model, '--threads', '1',
            '--prompt-len', '16', '--gen', '200', '--single', '0',
            '--requests', '4', '--concurrency', '4', '--lookup', $lookup);
        is($rc, 0, "bench --lookup $lookup exits 0") or diag("$out\n$err");
        $out{$lookup} = $out;
        like($out,
             qr/^batched: 4 requests, 4 in flight, 0 adapters: 800 tokens in /m,
             '... 800 tokens generated') or diag($out);
    }
    unlike($out{0}, qr/^lookup:/m, '... no drafts without --lookup')
        or diag($out{0});
    my ($taken, $left) = $out{1} =~ /^lookup: (\d+) of 800 tokens generated were drafts taken; (\d+) drafted tokens computed and not taken$/m;
    ok(defined $taken && $taken > 0 && $taken < 800,
       '... with it some are drafts taken (' . ($taken // 'none') . ')')
        or diag($out{1});
}

# bench --long-prompt: the first request's prompt is that long (1100
# tokens over a step budget of 512 take three prefill steps where 8 took
# one), the rest as --prompt-len
{
    my %steps;
    for my $long (0, 1100) {
        my ($rc, $out, $err) = SloraTest::run_cmd(
            $slora, 'bench', '--model', $model, '--threads', '1',
            '--prompt-len', '8', '--gen', '8', '--single', '0',
            '--requests', '4', '--concurrency', '4',
            '--long-prompt', $long);
        ($steps{$long}) = $out =~ /^steps: (\d+),/m;
        ok($rc == 0 && defined $steps{$long},
           "bench --long-prompt $long exits 0 ("
           . ($steps{$long} // 'no') . ' steps)') or diag("$out\n$err");
    }
    cmp_ok($steps{1100} // 0, '>=', ($steps{0} // 99) + 2,
           '... the long prompt takes two more steps at least');
}

# bench --preload: the timed run's adapter loads and uploads
{
    my @bench = ($slora, 'bench', '--model', $model, '--threads', '1',
                 '--prompt-len', '8', '--gen', '4', '--single', '0',
                 '--requests', '40', '--concurrency', '8');
    my $ad = 'random:n=20,ranks=4+8,targets=q+k+v+o';
    my $loads = qr/adapter\sloads\s(\d+),\suploads\s(\d+)
                   \s\((\d+)\sahead\sof\sneed,\s(\d+)\sat\sadmission
                   \sfrom\shost\smemory\)/x;

    my ($rc, $out, $err) = SloraTest::run_cmd(@bench, '--adapters', $ad);
    is($rc, 0, 'bench without preload exits 0') or diag("$out\n$err");
    unlike($out, qr/^preload:/m, '... and preloads nothing');
    my ($l, $u, $w, $h) = $out =~ $loads;
    is($l, 20, '... its run reads each of the 20 adapters') or diag($out);

    ($rc, $out, $err) = SloraTest::run_cmd(@bench, '--adapters', $ad,
                                           '--preload', '1');
    is($rc, 0, 'bench --preload 1 exits 0') or diag("$out\n$err");
    like($out, qr/^preload:\s20\sof\s20\sadapters\sin\shost\smemory,
                  \s[\d.]+\sof\s1024\sMiB,\sin\s[\d.]+\ss$/mx,
         '... says all 20 are in host memory') or diag($out);
    ($l, $u, $w, $h) = $out =~ $loads;
    is($l, 0, '... its run reads no adapter') or diag($out);
    ok(defined $u && $u >= 20 && $w + $h == $u,
       "... every upload from host memory, $w ahead of need and $h at "
       . "admission (of $u)") or diag($out);

    # rank 64: a host tier of 1 MiB holds a few of them only
    ($rc, $out, $err) = SloraTest::run_cmd(
        @bench, '--adapters', 'random:n=20,ranks=64,targets=q+k+v+o',
        '--preload', '1', '--host-cache', '1', '--pool', '8');
    is($rc, 0, 'bench --preload 1 --host-cache 1 exits 0')
        or diag("$out\n$err");
    my ($p) = $out =~ /^preload:\s(\d+)\sof\s20\sadapters\sin\shost
                        \smemory,\s[\d.]+\sof\s1\sMiB/mx;
    ok(defined $p && $p > 0 && $p < 20, '... some fit, not all: '
       . ($p // 'none')) or diag($out);
    ($l, $u, $w, $h) = $out =~ $loads;
    ok(defined $l && $l == 20 - $p && $w + $h >= $p,
       "... the run reads the other $l and uploads at least the $p from "
       . "host memory ($w ahead of need, $h at admission)") or diag($out);
}

# replay: a trace against the engine alone, at its arrival times
{
    my $dir = tempdir(CLEANUP => 1);
    open(my $f, '>', "$dir/trace.csv") or die;
    print $f "arrival,tenant,adapter,prompt_tokens,output_tokens\n";
    printf $f "%.3f,,r%04d,%d,%d\n", 0.05 * $_, $_ % 3, 8 + $_, 4 + $_ % 5
        for 0 .. 9;
    close $f;

    my @replay = ($slora, 'replay', '--model', $model, '--threads', '1',
                  '--trace', "$dir/trace.csv", '--adapters',
                  'random:n=3,ranks=4+8,targets=q+v');
    my $line = qr/^ok\s(\d+),\s429\s(\d+),\serr\s(\d+);\sattainment
                  \s([\d.]+)%.*?;\s([\d.]+)\stokens\/s;\sttft\sp50
                  \s(\d+)\sms/mx;

    my ($rc, $out, $err) = SloraTest::run_cmd(@replay, '--slo-ttft', '600');
    is($rc, 0, 'replay exits 0') or diag("$out\n$err");
    like($out, qr/^replay:\s10\srequests\sover\s0\.5\ss/m,
         '... 10 requests over the trace\'s 0.45 s') or diag($out);
    my ($ok, $r429, $bad, $att, $tps) = $out =~ $line;
    ok(defined $ok && $ok == 10 && $r429 == 0 && $bad == 0 && $att == 100
       && $tps > 0, "... all answered, within an SLO of 600 s ($tps "
                    . 'tokens/s)')
        or diag($out);

    # two traces, one after the other on one engine, each its report
    open(my $g, '>', "$dir/second.csv") or die;
    print $g "arrival,tenant,adapter,prompt_tokens,output_tokens\n"
             . "0,,r0001,8,3\n0.02,,,6,2\n0.04,,r0002,9,4\n";
    close $g;
    ($rc, $out, $err) = SloraTest::run_cmd(@replay, '--trace',
                                           "$dir/second.csv");
    my @reports = $out =~ /^==\strace\s\S+\/(\w+)\.csv\n
                           replay:\s(\d+)\srequests.*?\n
                           ok\s(\d+),\s429\s(\d+),\serr\s(\d+);/mgsx;
    is_deeply(\@reports, ['trace', 10, 10, 0, 0, 'second', 3, 3, 0, 0],
              '... two traces play in turn, each reported whole')
        or diag("$out\n$err");

    # an SLO nothing meets: every request a miss, answered or refused
    ($rc, $out, $err) = SloraTest::run_cmd(@replay, '--schedule', 'slo',
                                           '--slo-ttft', '0.000001');
    ($ok, $r429, $bad, $att) = $out =~ $line;
    ok($rc == 0 && defined $att && $att == 0 && $ok + $r429 == 10
       && $bad == 0, '... with a 1 us SLO attainment is 0% ('
       . ($ok // '?') . ' answered late, ' . ($r429 // '?') . ' refused)')
        or diag("$out\n$err");

    # an unknown adapter fails its request only
    open($f, '>>', "$dir/trace.csv") or die;
    print $f "0.6,,nope,8,4\n";
    close $f;
    ($rc, $out, $err) = SloraTest::run_cmd(@replay);
    ($ok, $r429, $bad) = $out =~ $line;
    ok($rc == 0 && defined $ok && $ok == 10 && $bad == 1
       && $err =~ /unknown adapter "nope"/,
       '... an unknown adapter fails its request, the others run')
        or diag("$out\n$err");

    # short requests on SmolLM2, whose pages hold 24 tokens: a context of
    # 10 still gets a pool of whole pages; each tenant gets its line
    open($f, '>', "$dir/short.csv") or die;
    print $f "arrival,tenant,prompt_tokens,output_tokens\n"
             . "0,quiet,8,2\n0.01,flood,8,2\n0.02,flood,8,2\n";
    close $f;
    ($rc, $out, $err) = SloraTest::run_cmd($slora, 'replay', '--model',
                                           real_model(), '--threads', '1',
                                           '--max-running', '2',
                                           '--trace', "$dir/short.csv");
    is($rc, 0, '... a context of 10 tokens on SmolLM2 runs')
        or diag("$out\n$err");
    like($out, qr/^tenant\squiet:\s1\srequests,\s1\sok;.*\n
                  tenant\sflood:\s2\srequests,\s2\sok;/mx,
         '... one line a tenant, in order of first arrival') or diag($out);

    # a header after blank lines is still the header
    open($f, '>', "$dir/blank.csv") or die;
    print $f "\n\narrival,prompt_tokens,output_tokens\n0,8,2\n0.01,8,2\n";
    close $f;
    ($rc, $out, $err) = SloraTest::run_cmd($slora, 'replay', '--model',
                                           $model, '--threads', '1',
                                           '--trace', "$dir/blank.csv");
    ($ok, $r429, $bad) = $out =~ $line;
    ok($rc == 0 && defined $ok && $ok == 2 && $bad == 0,
       '... a header after blank lines is read as the header')
        or diag("$out\n$err");

    # a bad trace is refused naming the line
    open($f, '>', "$dir/bad.csv") or die;
    print $f "arrival,prompt_tokens,output_tokens\n0,8,4\n0.1,0,4\n";
    close $f;
    ($rc, $out, $err) = SloraTest::run_cmd($slora, 'replay', '--model',
                                           $model, '--trace', "$dir/bad.csv");
    ok(($rc >> 8) == 1
       && $err =~ /bad\.csv:3: prompt_tokens "0" is not an integer/,
       '... a prompt of 0 tokens is refused naming its line')
        or diag($err);
}

# mkadapter --count with ranks in turn
{
    my $dir = tempdir('slora-cli-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my ($rc, $out, $err) = SloraTest::run_cmd(
        $slora, 'mkadapter', '--model', $model, '--out', "$dir/set",
        '--count', '3', '--ranks', '4,12', '--targets', 'q,v');
    is($rc, 0, 'mkadapter --count 3 exits 0') or diag($err);
    my @r = map {
        my $j = json_decode_safe(SloraTest::_slurp(
            sprintf('%s/set/a%04d/adapter_config.json', $dir, $_)) // '');
        $j ? $j->{r} : undef
    } 0 .. 2;
    is_deeply(\@r, [4, 12, 4], '... ranks 4, 12, 4 in turn');
}

# bad values are refused by name
for my $c (['bench', '--batches', '0'], ['bench', '--batches', '4,x'],
           ['bench', '--preload', '2'], ['bench', '--host-cache', '0'],
           ['mkadapter', '--ranks', '8,,16'],
           ['conform', '--requests', '999'], ['conform', '--sample', '-1'],
           ['conform', '--sample', 'x'], ['conform', '--weights', 'f16'],
           ['replay', '--slo-ttft', 'nan'], ['replay', '--slo-ttft', ''],
           ['replay', '--max-running', '4294967297'],
           ['replay', '--threads', ''])
{
    my ($rc, $out, $err) = SloraTest::run_cmd(
        $slora, $c->[0], '--model', $model, $c->[1], $c->[2]);
    is($rc >> 8, 1, "$c->[0] $c->[1] $c->[2] is refused (exit 1)");
    like($err, qr/^slora \Q$c->[0]\E: \Q$c->[1] "$c->[2]"\E: /m,
         '... naming the option and its value') or diag($err);
}

# --weights is the CPU's: a GPU under test holds bf16
{
    my ($rc, $out, $err) = SloraTest::run_cmd(
        $slora, 'conform', '--model', $model, '--device', 'cuda',
        '--weights', 'q8_0');
    isnt($rc, 0, 'conform --device cuda --weights q8_0 is refused');
    like($err, qr/--weights is for a CPU device/, '... saying why')
        or diag($err);
}

# bench/kernel-times.py: an Nsight Compute CSV of a run's kernels (as
# bench/device-engine.sh kernel-times writes it), cut into steps at each
# argmax: a prompt's step and a short decode step left out, three base
# decode steps and two with LoRA summed, the LoRA shrinks said apart
{
    my $csv = ($ENV{TMPDIR} || '/tmp') . "/kernel-times-$$.csv";
    my %name = (
        pf     => 'void slora_pf_kernel<128>(int)',
        gemm   => 'sm90_xmma_gemm_bf16_tn(T1::Params)',
        dec    => 'void slora_dec_mma_kernel<128, 1>(unsigned short *, int)',
        argmax => 'void slora_argmax_kernel(int)',
        embed  => 'void slora_embed_kernel(int)',
        shrink => 'void slora_gmv_shrink<2>(float *, long)',
    );
    my @base = ([embed => 1500], [gemm => 28000], [dec => 80000],
                [argmax => 1200]);
    my @steps = (
        # a prompt's step, decode rows beside it: as many kernels as a
        # decode step, but not one
        [[pf => 5000], [gemm => 90000], [dec => 9000], [argmax => 1000]],
        (\@base) x 3,
        [[dec => 9000], [argmax => 1200]],          # a short one
        ([[embed => 1500], [shrink => 3000], @base[1 .. 3]]) x 2,
    );
    my @k = map { [$name{$_->[0]}, $_->[1]] } map { @$_ } @steps;
    open(my $f, '>', $csv) or die;
    print $f "==PROF== Connected to process 1\n";
    print $f join(',', map { qq("$_") } 'ID', 'Process ID', 'Process Name',
                  'Host Name', 'Kernel Name', 'Context', 'Stream',
                  'Block Size', 'Grid Size', 'Device', 'CC', 'Section Name',
                  'Metric Name', 'Metric Unit', 'Metric Value'), "\n";
    my $id = 0;
    for my $r (@k) {
        print $f join(',', map { qq("$_") } $id++, 1, 'slora', 'h', $r->[0],
                      1, 7, '(128, 1, 1)', '(1, 1, 1)', 0, '9.0',
                      'Command line profiler metrics',
                      'gpu__time_duration.sum', 'nsecond',
                      $r->[1] >= 1000 ? sprintf('%d,%03d', $r->[1] / 1000,
                                                $r->[1] % 1000)
                                      : $r->[1]), "\n";
    }
    close $f;
    my ($rc, $out, $err) = SloraTest::run_cmd('python3',
        'bench/kernel-times.py', $csv, '--step-ms', '0.120,0.125');
    is($rc, 0, 'bench/kernel-times.py exits 0') or diag("$out\n$err");
    like($out, qr/^base: 3 decode steps of 4 kernels; their kernels' time summed 0\.111 ms a step \(median; 0\.111-0\.111\); the step without the profiler 0\.120 ms: 0\.009 ms between kernels \(7\.7%\)$/m,
         '... three base decode steps of four kernels, their sum against '
         . 'the step') or diag($out);
    like($out, qr/^lora: 2 decode steps of 5 kernels; their kernels' time summed 0\.114 ms a step .*: 0\.011 ms between kernels \(9\.0%\)$/m,
         '... two with LoRA') or diag($out);
    like($out, qr/^  of which the decode LoRA shrinks 0\.003 ms, /m,
         '... their shrinks said apart') or diag($out);
    like($out, qr/^  slora_dec_mma_kernel +1\.0 +80\.0 +72\.3%$/m,
         '... and each kernel by its name, launches, us and share')
        or diag($out);

    # a duration in a unit it does not know: refused, not misread
    open($f, '<', $csv) or die;
    my $text = do { local $/; <$f> };
    close $f;
    $text =~ s/"nsecond"/"cycle"/g;
    open($f, '>', $csv) or die;
    print $f $text;
    close $f;
    ($rc, $out, $err) = SloraTest::run_cmd('python3',
        'bench/kernel-times.py', $csv);
    unlink $csv;
    ok($rc != 0 && $err =~ /a duration in 'cycle'/,
       '... and a unit it does not know refused') or diag("$out\n$err");
}

done_testing();
