#!/usr/bin/python3
"""Timing helpers for scripts/bench, section 6: submitting runs.

  bench-submit.py latency EXPDIR SRC N     median ms, submit -> Completed, of N
                                           runs of `true`; and of N spawns of
                                           `sh -c true` (the native line)
  bench-submit.py snapshot EXPDIR SRC      ms the submit write() took (it
                                           snapshots SRC), and the run's id
  bench-submit.py points EXPDIR SRC FILE N ms from submit until all N points
                                           that the run copies from FILE into
                                           $MLFS_METRICS show in the mount

Each prints one line of numbers for the bash script. Polls the mount every
millisecond: the poll interval bounds the error of each measurement.
"""
import json
import os
import statistics
import subprocess
import sys
import time


def submit(expdir, request):
    fd = os.open(os.path.join(expdir, "submit"), os.O_RDWR)
    try:
        os.write(fd, json.dumps(request).encode())
        return os.read(fd, 4096).decode().strip()
    finally:
        os.close(fd)


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def wait_status(expdir, run, want, timeout=120.0):
    status = os.path.join(expdir, "runs", run, "status")
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        s = read(status).strip()
        if s in ("Completed", "Failed", "Canceled"):
            if s != want:
                sys.exit(f"run {run} ended {s}")
            return
        time.sleep(0.001)
    sys.exit(f"run {run} did not end in {timeout} s")


def latency(expdir, src, n):
    req = {"source_directory": src, "command": ["true"]}
    runs = []
    for _ in range(n):
        t0 = time.monotonic()
        run = submit(expdir, req)
        wait_status(expdir, run, "Completed")
        runs.append((time.monotonic() - t0) * 1000)
    native = []
    for _ in range(n):
        t0 = time.monotonic()
        subprocess.run(["sh", "-c", "true"], check=True)
        native.append((time.monotonic() - t0) * 1000)
    print(f"{statistics.median(runs):.2f} {statistics.median(native):.3f}")


def snapshot(expdir, src):
    t0 = time.monotonic()
    run = submit(expdir, {"source_directory": src, "command": ["true"]})
    ms = (time.monotonic() - t0) * 1000
    wait_status(expdir, run, "Completed")
    print(f"{ms:.1f} {run}")


def points(expdir, src, file, n):
    cmd = 'cat "$1" >>"$MLFS_METRICS"'
    t0 = time.monotonic()
    run = submit(expdir, {"source_directory": src,
                          "command": ["sh", "-c", cmd, "sh", file]})
    summary = os.path.join(expdir, "runs", run, "metrics.json")
    end = t0 + 300
    count = 0
    while time.monotonic() < end:
        try:
            count = json.loads(read(summary) or "{}").get("loss", {}).get("count", 0)
        except ValueError:
            count = 0
        if count >= n:
            break
        time.sleep(0.001)
    ms = (time.monotonic() - t0) * 1000
    wait_status(expdir, run, "Completed")
    print(f"{ms:.1f} {count}")


def main():
    what, args = sys.argv[1], sys.argv[2:]
    if what == "latency":
        latency(args[0], args[1], int(args[2]))
    elif what == "snapshot":
        snapshot(args[0], args[1])
    elif what == "points":
        points(args[0], args[1], args[2], int(args[3]))
    else:
        sys.exit(f"unknown measurement {what}")


main()
