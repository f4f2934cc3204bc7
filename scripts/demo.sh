#!/usr/bin/env bash
# shadowfs demo (`make demo`): a small volume with two shadow tiers, an application-like workload
# run twice through the mount, and what shadowfs served from where. Under a minute; rerunnable
# (clears the previous run); unmounts on the way out, also on Ctrl-C or failure. Run as root.
#
#   DEMO_ROOT=./.state/demo   where everything lives (live data, tiers, metadata, mount point)
#   DEMO_RUNTIME=15           seconds per workload pass
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

DEMO=$(mkdir -p "${DEMO_ROOT:-$REPO/.state/demo}" && cd "${DEMO_ROOT:-$REPO/.state/demo}" && pwd)
RUNTIME=${DEMO_RUNTIME:-15}
LIVE=$DEMO/live
NVME=$DEMO/tiers/nvme
SSD=$DEMO/tiers/ssd
STATE=$DEMO/state
MNT=$DEMO/mnt
SHADOWFS=("$REPO/bin/shadowfs")
FILES=(orders.db customers.db inventory.db events-1.log events-2.log events-3.log)
FILE_MIB=16
DAEMON_PID=
FIO_PID=

if [[ -t 1 ]]; then BOLD=$'\033[1m' PLAIN=$'\033[0m'; else BOLD= PLAIN=; fi
step() { printf '\n%s==> %s%s\n' "$BOLD" "$*" "$PLAIN"; }
say() { printf '    %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

is_mounted() { awk -v m="$1" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo; }
alive() { [[ -n $1 ]] && kill -0 "$1" 2>/dev/null; }

unmount_demo() {
  if is_mounted "$MNT"; then
    timeout 60 "${SHADOWFS[@]}" unmount "$MNT" >/dev/null 2>&1 || true
    is_mounted "$MNT" && fusermount -uz "$MNT" 2>/dev/null || true
  fi
  if alive "$DAEMON_PID"; then
    kill -TERM "$DAEMON_PID" 2>/dev/null || true
    for _ in $(seq 50); do alive "$DAEMON_PID" || break; sleep 0.1; done
    alive "$DAEMON_PID" && kill -KILL "$DAEMON_PID" 2>/dev/null || true
  fi
  DAEMON_PID=
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  alive "$FIO_PID" && kill -INT "$FIO_PID" 2>/dev/null || true
  unmount_demo
  if ((rc != 0)); then
    printf '\ndemo: failed (exit %s); the mount was taken down.' "$rc" >&2
    [[ -f $STATE/shadowfs.log ]] && printf ' Last lines of %s:\n%s\n' "$STATE/shadowfs.log" "$(tail -5 "$STATE/shadowfs.log")" >&2
    printf '\n' >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'printf "\ndemo: interrupted\n" >&2; exit 130' INT TERM

[[ $EUID -eq 0 ]] || die "run as root (FUSE mounts)"
command -v fio >/dev/null || die "fio is not installed (make deps installs it)"
[[ -f dist/src/cli/main.js ]] || die "shadowfs is not built: run make build"

# Prints "<read IOPS> <mean read latency µs> <write IOPS>" from fio JSON.
fio_numbers() {
  node -e '
    const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).jobs[0];
    console.log(Math.round(j.read.iops), Math.round(j.read.clat_ns.mean / 1000), Math.round(j.write.iops));' "$1"
}

# Prints where reads were served from between two `status --json` snapshots (all of them if the
# first is "-"), one line per source, by number of reads (the demo's reads are all 4 KiB). Reads
# the native fast path answered straight from a tier copy are counted apart from the sources.
served_between() {
  node -e '
    const fs = require("fs");
    const load = (f) => (f === "-" ? { served: [], fastPath: { hits: 0 } } : JSON.parse(fs.readFileSync(f, "utf8")));
    const [a, b] = [load(process.argv[1]), load(process.argv[2])];
    const before = new Map(a.served.map((s) => [s.source, s.reads]));
    const rows = b.served.map((s) => ({ source: s.source, reads: s.reads - (before.get(s.source) ?? 0) }));
    const fast = (b.fastPath?.hits ?? 0) - (a.fastPath?.hits ?? 0);
    if (fast > 0) rows.push({ source: "tier copy via the native fast path", reads: fast });
    const total = rows.reduce((t, r) => t + r.reads, 0) || 1;
    for (const r of rows.sort((x, y) => y.reads - x.reads)) {
      console.log(`${((100 * r.reads) / total).toFixed(0).padStart(3)}%  ${r.source} (${r.reads} reads)`);
    }' "$1" "$2"
}

# --- 1. a fresh demo volume --------------------------------------------------------------------
step "Setting up a demo volume in $DEMO"
unmount_demo
if is_mounted "$MNT"; then die "$MNT is still mounted; unmount it first"; fi
rm -rf "$LIVE" "$DEMO/tiers" "$STATE" "$DEMO/pass-"*
mkdir -p "$LIVE" "$NVME" "$SSD" "$STATE" "$MNT"
for f in "${FILES[@]}"; do head -c $((FILE_MIB * 1024 * 1024)) /dev/urandom >"$LIVE/$f"; done
say "live volume   $LIVE: ${#FILES[@]} files of $FILE_MIB MiB (the slow, authoritative storage)"
say "nvme tier     $NVME: 64 MiB  (fastest shadow tier)"
say "ssd tier      $SSD: 256 MiB"
say "(the tiers are plain directories here; in production each is its own device)"

# --- 2. mount -----------------------------------------------------------------------------------
step "Mounting it with shadowfs at $MNT"
mount_out=$("${SHADOWFS[@]}" mount --live "$LIVE" \
  --tier "nvme=$NVME,cap=64MiB,class=nvme" --tier "ssd=$SSD,cap=256MiB,class=ssd" --coverage-tier ssd \
  --state "$STATE" --daemon "$MNT" 2>&1) || die "mount failed: $mount_out"
DAEMON_PID=$(sed -n 's/.*daemon pid \([0-9][0-9]*\).*/\1/p' <<<"$mount_out" | head -1)
say "$mount_out"
say "Applications now use $MNT; every read and write goes through shadowfs to the live volume,"
say "and extents (1 MiB chunks) that are read often get a shadow copy on the fastest tier. The ssd"
say "tier is the coverage tier: it gets a copy of every extent in the background, which is what lets"
say "the volume fail over to its shadows without losing anything."

# --- 3. the workload, twice ---------------------------------------------------------------------
workload() {
  local pass=$1
  DEMO_DIR=$MNT DEMO_FILES=$(IFS=:; echo "${FILES[*]}") DEMO_RUNTIME=$RUNTIME \
    fio --output-format=json --output="$DEMO/pass-$pass.fio.json" fixtures/fio/demo.fio >"$DEMO/pass-$pass.fio.log" 2>&1 &
  FIO_PID=$!
  wait "$FIO_PID" || die "fio failed in pass $pass: $(tail -3 "$DEMO/pass-$pass.fio.log")"
  FIO_PID=
  "${SHADOWFS[@]}" status --json "$MNT" >"$DEMO/pass-$pass.status.json" || die "shadowfs status failed after pass $pass"
  read -r r_iops r_lat w_iops < <(fio_numbers "$DEMO/pass-$pass.fio.json")
  say "pass $pass: $r_iops reads/s (mean $r_lat µs), $w_iops writes/s"
  say "reads in this pass were served by:"
  served_between "$([[ $pass == 1 ]] && echo - || echo "$DEMO/pass-$((pass - 1)).status.json")" "$DEMO/pass-$pass.status.json" \
    | sed 's/^/      /'
}

step "Pass 1: ${RUNTIME} s of an application-like workload (80% reads, 20% writes, 4 KiB, a hot set)"
say "Nothing is shadowed yet, so the first reads go to the live volume. shadowfs copies an extent to"
say "the nvme tier once it has been read twice, so the hot set moves over within the first seconds."
workload 1

step "Pass 2: the same workload again"
say "The hot extents have fresh shadow copies from the start now, so shadowfs reads them from nvme;"
say "only the cold tail of the data still comes from the live volume."
workload 2

# --- 4. a failover drill ------------------------------------------------------------------------
step "Failover drill: serve the volume from its shadows, then resync the live volume and fail back"
for _ in $(seq 600); do
  covered=$("${SHADOWFS[@]}" status --json "$MNT" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).coverage?.coveredShare ?? 0))')
  [[ $covered == 1 ]] && break
  sleep 0.2
