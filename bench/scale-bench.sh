#!/usr/bin/env bash
# The daemon's memory and the metadata on disk with many extents (`make bench-scale`): a volume of
# SCALE_EXTENTS extents of SCALE_EXTENT_SIZE, every one copied to a coverage tier, then:
#   - the daemon's RSS once every extent has a copy (after the copying), and after a remount (the
#     map loaded from LevelDB: what a volume in service holds);
#   - how long that remount took to serve (it walks the tier and loads the map);
#   - the LevelDB directory's bytes per extent, and the floor (keys + values), as make bench reports.
# Issue 2's targets: RSS <= 300 MiB with 1 M extents, <= 64 B per extent on disk.
#
# The tier is a tmpfs, which keeps the run short: the daemon's memory and its metadata do not
# depend on where the copies live. The live files hold
# random bytes (a LevelDB value with a checksum of zeros would compress unlike real ones).
#
# Needs: root (FUSE, tmpfs), a built tree (`make build`). Knobs (environment): SCALE_EXTENTS=1000000,
# SCALE_EXTENT_SIZE=4096 (bytes, a power of two >= 4096), SCALE_FILES=64, SCALE_ROOT=.state/bench-scale.
# About 10 minutes at 1 M extents; RAM: the live files (4 GiB at the defaults) plus as much tmpfs.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
EXTENTS=${SCALE_EXTENTS:-1000000}
EXTENT_SIZE=${SCALE_EXTENT_SIZE:-4096}
FILES=${SCALE_FILES:-64}
ROOT=${SCALE_ROOT:-$REPO/.state/bench-scale}
LIVE=$ROOT/live
TIER=$ROOT/tier
STATE=$ROOT/state
MNT=$ROOT/mnt
SHADOWFS=$REPO/bin/shadowfs

die() { printf 'bench-scale: %s\n' "$*" >&2; exit 1; }
say() { printf 'bench-scale: %s\n' "$*"; }
[[ $(id -u) == 0 ]] || die "needs root (FUSE, tmpfs)"
[[ -d $REPO/dist/src ]] || die "no build: make build"
[[ $EXTENTS =~ ^[0-9]+$ && $EXTENTS -ge $FILES ]] || die "SCALE_EXTENTS must be a number of at least SCALE_FILES ($FILES)"
((EXTENT_SIZE >= 4096 && (EXTENT_SIZE & (EXTENT_SIZE - 1)) == 0)) || die "SCALE_EXTENT_SIZE must be a power of two of at least 4096"

is_mounted() { awk -v m="$1" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo; }
cleanup() {
  is_mounted "$MNT" && { timeout 120 "$SHADOWFS" unmount "$MNT" >/dev/null 2>&1 || fusermount -uz "$MNT" 2>/dev/null || true; }
  is_mounted "$TIER" && umount "$TIER" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

is_mounted "$MNT" && die "$MNT is mounted (shadowfs unmount it first)"
is_mounted "$TIER" && umount "$TIER"
rm -rf "$ROOT"
mkdir -p "$LIVE" "$TIER" "$MNT"
BYTES=$((EXTENTS * EXTENT_SIZE))
PER_FILE=$(((EXTENTS / FILES) * EXTENT_SIZE))
mount -t tmpfs -o "size=$((BYTES / 1048576 + 256))m" shadowfs-bench-scale "$TIER"
say "laying out $EXTENTS extents of $EXTENT_SIZE B in $FILES files ($((BYTES / 1048576)) MiB of random bytes)"
for i in $(seq "$FILES"); do
  head -c "$PER_FILE" /dev/urandom >"$LIVE/f$i"
done
EXTENTS=$((PER_FILE / EXTENT_SIZE * FILES))
cat >"$ROOT/volume.json" <<JSON
{ "live": "$LIVE", "stateDir": "$STATE", "extentSize": $EXTENT_SIZE,
  "tiers": [ { "name": "hdd", "class": "hdd", "path": "$TIER", "capacity": "$((BYTES / 1048576 + 128))MiB" } ],
  "coverageTier": "hdd", "coverageScanInterval": "1s", "watchdog": { "enabled": false } }
JSON

# Sets PID (the daemon's) and MOUNT_SECONDS (until the mount serves).
mount_volume() {
  local t0 out
  t0=$(date +%s.%N)
  out=$("$SHADOWFS" mount --config "$ROOT/volume.json" --daemon "$MNT" 2>&1) || die "mount failed: $out"
  MOUNT_SECONDS=$(node -e 'console.log((Date.now() / 1000 - process.argv[1]).toFixed(1))' "$t0")
  PID=$(sed -n 's/.*daemon pid \([0-9][0-9]*\).*/\1/p' <<<"$out" | head -1)
  [[ -n $PID ]] || die "no daemon pid in: $out"
}
rss_mib() { awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
hwm_mib() { awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
covered() { "$SHADOWFS" status --json "$MNT" | node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).coverage?.coveredShare ?? 0))'; }

mount_volume
say "copying every extent to the coverage tier (a tmpfs)"
start=$(date +%s)
while :; do
  share=$(covered)
  node -e 'const [s, t, r] = process.argv.slice(1); const w = 30, n = Math.round(s * w);
    process.stdout.write(`\r  [${"#".repeat(n)}${" ".repeat(w - n)}] ${(s * 100).toFixed(1)}%  ${t} s  RSS ${r} MiB `)' "$share" $(($(date +%s) - start)) "$(rss_mib "$PID")"
  [[ $share == 1 ]] && break
  sleep 5
done
echo
COPIED_RSS=$(rss_mib "$PID")
COPIED_HWM=$(hwm_mib "$PID")
COPY_SECONDS=$(($(date +%s) - start))
"$SHADOWFS" unmount "$MNT" >/dev/null
META=$(node dist/src/bench/extent-meta.js "$STATE")

mount_volume
# Its start-up work (the coverage scan finds nothing to do) settles first.
sleep 20
REMOUNT_RSS=$(rss_mib "$PID")
REMOUNT_HWM=$(hwm_mib "$PID")
"$SHADOWFS" unmount "$MNT" >/dev/null

node -e '
  const [extents, size, copySec, copiedRss, copiedHwm, mountSec, rss, hwm, meta] = process.argv.slice(1);
  const m = JSON.parse(meta);
  console.log(`\n${m.extentsWithCopies} extents of ${size} B with a copy (asked for ${extents}); copied in ${copySec} s`);
  console.log("| measure | value | target |");
  console.log("| --- | --- | --- |");
  console.log(`| daemon RSS after a remount (peak) | ${rss} MiB (${hwm}) | <= 300 MiB at 1 M extents |`);
  console.log(`| daemon RSS once every extent was copied (peak) | ${copiedRss} MiB (${copiedHwm}) | |`);
  console.log(`| remount until it serves | ${mountSec} s | |`);
  console.log(`| LevelDB directory per extent | ${m.dirBytesPerExtent} B (${m.dirBytes} B) | <= 64 B |`);
  console.log(`| keys + values per extent (the floor) | ${m.payloadBytesPerExtent} B | |`);
' "$EXTENTS" "$EXTENT_SIZE" "$COPY_SECONDS" "$COPIED_RSS" "$COPIED_HWM" "$MOUNT_SECONDS" "$REMOUNT_RSS" "$REMOUNT_HWM" "$META"
