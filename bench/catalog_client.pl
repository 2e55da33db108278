#!/usr/bin/env perl
# catalog_client.pl: the client side of bench/catalog-tiers.sh.  Three
# modes, each printing one line of JSON (every TTFT sample, in ms, for
# the script to pool over rounds):
#
#   tiers PORT PREFIX ADAPTERS FILLERS REPEAT WORDS
#       For each adapter of ADAPTERS (comma-separated), REPEAT times:
#       cold (POST PREFIX/adapters/X/unload first: the weights are on disk
#       only, the catalog entry is cached), then hot (again at once: in
#       the pool), then warm (FILLERS loaded through PREFIX/adapters/F/load
#       until X's tier is "host": in host memory, not in the pool).  Also
#       "first": X's first request ever (the catalog reads Redis too).
#   busy PORT PREFIX HOT BG BG_TOKENS ADAPTERS REPEAT WORDS
#       The same cold requests while BG streams of BG_TOKENS tokens on
#       adapter HOT keep the engine busy (each replaced when it ends);
#       also the longest gap between two tokens of a background stream
#       within 0.5 s of each cold request, against the gaps with no cold
#       request ("stall").
#   stream PORT N_ADAPTERS ALPHA RATE REQUESTS SEED IN_LO IN_HI OUT_LO OUT_HI
#       The workload of t/catalog_scale.t: `bench/loadgen gen`'s trace
#       for these arguments (t/lib/SloraAdapterSet.pm), prompts of that
#       many words; /status read before and after: requests per tier
#       (pool, host, disk), prefetched, evictions, and the client's TTFT.
#
# TTFT is taken by the client: from sending a streaming completion to
# the first event that carries a token.  The one idea: every sample of a
# kind is the same request shape (prompt, max_tokens, adapter rank), so
# that the tiers differ only in where the adapter's weights were.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../t/lib";
use SloraTest qw(stream_start http_req json_encode run_streams);
use SloraAdapterSet qw(loadgen_trace);
use File::Temp qw(tempdir);
use IO::Select;
use Time::HiRes qw(time sleep);

my $mode = shift @ARGV // die "usage: see the head of $0\n";

if ($mode eq 'tiers') {
    tiers(@ARGV);
} elsif ($mode eq 'busy') {
    busy(@ARGV);
} elsif ($mode eq 'stream') {
    stream(@ARGV);
} else {
    die "unknown mode $mode\n";
}


sub body {
    my ($model, $words, $max) = @_;
    return json_encode({ model => $model, max_tokens => $max + 0,
                         temperature => 0,
                         prompt => join(' ', ('Hello') x $words),
                         stream => JSON::PP::true() });
}


sub start {
    my ($port, $model, $words, $max) = @_;
    return stream_start($port, 'POST', '/v1/completions',
        body => body($model, $words, $max),
        headers => { 'Content-Type' => 'application/json' });
}


