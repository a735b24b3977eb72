#!/bin/bash
# Submitting runs through experiments/E/submit: the special-file protocol,
# mlfs submit, refusals, snapshots and git information.
# (t_submit_runs.sh: what a run does; t_submit_crash.sh: kill -9.)
. "$(dirname "$0")/lib.sh"
trap 's=$?; submit_reap_all; (exit $s); on_exit' EXIT

mkdir -p "$TMP/pids"
X=$MNT/experiments/e
RUNS=$X/runs
PYENV='"environment": {"interpreter": "/usr/bin/python3"}'

# The default source: train.py prints, logs a metric and exits with
# argument 1 (default 0).
SRC=$TMP/src
mkdir "$SRC"
cat >"$SRC/train.py" <<-'EOF'
	import os, sys
	print("hello from train.py", os.environ.get("MLFS_RUN_ID"))
	print("to stderr", file=sys.stderr)
	with open(os.environ["MLFS_METRICS"], "a") as m:
	    m.write("loss 0.5\n")
	for i in range(12):
	    print("tail line %d" % i)
	sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
EOF

# req SOURCE [MORE_FIELDS]: a request running train.py from SOURCE.
req()
{
	printf '{"source_directory": "%s", "script": "train.py", %s%s}' \
		"$1" "$PYENV" "${2:+, $2}"
}

nruns() { find "$RUNS" -mindepth 1 -maxdepth 1 ! -name latest | wc -l; }
nsnaps() { find "$WS/snapshots" -type f -name '*.zip' 2>/dev/null | wc -l; }
is_run_id() { [[ $1 =~ ^[A-Za-z0-9_-][A-Za-z0-9._-]*$ ]] && [ -d "$RUNS/$1" ]; }

mlfs_mount
mkdir "$X" || fail "mkdir experiment"

# ---- the protocol ---------------------------------------------------------

test_case exec_rw_fd_printf_read_gives_run_id
exec 3<>"$X/submit"
printf '%s' "$(req "$SRC")" >&3 || fail "printf into submit"
id=
read -r id <&3 || fail "read the reply"
exec 3>&-
is_run_id "$id" || fail "reply '$id' is not a run directory"
expect_eq "$id" "$(readlink "$RUNS/latest")" "runs/latest"
expect_eq Completed "$(run_wait_end "$RUNS/$id")" "the run's end"
first=$id

test_case mlfs_submit_prints_run_id
req "$SRC" >"$TMP/req.json"
out=$("$MLFS" submit "$X" "$TMP/req.json" 2>"$TMP/err")
expect_eq 0 "$?" "exit status"
expect_eq "" "$(cat "$TMP/err")" "stderr"
is_run_id "$out" || fail "stdout '$out' is not a run id"
expect_eq "$out" "$(readlink "$RUNS/latest")" "runs/latest"
[ "$out" != "$first" ] || fail "the same id twice"
run_wait_end "$RUNS/$out" >/dev/null

test_case mlfs_submit_reads_request_from_stdin
out=$("$MLFS" submit "$X" - <"$TMP/req.json" 2>"$TMP/err")
expect_eq 0 "$?" "exit status"
is_run_id "$out" || fail "stdout '$out' is not a run id: $(cat "$TMP/err")"
run_wait_end "$RUNS/$out" >/dev/null

test_case mlfs_submit_wait_streams_log_and_exits_0_on_completed
out=$("$MLFS" submit "$X" "$TMP/req.json" --wait 2>"$TMP/err")
expect_eq 0 "$?" "exit status"
id=$(readlink "$RUNS/latest")
expect_eq "hello from train.py $id
to stderr
tail line 0
tail line 1
tail line 2
tail line 3
tail line 4
tail line 5
tail line 6
tail line 7
tail line 8
tail line 9
tail line 10
tail line 11" "$out" "stdout is the run's log"
grep -qx "$id: Completed" "$TMP/err" || fail "no '$id: Completed' on stderr: $(cat "$TMP/err")"
expect_eq Completed "$(cat "$RUNS/$id/status")" "status"

