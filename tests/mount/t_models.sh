#!/bin/bash
# The model registry through the mount: models/register, mkdir/rmdir,
# versions, model.json, read-only files/, aliases, single-file drops.
. "$(dirname "$0")/lib.sh"

M=$MNT/models
SRC=$TMP/src
mkdir -p "$SRC/dir/sub"
printf 'weights-one' >"$SRC/model.bin"
printf 'weights-one' >"$SRC/dir/a.bin"		# same bytes as model.bin
printf 'second' >"$SRC/dir/sub/b.bin"
ln -s a.bin "$SRC/dir/link"			# not followed, not registered

# register REQUEST: the reply line, or "ERR" (the message in $TMP/reg.err)
register() { special_request "$M/register" "$1"; }
nblobs() { find "$WS/blobs" -mindepth 2 -type f -path "$WS/blobs/[0-9a-f][0-9a-f]/*" 2>/dev/null | wc -l; }

mlfs_mount

test_case models_lists_register_and_mkdir_makes_a_model
expect_eq "register" "$(ls "$M")" "empty models/"
mkdir "$M/churn" || fail "mkdir models/churn"
expect_eq "aliases" "$(ls "$M/churn")" "an empty model"
expect_errno EINVAL mkdir "$M/.bad"

test_case register_a_file_replies_name_and_version
expect_eq "churn 1" "$(register "{\"name\": \"churn\", \"path\": \"$SRC/model.bin\", \"framework\": \"sklearn\", \"tags\": {\"team\": \"a\"}, \"properties\": {\"auc\": \"0.9\"}, \"description\": \"first\"}")" "reply"
expect_eq "1" "$(readlink "$M/churn/latest")" "latest"
expect_eq "weights-one" "$(cat "$M/churn/1/files/model.bin")" "the file's bytes"
expect_eq "-r--r--r--" "$(stat -c %A "$M/churn/1/files/model.bin")" "file mode"
expect_eq 11 "$(stat -c %s "$M/churn/1/files/model.bin")" "file size"

test_case model_json_has_the_fields_and_sha256
j=$M/churn/1/model.json
sum=$(sha256sum "$SRC/model.bin" | cut -d' ' -f1)
"$PY" - "$j" "$sum" <<-'EOF' || fail "model.json: $(cat "$j")"
	import json, sys
	d = json.load(open(sys.argv[1]))
	assert d["name"] == "churn" and d["version"] == 1, d
	assert d["description"] == "first" and d["framework"] == "sklearn", d
	assert d["tags"] == {"team": "a"} and d["properties"] == {"auc": "0.9"}, d
	assert d["run"] is None and d["created"].endswith("Z"), d
	assert d["files"] == [{"path": "model.bin", "size": 11, "sha256": sys.argv[2]}], d
EOF

test_case register_a_directory_stores_same_content_once
expect_eq "churn 2" "$(register "{\"name\": \"churn\", \"path\": \"$SRC/dir\"}")" "reply"
expect_eq "a.bin
sub" "$(ls "$M/churn/2/files")" "files/ (no symlink)"
expect_eq "second" "$(cat "$M/churn/2/files/sub/b.bin")" "nested file"
expect_eq 2 "$(nblobs)" "blobs: identical content stored once"
expect_eq "2" "$(readlink "$M/churn/latest")" "latest moves"

test_case register_relative_path_from_writer_cwd
expect_eq "rel 1" "$( cd "$SRC" && register '{"name": "rel", "path": "model.bin"}')" "relative path"

test_case files_are_read_only_erofs
expect_errno EROFS sh -c "echo x >'$M/churn/1/files/model.bin'"
expect_errno EROFS touch "$M/churn/1/files/new"
expect_errno EROFS rm "$M/churn/1/files/model.bin"
expect_errno EROFS mkdir "$M/churn/1/files/d"

