#!/bin/bash
# The mount as users start it: "mlfs mount WS MNT" without -f, so the
# daemon forks away from the process that opened the workspace. Every
# other script mounts with -f; this one shows the detached daemon sees
# what run supervisors (other processes) write, run after run: the
# examples/train run through "mlfs submit --wait", twice, and a cached
# status file that must move on by itself.
. "$(dirname "$0")/lib.sh"

EXAMPLE=$LIB_DIR/../../examples/train
printf '%s\n' '{"source_directory": ".", "script": "train.py",' \
	'"arguments": ["--epochs", "3"],' \
	'"environment": {"interpreter": "/usr/bin/python3"}}' >"$TMP/req.json"

# example_run N: submits the example with --wait (at most 60 s) as run N
# of experiment e and checks what it shows and leaves.
example_run()
{
	local n=$1 out err rc id dir
	out=$(cd "$EXAMPLE" && timeout 60 "$MLFS" submit "$MNT/experiments/e" \
		"$TMP/req.json" --wait 2>"$TMP/wait.err")
	rc=$?
	err=$(cat "$TMP/wait.err")
	expect_eq 0 "$rc" "run $n: mlfs submit --wait exit status (124: hung)"
	printf '%s\n' "$out" | grep -qx 'epoch 2: loss 0.3679' ||
		fail "run $n: log not streamed: $out"
	printf '%s\n' "$out" | grep -qx 'saved outputs/model.json' ||
		fail "run $n: last log line not streamed: $out"
	printf '%s\n' "$err" | grep -q ': Completed$' ||
		fail "run $n: no Completed on stderr: $err"
	id=$(printf '%s\n' "$err" | head -n1 | cut -d: -f1)
	dir=$MNT/experiments/e/runs/$id
	expect_eq Completed "$(cat "$dir/status")" "run $n: status"
	expect_eq "$n" "$(run_json_get "$dir/run.json" 'r["number"]')" "run $n: number"
	expect_eq 3 "$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["epochs"])' \
		"$dir/outputs/model.json")" "run $n: outputs/model.json"
	expect_eq "3 3" "$("$PY" -c 'import json,sys
m = json.load(open(sys.argv[1]))
print(m["loss"]["count"], m["acc"]["count"])' "$dir/metrics.json")" \
		"run $n: metrics.json counts of loss and acc"
	expect_eq "$id" "$(readlink "$MNT/experiments/e/runs/latest")" "run $n: latest"
}

test_case daemon_mount_returns_once_mounted
mlfs_mount_daemon
expect_true "the daemon is not the shell's child" [ "$MLFS_DAEMONIZED" -eq 1 ]
expect_true "workspace.json readable" test -s "$MNT/workspace.json"
mkdir "$MNT/experiments/e" || fail "mkdir experiment"

test_case submit_wait_runs_the_example_to_completed
example_run 1

test_case a_second_run_on_the_same_mount_completes_too
example_run 2

test_case a_status_read_while_queued_moves_on_by_itself
# The daemon renders status once and caches it; only the change feed,
# written by the supervisor, can make that copy stale.
mkdir "$TMP/src"
printf '{"source_directory": ".", "command": ["sleep", "0.5"]}' >"$TMP/sleep.json"
id=$(cd "$TMP/src" && "$MLFS" submit "$MNT/experiments/e" "$TMP/sleep.json")
expect_true "submit printed a run id" [ -n "$id" ]
first=$(cat "$MNT/experiments/e/runs/$id/status")
case $first in
Queued | Preparing | Running) ;;
*) fail "first status '$first' (want Queued, Preparing or Running)" ;;
esac
got=
for _ in $(seq 100); do
	got=$(cat "$MNT/experiments/e/runs/$id/status")
	[ "$got" = Completed ] && break
	sleep 0.1
done
expect_eq Completed "$got" "status 10 s later"
grep -q "^$id,3,Completed," "$MNT/experiments/e/runs.csv" ||
	fail "runs.csv: $(cat "$MNT/experiments/e/runs.csv")"

test_case unmount_and_remount_daemonized_keeps_the_runs
mlfs_unmount
mlfs_mount_daemon
expect_eq 3 "$(ls "$MNT/experiments/e/runs" | grep -vc '^latest$')" "runs after remount"
example_run 4

test_done
