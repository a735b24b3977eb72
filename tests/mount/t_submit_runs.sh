#!/bin/bash
# What a submitted run does, seen through the mount: live status, metrics
# and logs while it runs; outputs, logs, run.json and config.json after;
# failures, cancel, time-outs, the queue of a compute target, child runs.
. "$(dirname "$0")/lib.sh"
trap 's=$?; submit_reap_all; (exit $s); on_exit' EXIT

mkdir -p "$TMP/pids"
X=$MNT/experiments/e
RUNS=$X/runs
PYENV='"environment": {"interpreter": "/usr/bin/python3"}'
SRC=$TMP/src
mkdir "$SRC"

# live.py TMP: writes outputs and logs, logs metrics, then waits for the
# flag files "go" and "finish" in TMP, marking "phase1" and "phase2".
cat >"$SRC/live.py" <<-'EOF'
	import json, os, sys, time
	tmp = sys.argv[1]
	def wait(name):
	    while not os.path.exists(os.path.join(tmp, name)):
	        time.sleep(0.02)
	def mark(name):
	    open(os.path.join(tmp, name), "w").close()
	with open(os.path.join(tmp, "pids", "live.tmp"), "w") as f:
	    f.write(str(os.getpid()))
	os.rename(os.path.join(tmp, "pids", "live.tmp"), os.path.join(tmp, "pids", "live"))
	env = {k: os.environ.get(k) for k in (
	    "MLFS_RUN_ID", "MLFS_EXPERIMENT", "MLFS_WORKSPACE", "MLFS_OUTPUTS",
	    "MLFS_METRICS", "MLFS_RUN_DIR", "PYTHONUNBUFFERED", "K1", "K2")}
	env["cwd"] = os.getcwd()
	env["argv"] = sys.argv[1:]
	os.makedirs("outputs/nested/deep", exist_ok=True)
	os.makedirs("outputs/empty", exist_ok=True)
	with open("outputs/env.json", "w") as f:
	    json.dump(env, f, sort_keys=True)
	with open("outputs/nested/deep/weights.bin", "wb") as f:
	    f.write(bytes(range(256)) * 40)
	with open("outputs/top.txt", "w") as f:
	    f.write("top\n")
	os.makedirs("logs/custom", exist_ok=True)
	with open("logs/custom/train.log", "w") as f:
	    f.write("custom log line\n")
	m = open(os.environ["MLFS_METRICS"], "a", buffering=1)
	m.write("loss 0.5 1\n")
	m.write('{"acc": 0.75, "step": 3}\n')
	m.write("loss is-not-a-number\n")
	print("phase one done")
	mark("phase1")
	wait("go")
	rd = os.environ.get("MLFS_RUN_DIR")
	seen = open(os.path.join(rd, "status")).read().strip() if rd else "no MLFS_RUN_DIR"
	with open("outputs/status_seen.txt", "w") as f:
	    f.write(seen + "\n")
	m.write("loss 0.25 2\n")
	m.write('{"acc": 1, "loss": 0.125, "step": 4}\n')
	for i in range(10):
	    print("live line %d" % i)
	    time.sleep(0.05)
	print("stderr line", file=sys.stderr)
	mark("phase2")
	wait("finish")
	print("bye")
EOF

# sleeper.py TMP NAME [trap|ignore]: records its pid (and its child's) in
# TMP/pids/NAME, then sleeps; with "trap" it ends cleanly on SIGTERM, with
# "ignore" it ignores SIGTERM.
cat >"$SRC/sleeper.py" <<-'EOF'
	import os, signal, subprocess, sys, time
	tmp, name = sys.argv[1], sys.argv[2]
	child = subprocess.Popen(["sleep", "300"])
	def record(path, value):
	    with open(path + ".tmp", "w") as f:
	        f.write(str(value))
	    os.rename(path + ".tmp", path)
	if len(sys.argv) > 3 and sys.argv[3] == "ignore":
	    signal.signal(signal.SIGTERM, signal.SIG_IGN)
	if len(sys.argv) > 3 and sys.argv[3] == "trap":
	    def on_term(sig, frame):
	        print("got SIGTERM, cleaning up")
	        with open("outputs/term.txt", "w") as f:
	            f.write("clean\n")
	        child.terminate()
	        child.wait()
	        sys.exit(0)
	    signal.signal(signal.SIGTERM, on_term)
	record(os.path.join(tmp, "pids", name + ".child"), child.pid)
	record(os.path.join(tmp, "pids", name), os.getpid())
	print("sleeping")
	time.sleep(300)
EOF

# waiter.py TMP NAME: records its pid, waits for the flag TMP/NAME.go.
cat >"$SRC/waiter.py" <<-'EOF'
	import os, sys, time
	tmp, name = sys.argv[1], sys.argv[2]
	with open(os.path.join(tmp, "pids", name), "w") as f:
	    f.write(str(os.getpid()))
	open(os.path.join(tmp, name + ".ran"), "w").close()
	while not os.path.exists(os.path.join(tmp, name + ".go")):
	    time.sleep(0.02)
	print(name, "done")
