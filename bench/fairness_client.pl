#!/usr/bin/perl
# fairness_client.pl: the client of bench/fairness.sh: a quiet tenant's
# time to first token, alone and beside a flooding tenant.
#
# usage: fairness_client.pl PORT FLOOD N_ALONE N_QUIET QUIET_WORDS QUIET_MAX
#                           FLOOD_WORDS FLOOD_MAX [QUIET_GAP]
#
# Requests are streamed completions of the base model (no chat template,
# so a prompt of W words is about W tokens), tenant in X-Tenant, greedy.
# First N_ALONE quiet requests run one after another on an idle server.
# Then the flood opens FLOOD streams, each replaced as soon as it ends;
# after 3 s (its backlog built) the quiet tenant sends N_QUIET requests,
# one after another, each at least QUIET_GAP seconds (default 0.5) after
# the one before was sent: a quiet tenant, not one that is backlogged all
# along (fair share rightly makes one of those wait its turn whenever
# its counter is ahead, just after a request of its own). 0 sends them
# back to back. A request's time to first token is from sending it
# to its first SSE event, read by the same select loop for every stream.
# For each quiet request under the flood, "ahead" counts the flood
# requests whose first token came after it was sent and before its own.
# Prints one markdown row: the prompts' token counts (from usage), the
# quiet TTFT alone and under the flood (median and worst), their ratio,
# the median of "ahead", and the flood's completed requests a second.

use strict;
use warnings;

use FindBin;
use IO::Select;
use lib "$FindBin::Bin/../t/lib";
use SloraTest;
use Time::HiRes qw(time);

my ($port, $flood_n, $n_alone, $n_quiet, $qw, $qmax, $fw, $fmax, $gap)
    = @ARGV;
die "usage: $0 PORT FLOOD N_ALONE N_QUIET QUIET_WORDS QUIET_MAX "
    . "FLOOD_WORDS FLOOD_MAX [QUIET_GAP]\n" unless defined $fmax;
$gap //= 0.5;

my @WORDS = qw(the river runs past old mills and quiet farms toward a wide
               grey sea where boats wait for the morning tide to turn);

sub prompt {
    my ($tag, $n) = @_;
    return join(' ', $tag, map { $WORDS[$_ % @WORDS] } 1 .. $n - 1);
}

sub open_req {
    my ($tenant, $words, $max, $tag) = @_;
    my $st = stream_start($port, 'POST', '/v1/completions',
        body => json_encode({ model => 'base',
                              prompt => prompt($tag, $words),
                              max_tokens => $max + 0, temperature => 0,
                              stream => JSON::PP::true }),
        headers => { 'Content-Type' => 'application/json',
                     'X-Tenant' => $tenant });
    return { st => $st, sent => time(), first => undef, tenant => $tenant };
}

sub prompt_tokens {
    my ($words) = @_;
    my $r = json_req($port, '/v1/completions',
                     { model => 'base', prompt => prompt('Count', $words),
                       max_tokens => 1, temperature => 0 });
    return ref $r->{json} eq 'HASH' ? $r->{json}{usage}{prompt_tokens} : -1;
}

# Reads what is there; notes first tokens; replaces ended flood streams.
sub pump {
    my ($flood, $quiet, $done, $refill) = @_;
    my @live = grep { !$_->{st}{closed} } @$flood, ($quiet ? $quiet : ());
    my %by = map { fileno($_->{st}{sock}) => $_ } @live;
    my $sel = IO::Select->new(map { $_->{st}{sock} } @live);

    for my $fh ($sel->count ? $sel->can_read(0.05) : ()) {
        my $q = $by{fileno($fh)} or next;
        $q->{st}->pump;
        $q->{first} //= time() if @{ $q->{st}{events} };
    }

    for my $k (0 .. $#$flood) {
        next unless $flood->[$k]{st}{closed} && !$flood->[$k]{counted}++;
        push @$done, $flood->[$k];
        $flood->[$k] = open_req('flood', $fw, $fmax, "Flood $k")
            if $refill;
    }
}

sub round {
    my ($with_flood, $n) = @_;
    my (@flood, @done, @quiet, $cur);

    if ($with_flood) {
        push @flood, open_req('flood', $fw, $fmax, "Flood $_")
            for 0 .. $flood_n - 1;
        my $t = time() + 3;
        pump(\@flood, undef, \@done, 1) while time() < $t;
    }

    my $t0 = time();
    my $end = $t0 + 900;
    while ((@quiet < $n || ($cur && !$cur->{st}{closed})) && time() < $end) {
        if (!$cur || ($cur->{st}{closed} && time() >= $cur->{sent} + $gap))
        {
            $cur = open_req('quiet', $qw, $qmax, 'Quiet ' . scalar(@quiet));
            push @quiet, $cur;
        }
        pump(\@flood, $cur, \@done, $with_flood);
    }
    my $secs = time() - $t0;

    $_->{st}->abort for grep { !$_->{st}{closed} } @flood;

    for my $q (@quiet) {
        die "a quiet request failed: status " . ($q->{st}{status} // 'none')
            . "\n" unless $q->{first} && ($q->{st}{status} // 0) == 200;
        $q->{ttft} = $q->{first} - $q->{sent};
        $q->{ahead} = grep {
            defined $_->{first} && $_->{first} > $q->{sent}
            && $_->{first} < $q->{first}
        } @done, @flood;
    }

    my $flood_done = grep { $_->{first} && $_->{first} >= $t0 } @done;

    return { quiet => \@quiet, flood_rate => $flood_done / $secs };
}

sub med { my @v = sort { $a <=> $b } @_; return $v[int($#v / 2)]; }
sub max { my @v = sort { $b <=> $a } @_; return $v[0]; }

my ($qt, $ft) = (prompt_tokens($qw), prompt_tokens($fw));
my $alone = round(0, $n_alone);
my $under = round(1, $n_quiet);

my $am = med(map { $_->{ttft} } @{ $alone->{quiet} });
my $um = med(map { $_->{ttft} } @{ $under->{quiet} });

printf "| %d / %d | %.2f s (worst %.2f) | %.2f s (worst %.2f) | %.1fx "
       . "| %s | %.2f |\n",
       $qt, $ft, $am, max(map { $_->{ttft} } @{ $alone->{quiet} }),
       $um, max(map { $_->{ttft} } @{ $under->{quiet} }), $um / $am,
       med(map { $_->{ahead} } @{ $under->{quiet} }),
       $under->{flood_rate};
