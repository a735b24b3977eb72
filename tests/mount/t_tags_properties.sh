#!/bin/bash
# Tags (mutable), properties (add-only), key names, read-only files.
. "$(dirname "$0")/lib.sh"

mlfs_mount
X=$MNT/experiments/exp
R=$X/runs/r1
mkdir "$X" "$R" || fail "mkdir experiment and run"
T=$R/tags
P=$R/properties

# json_get FILE KEY1 KEY2: repr of r[KEY1][KEY2] ("<missing>" if absent).
json_get()
{
	"$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
for k in sys.argv[2:]:
    if not isinstance(d, dict) or k not in d:
        print("<missing>"); sys.exit(0)
    d = d[k]
print(repr(d))' "$@"
}

test_case tag_write_sets_value
echo baseline >"$T/note" || fail "echo baseline > tags/note"
expect_eq baseline "$(cat "$T/note")" "tag value read back"
expect_eq "'baseline'" "$(json_get "$R/run.json" tags note)" "run.json tags.note"
expect_eq note "$(ls "$T")" "ls tags"

test_case tag_write_replaces_value
echo second >"$T/note" || fail "echo second > tags/note"
expect_eq second "$(cat "$T/note")" "tag replaced, not appended"
expect_eq "'second'" "$(json_get "$R/run.json" tags note)" "run.json tags.note replaced"
printf 'x' >"$T/note" || fail "printf x > tags/note"
expect_eq "'x'" "$(json_get "$R/run.json" tags note)" "shorter value replaces longer"

test_case tag_value_keeps_bytes_but_one_trailing_newline
printf 'line1\nline2, "q"\n\n' >"$T/multi" || fail "write multi-line tag"
expect_eq "'line1\\nline2, \"q\"\\n'" "$(json_get "$R/run.json" tags multi)" \
	"multi-line tag (one trailing newline stripped)"
printf 'no newline' >"$T/nonl" || fail "write tag without newline"
expect_eq "'no newline'" "$(json_get "$R/run.json" tags nonl)" "tag without newline"

test_case tag_rm_deletes_it
rm "$T/multi" || fail "rm tags/multi"
[ ! -e "$T/multi" ] || fail "tags/multi still exists"
expect_eq "<missing>" "$(json_get "$R/run.json" tags multi)" "run.json after rm"
ls "$T" | grep -qx multi && fail "tags/multi still listed"
expect_errno ENOENT cat "$T/multi"
expect_errno ENOENT rm "$T/multi"

test_case touch_makes_empty_tag
touch "$T/empty" || fail "touch tags/empty"
[ -e "$T/empty" ] || fail "tags/empty does not exist"
expect_eq "''" "$(json_get "$R/run.json" tags empty)" "run.json tags.empty"
ls "$T" | grep -qx empty || fail "tags/empty not listed"
expect_eq "" "$(cat "$T/empty")" "empty tag reads as nothing (or a newline)"

test_case touch_existing_tag_keeps_value
touch "$T/nonl" || fail "touch tags/nonl"
expect_eq "'no newline'" "$(json_get "$R/run.json" tags nonl)" "value after touch"

test_case truncating_a_tag_empties_it
echo gone >"$T/trunc" || fail "write tags/trunc"
expect_true ": > tags/trunc" bash -c ': > "$1"' bash "$T/trunc"
expect_eq "''" "$(json_get "$R/run.json" tags trunc)" "tag after : >"
rm "$T/trunc" || fail "rm tags/trunc"

test_case tag_value_at_limit_round_trips_and_over_limit_gives_EFBIG
limit=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["limits"]["tag_value_bytes"])' "$MNT/workspace.json")
"$PY" -c 'import sys; sys.stdout.write("v" * int(sys.argv[1]))' "$limit" >"$TMP/big" || fail "make big value"
cp "$TMP/big" "$T/big" || fail "write a tag of $limit bytes"
expect_eq "$limit" "$("$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["tags"].get("big","")))' "$R/run.json")" \
	"length of a tag at the limit"
