#!/bin/bash
# Experiments: mkdir creates, rmdir removes while empty, names are checked.
. "$(dirname "$0")/lib.sh"

mlfs_mount
E=$MNT/experiments

test_case experiments_dir_starts_empty
expect_eq "" "$(ls -A "$E")" "a new workspace lists no experiments"

test_case mkdir_creates_experiment_with_runs_runs_csv_and_submit
expect_true "mkdir experiments/alpha" mkdir "$E/alpha"
[ -d "$E/alpha" ] || fail "experiments/alpha is not a directory"
expect_eq "runs
runs.csv
submit" "$(ls "$E/alpha")" "an experiment holds runs/, runs.csv and submit"
ls -l "$E/alpha/submit" | grep -q '^-rw-rw-rw- ' || fail "submit is not a 0666 special file"
[ -d "$E/alpha/runs" ] || fail "runs/ is not a directory"
expect_eq "" "$(ls -A "$E/alpha/runs")" "a new experiment has no runs"

test_case mkdir_accepts_every_valid_name_character
long=$(printf 'n%.0s' $(seq 255))
for name in a-b_c.D9 -dash 0 x.. "$long"; do
	expect_true "mkdir '$name'" mkdir "$E/$name"
	[ -d "$E/$name" ] || fail "'$name' not created"
done

test_case mkdir_existing_experiment_gives_EEXIST
expect_errno EEXIST mkdir "$E/alpha"
expect_errno EEXIST sysop mkdir "$E/alpha"

test_case mkdir_invalid_name_gives_EINVAL_and_event
for name in .hidden ... 'a b' 'semi;colon' 'quo"te' 'tab	x' 'ümlaut' \
	'star*' "$(printf 'n%.0s' $(seq 256))"; do
	expect_errno EINVAL sysop mkdir "$E/$name"
	expect_event "refused mkdir experiments/.*\(EINVAL\)"
	[ ! -e "$E/$name" ] || fail "invalid name '$name' exists after refusal"
done
expect_eq "" "$(ls "$E" | grep -E '^(\.|a b|semi|quo|tab|star)')" \
	"no invalid experiment is listed"

test_case ls_lists_exactly_the_experiments
expect_eq "$(printf '%s\n' -dash 0 a-b_c.D9 alpha "$long" x.. | sort)" \
	"$(ls "$E" | sort)" "ls experiments"

test_case rmdir_empty_experiment_removes_it
expect_true "mkdir beta" mkdir "$E/beta"
expect_true "rmdir beta" rmdir "$E/beta"
[ ! -e "$E/beta" ] || fail "beta still exists after rmdir"
ls "$E" | grep -qx beta && fail "beta still listed after rmdir"
expect_errno ENOENT sysop rmdir "$E/beta"

test_case rmdir_experiment_with_runs_gives_ENOTEMPTY_and_event
expect_true "mkdir gamma" mkdir "$E/gamma"
expect_true "mkdir gamma/runs/r1" mkdir "$E/gamma/runs/r1"
expect_errno ENOTEMPTY rmdir "$E/gamma"
expect_event "refused rmdir experiments/gamma: .*\(ENOTEMPTY\)"
[ -d "$E/gamma/runs/r1" ] || fail "gamma's run is gone after refused rmdir"
ls "$E" | grep -qx gamma || fail "gamma no longer listed"

test_case rmdir_missing_experiment_gives_ENOENT
expect_errno ENOENT rmdir "$E/nosuch"

test_case experiment_can_be_made_again_after_rmdir
expect_true "mkdir beta again" mkdir "$E/beta"
expect_eq "" "$(ls -A "$E/beta/runs")" "re-made experiment has no runs"

test_case experiments_survive_remount
mlfs_unmount
mlfs_mount
expect_eq "$(printf '%s\n' -dash 0 a-b_c.D9 alpha beta gamma "$long" x.. | sort)" \
	"$(ls "$E" | sort)" "ls experiments after remount"
[ -d "$E/gamma/runs/r1" ] || fail "gamma/runs/r1 lost in remount"

test_case lifecycle_changes_show_in_events
events_mark
mkdir "$E/evented" || fail "mkdir experiments/evented"
expect_event "experiment evented created$"
mkdir "$E/evented/runs/r9" || fail "mkdir a run"
expect_event "experiments/evented/runs/r9 created \(interactive, Running\)$"
echo Canceled >"$E/evented/runs/r9/status" || fail "cancel the run"
expect_event "experiments/evented/runs/r9 Running -> Canceled$"
mkdir "$E/brief" && rmdir "$E/brief" || fail "mkdir and rmdir experiments/brief"
expect_event "experiment brief removed$"

test_case a_fixed_name_is_kept_past_the_1s_timeout_a_dynamic_one_is_not
# A path walk after the 1 s timeout re-asks mlfs only for names that can
# change: with the daemon stopped, O_PATH (a walk, no open) of experiments
# ends, one of experiments/kept waits for mlfs.
mkdir "$E/kept" || fail "mkdir experiments/kept"
ls "$E/kept" >/dev/null
sleep 1.3
got=$("$PY" - "$MNT" "$MLFS_PID" <<-'EOF'
	import os, signal, sys, threading
	mnt, pid = sys.argv[1], int(sys.argv[2])
	def walk(path):
	    done = threading.Event()
	    def run():
	        os.close(os.open(path, os.O_PATH))
	        done.set()
	    threading.Thread(target=run, daemon=True).start()
	    return done
	os.kill(pid, signal.SIGSTOP)
	try:
	    fixed = walk(mnt + "/experiments").wait(3)
	    dynamic = walk(mnt + "/experiments/kept").wait(1)
	finally:
	    os.kill(pid, signal.SIGCONT)
	print("fixed", "kept" if fixed else "asked", "dynamic", "kept" if dynamic else "asked")
	EOF
)
expect_eq "fixed kept dynamic asked" "$got" "which names a walk re-asks for after 1 s"

test_done
