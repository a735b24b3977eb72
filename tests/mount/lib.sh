# lib.sh - harness for the mount tests, sourced by each t_*.sh script.
#
# A test script reads like this (git t/ style):
#
#	. "$(dirname "$0")/lib.sh"
#	mlfs_mount
#	test_case mkdir_creates_experiment
#	mkdir "$MNT/experiments/a" || fail "mkdir"
#	expect_eq "a" "$(ls "$MNT/experiments")" "listing"
#	test_done
#
# Sourcing makes a temporary directory $TMP holding the workspace $WS, the
# mount point $MNT and the daemon's stderr $LOG. mlfs_mount starts
# "$MLFS mount $WS $MNT -f" in the background and waits until it is
# mounted. An EXIT trap always unmounts and reaps the daemon, even when the
# script dies half way; a daemon that does not exit 0 after a clean
# unmount, or that reports a sanitizer error on stderr, fails the test.
#
# test_case NAME starts a case; the assertions after it (expect_*, fail)
# count against it. test_done ends the last case, unmounts, prints
# "N passed, N failed" and exits 1 if anything failed.
#
# Helpers
#   expect_eq WANT GOT MSG      strings equal
#   expect_true MSG CMD...      CMD succeeds
#   expect_errno ERRNO CMD...   CMD fails naming ERRNO (symbol or strerror text)
#   expect_event REGEX          a new line of $MNT/events matches (polls <= 1 s)
#   sysop OP PATH [DATA]        one exact syscall sequence from Python
#   special_request FILE REQ    a request into a special file; its reply
#   poll_ms MS CMD...           retry CMD for up to MS ms (freshness checks only)
#   mlfs_mount, mlfs_unmount, mlfs_kill9 (kill -9, then fusermount3 -u -z)
#   mlfs_mount_daemon: mount the way users do, without -f (the daemon
#   detaches; its exit status cannot be had, its sanitizer reports can)
#
# Environment: MLFS (the mlfs binary; default ../../build/cli/mlfs next to
# this file), MLFS_TEST_KEEP=1 keeps $TMP for inspection.

set -u
export LC_ALL=C

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${MLFS:=$LIB_DIR/../../build/cli/mlfs}"
PY=/usr/bin/python3	# Debian's, with pandas; not the first python3 on PATH

# Sanitizer builds: make UBSan reports fatal and visible; ASan's are already.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mlfs-test.XXXXXX") || exit 1
WS=$TMP/ws
MNT=$TMP/mnt
LOG=$TMP/mlfs.log
mkdir "$MNT" || exit 1
: >"$LOG"

MLFS_PID=
MLFS_DAEMONIZED=0	# MLFS_PID is not our child (mlfs_mount_daemon)
cases_passed=0
cases_failed=0
case_name=
case_failures=0
harness_failures=0
events_seen=0		# lines of $MNT/events already looked at
finished=0

say() { printf '%s\n' "$*"; }

# ---- the daemon ------------------------------------------------------------

