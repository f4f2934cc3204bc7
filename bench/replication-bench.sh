#!/usr/bin/env bash
# shadowfs replication benchmark (issue 3, speed), two measurements in one run:
#
#  1. Throughput: the shadow manager replicating a whole volume to an empty directory coverage
#     tier, against `cp -r` of the same data to a directory on the same disk. cp time is measured
#     from a cold page cache to cp's exit (and `sync` after it, reported beside it); shadowfs time
#     from the start of `shadowfs mount` to the first `status` (control socket, every 100 ms)
#     that says coverage 100%. Nothing is subtracted. Ratio = cp time / shadowfs time (≥ 0.8 wanted).
#     REPL_ROUNDS rounds, each cp and shadowfs back to back (alternating which goes first: on this
#     VM cp runs 3-4x faster right after another cp, whose freed pages are still backed by the host;
#     docs/benchmarks.md); the headline is the ratio of the total times over all rounds, which
#     averages as many such warm cps as cold ones when the rounds are even.
#  2. Foreground impact: fio 4 KiB random reads (1 job, psync, O_DIRECT) on one file of the volume
#     through the mount, (a) on a mount with the same (empty) tier and no coverage tier, and (b) on
#     a fresh mount with the coverage tier while the replication of the volume runs. Ratio = IOPS
#     (b) / (a) (≥ 0.8 wanted). Both read the same way: a coverage tier turns native live-file
#     reads off (src/cli/commands/mount.ts), so (a) runs with SHADOWFS_NO_NATIVE_LIVE_READS=1 and
#     uncopied extents go through JS on both. Reactive admission is off on both (--admit-after 1000000000), so
#     neither run reads from tier copies; the fio file sits in a subdirectory, which the coverage
#     scan reaches after the files of the top directory, so it is replicated last. The report
#     checks both: reads served from a tier during fio, and that replication was still running
#     when fio ended.
#
# Prints a Markdown table; with --append-docs (or REPL_APPEND_DOCS=1) also inserts it into
# docs/benchmarks.md under "Replication (issue 3)". Everything it mounts is unmounted on exit (also
# on Ctrl-C or failure); the data it made is removed on exit (the results stay).
#
# Needs: root (FUSE, drop_caches), fio, fusermount, node, and a built tree (make build: dist/).
# Knobs (environment):
#   REPL_BULK_FILES=4  REPL_BULK_SIZE=512M   the files replicated ahead of the fio file (fio units)
#   REPL_FG_SIZE=1G                         the fio file (replicated last; part of the volume too)
#   REPL_RUNTIME=8  REPL_RAMP=1             fio measured / warm-up seconds
#   REPL_COPY_RATE=10GiB                    --copy-rate (high enough not to limit)
#   REPL_EXTENT_SIZE=1MiB                   --extent-size
#   REPL_TIMEOUT=100                        seconds to wait for coverage 100% before giving up
#   REPL_ROUNDS=4                           throughput rounds (cp and shadowfs each; even: balanced order)
#   REPL_PHASES="throughput foreground cp-contention"   which measurements to run (cp-contention:
#                                           fio on the mount without coverage while a loop of plain
#                                           `cp` of the bulk files runs: what the disk alone costs)
#   BENCH_ROOT=.state/bench/replication     work directory (data, mounts, tier, state, results)
#   REPL_APPEND_DOCS=0                      1: insert the tables into docs/benchmarks.md
# Results: $BENCH_ROOT/results/<UTC time>/ (table.md, fio JSON, status samples), and results/latest.
# Exit status: 0 when every measurement that ran produced a number, 1 otherwise (phases left out of
# REPL_PHASES are reported as not run).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

APPEND_DOCS=${REPL_APPEND_DOCS:-0}
for arg in "$@"; do
  case $arg in
    --append-docs) APPEND_DOCS=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) printf 'replication-bench: unknown argument %s (--append-docs, --help)\n' "$arg" >&2; exit 2 ;;
  esac
done