test_case files_mmap_and_sha256_match
expect_eq "$(sha256sum <"$SRC/dir/sub/b.bin")" "$(sha256sum <"$M/churn/2/files/sub/b.bin")" "sha256"
expect_eq "b'second'" "$("$PY" -c "
import mmap, sys
f = open(sys.argv[1], 'rb')
print(mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)[:])" "$M/churn/2/files/sub/b.bin")" "mmap"

test_case register_refusals_name_the_field_and_leave_events
events_mark
expect_eq ERR "$(register "{\"name\": \"churn\", \"path\": \"$SRC/model.bin\", \"bogus\": 1}")" "unknown field"
grep -q "field 'bogus': unknown field" "$TMP/reg.err" || fail "message: $(cat "$TMP/reg.err")"
expect_event "refused write models/register: field 'bogus': unknown field"
expect_eq ERR "$(register '{"name": "churn", "path": "/nonexistent"}')" "missing path"
expect_event "refused write models/register: field 'path'.*ENOENT"
expect_eq ERR "$(register "{\"path\": \"$SRC/model.bin\"}")" "no name"
expect_eq ERR "$(register "{\"name\": \"churn\", \"path\": \"$SRC/model.bin\", \"run\": \"nope\"}")" "unknown run"
expect_eq ERR "$(register "{\"name\": \"bad name\", \"path\": \"$SRC/model.bin\"}")" "bad name"
expect_eq "1
2" "$(ls "$M/churn" | grep -E '^[0-9]+$')" "refusals made no version"

test_case aliases_set_move_drop_and_refuse
ln -s 1 "$M/churn/aliases/prod" || fail "ln -s 1 aliases/prod"
expect_eq "../1" "$(readlink "$M/churn/aliases/prod")" "alias target"
expect_eq "weights-one" "$(cat "$M/churn/aliases/prod/files/model.bin")" "through the alias"
events_mark
expect_errno EINVAL ln -s 1 "$M/churn/aliases/latest"
expect_event "refused symlink models/churn/aliases/latest"
expect_errno EINVAL ln -s 1 "$M/churn/aliases/v2"
expect_errno ENOENT ln -s 9 "$M/churn/aliases/staging"
rm "$M/churn/aliases/prod" || fail "rm alias"
expect_eq "" "$(ls "$M/churn/aliases")" "alias dropped"
ln -s 1 "$M/churn/aliases/prod" && ln -sfn 2 "$M/churn/aliases/prod" || fail "ln -sfn moves an alias"
expect_eq "../2" "$(readlink "$M/churn/aliases/prod")" "moved alias"
expect_eq "prod" "$(ls "$M/churn/aliases")" "no temporary alias left"
ln -s 1 "$M/churn/aliases/staging" || fail "ln -s 1 aliases/staging"
mv -T "$M/churn/aliases/staging" "$M/churn/aliases/canary" || fail "mv an alias"
expect_eq "../1" "$(readlink "$M/churn/aliases/canary")" "renamed alias"
events_mark
expect_errno ENOENT mv -T "$M/churn/aliases/staging" "$M/churn/aliases/x"
# rename(2) itself: mv reads EINVAL as "a subdirectory of itself"
expect_errno EINVAL "$PY" -c 'import os, sys; os.rename(sys.argv[1], sys.argv[2])' \
	"$M/churn/aliases/canary" "$M/churn/aliases/v1"
expect_event "refused rename models/churn/aliases/canary: invalid alias 'v1'"
rm "$M/churn/aliases/canary" || fail "rm renamed alias"
rm "$M/churn/aliases/prod" || fail "rm moved alias"

test_case version_tags_are_mutable
expect_eq "a" "$(cat "$M/churn/1/tags/team")" "tag from the request"
echo b >"$M/churn/1/tags/team" || fail "write tag"
echo prod >"$M/churn/1/tags/stage" || fail "new tag"
expect_eq "b" "$(cat "$M/churn/1/tags/team")" "tag replaced"
grep -q '"stage": "prod"' "$M/churn/1/model.json" || fail "model.json tags: $(cat "$M/churn/1/model.json")"
rm "$M/churn/1/tags/stage" || fail "rm tag"
expect_eq "team" "$(ls "$M/churn/1/tags")" "tag removed"

