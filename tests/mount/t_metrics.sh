#!/bin/bash
# Metrics: append lines to log, read back as values, CSV, SVG, metrics.json.
. "$(dirname "$0")/lib.sh"

mlfs_mount
X=$MNT/experiments/exp
R=$X/runs/r1
M=$R/metrics
mkdir "$X" "$R" || fail "mkdir experiment and run"

test_case echo_append_logs_first_point
echo 0.5 >>"$M/loss" || fail "echo 0.5 >> metrics/loss"
expect_eq 0.5 "$(cat "$M/loss")" "metrics/loss after one append"
expect_eq "loss
loss.csv
loss.svg" "$(ls "$M")" "ls metrics"

test_case value_and_value_step_lines_are_logged_in_order
printf '0.25\n' >>"$M/loss" || fail "append 0.25"
printf '%s\n' '3 10' '-1.5 11' '1e-3' '2.75 20' '10' >>"$M/loss" || fail "append lines"
printf '0.5\n0.25\n3\n-1.5\n1e-3\n2.75\n10\n' >"$TMP/loss.expected"
expect_eq "$(cat "$TMP/loss.expected")" "$(cat "$M/loss")" "metrics/loss lines"

test_case shell_tools_over_metric_file_match_expected
expect_eq 10 "$(tail -n1 "$M/loss")" "tail -n1"
expect_eq "$(sort -g "$TMP/loss.expected")" "$(sort -g "$M/loss")" "sort -g"
expect_eq -1.5 "$(sort -g "$M/loss" | head -n1)" "sort -g minimum"
expect_eq "$(awk '{s+=$1} END {print s}' "$TMP/loss.expected")" \
	"$(awk '{s+=$1} END {print s}' "$M/loss")" "awk sum"
expect_eq 15.001 "$(awk '{s+=$1} END {print s}' "$M/loss")" "awk sum value"
expect_eq 7 "$(wc -l <"$M/loss")" "wc -l"

test_case metric_csv_has_header_and_step_value_timestamp_rows
expect_eq "step,value,timestamp" "$(head -n1 "$M/loss.csv")" "NAME.csv header"
expect_eq 8 "$(wc -l <"$M/loss.csv")" "NAME.csv lines"
grep -vxE '[0-9]+,[^,]+,[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z' \
	"$M/loss.csv" | grep -vx 'step,value,timestamp' >"$TMP/badrows"
[ ! -s "$TMP/badrows" ] || fail "NAME.csv rows not step,value,ISO-timestamp: $(cat "$TMP/badrows")"

test_case pandas_reads_metric_csv_exactly
printf '%s\n' '0.1 0' '0.2 5' '-7.25 6' '1e10 100' '3.14159265358979 101' >>"$M/acc" ||
	fail "log acc"
"$PY" - "$M/acc.csv" <<-'EOF' || fail "pandas view of acc.csv"
	import sys
	import pandas as pd
	df = pd.read_csv(sys.argv[1])
	want = [(0, 0.1), (5, 0.2), (6, -7.25), (100, 1e10), (101, 3.14159265358979)]
	got = list(zip((int(s) for s in df["step"]), (float(v) for v in df["value"])))
	bad = []
	if list(df.columns) != ["step", "value", "timestamp"]:
	    bad.append("columns %r" % list(df.columns))
	if str(df["step"].dtype) != "int64":
	    bad.append("step dtype %s" % df["step"].dtype)
	if got != want:
	    bad.append("pairs %r, want %r" % (got, want))
	ts = pd.to_datetime(df["timestamp"], utc=True)
	if ts.isna().any() or not ts.is_monotonic_increasing:
	    bad.append("timestamps %r" % list(df["timestamp"]))
	if bad:
	    print("; ".join(bad))
	    sys.exit(1)
	EOF