BULK_FILES=${REPL_BULK_FILES:-4}
BULK_SIZE=${REPL_BULK_SIZE:-512M}
FG_SIZE=${REPL_FG_SIZE:-1G}
RUNTIME=${REPL_RUNTIME:-8}
RAMP=${REPL_RAMP:-1}
COPY_RATE=${REPL_COPY_RATE:-10GiB}
EXTENT_SIZE=${REPL_EXTENT_SIZE:-1MiB}
TIMEOUT=${REPL_TIMEOUT:-100}
ROUNDS=${REPL_ROUNDS:-4}
PHASES=${REPL_PHASES:-throughput foreground cp-contention}
ADMIT_OFF=1000000000
ROOT=$(mkdir -p "${BENCH_ROOT:-$REPO/.state/bench/replication}" && cd "${BENCH_ROOT:-$REPO/.state/bench/replication}" && pwd)

LIVE=$ROOT/live
FG_REL=fg/fg.dat # in a subdirectory: the coverage scan reaches it last
CP_DST=$ROOT/cp-copy
MNT=$ROOT/mnt
TIER=$ROOT/tier-hdd
STATE=$ROOT/state
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS=$ROOT/results/$STAMP
SHADOWFS=("$REPO/bin/shadowfs")
WATCH=(node "$REPO/dist/src/bench/replication-watch.js")

SHADOWFS_PID=
FIO_PID=
WATCH_PID=
CPLOOP_PID=

exec 3>&1
say() { printf '%s\n' "$*"; }
die() { printf 'replication-bench: %s\n' "$*" >&2; exit 1; }
now_ms() { date +%s%3N; }
is_mounted() { awk -v m="$1" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo; }
alive() { [[ -n $1 ]] && kill -0 "$1" 2>/dev/null; }
wait_gone() {
  local pid=$1 tenths=$2
  while alive "$pid" && ((tenths-- > 0)); do sleep 0.1; done
  ! alive "$pid"
}

# Cold page cache for every phase: both sides read the data from the disk.
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

stop_watch() {
  if alive "$WATCH_PID"; then
    kill -TERM "$WATCH_PID" 2>/dev/null || true
    wait_gone "$WATCH_PID" 30 || kill -KILL "$WATCH_PID" 2>/dev/null || true
  fi
  [[ -z $WATCH_PID ]] || wait "$WATCH_PID" 2>/dev/null || true
  WATCH_PID=
}

# A loop of `cp` of the bulk files to CP_DST, for the cp-contention reference; stopped by TERM
# (the trap ends the cp in flight too).
start_cp_loop() {
  mkdir -p "$CP_DST"
  (
    trap 'kill "$c" 2>/dev/null; wait "$c" 2>/dev/null; exit 0' TERM
    while :; do
      cp "$LIVE"/bulk.* "$CP_DST"/ &
      c=$!
      wait "$c"
      rm -f "$CP_DST"/bulk.*
    done
  ) &
  CPLOOP_PID=$!
}
stop_cp_loop() {
  if alive "$CPLOOP_PID"; then
    kill -TERM "$CPLOOP_PID" 2>/dev/null || true
    wait_gone "$CPLOOP_PID" 100 || kill -KILL "$CPLOOP_PID" 2>/dev/null || true
  fi
  [[ -z $CPLOOP_PID ]] || wait "$CPLOOP_PID" 2>/dev/null || true
  CPLOOP_PID=
  rm -rf "$CP_DST"
}

