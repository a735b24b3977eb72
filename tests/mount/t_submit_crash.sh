#!/bin/bash
# Submitted runs and kill -9: a run outlives its mount and reports into the
# store; a run whose supervisor dies ends Failed "supervisor lost", found
# by a running mount or by the next one, and leaves no process behind.
. "$(dirname "$0")/lib.sh"
trap 's=$?; submit_reap_all; (exit $s); on_exit' EXIT

mkdir -p "$TMP/pids"
X=$MNT/experiments/crash
RUNS=$X/runs
PYENV='"environment": {"interpreter": "/usr/bin/python3"}'
SRC=$TMP/src
mkdir "$SRC"

# burst.py TMP NAME: records its pid, waits for TMP/NAME.go, logs 1000
# points of metric "points" (value i, step i) and exits 0.
cat >"$SRC/burst.py" <<-'EOF'
	import os, sys, time
	tmp, name = sys.argv[1], sys.argv[2]
	with open(os.path.join(tmp, "pids", name + ".tmp"), "w") as f:
	    f.write(str(os.getpid()))
	os.rename(os.path.join(tmp, "pids", name + ".tmp"), os.path.join(tmp, "pids", name))
	while not os.path.exists(os.path.join(tmp, name + ".go")):
	    time.sleep(0.02)
	with open(os.environ["MLFS_METRICS"], "a") as m:
	    for i in range(1, 1001):
	        m.write("points %d %d\n" % (i, i))
	print(name, "logged 1000 points")
EOF

# sleeper.py TMP NAME: records its pid, sleeps.
cat >"$SRC/sleeper.py" <<-'EOF'
	import os, sys, time
	tmp, name = sys.argv[1], sys.argv[2]
	with open(os.path.join(tmp, "pids", name + ".tmp"), "w") as f:
	    f.write(str(os.getpid()))
	os.rename(os.path.join(tmp, "pids", name + ".tmp"), os.path.join(tmp, "pids", name))
	print("sleeping")
	time.sleep(300)
EOF

submit()	# submit SCRIPT NAME: prints the run id
{
	submit_fd "$X/submit" "{\"source_directory\": \"$SRC\", \"script\": \"$1\", \"arguments\": [\"$TMP\", \"$2\"], $PYENV}"
}
# group_gone PGID: no live (non-zombie) process in process group PGID.
group_gone()
{
	local p
	for p in $(pgrep -g "$1" 2>/dev/null); do
		pid_alive "$p" && return 1
	done
	return 0
}
is_run_id() { [[ $1 =~ ^[A-Za-z0-9_-][A-Za-z0-9._-]*$ ]] && [ -d "$RUNS/$1" ]; }
has_file() { [ -s "$1" ]; }

# supervisor_of ID: the pid of the supervisor that claimed run ID (from
# its mlfs.log), checked to be this workspace's "mlfs supervise".
supervisor_of()
{
	local pid
	pid=$(sed -n 's/.* claimed by supervisor \([0-9]*\) .*/\1/p' \
		"$WS/runs/$1/logs/system_logs/mlfs.log" 2>/dev/null | tail -n1)
	[ -n "$pid" ] && supervisor_pids | grep -qx "$pid" && echo "$pid"
}

# start NAME SCRIPT: submits, waits until the script runs; sets $id, $pid, $sup.
start()
{
	id=$(submit "$2" "$1")
	is_run_id "$id" || { fail "submit $1: '$id'"; return 1; }
	poll_ms 30000 has_file "$TMP/pids/$1" || { fail "$1 never started"; return 1; }
	run_wait_status "$RUNS/$id" Running 5 || fail "$1: status '$(cat "$RUNS/$id/status")'"
	pid=$(cat "$TMP/pids/$1")
	sup=$(supervisor_of "$id")
	[ -n "$sup" ] || fail "$1: no supervisor found ($(supervisor_pids | paste -sd' '))"
}

mlfs_mount
mkdir "$X" || fail "mkdir experiment"

