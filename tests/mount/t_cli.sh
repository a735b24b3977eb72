#!/bin/bash
# The mlfs command: help, version, usage errors, init, mount options
# passed through to FUSE, and SIGTERM/SIGINT unmounting cleanly.
. "$(dirname "$0")/lib.sh"

# Mounts $WS at $MNT in the background with extra arguments; sets MLFS_PID.
# A non-interactive shell starts background jobs with SIGINT ignored, and
# an ignored signal stays ignored: reset it as a terminal's shell would.
mount_with()
{
	"$PY" -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])' "$MLFS" mount "$WS" "$MNT" -f "$@" 2>>"$LOG" &
	MLFS_PID=$!
	poll_ms 20000 mountpoint -q "$MNT" || harness_fail "not mounted: $*"
}

# Sends signal $1 to the daemon; it must unmount and exit 0.
signal_unmounts()
{
	local status
	kill -"$1" "$MLFS_PID"
	pid_wait_gone "$MLFS_PID" 10 || fail "mlfs still running after SIG$1"
	wait "$MLFS_PID"
	status=$?
	MLFS_PID=
	expect_eq 0 "$status" "exit status after SIG$1"
	if mountpoint -q "$MNT"; then
		fail "still mounted after SIG$1"
		fusermount3 -u -z "$MNT"
	fi
	check_log
}

test_case help_and_version_exit_0
expect_true "mlfs --help" "$MLFS" --help
"$MLFS" --help | grep -q '^usage: mlfs init WORKSPACE' || fail "--help shows no usage"
expect_eq "mlfs 0.1.0" "$("$MLFS" --version)" "mlfs --version"

test_case usage_errors_exit_2
"$MLFS" >/dev/null 2>&1
expect_eq 2 "$?" "no command"
"$MLFS" frobnicate >/dev/null 2>&1
expect_eq 2 "$?" "unknown command"
"$MLFS" mount "$WS" >/dev/null 2>&1
expect_eq 2 "$?" "mount without a mount point"
"$MLFS" frobnicate 2>&1 | grep -q "unknown command 'frobnicate'" ||
	fail "no message for an unknown command"

test_case init_creates_a_workspace
expect_true "mlfs init" "$MLFS" init "$TMP/made"
[ -f "$TMP/made/workspace.db" ] || fail "init made no workspace.db"
expect_eq ok "$(sqlite3 "$TMP/made/workspace.db" 'PRAGMA integrity_check')" \
	"integrity of a new workspace"
expect_true "mlfs init again" "$MLFS" init "$TMP/made"

test_case mount_creates_a_missing_workspace
[ ! -e "$WS" ] || fail "the workspace exists before the first mount"
mount_with
[ -f "$WS/workspace.db" ] || fail "mount did not create the workspace"
expect_eq ws "$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["name"])' "$MNT/workspace.json")" \
	"workspace name"
mkdir "$MNT/experiments/kept" || fail "mkdir through the mount"

test_case sigterm_unmounts_cleanly
signal_unmounts TERM

test_case sigint_unmounts_cleanly_and_keeps_data
mount_with
[ -d "$MNT/experiments/kept" ] || fail "experiment lost across a remount"
signal_unmounts INT

test_case fuse_option_ro_is_passed_through
mount_with -o ro
expect_errno EROFS sysop mkdir "$MNT/experiments/nope"
[ -d "$MNT/experiments/kept" ] || fail "read-only mount shows no data"
signal_unmounts TERM

test_case bad_fuse_option_is_refused
"$MLFS" mount "$WS" "$MNT" -f -o no_such_option >/dev/null 2>&1
[ "$?" -ne 0 ] || fail "an unknown -o option was accepted"
mountpoint -q "$MNT" && { fail "mounted with a bad option"; fusermount3 -u "$MNT"; }

test_done
