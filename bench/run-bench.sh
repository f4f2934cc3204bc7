#!/usr/bin/env bash
# shadowfs benchmark (`make bench`): each fio job of fixtures/fio, with 1 and 4 jobs, side by side
# against the same files through three targets (BENCH_ROUNDS times, the targets back to back in
# each round, in rotating order; the table gives the median of the rounds' ratios):
#   raw       the plain directory (ext4), no FUSE
#   mergerfs  mergerfs over that directory: a mature C++ FUSE passthrough, the FUSE baseline
#   shadowfs  shadowfs over that directory, one nvme tier directory on the same disk
# and prints a Markdown table (IOPS, MiB/s, ratios, shadowfs daemon RSS, metadata bytes per
# extent). Everything it mounts is unmounted on exit, also on Ctrl-C or failure.
#
# Needs: root, fio, mergerfs, fusermount, and a built tree (`make build`: dist/).
# Knobs (environment):
#   BENCH_SIZE=256M            file per fio job (fio units: M = MiB)
#   BENCH_RUNTIME=7            measured seconds per run
#   BENCH_RAMP=1               unmeasured warm-up seconds per run
#   BENCH_JOBS="seq-read seq-write rand-read rand-write"   fixtures/fio/<name>.fio
#   BENCH_NUMJOBS_LIST="1 4"
#   BENCH_ROUNDS=3             rounds per row (1: one run per target, as before)
#   BENCH_TARGETS="raw mergerfs shadowfs"
#   BENCH_ROOT=.state/bench    work directory (live data, mounts, tier, state, results)
#   BENCH_TIER_CAP=2GiB        capacity of shadowfs's nvme tier
#   BENCH_EXTENT_SIZE=1MiB     BENCH_ADMIT_AFTER=2   shadowfs mount options
#   BENCH_WRITE_AROUND_AFTER=  shadowfs --write-around-after (empty: its default, 4MiB; "off")
#   BENCH_PRESETS="seq rand zipf shift failover"   `shadowfs bench` presets run at the end against
#                              the shadowfs mount (empty: none); BENCH_PRESET_SIZE, BENCH_PRESET_RUNTIME
#                              override their sizes and seconds per job (default: each preset's own)
# Results: $BENCH_ROOT/results/<UTC time>/ (fio JSON per run, table.md, preset.<name>.json), and
# results/latest.
# Exit status: 0 when every run produced a number, 1 when some failed (the table says which).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

SIZE=${BENCH_SIZE:-256M}
RUNTIME=${BENCH_RUNTIME:-7}
RAMP=${BENCH_RAMP:-1}
JOBS=${BENCH_JOBS:-seq-read seq-write rand-read rand-write}
NUMJOBS_LIST=${BENCH_NUMJOBS_LIST:-1 4}
ROUNDS=${BENCH_ROUNDS:-3}
TARGETS=${BENCH_TARGETS:-raw mergerfs shadowfs}
ROOT=$(mkdir -p "${BENCH_ROOT:-$REPO/.state/bench}" && cd "${BENCH_ROOT:-$REPO/.state/bench}" && pwd)
TIER_CAP=${BENCH_TIER_CAP:-2GiB}
PRESETS=${BENCH_PRESETS-seq rand zipf shift failover}
EXTENT_SIZE=${BENCH_EXTENT_SIZE:-1MiB}
ADMIT_AFTER=${BENCH_ADMIT_AFTER:-2}
WRITE_AROUND_AFTER=${BENCH_WRITE_AROUND_AFTER:-}
# cache.files=off: no page cache at the mergerfs layer (FUSE direct_io: every read and write goes
# to the daemon, as O_DIRECT makes them go to shadowfs); dropcacheonclose=false: mergerfs does not
# fadvise the underlying file away on close (shadowfs does not either); use_ino: real inode numbers;
# category.create=mfs: the documented basic setup (with one branch the policy does not matter).
MERGERFS_OPTS=${BENCH_MERGERFS_OPTS:-allow_other,use_ino,cache.files=off,dropcacheonclose=false,category.create=mfs,fsname=bench-mergerfs}
# O_DIRECT per target (fixtures/fio/seq-read.fio explains): raw and shadowfs get O_DIRECT so no
# kernel cache answers in front of them; mergerfs is opened buffered: with cache.files=off that
# already bypasses the kernel cache, and O_DIRECT would be passed on to the underlying file
# (writes then fail with EINVAL in mergerfs 2.33.5, and reads would skip the page cache that
# shadowfs, which never passes O_DIRECT down, does use).
DIRECT_raw=1
DIRECT_shadowfs=1
DIRECT_mergerfs=${BENCH_MERGERFS_DIRECT:-0}