test_case metric_svg_is_wellformed_svg
for name in loss acc; do
	"$PY" - "$M/$name.svg" <<-'EOF' || fail "$name.svg"
		import sys
		from xml.dom import minidom
		doc = minidom.parse(sys.argv[1])
		root = doc.documentElement
		if root.localName != "svg":
		    print("root element is <%s>" % root.tagName)
		    sys.exit(1)
		EOF
done
echo 42 >>"$M/single" || fail "log single"
"$PY" -c 'import sys; from xml.dom import minidom; sys.exit(minidom.parse(sys.argv[1]).documentElement.localName != "svg")' \
	"$M/single.svg" || fail "single-point chart is not an <svg> document"

test_case metrics_json_has_last_min_max_count
"$PY" - "$R/metrics.json" <<-'EOF' || fail "metrics.json"
	import json, sys
	m = json.load(open(sys.argv[1]))
	want = {
	    "loss": {"last": 10.0, "min": -1.5, "max": 10.0, "count": 7},
	    "acc": {"last": 3.14159265358979, "min": -7.25, "max": 1e10, "count": 5},
	    "single": {"last": 42.0, "min": 42.0, "max": 42.0, "count": 1},
	}
	bad = []
	if sorted(m) != sorted(want):
	    bad.append("names %r" % sorted(m))
	for name, w in want.items():
	    for k, v in w.items():
	        got = m.get(name, {}).get(k)
	        if got != v or (k == "count" and type(got) is not int):
	            bad.append("%s.%s = %r, want %r" % (name, k, got, v))
	if bad:
	    print("; ".join(bad))
	    sys.exit(1)
	EOF

test_case non_numeric_line_refuses_whole_write_with_EINVAL_and_event
before=$(cat "$M/loss")
before_json=$(cat "$R/metrics.json")
# coreutils printf makes one write(); bash's builtin printf would make one
# per line, and mlfs judges each write() on its own.
expect_errno EINVAL bash -c '/usr/bin/printf "1\nabc\n2\n" >> "$1"' bash "$M/loss"
expect_event "refused write experiments/exp/runs/r1/metrics/loss: .*\(EINVAL\)"
for bad in $'abc\n' $'1 abc\n' $'1 2 3\n' $'1,5\n' $'0x\n' $'5\n6\n--\n'; do
	expect_errno EINVAL sysop append "$M/loss" "$bad"
	expect_event "metrics/loss.*\(EINVAL\)"
done
expect_eq "$before" "$(cat "$M/loss")" "metrics/loss unchanged by refused writes"
expect_eq "$before_json" "$(cat "$R/metrics.json")" "metrics.json unchanged by refused writes"

test_case refused_first_write_stores_no_metric
expect_errno EINVAL sysop append "$M/fresh" $'1\nabc\n'
expect_event "metrics/fresh.*\(EINVAL\)"
ls "$M" | grep -q '^fresh' && fail "refused metric 'fresh' is listed: $(ls "$M" | tr '\n' ' ')"
[ ! -e "$M/fresh" ] || fail "metrics/fresh exists (stat: $(stat -c '%s bytes' "$M/fresh" 2>&1)) though nothing was stored"
"$PY" -c 'import json,sys; sys.exit("fresh" in json.load(open(sys.argv[1])))' "$R/metrics.json" ||
	fail "refused metric 'fresh' is in metrics.json"

test_case metric_csv_and_svg_names_are_refused_with_EINVAL
for name in x.csv x.svg .hidden 'a b'; do
	expect_errno EINVAL sysop append "$M/$name" $'1\n'
	expect_event "refused create experiments/exp/runs/r1/metrics/.*\(EINVAL\)"
done
expect_errno EINVAL bash -c 'echo 1 >> "$1"' bash "$M/loss2.csv"

test_case truncate_metric_with_points_gives_EPERM_and_event
before=$(cat "$M/loss")
expect_errno EPERM bash -c ': > "$1"' bash "$M/loss"
expect_event "refused truncate experiments/exp/runs/r1/metrics/loss: .*\(EPERM\)"
expect_errno EPERM bash -c 'echo 5 > "$1"' bash "$M/loss"
expect_errno EPERM sysop truncate "$M/loss"
expect_eq "$before" "$(cat "$M/loss")" "metrics/loss unchanged after truncate attempts"

