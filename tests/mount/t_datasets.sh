#!/bin/bash
# Datasets of a local datastore through the mount: register with globs,
# versions, dataset.json, read with pandas and numpy, a changed source is
# EIO with an events line, "copy": true survives changes and deletion.
. "$(dirname "$0")/lib.sh"

D=$MNT/datasets
F=$MNT/datastores/default/files

# register REQUEST: the reply line, or "ERR" (the message in $TMP/reg.err)
register() { special_request "$D/register" "$1"; }
# sha FILE: its sha256
sha() { sha256sum "$1" | cut -d' ' -f1; }

mlfs_mount

test_case files_copied_in_through_the_datastore
mkdir -p "$F/iris/raw" "$F/arrays/a/b" || fail "mkdir"
"$PY" - "$F" <<-'EOF' || fail "write data"
	import sys, numpy as np, pandas as pd
	d = sys.argv[1]
	rng = np.random.default_rng(7)
	df = pd.DataFrame({"sepal": rng.random(150), "petal": rng.random(150),
	                   "species": ["setosa", "versicolor", "virginica"] * 50})
	df.to_csv(d + "/iris/iris.csv", index=False)
	df.head(10).to_csv(d + "/iris/raw/part-0.csv", index=False)
	np.save(d + "/arrays/a/b/x.npy", np.arange(100000, dtype=np.float64))
	np.save(d + "/arrays/a/y.npy", np.ones((10, 10)))
	EOF
printf 'ignore me' >"$F/iris/notes.txt"
expect_true "on disk" test -s "$WS/datastore/iris/iris.csv"

test_case register_with_globs_makes_version_1
expect_eq "iris 1" "$(register '{"name": "iris", "datastore": "default", "paths": ["iris/*.csv", "arrays/**/*.npy"], "description": "flowers", "tags": {"team": "a"}}')" "reply"
expect_eq "1" "$(readlink "$D/iris/latest")" "latest"
expect_eq "arrays iris" "$(ls "$D/iris/1/files" | tr '\n' ' ' | sed 's/ $//')" "files/"
expect_eq "iris.csv" "$(ls "$D/iris/1/files/iris")" "only the glob's matches"
"$PY" - "$D/iris/1/dataset.json" <<-'EOF' || fail "dataset.json"
	import json, sys
	d = json.load(open(sys.argv[1]))
	assert d["name"] == "iris" and d["version"] == 1, d
	assert d["datastore"] == "default" and d["copy"] is False, d
	assert d["description"] == "flowers" and d["tags"] == {"team": "a"}, d
	paths = [f["path"] for f in d["files"]]
	assert paths == ["arrays/a/b/x.npy", "arrays/a/y.npy", "iris/iris.csv"], paths
	assert all(f["size"] > 0 and f["mtime"].endswith("Z") for f in d["files"]), d
	assert d["file_count"] == 3 and d["total_bytes"] == sum(f["size"] for f in d["files"]), d
	EOF
expect_eq "$(stat -c %s "$WS/datastore/iris/iris.csv")" "$(stat -c %s "$D/iris/1/files/iris/iris.csv")" "size"
expect_eq "$(sha "$WS/datastore/iris/iris.csv")" "$(sha "$D/iris/1/files/iris/iris.csv")" "bytes"

test_case pandas_and_numpy_read_the_version
"$PY" - "$D/iris/1/files" "$WS/datastore" <<-'EOF' || fail "read"
	import sys, numpy as np, pandas as pd
	v, src = sys.argv[1], sys.argv[2]
	a = pd.read_csv(v + "/iris/iris.csv")
	assert a.equals(pd.read_csv(src + "/iris/iris.csv")) and len(a) == 150
	x = np.load(v + "/arrays/a/b/x.npy", mmap_mode="r")
	assert x.shape == (100000,) and x[99999] == 99999.0
	assert np.load(v + "/arrays/a/y.npy").sum() == 100.0
	EOF

