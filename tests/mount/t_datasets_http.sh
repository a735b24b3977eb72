#!/bin/bash
# An HTTP datastore and its datasets through the mount, against a private
# nginx on 127.0.0.1: sequential and random reads match, random reads
# fetch little, the block cache stays under cache_max, a stopped or hung
# server gives EIO within seconds, 404/500/changed files give EIO with an
# events line, and the secret header value is found nowhere but the
# credential store.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nginx.sh"

D=$MNT/datasets
SECRET="Bearer tok-$$-$RANDOM-$RANDOM"
NX=$TMP/nginx
WWW=$NX/www
CACHE=$TMP/cache

register() { special_request "$@"; }	# SPECIAL REQUEST
sha() { sha256sum "$1" | cut -d' ' -f1; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

mkdir -p "$WWW/secret/data/sub" "$WWW/flaky"
head -c $((48 << 20)) /dev/urandom >"$WWW/secret/data/big.bin"
printf 'a,b\n1,2\n3,4\n' >"$WWW/secret/data/small.csv"
printf 'deep' >"$WWW/secret/data/sub/deep.txt"
printf 'soon gone' >"$WWW/secret/data/gone.txt"
printf 'changes' >"$WWW/secret/data/changes.txt"
printf 'flaky' >"$WWW/flaky/f.txt"
head -c $((4 << 20)) /dev/urandom >"$WWW/secret/data/other.bin"
mkdir -p "$WWW/secret/shards"
for i in $(seq 24); do head -c $((1 << 20)) /dev/urandom >"$WWW/secret/shards/s$i.bin"; done
nginx_start "$NX" "$SECRET" || exit 1

mlfs_mount -o cache_dir="$CACHE",cache_max=8M

test_case register_an_http_datastore_with_a_secret_header
expect_eq "web" "$(register "$MNT/datastores/register" "{\"name\": \"web\", \"type\": \"http\", \"url\": \"$NGINX_URL\", \"headers\": {\"Authorization\": \"$SECRET\"}}")" "reply"
expect_eq "nohdr" "$(register "$MNT/datastores/register" "{\"name\": \"nohdr\", \"type\": \"http\", \"url\": \"$NGINX_URL\"}")" "one without the header"
expect_errno EACCES cat "$MNT/datastores/nohdr/files/secret/data/small.csv"

test_case files_looks_paths_up_with_head
expect_eq "$(sha "$WWW/secret/data/small.csv")" "$(sha "$MNT/datastores/web/files/secret/data/small.csv")" "a file by its path"
expect_eq "48" "$(( $(stat -c %s "$MNT/datastores/web/files/secret/data/big.bin") >> 20 ))" "its size from HEAD"
expect_errno ENOENT cat "$MNT/datastores/web/files/secret/data/missing.csv"
expect_errno EROFS sysop write "$MNT/datastores/web/files/secret/data/new.csv" "x"
expect_errno EROFS sysop unlink "$MNT/datastores/web/files/secret/data/small.csv"

test_case register_a_dataset_and_read_it
expect_eq "web 1" "$(register "$D/register" '{"name": "web", "datastore": "web", "paths": ["secret/data/big.bin", "secret/data/small.csv", "secret/data/sub/deep.txt", "secret/data/gone.txt", "secret/data/changes.txt", "secret/data/other.bin", "flaky/f.txt"]}')" "reply"
paths=$(for i in $(seq 24); do printf '"secret/shards/s%d.bin",' "$i"; done)
expect_eq "shards 1" "$(register "$D/register" "{\"name\": \"shards\", \"datastore\": \"web\", \"paths\": [${paths%,}]}")" "24 shards"
expect_eq "flaky secret" "$(ls "$MNT/datastores/web/files" | tr '\n' ' ' | sed 's/ $//')" "files/ lists what datasets use"
"$PY" - "$D/web/1/dataset.json" <<-'EOF' || fail "dataset.json"
	import json, sys
	d = json.load(open(sys.argv[1]))
	f = {x["path"]: x for x in d["files"]}
	assert f["secret/data/big.bin"]["size"] == 48 << 20, f
	assert f["secret/data/small.csv"]["etag"].startswith('"'), f
	assert f["secret/data/small.csv"]["last_modified"].endswith("Z"), f
	EOF
# sha256sum reads 32 KiB at a time and asks for sequential read-ahead:
# the kernel sends reads up to 8 MiB ahead, out of order; each byte is
# still fetched about once.
drop_caches
before=$(nginx_bytes "$NX" "data/big.bin")
expect_eq "$(sha "$WWW/secret/data/big.bin")" "$(sha "$D/web/1/files/secret/data/big.bin")" "sequential read"
fetched=$(($(nginx_bytes "$NX" "data/big.bin") - before))
expect_true "fetched $fetched bytes for 48 MiB" [ "$fetched" -le $(((48 << 20) * 11 / 10)) ]
"$PY" - "$D/web/1/files/secret/data/small.csv" <<-'EOF' || fail "pandas"
	import sys, pandas as pd
	assert pd.read_csv(sys.argv[1])["b"].sum() == 6
	EOF

test_case the_kernel_keeps_the_pages_of_a_large_file
big=$D/web/1/files/secret/data/big.bin
want=$(sha "$WWW/secret/data/big.bin")
pass_fetches() {	# PASS: sha256 of the file through the mount; prints bytes fetched
	local before after
	before=$(nginx_bytes "$NX" "data/big.bin")
	expect_eq "$want" "$(sha "$big")" "pass $1"
	after=$(nginx_bytes "$NX" "data/big.bin")
	echo $((after - before))
}
expect_eq "1048576" "$(stat -c %o "$big")" "st_blksize: buffered readers read 1 MiB at a time"
expect_eq "1048576" "$(stat -c %o "$MNT/datastores/web/files/secret/data/big.bin")" "st_blksize through the datastore's files/"
drop_caches
f1=$(pass_fetches 1) f2=$(pass_fetches 2)
say "# fetched per pass: $f1 $f2"
expect_true "pass 1 fetched it ($f1)" [ "$f1" -ge $((48 << 20)) ]
# (the kernel may let a few pages go: at most 1 MiB of 48 is fetched again)
expect_true "pass 2 is read from the page cache ($f2)" [ "$f2" -le $((1 << 20)) ]

test_case random_reads_match_and_fetch_little
drop_caches
before=$(nginx_bytes "$NX" "other.bin")
"$PY" - "$D/web/1/files/secret/data/other.bin" "$WWW/secret/data/other.bin" <<-'EOF' || fail "random reads"
	import os, random, sys
	a, b = os.open(sys.argv[1], os.O_RDONLY), os.open(sys.argv[2], os.O_RDONLY)
	size = os.fstat(b).st_size
	random.seed(5)
	for _ in range(100):
	    off = random.randrange(0, size // 4096) * 4096
	    if os.pread(a, 4096, off) != os.pread(b, 4096, off):
	        sys.exit("bytes differ at %d" % off)
	EOF
fetched=$(( $(nginx_bytes "$NX" "other.bin") - before ))
awk '$3 ~ /other.bin/ { print $2 }' "$NX/access.log" | sort -n | uniq -c | sort -rn | head -5 | sed 's/^/# sizes: /'
say "# 100 random 4 KiB reads fetched $fetched bytes (headers included)"
[ "$fetched" -le $((4 * 100 * 4096 + 100 * 1024)) ] || fail "fetched $fetched bytes for 409600 read"

test_case the_block_cache_stays_under_cache_max
# Files up to 4 MiB go through the cache (larger ones are streamed past
# it): 24 MiB of shards through a cache of 8 MiB.
for i in $(seq 24); do
	expect_eq "$(sha "$WWW/secret/shards/s$i.bin")" "$(sha "$D/shards/1/files/secret/shards/s$i.bin")" "shard $i"
done
sleep 1	# the cache writes in the background
used=$(du -sk "$CACHE" | cut -f1)
say "# block cache: ${used} KiB after reading 24 MiB of shards"
[ "$used" -le $((8 * 1024 + 512)) ] || fail "cache uses ${used} KiB, over cache_max 8M"
[ "$used" -gt 1024 ] || fail "the cache holds nothing (${used} KiB)"
drop_caches
before=$(nginx_bytes "$NX" "shards/s24.bin")
expect_eq "$(sha "$WWW/secret/shards/s24.bin")" "$(sha "$D/shards/1/files/secret/shards/s24.bin")" "the newest shard again"
expect_eq "$before" "$(nginx_bytes "$NX" "shards/s24.bin")" "served from the cache"
expect_eq "$(sha "$WWW/secret/shards/s1.bin")" "$(sha "$D/shards/1/files/secret/shards/s1.bin")" "the oldest, evicted, again"

test_case http_direct_1_passes_around_the_page_cache_until_read_whole
# Its first pass is direct I/O: nothing of it stays in the page cache, so
# the second pass fetches it again, and keeps its pages for the third.
mlfs_unmount
mlfs_mount -o cache_dir="$CACHE",cache_max=8M,http_direct=1
f1=$(pass_fetches 1) f2=$(pass_fetches 2) f3=$(pass_fetches 3)
say "# fetched per pass: $f1 $f2 $f3"
expect_true "pass 1 fetched it ($f1)" [ "$f1" -ge $((48 << 20)) ]
expect_true "pass 2 fetched it again ($f2)" [ "$f2" -ge $((48 << 20)) ]
expect_true "pass 3 is read from the page cache ($f3)" [ "$f3" -le $((1 << 20)) ]
drop_caches	# the mount forgets the file: its next open is a first pass
"$PY" - "$big" "$want" <<-'EOF' || fail "mmap of a file in its first pass"
	import hashlib, mmap, os, sys
	fd = os.open(sys.argv[1], os.O_RDONLY)
	with mmap.mmap(fd, 0, prot=mmap.PROT_READ) as m:
	    assert hashlib.sha256(m).hexdigest() == sys.argv[2]
	assert hashlib.sha256(os.read(fd, 1 << 30)).hexdigest() == sys.argv[2]
	EOF
view=$MNT/datastores/web/files/secret/data/big.bin
expect_eq "$want" "$(sha "$view")" "through the datastore's files/"
expect_eq "$want" "$(dd if="$view" bs=1M status=none | sha256sum | cut -d' ' -f1)" "again, 1 MiB reads"
mkdir -p "$TMP/unmounted"
out=$("$MLFS" mount "$WS" "$TMP/unmounted" -o http_direct=2 2>&1)
expect_eq "2 mlfs: invalid mount option 'http_direct=2'" "$? $out" "a value other than 0 or 1"

test_case a_changed_file_gives_eio_and_an_event
printf 'changed on the server' >"$WWW/secret/data/changes.txt"
drop_caches
events_mark
expect_errno EIO cat "$D/web/1/files/secret/data/changes.txt"
expect_event "datasets/web/1/files/secret/data/changes.txt: .*changed since it was registered"

test_case not_found_and_server_errors_give_eio_and_events
rm "$WWW/secret/data/gone.txt"
events_mark
expect_errno EIO cat "$D/web/1/files/secret/data/gone.txt"
expect_event "datasets/web/1/files/secret/data/gone.txt: .*404"
touch "$WWW/flaky.500"
events_mark
expect_errno EIO cat "$D/web/1/files/flaky/f.txt"
expect_event "datasets/web/1/files/flaky/f.txt: .*500"
rm "$WWW/flaky.500"
expect_eq "flaky" "$(cat "$D/web/1/files/flaky/f.txt")" "fine again"

test_case a_stopped_server_gives_eio_within_seconds
nginx_stop
drop_caches
start=$(date +%s%N)
expect_errno EIO timeout 30 cat "$D/web/1/files/secret/data/sub/deep.txt"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
say "# EIO after $ms ms"
[ "$ms" -lt 10000 ] || fail "took $ms ms"

test_case a_hung_server_gives_eio_within_seconds
"$PY" - "$NGINX_PORT" <<-'EOF' &
	import socket, sys, time
	s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
	s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
	conns = []
	while True:
	    c, _ = s.accept(); conns.append(c)	# accept, never answer
	EOF
hung=$!
sleep 0.3
drop_caches
start=$(date +%s%N)
expect_errno EIO timeout 60 cat "$D/web/1/files/secret/data/small.csv"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
say "# EIO after $ms ms"
[ "$ms" -lt 15000 ] || fail "took $ms ms"
kill "$hung" 2>/dev/null
wait "$hung" 2>/dev/null

test_case the_secret_is_nowhere_but_the_credential_store
nginx_start "$NX" "$SECRET" "$NGINX_PORT" || fail "nginx again"
cat "$D/web/1/files/secret/data/small.csv" >/dev/null || fail "reads again"
expect_eq "600" "$(stat -c %a "$WS/credentials")" "credential store mode"
expect_eq "" "$(grep -rl -- "$SECRET" "$MNT" 2>/dev/null)" "nowhere in the mount (files included)"
expect_eq "" "$(grep -rl --exclude=credentials -- "$SECRET" "$WS" "$CACHE")" "nowhere in the workspace or the cache"
expect_eq "" "$(grep -l -- "$SECRET" "$LOG" "$TMP/reg.err" 2>/dev/null)" "nowhere in the log or messages"
expect_eq "" "$(grep -c -- "tok-" "$MNT/events" | grep -v '^0$')" "not in events"

test_done