test_case rm_metric_gives_EPERM
expect_errno EPERM rm "$M/loss"
[ -e "$M/loss" ] || fail "metric gone after refused rm"

test_case buffered_writer_of_200000_values_is_logged_exactly
"$PY" - "$M/big" "$TMP/big.expected" <<-'EOF' || fail "python writer"
	import random, sys
	rnd = random.Random(20240601)
	lines = []
	for i in range(200000):
	    v = rnd.uniform(-1000, 1000) if i % 3 else rnd.randint(-50, 50)
	    lines.append("%r\n" % v if i % 2 else "%r %d\n" % (v, i))
	open(sys.argv[2], "w").write("".join(l.split(" ")[0].rstrip("\n") + "\n" for l in lines))
	# A buffered text writer: 8 KiB buffers cut lines anywhere.
	with open(sys.argv[1], "a", buffering=8192) as f:
	    for l in lines:
	        f.write(l)
	EOF
expect_eq 200000 "$(wc -l <"$M/big")" "lines in metrics/big"
cmp -s "$TMP/big.expected" "$M/big" || fail "metrics/big differs from what was written: $(cmp "$TMP/big.expected" "$M/big" 2>&1)"
expect_eq 200000 "$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["big"]["count"])' "$R/metrics.json")" \
	"metrics.json count of big"
expect_eq 200001 "$(wc -l <"$M/big.csv")" "rows in big.csv (with header)"
expect_eq "$(stat -c %s "$M/big")" "$(cat "$M/big" | wc -c)" "stat size of metrics/big"

test_case reading_while_appending_shows_each_point_once
(for i in $(seq 1 2000); do echo "$i" >>"$M/watched" || exit 1; done) &
wpid=$!
while pid_alive "$wpid"; do
	cat "$M/watched" "$M/watched.csv" >/dev/null 2>&1
done
wait "$wpid" || fail "the appender failed"
seq 1 2000 >"$TMP/watched.expected"
expect_eq 2000 "$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["watched"]["count"])' "$R/metrics.json")" \
	"metrics.json count of watched"
expect_eq 2000 "$(wc -l <"$M/watched")" "lines of metrics/watched read after the appender is done"
expect_eq 2001 "$(wc -l <"$M/watched.csv")" "rows of metrics/watched.csv (with header)"
cmp -s "$TMP/watched.expected" "$M/watched" || fail "metrics/watched is not 1..2000 in order"

test_case concurrent_appenders_lose_nothing_and_keep_order
for p in 1 2 3 4; do
	(for i in $(seq 1 500); do echo "$((p * 100000 + i))" >>"$M/shared" || exit 1; done) &
	pids="${pids:-} $!"