done
[[ $covered == 1 ]] || die "the coverage tier did not reach 100% within 2 minutes"
say "coverage on ssd: 100% of the volume has a fresh shadow copy off the live volume"
say "$("${SHADOWFS[@]}" failover "$MNT" 2>&1)"
before=$(sha256sum <"$LIVE/orders.db" | cut -c1-16)
printf 'written while failed over\n' >"$MNT/drill.txt"
head -c 65536 /dev/urandom | dd of="$MNT/orders.db" bs=64k seek=3 conv=notrunc status=none
say "while failed over: reads and writes go to the shadows; the live volume is left alone"
say "  orders.db on the live volume unchanged: $([[ $(sha256sum <"$LIVE/orders.db" | cut -c1-16) == "$before" ]] && echo yes || echo NO)"
say "  drill.txt on the live volume: $([[ -e $LIVE/drill.txt ]] && echo present || echo 'not yet')"
"${SHADOWFS[@]}" health "$MNT" | sed -n '1,2p' | sed 's/^/    /'
failback_out=$("${SHADOWFS[@]}" failback "$MNT" 2>&1) || failback_out=$("${SHADOWFS[@]}" failback --force "$MNT" 2>&1) || die "failback failed: $failback_out"
say "$failback_out"
same=yes
for f in orders.db drill.txt; do cmp -s "$MNT/$f" "$LIVE/$f" || same=no; done
say "after resync the live volume holds what the mount shows (orders.db, drill.txt): $same"
[[ $same == yes ]] || die "the live volume differs from the mount after failback"

# --- 5. what happened ---------------------------------------------------------------------------
step "shadowfs status $MNT"
"${SHADOWFS[@]}" status "$MNT" | sed 's/^/    /'
say ""
say "Writes went to the live volume and to the shadow copies they touched (write-through), so the"
say "copies stay fresh and the live volume stays authoritative. \"evicted\": copies pushed out of the"
say "full 64 MiB nvme tier by hotter extents; \"stale dropped\": copies a write made stale (discarded, never served)."

# --- 5. unmount ----------------------------------------------------------------------------------
step "Unmounting"
"${SHADOWFS[@]}" unmount "$MNT" | sed 's/^/    /'
DAEMON_PID=
say "Done. The demo volume is kept in $DEMO for a look around; make demo starts it afresh."
