#!/bin/bash
# metrics_survive_daemon_kill: four writers append to metric files while the
# daemon is killed with SIGKILL; after a remount every append whose write
# succeeded is there exactly once, in order, and the database is intact.
. "$(dirname "$0")/lib.sh"

WRITERS=4
mlfs_mount
X=$MNT/experiments/crash
R=$X/runs/r1
mkdir "$X" "$R" || fail "mkdir experiment and run"

# writer P: appends 1, 2, 3, ... to metrics/m_P until an append fails.
# ok_P gets every i whose echo returned success, failed_P the first failure.
writer()
{
	local p=$1 i=0
	: >"$TMP/ok_$p"
	while :; do
		i=$((i + 1))
		if echo "$i" >>"$R/metrics/m_$p"; then
			echo "$i" >>"$TMP/ok_$p"
		else
			echo "$i" >"$TMP/failed_$p"
			break
		fi
		[ ! -e "$TMP/stop" ] || break
	done 2>>"$TMP/writer_$p.err"
}

test_case writers_run_until_daemon_is_killed
pids=
for p in $(seq $WRITERS); do
	writer "$p" &
	pids="$pids $!"
done
sleep 1.5
mlfs_kill9
# The writers stop at their first failed append (ENOTCONN after the kill).
for pid in $pids; do
	if ! pid_wait_gone "$pid" 30; then
		fail "writer $pid still running 30 s after the kill"
		touch "$TMP/stop"
	fi
	wait "$pid"
done
for p in $(seq $WRITERS); do
	n=$(wc -l <"$TMP/ok_$p")
	say "# writer $p: $n appends succeeded, first failure at $(cat "$TMP/failed_$p" 2>/dev/null || echo none): $(tail -n1 "$TMP/writer_$p.err" 2>/dev/null)"
	[ "$n" -gt 0 ] || fail "writer $p logged nothing before the kill"
	[ -s "$TMP/failed_$p" ] || fail "writer $p never saw a failure"
done

test_case remount_after_kill_succeeds
mlfs_mount
[ -d "$R/metrics" ] || fail "run r1 missing after remount"

test_case every_successful_append_is_present_exactly_once
for p in $(seq $WRITERS); do
	"$PY" - "$R/metrics/m_$p" "$TMP/ok_$p" "$TMP/failed_$p" "$p" <<-'EOF' || fail "metric m_$p"
		import os, sys
		path, okf, failf, p = sys.argv[1:5]
		ok = [int(l) for l in open(okf)]
		first_fail = int(open(failf).read()) if os.path.exists(failf) else None
		# Each writer records i only after a successful append, and stops at
		# the first failure: ok must be 1..k.
		if ok != list(range(1, len(ok) + 1)):
		    print("writer %s: its own record is not 1..k" % p)
		    sys.exit(1)
		if not os.path.exists(path):
		    print("m_%s does not exist after remount (%d appends succeeded)" % (p, len(ok)))
		    sys.exit(1)
		got = [l.rstrip("\n") for l in open(path)]
		try:
		    vals = [int(v) for v in got]
		except ValueError:
		    print("m_%s holds a value that is no integer: %r" % (p, [v for v in got if not v.lstrip("-").isdigit()][:5]))
		    sys.exit(1)
		k = len(ok)
		# Allowed: exactly 1..k, or 1..k followed by the one in-flight
		# append whose success was never reported (the first failure).
		if vals == ok:
		    sys.exit(0)
		if first_fail is not None and vals == ok + [first_fail]:
		    print("# m_%s: the in-flight append %d was stored" % (p, first_fail))
		    sys.exit(0)
		missing = sorted(set(ok) - set(vals))
		dups = sorted({v for v in vals if vals.count(v) > 1}) if len(vals) < 100000 else "?"
		print("m_%s: %d values for %d successful appends; missing %s; duplicates %s; tail %r"
		      % (p, len(vals), k, missing[:10], dups[:10] if dups != "?" else dups, vals[-5:]))
		sys.exit(1)
		EOF
done

test_case metrics_json_counts_match_after_kill
for p in $(seq $WRITERS); do
	count=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]["count"])' "$R/metrics.json" "m_$p")
	expect_eq "$(wc -l <"$R/metrics/m_$p")" "$count" "metrics.json count of m_$p vs lines"
done

test_case appends_work_after_remount
echo 999999 >>"$R/metrics/m_1" || fail "append after remount"
expect_eq 999999 "$(tail -n1 "$R/metrics/m_1")" "last value of m_1 after a new append"

test_case database_integrity_check_is_ok
expect_eq ok "$(sqlite3 "$WS/workspace.db" 'PRAGMA integrity_check' 2>&1)" "integrity_check while mounted"
mlfs_unmount
expect_eq ok "$(sqlite3 "$WS/workspace.db" 'PRAGMA integrity_check' 2>&1)" "integrity_check after unmount"

test_done