EOF

# escape.py TMP: starts "sleep 300" in a new session (out of the run's
# process group), records its pid in TMP/pids/escaped, exits 0.
cat >"$SRC/escape.py" <<-'EOF'
	import os, subprocess, sys
	tmp = sys.argv[1]
	p = subprocess.Popen(["sleep", "300"], start_new_session=True)
	with open(os.path.join(tmp, "pids", "escaped"), "w") as f:
	    f.write(str(p.pid))
	print("left", p.pid, "behind")
EOF

# fail.py: some lines, then exit code 3.
cat >"$SRC/fail.py" <<-'EOF'
	import sys
	print("first line")
	for i in range(15):
	    print("failing soon %d" % i)
	print("the last words", file=sys.stderr)
	sys.exit(3)
EOF

# submit SCRIPT [ARGS_JSON [MORE_FIELDS]]: prints the run id (or the refusal).
submit()
{
	submit_fd "$X/submit" "{\"source_directory\": \"$SRC\", \"script\": \"$1\", \"arguments\": ${2:-[]}, $PYENV${3:+, $3}}"
}

is_run_id() { [[ $1 =~ ^[A-Za-z0-9_-][A-Za-z0-9._-]*$ ]] && [ -d "$RUNS/$1" ]; }
has_file() { [ -s "$1" ]; }
file_is() { [ "$(cat "$1" 2>/dev/null)" = "$2" ]; }
file_has() { grep -q -- "$2" "$1" 2>/dev/null; }

# group_gone PGID: no live (non-zombie) process in process group PGID.
group_gone()
{
	local p
	for p in $(pgrep -g "$1" 2>/dev/null); do
		pid_alive "$p" && return 1
	done
	return 0
}

mlfs_mount
mkdir "$X" || fail "mkdir experiment"

# ---- a run from start to end -------------------------------------------------

test_case live_run_is_running_with_metrics_and_logs_visible
L=$(submit_fd "$X/submit" "{\"source_directory\": \"$SRC\", \"script\": \"live.py\",
	\"arguments\": [\"$TMP\", \"--lr\", \"0.1\"], \"display_name\": \"live run\",
	\"tags\": {\"team\": \"a\"}, \"//\": \"a comment\", \"compute_target\": \"local\",
	\"environment\": {\"interpreter\": \"/usr/bin/python3\", \"variables\": {\"K1\": \"v1\", \"K2\": \"two words\"}}}")
is_run_id "$L" || fail "submit: '$L'"
R=$RUNS/$L
poll_ms 30000 test -e "$TMP/phase1" || fail "the script never reached phase 1: $(cat "$WS/runs/$L/logs/user_logs/std_log.txt" 2>&1)"
run_wait_status "$R" Running 5 || fail "status '$(cat "$R/status")' while the script runs"
expect_eq '"Running"' "$(run_json_get "$R/run.json" 'r["status"]')" "run.json status while running"
expect_eq null "$(run_json_get "$R/run.json" 'r["ended"]')" "run.json ended while running"
# metrics logged before phase1 show within a second
poll_ms 1000 file_is "$R/metrics/loss" 0.5 || fail "metrics/loss after 1 s: '$(cat "$R/metrics/loss" 2>&1)'"
poll_ms 1000 file_is "$R/metrics/acc" 0.75 || fail "metrics/acc after 1 s: '$(cat "$R/metrics/acc" 2>&1)'"
queue=$(cat "$MNT/computes/local/queue")
printf '%s\n' "$queue" | grep -qxF "Running	e	$L" || fail "computes/local/queue: $queue"

test_case live_run_logs_are_readable_while_running
poll_ms 1000 file_has "$R/logs/user_logs/std_log.txt" "phase one done" ||
	fail "std_log.txt: $(cat "$R/logs/user_logs/std_log.txt" 2>&1)"
poll_ms 1000 file_has "$R/logs/system_logs/mlfs.log" "is-not-a-number" ||
	fail "the malformed metric line is not in mlfs.log: $(cat "$R/logs/system_logs/mlfs.log" 2>&1)"
expect_eq "custom log line" "$(cat "$R/logs/custom/train.log" 2>&1)" "logs/custom/train.log while running"
expect_eq top "$(cat "$R/outputs/top.txt" 2>&1)" "outputs/top.txt while running"
echo "0.5 7" >>"$R/metrics/manual" || fail "append to metrics/manual of a running submitted run"
expect_eq 0.5 "$(cat "$R/metrics/manual" 2>&1)" "metrics/manual"
timeout 30 tail -n +1 -f "$R/logs/user_logs/std_log.txt" >"$TMP/tail.out" 2>"$TMP/tail.err" &
tail_pid=$!
poll_ms 3000 file_has "$TMP/tail.out" "phase one done" || fail "tail -f shows nothing: $(cat "$TMP/tail.err")"
touch "$TMP/go"

