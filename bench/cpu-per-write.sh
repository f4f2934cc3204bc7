#!/usr/bin/env bash
# CPU per request, shadowfs's daemon against mergerfs's (`make bench-cpu`): fio's rand-write job
# (4 KiB random writes, fixtures/fio/rand-write.fio) through both, mounted at once over the same
# files, in turn, CPU_ROUNDS times. Prints per run: IOPS, the daemon's CPU time per write (utime +
# stime of all its threads but the idle poller, /proc/PID/stat), the whole machine's (/proc/stat),
# the daemon's voluntary and involuntary context switches per write, and the CPU time of shadowfs's
# idle poller per write (SCHED_IDLE: time no other task wanted); then the median per-round ratio.
#
# Why: with 4 writers on this 2-CPU machine both daemons and fio saturate the CPUs, so the row's
# IOPS follow the daemon's CPU per request; this tells whether a difference is the daemon's own
# work or scheduling (context switches), which IOPS alone do not (docs/benchmarks.md, "the
# daemons' CPU per 4 KiB write"). Per-round ratios spread about as widely as IOPS ratios: use rounds.
#
# Needs: root, fio, mergerfs, fusermount, a built tree (`make build`). Uses $BENCH_ROOT/live (the
# files `make bench` lays out; laid out here if missing) and a tier and state of its own.
# Knobs (environment): CPU_ROUNDS=4, CPU_SECONDS=6, CPU_NUMJOBS=4, CPU_JOB=rand-write (a write job
# of fixtures/fio, e.g. seq-write), BENCH_ROOT=.state/bench,
# BENCH_SIZE=256M (as make bench).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
ROUNDS=${CPU_ROUNDS:-4}
SECONDS_PER_RUN=${CPU_SECONDS:-6}
NUMJOBS=${CPU_NUMJOBS:-4}
JOB=${CPU_JOB:-rand-write}
SIZE=${BENCH_SIZE:-256M}
ROOT=$(mkdir -p "${BENCH_ROOT:-$REPO/.state/bench}" && cd "${BENCH_ROOT:-$REPO/.state/bench}" && pwd)
LIVE=$ROOT/live
WORK=$ROOT/cpu
MNT_M=$WORK/mnt-mergerfs
MNT_S=$WORK/mnt-shadowfs
SHADOWFS=$REPO/bin/shadowfs
HZ=$(getconf CLK_TCK)