unmount_shadowfs() {
  if is_mounted "$MNT"; then
    timeout 40 "${SHADOWFS[@]}" unmount --timeout "${1:-20}" "$MNT" >/dev/null 2>&1 || true
    is_mounted "$MNT" && fusermount -uz "$MNT" 2>/dev/null || true
  fi
  if alive "$SHADOWFS_PID"; then
    kill -TERM "$SHADOWFS_PID" 2>/dev/null || true
    wait_gone "$SHADOWFS_PID" 50 || kill -KILL "$SHADOWFS_PID" 2>/dev/null || true
  fi
  SHADOWFS_PID=
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if alive "$FIO_PID"; then
    kill -INT "$FIO_PID" 2>/dev/null || true
    wait_gone "$FIO_PID" 100 || kill -KILL "$FIO_PID" 2>/dev/null || true
  fi
  stop_watch
  stop_cp_loop
  unmount_shadowfs 10
  if is_mounted "$MNT"; then
    say "replication-bench: WARNING: $MNT is still mounted (check /proc/self/mountinfo)" >&3
  else
    # The data this run made (a few GiB); results stay.
    rm -rf "$LIVE" "$CP_DST" "$TIER" "$STATE"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'say "replication-bench: interrupted, unmounting" >&3; exit 130' INT TERM

# Runs a command in the background and waits for it, so a signal reaches our trap at once.
run_bg() {
  "$@" &
  FIO_PID=$!
  local rc=0
  wait "$FIO_PID" || rc=$?
  FIO_PID=
  return "$rc"
}

# daemon_cpu FILE: the daemon's CPU time so far (its whole life, start-up included), as JSON.
daemon_cpu() {
  alive "$SHADOWFS_PID" || return 0
  local tck
  tck=$(getconf CLK_TCK)
  # /proc/PID/stat: fields 14 and 15 (after the parenthesised name) are utime and stime in ticks.
  sed 's/^.*) //' "/proc/$SHADOWFS_PID/stat" | awk -v t="$tck" '{ printf "{\"userS\": %.2f, \"sysS\": %.2f}\n", $12 / t, $13 / t }' >"$1"
}

# mount_shadowfs with|without [LOG]: a fresh state and an empty tier each time; sets SHADOWFS_PID.
# "without" reads uncopied extents through JS as "with" must (no native live-file reads).
mount_shadowfs() {
  local coverage=() env=() out
  if [[ $1 == with ]]; then coverage=(--coverage-tier hdd); else env=(SHADOWFS_NO_NATIVE_LIVE_READS=1); fi
  rm -rf "$STATE" "$TIER"
  mkdir -p "$TIER" "$MNT"
  if ! out=$(env "${env[@]}" timeout 90 "${SHADOWFS[@]}" mount --live "$LIVE" --state "$STATE" \
    --tier "hdd=$TIER,cap=64GiB,class=hdd" "${coverage[@]}" --copy-rate "$COPY_RATE" \
    --extent-size "$EXTENT_SIZE" --admit-after "$ADMIT_OFF" --daemon "$MNT" 2>&1); then
    printf '%s\n' "$out"
    return 1
  fi
  printf '%s\n' "$out"
  SHADOWFS_PID=$(sed -n 's/.*daemon pid \([0-9][0-9]*\).*/\1/p' <<<"$out" | head -1)
  is_mounted "$MNT" || { printf 'not in /proc/self/mountinfo after mount\n'; return 1; }
}

# --- preflight ----------------------------------------------------------------------------------
[[ $EUID -eq 0 ]] || die "run as root (FUSE mounts, dropping the page cache)"
for tool in fio fusermount node numfmt cp; do
  command -v "$tool" >/dev/null || die "$tool is not installed (make deps installs the Debian packages)"
done
for f in replication-watch replication-report fio-json; do
  [[ -f dist/src/bench/$f.js ]] || die "dist/ is not built: run make build (or node_modules/.bin/tsc -p tsconfig.json)"
done
[[ $BULK_FILES =~ ^[0-9]+$ ]] && ((BULK_FILES > 0)) || die "REPL_BULK_FILES must be a whole number above 0"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "REPL_ROUNDS must be a whole number ≥ 1, not '$ROUNDS'"
for ph in $PHASES; do
  case $ph in throughput | foreground | cp-contention) ;; *) die "unknown phase $ph in REPL_PHASES (throughput, foreground, cp-contention)" ;; esac
done
BULK_BYTES=$(numfmt --from=iec "$BULK_SIZE")
FG_BYTES=$(numfmt --from=iec "$FG_SIZE")
DATA_BYTES=$((BULK_FILES * BULK_BYTES + FG_BYTES))
avail=$(df -B1 --output=avail "$ROOT" | tail -1)
# live + the cp copy + the tier copy, with room to spare
((avail > 3 * DATA_BYTES + 2 * 1024 ** 3)) || die "not enough free space under $ROOT: need ~$((3 * DATA_BYTES / 1024 ** 2)) MiB + 2 GiB"