test_case register_from_a_run_links_the_run
mkdir -p "$MNT/experiments/e" && mkdir "$MNT/experiments/e/runs/r1" || fail "mkdir run"
mkdir -p "$WS/runs/r1/outputs/model" && printf 'from-run' >"$WS/runs/r1/outputs/model/w.bin"
expect_eq "fromrun 1" "$(register '{"name": "fromrun", "run": "r1", "path": "outputs/model"}')" "reply"
expect_eq "../../../experiments/e/runs/r1" "$(readlink "$M/fromrun/1/run")" "run link"
expect_eq "from-run" "$(cat "$M/fromrun/1/run/outputs/model/w.bin" 2>/dev/null || cat "$M/fromrun/1/files/w.bin")" "the run's file"
grep -q '"run": "experiments/e/runs/r1"' "$M/fromrun/1/model.json" || fail "model.json run"
expect_eq ERR "$(register '{"name": "fromrun", "run": "r1", "path": "outputs/../../x"}')" "'..' refused"
grep -q "field 'path'" "$TMP/reg.err" || fail "message: $(cat "$TMP/reg.err")"
expect_errno ENOENT ls "$M/churn/1/run"
"$PY" -c "import json,sys; m=json.load(open(sys.argv[1]))['models']; assert m==[{'name':'fromrun','version':1}], m" \
	"$MNT/experiments/e/runs/r1/run.json" || fail "run.json models"

test_case rmdir_version_used_by_an_active_deployment_is_ebusy
# No deployments in the mount yet: pin version 2 the way the store does.
sqlite3 "$WS/workspace.db" "PRAGMA busy_timeout=5000; INSERT INTO deployment_ref (deployment, version_id, active, created_ms) SELECT 'web', v.id, 1, 0 FROM model_version v JOIN model m ON m.id = v.model_id WHERE m.name = 'churn' AND v.version = 2" || fail "pin version 2"
events_mark
expect_errno EBUSY rmdir "$M/churn/2"
expect_event "refused rmdir models/churn/2: .*active deployment.*EBUSY"
sqlite3 "$WS/workspace.db" "PRAGMA busy_timeout=5000; DELETE FROM deployment_ref" || fail "unpin"

test_case rmdir_model_with_versions_is_enotempty
expect_errno ENOTEMPTY rmdir "$M/churn"

test_case rmdir_version_keeps_shared_blobs_and_numbers_are_never_reused
rmdir "$M/churn/1" || fail "rmdir version 1"
expect_eq 3 "$(nblobs)" "the blob shared with version 2 stays (and fromrun/1's)"
expect_errno ENOENT ls "$M/churn/1"
rmdir "$M/churn/2" || fail "rmdir version 2"
expect_eq 2 "$(nblobs)" "blobs of version 2 gone (rel/1 and fromrun/1 keep theirs)"
expect_eq "churn 3" "$(register "{\"name\": \"churn\", \"path\": \"$SRC/model.bin\"}")" "next number"
rmdir "$M/churn/3" && rmdir "$M/churn" || fail "rmdir the model"
expect_eq "fromrun
register
rel" "$(ls "$M")" "model removed"

test_case python_pickle_dump_into_model_then_load_from_latest
mkdir "$M/clf" || fail "mkdir clf"
expect_eq "{'w': [1, 2, 3]}" "$("$PY" - "$M/clf" <<-'EOF'
	import pickle, sys
	d = sys.argv[1]
	with open(d + "/model.pkl", "wb") as f:
	    pickle.dump({"w": [1, 2, 3]}, f)
	with open(d + "/latest/files/model.pkl", "rb") as f:
	    print(pickle.load(f))