"$PY" -c 'import sys; sys.stdout.write("w" * (int(sys.argv[1]) + 1))' "$limit" >"$TMP/bigger"
expect_errno EFBIG cp "$TMP/bigger" "$T/big"
expect_event "tags/big.*\(EFBIG\)"
expect_eq "$limit" "$("$PY" -c 'import json,sys; t=json.load(open(sys.argv[1]))["tags"].get("big",""); print(len(t) if set(t) == {"v"} else repr(t[:20]))' "$R/run.json")" \
	"tag kept its value after the refused write"

test_case property_add_sets_value
echo v1 >"$P/origin" || fail "echo v1 > properties/origin"
expect_eq v1 "$(cat "$P/origin")" "property read back"
expect_eq "'v1'" "$(json_get "$R/run.json" properties origin)" "run.json properties.origin"

test_case property_same_bytes_again_is_accepted
expect_true "echo v1 > properties/origin again" bash -c 'echo v1 > "$1"' bash "$P/origin"
expect_eq "'v1'" "$(json_get "$R/run.json" properties origin)" "property unchanged"

test_case property_different_bytes_gives_EPERM_and_event
expect_errno EPERM bash -c 'echo v2 > "$1"' bash "$P/origin"
expect_event "refused write experiments/exp/runs/r1/properties/origin: .*\(EPERM\)"
expect_errno EPERM sysop write "$P/origin" "v1 and more"
expect_event "properties/origin.*\(EPERM\)"
expect_eq v1 "$(cat "$P/origin")" "property kept its value"
expect_eq "'v1'" "$(json_get "$R/run.json" properties origin)" "run.json kept the property"

test_case property_rm_gives_EPERM_and_event
expect_errno EPERM rm "$P/origin"
expect_event "refused unlink experiments/exp/runs/r1/properties/origin: .*\(EPERM\)"
[ -e "$P/origin" ] || fail "property gone after refused rm"
expect_eq "'v1'" "$(json_get "$R/run.json" properties origin)" "run.json after refused rm"

test_case property_truncate_gives_EPERM
expect_errno EPERM sysop truncate "$P/origin"
expect_eq v1 "$(cat "$P/origin")" "property kept its value after truncate"
expect_event "refused truncate .*properties/origin.*\(EPERM\)"

test_case redirect_without_write_keeps_an_existing_property
# "> file" is open(O_TRUNC); "echo v1 > file" must keep working for the same
# bytes, so O_TRUNC alone is ignored on an existing property: it neither
# empties it nor fails (a refusal at close would reach nobody).
events_before=$(wc -l <"$MNT/events")
expect_true ": > properties/origin" bash -c ': > "$1"' bash "$P/origin"
expect_eq v1 "$(cat "$P/origin")" "property kept its value after : >"
expect_eq "$events_before" "$(wc -l <"$MNT/events")" ": > left no events line"
expect_true "echo v1 > properties/origin again" bash -c 'echo v1 > "$1"' bash "$P/origin"

test_case touch_existing_property_keeps_it_silently
expect_true "touch properties/origin" touch "$P/origin"
expect_eq v1 "$(cat "$P/origin")" "property after touch"
expect_eq 0 "$(tail -n +"$((events_seen + 1))" "$MNT/events" | wc -l)" "touch left no events line"

test_case invalid_key_names_give_EINVAL_and_event
for dir in tags properties; do
	for key in .hidden 'a b' 'x$y' 'colon:' 'ümlaut' "$(printf 'k%.0s' $(seq 256))"; do
		expect_errno EINVAL sysop write "$R/$dir/$key" value
		expect_event "refused create experiments/exp/runs/r1/$dir/.*\(EINVAL\)"
	done
done
expect_eq "big
empty
nonl
note" "$(ls "$T")" "no invalid tag was made"
expect_eq origin "$(ls "$P")" "no invalid property was made"

