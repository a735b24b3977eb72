#!/bin/bash
# Datastores through the mount: datastores/register, NAME/datastore.json,
# the default datastore, and files/ of a local datastore as a faithful
# read-write view of its directory (errnos, permissions, owners, renames,
# links, changes made outside). Secrets of HTTP datastores never show.
. "$(dirname "$0")/lib.sh"

DS=$MNT/datastores
F=$DS/default/files
BACK=$WS/datastore			# the default datastore's directory
SECRET="Bearer s3cr3t-$$-$RANDOM-token"
NOBODY=65534

# register REQUEST: the reply line, or "ERR" (the message in $TMP/reg.err)
register() { special_request "$DS/register" "$1"; }
# as_nobody CMD...: CMD as uid/gid 65534 without supplementary groups
as_nobody() { setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups "$@"; }
# pyrename FROM TO: one rename(2), its errno printed as sysop does
pyrename()
{
	"$PY" -c 'import errno, os, sys
try:
    os.rename(sys.argv[1], sys.argv[2])
except OSError as e:
    print("%s: %s" % (errno.errorcode[e.errno], e.strerror), file=sys.stderr)
    sys.exit(1)' "$1" "$2"
}

SRC=$TMP/src
mkdir -p "$SRC/tree/sub/deeper"
head -c 300000 /dev/urandom >"$SRC/tree/big.bin"
printf 'a,b\n1,2\n3,4\n' >"$SRC/tree/sub/t.csv"
printf '#!/bin/sh\necho hi\n' >"$SRC/tree/run.sh"
chmod 755 "$SRC/tree/run.sh"
ln -s sub/t.csv "$SRC/tree/link"
: >"$SRC/tree/sub/deeper/empty"

# allow_other: the permission cases act as another user, who must be able
# to reach the mount point.
chmod 755 "$TMP"
mlfs_mount -o allow_other

test_case datastores_lists_register_and_the_default
expect_eq "default register" "$(ls "$DS" | tr '\n' ' ' | sed 's/ $//')" "datastores/"
expect_eq "datastore.json files" "$(ls "$DS/default" | tr '\n' ' ' | sed 's/ $//')" "default/"
"$PY" - "$DS/default/datastore.json" "$BACK" <<-'EOF' || fail "datastore.json"
	import json, sys
	d = json.load(open(sys.argv[1]))
	assert d["name"] == "default" and d["type"] == "local", d
	assert d["path"] == sys.argv[2], d
	assert d["created"].endswith("Z"), d
	EOF
expect_true "the directory exists" test -d "$BACK"

test_case default_cannot_be_removed
events_mark
expect_errno EPERM rmdir "$DS/default"
expect_event "refused rmdir datastores/default: .*default datastore cannot be removed"
expect_true "still there" test -d "$DS/default/files"

test_case cp_and_tar_through_files_keep_every_byte_mode_and_link
cp -a "$SRC/tree" "$F/" || fail "cp -a into files/"
expect_true "same tree through the mount" diff -r "$SRC/tree" "$F/tree"
expect_true "same tree on disk" diff -r "$SRC/tree" "$BACK/tree"
expect_eq "sub/t.csv" "$(readlink "$F/tree/link")" "the symlink is a symlink"
expect_eq "755" "$(stat -c %a "$F/tree/run.sh")" "mode kept"
expect_eq "hi" "$("$F/tree/run.sh")" "an executable runs from the mount"
expect_eq "$(cd "$SRC" && tar cf - tree | tar tvf - | awk '{print $1, $3, $6}' | sort)" \
	  "$(cd "$F" && tar cf - tree | tar tvf - | awk '{print $1, $3, $6}' | sort)" "tar of files/"
expect_eq "$(stat -c '%s %Y' "$BACK/tree/big.bin")" "$(stat -c '%s %Y' "$F/tree/big.bin")" "size and mtime are the file's"

test_case edits_act_on_the_directory_itself
printf 'x' >>"$F/tree/sub/t.csv" || fail "append"
expect_eq "$(cat "$BACK/tree/sub/t.csv")" "$(cat "$F/tree/sub/t.csv")" "append"
truncate -s 4 "$F/tree/sub/t.csv" || fail "truncate"
expect_eq "4" "$(stat -c %s "$BACK/tree/sub/t.csv")" "truncate"
chmod 640 "$F/tree/sub/t.csv" || fail "chmod"
expect_eq "640" "$(stat -c %a "$BACK/tree/sub/t.csv")" "chmod"
touch -d '2021-02-03 04:05:06 UTC' "$F/tree/sub/t.csv" || fail "touch"
expect_eq "1612325106" "$(stat -c %Y "$BACK/tree/sub/t.csv")" "utimens"
mv "$F/tree/sub" "$F/tree/moved" || fail "mv a directory"
expect_true "moved on disk" test -f "$BACK/tree/moved/t.csv"
expect_eq "a,b" "$(head -c 3 "$F/tree/moved/t.csv")" "read by its new name"
mv "$F/tree/moved/deeper/empty" "$F/renamed" || fail "mv across directories"
expect_true "renamed on disk" test -f "$BACK/renamed"
ln "$F/renamed" "$F/hard" || fail "ln"
expect_eq "2" "$(stat -c %h "$BACK/renamed")" "hard link on disk"
ln -s renamed "$F/soft" || fail "ln -s"
expect_eq "renamed" "$(readlink "$BACK/soft")" "symlink on disk"
ln -sfn hard "$F/soft" || fail "ln -sfn"
expect_eq "hard" "$(readlink "$F/soft")" "replaced link through the mount"
rm "$F/hard" "$F/soft" "$F/renamed" && rm -r "$F/tree/moved" || fail "rm"
expect_eq "big.bin link run.sh" "$(ls "$BACK/tree" | tr '\n' ' ' | sed 's/ $//')" "removed on disk"