die() { printf 'bench-cpu: %s\n' "$*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || die "needs root (FUSE mounts)"
for tool in fio mergerfs fusermount node; do command -v "$tool" >/dev/null || die "$tool is missing (make deps)"; done
[[ -d $REPO/dist/src ]] || die "no build: make build"
[[ -f fixtures/fio/$JOB.fio ]] || die "no fio job fixtures/fio/$JOB.fio"

is_mounted() { awk -v m="$1" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo; }
MERGERFS_PID=
cleanup() {
  is_mounted "$MNT_S" && { timeout 30 "$SHADOWFS" unmount "$MNT_S" >/dev/null 2>&1 || fusermount -uz "$MNT_S" 2>/dev/null || true; }
  is_mounted "$MNT_M" && { fusermount -u "$MNT_M" 2>/dev/null || fusermount -uz "$MNT_M" 2>/dev/null || true; }
  [[ -n $MERGERFS_PID ]] && kill "$MERGERFS_PID" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

is_mounted "$MNT_M" || is_mounted "$MNT_S" && die "a mount is left under $WORK (fusermount -u it first)"
rm -rf "$WORK"
mkdir -p "$LIVE" "$MNT_M" "$MNT_S" "$WORK/tier"
printf 'bench-cpu: laying out %s x %s in %s (skipped for files already there)\n' "$NUMJOBS" "$SIZE" "$LIVE"
BENCH_DIR=$LIVE BENCH_DIRECT=0 BENCH_NUMJOBS=$NUMJOBS BENCH_SIZE=$SIZE BENCH_RUNTIME=1 BENCH_RAMP=0 \
  fio --create_only=1 --output=/dev/null fixtures/fio/rand-write.fio || die "fio could not lay out the files"

# As make bench mounts them (bench/run-bench.sh says why each option).
mergerfs -f -o allow_other,use_ino,cache.files=off,dropcacheonclose=false,category.create=mfs,fsname=bench-cpu-mergerfs \
  "$LIVE" "$MNT_M" >"$WORK/mergerfs.log" 2>&1 &
MERGERFS_PID=$!
out=$(timeout 90 "$SHADOWFS" mount --live "$LIVE" --tier "nvme=$WORK/tier,cap=2GiB,class=nvme" --state "$WORK/state" \
  --extent-size 1MiB --admit-after 2 --daemon "$MNT_S" 2>&1) || die "shadowfs did not mount: $out"
SHADOWFS_PID=$(sed -n 's/.*daemon pid \([0-9][0-9]*\).*/\1/p' <<<"$out" | head -1)
[[ -n $SHADOWFS_PID ]] || die "no daemon pid in: $out"
for _ in $(seq 100); do is_mounted "$MNT_M" && break; sleep 0.1; done
is_mounted "$MNT_M" || die "mergerfs did not mount: $(tail -3 "$WORK/mergerfs.log")"

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# CPU of shadowfs's idle poller thread (a SCHED_IDLE thread that keeps an idle CPU awake while one
# caller streams long requests; it uses only time nothing else wants): reported apart.
poll_ticks() {
  local t total=0
  for t in /proc/"$1"/task/*; do
    [[ $(cat "$t/comm" 2>/dev/null) == fuse-idle-poll ]] && total=$((total + $(awk '{ print $14 + $15 }' "$t/stat")))
  done
  echo "$total"
}
machine() { awk '/^cpu / { print $2 + $3 + $4 + $6 + $7 + $8 }' /proc/stat; }
switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt/ { v += $2 } /^nonvoluntary_ctxt/ { n += $2 } END { print v + 0, n + 0 }'; }

# run NAME DIR DIRECT PID: one fio run; prints "NAME IOPS daemon-us machine-us vcsw icsw poller-us"
# per write (daemon-us without the idle poller's).
run() {
  local t0 t1 m0 m1 v0 n0 v1 n1 p0 p1
  sync
  echo 3 >/proc/sys/vm/drop_caches
  t0=$(ticks "$4"); m0=$(machine); read -r v0 n0 < <(switches "$4"); p0=$(poll_ticks "$4")
  BENCH_DIR=$2 BENCH_DIRECT=$3 BENCH_NUMJOBS=$NUMJOBS BENCH_SIZE=$SIZE BENCH_RUNTIME=$SECONDS_PER_RUN BENCH_RAMP=0 \
    fio --output-format=json --output="$WORK/fio.json" "fixtures/fio/$JOB.fio" || die "fio failed on $1"
  t1=$(ticks "$4"); m1=$(machine); read -r v1 n1 < <(switches "$4"); p1=$(poll_ticks "$4")
  node -e 'const [name, hz, t, m, v, n, p] = process.argv.slice(1);
    const w = JSON.parse(require("fs").readFileSync(process.argv[8], "utf8")).jobs[0].write;
    const per = (x, scale) => ((x * scale) / w.total_ios).toFixed(2);
    console.log(name, Math.round(w.iops), per(t - p, 1e6 / hz), per(m, 1e6 / hz), per(v, 1), per(n, 1), per(p, 1e6 / hz));' \
    "$1" "$HZ" $((t1 - t0)) $((m1 - m0)) $((v1 - v0)) $((n1 - n0)) $((p1 - p0)) "$WORK/fio.json"
}

printf '%-6s %-9s %8s %16s %17s %9s %9s %17s\n' round target IOPS 'daemon µs/write' 'machine µs/write' 'vcsw/wr' 'icsw/wr' 'idle-poll µs/wr'
ratios=()
for r in $(seq "$ROUNDS"); do
  # Alternating order: neither target always runs on a machine the other just warmed.
  if ((r % 2)); then order="mergerfs shadowfs"; else order="shadowfs mergerfs"; fi
  declare -A cpu=()
  for target in $order; do
    if [[ $target == mergerfs ]]; then line=$(run mergerfs "$MNT_M" 0 "$MERGERFS_PID"); else line=$(run shadowfs "$MNT_S" 1 "$SHADOWFS_PID"); fi
    read -r name iops d m v n p <<<"$line"
    printf '%-6s %-9s %8s %16s %17s %9s %9s %17s\n' "$r" "$name" "$iops" "$d" "$m" "$v" "$n" "$p"
    cpu[$target]=$d
  done
  ratios+=("$(node -e 'console.log((process.argv[1] / process.argv[2]).toFixed(3))' "${cpu[shadowfs]}" "${cpu[mergerfs]}")")
done
node -e 'const r = process.argv.slice(1).map(Number).sort((a, b) => a - b); const mid = r.length >> 1;
  const med = r.length % 2 ? r[mid] : (r[mid - 1] + r[mid]) / 2;
  console.log(`shadowfs / mergerfs daemon CPU per write: median ${med.toFixed(2)}x (rounds: ${process.argv.slice(1).join(", ")})`);' "${ratios[@]}"