test_case valid_key_names_are_accepted
long=$(printf 'k%.0s' $(seq 255))
for key in a-b_c.D9 -x 0 "$long"; do
	expect_true "tag '$key'" sysop write "$T/$key" val
	expect_eq "'val'" "$(json_get "$R/run.json" tags "$key")" "tag '$key' in run.json"
done

# Encoding cases get their own experiment: a property cannot be removed, so
# a bad one would stay in the run's run.json for good.
ENC=$MNT/experiments/enc
mkdir "$ENC" "$ENC/runs/encr" || fail "mkdir experiments/enc/runs/encr"

# value_is_refused_or_kept DIR KEY PY_LITERAL: writing the value (a Python
# str, sent as UTF-8, or bytes) either fails with EINVAL and an events
# line, or run.json stays valid UTF-8 JSON holding it exactly and runs.csv
# holds it exactly (csv module) and stays readable by pandas.
value_is_refused_or_kept()
{
	local dir=$1 key=$2 lit=$3 out
	out=$("$PY" - "$ENC/runs/encr/$dir/$key" "$lit" 2>&1 <<-'EOF'
		import ast, errno, os, sys
		data = ast.literal_eval(sys.argv[2])
		if isinstance(data, str):
		    data = data.encode()
		try:
		    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
		    try:
		        os.write(fd, data)
		    finally:
		        os.close(fd)
		except OSError as e:
		    print(errno.errorcode[e.errno])
		    sys.exit(0)
		print("OK")
		EOF
	)
	case $out in
	EINVAL)
		expect_event "refused [a-z]+ experiments/enc/runs/encr/$dir/$key: .*\(EINVAL\)"
		[ ! -e "$ENC/runs/encr/$dir/$key" ] ||
			fail "$dir/$key exists (stat: $(stat -c '%s bytes' "$ENC/runs/encr/$dir/$key" 2>&1)) after a refused first write, though nothing was stored"
		return ;;
	OK) ;;
	*) fail "writing $dir/$key $lit: $out"; return ;;
	esac
	"$PY" - "$ENC/runs/encr/run.json" "$ENC/runs.csv" "$dir" "$key" "$lit" <<-'EOF' || fail "$dir/$key = $lit was accepted but not kept exactly"
		import ast, csv, json, sys
		import pandas as pd
		runjson, runscsv, d, key, lit = sys.argv[1:6]
		want = ast.literal_eval(lit)
		if isinstance(want, str):
		    want = want.encode()
		bad = []
		def short(e):
		    return str(e).splitlines()[0][:120]
		try:
		    got = json.loads(open(runjson, "rb").read().decode("utf-8"))[d].get(key)
		    if got is None or got.encode("utf-8") != want:
		        bad.append("run.json has %r" % got)
		except (ValueError, UnicodeError) as e:
		    bad.append("run.json is not valid UTF-8 JSON any more (%s)" % short(e))
		if d == "tags":
		    col = "tag." + key
		    try:
		        rows = list(csv.DictReader(open(runscsv, newline="", encoding="utf-8")))
		        got = [r[col] for r in rows if r["run_id"] == "encr"][0]
		        if got.encode("utf-8") != want:
		            bad.append("runs.csv holds %r" % got)
		    except (ValueError, UnicodeError, KeyError, IndexError) as e:
		        bad.append("runs.csv unreadable by the csv module (%s)" % short(e))
		    try:
		        pd.read_csv(runscsv, dtype=str, keep_default_na=False)
		    except Exception as e:
		        bad.append("pandas cannot read runs.csv (%s)" % short(e))
		if bad:
		    print("; ".join(bad))
		    sys.exit(1)
		EOF
}

test_case utf8_and_control_characters_in_values_are_kept
value_is_refused_or_kept tags utf8 "'ümlaut ✓ \x01\t\"\\\\ end'"
value_is_refused_or_kept properties utf8 "'ümlaut ✓ \x01 end'"

test_case nul_in_value_is_refused_or_kept_exactly
value_is_refused_or_kept tags nul "b'a\\x00b'"
rm -f "$ENC/runs/encr/tags/nul"