EOF
)" "pickle round trip"
expect_eq "1" "$(readlink "$M/clf/latest")" "the drop made version 1"
expect_eq "1
aliases
latest" "$(ls "$M/clf")" "the dropped name is not listed"
expect_errno EINVAL sh -c "echo x >'$M/clf/7'"

test_case a_drop_is_hidden_until_closed_and_fstat_is_exact
expect_eq "1234 hidden" "$("$PY" - "$M/clf/w.bin" <<-'EOF'
	import os, sys
	with open(sys.argv[1], "wb") as f:
	    f.write(b"z" * 1234)
	    f.flush()
	    print(os.fstat(f.fileno()).st_size, "shown" if os.path.exists(sys.argv[1]) else "hidden")
EOF
)" "size while writing, name not listed"
expect_eq 1234 "$(stat -c %s "$M/clf/latest/files/w.bin")" "the version after close"

test_case a_killed_writer_leaves_no_version
events_mark
"$PY" - "$M/clf/part.bin" <<-'EOF'
	import os, signal, sys
	f = open(sys.argv[1], "wb")
	f.write(b"x" * 100000)
	f.flush()
	os.kill(os.getpid(), signal.SIGKILL)
EOF
expect_eq "2" "$(readlink "$M/clf/latest")" "no version from the killed writer"
expect_event "refused close models/clf/part.bin: the writer was killed by a signal"
expect_eq 0 "$(find "$WS/cache" "$WS/blobs/tmp" -type f -not -path "$WS/cache/http/*" 2>/dev/null | wc -l)" "no temporary file left"

test_case daemon_killed_during_a_drop_leaves_no_version
"$PY" - "$M/clf/slow.bin" "$TMP/slow.started" <<-'EOF' 2>/dev/null &
	import sys, time
	f = open(sys.argv[1], "wb")
	f.write(b"y" * 100000)
	open(sys.argv[2], "w").close()
	try:
	    while True:
	        f.write(b"y" * 1000)
	        time.sleep(0.05)
	except OSError:
	    pass
EOF
writer=$!
poll_ms 5000 test -e "$TMP/slow.started" || fail "the writer did not start"
mlfs_kill9
pid_wait_gone "$writer" 30 || { kill -9 "$writer"; fail "writer still running after the kill"; }
wait "$writer" 2>/dev/null
mlfs_mount
expect_eq "2" "$(readlink "$M/clf/latest")" "no version from the interrupted drop"
expect_eq 0 "$(find "$WS/cache" "$WS/blobs" -type f -newer "$TMP/slow.started" -not -path "$WS/cache/http/*" | wc -l)" "no file left by the drop"

test_case numpy_load_with_mmap_mode_reads_a_version_file
"$PY" -c 'import numpy, sys; numpy.save(sys.argv[1], numpy.arange(1000, dtype="float64"))' \
	"$TMP/arr.npy" || fail "numpy.save"
expect_eq "npy 1" "$(register "{\"name\": \"npy\", \"path\": \"$TMP/arr.npy\"}")" "reply"
expect_eq "499500.0 True" "$("$PY" -c '
import numpy, sys
a = numpy.load(sys.argv[1], mmap_mode="r")
print(float(a.sum()), isinstance(a, numpy.memmap))' "$M/npy/latest/files/arr.npy")" "numpy memmap"

test_case the_kernel_reads_version_files_without_the_daemon
head -c $((8 * 1024 * 1024)) /dev/urandom >"$TMP/weights.bin"
expect_eq "pt 1" "$(register "{\"name\": \"pt\", \"path\": \"$TMP/weights.bin\"}")" "reply"
want=$(sha256sum <"$TMP/weights.bin" | cut -d' ' -f1)
if passthrough_possible; then
	expect_eq "$want" "$(read_with_daemon_stopped "$M/pt/1/files/weights.bin")" \
		"a model file is read by the kernel from its blob (passthrough)"
else
	echo "# Linux $(uname -r) or not root: no passthrough, reads go through mlfs"
fi
# Opens of one file share its backing file; one closed, the others read on.
"$PY" - "$M/pt/1/files/weights.bin" "$want" <<-'EOF' || fail "overlapping opens"
	import hashlib, mmap, os, sys
	p, want = sys.argv[1], sys.argv[2]
	a, b = open(p, "rb"), open(p, "rb")
	m = mmap.mmap(b.fileno(), 0, prot=mmap.PROT_READ)
	a.close()
	c = open(p, "rb")
	assert hashlib.sha256(c.read()).hexdigest() == want
	assert hashlib.sha256(m[:]).hexdigest() == want
	m.close(); b.close(); c.close()
	assert hashlib.sha256(open(p, "rb").read()).hexdigest() == want
	EOF

test_case passthrough_0_reads_the_same_bytes_through_the_daemon
mlfs_unmount
mlfs_mount -o passthrough=0
expect_eq "blocked" "$(read_with_daemon_stopped "$M/pt/1/files/weights.bin")" "passthrough=0: reads need the daemon"
expect_eq "$want" "$(sha256sum <"$M/pt/1/files/weights.bin" | cut -d' ' -f1)" "sha256 through the daemon"
expect_eq "499500.0" "$("$PY" -c 'import numpy, sys; print(float(numpy.load(sys.argv[1], mmap_mode="r").sum()))' "$M/npy/latest/files/arr.npy")" "mmap through the daemon"
mlfs_unmount
mlfs_mount
rm -f "$TMP/weights.bin"

test_case four_concurrent_registrations_make_versions_1_to_4_each_whole
for i in 1 2 3 4; do
	head -c $((4 * 1024 * 1024)) /dev/urandom >"$TMP/conc$i.bin"
done
pids=
for i in 1 2 3 4; do
	( register "{\"name\": \"conc\", \"path\": \"$TMP/conc$i.bin\"}" >"$TMP/conc$i.reply" ) &
	pids="$pids $!"
done
# shellcheck disable=SC2086 # one pid each
wait $pids
expect_eq "conc 1
conc 2
conc 3
conc 4" "$(cat "$TMP"/conc?.reply | sort)" "replies"
for v in 1 2 3 4; do
	f=$(ls "$M/conc/$v/files")
	case $f in conc[1-4].bin) ;; *) fail "version $v holds '$f'" ;; esac
	expect_eq "$(sha256sum <"$TMP/$f")" "$(sha256sum <"$M/conc/$v/files/$f")" "version $v bytes"
	grep -q "\"sha256\": \"$(sha256sum <"$TMP/$f" | cut -d' ' -f1)\"" "$M/conc/$v/model.json" ||
		fail "version $v model.json sha256"
	echo "$f"
done | sort >"$TMP/conc.files"
expect_eq "conc1.bin
conc2.bin
conc3.bin
conc4.bin" "$(grep '^conc' "$TMP/conc.files")" "each source registered once"

test_case daemon_killed_during_a_1gib_registration_leaves_no_version_nor_blob
# 1 GiB of distinct bytes: 16 copies of 64 MiB of random data, each copy
# with its index in front, so no two blobs (and no old one) match.
head -c $((64 * 1024 * 1024)) /dev/urandom >"$TMP/chunk" || fail "random chunk"
for i in $(seq 16); do printf '%08d' "$i"; cat "$TMP/chunk"; done >"$TMP/big.bin"
rm -f "$TMP/chunk"
mkdir "$M/big" || fail "mkdir big"
before=$(nblobs)
( register "{\"name\": \"big\", \"path\": \"$TMP/big.bin\"}" >"$TMP/big.reply" 2>&1 ) &
writer=$!
# The daemon's temporary blob (O_TMPFILE, or blobs/tmp/) shows among its
# descriptors once the copy has begun.
poll_ms 20000 sh -c "ls -l /proc/$MLFS_PID/fd 2>/dev/null | grep -q '$WS/blobs/'" ||
	fail "the registration never started copying"
mlfs_kill9
wait "$writer" 2>/dev/null
mlfs_mount
expect_errno ENOENT ls "$M/big/latest"
expect_eq "aliases" "$(ls "$M/big")" "no version of big"
expect_eq "$before" "$(nblobs)" "no blob left by the killed registration"
expect_eq 0 "$(find "$WS/blobs/tmp" -type f 2>/dev/null | wc -l)" "no temporary left"
expect_eq "big 1" "$(register "{\"name\": \"big\", \"path\": \"$TMP/big.bin\"}")" "registering again works"
expect_eq "$(sha256sum <"$TMP/big.bin")" "$(sha256sum <"$M/big/1/files/big.bin")" "the whole 1 GiB"
rmdir "$M/big/1" && rmdir "$M/big" || fail "remove big"
rm -f "$TMP/big.bin"

test_case listing_files_warms_the_blobs_and_ls_l_matches_model_json
mkdir -p "$TMP/shards/sub"
for i in $(seq 30); do head -c $((i * 3000)) /dev/urandom >"$TMP/shards/s$i.bin"; done
head -c 5000 /dev/urandom >"$TMP/shards/sub/tok.json"
expect_eq "shards 1" "$(register "{\"name\": \"shards\", \"path\": \"$TMP/shards\"}")" "reply"
blobs=$("$PY" -c 'import json, sys
print(" ".join(f["sha256"] for f in json.load(open(sys.argv[1]))["files"]))' "$M/shards/1/model.json")
# all_resident: every blob of the version has all its pages in memory
all_resident() {
	local b
	for b in $blobs; do
		fincore -n -b -o RES,SIZE "$WS/blobs/${b:0:2}/${b:2}"
	done | awk '$1 < $2 {short++} END {exit short > 0}'
}
if [ -w /proc/sys/vm/drop_caches ]; then
	sync && echo 3 >/proc/sys/vm/drop_caches
	all_resident && fail "the blobs stayed in memory after drop_caches: this case cannot see a prefetch"
	ls "$M/shards/1/files" >/dev/null || fail "ls files/"
	poll_ms 5000 all_resident || fail "listing files/ did not warm the version's blobs"
else
	echo "# not root: the prefetch half of this case needs drop_caches"
fi
# readdirplus answers from the listing: what it says must be model.json's
expect_files_match "$M/shards/1" model.json

test_case unreferenced_blobs_are_removed_at_mount_unless_a_put_is_open
mlfs_unmount
old=$WS/blobs/00/$(printf '%062d' 0)
young=$WS/blobs/00/$(printf '%062d' 1)
mkdir -p "$WS/blobs/00" && echo junk >"$old" && echo junk >"$young" &&
	touch -d '2 hours ago' "$old" || fail "make fake blobs"
kept=$(nblobs)
# Another process between a blob put and its commit holds this lock:
# young unreferenced blobs may be its, old ones are orphans anyway.
"$PY" -c 'import fcntl, sys, time
f = open(sys.argv[1], "a")
fcntl.flock(f, fcntl.LOCK_SH)
time.sleep(60)' "$WS/blobs/.puts" &
holder=$!
poll_ms 5000 sh -c "! flock -n -x '$WS/blobs/.puts' true" || fail "the holder did not lock"
mlfs_mount
[ ! -e "$old" ] || fail "an old unreferenced blob survived the mount"
[ -e "$young" ] || fail "a young unreferenced blob was removed while a put was open"
expect_eq "$((kept - 1))" "$(nblobs)" "only the old orphan went"
kill "$holder"
wait "$holder" 2>/dev/null
mlfs_unmount
mlfs_mount
[ ! -e "$young" ] || fail "a young orphan survived a mount with no put open"
expect_eq "$((kept - 2))" "$(nblobs)" "both orphans gone, every version's blob kept"
expect_eq "{'w': [1, 2, 3]}" "$("$PY" -c "import pickle,sys; print(pickle.load(open(sys.argv[1],'rb')))" "$M/clf/1/files/model.pkl")" "versions still read after remount"

test_done