test_case mlfs_submit_wait_exits_1_with_error_on_failed
req "$SRC" '"arguments": ["3"]' >"$TMP/req3.json"
out=$("$MLFS" submit "$X" "$TMP/req3.json" --wait 2>"$TMP/err")
expect_eq 1 "$?" "exit status"
id=$(readlink "$RUNS/latest")
printf '%s\n' "$out" | grep -qx "tail line 11" || fail "log not streamed: $out"
grep -q "^mlfs: run $id Failed: exited with code 3" "$TMP/err" ||
	fail "no error line on stderr: $(cat "$TMP/err")"
grep -q "(exit code 3)" "$TMP/err" || fail "exit code not shown: $(cat "$TMP/err")"
expect_eq Failed "$(cat "$RUNS/$id/status")" "status"

test_case o_trunc_redirect_into_submit_is_accepted
before=$(readlink "$RUNS/latest")
out=$(echo "$(req "$SRC")" 2>&1 >"$X/submit") || fail "echo > submit failed: $out"
after=$(readlink "$RUNS/latest")
[ "$after" != "$before" ] || fail "runs/latest did not move: no run made"
is_run_id "$after" || fail "runs/latest -> '$after'"
# O_RDWR|O_TRUNC, reply read back
out=$("$PY" - "$X/submit" "$(req "$SRC")" <<-'EOF'
	import os, sys
	fd = os.open(sys.argv[1], os.O_RDWR | os.O_TRUNC)
	os.write(fd, sys.argv[2].encode())
	print(os.read(fd, 4096).decode().strip())
	EOF
)
is_run_id "$out" || fail "O_RDWR|O_TRUNC reply '$out'"
expect_eq "$out" "$(readlink "$RUNS/latest")" "runs/latest after O_TRUNC"

test_case json_split_over_two_writes_acts_at_the_second
n0=$(nruns)
r=$(req "$SRC")
out=$("$PY" - "$X/submit" "$RUNS" "${r:0:25}" "${r:25}" <<-'EOF'
	import os, sys
	path, runs, a, b = sys.argv[1:5]
	count = lambda: len([n for n in os.listdir(runs) if n != "latest"])
	fd = os.open(path, os.O_RDWR)
	n0 = count()
	os.write(fd, a.encode())
	early = os.read(fd, 4096)
	if early:
	    print("read after the first write gave %r" % early)
	if count() != n0:
	    print("a run was made after the first write")
	os.write(fd, b.encode())
	rid = os.read(fd, 4096).decode()
	if not rid.endswith("\n") or count() != n0 + 1:
	    print("after the second write: reply %r, runs %d -> %d" % (rid, n0, count()))
	print("ID " + rid.strip())
	EOF
)
id=$(printf '%s\n' "$out" | sed -n 's/^ID //p')
printf '%s\n' "$out" | grep -qv '^ID ' && fail "split write: $out"
is_run_id "$id" || fail "reply '$id'"
expect_eq $((n0 + 1)) "$(nruns)" "one new run"

test_case second_request_on_same_descriptor_is_EINVAL
n0=$(nruns)
out=$("$PY" - "$X/submit" "$(req "$SRC")" <<-'EOF'
	import errno, os, sys
	fd = os.open(sys.argv[1], os.O_RDWR)
	os.write(fd, sys.argv[2].encode())
	print("first:", os.read(fd, 4096).decode().strip())
	os.write(fd, b"\n  \n")	# whitespace after a request is fine
	try:
	    os.write(fd, sys.argv[2].encode())
	    print("second: accepted")
	except OSError as e:
	    print("second:", errno.errorcode[e.errno], os.read(fd, 4096).decode().strip())
	EOF
)
second=$(printf '%s\n' "$out" | sed -n 's/^second: //p')
case $second in
"EINVAL "*"one request per open"*) ;;
*) fail "second request: '$second'" ;;
esac
expect_event "refused write experiments/e/submit: one request per open.*\(EINVAL\)"
expect_eq $((n0 + 1)) "$(nruns)" "exactly one new run"

