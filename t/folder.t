# folder.t: the adapter folder (slora_adapters dir=) while nginx runs.
#
# The engine looks at the folder again every second (its mtime: a
# sub-folder added, removed or renamed into place). An adapter folder
# renamed into it is served within seconds and listed, with its own
# weights (the same greedy text as an adapter made from the same seed);
# one removed is a 404 model_not_found, leaves the list and host memory;
# one replaced (removed, and another renamed in under its name) answers
# with the new weights, not the copy the engine had cached; so does one
# whose files were written over in place (once they settle for a
# second); one written over with a broken file is a 500 that names the
# file and the fault, until its good bytes are back. The error log says
# when the folder changed and which adapter's files were rewritten.
# Requests keep working throughout.

use strict;
use warnings;

use lib 't/lib';
use SloraTest;
use Test::More;
use File::Path qw(remove_tree);

my $PORT = 18126;

my $model = tiny_model(layers => 2, hidden => 64, seed => 11);
my $s = SloraTest::Server->new(name => 'folder', port => $PORT);
my $dir = $s->prefix . '/adapters';
my $stage = $s->prefix . '/stage';     # the same file system: rename()
make_adapters($dir, $model, [qw(a1 b c)]);      # seeds 1, 2, 3
make_adapters($stage, $model, [qw(t1 t2 t3)]);  # seeds 1, 2, 3
$s->{http} = slora_http(model => $model, adapters => $dir,
                        engine => 'threads=1 slots=8 max_running=8');
$s->start;

sub complete { return greedy_completion($PORT, $_[0]) }

sub listed { return model_ids($PORT) }

sub until_answer { return greedy_until($PORT, @_) }

my %text = map { $_ => complete($_)->{text} } qw(a1 b c);
ok(defined $text{$_}, "$_ answers at start") for qw(a1 b c);
isnt($text{a1}, $text{c}, 'seeds 1 and 3 give different texts (the '
     . 'replacement below can be told apart)');
is(complete('new')->{code}, 'model_not_found', 'new: unknown at start');

# Added: renamed into the folder.
rename("$stage/t2", "$dir/new") or die "rename: $!";
my $new = until_answer('new', sub { $_[0]{status} == 200 });
is($new->{status}, 200, 'new: served once renamed into the folder');
is($new->{text}, $text{b}, 'new: its own weights (b\'s seed, b\'s text)');
ok(listed()->{new}, 'new: listed in /v1/models');
is(http_req($PORT, 'GET', '/v1/models/new')->{status}, 200,
   'new: GET /v1/models/new');

# Removed.
my $in_host = $s->status->{adapters}{in_host};
cmp_ok($in_host, '>=', 3, "the adapters used are in host memory ($in_host)");
remove_tree("$dir/b");
my $gone = until_answer('b', sub { $_[0]{status} != 200 });
is("$gone->{status} " . ($gone->{code} // ''), '404 model_not_found',
   'b: 404 model_not_found once removed');
ok(!listed()->{b}, 'b: no longer listed');
is(http_req($PORT, 'GET', '/v1/models/b')->{status}, 404,
   'b: GET /v1/models/b is 404');
ok(SloraTest::wait_for(5, sub {
       $s->status->{adapters}{in_host} == $in_host - 1 }),
   'b: its copy left host memory')
    or diag(json_encode($s->status->{host}));

# Replaced: the old folder removed, another renamed in under its name.
remove_tree("$dir/a1");
rename("$stage/t3", "$dir/a1") or die "rename: $!";
my $re = until_answer('a1', sub { $_[0]{status} == 200
                                  && ($_[0]{text} // '') ne $text{a1} });
is($re->{text}, $text{c}, 'a1: replaced, the new weights answer (c\'s '
   . 'seed, c\'s text), not the cached old ones');

is(complete('c')->{text}, $text{c}, 'c: unchanged throughout');
like($s->error_log,
     qr/slora engine: the adapter folder changed: \d+ adapters now/,
     'the error log says the folder changed');

# Rewritten in place, as PEFT's save_pretrained writes over a folder:
# the same files truncated and written (inodes and the folders' mtimes
# as they were), with t1's bytes (seed 1, a1's first text).
my @mtimes = ((stat $dir)[9], (stat "$dir/c")[9]);
my $ino = (stat "$dir/c/adapter_model.safetensors")[1];
for my $f (qw(adapter_config.json adapter_model.safetensors)) {
    open(my $in, '<:raw', "$stage/t1/$f") or die "$f: $!";
    my $bytes = do { local $/; <$in> };
    open(my $out, '>:raw', "$dir/c/$f") or die "$f: $!";
    print {$out} $bytes;
    close($out) or die "$f: $!";
}
is_deeply([(stat $dir)[9], (stat "$dir/c")[9],
           (stat "$dir/c/adapter_model.safetensors")[1]], [@mtimes, $ino],
          'c: rewritten in place (the same inode, no folder\'s mtime moved)');
my $rw = until_answer('c', sub { $_[0]{status} == 200
                                 && ($_[0]{text} // '') ne $text{c} });
is($rw->{text}, $text{a1}, 'c: rewritten, the new weights answer (seed 1, '
   . 'a1\'s first text), not the cached old ones');
like($s->error_log, qr/slora engine: the files of adapter "c" were rewritten in place: read again at its next use/,
     'the error log says c was rewritten');

# Rewritten in place with a broken file (its header's length field
# garbage): a 500 naming the file and what is wrong with it, the other
# adapters and the engine untouched; the good bytes written back are
# read again at the next use.
sub overwrite {
    my ($f, $bytes) = @_;
    open(my $out, '+<:raw', $f) or die "$f: $!";
    print {$out} $bytes;
    close($out) or die "$f: $!";
}
my $st_file = "$dir/c/adapter_model.safetensors";
my $head = do {
    open(my $in, '<:raw', $st_file) or die "$st_file: $!";
    read($in, my $b, 8);
    $b;
};
my $pid = $s->status->{engine}{pid};
overwrite($st_file, "\xff" x 8);
my $broken = until_answer('c', sub { $_[0]{status} != 200 });
is($broken->{status}, 500, 'c: a broken file written in place: 500');
like($broken->{message} // '',
     qr{\Q$st_file\E: header length \d+: not in},
     '... naming the file and what is wrong with it');
is(complete('a1')->{text}, $text{c}, 'a1 still answers meanwhile');
overwrite($st_file, $head);
my $fixed = until_answer('c', sub { $_[0]{status} == 200 });
is($fixed->{text}, $text{a1}, 'c: its good bytes written back, it answers '
   . 'as before the break');
is($s->status->{engine}{pid}, $pid, 'the same engine throughout');

my $stop = $s->stop;
ok($stop->{graceful}, 'nginx exits on QUIT');
my @bad = $s->bad_log_lines(errors => 1);
ok(!@bad, 'no [error], [alert], [crit] or [emerg]')
    or diag(join("\n", @bad));

done_testing();