# 0 while process $1 exists and is not a zombie.
pid_alive()
{
	local state
	[ -r "/proc/$1/stat" ] || return 1
	state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# Waits up to $2 seconds for process $1 to end; 0 if it did.
pid_wait_gone()
{
	local pid=$1 tries=$(($2 * 10))
	while pid_alive "$pid"; do
		tries=$((tries - 1))
		[ "$tries" -gt 0 ] || return 1
		sleep 0.1
	done
	return 0
}

# 0 while $MNT is in the mount table (mountpoint(1) fails on a dead FUSE
# mount, whose stat gives ENOTCONN).
is_mounted()
{
	awk -v m="$MNT" '$2 == m { found = 1 } END { exit !found }' /proc/self/mounts
}

harness_fail()
{
	say "HARNESS FAIL: $*"
	harness_failures=$((harness_failures + 1))
}

# Starts the daemon over $WS at $MNT and waits (up to 20 s) until mounted;
# arguments go to "mlfs mount" (e.g. -o allow_other).
mlfs_mount()
{
	local tries=200
	if [ ! -x "$MLFS" ]; then
		harness_fail "mlfs binary '$MLFS' not found (set MLFS)"
		exit 1
	fi
	say "# mount: $MLFS mount $WS $MNT -f $*"
	"$MLFS" mount "$WS" "$MNT" -f "$@" 2>>"$LOG" &
	MLFS_PID=$!
	events_seen=0
	while ! mountpoint -q "$MNT"; do
		if ! pid_alive "$MLFS_PID"; then
			wait "$MLFS_PID"
			harness_fail "mlfs exited with status $? before mounting"
			MLFS_PID=
			exit 1
		fi
		tries=$((tries - 1))
		if [ "$tries" -le 0 ]; then
			harness_fail "not mounted after 20 s"
			exit 1
		fi
		sleep 0.1
	done
}

# Fails the test if the daemon's stderr, or that of a run supervisor
# (WORKSPACE/supervisor.log), holds a sanitizer report.
SANITIZER_RE='ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:|SUMMARY: [A-Za-z]+Sanitizer'
check_log()
{
	if grep -qE "$SANITIZER_RE" "$LOG"; then
		harness_fail "sanitizer report in the daemon's log"
	fi
	if ls "$TMP"/daemon-asan.* >/dev/null 2>&1; then
		sed 's/^/# daemon: /' "$TMP"/daemon-asan.* | head -40
		harness_fail "sanitizer report from the detached daemon"
	fi
	if [ -f "$WS/supervisor.log" ] && grep -qE "$SANITIZER_RE" "$WS/supervisor.log"; then
		sed 's/^/# supervisor: /' "$WS/supervisor.log" | head -40
		harness_fail "sanitizer report in a supervisor's log"
	fi
}

# Unmounts cleanly and checks that the daemon exits 0.
mlfs_unmount()
{
	local tries=50 status
	[ -n "$MLFS_PID" ] || return 0
	while is_mounted && ! fusermount3 -u "$MNT" 2>>"$TMP/umount.err"; do
		tries=$((tries - 1))
		if [ "$tries" -le 0 ]; then
			harness_fail "fusermount3 -u failed for 10 s (busy?); lazy unmount"
			fusermount3 -u -z "$MNT"
			break
		fi
		sleep 0.2
	done
	if ! pid_wait_gone "$MLFS_PID" 30; then
		harness_fail "mlfs (pid $MLFS_PID) still running 30 s after unmount; killed"
		kill -9 "$MLFS_PID" 2>/dev/null
	fi
	status=0
	if [ "$MLFS_DAEMONIZED" -eq 0 ]; then
		wait "$MLFS_PID"
		status=$?
	fi
	MLFS_DAEMONIZED=0
	# A daemon that died leaves a dead mount behind: detach it.
	! is_mounted || fusermount3 -u -z "$MNT"
	[ "$status" -eq 0 ] || harness_fail "mlfs exited with status $status (want 0)"
	MLFS_PID=
	check_log
}

# kill -9 the daemon, reap it, and lazily detach the dead mount.
mlfs_kill9()
{
	[ -n "$MLFS_PID" ] || return 0
	kill -9 "$MLFS_PID"
	pid_wait_gone "$MLFS_PID" 30 || harness_fail "mlfs survived kill -9"
	if [ "$MLFS_DAEMONIZED" -eq 0 ]; then
		{ wait "$MLFS_PID"; } 2>/dev/null	# no "Killed" job notice
		say "# mlfs killed (wait status $?)"
	fi
	MLFS_DAEMONIZED=0
	MLFS_PID=
	fusermount3 -u -z "$MNT" || harness_fail "fusermount3 -u -z after kill -9"
	if is_mounted; then
		harness_fail "still a mount point after lazy unmount"
	fi
	check_log
}

# Mounts without -f, as a user does: "mlfs mount" returns once mounted
# and the daemon it leaves has stdio on /dev/null, so sanitizer reports
# go to $TMP/daemon-asan.* instead (check_log looks there).
mlfs_mount_daemon()
{
	local rc
	say "# mount: $MLFS mount $WS $MNT $*"
	ASAN_OPTIONS="$ASAN_OPTIONS:log_path=$TMP/daemon-asan" \
	UBSAN_OPTIONS="$UBSAN_OPTIONS:log_path=$TMP/daemon-asan" \
		"$MLFS" mount "$WS" "$MNT" "$@" 2>>"$LOG"
	rc=$?
	if [ "$rc" -ne 0 ]; then
		harness_fail "mlfs mount exited with status $rc"
		exit 1
	fi
	if ! mountpoint -q "$MNT"; then
		harness_fail "mlfs mount returned 0 but $MNT is not mounted"
		exit 1
	fi
	MLFS_PID=$(pgrep -xf -- "$MLFS mount $WS $MNT( .*)?" | head -n1)
	if [ -z "$MLFS_PID" ]; then
		harness_fail "no daemon process serves $MNT"
		fusermount3 -u -z "$MNT"
		exit 1
	fi
	MLFS_DAEMONIZED=1
	events_seen=0
}

# ---- cases and assertions -------------------------------------------------

case_end()
{
	[ -n "$case_name" ] || return 0
	if [ "$case_failures" -eq 0 ]; then
		cases_passed=$((cases_passed + 1))
		say "ok - $case_name"
	else
		cases_failed=$((cases_failed + 1))
		say "not ok - $case_name"
	fi
	case_name=
	case_failures=0
}

test_case()
{
	case_end
	case_name=$1
	say "# --- $case_name"
	events_mark
}

fail()
{
	say "  FAIL${case_name:+ [$case_name]}: $*"
	case_failures=$((case_failures + 1))
	[ -n "$case_name" ] || harness_failures=$((harness_failures + 1))
	return 1
}

expect_eq()
{
	if [ "$1" != "$2" ]; then
		fail "$3"
		say "    expected: $(printf '%q' "$1")"
		say "    actual:   $(printf '%q' "$2")"
		return 1
	fi
}

# expect_true MSG CMD...: CMD must succeed.
expect_true()
{
	local msg=$1 out
	shift
	if ! out=$("$@" 2>&1); then
		fail "$msg"
		say "    command: $*"
		[ -z "$out" ] || say "    output: $out"
		return 1
	fi
}

# The errno name ("EINVAL") or number as its strerror text.
strerror_of()
{
	"$PY" -c 'import errno, os, sys
a = sys.argv[1]
print(os.strerror(int(a) if a.isdigit() else getattr(errno, a)))' "$1"
}

# expect_errno ERRNO CMD...: CMD must fail, and its output must name ERRNO,
# either as the symbol (sysop prints "EINVAL") or as strerror's text, which
# is what coreutils and bash print ("mkdir: ...: Invalid argument").
expect_errno()
{
	local want=$1 text out status
	shift
	text=$(strerror_of "$want")
	out=$("$@" 2>&1)
	status=$?
	if [ "$status" -eq 0 ]; then
		fail "expected $want, but it succeeded: $*"
		return 1
	fi
	if ! printf '%s\n' "$out" | grep -qwF -e "$want" -e "$text"; then
		fail "expected $want ($text): $*"
		say "    got (status $status): $out"
		return 1
	fi
}

# sysop OP PATH [DATA]: one system call sequence from Python, so the errno
# is exact. Prints "OK" or "ERRNAME: message" (status 1). OPs:
#   write   open O_WRONLY|O_CREAT|O_TRUNC, one write(DATA), close
#   append  open O_WRONLY|O_CREAT|O_APPEND, one write(DATA), close
#   openw   open O_WRONLY only        truncate  truncate(PATH, 0)
#   mkdir rmdir unlink read(prints the bytes)
sysop()
{
	"$PY" - "$@" <<-'EOF'
	import errno, os, sys
	op, path = sys.argv[1], sys.argv[2]
	data = sys.argv[3].encode() if len(sys.argv) > 3 else b""
	try:
	    if op in ("write", "append"):
	        fl = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if op == "write" else os.O_APPEND)
	        fd = os.open(path, fl, 0o644)
	        try:
	            n = os.write(fd, data)
	            if n != len(data):
	                print("SHORT: wrote %d of %d" % (n, len(data)), file=sys.stderr)
	                sys.exit(1)
	        finally:
	            os.close(fd)
	    elif op == "openw":
	        os.close(os.open(path, os.O_WRONLY))
	    elif op == "truncate":
	        os.truncate(path, 0)
	    elif op == "mkdir":
	        os.mkdir(path)
	    elif op == "rmdir":
	        os.rmdir(path)
	    elif op == "unlink":
	        os.unlink(path)
	    elif op == "read":
	        with open(path, "rb") as f:
	            sys.stdout.buffer.write(f.read())
	        sys.exit(0)
	    else:
	        sys.exit("sysop: unknown op " + op)
	except OSError as e:
	    print("%s: %s" % (errno.errorcode.get(e.errno, e.errno), e.strerror), file=sys.stderr)
	    sys.exit(1)
	print("OK")
	EOF
}