test_case whole_json_in_one_write_with_trailing_newline_is_one_request
out=$(submit_fd "$X/submit" "$(req "$SRC")
")
is_run_id "$out" || fail "reply '$out'"

test_case incomplete_json_is_refused_at_close
n0=$(nruns)
out=$("$PY" - "$X/submit" <<-'EOF'
	import errno, os, sys
	fd = os.open(sys.argv[1], os.O_WRONLY)
	os.write(fd, b'{"script": "train.py"')
	try:
	    os.close(fd)
	    print("close: OK")
	except OSError as e:
	    print("close:", errno.errorcode[e.errno])
	EOF
)
expect_eq "close: EINVAL" "$out" "close of an incomplete request"
expect_event "refused write experiments/e/submit: incomplete request.*\(EINVAL\)"
expect_eq "$n0" "$(nruns)" "no run made"

# ---- refusals ---------------------------------------------------------------

# A source nothing was snapshotted from yet, so a refusal that still made
# a snapshot shows in $WS/snapshots.
SRCR=$TMP/src_refused
mkdir "$SRCR"
cp "$SRC/train.py" "$SRCR/"
echo "unique $RANDOM $$" >"$SRCR/unique.txt"

# refused ERRNO REGEX REQUEST: the write fails with ERRNO, the reply read
# back and an events line match REGEX, and no run or snapshot is made.
refused()
{
	local want=$1 re=$2 request=$3 out runs0 snaps0
	runs0=$(nruns)
	snaps0=$(nsnaps)
	out=$(submit_fd "$X/submit" "$request") && {
		fail "accepted (reply '$out'): $request"
		return 1
	}
	case $out in
	"$want: "*) ;;
	*) fail "want $want, got '$out' for $request" ;;
	esac
	printf '%s\n' "${out#*: }" | grep -qE -- "$re" ||
		fail "reply '${out#*: }' does not match /$re/"
	expect_event "refused write experiments/e/submit: .*$re.*\($want\)"
	expect_eq "$runs0" "$(nruns)" "no new run after the refusal"
	expect_eq "$snaps0" "$(nsnaps)" "no new snapshot after the refusal"
}

test_case refuse_bad_json_EINVAL
refused EINVAL "invalid JSON" '{"script" "train.py"}'
refused EINVAL "invalid JSON" '{"script": "train.py"}}'

test_case refuse_request_that_is_not_an_object_EINVAL
refused EINVAL "JSON object" '["train.py"]'
refused EINVAL "JSON" '"train.py"'

test_case refuse_unknown_field_EINVAL
refused EINVAL "field 'bogus'" "$(req "$SRCR" '"bogus": 1')"
refused EINVAL "field 'environment.interp'" \
	"{\"source_directory\": \"$SRCR\", \"script\": \"train.py\", \"environment\": {\"interp\": \"x\"}}"

test_case refuse_wrong_types_EINVAL
refused EINVAL "field 'script'" "{\"source_directory\": \"$SRCR\", \"script\": 5}"
refused EINVAL "field 'arguments'" "$(req "$SRCR" '"arguments": ["--lr", 0.1]')"
refused EINVAL "field 'arguments'" "$(req "$SRCR" '"arguments": "--lr"')"
refused EINVAL "field 'tags.team'" "$(req "$SRCR" '"tags": {"team": 1}')"
refused EINVAL "field 'max_run_duration_seconds'" "$(req "$SRCR" '"max_run_duration_seconds": -1')"
refused EINVAL "field 'max_run_duration_seconds'" "$(req "$SRCR" '"max_run_duration_seconds": 0')"
refused EINVAL "field 'max_run_duration_seconds'" "$(req "$SRCR" '"max_run_duration_seconds": 1.5')"
refused EINVAL "field 'source_directory'" '{"source_directory": 7, "script": "train.py"}'
refused EINVAL "field 'command'" "{\"source_directory\": \"$SRCR\", \"command\": []}"
refused EINVAL "field 'environment.variables.K'" \
	"{\"source_directory\": \"$SRCR\", \"script\": \"train.py\", \"environment\": {\"variables\": {\"K\": 1}}}"
refused EINVAL "field 'environment.variables.1X'" \
	"{\"source_directory\": \"$SRCR\", \"script\": \"train.py\", \"environment\": {\"variables\": {\"1X\": \"v\"}}}"

test_case refuse_missing_script_and_command_EINVAL
refused EINVAL "field 'script'.*command" "{\"source_directory\": \"$SRCR\"}"

test_case refuse_both_script_and_command_EINVAL
refused EINVAL "field '(command|script)'" \
	"{\"source_directory\": \"$SRCR\", \"script\": \"train.py\", \"command\": [\"true\"]}"

test_case refuse_missing_source_directory_EINVAL
refused EINVAL "field 'source_directory'" '{"script": "train.py"}'