LIVE=$ROOT/live
MNT_MERGERFS=$ROOT/mnt/mergerfs
MNT_SHADOWFS=$ROOT/mnt/shadowfs
TIER=$ROOT/tiers/nvme
STATE=$ROOT/state
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS=$ROOT/results/$STAMP
SHADOWFS=("$REPO/bin/shadowfs")

MERGERFS_PID=
SHADOWFS_PID=
FIO_PID=

# fd 3: the terminal (or wherever our stdout went), also while a function's output is redirected.
exec 3>&1
say() { printf '%s\n' "$*"; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

is_mounted() { awk -v m="$1" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo; }

alive() { [[ -n $1 ]] && kill -0 "$1" 2>/dev/null; }

# Waits up to $2 tenths of a second for pid $1 to exit.
wait_gone() {
  local pid=$1 tenths=$2
  while alive "$pid" && ((tenths-- > 0)); do sleep 0.1; done
  ! alive "$pid"
}

# unmount_shadowfs [SECONDS]: how long the daemon may take to exit before it is detached and killed.
unmount_shadowfs() {
  if is_mounted "$MNT_SHADOWFS"; then
    timeout 30 "${SHADOWFS[@]}" unmount --timeout "${1:-10}" "$MNT_SHADOWFS" >/dev/null 2>&1 || true
    is_mounted "$MNT_SHADOWFS" && fusermount -uz "$MNT_SHADOWFS" 2>/dev/null || true
  fi
  if alive "$SHADOWFS_PID"; then
    kill -TERM "$SHADOWFS_PID" 2>/dev/null || true
    wait_gone "$SHADOWFS_PID" 50 || kill -KILL "$SHADOWFS_PID" 2>/dev/null || true
  fi
  SHADOWFS_PID=
}

unmount_mergerfs() {
  if is_mounted "$MNT_MERGERFS"; then
    fusermount -u "$MNT_MERGERFS" 2>/dev/null || fusermount -uz "$MNT_MERGERFS" 2>/dev/null || true
  fi
  if alive "$MERGERFS_PID"; then
    wait_gone "$MERGERFS_PID" 50 || kill -TERM "$MERGERFS_PID" 2>/dev/null || true
  fi
  MERGERFS_PID=
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if alive "$FIO_PID"; then
    kill -INT "$FIO_PID" 2>/dev/null || true
    wait_gone "$FIO_PID" 100 || kill -KILL "$FIO_PID" 2>/dev/null || true
  fi
  unmount_shadowfs
  unmount_mergerfs
  if is_mounted "$MNT_SHADOWFS" || is_mounted "$MNT_MERGERFS"; then
    say "bench: WARNING: a mount is still present under $ROOT/mnt (check /proc/self/mountinfo)" >&3
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'say "bench: interrupted, unmounting" >&3; exit 130' INT TERM

# Runs a command in the background and waits for it, so a signal reaches our trap at once.
run_bg() {
  "$@" &
  FIO_PID=$!
  local rc=0
  wait "$FIO_PID" || rc=$?
  FIO_PID=
  return "$rc"
}

# --- preflight -------------------------------------------------------------------------------
[[ $EUID -eq 0 ]] || die "run as root (FUSE mounts with allow_other, dropping page cache)"
for tool in fio mergerfs fusermount node numfmt; do
  command -v "$tool" >/dev/null || die "$tool is not installed (make deps installs the Debian packages)"
done
for t in $TARGETS; do
  case $t in raw | mergerfs | shadowfs) ;; *) die "unknown target $t (raw, mergerfs, shadowfs)" ;; esac
done
for j in $JOBS; do [[ -f fixtures/fio/$j.fio ]] || die "no fio job fixtures/fio/$j.fio"; done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a whole number ≥ 1, not '$ROUNDS'"
for p in $PRESETS; do [[ -f fixtures/fio/presets/$p.fio ]] || die "no preset $p (fixtures/fio/presets/$p.fio)"; done
[[ -f dist/src/bench/report.js ]] || die "dist/ is not built: run make build (or node_modules/.bin/tsc -p tsconfig.json)"
SIZE_BYTES=$(numfmt --from=iec "$SIZE")
MAX_NUMJOBS=$(tr ' ' '\n' <<<"$NUMJOBS_LIST" | sort -n | tail -1)

# A previous run that was killed hard may have left mounts behind.
unmount_shadowfs
is_mounted "$MNT_MERGERFS" && { fusermount -uz "$MNT_MERGERFS" || true; }