test_case tail_f_follows_std_log_while_it_grows
poll_ms 30000 test -e "$TMP/phase2" || fail "the script never reached phase 2"
poll_ms 5000 file_has "$TMP/tail.out" "stderr line" ||
	fail "tail -f did not follow the log: $(tr '\n' '|' <"$TMP/tail.out") $(cat "$TMP/tail.err")"
expect_eq Running "$(cat "$R/status")" "still running while tail -f followed"
kill "$tail_pid" 2>/dev/null
wait "$tail_pid" 2>/dev/null
expect_eq "phase one done
live line 0
live line 1
live line 2
live line 3
live line 4
live line 5
live line 6
live line 7
live line 8
live line 9
stderr line" "$(cat "$TMP/tail.out")" "what tail -f saw"
size=$(stat -c %s "$R/logs/user_logs/std_log.txt" 2>&1)
expect_eq "$(cat "$R/logs/user_logs/std_log.txt" 2>/dev/null | wc -c)" "$size" "stat size of the growing log"
poll_ms 1000 file_is "$R/metrics/loss" "0.5
0.25
0.125" || fail "metrics/loss after go: '$(cat "$R/metrics/loss" 2>&1)'"
touch "$TMP/finish"

test_case live_run_completes_with_run_json_fields
expect_eq Completed "$(run_wait_end "$R")" "the run's end"
"$PY" - "$R/run.json" "$L" "$(readlink "$R/snapshot")" <<-'EOF' || fail "run.json"
	import json, re, sys
	from datetime import datetime
	r = json.load(open(sys.argv[1]))
	rid, snaplink = sys.argv[2], sys.argv[3]
	ts = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
	p = lambda s: datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")
	bad = []
	def eq(k, want):
	    if r.get(k) != want:
	        bad.append("%s=%r, want %r" % (k, r.get(k), want))
	eq("id", rid)
	eq("number", 1)
	eq("interactive", False)
	eq("experiment", "e")
	eq("status", "Completed")
	eq("exit_code", 0)
	eq("error", None)
	eq("display_name", "live run")
	eq("compute_target", "local")
	eq("snapshot", snaplink.rsplit("/", 1)[-1])
	eq("tags", {"team": "a"})
	eq("parent", None)
	eq("children", [])
	eq("git", None)
	eq("environment", {"interpreter": "/usr/bin/python3",
	                   "variables": {"K1": "v1", "K2": "two words"}})
	if r.get("arguments", [None])[1:] != ["--lr", "0.1"]:
	    bad.append("arguments=%r" % r.get("arguments"))
	for k in ("created", "started", "ended"):
	    if not (isinstance(r.get(k), str) and ts.match(r[k])):
	        bad.append("%s=%r" % (k, r.get(k)))
	if not bad:
	    if not p(r["created"]) <= p(r["started"]) <= p(r["ended"]):
	        bad.append("created %s started %s ended %s out of order" % (r["created"], r["started"], r["ended"]))
	    span = (p(r["ended"]) - p(r["started"])).total_seconds()
	    d = r.get("duration_s")
	    if not isinstance(d, (int, float)) or isinstance(d, bool) or abs(d - span) > 0.0015:
	        bad.append("duration_s=%r, ended-started=%r" % (d, span))
	if bad:
	    print("; ".join(bad))
	    sys.exit(1)
	EOF

test_case config_json_is_the_normalized_request
"$PY" - "$R/config.json" "$(realpath "$SRC")" "$TMP" "$(readlink "$R/snapshot")" <<-'EOF' || fail "config.json"
	import json, sys
	c = json.load(open(sys.argv[1]))
	src, tmp, snaplink = sys.argv[2], sys.argv[3], sys.argv[4]
	want = {
	    "source_directory": src,
	    "script": "live.py",
	    "arguments": [tmp, "--lr", "0.1"],
	    "compute_target": "local",
	    "environment": {"interpreter": "/usr/bin/python3",
	                    "variables": {"K1": "v1", "K2": "two words"}},
	    "display_name": "live run",
	    "tags": {"team": "a"},
	    "snapshot": snaplink.rsplit("/", 1)[-1],
	}
	bad = ["%s=%r, want %r" % (k, c.get(k), v) for k, v in want.items() if c.get(k) != v]
	extra = sorted(set(c) - set(want))
	if extra:
	    bad.append("unexpected keys %s" % extra)
	if bad:
	    print("; ".join(bad))
	    sys.exit(1)
	EOF

test_case metrics_of_both_line_forms_are_logged
expect_eq "0.5
0.25
0.125" "$(cat "$R/metrics/loss" 2>&1)" "metrics/loss"
expect_eq "0.75
1" "$(cat "$R/metrics/acc" 2>&1)" "metrics/acc"
expect_eq "1 2 4" "$("$PY" -c 'import csv,sys; print(" ".join(r["step"] for r in csv.DictReader(open(sys.argv[1]))))' "$R/metrics/loss.csv" 2>&1)" \
	"steps in loss.csv"
