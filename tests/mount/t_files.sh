#!/bin/bash
# Generic file behaviour: exact sizes, cp -r / tar of a run, fresh reads,
# the root listing and the README.
. "$(dirname "$0")/lib.sh"

mlfs_mount
X=$MNT/experiments/exp
R=$X/runs/r1
mkdir "$X" "$R" "$X/runs/r2" || fail "mkdir experiment and runs"
echo baseline >"$R/tags/note"
printf 'a,b\n"c"' >"$R/tags/tricky"
touch "$R/tags/empty"
echo abc123 >"$R/properties/commit"
printf '%s\n' 0.9 0.7 '0.5 10' 0.25 >>"$R/metrics/loss"
seq 1 500 | sed 's/$/.5/' >>"$R/metrics/long"
echo 1 >>"$X/runs/r2/metrics/acc"
echo Completed >"$X/runs/r2/status"

# sizes_match DIR...: every regular file under DIR has stat size == bytes read.
sizes_match()
{
	local f size got n=0
	while IFS= read -r -d '' f; do
		n=$((n + 1))
		size=$(stat -c %s "$f")
		got=$(cat "$f" | wc -c)
		expect_eq "$got" "$size" "stat -c %s of ${f#"$MNT"/} vs bytes read"
	done < <(find "$@" -type f -print0)
	[ "$n" -gt 0 ] || fail "no files found under $*"
}

test_case stat_size_equals_bytes_read_for_every_file
sizes_match "$MNT"

# ls_sizes_match DIR...: ls -l (attributes from readdirplus) gives exact sizes.
ls_sizes_match()
{
	local d mode size name
	for d in "$@"; do
		while read -r mode _ _ _ size _ _ _ name; do
			case $mode in -*) ;; *) continue ;; esac
			expect_eq "$(cat "$d/$name" | wc -c)" "$size" "ls -l size of ${d#"$MNT"}/$name"
		done < <(ls -l "$d" | tail -n +2)
	done
}

test_case ls_l_sizes_are_exact
ls_sizes_match "$MNT" "$X" "$R" "$R/tags" "$R/properties" "$R/metrics"

test_case sizes_stay_exact_after_changes
stat "$R/run.json" "$R/metrics.json" "$X/runs.csv" "$R/metrics/loss" \
	"$R/metrics/loss.csv" "$R/metrics/loss.svg" >/dev/null	# prime caches
echo changed-value >"$R/tags/note"
echo 0.125 >>"$R/metrics/loss"
echo 3 >>"$R/metrics/new"
sizes_match "$R" "$X/runs.csv" "$MNT/events"
ls_sizes_match "$X" "$R" "$R/tags" "$R/metrics"