mkdir -p "$LIVE" "$MNT_MERGERFS" "$MNT_SHADOWFS" "$RESULTS"
rm -rf "$STATE" "$TIER"
mkdir -p "$TIER"
ln -sfn "$STAMP" "$ROOT/results/latest"

# --- the data: laid out once on the raw directory, then read/written through every target --------
for ((i = 0; i < MAX_NUMJOBS; i++)); do
  f=$LIVE/bench.$i.0
  if [[ -e $f && $(stat -c %s "$f") -ne $SIZE_BYTES ]]; then rm -f "$f"; fi
done
say "bench: laying out $MAX_NUMJOBS x $SIZE in $LIVE (skipped for files already there)"
BENCH_DIR=$LIVE BENCH_DIRECT=0 BENCH_NUMJOBS=$MAX_NUMJOBS BENCH_SIZE=$SIZE BENCH_RUNTIME=1 BENCH_RAMP=0 \
  fio --create_only=1 --output=/dev/null fixtures/fio/seq-read.fio || die "fio could not lay out the bench files"

# --- run.json: what the table header says --------------------------------------------------------
disk_dev=$(findmnt -no SOURCE -T "$ROOT" | head -1)
disk_fs=$(findmnt -no FSTYPE -T "$ROOT" | head -1)
# Which way shadowfs takes its requests (mergerfs reads /dev/fuse either way): `make bench` allows io_uring.
case "$(cat /sys/module/fuse/parameters/enable_uring 2>/dev/null || echo none)" in
  Y) transport="FUSE over io_uring allowed" ;;
  N) transport="FUSE over io_uring not allowed: shadowfs on /dev/fuse" ;;
  *) transport="no FUSE over io_uring" ;;
esac
RUN_DATE="$(date -u '+%Y-%m-%d %H:%M UTC')" RUN_HOST="$(hostname)" RUN_KERNEL="$(uname -r) ($transport)" RUN_CPUS="$(nproc)" \
  RUN_DISK="$disk_dev ($disk_fs)" \
  RUN_FIO="$(fio --version)" RUN_MERGERFS="$(mergerfs --version 2>&1 | head -1 | awk '{print $NF}')" \
  RUN_COMMIT="$(git describe --always --dirty 2>/dev/null || echo unknown)" \
  SIZE=$SIZE RUNTIME=$RUNTIME RAMP=$RAMP TIER_CAP=$TIER_CAP EXTENT_SIZE=$EXTENT_SIZE ADMIT_AFTER=$ADMIT_AFTER \
  MERGERFS_OPTS=$MERGERFS_OPTS MERGERFS_DIRECT=$DIRECT_mergerfs JOBS=$JOBS NUMJOBS_LIST=$NUMJOBS_LIST TARGETS=$TARGETS ROUNDS=$ROUNDS \
  node -e '
    const e = process.env, os = require("os");
    const words = (s) => s.split(/\s+/).filter(Boolean);
    process.stdout.write(JSON.stringify({
      date: e.RUN_DATE, host: e.RUN_HOST, kernel: e.RUN_KERNEL, cpus: Number(e.RUN_CPUS),
      memoryGiB: Math.round(os.totalmem() / 2 ** 30), disk: e.RUN_DISK, fio: e.RUN_FIO,
      mergerfs: e.RUN_MERGERFS, node: process.version, commit: e.RUN_COMMIT, sizePerJob: e.SIZE,
      runtimeSeconds: Number(e.RUNTIME), rampSeconds: Number(e.RAMP), tierCapacity: e.TIER_CAP,
      extentSize: e.EXTENT_SIZE, admitAfter: e.ADMIT_AFTER, mergerfsOptions: e.MERGERFS_OPTS,
      mergerfsDirect: e.MERGERFS_DIRECT === "1",
      jobs: words(e.JOBS), numjobs: words(e.NUMJOBS_LIST).map(Number), targets: words(e.TARGETS),
      rounds: Number(e.ROUNDS),
    }, null, 2) + "\n");' >"$RESULTS/run.json"

# --- mounts ---------------------------------------------------------------------------------------
mount_mergerfs() {
  mergerfs -f -o "$MERGERFS_OPTS" "$LIVE" "$MNT_MERGERFS" >"$RESULTS/mergerfs.log" 2>&1 &
  MERGERFS_PID=$!
  local tenths=100
  until is_mounted "$MNT_MERGERFS"; do
    alive "$MERGERFS_PID" && ((tenths-- > 0)) || return 1
    sleep 0.1
  done
}