expect_eq "3 4" "$("$PY" -c 'import csv,sys; print(" ".join(r["step"] for r in csv.DictReader(open(sys.argv[1]))))' "$R/metrics/acc.csv" 2>&1)" \
	"steps in acc.csv"
expect_eq '{"acc": {"count": 2, "last": 1, "max": 1, "min": 0.75}, "loss": {"count": 3, "last": 0.125, "max": 0.5, "min": 0.125}, "manual": {"count": 1, "last": 0.5, "max": 0.5, "min": 0.5}}' \
	"$("$PY" -c 'import json,sys
m = json.load(open(sys.argv[1]))
print(json.dumps({k: {f: v[f] for f in ("count", "last", "max", "min") if f in v} for k, v in m.items()}, sort_keys=True))' "$R/metrics.json" 2>&1)" \
	"metrics.json (count, last, max, min)"
expect_eq "acc
acc.csv
acc.svg
loss
loss.csv
loss.svg
manual
manual.csv
manual.svg" "$(ls "$R/metrics")" "ls metrics"

test_case malformed_metric_line_goes_to_mlfs_log_and_run_completes
grep -q "skipped.*loss is-not-a-number" "$R/logs/system_logs/mlfs.log" 2>/dev/null ||
	fail "mlfs.log: $(cat "$R/logs/system_logs/mlfs.log" 2>&1)"
expect_eq Completed "$(cat "$R/status")" "status"
grep -q "skipped.*loss is-not-a-number" "$WS/runs/$L/logs/system_logs/mlfs.log" ||
	fail "not in the backing mlfs.log either"

test_case outputs_read_back_with_cp_diff_and_tar
mkdir -p "$TMP/want/nested/deep" "$TMP/want/empty"
"$PY" -c 'import sys; open(sys.argv[1], "wb").write(bytes(range(256)) * 40)' "$TMP/want/nested/deep/weights.bin"
echo top >"$TMP/want/top.txt"
echo Running >"$TMP/want/status_seen.txt"
ls "$R/outputs" >/dev/null 2>&1 || fail "runs/ID/outputs is not served: $(ls "$R/outputs" 2>&1)"
out=$(cp -r "$R/outputs" "$TMP/got" 2>&1) || fail "cp -r outputs: $out"
out=$(diff -r -x env.json "$TMP/want" "$TMP/got" 2>&1) || fail "cp -r of outputs differs: $out"
out=$(diff -r "$WS/runs/$L/outputs" "$R/outputs" 2>&1) || fail "mount vs backing outputs: $out"
expect_eq "outputs/
outputs/empty/
outputs/env.json
outputs/nested/
outputs/nested/deep/
outputs/nested/deep/weights.bin
outputs/status_seen.txt
outputs/top.txt" "$(tar -C "$R" -cf - outputs 2>"$TMP/tar.err" | tar -tf - | sort)" "tar of outputs"
expect_eq "" "$(cat "$TMP/tar.err")" "tar's complaints"
expect_eq "$(stat -c %s "$TMP/want/nested/deep/weights.bin")" "$(stat -c %s "$R/outputs/nested/deep/weights.bin" 2>&1)" \
	"stat size of weights.bin"

test_case logs_read_back_after_the_end
expect_eq "phase one done
live line 0
live line 1
live line 2
live line 3
live line 4
live line 5
live line 6
live line 7
live line 8
live line 9
stderr line
bye" "$(cat "$R/logs/user_logs/std_log.txt" 2>&1)" "logs/user_logs/std_log.txt"
expect_eq "custom log line" "$(cat "$R/logs/custom/train.log" 2>&1)" "logs/custom/train.log"
out=$(diff -r "$WS/runs/$L/logs" "$R/logs" 2>&1) || fail "mount vs backing logs: $out"
expect_eq "logs/
logs/custom/
logs/custom/train.log
logs/system_logs/
logs/system_logs/mlfs.log
logs/user_logs/
logs/user_logs/std_log.txt" "$(tar -C "$R" -cf - logs 2>/dev/null | tar -tf - | sort)" "tar of logs"
grep -q "run ended Completed" "$R/logs/system_logs/mlfs.log" 2>/dev/null || fail "mlfs.log lacks the end"

test_case finished_run_outputs_and_logs_are_read_only
expect_errno EROFS sysop write "$R/outputs/new.txt" x
expect_errno EROFS sysop append "$R/outputs/top.txt" x
expect_errno EROFS sysop write "$R/logs/user_logs/std_log.txt" x
expect_errno EROFS sysop mkdir "$R/outputs/newdir"
expect_errno EROFS sysop unlink "$R/outputs/top.txt"
expect_eq top "$(cat "$WS/runs/$L/outputs/top.txt")" "top.txt unchanged"