test_case the_kernel_keeps_the_name_of_a_dataset
# Datasets are never removed: a second after a path was walked, the
# kernel still walks datasets/NAME/N/files/F alone, the daemon stopped.
f=$D/iris/1/files/iris/iris.csv
stat "$f" >/dev/null
sleep 1.2	# past the 1 s the kernel keeps names that may go
expect_eq "walked" "$(with_daemon_stopped stat "$f")" "stat of a version's file with the daemon stopped"

test_case a_version_is_read_only
expect_errno EROFS sysop write "$D/iris/1/files/iris/iris.csv" "x"
expect_errno EROFS sysop unlink "$D/iris/1/files/iris/iris.csv"
expect_errno EROFS sysop mkdir "$D/iris/1/files/new"
expect_errno EROFS sysop write "$D/iris/1/dataset.json" "x"

test_case a_changed_source_gives_eio_and_an_event
expect_eq "iris 2" "$(register '{"name": "iris", "datastore": "default", "paths": ["iris/raw"]}')" "version 2: a directory"
expect_eq "2" "$(readlink "$D/iris/latest")" "latest moved"
expect_eq "1 2" "$(ls "$D/iris" | grep -v latest | tr '\n' ' ' | sed 's/ $//')" "both versions"
cat "$D/iris/2/files/iris/raw/part-0.csv" >/dev/null || fail "reads before the change"
printf 'x' >>"$F/iris/raw/part-0.csv"
events_mark
expect_errno EIO cat "$D/iris/2/files/iris/raw/part-0.csv"
expect_event "refused open datasets/iris/2/files/iris/raw/part-0.csv: .*changed since it was registered"
touch -d '2001-01-01' "$F/iris/iris.csv"
expect_errno EIO cat "$D/iris/1/files/iris/iris.csv"
expect_event "iris/iris.csv.*changed"
rm "$F/arrays/a/y.npy"
expect_errno EIO cat "$D/iris/1/files/arrays/a/y.npy"
expect_eq "$(sha "$WS/datastore/arrays/a/b/x.npy")" "$(sha "$D/iris/1/files/arrays/a/b/x.npy")" "an unchanged file still reads"

test_case a_writer_waits_for_the_kernel_readers_of_a_pinned_source
# The kernel reads a local source by itself (passthrough) under a read
# lease: a writer waits until the readers close, they read the pinned
# bytes to the end, a reader coming meanwhile is refused, and after the
# change the pin refuses every open.
printf 'p,q\n1,2\n' >"$F/iris/wait.csv"
expect_eq "waited 1" "$(register '{"name": "waited", "datastore": "default", "paths": ["iris/wait.csv"]}')" "reply"
if passthrough_possible; then
	events_mark
	"$PY" - "$D/waited/1/files/iris/wait.csv" "$F/iris/wait.csv" <<-'EOF' || fail "a writer while the kernel reads"
	import errno, os, subprocess, sys, time
	path, source = sys.argv[1], sys.argv[2]
	fd = os.open(path, os.O_RDONLY)
	writer = subprocess.Popen(["sh", "-c", 'printf "3,4\\n" >>"$1"', "sh", source])
	time.sleep(0.5)
	assert writer.poll() is None, "the writer did not wait for the reader"
	try:
	    os.open(path, os.O_RDONLY)
	    sys.exit("a new reader was let in while a writer waits")
	except OSError as e:
	    assert e.errno == errno.EIO, e
	assert os.pread(fd, 100, 0) == b"p,q\n1,2\n", "the reader saw new bytes"
	closed = time.monotonic()
	os.close(fd)
	writer.wait(timeout=30)
	assert time.monotonic() - closed < 5, "the writer waited past the close"
	try:
	    os.open(path, os.O_RDONLY)
	    sys.exit("opened the changed source")
	except OSError as e:
	    assert e.errno == errno.EIO, e
	EOF
	new=$(tail -n +"$((events_seen + 1))" "$MNT/events")
	grep -q "refused open datasets/waited/1/files/iris/wait.csv: its source is being opened for writing; the writer waits until 1 open reader closes it (EIO)" <<<"$new" || fail "events line for the refused reader: $new"
	grep -q "refused open datasets/waited/1/files/iris/wait.csv: 'iris/wait.csv' changed since it was registered" <<<"$new" || fail "events line for the change: $new"
	events_mark