test_case invalid_utf8_value_is_refused_or_kept_valid
# Last of the encoding cases: a bad property stays.
value_is_refused_or_kept tags badutf8 "b'\\xff\\xfe bad'"
rm -f "$ENC/runs/encr/tags/badutf8"
value_is_refused_or_kept properties badutf8 "b'caf\\xe9'"

test_case read_only_files_refuse_writes_with_EACCES
echo 1 >>"$R/metrics/loss" || fail "log a metric"
for f in README workspace.json events experiments/exp/runs.csv \
	experiments/exp/runs/r1/run.json experiments/exp/runs/r1/metrics.json \
	experiments/exp/runs/r1/metrics/loss.csv experiments/exp/runs/r1/metrics/loss.svg; do
	before=$(cat "$MNT/$f")
	expect_errno EACCES bash -c 'echo x > "$1"' bash "$MNT/$f"
	expect_errno EACCES bash -c 'echo x >> "$1"' bash "$MNT/$f"
	expect_errno EACCES sysop openw "$MNT/$f"
	expect_errno EACCES sysop truncate "$MNT/$f"
	[ "$f" = events ] || expect_eq "$before" "$(cat "$MNT/$f")" "$f unchanged"
done
expect_event "refused (open|truncate) experiments/exp/runs/r1/metrics.json: .*\(EACCES\)"

test_case read_only_files_have_mode_0444
for f in README workspace.json events experiments/exp/runs.csv \
	experiments/exp/runs/r1/run.json experiments/exp/runs/r1/metrics.json \
	experiments/exp/runs/r1/metrics/loss.csv experiments/exp/runs/r1/metrics/loss.svg; do
	expect_eq 444 "$(stat -c %a "$MNT/$f")" "mode of $f"
done
for f in experiments/exp/runs/r1/status experiments/exp/runs/r1/tags/note \
	experiments/exp/runs/r1/properties/origin experiments/exp/runs/r1/metrics/loss; do
	expect_eq 644 "$(stat -c %a "$MNT/$f")" "mode of $f"
done

test_case a_reader_reads_one_version_of_a_changing_file
# A value replaced between two read() calls of one reader must not give
# it the start of one version and the end of the other (cat's second
# read, at the end, used to bring the new version's tail).
printf 'short' >"$T/ver" || fail "write tags/ver"
"$PY" - "$T/ver" "$MNT/events" "$R/run.json" "$MNT/experiments/bad name" <<-'EOF' || fail "reads mixed two versions"
	import mmap, os, sys
	tag, events, run_json, bad = sys.argv[1:5]
	fd = os.open(tag, os.O_RDONLY)
	assert os.read(fd, 2) == b"sh"
	with open(tag, "w") as f:
	    f.write("a much longer value")
	rest = os.read(fd, 100)
	assert rest == b"ort\n", rest		# the version this read began
	assert os.read(fd, 100) == b""		# ends where that version ended
	assert os.pread(fd, 100, 0) == b"a much longer value\n"  # from the start: the new one
	os.close(fd)
	# A file that only grew continues past its old end (tail -f).
	fd = os.open(events, os.O_RDONLY)
	old = b""
	while chunk := os.read(fd, 65536):
	    old += chunk
	try:
	    os.mkdir(bad)
	except OSError:
	    pass
	new = os.read(fd, 65536)
	assert b"bad name" in new, (new, old[-200:])
	os.close(fd)
	# Files read one version at a time still map shared (numpy, mmap).
	with open(run_json, "rb") as f:
	    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
	    assert m[:1] == b"{", m[:10]
	EOF

test_case tags_and_properties_survive_remount
mlfs_unmount
mlfs_mount
expect_eq x "$(cat "$T/note")" "tag after remount"
expect_eq v1 "$(cat "$P/origin")" "property after remount"
expect_eq "''" "$(json_get "$R/run.json" tags empty)" "empty tag after remount"

test_done
