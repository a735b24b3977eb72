#!/bin/bash
# Runs: interactive runs by mkdir, run.json, status, runs/latest, runs.csv.
. "$(dirname "$0")/lib.sh"

mlfs_mount
X=$MNT/experiments/exp
RUNS=$X/runs
mkdir "$X" || fail "mkdir experiment"

# run_field RUN KEY: the JSON value of KEY in RUN's run.json, as JSON.
run_field()
{
	"$PY" -c 'import json, sys
print(json.dumps(json.load(open(sys.argv[1]))[sys.argv[2]]))' "$RUNS/$1/run.json" "$2"
}

test_case mkdir_run_makes_interactive_running_run
expect_true "mkdir runs/first" mkdir "$RUNS/first"
[ -d "$RUNS/first" ] || fail "runs/first is not a directory"
expect_eq "Running" "$(cat "$RUNS/first/status")" "status of a new run"
expect_eq '"Running"' "$(run_field first status)" "run.json status"
expect_eq 1 "$(run_field first number)" "first run's number"
for f in run.json status tags properties metrics metrics.json; do
	[ -e "$RUNS/first/$f" ] || fail "run directory lacks $f"
done

test_case mkdir_existing_run_gives_EEXIST
expect_errno EEXIST mkdir "$RUNS/first"

test_case mkdir_run_with_invalid_name_gives_EINVAL_and_event
expect_errno EINVAL mkdir "$RUNS/.dot"
expect_event "refused mkdir experiments/exp/runs/\.dot: .*\(EINVAL\)"
expect_errno EINVAL mkdir "$RUNS/a:b"
expect_event "refused mkdir experiments/exp/runs/a:b: .*\(EINVAL\)"

test_case run_id_is_unique_across_the_workspace
expect_true "mkdir experiments/other" mkdir "$MNT/experiments/other"
expect_errno EEXIST mkdir "$MNT/experiments/other/runs/first"
expect_event "refused mkdir experiments/other/runs/first: .*\(EEXIST\)"
expect_eq "" "$(ls "$MNT/experiments/other/runs")" "no run made in the other experiment"

test_case runs_are_numbered_in_creation_order
expect_true "mkdir runs/second" mkdir "$RUNS/second"
expect_eq 2 "$(run_field second number)" "second run's number"
expect_true "mkdir runs/third" mkdir "$RUNS/third"
expect_eq 3 "$(run_field third number)" "third run's number"
expect_eq 1 "$(run_field first number)" "first run's number is kept"

test_case runs_latest_links_to_newest_run
[ -L "$RUNS/latest" ] || fail "runs/latest is not a symlink"
expect_eq third "$(readlink "$RUNS/latest")" "runs/latest target"
expect_eq '"third"' "$("$PY" -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["id"]))' "$RUNS/latest/run.json")" \
	"run.json through runs/latest"
expect_eq "first
latest
second
third" "$(ls "$RUNS")" "ls runs"

test_case run_json_is_valid_json_with_contract_fields
out=$("$PY" -m json.tool "$RUNS/first/run.json" 2>&1) || fail "json.tool rejects run.json: $out"
"$PY" - "$RUNS/first/run.json" <<-'EOF' || fail "run.json fields"
	import json, re, sys
	r = json.load(open(sys.argv[1]))
	want = ["id", "number", "experiment", "display_name", "status", "created",
	        "started", "ended", "duration_s", "compute_target", "environment",
	        "snapshot", "git", "parent", "children", "tags", "properties",
	        "exit_code", "error", "arguments"]
	bad = []
	missing = [k for k in want if k not in r]
	if missing:
	    bad.append("missing keys %s" % missing)
	ts = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
	checks = [
	    ("id", r.get("id") == "first"),
	    ("number", r.get("number") == 1 and type(r.get("number")) is int),
	    ("experiment", r.get("experiment") == "exp"),
	    ("status", r.get("status") == "Running"),
	    ("created", isinstance(r.get("created"), str) and ts.match(r["created"])),
	    ("started", isinstance(r.get("started"), str) and ts.match(r["started"])),
	    ("created<=started", str(r.get("created")) <= str(r.get("started"))),
	    ("ended", r.get("ended") is None),
	    ("duration_s", r.get("duration_s") is None),
	    ("parent", r.get("parent") is None),
	    ("children", r.get("children") == []),
	    ("tags", r.get("tags") == {}),
	    ("properties", r.get("properties") == {}),
	    ("exit_code", r.get("exit_code") is None),
	    ("arguments", r.get("arguments") == []),
	]
	bad += ["%s=%r" % (k, r.get(k.split("<")[0])) for k, ok in checks if not ok]
	if bad:
	    print("run.json:", "; ".join(bad))
	    sys.exit(1)
	EOF