# special_request FILE REQUEST: writes REQUEST into the special FILE and
# prints the reply line read back on the same descriptor, or "ERR" when
# the write is refused (the message read back is then in $TMP/reg.err).
special_request()
{
	local r=
	exec 3<>"$1"
	if ! printf '%s' "$2" >&3 2>/dev/null; then
		cat <&3 >"$TMP/reg.err"
		exec 3>&-
		echo ERR
		return
	fi
	read -r r <&3
	exec 3>&-
	echo "$r"
}

# Lines of the events file (read through the mount).
events_count() { wc -l <"$MNT/events" 2>/dev/null || echo 0; }

# Everything before now is old: expect_event looks only at newer lines.
events_mark()
{
	if [ -n "$MLFS_PID" ] && mountpoint -q "$MNT"; then
		events_seen=$(events_count)
	fi
}

# expect_files_match VERSION_DIR JSON_NAME: the files under VERSION_DIR/files
# are exactly those JSON_NAME lists, each with its size (what ls -l says,
# answered from the listing) and, when listed, its sha256.
expect_files_match()
{
	"$PY" - "$1" "$2" <<-'EOF' || fail "files/ of $1 disagrees with $2"
	import hashlib, json, os, sys
	v, name = sys.argv[1], sys.argv[2]
	want = {f["path"]: f for f in json.load(open(os.path.join(v, name)))["files"]}
	seen = {}
	for d, _, names in os.walk(v + "/files"):
	    for n in names:
	        p = os.path.join(d, n)
	        seen[os.path.relpath(p, v + "/files")] = p
	assert sorted(seen) == sorted(want), (sorted(seen), sorted(want))
	for rel, p in seen.items():
	    st = os.stat(p)
	    assert st.st_size == want[rel]["size"], (rel, st.st_size, want[rel])
	    if "sha256" in want[rel]:
	        got = hashlib.sha256(open(p, "rb").read()).hexdigest()
	        assert got == want[rel]["sha256"], rel
	EOF
}