# Mounts shadowfs as a daemon; sets SHADOWFS_PID (so: do not call it in a subshell). The state
# directory persists across the runs of one bench, like a volume that stays in service.
mount_shadowfs() {
  local out
  if ! out=$(timeout 90 "${SHADOWFS[@]}" mount --live "$LIVE" --tier "nvme=$TIER,cap=$TIER_CAP,class=nvme" \
    --state "$STATE" --extent-size "$EXTENT_SIZE" --admit-after "$ADMIT_AFTER" \
    ${WRITE_AROUND_AFTER:+--write-around-after "$WRITE_AROUND_AFTER"} --daemon "$MNT_SHADOWFS" 2>&1); then
    printf '%s\n' "$out"
    return 1
  fi
  SHADOWFS_PID=$(sed -n 's/.*daemon pid \([0-9][0-9]*\).*/\1/p' <<<"$out" | head -1)
  if [[ -z $SHADOWFS_PID ]]; then
    SHADOWFS_PID=$(timeout 20 "${SHADOWFS[@]}" status --json "$MNT_SHADOWFS" 2>/dev/null \
      | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).pid)}catch{}})')
  fi
  is_mounted "$MNT_SHADOWFS" || { printf 'not in /proc/self/mountinfo after mount: %s\n' "$out"; return 1; }
}

# {pid, vmRssKiB, vmHwmKiB} of a daemon, from /proc/PID/status.
sample_daemon() {
  local pid=$1
  alive "$pid" || return 1
  awk -v pid="$pid" '/^VmRSS:/ { rss = $2 } /^VmHWM:/ { hwm = $2 }
    END { printf "{\"pid\": %d, \"vmRssKiB\": %d, \"vmHwmKiB\": %d}\n", pid, rss, hwm }' "/proc/$pid/status"
}