test_case run_sees_its_environment_and_mount_dir
"$PY" - "$WS/runs/$L/outputs/env.json" "$L" "$WS" "$MNT" "$TMP" <<-'EOF' || fail "environment of the run"
	import json, os, sys
	env = json.load(open(sys.argv[1]))
	rid, ws, mnt, tmp = sys.argv[2:6]
	rws = os.path.realpath(ws)
	bad = []
	def eq(k, want):
	    if env.get(k) != want:
	        bad.append("%s=%r, want %r" % (k, env.get(k), want))
	eq("MLFS_RUN_ID", rid)
	eq("MLFS_EXPERIMENT", "e")
	if os.path.realpath(env.get("MLFS_WORKSPACE") or "/nonexistent") != rws:
	    bad.append("MLFS_WORKSPACE=%r" % env.get("MLFS_WORKSPACE"))
	if os.path.realpath(env.get("MLFS_OUTPUTS") or "/nonexistent") != os.path.join(rws, "runs", rid, "outputs"):
	    bad.append("MLFS_OUTPUTS=%r" % env.get("MLFS_OUTPUTS"))
	if not (env.get("MLFS_METRICS") or "").startswith(env.get("MLFS_WORKSPACE") or "/nonexistent"):
	    bad.append("MLFS_METRICS=%r outside the workspace" % env.get("MLFS_METRICS"))
	eq("MLFS_RUN_DIR", os.path.join(mnt, "experiments", "e", "runs", rid))
	eq("PYTHONUNBUFFERED", "1")
	eq("K1", "v1")
	eq("K2", "two words")
	eq("argv", [tmp, "--lr", "0.1"])
	if os.path.realpath(env.get("cwd") or "/") != os.path.join(rws, "runs", rid):
	    bad.append("cwd=%r" % env.get("cwd"))
	if bad:
	    print("; ".join(bad))
	    sys.exit(1)
	EOF
expect_eq Running "$(cat "$WS/runs/$L/outputs/status_seen.txt")" "status the run read from \$MLFS_RUN_DIR/status"
pid=$(cat "$TMP/pids/live")
group_gone "$pid" || fail "process group $pid still has processes after the end"

test_case runs_csv_row_of_a_submitted_run
"$PY" - "$X/runs.csv" "$L" "$R/run.json" <<-'EOF' || fail "runs.csv"
	import json, sys
	import pandas as pd
	df = pd.read_csv(sys.argv[1], dtype=str, keep_default_na=False)
	r = json.load(open(sys.argv[3]))
	row = df[df["run_id"] == sys.argv[2]]
	if len(row) != 1:
	    print("rows for the run: %d" % len(row))
	    sys.exit(1)
	row = row.iloc[0]
	want = {"status": "Completed", "display_name": "live run", "compute_target": "local",
	        "number": "1", "parent": "", "created": r["created"], "started": r["started"],
	        "ended": r["ended"], "tag.team": "a", "metric.loss": "0.125", "metric.acc": "1"}
	bad = ["%s=%r, want %r" % (k, row.get(k), v) for k, v in want.items() if row.get(k) != v]
	if abs(float(row["duration_s"] or "nan") - r["duration_s"]) > 0.0015:
	    bad.append("duration_s=%r" % row["duration_s"])
	if bad:
	    print("; ".join(bad))
	    sys.exit(1)
	EOF

# ---- failure, cancel, time-out ------------------------------------------------

test_case exit_code_3_fails_with_exit_code_and_last_lines
F=$(submit fail.py)
is_run_id "$F" || fail "submit: '$F'"
expect_eq Failed "$(run_wait_end "$RUNS/$F")" "the run's end"
expect_eq 3 "$(run_json_get "$RUNS/$F/run.json" 'r["exit_code"]')" "exit_code"
err=$(run_json_get "$RUNS/$F/run.json" 'r["error"]')
case $err in *"exited with code 3"*) ;; *) fail "error does not name the exit code: $err" ;; esac
case $err in *"the last words"*) ;; *) fail "error lacks the log's last line: $err" ;; esac
case $err in *"failing soon 14"*) ;; *) fail "error lacks the log's last lines: $err" ;; esac
expect_eq Failed "$(cat "$RUNS/$F/status")" "status file"