# A previous run that was killed hard may have left a mount behind.
unmount_shadowfs
rm -rf "$LIVE" "$CP_DST" "$TIER" "$STATE"
mkdir -p "$LIVE/$(dirname "$FG_REL")" "$MNT" "$RESULTS"
ln -sfn "$STAMP" "$ROOT/results/latest"
run_started=$(now_ms)

# --- the data: random bytes, laid out with fio --------------------------------------------------
layout() { # FILE SIZE
  fio --name=layout --filename="$1" --rw=write --bs=1M --size="$2" --ioengine=psync \
    --refill_buffers=1 --end_fsync=1 --output=/dev/null >/dev/null 2>"$RESULTS/layout.log" \
    || die "fio could not lay out $1: $(tail -2 "$RESULTS/layout.log")"
}
say "replication-bench: laying out $BULK_FILES x $BULK_SIZE + $FG_SIZE ($((DATA_BYTES / 1024 ** 2)) MiB) in $LIVE"
for ((i = 0; i < BULK_FILES; i++)); do layout "$LIVE/bulk.$i" "$BULK_SIZE"; done
layout "$LIVE/$FG_REL" "$FG_SIZE"
disk_dev=$(findmnt -no SOURCE -T "$ROOT" | head -1)
disk_fs=$(findmnt -no FSTYPE -T "$ROOT" | head -1)
RUN_DATE="$(date -u '+%Y-%m-%d %H:%M UTC')" RUN_HOST="$(hostname)" RUN_KERNEL="$(uname -r)" RUN_CPUS="$(nproc)" \
  RUN_DISK="$disk_dev ($disk_fs)" RUN_FIO="$(fio --version)" RUN_CP="$(cp --version | head -1 | sed 's/^cp (GNU coreutils)/GNU cp/')" \
  RUN_COMMIT="$(git describe --always --dirty 2>/dev/null || echo unknown)" DATA_BYTES=$DATA_BYTES \
  FILES="$BULK_FILES x $BULK_SIZE + $FG_REL $FG_SIZE" COPY_RATE=$COPY_RATE EXTENT_SIZE=$EXTENT_SIZE \
  RUNTIME=$RUNTIME RAMP=$RAMP FG_FILE="$FG_REL" FG_BYTES=$FG_BYTES LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)" PHASES="$PHASES" ROUNDS=$ROUNDS \
  node -e '
    const e = process.env, os = require("os");
    process.stdout.write(JSON.stringify({
      date: e.RUN_DATE, host: e.RUN_HOST, kernel: e.RUN_KERNEL, cpus: Number(e.RUN_CPUS),
      memoryGiB: Math.round(os.totalmem() / 2 ** 30), disk: e.RUN_DISK, fio: e.RUN_FIO, cp: e.RUN_CP,
      node: process.version, commit: e.RUN_COMMIT, dataBytes: Number(e.DATA_BYTES), files: e.FILES,
      copyRate: e.COPY_RATE, extentSize: e.EXTENT_SIZE, fioRuntime: Number(e.RUNTIME),
      fioRamp: Number(e.RAMP), fgFile: e.FG_FILE, fgSizeBytes: Number(e.FG_BYTES),
      loadAtStart: e.LOAD_START, phases: e.PHASES.split(/\s+/).filter(Boolean), rounds: Number(e.ROUNDS),
    }, null, 2) + "\n");' >"$RESULTS/run.json"

failed=0
n_steps=0
for ph in $PHASES; do case $ph in throughput) n_steps=$((n_steps + 2 * ROUNDS)) ;; foreground) n_steps=$((n_steps + 2)) ;; cp-contention) n_steps=$((n_steps + 1)) ;; esac; done
step=0
step() { step=$((step + 1)); say "[$step/$n_steps] $*"; }