test_case errnos_are_the_local_filesystems
mkdir -p "$F/e/full" && : >"$F/e/full/x" && : >"$F/e/file" || fail "setup"
expect_errno EEXIST sysop mkdir "$F/e/full"
expect_errno ENOTEMPTY sysop rmdir "$F/e/full"
expect_errno ENOENT sysop unlink "$F/e/missing"
expect_errno ENOTDIR sysop rmdir "$F/e/file"
expect_errno EISDIR sysop unlink "$F/e/full"
expect_errno EISDIR sysop openw "$F/e/full"
mkdir "$F/e/other" && : >"$F/e/other/y"
expect_errno ENOTEMPTY pyrename "$F/e/other" "$F/e/full"
expect_errno ENOTDIR pyrename "$F/e/full" "$F/e/file"
expect_errno ENOENT sysop read "$F/e/nothing/here"
expect_errno EXDEV pyrename "$F/e/file" "$MNT/models/file"

test_case permissions_and_owners_are_the_callers
mkdir "$F/p" && chmod 777 "$F/p" || fail "setup"
printf 'root only' >"$F/p/secret" && chmod 600 "$F/p/secret"
expect_errno EACCES as_nobody cat "$F/p/secret"
as_nobody sh -c "printf mine >'$F/p/theirs'" || fail "nobody writes in a 777 directory"
expect_eq "$NOBODY:$NOBODY" "$(stat -c %u:%g "$BACK/p/theirs")" "owned by the caller on disk"
as_nobody mkdir "$F/p/d" || fail "nobody mkdir"
expect_eq "$NOBODY" "$(stat -c %u "$BACK/p/d")" "directory owned by the caller"
chmod 755 "$F/p"
expect_errno EACCES as_nobody touch "$F/p/new"
expect_errno EPERM as_nobody chmod 777 "$F/p/secret"
# made outside, so no name is cached by the kernel: the lookup reaches us
mkdir -m 700 "$BACK/p/closed" && : >"$BACK/p/closed/in"
expect_errno EACCES as_nobody ls "$F/p/closed/in"
expect_eq "mine" "$(as_nobody cat "$F/p/theirs")" "the owner reads"

test_case changes_made_outside_show_within_a_second
printf 'outside' >"$BACK/out.txt"
poll_ms 1500 test -f "$F/out.txt" || fail "a new file outside"
expect_eq "outside" "$(cat "$F/out.txt")" "its bytes"
printf 'longer outside' >"$BACK/out.txt"
poll_ms 1500 sh -c "[ \"\$(cat '$F/out.txt')\" = 'longer outside' ]" || fail "changed outside"
rm "$BACK/out.txt"
poll_ms 1500 sh -c "! test -e '$F/out.txt'" || fail "removed outside"

test_case pandas_writes_and_reads_a_csv
"$PY" - "$F" <<-'EOF' || fail "pandas"
	import sys, pandas as pd, numpy as np
	d = sys.argv[1]
	df = pd.DataFrame({"x": np.arange(1000), "y": np.arange(1000) * 0.5})
	df.to_csv(d + "/frame.csv", index=False)
	back = pd.read_csv(d + "/frame.csv")
	assert back.equals(df), back.head()
	np.save(d + "/arr.npy", np.arange(10000.0))
	assert np.load(d + "/arr.npy", mmap_mode="r")[9999] == 9999.0
	EOF
expect_true "on disk" test -s "$BACK/frame.csv"

test_case register_a_local_datastore
mkdir -p "$TMP/data/in"
printf 'local bytes' >"$TMP/data/in/f.txt"
expect_eq "mydata" "$(cd "$TMP" && register '{"name": "mydata", "type": "local", "path": "data"}')" "relative to the writer's cwd"
"$PY" - "$DS/mydata/datastore.json" "$TMP/data" <<-'EOF' || fail "datastore.json"
	import json, sys
	d = json.load(open(sys.argv[1]))
	assert d["type"] == "local" and d["path"] == sys.argv[2], d
	EOF
