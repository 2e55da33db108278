# SloraAdapterSet: a set of many adapters made once into t/data/gen/, and
# a request stream over it, for t/catalog_scale.t and
# bench/catalog-tiers.sh (the same arguments give both the same stream).
#
# The stream is not drawn here: loadgen_trace() runs `bench/loadgen gen`,
# the one generator of the S-LoRA paper's synthetic workload (Gamma
# arrivals with cv, adapter floor(n * power(alpha)), uniform lengths per
# request, drawn as the paper's benchmarks/trace.py draws them), and
# reads back the CSV trace it writes.  The one idea to know: loadgen
# names adapter i with the same format as adapter_name(i), so the trace
# names the folders of make_adapter_set() and the catalog entries made
# from them.  Ranks go round robin over the rank list, as S-LoRA's
# get_adapter_dirs gives them.

package SloraAdapterSet;

use strict;
use warnings;

use Exporter qw(import);
use File::Path ();

use POSIX ();
use SloraTest qw(repo_root run_cmd slora_bin);

our @EXPORT_OK = qw(adapter_name adapter_rank make_adapter_set shape_model
                    loadgen_trace);


# adapter_name(i): the folder and catalog name of adapter i; loadgen
# writes the same name with the format 'ad{i:04d}'.
sub adapter_name {
    my ($i) = @_;
    return sprintf('ad%04d', $i);
}


# adapter_rank(i, [ranks]): round robin.
sub adapter_rank {
    my ($i, $ranks) = @_;
    return $ranks->[$i % @$ranks];
}


# shape_model(layers => 2, ...): a model with tiny_model()'s layer shapes
# (same parameters, same defaults) and a 256-token vocabulary, for
# `slora mkadapter`: an adapter depends on the layer shapes only, and
# this file loads in a few ms where tiny_model()'s, with SmolLM2's
# vocabulary, takes fifty.  Made once into t/data/gen/.
sub shape_model {
    my (%o) = @_;
    my %p = (layers => 2, hidden => 64, heads => 4, kv_heads => 2,
             ffn => 128, ctx => 1024, seed => 1, %o);
    my $dir = repo_root() . '/t/data/gen';
    my $out = "$dir/" . join('-', 'shape', map { "$_$p{$_}" } sort keys %p)
              . '.gguf';

    return $out if -s $out;

    File::Path::make_path($dir);
    my $tmp = "$out.tmp$$";
    my @cmd = (slora_bin(), 'mkmodel', '--out', $tmp,
               '--layers', $p{layers}, '--hidden', $p{hidden},
               '--heads', $p{heads}, '--kv-heads', $p{kv_heads},
               '--ffn', $p{ffn}, '--ctx', $p{ctx}, '--seed', $p{seed});
    my ($rc, $o, $e) = run_cmd(@cmd);
    die "@cmd failed (rc=$rc): $e$o\n" if $rc != 0 || !-s $tmp;
    rename($tmp, $out) or die "rename $tmp: $!";

    return $out;
}


# make_adapter_set($dir, $model, $n, [ranks], procs => 2): adapters
# adapter_name(0 .. n-1) for the model, rank round robin, seed index + 1,
# made by `slora mkadapter` in procs processes at once; done once (a
# marker file says the set is whole).  Dies if one fails.
sub make_adapter_set {
    my ($dir, $model, $n, $ranks, %o) = @_;
    my $procs = $o{procs} // 2;

    return $dir if -f "$dir/.complete";

    File::Path::remove_tree($dir);
    File::Path::make_path($dir);

    my @kids;
    for my $k (0 .. $procs - 1) {
        my $pid = fork() // die "fork: $!";
        if ($pid == 0) {
            for (my $i = $k; $i < $n; $i += $procs) {
                my ($rc, $out, $err) = run_cmd(slora_bin(), 'mkadapter',
                    '--model', $model, '--out', "$dir/" . adapter_name($i),
                    '--rank', adapter_rank($i, $ranks), '--seed', $i + 1);
                if ($rc != 0) {
                    print STDERR "mkadapter $i: $err$out";
                    POSIX::_exit(1);
                }
            }
            POSIX::_exit(0);
        }
        push @kids, $pid;
    }

    my $bad = 0;
    for (@kids) {
        waitpid($_, 0);
        $bad++ if $? != 0;
    }
    die "making the adapters in $dir failed\n" if $bad;

    open(my $fh, '>', "$dir/.complete") or die "$dir: $!";
    close $fh;

    return $dir;
}


# loadgen_trace(file => CSV, n_adapters => N, alpha => A, rate => R,
# cv => C, requests => K, seed => S, in => [lo, hi), out => [lo, hi)):
# the paper's synthetic stream of K requests from `bench/loadgen gen`
# (written to CSV, then read back), sorted by arrival, each { at (s from
# the start), adapter (index), name, words (loadgen's prompt tokens),
# max_tokens (its output tokens) }.  Dies if loadgen fails or its trace
# is not what was asked.
sub loadgen_trace {
    my (%o) = @_;
    my $file = $o{file};
    my ($in_lo, $in_hi) = @{ $o{in} // [8, 512] };
    my ($out_lo, $out_hi) = @{ $o{out} // [8, 512] };
    my $k = $o{requests};
    my @cmd = (repo_root() . '/bench/loadgen', 'gen',
               '--num-adapters', $o{n_adapters}, '--alpha', $o{alpha} // 1,
               '--rate', $o{rate}, '--cv', $o{cv} // 1,
               '--duration', sprintf('%.17g', $k / $o{rate}),
               '--input-range', "$in_lo,$in_hi",
               '--output-range', "$out_lo,$out_hi",
               '--seed', $o{seed} // 42, '--adapter-names', 'ad{i:04d}',
               '--out', $file);

    unlink $file;
    my ($rc, $out, $err) = run_cmd(@cmd);
    die "@cmd failed (rc=$rc): $err$out\n" if $rc != 0;

    open(my $fh, '<', $file) or die "$file: $!\n";
    my $head = <$fh> // '';
    $head =~ s/\r?\n\z//;
    die "$file: header \"$head\", not loadgen's CSV trace\n"
        unless $head eq 'arrival,tenant,adapter,prompt_tokens,output_tokens';

    my @reqs;
    while (my $l = <$fh>) {
        $l =~ s/\r?\n\z//;
        my ($at, undef, $name, $p, $m) = split /,/, $l, -1;
        my ($i) = ($name // '') =~ /^ad(\d+)$/;
        die "$file:$.: adapter \"$name\" is not adapter_name(i)\n"
            unless defined $i && adapter_name($i) eq $name
                   && $i < $o{n_adapters};
        push @reqs, { at => $at + 0, adapter => $i + 0, name => $name,
                      words => $p + 0, max_tokens => $m + 0 };
    }
    close $fh;
    die "$file: " . scalar(@reqs) . " requests, asked $k\n" if @reqs != $k;

    return @reqs;
}


1;