test_case cancel_running_run_kills_its_process_group
C=$(submit sleeper.py "[\"$TMP\", \"c1\"]")
is_run_id "$C" || fail "submit: '$C'"
poll_ms 30000 has_file "$TMP/pids/c1" || fail "the script never started"
run_wait_status "$RUNS/$C" Running 5 || fail "status '$(cat "$RUNS/$C/status")'"
pid=$(cat "$TMP/pids/c1")
cpid=$(cat "$TMP/pids/c1.child")
pid_alive "$pid" || fail "script $pid not alive before cancel"
exec 3<>"$RUNS/$C/cancel"
echo >&3 || fail "write into cancel"
reply=
read -r reply <&3
exec 3>&-
case $reply in CancelRequested | Canceled) ;; *) fail "cancel replied '$reply'" ;; esac
st=$(cat "$RUNS/$C/status")
# The supervisor may already have killed the script and be finishing:
# CancelRequested -> Finalizing -> Canceled (DESIGN's lifecycle).
case $st in CancelRequested | Finalizing | Canceled) ;; *) fail "status right after cancel: $st" ;; esac
expect_eq Canceled "$(run_wait_end "$RUNS/$C")" "the run's end"
pid_wait_gone "$pid" 5 || fail "script $pid alive after Canceled"
pid_wait_gone "$cpid" 5 || fail "its child $cpid alive after Canceled"
group_gone "$pid" || fail "process group $pid not empty: $(pgrep -g "$pid")"
expect_eq '"Canceled"' "$(run_json_get "$RUNS/$C/run.json" 'r["status"]')" "run.json status"
[ "$(run_json_get "$RUNS/$C/run.json" 'r["ended"]')" != null ] || fail "run.json ended is null"
grep -q "SIGTERM" "$WS/runs/$C/logs/system_logs/mlfs.log" || fail "mlfs.log does not say SIGTERM"

test_case cancel_run_that_traps_sigterm_ends_canceled_after_clean_exit
C=$(submit sleeper.py "[\"$TMP\", \"c2\", \"trap\"]")
is_run_id "$C" || fail "submit: '$C'"
poll_ms 30000 has_file "$TMP/pids/c2" || fail "the script never started"
run_wait_status "$RUNS/$C" Running 5 || fail "status '$(cat "$RUNS/$C/status")'"
pid=$(cat "$TMP/pids/c2")
out=$(echo 2>&1 >"$RUNS/$C/cancel") || fail "echo > cancel: $out"
expect_eq Canceled "$(run_wait_end "$RUNS/$C")" "the run's end"
pid_wait_gone "$pid" 5 || fail "script $pid alive after Canceled"
expect_eq clean "$(cat "$WS/runs/$C/outputs/term.txt" 2>&1)" "the handler's output"
grep -q "got SIGTERM, cleaning up" "$WS/runs/$C/logs/user_logs/std_log.txt" || fail "the handler's print is not in the log"
expect_eq 0 "$(run_json_get "$RUNS/$C/run.json" 'r["exit_code"]')" "exit_code of a clean exit"
! grep -q SIGKILL "$WS/runs/$C/logs/system_logs/mlfs.log" || fail "SIGKILL sent to a script that exited on SIGTERM"

test_case mlfs_submit_wait_exits_1_when_the_run_is_canceled
printf '{"source_directory": "%s", "script": "sleeper.py", "arguments": ["%s", "c3"], %s}' "$SRC" "$TMP" "$PYENV" >"$TMP/c3.json"
"$MLFS" submit "$X" "$TMP/c3.json" --wait >"$TMP/c3.out" 2>"$TMP/c3.err" &
wpid=$!
poll_ms 30000 has_file "$TMP/pids/c3" || fail "the script never started"
C=$(readlink "$RUNS/latest")
run_wait_status "$RUNS/$C" Running 5 || fail "status '$(cat "$RUNS/$C/status")'"
echo >"$RUNS/$C/cancel" || fail "cancel"
pid_wait_gone "$wpid" 60 || { fail "mlfs submit --wait still waiting"; kill "$wpid"; }
wait "$wpid"
expect_eq 1 "$?" "exit status of --wait for a Canceled run"
grep -q "^mlfs: run $C Canceled" "$TMP/c3.err" || fail "stderr: $(cat "$TMP/c3.err")"
expect_eq sleeping "$(cat "$TMP/c3.out")" "stdout: the log"

test_case cancel_completed_run_is_EPERM_with_message_and_event
out=$(submit_fd "$RUNS/$L/cancel" x)
case $out in
"EPERM: "*Completed*) ;;
*) fail "cancel of a Completed run: '$out'" ;;
esac
expect_event "refused write experiments/e/runs/$L/cancel: .*\(EPERM\)"
expect_errno EPERM bash -c 'echo > "$1"' bash "$RUNS/$L/cancel"
expect_eq Completed "$(cat "$RUNS/$L/status")" "status stays Completed"

