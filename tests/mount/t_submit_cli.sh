#!/bin/bash
# mlfs submit, the parts that need no submit file in the mount yet: usage
# errors, unreadable or oversized requests, and experiment directories
# without a submit file. The end-to-end cases (a run id on stdout, --wait
# streaming the log, refusals read back from the descriptor) come with
# the mount side of submit.
. "$(dirname "$0")/lib.sh"

# submit_out ARGS...: runs mlfs submit; sets $status, $out and $err.
submit_out()
{
	out=$("$MLFS" submit "$@" 2>"$TMP/submit.err" </dev/null)
	status=$?
	err=$(cat "$TMP/submit.err")
}

printf '{"script": "train.py"}' >"$TMP/req.json"
mkdir "$TMP/plain"

mlfs_mount
mkdir "$MNT/experiments/e" || fail "mkdir experiment"

test_case submit_usage_errors_exit_2_with_usage
for args in "" "$MNT/experiments/e" "a b c" "--frob $MNT/experiments/e $TMP/req.json"; do
	# shellcheck disable=SC2086 # split on purpose
	submit_out $args
	expect_eq 2 "$status" "exit status for 'submit $args'"
	printf '%s\n' "$err" | grep -q '^usage: mlfs submit EXPERIMENT_DIR REQUEST.json \[--wait\]' ||
		fail "no usage for 'submit $args': $err"
	expect_eq "" "$out" "stdout for 'submit $args'"
done
submit_out --frob "$MNT/experiments/e" "$TMP/req.json"
printf '%s\n' "$err" | grep -q "unknown option '--frob'" || fail "unknown option not named: $err"
"$MLFS" --help | grep -q '^       mlfs submit EXPERIMENT_DIR REQUEST.json \[--wait\]' ||
	fail "--help does not list submit"

test_case submit_missing_request_file_fails
submit_out "$MNT/experiments/e" "$TMP/no-such.json"
expect_eq 1 "$status" "exit status"
expect_eq "mlfs: cannot read request '$TMP/no-such.json': No such file or directory" \
	"$err" "message"
submit_out "$MNT/experiments/e" "$TMP/no-such.json" --wait
expect_eq 1 "$status" "exit status with --wait"

test_case submit_empty_request_fails
: >"$TMP/empty.json"
submit_out "$MNT/experiments/e" "$TMP/empty.json"
expect_eq 1 "$status" "exit status"
expect_eq "mlfs: request '$TMP/empty.json' is empty" "$err" "message"

test_case submit_oversized_request_fails
head -c $((1024 * 1024 + 1)) /dev/zero | tr '\0' ' ' >"$TMP/big.json"
submit_out "$MNT/experiments/e" "$TMP/big.json"
expect_eq 1 "$status" "exit status"
expect_eq "mlfs: request '$TMP/big.json' is larger than 1048576 bytes" "$err" "message"
out=$("$MLFS" submit "$MNT/experiments/e" - <"$TMP/big.json" 2>&1)
expect_eq 1 "$?" "exit status from stdin"
expect_eq "mlfs: request '-' is larger than 1048576 bytes" "$out" "message from stdin"

test_case submit_to_a_directory_without_submit_file_fails
for dir in "$TMP/plain" "$MNT/experiments" "$MNT/experiments/nope"; do
	submit_out "$dir" "$TMP/req.json"
	expect_eq 1 "$status" "exit status for '$dir'"
	expect_eq "mlfs: cannot open '$dir/submit': No such file or directory (is '$dir' an experiment directory of an mlfs mount?)" \
		"$err" "message for '$dir'"
	expect_eq "" "$out" "stdout for '$dir'"
done
out=$("$MLFS" submit "$TMP/plain" - <"$TMP/req.json" 2>&1)
expect_eq 1 "$?" "exit status with the request on stdin"
printf '%s\n' "$out" | grep -q "cannot open '$TMP/plain/submit'" ||
	fail "stdin request: $out"
[ ! -e "$TMP/plain/submit" ] || fail "submit created a file in a plain directory"

test_done