done
# Meanwhile, every read sees whole lines: a prefix of what ends up logged.
for i in $(seq 1 40); do cat "$M/shared" >"$TMP/snap_$i" 2>/dev/null; done
for pid in $pids; do wait "$pid" || fail "an appender failed"; done
"$PY" - "$M/shared" "$TMP" <<-'EOF' || fail "concurrent appends"
	import glob, sys
	final = open(sys.argv[1]).read()
	vals = [int(v) for v in final.split()]
	bad = []
	if len(vals) != 2000:
	    dups = len(vals) - len(set(vals))
	    bad.append("%d values, want 2000 (%d repeated)" % (len(vals), dups))
	for p in range(1, 5):
	    mine = [v - p * 100000 for v in vals if v // 100000 == p]
	    if mine != list(range(1, 501)):
	        bad.append("writer %d: %d values, out of order or missing" % (p, len(mine)))
	for snap in glob.glob(sys.argv[2] + "/snap_*"):
	    t = open(snap).read()
	    if t and (not final.startswith(t) or not t.endswith("\n")):
	        bad.append("a concurrent read is not a prefix of whole lines: %s" % snap)
	        break
	if bad:
	    print("; ".join(bad))
	    sys.exit(1)
	EOF
expect_eq 2000 "$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["shared"]["count"])' "$R/metrics.json")" \
	"metrics.json count of shared"
expect_eq 2000 "$(wc -l <"$M/shared")" "lines of metrics/shared once the appenders are done"
expect_eq 2001 "$(wc -l <"$M/shared.csv")" "rows of metrics/shared.csv (with header)"

test_case random_offset_reads_match_the_whole_file
# Unaligned reads at random offsets, past the page cache, against one
# sequential read: exercises the daemon's read at any offset, in memory and
# spilled to a file.
for f in big big.csv loss loss.csv loss.svg; do
	"$PY" - "$M/$f" <<-'EOF' || fail "random reads of metrics/$f"
		import os, random, sys
		path = sys.argv[1]
		whole = open(path, "rb").read()
		fd = os.open(path, os.O_RDONLY)
		rnd = random.Random(7)
		try:
		    for i in range(200):
		        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
		        off = rnd.randrange(0, len(whole) + 10)
		        n = rnd.choice([1, 7, 100, 4095, 4096, 65537, 300000])
		        got = os.pread(fd, n, off)
		        if got != whole[off:off + n]:
		            print("%s: pread(%d, %d) gave %d bytes that differ" % (path, n, off, len(got)))
		            sys.exit(1)
		finally:
		    os.close(fd)
		if len(whole) != os.stat(path).st_size:
		    print("%s: %d bytes read, st_size %d" % (path, len(whole), os.stat(path).st_size))
		    sys.exit(1)
		EOF
done

test_case tail_f_follows_appended_points
: >"$TMP/tail.out"
echo 1 >>"$M/followed" || fail "first point"
tail -s 0.1 -n +1 -f "$M/followed" >"$TMP/tail.out" 2>"$TMP/tail.err" &
tpid=$!
poll_ms 3000 grep -qx 1 "$TMP/tail.out" || fail "tail -f did not print the first point"
printf '%s\n' 2 3 >>"$M/followed" || fail "append 2 3"
# tail polls once per -s interval; allow it a few intervals plus mlfs' 1 s.
tail_shows_all() { [ "$(tr '\n' ' ' <"$TMP/tail.out")" = "1 2 3 " ]; }
poll_ms 2000 tail_shows_all ||
	fail "tail -f printed $(printf '%q' "$(cat "$TMP/tail.out")"), want 1 2 3 ($(cat "$TMP/tail.err"))"
kill "$tpid" 2>/dev/null
wait "$tpid" 2>/dev/null

test_case unterminated_last_line_is_logged_at_close
printf '7.5' >>"$M/nonl" || fail "printf 7.5 >> metrics/nonl"
expect_eq 7.5 "$(cat "$M/nonl")" "value written without newline"
printf '1\n2' >>"$M/nonl" || fail "printf '1\\n2'"
expect_eq "7.5
1
2" "$(cat "$M/nonl")" "partial last line logged at close"

test_case appending_to_finished_run_logs
echo Completed >"$R/status" || fail "complete the run"
echo 0.75 >>"$M/eval" || fail "log into a completed run"
expect_eq 0.75 "$(cat "$M/eval")" "metric logged after the run ended"

test_case metrics_survive_remount
sum_before=$(md5sum <"$M/big")
mlfs_unmount
mlfs_mount
expect_eq "$sum_before" "$(md5sum <"$M/big")" "metrics/big after remount"
expect_eq "$(cat "$TMP/loss.expected")" "$(cat "$M/loss")" "metrics/loss after remount"
expect_eq 2000 "$(sort -u "$M/shared" | wc -l)" "distinct values of metrics/shared after remount"
expect_eq 2000 "$(wc -l <"$M/shared")" "lines of metrics/shared after remount"

test_done