test_case cancel_run_that_ignores_sigterm_is_killed_after_the_grace_period
C=$(submit sleeper.py "[\"$TMP\", \"c4\", \"ignore\"]")
is_run_id "$C" || fail "submit: '$C'"
poll_ms 30000 has_file "$TMP/pids/c4" || fail "the script never started"
run_wait_status "$RUNS/$C" Running 5 || fail "status '$(cat "$RUNS/$C/status")'"
pid=$(cat "$TMP/pids/c4")
echo >"$RUNS/$C/cancel" || fail "cancel"
run_wait_status "$RUNS/$C" CancelRequested 5 || fail "status after cancel: '$(cat "$RUNS/$C/status")'"
pid_alive "$pid" || fail "script $pid gone before the grace period (it ignores SIGTERM)"
expect_eq Canceled "$(run_wait_end "$RUNS/$C")" "the run's end"
pid_wait_gone "$pid" 5 || fail "script $pid alive after Canceled"
group_gone "$pid" || fail "process group $pid not empty"
grep -q "SIGKILL" "$WS/runs/$C/logs/system_logs/mlfs.log" || fail "mlfs.log does not say SIGKILL"
expect_eq null "$(run_json_get "$RUNS/$C/run.json" 'r["exit_code"]')" "exit_code of a killed script"

test_case finished_run_leaves_no_process_behind_even_out_of_its_group
E=$(submit escape.py "[\"$TMP\"]")
is_run_id "$E" || fail "submit: '$E'"
expect_eq Completed "$(run_wait_end "$RUNS/$E")" "the run's end"
epid=$(cat "$TMP/pids/escaped" 2>/dev/null)
[ -n "$epid" ] || fail "the script recorded no pid"
[ -z "$epid" ] || pid_wait_gone "$epid" 5 ||
	fail "process $epid ($(tr '\0' ' ' <"/proc/$epid/cmdline" 2>/dev/null)) that the run started in its own session is still running after Completed"

test_case max_run_duration_exceeded_fails_timed_out
T=$(submit sleeper.py "[\"$TMP\", \"t1\"]" '"max_run_duration_seconds": 1')
is_run_id "$T" || fail "submit: '$T'"
expect_eq Failed "$(run_wait_end "$RUNS/$T")" "the run's end"
err=$(run_json_get "$RUNS/$T/run.json" 'r["error"]')
case $err in *"timed out after 1 s"*) ;; *) fail "error: $err" ;; esac
pid=$(cat "$TMP/pids/t1" 2>/dev/null)
[ -n "$pid" ] || fail "the script never started"
[ -z "$pid" ] || pid_wait_gone "$pid" 5 || fail "script $pid alive after the time-out"
expect_eq 1 "$(run_json_get "$RUNS/$T/config.json" 'r["max_run_duration_seconds"]')" "config.json max_run_duration_seconds"

# ---- child runs ----------------------------------------------------------------

test_case child_run_links_to_its_parent_and_back
K=$(submit fail.py '[]' "\"parent\": \"$L\"")
is_run_id "$K" || fail "submit child: '$K'"
[ -L "$RUNS/$K/parent" ] || fail "runs/CHILD/parent is not a symlink"
expect_eq "../$L" "$(readlink "$RUNS/$K/parent")" "readlink parent"
expect_eq "\"$L\"" "$(run_json_get "$RUNS/$K/parent/run.json" 'r["id"]' 2>&1)" "run.json through parent"
expect_eq "$K" "$(ls "$RUNS/$L/children")" "ls children"
expect_eq "../../$K" "$(readlink "$RUNS/$L/children/$K")" "readlink children/CHILD"
expect_eq "\"$K\"" "$(run_json_get "$RUNS/$L/children/$K/run.json" 'r["id"]' 2>&1)" "run.json through children/CHILD"
expect_eq "\"$L\"" "$(run_json_get "$RUNS/$K/run.json" 'r["parent"]')" "child's run.json parent"
expect_eq "[\"$K\"]" "$(run_json_get "$RUNS/$L/run.json" 'r["children"]')" "parent's run.json children"
[ ! -e "$RUNS/$L/parent" ] || fail "the parent has a parent link"
expect_eq "" "$(ls "$RUNS/$K/children")" "the child has no children"
expect_eq "\"$L\"" "$(run_json_get "$RUNS/$K/config.json" 'r["parent"]')" "child's config.json parent"
run_wait_end "$RUNS/$K" >/dev/null
expect_eq Failed "$(cat "$RUNS/$L/children/$K/status" 2>&1)" "status through children/CHILD"

test_case parent_in_another_experiment_is_EINVAL
mkdir "$MNT/experiments/other" || fail "mkdir other"
out=$(submit_fd "$MNT/experiments/other/submit" \
	"{\"source_directory\": \"$SRC\", \"script\": \"fail.py\", \"parent\": \"$L\"}")
case $out in "EINVAL: "*"field 'parent'"*) ;; *) fail "reply '$out'" ;; esac
expect_event "refused write experiments/other/submit: .*field 'parent'.*\(EINVAL\)"
expect_eq "" "$(ls "$MNT/experiments/other/runs")" "no run in other"

# ---- the queue of a compute target with one slot --------------------------------

mlfs_unmount
mlfs_mount_with -o max_concurrent_runs=1