expect_eq "local bytes" "$(cat "$DS/mydata/files/in/f.txt")" "its files"
expect_eq "default mydata register" "$(ls "$DS" | tr '\n' ' ' | sed 's/ $//')" "listed"
expect_errno EXDEV pyrename "$DS/mydata/files/in/f.txt" "$F/f.txt"
mv "$DS/mydata/files/in/f.txt" "$F/f.txt" || fail "mv copies across datastores"
expect_eq "local bytes" "$(cat "$BACK/f.txt")" "moved across"

test_case register_refusals_name_the_problem
expect_eq "ERR" "$(register "{\"name\": \"mydata\", \"type\": \"local\", \"path\": \"$TMP/data\"}")" "taken"
grep -q "exists" "$TMP/reg.err" || fail "EEXIST message: $(cat "$TMP/reg.err")"
expect_eq "ERR" "$(register "{\"name\": \".bad\", \"type\": \"local\", \"path\": \"$TMP/data\"}")" "bad name"
grep -q "invalid name" "$TMP/reg.err" || fail "name message"
expect_eq "ERR" "$(register "{\"name\": \"x\", \"type\": \"local\", \"path\": \"$TMP/nope\"}")" "missing dir"
expect_eq "ERR" "$(register "{\"name\": \"x\", \"type\": \"local\", \"path\": \"$SRC/tree/big.bin\"}")" "a file"
expect_eq "ERR" "$(register '{"name": "x", "type": "s3", "url": "http://h/"}')" "bad type"
expect_eq "ERR" "$(register '{"name": "x", "type": "http", "url": "http://u:p@127.0.0.1/"}')" "userinfo in the URL"
expect_eq "ERR" "$(register "{\"name\": \"x\", \"type\": \"local\", \"path\": \"$TMP/data\", \"color\": 1}")" "unknown field"
grep -q "field 'color'" "$TMP/reg.err" || fail "unknown field message"
expect_eq "ERR" "$(register '{"name": "default", "type": "local", "path": "/tmp"}')" "replace default"
expect_eq "ERR" "$(register "{\"name\": \"x\", \"type\": \"local\", \"path\": \"$WS\"}")" "the workspace itself"
grep -q "workspace's own files" "$TMP/reg.err" || fail "message: $(cat "$TMP/reg.err")"
expect_eq "ERR" "$(register "{\"name\": \"x\", \"type\": \"local\", \"path\": \"$WS/blobs\"}")" "inside the workspace"
expect_eq "ERR" "$(register '{"name": "x", "type": "local", "path": "/"}')" "above the workspace"
mkdir -p "$BACK/sub"
expect_eq "sub" "$(register "{\"name\": \"sub\", \"type\": \"local\", \"path\": \"$BACK/sub\"}")" "below the default datastore is fine"
rmdir "$DS/sub" || fail "rmdir sub"
exec 3<>"$DS/register"
expect_errno ENOENT bash -c "printf '%s' '{\"name\": \"x\", \"type\": \"local\", \"path\": \"$TMP/nope\"}' >&3"
exec 3>&-
expect_errno EEXIST bash -c "printf '%s' '{\"name\": \"mydata\", \"type\": \"local\", \"path\": \"$TMP/data\"}' >'$DS/register'"

test_case rmdir_forgets_a_datastore_and_keeps_its_files
rmdir "$DS/mydata" || fail "rmdir"
expect_eq "default register" "$(ls "$DS" | tr '\n' ' ' | sed 's/ $//')" "gone from the listing"
expect_true "its directory is untouched" test -d "$TMP/data/in"

test_case http_header_values_never_show
expect_eq "web" "$(register "{\"name\": \"web\", \"type\": \"http\", \"url\": \"http://127.0.0.1:9/base\", \"headers\": {\"Authorization\": \"$SECRET\", \"X-Team\": \"$SECRET-2\"}}")" "registered"
"$PY" - "$DS/web/datastore.json" <<-'EOF' || fail "datastore.json"
	import json, sys
	d = json.load(open(sys.argv[1]))
	assert d["type"] == "http" and d["url"] == "http://127.0.0.1:9/base", d
	assert sorted(d["headers"]) == ["Authorization", "X-Team"], d
	EOF
# a malformed request holding the secret: the refusal must not quote it
printf '{"name": "w2", "type": "http", "headers": {"A": "%s" x}}' "$SECRET" >"$DS/register" 2>"$TMP/bad.err"
register "{\"name\": \"w3\", \"type\": \"http\", \"url\": \"http://127.0.0.1:9/\", \"headers\": {\"Bad Name\": \"$SECRET\"}}" >/dev/null
expect_eq "600" "$(stat -c %a "$WS/credentials")" "the credential store is 0600"
grep -q -- "$SECRET" "$WS/credentials" || fail "the secret is in the credential store"
expect_eq "" "$(grep -rl --exclude-dir=files -- "$SECRET" "$MNT" 2>/dev/null)" "nowhere in the mount"
expect_eq "" "$(grep -l -- "$SECRET" "$TMP/bad.err" "$TMP/reg.err" "$LOG")" "nowhere in messages or the log"
expect_eq "" "$(grep -rl --exclude=credentials -- "$SECRET" "$WS")" "nowhere in the workspace but the credential store"

test_done