test_case refuse_script_outside_source_EINVAL
refused EINVAL "field 'script'" "{\"source_directory\": \"$SRCR\", \"script\": \"../src/train.py\"}"
refused EINVAL "field 'script'" "{\"source_directory\": \"$SRCR\", \"script\": \"/bin/true\"}"

test_case refuse_source_directory_that_does_not_exist_ENOENT
refused ENOENT "field 'source_directory'" "$(req "$TMP/no-such-dir")"
refused ENOENT "field 'source_directory'" "$(req "$SRCR/train.py")"

test_case refuse_unknown_compute_target_ENOENT
refused ENOENT "field 'compute_target'" "$(req "$SRCR" '"compute_target": "gpu-cluster"')"

test_case refuse_unknown_parent_ENOENT
refused ENOENT "field 'parent'" "$(req "$SRCR" '"parent": "no-such-run"')"

test_case refuse_script_not_in_source_ENOENT
refused ENOENT "field 'script'" \
	"{\"source_directory\": \"$SRCR\", \"script\": \"nope.py\", $PYENV}"

test_case refused_requests_left_no_snapshot_of_their_source
# The one source all refusals named was never stored.
n=0
for j in "$WS"/snapshots/*.json; do
	[ -f "$j" ] || continue
	grep -q "$SRCR" "$j" && n=$((n + 1))
done
expect_eq 0 "$n" "snapshots of the refused source"

test_case relative_source_directory_resolves_against_writer_cwd
mkdir -p "$TMP/a/proj" "$TMP/b/proj" "$TMP/c"
cp "$SRC/train.py" "$TMP/a/proj/"
cp "$SRC/train.py" "$TMP/b/proj/"
echo b-only >"$TMP/b/proj/b.txt"
ra=$(cd "$TMP/a" && submit_fd "$X/submit" "$(req proj)")
is_run_id "$ra" || fail "submit from a/: '$ra'"
rb=$(cd "$TMP/b" && submit_fd "$X/submit" "$(req ./proj/../proj)")
is_run_id "$rb" || fail "submit from b/: '$rb'"
expect_eq "\"$(realpath "$TMP/a/proj")\"" \
	"$(run_json_get "$RUNS/$ra/config.json" 'r["source_directory"]')" "config.json source_directory (a)"
expect_eq "\"$(realpath "$TMP/b/proj")\"" \
	"$(run_json_get "$RUNS/$rb/config.json" 'r["source_directory"]')" "config.json source_directory (b)"
[ "$(readlink "$RUNS/$ra/snapshot")" != "$(readlink "$RUNS/$rb/snapshot")" ] ||
	fail "a/proj and b/proj gave the same snapshot"
expect_eq Completed "$(run_wait_end "$RUNS/$rb")" "run from b/"
[ -f "$WS/runs/$rb/b.txt" ] || fail "b.txt not in the working dir of the run from b/"
[ ! -e "$WS/runs/$ra/b.txt" ] || fail "b.txt in the working dir of the run from a/"
out=$(cd "$TMP/c" && submit_fd "$X/submit" "$(req proj)")
case $out in
"ENOENT: "*"source_directory"*) ;;
*) fail "proj from c/ (no proj there): '$out'" ;;
esac
run_wait_end "$RUNS/$ra" >/dev/null

# ---- snapshots --------------------------------------------------------------

test_case amlignore_rules_keep_files_out_of_the_run
S=$TMP/src_aml
mkdir -p "$S/data" "$S/__pycache__" "$S/sub"
cp "$SRC/train.py" "$S/"
printf 'secret.txt\ndata/\n*.log\n!important.log\n' >"$S/.amlignore"
printf 'keep.txt\nother.txt\n' >"$S/.gitignore"	# not used: .amlignore wins
for f in keep.txt other.txt secret.txt data/big.csv a.log important.log \
	sub/x.py __pycache__/train.cpython-311.pyc; do
	echo "$f" >"$S/$f"
done
id=$(submit_fd "$X/submit" "$(req "$S")")
is_run_id "$id" || fail "submit: '$id'"
expect_eq Completed "$(run_wait_end "$RUNS/$id")" "the run's end"
W=$WS/runs/$id
for f in train.py keep.txt other.txt important.log sub/x.py .amlignore; do
	[ -f "$W/$f" ] || fail "$f missing from the run's working dir"
done
for f in secret.txt data a.log __pycache__; do
	[ ! -e "$W/$f" ] || fail "$f (ignored) is in the run's working dir"
done
snap=$(basename "$(readlink "$RUNS/$id/snapshot")")
names=$("$PY" -c 'import sys, zipfile
print("\n".join(sorted(n for n in zipfile.ZipFile(sys.argv[1]).namelist() if not n.endswith("/"))))' \
	"$WS/snapshots/$snap.zip" 2>&1)
expect_eq ".amlignore
.gitignore
important.log
keep.txt
other.txt
sub/x.py
train.py" "$names" "files in snapshot.zip"

test_case gitignore_used_without_amlignore
S=$TMP/src_gi
mkdir -p "$S/build"
cp "$SRC/train.py" "$S/"
printf '*.tmp\nbuild/\n' >"$S/.gitignore"
echo x >"$S/x.tmp"
echo y >"$S/build/out.o"
echo z >"$S/kept.py"
id=$(submit_fd "$X/submit" "$(req "$S")")
is_run_id "$id" || fail "submit: '$id'"
expect_eq Completed "$(run_wait_end "$RUNS/$id")" "the run's end"
[ -f "$WS/runs/$id/kept.py" ] || fail "kept.py missing"
[ ! -e "$WS/runs/$id/x.tmp" ] || fail "x.tmp (ignored) extracted"
[ ! -e "$WS/runs/$id/build" ] || fail "build/ (ignored) extracted"

test_case same_source_twice_gives_same_snapshot
a=$(submit_fd "$X/submit" "$(req "$SRC")")
b=$(submit_fd "$X/submit" "$(req "$SRC" '"display_name": "again"')")
expect_eq "$(readlink "$RUNS/$a/snapshot")" "$(readlink "$RUNS/$b/snapshot")" "snapshot links"
expect_eq "$(readlink "$RUNS/$first/snapshot")" "$(readlink "$RUNS/$a/snapshot")" "same as the first run's"
snap=$(basename "$(readlink "$RUNS/$a/snapshot")")
expect_eq "\"$snap\"" "$(run_json_get "$RUNS/$a/run.json" 'r["snapshot"]')" "run.json snapshot"
expect_eq 1 "$(find "$WS/snapshots" -name "$snap*.zip" | wc -l)" "stored once"
case $(readlink "$RUNS/$a/snapshot") in
"../../../../snapshots/$snap") ;;
*) fail "snapshot link: $(readlink "$RUNS/$a/snapshot")" ;;
esac
run_wait_end "$RUNS/$a" >/dev/null
run_wait_end "$RUNS/$b" >/dev/null

test_case snapshot_link_resolves_in_the_mount
snap=$(basename "$(readlink "$RUNS/$a/snapshot")")
[ -d "$MNT/snapshots/$snap" ] || fail "snapshots/$snap is not a directory in the mount"
[ -d "$RUNS/$a/snapshot/files" ] || fail "runs/ID/snapshot/files does not resolve"
expect_true "files/train.py equals the source" cmp "$SRC/train.py" "$RUNS/$a/snapshot/files/train.py"
expect_true "snapshot.zip equals the stored zip" cmp "$WS/snapshots/$snap.zip" "$RUNS/$a/snapshot/snapshot.zip"
expect_eq "\"$snap\"" "$(run_json_get "$RUNS/$a/snapshot/snapshot.json" 'r["id"]' 2>&1)" "snapshot.json id"
expect_errno EROFS sysop write "$RUNS/$a/snapshot/files/train.py" "x"

test_case symlink_in_source_is_stored_as_a_link
S=$TMP/src_link
mkdir "$S"
cp "$SRC/train.py" "$S/"
ln -s /etc/passwd "$S/passwd"
ln -s train.py "$S/rel.py"
id=$(submit_fd "$X/submit" "$(req "$S")")
is_run_id "$id" || fail "submit: '$id'"
expect_eq Completed "$(run_wait_end "$RUNS/$id")" "the run's end"
[ -L "$WS/runs/$id/passwd" ] || fail "passwd is not a symlink in the working dir"
expect_eq /etc/passwd "$(readlink "$WS/runs/$id/passwd")" "readlink passwd"
expect_eq train.py "$(readlink "$WS/runs/$id/rel.py")" "readlink rel.py"
snap=$(basename "$(readlink "$RUNS/$id/snapshot")")
out=$("$PY" - "$WS/snapshots/$snap.zip" <<-'EOF'
	import stat, sys, zipfile
	z = zipfile.ZipFile(sys.argv[1])
	for name in ("passwd", "rel.py"):
	    i = z.getinfo(name)
	    mode = i.external_attr >> 16
	    if not stat.S_ISLNK(mode):
	        print("%s: mode %o is not a symlink" % (name, mode))
	    print("%s -> %s" % (name, z.read(name).decode()))
	EOF
)
expect_eq "passwd -> /etc/passwd
rel.py -> train.py" "$out" "zip entries"
if [ -d "$MNT/snapshots/$snap/files" ]; then
	expect_eq /etc/passwd "$(readlink "$MNT/snapshots/$snap/files/passwd")" "readlink in snapshots/SNAP/files"
fi

test_case command_sh_c_request_runs
S=$TMP/src_sh
mkdir "$S"
echo data >"$S/input.txt"
cmd='echo sh ran $MLFS_RUN_ID; cat input.txt; echo "shm 7" >>"$MLFS_METRICS"; echo "$1" >outputs/arg.txt'
request=$("$PY" -c 'import json, sys
print(json.dumps({"source_directory": sys.argv[1], "command": ["sh", "-c", sys.argv[2], "sh"],
                  "arguments": ["first-arg"]}))' "$S" "$cmd")
id=$(submit_fd "$X/submit" "$request")
is_run_id "$id" || fail "submit: '$id'"
expect_eq Completed "$(run_wait_end "$RUNS/$id")" "the run's end"
expect_eq "sh ran $id
data" "$(cat "$WS/runs/$id/logs/user_logs/std_log.txt")" "the log"
poll_ms 1000 test -e "$RUNS/$id/metrics/shm"
expect_eq 7 "$(cat "$RUNS/$id/metrics/shm" 2>&1)" "metric shm"
expect_eq first-arg "$(cat "$WS/runs/$id/outputs/arg.txt")" "arguments follow command"
expect_eq '["sh", "-c"]' "$(run_json_get "$RUNS/$id/config.json" 'r["command"][:2]')" "config.json command"

test_case executable_script_without_py_runs_directly_with_exec_bit_kept
S=$TMP/src_exec
mkdir -p "$S/empty-dir"
printf '#!/bin/sh\necho "run.sh ran with $# args: $*"\n[ -x ./run.sh ] && echo executable\n[ -d empty-dir ] && echo empty-dir-kept\n' >"$S/run.sh"
chmod +x "$S/run.sh"
id=$(submit_fd "$X/submit" "{\"source_directory\": \"$S\", \"script\": \"run.sh\", \"arguments\": [\"a b\", \"c\"]}")
is_run_id "$id" || fail "submit: '$id'"
expect_eq Completed "$(run_wait_end "$RUNS/$id")" "the run's end"
expect_eq "run.sh ran with 2 args: a b c
executable
empty-dir-kept" "$(cat "$RUNS/$id/logs/user_logs/std_log.txt" 2>&1)" "the log"

test_case command_that_cannot_be_run_fails_with_reason
id=$(submit_fd "$X/submit" "{\"source_directory\": \"$SRC\", \"command\": [\"no-such-program-xyz\"]}")
is_run_id "$id" || fail "submit: '$id'"
expect_eq Failed "$(run_wait_end "$RUNS/$id")" "the run's end"
err=$(run_json_get "$RUNS/$id/run.json" 'r["error"]')
case $err in *no-such-program-xyz*) ;; *) fail "error does not name the program: $err" ;; esac
id=$(submit_fd "$X/submit" "{\"source_directory\": \"$SRC\", \"script\": \"train.py\", \"environment\": {\"interpreter\": \"no-such-python\"}}")
is_run_id "$id" || fail "submit: '$id'"
expect_eq Failed "$(run_wait_end "$RUNS/$id")" "the run's end with a missing interpreter"
err=$(run_json_get "$RUNS/$id/run.json" 'r["error"]')
case $err in *no-such-python*) ;; *) fail "error does not name the interpreter: $err" ;; esac

test_case status_of_a_submitted_run_cannot_be_written
id=$(readlink "$RUNS/latest")
st=$(cat "$RUNS/$id/status")
out=$(sysop write "$RUNS/$id/status" Completed 2>&1) && fail "writing Completed into a submitted run's status succeeded"
expect_eq "$st" "$(cat "$RUNS/$id/status")" "status unchanged"

test_case environment_variables_cannot_replace_mlfs_variables
S=$TMP/src_envover
mkdir "$S"
printf 'import os\nprint(os.environ["MLFS_RUN_ID"])\nopen(os.environ["MLFS_METRICS"], "a").write("m 1\\n")\n' >"$S/train.py"
out=$(submit_fd "$X/submit" "{\"source_directory\": \"$S\", \"script\": \"train.py\", \"environment\": {\"interpreter\": \"/usr/bin/python3\", \"variables\": {\"MLFS_RUN_ID\": \"fake\", \"MLFS_METRICS\": \"/dev/null\"}}}")
case $out in
"EINVAL: "*"environment.variables.MLFS_"*) ;;	# refused: fine
*)
	if is_run_id "$out"; then
		run_wait_end "$RUNS/$out" >/dev/null
		expect_eq "$out" "$(cat "$RUNS/$out/logs/user_logs/std_log.txt" 2>&1)" "MLFS_RUN_ID the run saw"
		poll_ms 1000 test -e "$RUNS/$out/metrics/m" || fail "the metric went to the overridden MLFS_METRICS, not the run"
	else
		fail "reply '$out'"
	fi
	;;
esac

test_case parallel_submits_get_distinct_runs_and_numbers
n0=$(nruns)
par=
for i in 1 2 3 4 5; do
	"$MLFS" submit "$X" "$TMP/req.json" >"$TMP/par.$i" 2>&1 &
	par="$par $!"
done
for p in $par; do wait "$p" || fail "submit $p exited $?"; done
ids=$(cat "$TMP"/par.* | sort -u)
expect_eq 5 "$(printf '%s\n' "$ids" | grep -c .)" "distinct ids from 5 parallel submits"
for id in $ids; do is_run_id "$id" || fail "not a run: '$id'"; done
expect_eq $((n0 + 5)) "$(nruns)" "runs made"
nums=$(for id in $ids; do run_json_get "$RUNS/$id/run.json" 'r["number"]'; done | sort -n | paste -sd' ')
expect_eq "$(seq $((n0 + 1)) $((n0 + 5)) | paste -sd' ')" "$nums" "their numbers"
for id in $ids; do run_wait_end "$RUNS/$id" >/dev/null; done

test_case rmdir_experiment_with_submitted_runs_is_ENOTEMPTY
expect_errno ENOTEMPTY rmdir "$X"
[ -d "$X" ] || fail "experiment gone"

# ---- git --------------------------------------------------------------------

G=$TMP/repo
URL=https://example.com/team/proj.git
git_() { git -C "$G" -c user.name=T -c user.email=t@example.com "$@" >/dev/null 2>&1; }
mkdir -p "$G/proj"
git_ init -b main || git_ init
git_ checkout -b main
git_ remote add origin "$URL"
cp "$SRC/train.py" "$G/proj/"
echo readme >"$G/README"
git_ add -A
git_ commit -m first
HEAD_SHA=$(git -C "$G" rev-parse HEAD)

prop() { cat "$RUNS/$1/properties/$2" 2>&1; }

test_case git_properties_of_a_clean_repository
id=$(submit_fd "$X/submit" "$(req "$G/proj")")
is_run_id "$id" || fail "submit: '$id'"
expect_eq "$HEAD_SHA" "$(prop "$id" azureml.git.commit)" "azureml.git.commit"
expect_eq main "$(prop "$id" azureml.git.branch)" "azureml.git.branch"
expect_eq false "$(prop "$id" azureml.git.dirty)" "azureml.git.dirty"
expect_eq "$URL" "$(prop "$id" azureml.git.repository_uri)" "azureml.git.repository_uri"
expect_eq "$HEAD_SHA" "$(prop "$id" mlflow.source.git.commit)" "mlflow.source.git.commit"
expect_eq main "$(prop "$id" mlflow.source.git.branch)" "mlflow.source.git.branch"
expect_eq "$URL" "$(prop "$id" mlflow.source.git.repoURL)" "mlflow.source.git.repoURL"
expect_eq "{\"branch\": \"main\", \"commit\": \"$HEAD_SHA\", \"dirty\": false, \"repository\": \"$URL\"}" \
	"$("$PY" -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["git"], sort_keys=True))' "$RUNS/$id/run.json")" \
	"run.json git"
expect_eq Completed "$(run_wait_end "$RUNS/$id")" "the run's end"
clean=$id

test_case git_dirty_after_a_change
echo "# changed" >>"$G/proj/train.py"
id=$(submit_fd "$X/submit" "$(req "$G/proj")")
is_run_id "$id" || fail "submit: '$id'"
expect_eq true "$(prop "$id" azureml.git.dirty)" "azureml.git.dirty"
expect_eq "$HEAD_SHA" "$(prop "$id" azureml.git.commit)" "commit still HEAD"
expect_eq true "$(run_json_get "$RUNS/$id/run.json" 'r["git"]["dirty"]')" "run.json git.dirty"
expect_eq false "$(prop "$clean" azureml.git.dirty)" "the earlier run stays clean"
run_wait_end "$RUNS/$id" >/dev/null

test_case git_new_commit_is_recorded_and_git_dir_not_snapshotted
git_ add -A
git_ commit -m second
sha2=$(git -C "$G" rev-parse HEAD)
id=$(submit_fd "$X/submit" "{\"source_directory\": \"$G\", \"script\": \"proj/train.py\", $PYENV}")
is_run_id "$id" || fail "submit: '$id'"
expect_eq "$sha2" "$(prop "$id" azureml.git.commit)" "azureml.git.commit"
expect_eq false "$(prop "$id" azureml.git.dirty)" "azureml.git.dirty"
expect_eq Completed "$(run_wait_end "$RUNS/$id")" "the run's end"
[ -f "$WS/runs/$id/README" ] || fail "README missing from the working dir"
[ ! -e "$WS/runs/$id/.git" ] || fail ".git/ extracted into the run's working dir"

test_case git_credentials_in_remote_url_are_not_recorded
git_ remote set-url origin "https://user:s3cret-token@example.com/team/proj.git"
id=$(submit_fd "$X/submit" "$(req "$G/proj")")
is_run_id "$id" || fail "submit: '$id'"
expect_eq "$URL" "$(prop "$id" azureml.git.repository_uri)" "azureml.git.repository_uri"
! grep -q s3cret "$RUNS/$id/run.json" || fail "the token shows in run.json"
git_ remote set-url origin "$URL"
run_wait_end "$RUNS/$id" >/dev/null

test_case source_outside_any_repository_has_no_git_properties
id=$(submit_fd "$X/submit" "$(req "$SRC")")
is_run_id "$id" || fail "submit: '$id'"
expect_eq "" "$(ls "$RUNS/$id/properties" | grep -E '^(azureml|mlflow)\.' )" "git properties"
expect_eq null "$(run_json_get "$RUNS/$id/run.json" 'r["git"]')" "run.json git"
run_wait_end "$RUNS/$id" >/dev/null

# ---- snapshot limits (a mount with small ones) -------------------------------

mlfs_unmount
mlfs_mount_with -o snapshot_max_files=3,snapshot_max_bytes=1000

test_case over_snapshot_max_files_is_EFBIG_naming_limit_and_amlignore
S=$TMP/src_many
mkdir "$S"
cp "$SRC/train.py" "$S/"
for i in 1 2 3 4; do echo "$i" >"$S/f$i.txt"; done
refused EFBIG "limit of 3.*\.amlignore" "$(req "$S")"

test_case over_snapshot_max_bytes_is_EFBIG_naming_limit_and_amlignore
S=$TMP/src_big
mkdir "$S"
cp "$SRC/train.py" "$S/"
head -c 2000 /dev/zero >"$S/big.bin"
refused EFBIG "limit of 1000 bytes.*\.amlignore" "$(req "$S")"

test_case amlignore_brings_a_source_under_the_limits
echo big.bin >"$S/.amlignore"
id=$(submit_fd "$X/submit" "$(req "$S")")
is_run_id "$id" || fail "submit after .amlignore: '$id'"
expect_eq Completed "$(run_wait_end "$RUNS/$id")" "the run's end"
[ ! -e "$WS/runs/$id/big.bin" ] || fail "big.bin extracted"

test_done