test_case compute_json_shows_max_concurrent_runs
expect_eq 1 "$(run_json_get "$MNT/computes/local/compute.json" 'r["max_concurrent_runs"]')" "max_concurrent_runs"
expect_eq '"local"' "$(run_json_get "$MNT/computes/local/compute.json" 'r["name"]')" "name"
expect_eq "" "$(cat "$MNT/computes/local/queue")" "empty queue"

# monitor: samples the queue until $TMP/mon.stop; one line per sample
# with the number of runs that are not Queued.
monitor()
{
	while [ ! -e "$TMP/mon.stop" ]; do
		grep -vc '^Queued	' "$MNT/computes/local/queue" >>"$TMP/mon.out" 2>/dev/null
		sleep 0.05
	done
}

test_case three_runs_queue_and_run_one_at_a_time_in_fifo_order
: >"$TMP/mon.out"
monitor &
mon_pid=$!
q=()
for n in 1 2 3; do
	q[n]=$(submit waiter.py "[\"$TMP\", \"q$n\"]")
	is_run_id "${q[n]}" || fail "submit q$n: '${q[n]}'"
done
expect_eq "${q[1]} ${q[2]} ${q[3]}" "$(cut -f3 "$MNT/computes/local/queue" | paste -sd' ')" \
	"the queue lists the three runs oldest first"
for n in 1 2 3; do
	poll_ms 30000 test -e "$TMP/q$n.ran" || fail "q$n never ran"
	run_wait_status "$RUNS/${q[n]}" Running 5 || fail "q$n status '$(cat "$RUNS/${q[n]}/status")'"
	for m in 1 2 3; do
		st=$(cat "$RUNS/${q[m]}/status")
		if [ "$m" -lt "$n" ]; then
			expect_eq Completed "$st" "q$m while q$n runs"
		elif [ "$m" -gt "$n" ]; then
			expect_eq Queued "$st" "q$m while q$n runs"
			[ ! -e "$TMP/q$m.ran" ] || fail "q$m ran while q$n runs"
		fi
	done
	printf '%s\n' "$(cat "$MNT/computes/local/queue")" | grep -qx "Running	e	${q[n]}" ||
		fail "queue while q$n runs: $(cat "$MNT/computes/local/queue")"
	touch "$TMP/q$n.go"
	expect_eq Completed "$(run_wait_end "$RUNS/${q[n]}")" "q$n's end"
done
touch "$TMP/mon.stop"
wait "$mon_pid"
max=$(sort -n "$TMP/mon.out" | tail -n1)
[ "${max:-9}" -le 1 ] || fail "the queue showed $max active runs at once"
[ "$(wc -l <"$TMP/mon.out")" -gt 0 ] || fail "the monitor took no samples"
"$PY" - "$RUNS/${q[1]}/run.json" "$RUNS/${q[2]}/run.json" "$RUNS/${q[3]}/run.json" <<-'EOF' || fail "start times"
	import json, sys
	r = [json.load(open(p)) for p in sys.argv[1:]]
	bad = []
	for a, b in zip(r, r[1:]):
	    if not (a["started"] and b["started"] and a["started"] < b["started"]):
	        bad.append("started %s then %s" % (a["started"], b["started"]))
	    elif not a["ended"] <= b["started"]:
	        bad.append("%s started %s before %s ended %s" % (b["id"], b["started"], a["id"], a["ended"]))
	if bad:
	    print("; ".join(bad))
	    sys.exit(1)
	EOF
expect_eq "" "$(cat "$MNT/computes/local/queue")" "queue empty at the end"

test_case cancel_queued_run_cancels_without_starting
B=$(submit waiter.py "[\"$TMP\", \"blocker\"]")
is_run_id "$B" || fail "submit blocker: '$B'"
poll_ms 30000 test -e "$TMP/blocker.ran" || fail "the blocker never ran"
Q=$(submit waiter.py "[\"$TMP\", \"queued\"]")
is_run_id "$Q" || fail "submit queued: '$Q'"
expect_eq Queued "$(cat "$RUNS/$Q/status")" "status behind the blocker"
out=$(submit_fd "$RUNS/$Q/cancel" x)
expect_eq Canceled "$out" "cancel's reply for a Queued run"
expect_eq Canceled "$(cat "$RUNS/$Q/status")" "status"
! grep -q "$Q" "$MNT/computes/local/queue" || fail "the canceled run is still in the queue"
touch "$TMP/blocker.go"
expect_eq Completed "$(run_wait_end "$RUNS/$B")" "the blocker's end"
poll_ms 5000 eval '[ -z "$(supervisor_pids)" ]' || fail "supervisors left: $(supervisor_pids)"
[ ! -e "$TMP/queued.ran" ] || fail "the canceled run's script ran"
expect_eq Canceled "$(cat "$RUNS/$Q/status")" "status after the blocker ended"
expect_eq null "$(run_json_get "$RUNS/$Q/run.json" 'r["started"]')" "run.json started"
[ "$(run_json_get "$RUNS/$Q/run.json" 'r["ended"]')" != null ] || fail "run.json ended is null"

test_done
