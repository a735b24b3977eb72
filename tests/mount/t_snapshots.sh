#!/bin/bash
# Snapshots: snapshots/ID/{snapshot.json, snapshot.zip, files/} serve what
# snapshot_build stored, read-only; every change under snapshots/ is EROFS.
. "$(dirname "$0")/lib.sh"

: "${MLFS_MKSNAP:=$LIB_DIR/../../build/tests/mlfs-mksnap}"

# The source tree: files, an executable, an empty dir, symlinks (one to
# /etc/passwd), and files the ignore rules leave out.
SRC=$TMP/src
mkdir -p "$SRC/pkg/sub" "$SRC/empty" "$SRC/.git" "$SRC/pkg/__pycache__" "$SRC/data" &&
printf 'print("train")\n' >"$SRC/train.py" &&
printf '#!/bin/sh\necho run\n' >"$SRC/run.sh" && chmod 755 "$SRC/run.sh" &&
printf 'x = 1\n' >"$SRC/pkg/m.py" &&
head -c 300000 /dev/urandom >"$SRC/pkg/sub/blob.bin" &&
printf '*.log\ndata/\n' >"$SRC/.amlignore" &&
printf 'noise\n' >"$SRC/debug.log" &&
printf 'big\n' >"$SRC/data/big.csv" &&
printf '[core]\n' >"$SRC/.git/config" &&
printf 'pyc' >"$SRC/pkg/__pycache__/m.pyc" &&
ln -s /etc/passwd "$SRC/pw" &&
ln -s pkg/m.py "$SRC/m-link" || fail "making the source tree"

mkdir -p "$WS"
ID=$("$MLFS_MKSNAP" "$WS" "$SRC" 2>"$TMP/mksnap.err") ||
	{ harness_fail "mlfs-mksnap: $(cat "$TMP/mksnap.err")"; exit 1; }
say "# snapshot $ID"

# The reference: the source without what the rules leave out.
REF=$TMP/ref
cp -a "$SRC" "$REF" && rm -rf "$REF/.git" "$REF/pkg/__pycache__" "$REF/data" "$REF/debug.log" ||
	fail "making the reference tree"

mlfs_mount
S=$MNT/snapshots/$ID

test_case snapshots_lists_the_snapshot_id
expect_eq "$ID" "$(ls "$MNT/snapshots")" "ls snapshots"
expect_eq "files
snapshot.json
snapshot.zip" "$(ls "$S")" "ls snapshots/ID"

test_case snapshot_json_names_the_snapshot
"$PY" - "$S/snapshot.json" "$ID" "$SRC" <<-'EOF' || fail "snapshot.json"
	import json, re, sys
	j = json.load(open(sys.argv[1]))
	bad = []
	if j.get("id") != sys.argv[2]: bad.append("id=%r" % j.get("id"))
	if not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", j.get("created", "")): bad.append("created")
	if j.get("files") != 7: bad.append("files=%r" % j.get("files"))
	if j.get("source_directory") != sys.argv[3]: bad.append("source_directory=%r" % j.get("source_directory"))
	if not isinstance(j.get("zip_bytes"), int) or j["zip_bytes"] <= 0: bad.append("zip_bytes")
	if bad:
	    print("snapshot.json:", bad, j)
	    sys.exit(1)
	EOF
expect_eq "$(stat -c %s "$WS/snapshots/$ID.json")" "$(stat -c %s "$S/snapshot.json")" "stat size of snapshot.json"

test_case snapshot_zip_is_the_stored_zip
expect_true "cmp snapshot.zip" cmp "$S/snapshot.zip" "$WS/snapshots/$ID.zip"
expect_eq "$(stat -c %s "$WS/snapshots/$ID.zip")" "$(stat -c %s "$S/snapshot.zip")" "stat size of snapshot.zip"
expect_true "unzip -l" unzip -l "$S/snapshot.zip"
unzip -Z1 "$S/snapshot.zip" | grep -qx 'pkg/sub/blob.bin' || fail "unzip -l does not list pkg/sub/blob.bin"
unzip -Z1 "$S/snapshot.zip" | grep -q 'debug.log' && fail "an ignored file is in the zip"
X=$TMP/unzipped
mkdir "$X" && (cd "$X" && unzip -q "$S/snapshot.zip") || fail "unzip of snapshot.zip"
expect_true "diff -r of the unzipped zip" diff -r "$REF" "$X"