# --- 1. throughput: cp -r, and shadowfs replication to an empty coverage tier ------------------------
# throughput_cp K: round K's cp -r (cold cache); cp.rK.json.
throughput_cp() {
  local k=$1 t0 t1 t2
  step "round $k: cp -r of the volume to $CP_DST (cold cache)"
  rm -rf "$CP_DST"
  drop_caches
  local timed=()
  # CPU time too: on a shared machine it moves less than wall time (user and system seconds).
  [[ -x /usr/bin/time ]] && timed=(/usr/bin/time -f '{"userS": %U, "sysS": %S}' -o "$RESULTS/cp.r$k.cpu.json")
  t0=$(now_ms)
  if "${timed[@]}" cp -r "$LIVE" "$CP_DST" 2>"$RESULTS/cp.r$k.log"; then
    t1=$(now_ms)
    sync
    t2=$(now_ms)
    printf '{"bytes": %d, "cpMs": %d, "syncMs": %d}\n' "$DATA_BYTES" $((t1 - t0)) $((t2 - t1)) >"$RESULTS/cp.r$k.json"
    say "      cp -r: $((t1 - t0)) ms, then sync: $((t2 - t1)) ms"
  else
    say "      cp failed: $(head -1 "$RESULTS/cp.r$k.log")"
    failed=1
  fi
  rm -rf "$CP_DST"
}

# throughput_shadowfs K: round K's replication to an empty coverage tier; repl.rK.*.
throughput_shadowfs() {
  local k=$1 t0 t1
  step "round $k: shadowfs: mount with an empty coverage tier, wait for coverage 100% (timeout ${TIMEOUT} s)"
  # The last round's tier goes before the clock starts (mount_shadowfs would remove it on the clock).
  rm -rf "$STATE" "$TIER"
  drop_caches
  t0=$(now_ms)
  if mount_shadowfs with >"$RESULTS/repl.r$k.mount.log" 2>&1; then
    t1=$(now_ms)
    printf '{"mountStartMs": %d, "mountedMs": %d}\n' "$t0" "$t1" >"$RESULTS/repl.r$k.json"
    "${WATCH[@]}" "$MNT" --until-covered --interval-ms 100 --timeout-s "$TIMEOUT" \
      --samples "$RESULTS/repl.r$k.samples.jsonl" >"$RESULTS/repl.r$k.watch.json" 2>"$RESULTS/repl.r$k.watch.log" &
    WATCH_PID=$!
    wait "$WATCH_PID" || failed=1
    WATCH_PID=
    daemon_cpu "$RESULTS/repl.r$k.cpu.json"
    node -e '
      const w = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")), t0 = Number(process.argv[2]);
      console.log(w.covered
        ? `      coverage 100% after ${w.coveredAtMs - t0} ms from mount start (${(w.last.copyBytes / 2 ** 20).toFixed(0)} MiB copied)`
        : `      no coverage 100%: stopped by ${w.stoppedBy} at ${(100 * (w.last ? w.last.coveredShare : 0)).toFixed(1)}%`)' \
      "$RESULTS/repl.r$k.watch.json" "$t0" || true
  else
    say "      mount failed: $(grep -m1 -E 'shadowfs:|Error' "$RESULTS/repl.r$k.mount.log" || tail -1 "$RESULTS/repl.r$k.mount.log")"
    failed=1
  fi
  unmount_shadowfs
}

# Each round measures both back to back; which goes first alternates, so neither always meets the
# disk right after the other's writeback.
phase_throughput() {
  local k
  for ((k = 1; k <= ROUNDS; k++)); do
    if ((k % 2 == 1)); then
      throughput_cp "$k"
      throughput_shadowfs "$k"
    else
      throughput_shadowfs "$k"
      throughput_cp "$k"
    fi
  done
}