# Time of the first event with a token, or undef.
sub first_token {
    my ($st) = @_;
    for my $ev (@{ $st->{events} }) {
        my $j = $ev->{json} or next;
        return $ev->{t} if ref $j->{choices} eq 'ARRAY'
                           && @{ $j->{choices} }
                           && length($j->{choices}[0]{text} // '');
    }
    return undef;
}


sub ttft {
    my ($port, $model, $words) = @_;
    my $st = start($port, $model, $words, 2);
    $st->wait_done(120);
    my $t = first_token($st);
    die "$model: no token (HTTP " . ($st->{status} // '-') . ")\n"
        unless defined $t && $st->{status} == 200;
    return ($t - $st->{t0}) * 1000;
}


sub admin {
    my ($port, $prefix, $op, $name) = @_;
    my $r = http_req($port, 'POST', "$prefix/adapters/$name/$op");
    return $r->{status};
}


sub tier_of {
    my ($port, $prefix, $name) = @_;
    my $r = http_req($port, 'GET', "$prefix/adapters");
    for my $a (@{ $r->{json}{data} // [] }) {
        return $a->{tier} if $a->{name} eq $name;
    }
    return 'unknown';
}


sub make_warm {
    my ($port, $prefix, $x, $fillers) = @_;
    for my $f (@$fillers) {
        my $t = tier_of($port, $prefix, $x);
        return 1 if $t eq 'host';
        return 0 if $t eq 'disk';
        admin($port, $prefix, 'load', $f) == 200
            or die "load $f failed\n";
    }
    return tier_of($port, $prefix, $x) eq 'host';
}


sub tiers {
    my ($port, $prefix, $adapters, $fillers, $repeat, $words) = @_;
    my @fill = split /,/, $fillers;
    my %t = (first => [], cold => [], warm => [], hot => []);

    for my $x (split /,/, $adapters) {
        push @{ $t{first} }, ttft($port, $x, $words);
        for (1 .. $repeat) {
            admin($port, $prefix, 'unload', $x) == 200
                or die "unload $x failed\n";
            tier_of($port, $prefix, $x) eq 'disk' or die "$x not cold\n";
            push @{ $t{cold} }, ttft($port, $x, $words);
            tier_of($port, $prefix, $x) eq 'pool' or die "$x not hot\n";
            push @{ $t{hot} }, ttft($port, $x, $words);
            make_warm($port, $prefix, $x, \@fill)
                or die "$x could not be made warm (fillers too few)\n";
            push @{ $t{warm} }, ttft($port, $x, $words);
        }
    }

    print json_encode(\%t), "\n";
}


sub busy {
    my ($port, $prefix, $hot, $bg, $bg_tokens, $adapters, $repeat,
        $words) = @_;
    my (@bgs, @all_bg, @fg, @cold, @stall, @quiet);

    # keeps bg background streams open, and runs every stream for secs
    # or until the condition holds
    my $pump = sub {
        my ($secs, $until) = @_;
        my $end = time() + $secs;
        while (time() < $end) {
            @bgs = grep { !$_->{closed} } @bgs;
            while (@bgs < $bg) {
                push @bgs, start($port, $hot, $words, $bg_tokens);
                push @all_bg, $bgs[-1];
            }
            run_streams([@bgs, grep { !$_->{closed} } @fg], 0.01);
            return if $until && $until->();
        }
    };

    # the largest gap between consecutive tokens of a background stream
    # that overlaps [t0, t1], in ms
    my $gap = sub {
        my ($t0, $t1) = @_;
        my $g = 0;
        for my $st (@all_bg) {
            my @t = map { $_->{t} } grep { $_->{json} } @{ $st->{events} };
            for my $i (1 .. $#t) {
                next if $t[$i] < $t0 || $t[$i - 1] > $t1;
                $g = $t[$i] - $t[$i - 1] if $t[$i] - $t[$i - 1] > $g;
            }
        }
        return $g * 1000;
    };

    $pump->(1.5);

    for my $x (split /,/, $adapters) {
        for (1 .. $repeat) {
            admin($port, $prefix, 'unload', $x) == 200
                or die "unload $x failed\n";

            # a window as long as a cold request takes, background alone
            my $q0 = time();
            $pump->(0.6);
            push @quiet, $gap->($q0 + 0.1, time());

            my $st = start($port, $x, $words, 2);
            @fg = ($st);
            $pump->(60, sub { $st->{closed} });
            my $t = first_token($st);
            die "$x: no token\n" unless defined $t && $st->{status} == 200;
            push @cold, ($t - $st->{t0}) * 1000;
            $pump->(0.2);
            push @stall, $gap->($st->{t0}, $t + 0.1);
            @fg = ();
        }
    }

    $_->abort for @bgs;
    print json_encode({ cold => \@cold, stall => \@stall,
                        quiet => \@quiet }), "\n";
}


sub stream {
    my ($port, $n, $alpha, $rate, $requests, $seed, @len) = @_;
    my $tmp = tempdir('catalog-client-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my @plan = loadgen_trace(file => "$tmp/trace.csv", n_adapters => $n,
                             alpha => $alpha, rate => $rate, cv => 1,
                             requests => $requests, seed => $seed,
                             in => [@len[0, 1]], out => [@len[2, 3]]);
    my $s0 = http_req($port, 'GET', '/status')->{json};
    my (@live, @done);
    my $t0 = time();
    my $next = 0;

    while ($next < @plan || @live) {
        my $now = time() - $t0;
        while ($next < @plan && $plan[$next]{at} <= $now) {
            my $p = $plan[$next++];
            $p->{st} = start($port, $p->{name}, $p->{words},
                             $p->{max_tokens});
            push @live, $p;
        }
        run_streams([map { $_->{st} } @live], 0.01);
        push @done, grep { $_->{st}{closed} } @live;
        @live = grep { !$_->{st}{closed} } @live;
    }

    my $secs = time() - $t0;
    my $s1 = http_req($port, 'GET', '/status')->{json};
    my @ttft = map { (first_token($_->{st}) - $_->{st}{t0}) * 1000 }
               grep { defined first_token($_->{st}) } @done;
    my $d = sub { $s1->{$_[0]}{$_[1]} - $s0->{$_[0]}{$_[1]} };

    print json_encode({
        requests => scalar @done, seconds => $secs,
        ok => scalar(grep { $_->{st}{status} == 200 } @done),
        pool => $d->('adapters', 'hits'), host => $d->('host', 'hits'),
        disk => $d->('host', 'misses'),
        prefetched => $d->('host', 'prefetched'),
        host_evictions => $d->('host', 'evictions'),
        pool_evictions => $d->('adapters', 'evictions'),
        host_peak => $s1->{host}{peak}, host_budget => $s1->{host}{budget},
        ttft => \@ttft }), "\n";
}