# with_daemon_stopped read|stat FILE: stops the daemon (SIGSTOP), then
# reads FILE whole through a descriptor opened before (prints its sha256)
# or stats it (prints "walked"); prints "blocked" when that needed the
# daemon (no end within 5 s). The daemon is continued in every case.
with_daemon_stopped()
{
	"$PY" - "$1" "$2" "$MLFS_PID" <<-'EOF'
	import hashlib, os, signal, sys, threading
	what, path, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
	fd = os.open(path, os.O_RDONLY) if what == "read" else -1
	h, done = hashlib.sha256(), threading.Event()
	def act():
	    if what == "read":
	        while chunk := os.read(fd, 1 << 20):
	            h.update(chunk)
	    else:
	        os.stat(path)
	    done.set()
	os.kill(pid, signal.SIGSTOP)
	try:
	    threading.Thread(target=act, daemon=True).start()
	    alone = done.wait(5)
	finally:
	    os.kill(pid, signal.SIGCONT)
	done.wait(30)
	print("blocked" if not alone else h.hexdigest() if what == "read" else "walked")
	EOF
}

# read_with_daemon_stopped FILE: with_daemon_stopped read, caches dropped
# first where allowed, so a read the kernel serves alone cannot come from
# the mount's page cache.
read_with_daemon_stopped()
{
	[ ! -w /proc/sys/vm/drop_caches ] || { sync && echo 3 >/proc/sys/vm/drop_caches; }
	with_daemon_stopped read "$1"
}

# passthrough_possible: the kernel can read files without the daemon
# (FUSE passthrough: Linux 6.9 or later, and root for its ioctl).
passthrough_possible()
{
	local v
	v=$(uname -r | awk -F. '{print $1 * 1000 + $2}')
	[ "$v" -ge 6009 ] && [ "$(id -u)" -eq 0 ]
}

# expect_event REGEX: a line newer than the last mark matches REGEX
# (grep -E). The events file is live, so it may take up to 1 s to show.
expect_event()
{
	local re=$1 tries=11 new
	while :; do
		new=$(tail -n +"$((events_seen + 1))" "$MNT/events")
		if printf '%s\n' "$new" | grep -qE -- "$re"; then
			events_seen=$(events_count)
			return 0
		fi
		tries=$((tries - 1))
		[ "$tries" -gt 0 ] || break
		sleep 0.1
	done
	fail "no new events line matching /$re/"
	say "    new lines: $(printf '%q' "$new")"
	events_seen=$(events_count)
	return 1
}

# poll_ms MS CMD...: retries CMD every 50 ms until it succeeds or MS
# milliseconds passed; 0 if it succeeded. Only for "visible within N s".
poll_ms()
{
	local end=$(($(date +%s%N) / 1000000 + $1))
	shift
	while :; do
		"$@" && return 0
		[ "$(($(date +%s%N) / 1000000))" -lt "$end" ] || return 1
		sleep 0.05
	done
}

# ---- the end -----------------------------------------------------------------