# Cold start for every layer: flush our files, then drop their clean pages (live data and tier).
cold_caches() {
  local files
  mapfile -t files < <(find "$LIVE" "$TIER" -type f 2>/dev/null)
  ((${#files[@]})) || return 0
  sync "${files[@]}" 2>/dev/null || true
  for f in "${files[@]}"; do dd if="$f" iflag=nocache count=0 status=none 2>/dev/null || true; done
}

# One line saying why a command failed, from its log: the first line that names an error (a
# shadowfs message, a Node "Error:", a fio error), else the last lines.
why() {
  local line
  line=$(grep -m1 -E '^shadowfs:|Error:|^fio: |error' "$1" 2>/dev/null || true)
  [[ -n $line ]] || line=$(tail -3 "$1" 2>/dev/null | tr '\n' ' ')
  printf '%s' "${line:0:300}"
}

# run_fio JOB NUMJOBS TARGET DIR STEM: one measured run; leaves STEM.fio.json or STEM.error.
run_fio() {
  local job=$1 nj=$2 target=$3 dir=$4 stem=$5 rc=0
  cold_caches
  local direct_var=DIRECT_$target
  BENCH_DIR=$dir BENCH_DIRECT=${!direct_var} BENCH_NUMJOBS=$nj BENCH_SIZE=$SIZE BENCH_RUNTIME=$RUNTIME BENCH_RAMP=$RAMP \
    run_bg timeout -k 5 $((RUNTIME + RAMP + 15)) fio --output-format=json --output="$stem.fio.json" \
    "fixtures/fio/$job.fio" >"$stem.fio.log" 2>&1 || rc=$?
  if ((rc == 124 || rc == 137)); then
    printf 'fio still running %s s after it started: killed (hung I/O?) %s\n' "$((RUNTIME + RAMP + 15))" \
      "$(grep -m1 '^fio: ' "$stem.fio.log" 2>/dev/null || true)" >"$stem.error"
    return 1
  elif ((rc != 0)); then
    printf 'fio exited with status %s: %s\n' "$rc" "$(why "$stem.fio.log")" >"$stem.error"
    return 1
  fi
}

progress() {
  local stem=$1
  if [[ -f $stem.error ]]; then
    printf 'FAILED: %s\n' "$(head -1 "$stem.error")"
  else
    node dist/src/bench/fio-json.js "$stem.fio.json" || true
  fi
}

# --- the runs -------------------------------------------------------------------------------------
[[ " $TARGETS " == *" mergerfs "* ]] && { mount_mergerfs || die "mergerfs did not mount: $(tail -3 "$RESULTS/mergerfs.log")"; }

n_runs=0
for _ in $JOBS; do for _ in $NUMJOBS_LIST; do for _ in $TARGETS; do n_runs=$((n_runs + ROUNDS)); done; done; done
read -r -a TARGET_LIST <<<"$TARGETS"
say "bench: $n_runs runs of ${RAMP}+${RUNTIME} s ($ROUNDS rounds per row); results in $RESULTS"
i=0
for job in $JOBS; do
  for nj in $NUMJOBS_LIST; do
    for ((round = 1; round <= ROUNDS; round++)); do
      # Rotate the order each round, so that no target always runs first (or right after another).
      for ((t = 0; t < ${#TARGET_LIST[@]}; t++)); do
        target=${TARGET_LIST[$(((t + round - 1) % ${#TARGET_LIST[@]}))]}
        i=$((i + 1))
        stem=$RESULTS/$job.nj$nj.$target.r$round
        printf '[%2d/%d] %-10s numjobs=%s round %s %-8s ' "$i" "$n_runs" "$job" "$nj" "$round" "$target"
        case $target in
          raw)
            run_fio "$job" "$nj" raw "$LIVE" "$stem" || true
            ;;
          mergerfs)
            run_fio "$job" "$nj" mergerfs "$MNT_MERGERFS" "$stem" || true
            sample_daemon "$MERGERFS_PID" >"$stem.daemon.json" || rm -f "$stem.daemon.json"
            ;;
          shadowfs)
            if ! mount_shadowfs >"$stem.mount.log" 2>&1; then
              printf 'mount failed: %s\n' "$(why "$stem.mount.log")" >"$stem.error"
              unmount_shadowfs
            else
              run_fio "$job" "$nj" shadowfs "$MNT_SHADOWFS" "$stem" || true
              if sample_daemon "$SHADOWFS_PID" >"$stem.daemon.json"; then
                timeout 20 "${SHADOWFS[@]}" status --json "$MNT_SHADOWFS" >"$stem.status.json" 2>>"$stem.fio.log" || rm -f "$stem.status.json"
              else
                rm -f "$stem.daemon.json"
                printf 'the shadowfs daemon (pid %s) died during the run; its log: %s\n' "$SHADOWFS_PID" \
                  "$(why "$STATE/shadowfs.log")" >>"$stem.error"
              fi
              # A daemon with a request stuck (fio was killed) gets 3 s to exit, not 10.
              if grep -qs 'killed' "$stem.error"; then unmount_shadowfs 3; else unmount_shadowfs; fi
              node dist/src/bench/extent-meta.js "$STATE" >"$stem.extents.json" 2>>"$stem.fio.log" || rm -f "$stem.extents.json"
            fi
            ;;
        esac
        progress "$stem"
      done
    done
  done
done

unmount_mergerfs
say ""
node dist/src/bench/report.js "$RESULTS" | tee "$RESULTS/table.md"
# --- shadowfs bench presets -----------------------------------------------------------------------
# The side-by-side table above compares shadowfs with mergerfs and the raw directory on the same
# jobs; the presets then exercise shadowfs alone on workloads that only make sense for it (a skewed
# hot set, one that moves, verified writes) and say which tier served the reads. They run here, on
# the same mount setup, rather than in a target of their own, so one `make bench` gives the whole
# picture; BENCH_PRESETS= skips them.
preset_args=()
[[ -n ${BENCH_PRESET_SIZE:-} ]] && preset_args+=(--size "$BENCH_PRESET_SIZE")
[[ -n ${BENCH_PRESET_RUNTIME:-} ]] && preset_args+=(--runtime "$BENCH_PRESET_RUNTIME")
if [[ -n $PRESETS ]]; then
  say ""
  say "bench: shadowfs bench presets ($PRESETS) against $MNT_SHADOWFS"
  if ! mount_shadowfs >"$RESULTS/presets.mount.log" 2>&1; then
    printf 'mount failed: %s\n' "$(why "$RESULTS/presets.mount.log")" | tee "$RESULTS/presets.error"
    unmount_shadowfs
  else
    for p in $PRESETS; do
      say ""
      if run_bg "${SHADOWFS[@]}" bench "$MNT_SHADOWFS" --preset "$p" "${preset_args[@]}" --json >"$RESULTS/preset.$p.json" 2>"$RESULTS/preset.$p.log"; then
        node -e 'const { formatBenchTable } = require("./dist/src/bench/bench-table.js");
          process.stdout.write(formatBenchTable(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))) + "\n");' \
          "$RESULTS/preset.$p.json" | tee "$RESULTS/preset.$p.md"
      else
        printf 'preset %s failed: %s\n' "$p" "$(why "$RESULTS/preset.$p.log")" | tee "$RESULTS/preset.$p.error"
      fi
    done
    unmount_shadowfs
  fi
fi

say ""
say "bench: results in $RESULTS (table.md, fio JSON per run, preset.<name>.json/.md); numbers from one run on a shared machine: compare ratios, not absolutes"
if compgen -G "$RESULTS/*.error" >/dev/null; then exit 1; fi