else
	echo "# Linux $(uname -r) or not root: no passthrough, reads go through mlfs"
fi

test_case a_writer_waiting_for_readers_goes_on_when_mlfs_is_killed
# The lease dies with the daemon: a user's writer never waits on a dead
# mount, and the store is intact.
if passthrough_possible; then
	printf 'k,l\n' >"$F/iris/killed.csv"
	expect_eq "killed 1" "$(register '{"name": "killed", "datastore": "default", "paths": ["iris/killed.csv"]}')" "reply"
	"$PY" -c 'import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY); print("open", flush=True); time.sleep(60)' \
		"$D/killed/1/files/iris/killed.csv" >"$TMP/reader.out" &
	reader=$!
	poll_ms 5000 grep -q open "$TMP/reader.out" || fail "the reader did not open"
	src=$WS/datastore/iris/killed.csv
	sh -c 'printf "m,n\n" >>"$1"' sh "$src" &
	writer=$!
	sleep 0.5
	kill -0 "$writer" 2>/dev/null || fail "the writer did not wait for the reader"
	mlfs_kill9
	poll_ms 5000 sh -c "! kill -0 $writer 2>/dev/null" || fail "the writer still waits after kill -9"
	kill "$reader" 2>/dev/null
	wait "$reader" "$writer" 2>/dev/null
	expect_eq "k,l m,n" "$(tr '\n' ' ' <"$src" | sed 's/ $//')" "the writer's bytes"
	mlfs_mount
	expect_eq "2" "$(readlink "$D/iris/latest")" "the store is intact"
	expect_errno EIO cat "$D/killed/1/files/iris/killed.csv"
else
	echo "# Linux $(uname -r) or not root: no passthrough, no lease"
fi

test_case a_source_opened_by_a_writer_is_read_through_mlfs
# No lease while a writer has the file open: mlfs reads it, checking the
# pin at every read.
printf 'w,x\n' >"$F/iris/busy.csv"
expect_eq "busy 1" "$(register '{"name": "busy", "datastore": "default", "paths": ["iris/busy.csv"]}')" "reply"
exec 5>>"$F/iris/busy.csv"
expect_eq "blocked" "$(read_with_daemon_stopped "$D/busy/1/files/iris/busy.csv")" "read through mlfs"
exec 5>&-
if passthrough_possible; then
	expect_eq "$(sha "$F/iris/busy.csv")" "$(read_with_daemon_stopped "$D/busy/1/files/iris/busy.csv")" "the writer gone: read by the kernel"
fi

test_case copy_true_survives_change_and_deletion
printf 'kept,bytes\n1,2\n' >"$F/iris/keep.csv"
want=$(sha "$F/iris/keep.csv")
expect_eq "kept 1" "$(register '{"name": "kept", "datastore": "default", "paths": ["iris/keep.csv"], "copy": true}')" "reply"
"$PY" - "$D/kept/1/dataset.json" "$want" <<-'EOF' || fail "dataset.json of a copy"
	import json, sys
	d = json.load(open(sys.argv[1]))
	assert d["copy"] is True and d["files"][0]["sha256"] == sys.argv[2], d
	EOF
printf 'changed' >"$F/iris/keep.csv"
expect_eq "$want" "$(sha "$D/kept/1/files/iris/keep.csv")" "after a change"
rm "$F/iris/keep.csv"
expect_eq "$want" "$(sha "$D/kept/1/files/iris/keep.csv")" "after deletion"

test_case a_copy_and_a_source_are_read_by_the_kernel
# A copy is a blob that never changes: the kernel may read it alone; so
# may it a source it holds a read lease on.
if passthrough_possible; then
	expect_eq "$want" "$(read_with_daemon_stopped "$D/kept/1/files/iris/keep.csv")" "a copy, read with the daemon stopped"
	expect_eq "$(sha "$F/arrays/a/b/x.npy")" "$(read_with_daemon_stopped "$D/iris/1/files/arrays/a/b/x.npy")" "a local source, read with the daemon stopped"
else
	echo "# Linux $(uname -r) or not root: no passthrough, reads go through mlfs"
fi