test_case run_outlives_kill9_of_the_mount
start b1 burst.py
run1=$id
sup1=$sup
mlfs_kill9
touch "$TMP/b1.go"
[ -z "$sup1" ] || pid_wait_gone "$sup1" 60 || fail "supervisor $sup1 still running 60 s after go"
pid_alive "$pid" && fail "script $pid still running after its supervisor ended"
grep -q "run ended Completed" "$WS/runs/$run1/logs/system_logs/mlfs.log" ||
	fail "mlfs.log: $(cat "$WS/runs/$run1/logs/system_logs/mlfs.log")"

test_case after_remount_the_run_is_completed_with_all_points
mlfs_mount
expect_eq Completed "$(cat "$RUNS/$run1/status")" "status"
expect_eq 0 "$(run_json_get "$RUNS/$run1/run.json" 'r["exit_code"]')" "exit_code"
expect_eq 1000 "$(wc -l <"$RUNS/$run1/metrics/points")" "wc -l metrics/points"
expect_eq "$(seq 1 1000)" "$(cat "$RUNS/$run1/metrics/points")" "values in order"
expect_eq 1000 "$(run_json_get "$RUNS/$run1/metrics.json" 'r["points"]["count"]')" "metrics.json count"
expect_eq "b1 logged 1000 points" "$(cat "$RUNS/$run1/logs/user_logs/std_log.txt" 2>&1)" "std_log.txt"
expect_eq ok "$(sqlite3 "$WS/workspace.db" 'PRAGMA integrity_check' 2>&1)" "integrity_check"

test_case kill9_supervisor_fails_run_supervisor_lost_on_same_mount
start s1 sleeper.py
run2=$id
[ -n "$sup" ] && kill -9 "$sup"
poll_ms 8000 run_has_status "$RUNS/$run2" Failed ||
	fail "status '$(cat "$RUNS/$run2/status")' 8 s after the supervisor died (run.json: $(run_json_get "$RUNS/$run2/run.json" 'r["status"]'); events: $(grep -F "$run2" "$MNT/events" | tail -n1 | cut -d' ' -f2-))"
expect_eq '"supervisor lost"' "$(run_json_get "$RUNS/$run2/run.json" 'r["error"]')" "error"
pid_wait_gone "$pid" 5 || fail "script $pid of the lost run still running"
group_gone "$pid" || fail "process group $pid of the lost run not empty"
[ -n "$(run_json_get "$RUNS/$run2/run.json" 'r["ended"]' | grep -v null)" ] || fail "ended not set"
expect_eq "" "$(grep -F "$run2" "$MNT/computes/local/queue")" "the lost run in the queue"

test_case kill9_supervisor_while_unmounted_fails_run_at_next_mount
start s2 sleeper.py
run3=$id
mlfs_unmount
expect_true "the run goes on without a mount" pid_alive "$pid"
[ -n "$sup" ] && kill -9 "$sup"
pid_wait_gone "$sup" 5 || fail "supervisor $sup survived kill -9"
mlfs_mount
# no polling: the mount fails lost runs before it serves anything
expect_eq Failed "$(cat "$RUNS/$run3/status")" "status at the next mount"
expect_eq '"supervisor lost"' "$(run_json_get "$RUNS/$run3/run.json" 'r["error"]')" "error"
pid_wait_gone "$pid" 5 || fail "script $pid of the lost run still running after the mount"
group_gone "$pid" || fail "process group $pid of the lost run not empty"

test_case queue_drains_while_the_mount_is_dead
mlfs_unmount
mlfs_mount_with -o max_concurrent_runs=1
start q1 burst.py
qa=$id
qb=$(submit burst.py q2)
is_run_id "$qb" || fail "submit q2: '$qb'"
expect_eq Queued "$(cat "$RUNS/$qb/status")" "q2 behind q1"
touch "$TMP/q2.go"
mlfs_kill9
touch "$TMP/q1.go"
poll_ms 60000 eval '[ -z "$(supervisor_pids)" ]' || fail "supervisors still running: $(supervisor_pids | paste -sd' ')"
mlfs_mount
expect_eq Completed "$(cat "$RUNS/$qa/status")" "q1"
expect_eq Completed "$(cat "$RUNS/$qb/status")" "q2, started without a mount"
expect_eq 1000 "$(wc -l <"$RUNS/$qb/metrics/points")" "q2's points"

test_done