test_case status_write_completed_with_echo_ends_run
expect_true "echo Completed > status" bash -c 'echo Completed > "$1"' bash "$RUNS/first/status"
expect_eq Completed "$(cat "$RUNS/first/status")" "status after echo Completed"
"$PY" - "$RUNS/first/run.json" <<-'EOF' || fail "run.json after Completed"
	import json, re, sys
	from datetime import datetime
	r = json.load(open(sys.argv[1]))
	ts = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
	bad = []
	if r["status"] != "Completed":
	    bad.append("status=%r" % r["status"])
	if not (isinstance(r["ended"], str) and ts.match(r["ended"])):
	    bad.append("ended=%r" % r["ended"])
	else:
	    p = lambda s: datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")
	    span = (p(r["ended"]) - p(r["started"])).total_seconds()
	    if span < 0:
	        bad.append("ended %s before started %s" % (r["ended"], r["started"]))
	    d = r["duration_s"]
	    if not isinstance(d, (int, float)) or isinstance(d, bool) or abs(d - span) > 0.0015:
	        bad.append("duration_s=%r, ended-started=%r" % (d, span))
	if bad:
	    print("run.json:", "; ".join(bad))
	    sys.exit(1)
	EOF

test_case status_write_without_newline_is_accepted
expect_true "printf Failed > status" bash -c 'printf Failed > "$1"' bash "$RUNS/second/status"
expect_eq Failed "$(cat "$RUNS/second/status")" "status after printf Failed"
expect_eq '"Failed"' "$(run_field second status)" "run.json status Failed"

test_case status_write_canceled_is_accepted
expect_true "echo Canceled > status" bash -c 'echo Canceled > "$1"' bash "$RUNS/third/status"
expect_eq Canceled "$(cat "$RUNS/third/status")" "status after Canceled"

test_case status_write_other_words_gives_EINVAL_and_event
expect_true "mkdir runs/fourth" mkdir "$RUNS/fourth"
for word in Bogus completed Running Queued NotStarted ' Completed' \
	'Completed ' 'Completed Failed' $'Completed\n\n' $'\nCompleted' \
	$'Completed\r\n'; do
	expect_errno EINVAL sysop write "$RUNS/fourth/status" "$word"
	expect_event "refused write experiments/exp/runs/fourth/status: .*\(EINVAL\)"
done
expect_eq Running "$(cat "$RUNS/fourth/status")" "status unchanged by refused writes"

test_case status_same_terminal_status_again_is_accepted
expect_true "echo Completed again" bash -c 'echo Completed > "$1"' bash "$RUNS/first/status"
expect_eq Completed "$(cat "$RUNS/first/status")" "status after Completed twice"

test_case status_different_terminal_status_after_end_gives_EPERM_and_event
for word in Failed Canceled; do
	expect_errno EPERM bash -c 'echo "$2" > "$1"' bash "$RUNS/first/status" "$word"
	expect_event "refused write experiments/exp/runs/first/status: .*\(EPERM\)"
done
expect_eq Completed "$(cat "$RUNS/first/status")" "status stays Completed"
expect_eq '"Completed"' "$(run_field first status)" "run.json stays Completed"

test_case rmdir_run_gives_EPERM_and_event
expect_errno EPERM rmdir "$RUNS/fourth"
expect_event "refused rmdir experiments/exp/runs/fourth: .*\(EPERM\)"
expect_errno EPERM rmdir "$RUNS/first"
[ -d "$RUNS/fourth" ] || fail "run gone after refused rmdir"

test_case runs_csv_header_is_exact_without_tags_or_metrics
expect_true "mkdir plain" mkdir "$MNT/experiments/plain"
expect_true "mkdir plain/runs/p1" mkdir "$MNT/experiments/plain/runs/p1"
expect_eq "run_id,number,status,display_name,created,started,ended,duration_s,compute_target,parent" \
	"$(head -n1 "$MNT/experiments/plain/runs.csv")" "runs.csv header"
expect_eq 2 "$(wc -l <"$MNT/experiments/plain/runs.csv")" "runs.csv lines for one run"