test_case passthrough_0_a_source_changed_while_open_gives_eio
# Read through mlfs, every read checks the pin: a change while open is EIO.
mlfs_unmount
mlfs_mount -o passthrough=0
expect_eq "blocked" "$(read_with_daemon_stopped "$D/iris/1/files/arrays/a/b/x.npy")" "a local source is read through mlfs"
printf 'p,q\n1,2\n' >"$F/iris/open.csv"
expect_eq "opened 1" "$(register '{"name": "opened", "datastore": "default", "paths": ["iris/open.csv"]}')" "reply"
events_mark
"$PY" - "$D/opened/1/files/iris/open.csv" "$F/iris/open.csv" <<-'EOF' || fail "read while the source changes"
	import errno, os, sys
	fd = os.open(sys.argv[1], os.O_RDONLY)
	assert os.pread(fd, 3, 0) == b"p,q"
	with open(sys.argv[2], "a") as f:
	    f.write("3,4\n")
	os.sync()
	with open("/proc/sys/vm/drop_caches", "w") as f:
	    f.write("3")
	try:
	    os.pread(fd, 3, 0)
	    sys.exit("read the changed source")
	except OSError as e:
	    assert e.errno == errno.EIO, e
	EOF
expect_event "refused read datasets/opened/1/files/iris/open.csv: 'iris/open.csv' changed since it was registered \\(while open\\): size 8 -> 12 \\(EIO\\)"
mlfs_unmount
mlfs_mount