make_reference()	# make_reference SRC DST: the tree as cat reads it
{
	local f rel
	mkdir -p "$2"
	while IFS= read -r -d '' f; do
		rel=${f#"$1"/}
		if [ -d "$f" ]; then
			mkdir -p "$2/$rel"
		elif [ -L "$f" ]; then
			ln -s "$(readlink "$f")" "$2/$rel"
		else
			cat "$f" >"$2/$rel"
		fi
	done < <(find "$1" -mindepth 1 -print0)
}

test_case cp_r_of_run_equals_what_cat_reads
make_reference "$R" "$TMP/ref"
out=$(cp -r "$R" "$TMP/cp" 2>&1) || fail "cp -r failed: $out"
out=$(diff -r "$TMP/ref" "$TMP/cp" 2>&1) || fail "cp -r copy differs: $out"
expect_eq "$(cd "$TMP/ref" && find . | sort)" "$(cd "$TMP/cp" && find . | sort)" "cp -r copied every file"

test_case tar_of_run_equals_what_cat_reads
out=$(tar -C "$X/runs" -cf "$TMP/r1.tar" r1 2>&1) || fail "tar c failed: $out"
[ -z "$out" ] || fail "tar c warned: $out"
mkdir "$TMP/untar" && tar -C "$TMP/untar" -xf "$TMP/r1.tar" || fail "tar x"
out=$(diff -r "$TMP/ref" "$TMP/untar/r1" 2>&1) || fail "tar copy differs: $out"

test_case cp_r_of_experiment_succeeds
out=$(cp -r "$X" "$TMP/cpexp" 2>&1) || fail "cp -r experiment failed: $out"
expect_eq "$(cat "$X/runs.csv")" "$(cat "$TMP/cpexp/runs.csv")" "copied runs.csv"
[ -L "$TMP/cpexp/runs/latest" ] || fail "runs/latest not copied as a symlink"

# Checks run by a fresh process, so nothing is shared with the writer.
has_tag()      { "$PY" -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["tags"].get(sys.argv[2]) != sys.argv[3])' "$R/run.json" "$1" "$2" 2>/dev/null; }
has_last()     { "$PY" -c 'import json,sys; sys.exit(json.load(open(sys.argv[1])).get(sys.argv[2], {}).get("last") != float(sys.argv[3]))' "$R/metrics.json" "$1" "$2" 2>/dev/null; }
csv_has()      { "$PY" -c '
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
r1 = [r for r in rows if r["run_id"] == "r1"]
sys.exit(len(r1) != 1 or r1[0].get(sys.argv[2]) != sys.argv[3])' "$X/runs.csv" "$1" "$2" 2>/dev/null; }
bash_has_tag() { grep -q "\"$1\": \"$2\"" "$R/run.json"; }

test_case changes_are_visible_right_away_to_the_writer_and_others
# Prime every cache: attributes, pages, and a reader holding files open.
for i in 1 2; do cat "$R/run.json" "$R/metrics.json" "$X/runs.csv" >/dev/null; done
stat "$R/run.json" "$R/metrics.json" "$X/runs.csv" >/dev/null
echo v1 >"$R/tags/fresh" || fail "write tag"
bash_has_tag fresh v1 || fail "run.json lacks the new tag right after the write (same shell)"
has_tag fresh v1 || fail "run.json lacks the new tag right after the write (second process)"
csv_has tag.fresh v1 || fail "runs.csv lacks the new tag right after the write"
echo 0.0625 >>"$R/metrics/loss" || fail "log metric"
has_last loss 0.0625 || fail "metrics.json lacks the new point right after the write"
csv_has metric.loss 0.0625 || fail "runs.csv lacks the new point right after the write"
expect_eq 0.0625 "$(tail -n1 "$R/metrics/loss")" "metric file right after the write"

test_case changes_are_visible_within_1s
for i in 1 2 3; do
	stat "$R/run.json" "$R/metrics.json" "$X/runs.csv" >/dev/null
	cat "$R/run.json" "$R/metrics.json" "$X/runs.csv" >/dev/null
	echo "v2-$i" >"$R/tags/fresh" || fail "write tag"
	echo "0.03$i" >>"$R/metrics/loss" || fail "log metric"
	poll_ms 1000 has_tag fresh "v2-$i" || fail "run.json tag not updated within 1 s ($i)"
	poll_ms 1000 has_last loss "0.03$i" || fail "metrics.json not updated within 1 s ($i)"
	poll_ms 1000 csv_has metric.loss "0.03$i" || fail "runs.csv metric not updated within 1 s ($i)"
	poll_ms 1000 csv_has tag.fresh "v2-$i" || fail "runs.csv tag not updated within 1 s ($i)"
done

test_case reader_holding_file_open_sees_new_size
# A long-lived reader (like tail -f or a notebook) re-reads from 0.
"$PY" - "$R/metrics.json" "$R/metrics/loss" <<-'EOF' || fail "long-lived reader"
	import json, os, sys
	f = open(sys.argv[1], "rb")
	json.loads(f.read())
	with open(sys.argv[2], "a") as w:
	    w.write("0.015625\n")
	f.seek(0)
	data = f.read()
	try:
	    m = json.loads(data)
	except ValueError as e:
	    print("metrics.json re-read through an open descriptor is not JSON: %s: %r" % (e, data[-80:]))
	    sys.exit(1)
	if m["loss"]["last"] != 0.015625:
	    print("re-read through an open descriptor is stale: last=%r" % m["loss"]["last"])
	    sys.exit(1)
	EOF

test_case root_ls_l_lists_the_special_files
expect_eq "README
computes
datasets
datastores
events
experiments
models
snapshots
workspace.json" "$(ls "$MNT")" "ls of the mount root"
ls -l "$MNT" >"$TMP/root.ls"
grep -qE '^-r--r--r-- .* README$' "$TMP/root.ls" || fail "README is not -r--r--r-- in ls -l: $(cat "$TMP/root.ls")"
grep -qE '^-r--r--r-- .* workspace\.json$' "$TMP/root.ls" || fail "workspace.json mode in ls -l"
grep -qE '^-r--r--r-- .* events$' "$TMP/root.ls" || fail "events mode in ls -l"
grep -qE '^d.* experiments$' "$TMP/root.ls" || fail "experiments is not a directory in ls -l"

test_case readme_lists_the_special_files
for p in README workspace.json events experiments/ experiments/E/runs.csv \
	experiments/E/runs/ID/ experiments/E/runs/ID/run.json \
	experiments/E/runs/ID/status experiments/E/runs/ID/tags/KEY \
	experiments/E/runs/ID/properties/KEY experiments/E/runs/ID/metrics/NAME \
	experiments/E/runs/ID/metrics.json; do
	grep -qE "^$(printf '%s' "$p" | sed 's/[.]/\\./g')[[:space:]]" "$MNT/README" ||
		fail "README does not list $p"
done

test_case readme_describes_every_file_of_a_run
# The README comes from the same table as the tree: nothing is missing.
for path in "$X"/* "$R"/* "$R"/metrics/* "$R"/tags/* "$R"/properties/*; do
	rel=${path#"$MNT"/}
	gen=$(printf '%s' "$rel" | sed -E 's#^experiments/[^/]+#experiments/E#; s#/runs/[^/]+#/runs/ID#;
		s#/tags/[^/]+$#/tags/KEY#; s#/properties/[^/]+$#/properties/KEY#;
		s#/metrics/[^/]+\.(csv|svg)$#/metrics/NAME#; s#/metrics/[^/]+$#/metrics/NAME#')
	[ -d "$path" ] && gen=$gen/
	grep -qE "^$(printf '%s' "$gen" | sed 's/[.]/\\./g')[[:space:]]" "$MNT/README" ||
		fail "README has no line for $gen (from $rel)"
done

test_case workspace_json_is_valid
"$PY" - "$MNT/workspace.json" "$WS" <<-'EOF' || fail "workspace.json"
	import json, re, sys
	w = json.load(open(sys.argv[1]))
	bad = [k for k in ("name", "id", "created", "schema_version", "limits") if k not in w]
	if "created" in w and not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", w["created"]):
	    bad.append("created=%r" % w["created"])
	if bad:
	    print("workspace.json:", bad)
	    sys.exit(1)
	EOF

test_case events_lines_end_with_newline
sysop mkdir "$MNT/experiments/.bad" >/dev/null 2>&1
[ "$(tail -c1 "$MNT/events" | od -An -c | tr -d ' ')" = '\n' ] ||
	fail "events does not end with a newline: $(tail -c 40 "$MNT/events" | od -c | head -3)"

# mtime_ms PATH: the modification time in milliseconds.
mtime_ms() { "$PY" -c 'import os,sys; print(os.stat(sys.argv[1]).st_mtime_ns // 1000000)' "$1"; }

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# expect_changed_since DIR T: DIR's mtime is not older than T (ms), a time
# taken before an entry was added to it; a real directory's mtime moves.
expect_changed_since()
{
	local d
	d=$(mtime_ms "$1")
	[ "$d" -ge "$2" ] || fail "mtime of ${1#"$MNT"/} ($d) predates the entry added at/after $2"
}

test_case directory_mtime_moves_when_an_entry_is_added
L=$MNT/experiments/late
t=$(now_ms); mkdir "$L" || fail "mkdir experiments/late"
expect_changed_since "$MNT/experiments" "$t"
t=$(now_ms); mkdir "$L/runs/lr" || fail "mkdir late/runs/lr"
expect_changed_since "$L/runs" "$t"
t=$(now_ms); echo v >"$L/runs/lr/tags/k" || fail "write tag"
expect_changed_since "$L/runs/lr/tags" "$t"
t=$(now_ms); echo v >"$L/runs/lr/properties/k" || fail "write property"
expect_changed_since "$L/runs/lr/properties" "$t"
t=$(now_ms); echo 1 >>"$L/runs/lr/metrics/m" || fail "log metric"
expect_changed_since "$L/runs/lr/metrics" "$t"
t=$(now_ms); rm "$L/runs/lr/tags/k" || fail "rm tag"
expect_changed_since "$L/runs/lr/tags" "$t"

# expect_not_older A B: A's mtime is not older than B's.
expect_not_older()
{
	[ "$(mtime_ms "$1")" -ge "$(mtime_ms "$2")" ] ||
		fail "mtime of ${1#"$MNT"/} is older than that of ${2#"$MNT"/}"
}

test_case file_mtime_is_when_it_last_changed
echo 1 >>"$R/metrics/loss" || fail "log metric"
expect_eq "$(mtime_ms "$R/metrics/loss")" "$(mtime_ms "$R/metrics/loss.csv")" "loss and loss.csv change together"
expect_not_older "$R/metrics.json" "$R/metrics/loss"
sysop mkdir "$MNT/experiments/.bad2" >/dev/null 2>&1
last=$(tail -n1 "$MNT/events" | cut -d' ' -f1)
expect_eq "$last" "$("$PY" -c 'import os,sys,datetime; t=os.stat(sys.argv[1]).st_mtime_ns//1000000; print(datetime.datetime.fromtimestamp(t/1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]+"Z")' "$MNT/events")" \
	"mtime of events is its newest line's time"

test_case refused_link_symlink_mknod_rename_leave_events_lines
# "events: every refused request" - also for operations mlfs does not do.
T=$R/tags
echo v >"$T/orig" || fail "write tag"
refuse_check()	# refuse_check NAME_IN_EVENT CREATED_PATH CMD...
{
	local name=$1 made=$2
	shift 2
	expect_errno EPERM "$@"
	[ ! -e "$made" ] && [ ! -L "$made" ] || fail "'$*' left $made"
	expect_event "refused [a-z]+ $name"
}
refuse_check "experiments/exp/runs/r1/tags/sym" "$T/sym" ln -s orig "$T/sym"
refuse_check "experiments/exp/runs/r1/tags/hard" "$T/hard" ln "$T/orig" "$T/hard"
refuse_check "experiments/exp/runs/r1/tags/fifo" "$T/fifo" mkfifo "$T/fifo"
refuse_check "experiments/exp/runs/r1/tags/node" "$T/node" mknod "$T/node" c 1 3
refuse_check "experiments/exp/runs/r1/tags/orig" "$T/moved" mv "$T/orig" "$T/moved"
refuse_check "experiments/sym" "$MNT/experiments/sym" ln -s x "$MNT/experiments/sym"
expect_eq v "$(cat "$T/orig")" "tag kept after refused operations"

test_case events_keeps_the_newest_lines_up_to_the_limit
kept=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["limits"]["events_kept"])' "$MNT/workspace.json")
"$PY" - "$MNT/experiments" "$((kept + 50))" <<-'EOF'
	import os, sys
	for i in range(int(sys.argv[2])):
	    try:
	        os.mkdir(os.path.join(sys.argv[1], ".flood%06d" % i))
	    except OSError:
	        pass
	EOF
expect_eq "$kept" "$(wc -l <"$MNT/events")" "events lines after $((kept + 50)) refusals"
expect_eq "experiments/.flood$(printf '%06d' $((kept + 49))):" "$(tail -n1 "$MNT/events" | cut -d' ' -f4)" "newest events line is last"
expect_eq "experiments/.flood$(printf '%06d' 50):" "$(head -n1 "$MNT/events" | cut -d' ' -f4)" "oldest kept events line"
expect_eq "$(cat "$MNT/events" | wc -c)" "$(stat -c %s "$MNT/events")" "events size"

test_case symlinks_resolve
expect_eq r2 "$(readlink "$X/runs/latest")" "runs/latest"
expect_eq "$(cat "$X/runs/r2/run.json")" "$(cat "$X/runs/latest/run.json")" "run.json through latest"

test_done