summary()
{
	local failed=$((cases_failed + harness_failures))
	say "$cases_passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}

# Ends the last case, unmounts, prints the summary and exits.
test_done()
{
	case_end
	mlfs_unmount
	finished=1
	exit 0	# the EXIT trap decides the status
}

on_exit()
{
	local status=$?
	trap - EXIT INT TERM HUP
	if [ "$finished" -eq 0 ]; then
		[ -z "$case_name" ] || fail "script ended inside this case (status $status)"
		case_end
		harness_fail "the script did not reach test_done (status $status)"
		mlfs_unmount
	fi
	# Stray children (writers of a test) must not outlive it.
	local pids
	pids=$(jobs -p)
	[ -z "$pids" ] || kill $pids 2>/dev/null
	wait 2>/dev/null
	if is_mounted; then
		fusermount3 -u -z "$MNT" 2>/dev/null
	fi
	if summary; then
		status=0
	else
		status=1
		if [ -s "$LOG" ]; then
			say "# ---- mlfs stderr ($LOG)"
			sed 's/^/# /' "$LOG"
		fi
	fi
	if [ "${MLFS_TEST_KEEP:-0}" = 1 ] || is_mounted; then
		say "# kept $TMP"
	else
		rm -rf "$TMP"
	fi
	exit "$status"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ---- submitted runs (t_submit*.sh) -----------------------------------------

# mlfs_mount_with ARG...: mlfs_mount with more arguments for "mlfs mount"
# (e.g. -o max_concurrent_runs=1).
mlfs_mount_with()
{
	mlfs_mount "$@"
}

# submit_fd FILE CHUNK...: opens FILE O_RDWR, writes each CHUNK with one
# write(2), then reads the reply on the same descriptor, like
# "exec 3<>FILE; printf ... >&3; read -r x <&3". Prints the reply (a run
# id); when a write fails, prints "ERRNAME: REPLY" and returns 1. Runs in
# the caller's working directory (for a relative source_directory).
submit_fd()
{
	"$PY" - "$@" <<-'EOF'
	import errno, os, sys
	fd = os.open(sys.argv[1], os.O_RDWR)
	def reply():
	    out = b""
	    while True:
	        b = os.read(fd, 65536)
	        if not b:
	            return out.decode(errors="replace").rstrip("\n")
	        out += b
	try:
	    for chunk in sys.argv[2:]:
	        data = chunk.encode()
	        n = os.write(fd, data)
	        if n != len(data):
	            print("SHORT: wrote %d of %d" % (n, len(data)))
	            sys.exit(1)
	except OSError as e:
	    print("%s: %s" % (errno.errorcode.get(e.errno, e.errno), reply()))
	    sys.exit(1)
	print(reply())
	EOF
}

# run_json_get FILE EXPR: prints json.dumps(EXPR) with r = the JSON in FILE,
# e.g. run_json_get "$R/run.json" 'r["git"]["dirty"]'.
run_json_get()
{
	"$PY" -c 'import json, sys
r = json.load(open(sys.argv[1]))
print(json.dumps(eval(sys.argv[2])))' "$1" "$2"
}

# 0 when run directory $1 has a terminal status.
run_is_over()
{
	case $(cat "$1/status" 2>/dev/null) in
	Completed | Failed | Canceled) return 0 ;;
	esac
	return 1
}

# run_wait_end RUN_DIR [SECONDS]: waits (default 60 s: a guard, not a
# measure) until the run ends; prints its status.
run_wait_end()
{
	poll_ms "$((${2:-60} * 1000))" run_is_over "$1"
	cat "$1/status" 2>/dev/null
}

# 0 when run directory $1 shows status $2.
run_has_status() { [ "$(cat "$1/status" 2>/dev/null)" = "$2" ]; }

# run_wait_status RUN_DIR STATUS [SECONDS]: waits until the run shows
# STATUS; 0 if it did.
run_wait_status()
{
	poll_ms "$((${3:-60} * 1000))" run_has_status "$1" "$2"
}

# Pids of the supervisors ("mlfs-supervise WS ...", formerly "mlfs supervise
# WS ...") of this test's workspace.
supervisor_pids()
{
	pgrep -f -- "^mlfs[- ]supervise $(realpath "$WS" 2>/dev/null || echo "$WS") " 2>/dev/null
}

# Ends what the run scripts of this test left running: every process
# group whose leader's pid a script wrote into $TMP/pids/*, then this
# workspace's supervisors, each by its id. For the EXIT trap.
submit_reap_all()
{
	local f pid
	for f in "$TMP"/pids/*; do
		[ -f "$f" ] || continue
		pid=$(cat "$f")
		case $pid in '' | *[!0-9]*) continue ;; esac
		pid_alive "$pid" && kill -KILL -- "-$pid" 2>/dev/null
	done
	for pid in $(supervisor_pids); do
		kill -KILL "$pid" 2>/dev/null
	done
}