test_case refusals_name_the_problem
expect_eq "ERR" "$(register '{"name": "x", "datastore": "nope", "paths": ["a"]}')" "unknown datastore"
grep -q "datastore 'nope' does not exist" "$TMP/reg.err" || fail "message: $(cat "$TMP/reg.err")"
expect_eq "ERR" "$(register '{"name": "x", "datastore": "default", "paths": ["iris/*.parquet"]}')" "a glob matching nothing"
grep -q "iris/\*.parquet" "$TMP/reg.err" || fail "message names the glob: $(cat "$TMP/reg.err")"
expect_eq "ERR" "$(register '{"name": ".x", "datastore": "default", "paths": ["iris"]}')" "invalid name"
expect_eq "ERR" "$(register '{"name": "x", "datastore": "default", "paths": ["../etc/passwd"]}')" "outside the datastore"
expect_eq "ERR" "$(register '{"name": "x", "datastore": "default", "paths": []}')" "no paths"
expect_eq "ERR" "$(register '{"name": "x", "datastore": "default", "paths": ["iris"], "copy": "yes"}')" "copy not a boolean"
expect_errno ENOENT bash -c "printf '%s' '{\"name\": \"x\", \"datastore\": \"nope\", \"paths\": [\"a\"]}' >'$D/register'"
expect_errno ENOENT bash -c "printf '%s' '{\"name\": \"x\", \"datastore\": \"default\", \"paths\": [\"none*\"]}' >'$D/register'"
expect_errno EINVAL bash -c "printf '%s' '{\"name\": \"x/y\", \"datastore\": \"default\", \"paths\": [\"iris\"]}' >'$D/register'"
expect_eq "busy iris kept killed opened register waited" "$(ls "$D" | tr '\n' ' ' | sed 's/ $//')" "nothing half-made"

test_case a_used_datastore_cannot_be_removed
mkdir -p "$TMP/other"
printf 'o' >"$TMP/other/o.txt"
printf '{"name": "other", "type": "local", "path": "%s"}' "$TMP/other" >"$MNT/datastores/register" || fail "register datastore"
expect_eq "o 1" "$(register '{"name": "o", "datastore": "other", "paths": ["o.txt"]}')" "a dataset on it"
expect_errno ENOTEMPTY rmdir "$MNT/datastores/other"
expect_eq "o" "$(cat "$D/o/1/files/o.txt")" "its files"

test_case daemon_killed_during_a_copy_leaves_no_version_nor_blob
# 512 MiB of distinct bytes, so the copy takes long enough to be caught.
head -c $((64 * 1024 * 1024)) /dev/urandom >"$TMP/chunk" || fail "random chunk"
for i in $(seq 8); do printf '%08d' "$i"; cat "$TMP/chunk"; done >"$F/big.bin"
rm -f "$TMP/chunk"
nblobs() { find "$WS/blobs" -mindepth 2 -type f -path "$WS/blobs/[0-9a-f][0-9a-f]/*" | wc -l; }
before=$(nblobs)
( register '{"name": "bigcopy", "datastore": "default", "paths": ["big.bin"], "copy": true}' >"$TMP/big.reply" 2>&1 ) &
writer=$!
poll_ms 20000 sh -c "ls -l /proc/$MLFS_PID/fd 2>/dev/null | grep -q '$WS/blobs/'" ||
	fail "the copy never started"
mlfs_kill9
wait "$writer" 2>/dev/null
mlfs_mount
expect_errno ENOENT ls "$D/bigcopy"
expect_eq "$before" "$(nblobs)" "no blob left by the killed copy"
expect_eq 0 "$(find "$WS/blobs/tmp" -type f 2>/dev/null | wc -l)" "no temporary left"
expect_eq "2" "$(readlink "$D/iris/latest")" "the other datasets are intact"
expect_eq "$want" "$(sha "$D/kept/1/files/iris/keep.csv")" "and their copies"
expect_eq "bigcopy 1" "$(register '{"name": "bigcopy", "datastore": "default", "paths": ["big.bin"], "copy": true}')" "copying again works"
expect_eq "$(sha "$F/big.bin")" "$(sha "$D/bigcopy/1/files/big.bin")" "all of it"
rm -f "$F/big.bin"

test_case listing_files_warms_the_version_and_ls_l_matches_dataset_json
mkdir -p "$F/shards/sub" || fail "mkdir"
for i in $(seq 20); do head -c $((i * 3000)) /dev/urandom >"$F/shards/s$i.bin"; done
head -c 5000 /dev/urandom >"$F/shards/sub/tok.json"
expect_eq "shards 1" "$(register '{"name": "shards", "datastore": "default", "paths": ["shards"]}')" "local version"
expect_eq "shards 2" "$(register '{"name": "shards", "datastore": "default", "paths": ["shards"], "copy": true}')" "copied version"
# sources VERSION: the files the version reads (its blobs when copied)
sources() {
	"$PY" - "$D/shards/$1/dataset.json" "$WS" <<-'EOF'
	import json, sys
	d, ws = json.load(open(sys.argv[1])), sys.argv[2]
	for f in d["files"]:
	    h = f.get("sha256")
	    print(f"{ws}/blobs/{h[:2]}/{h[2:]}" if h else f"{ws}/datastore/{f['path']}")
	EOF
}
# all_resident VERSION: every file it reads has all its pages in memory
all_resident() {
	sources "$1" | while read -r p; do fincore -n -b -o RES,SIZE "$p"; done |
		awk '$1 < $2 {short++} END {exit short > 0}'
}
for v in 1 2; do
	if [ ! -w /proc/sys/vm/drop_caches ]; then
		echo "# not root: the prefetch half of this case needs drop_caches"
		break
	fi
	sync && echo 3 >/proc/sys/vm/drop_caches
	all_resident $v && fail "version $v stayed in memory after drop_caches: this case cannot see a prefetch"
	ls "$D/shards/$v/files" >/dev/null || fail "ls files/ of version $v"
	poll_ms 5000 all_resident $v || fail "listing files/ did not warm version $v"
done
# readdirplus answers from the listing: what it says must be dataset.json's
expect_files_match "$D/shards/1" dataset.json
expect_files_match "$D/shards/2" dataset.json

test_case versions_survive_a_remount
mlfs_unmount
mlfs_mount
expect_eq "2" "$(readlink "$D/iris/latest")" "latest"
expect_eq "$want" "$(sha "$D/kept/1/files/iris/keep.csv")" "the copy"
expect_eq "iris 3" "$(register '{"name": "iris", "datastore": "default", "paths": ["arrays"]}')" "numbers go on"
expect_eq "$(sha "$F/arrays/a/b/x.npy")" "$(sha "$D/iris/3/files/arrays/a/b/x.npy")" "a new version reads"

test_done