# --- 2. foreground fio, without and with replication -----------------------------------------------
# fg_run NAME with|without|cp: mount fresh (coverage tier only for "with"), fio on the fio file,
# status samples before and after; "cp": a cp loop of the bulk files runs beside fio.
fg_run() {
  local name=$1 mode=$2 t0 t1 f0 f1 rc=0
  drop_caches
  t0=$(now_ms)
  if ! mount_shadowfs "$([[ $mode == with ]] && echo with || echo without)" >"$RESULTS/$name.mount.log" 2>&1; then
    printf '{"mountStartMs": %d, "mountedMs": 0, "fioStartMs": 0, "fioEndMs": 0, "error": "mount failed"}\n' "$t0" >"$RESULTS/$name.json"
    say "      mount failed: $(grep -m1 -E 'shadowfs:|Error' "$RESULTS/$name.mount.log" || tail -1 "$RESULTS/$name.mount.log")"
    unmount_shadowfs
    return 1
  fi
  t1=$(now_ms)
  if [[ $mode == with ]]; then
    "${WATCH[@]}" "$MNT" --interval-ms 100 --timeout-s $((RUNTIME + RAMP + 60)) \
      --samples "$RESULTS/$name.samples.jsonl" >"$RESULTS/$name.watch.json" 2>"$RESULTS/$name.watch.log" &
    WATCH_PID=$!
  fi
  [[ $mode == cp ]] && start_cp_loop
  timeout 20 "${WATCH[@]}" "$MNT" --once >"$RESULTS/$name.before.json" 2>>"$RESULTS/$name.watch.log" || rm -f "$RESULTS/$name.before.json"
  f0=$(now_ms)
  run_bg timeout -k 5 $((RUNTIME + RAMP + 20)) fio --name=fg-randread --filename="$MNT/$FG_REL" \
    --size="$FG_SIZE" --allow_file_create=0 --rw=randread --bs=4k --direct=1 --ioengine=psync --numjobs=1 \
    --time_based=1 --runtime="$RUNTIME" --ramp_time="$RAMP" --randrepeat=1 --norandommap=1 --invalidate=1 \
    --output-format=json --output="$RESULTS/$name.fio.json" >"$RESULTS/$name.fio.log" 2>&1 || rc=$?
  f1=$(now_ms)
  timeout 20 "${WATCH[@]}" "$MNT" --once >"$RESULTS/$name.after.json" 2>>"$RESULTS/$name.watch.log" || rm -f "$RESULTS/$name.after.json"
  stop_watch
  [[ $mode == cp ]] && stop_cp_loop
  local err=null
  if ((rc == 124 || rc == 137)); then
    err="\"fio still running $((RUNTIME + RAMP + 20)) s after it started: killed (hung I/O?)\""
  elif ((rc != 0)); then
    err="\"fio exited with status $rc\""
  fi
  printf '{"mountStartMs": %d, "mountedMs": %d, "fioStartMs": %d, "fioEndMs": %d, "error": %s}\n' \
    "$t0" "$t1" "$f0" "$f1" "$err" >"$RESULTS/$name.json"
  if ((rc == 0)); then
    say "      $(node dist/src/bench/fio-json.js "$RESULTS/$name.fio.json" || true)"
  else
    say "      FAILED: fio exited with status $rc"
  fi
  if ((rc == 124 || rc == 137)); then unmount_shadowfs 3; else unmount_shadowfs; fi
  return "$rc"
}

phase_foreground() {
  step "fio 4k randread on $FG_REL, mount without coverage tier (no replication)"
  fg_run fg-base without || failed=1
  step "fio 4k randread on $FG_REL, fresh mount with coverage tier (replication running)"
  fg_run fg-repl with || failed=1
}

phase_cp_contention() {
  step "fio 4k randread on $FG_REL, mount without coverage tier, cp of the bulk files running beside it"
  fg_run fg-cp cp || failed=1
}

for ph in $PHASES; do
  case $ph in
    throughput) phase_throughput ;;
    foreground) phase_foreground ;;
    cp-contention) phase_cp_contention ;;
  esac
done

# --- report ----------------------------------------------------------------------------------------
# How busy the machine was (others share it): load average now, and the share of the last minute
# in which some runnable task waited for a CPU.
{
  printf '{"loadAtEnd": "%s", ' "$(cut -d' ' -f1-3 /proc/loadavg)"
  printf '"cpuPressureAvg60": %s}\n' "$(sed -n 's/^some .*avg60=\([0-9.]*\).*/\1/p' /proc/pressure/cpu 2>/dev/null | grep . || echo null)"
} >"$RESULTS/load.json"
say ""
report_args=("$RESULTS")
((APPEND_DOCS)) && report_args+=(--append-docs "$REPO/docs/benchmarks.md")
node dist/src/bench/replication-report.js "${report_args[@]}" | tee "$RESULTS/table.md" || failed=1
say ""
say "replication-bench: $(( ($(now_ms) - run_started) / 1000 )) s; results in $RESULTS (numbers from one run on a shared machine)"
exit "$failed"