test_case files_is_the_source_tree_minus_ignored_files
expect_true "diff -r files/ against the source" diff -r --no-dereference "$REF" "$S/files"
expect_eq "/etc/passwd" "$(readlink "$S/files/pw")" "readlink of a symlink to /etc/passwd"
expect_eq "pkg/m.py" "$(readlink "$S/files/m-link")" "readlink of a relative symlink"
[ -d "$S/files/empty" ] || fail "the empty directory is missing"
[ ! -e "$S/files/debug.log" ] || fail "an ignored file is served"
[ ! -e "$S/files/.git" ] || fail ".git is served"

test_case files_have_read_only_modes
expect_eq "-r-xr-xr-x" "$(stat -c %A "$S/files/run.sh")" "mode of an executable"
expect_eq "-r--r--r--" "$(stat -c %A "$S/files/train.py")" "mode of a file"
expect_eq "dr-xr-xr-x" "$(stat -c %A "$S/files/pkg")" "mode of a directory"
expect_eq "lrwxrwxrwx" "$(stat -c %A "$S/files/pw")" "mode of a symlink"
expect_eq "-r--r--r--" "$(stat -c %A "$S/snapshot.json")" "mode of snapshot.json"
expect_eq "-r--r--r--" "$(stat -c %A "$S/snapshot.zip")" "mode of snapshot.zip"
expect_eq "300000" "$(stat -c %s "$S/files/pkg/sub/blob.bin")" "stat size of a large file"
expect_true "executable runs" "$S/files/run.sh"

test_case tar_of_files_round_trips
expect_true "tar cf of files/" tar -C "$S" -cf "$TMP/files.tar" files
mkdir "$TMP/untar" && tar -C "$TMP/untar" -xf "$TMP/files.tar" || fail "tar xf"
expect_true "diff -r of the tar" diff -r --no-dereference "$REF" "$TMP/untar/files"

test_case changes_under_snapshots_give_EROFS
expect_errno EROFS touch "$S/files/train.py"
expect_errno EROFS touch "$S/files/new.py"
expect_errno EROFS sh -c "echo x > '$S/files/train.py'"
expect_errno EROFS sh -c "echo x >> '$S/snapshot.json'"
expect_errno EROFS mkdir "$S/files/newdir"
expect_errno EROFS mkdir "$MNT/snapshots/newsnap"
expect_errno EROFS rm "$S/files/train.py"
expect_errno EROFS rm "$S/snapshot.zip"
expect_errno EROFS rmdir "$S/files/empty"
expect_errno EROFS ln -s x "$S/files/newlink"
expect_errno EROFS mv "$S/files/train.py" "$S/files/t2.py"
expect_errno EROFS chmod 777 "$S/files/train.py"
expect_errno EROFS sysop write "$S/files/pkg/m.py" "y = 2"
expect_errno EROFS sysop truncate "$S/files/pkg/m.py"
expect_errno EROFS sysop unlink "$S/files/pkg/m.py"
expect_errno EROFS sysop rmdir "$S/files/pkg"
expect_errno EROFS sysop mkdir "$S/new"
expect_event "refused .*snapshots/$ID.*\(EROFS\)"
expect_true "still intact" diff -r --no-dereference "$REF" "$S/files"

test_case unknown_snapshot_is_ENOENT
expect_errno ENOENT ls "$MNT/snapshots/0123456789abcdef0123456789abcdef"
expect_errno ENOENT ls "$MNT/snapshots/not-an-id"

test_case new_snapshot_shows_in_the_listing
ls "$MNT/snapshots" >/dev/null
printf 'other\n' >"$SRC/train.py"
ID2=$("$MLFS_MKSNAP" "$WS" "$SRC") || fail "second snapshot"
listed() { ls "$MNT/snapshots" | grep -qx "$ID2"; }
poll_ms 2000 listed || fail "the new snapshot $ID2 is not listed within 2 s"
expect_eq "other" "$(cat "$MNT/snapshots/$ID2/files/train.py")" "the new snapshot's content"
expect_eq 'print("train")' "$(cat "$S/files/train.py")" "the old snapshot is unchanged"

test_case readme_describes_snapshots
for p in snapshots/ snapshots/ID/ snapshots/ID/snapshot.json snapshots/ID/snapshot.zip \
	snapshots/ID/files/; do
	grep -qE "^$(printf '%s' "$p" | sed 's/[.]/\\./g')[[:space:]]" "$MNT/README" ||
		fail "README does not list $p"
done

test_done