test_case runs_csv_adds_tag_and_metric_columns_and_newest_first
tag_tricky=$(printf 'a,b "quoted" and ""double""\nsecond line, too\r\nthird')
printf '%s' "$tag_tricky" >"$RUNS/second/tags/note" || fail "write tricky tag"
printf '%s' plain >"$RUNS/third/tags/note" || fail "write plain tag"
printf '%s' 'x' >"$RUNS/first/tags/team" || fail "write team tag"
printf '%s\n' 0.5 0.25 0.125 >>"$RUNS/first/metrics/loss" || fail "log loss first"
printf '%s\n' 3 -1.5e-3 >>"$RUNS/second/metrics/loss" || fail "log loss second"
printf '%s\n' '7 1' '0.1 2' >>"$RUNS/third/metrics/acc" || fail "log acc third"
header=$(head -n1 "$X/runs.csv")
expect_eq "run_id,number,status,display_name,created,started,ended,duration_s,compute_target,parent" \
	"$(printf '%s' "$header" | cut -d, -f1-10)" "fixed columns of runs.csv"
expect_eq "metric.acc,metric.loss,tag.note,tag.team" \
	"$(printf '%s' "$header" | cut -d, -f11- | tr , '\n' | sort | paste -sd,)" \
	"tag and metric columns of runs.csv"

test_case pandas_reads_runs_csv_exactly
"$PY" - "$X/runs.csv" "$tag_tricky" <<-'EOF' || fail "pandas view of runs.csv"
	import math, sys
	import pandas as pd
	path, tricky = sys.argv[1], sys.argv[2]
	df = pd.read_csv(path)
	s = pd.read_csv(path, dtype=str, keep_default_na=False)
	bad = []
	def eq(what, want, got):
	    if want != got:
	        bad.append("%s: want %r, got %r" % (what, want, got))
	eq("run order (newest first)", ["fourth", "third", "second", "first"], list(df["run_id"]))
	eq("numbers", [4, 3, 2, 1], [int(x) for x in df["number"]])
	eq("number dtype", "int64", str(df["number"].dtype))
	eq("statuses", ["Running", "Canceled", "Failed", "Completed"], list(df["status"]))
	row = {r: i for i, r in enumerate(s["run_id"])}
	eq("tag.note second", tricky, s["tag.note"][row["second"]])
	eq("tag.note third", "plain", s["tag.note"][row["third"]])
	eq("tag.note first", "", s["tag.note"][row["first"]])
	eq("tag.team first", "x", s["tag.team"][row["first"]])
	eq("metric.loss first", 0.125, float(df["metric.loss"][row["first"]]))
	eq("metric.loss second", -1.5e-3, float(df["metric.loss"][row["second"]]))
	eq("metric.acc third", 0.1, float(df["metric.acc"][row["third"]]))
	eq("metric.loss third empty", True, math.isnan(df["metric.loss"][row["third"]]))
	eq("ended empty while running", "", s["ended"][row["fourth"]])
	eq("ended set when completed", True, s["ended"][row["first"]].endswith("Z"))
	eq("created of first", True, len(s["created"][row["first"]]) == 24)
	import json, os
	runs = os.path.dirname(path) + "/runs/"
	for rid in ("first", "second", "third", "fourth"):
	    rj = json.load(open(runs + rid + "/run.json"))
	    for k in ("created", "started", "ended"):
	        eq("%s of %s as in run.json" % (k, rid), rj[k] or "", s[k][row[rid]])
	    d = s["duration_s"][row[rid]]
	    eq("duration_s of %s as in run.json" % rid, rj["duration_s"], float(d) if d else None)
	if bad:
	    print("\n".join(bad))
	    sys.exit(1)
	EOF

test_case runs_csv_is_rfc4180
"$PY" - "$X/runs.csv" <<-'EOF' || fail "runs.csv RFC 4180 form"
	import csv, sys
	raw = open(sys.argv[1], "rb").read()
	bad = []
	if not raw.endswith(b"\r\n") and not raw.endswith(b"\n"):
	    bad.append("no final line break")
	rows = list(csv.reader(open(sys.argv[1], newline="")))
	widths = {len(r) for r in rows}
	if len(widths) != 1:
	    bad.append("rows of different widths: %s" % sorted(widths))
	if len(rows) != 5:
	    bad.append("%d records, want header + 4" % len(rows))
	if bad:
	    print("; ".join(bad))
	    sys.exit(1)
	EOF

test_done
