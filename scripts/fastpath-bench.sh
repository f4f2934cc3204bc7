#!/usr/bin/env bash
# Measures (prints, asserts nothing) the native read and write fast paths: fio 4k random reads,
# then 4k random writes, O_DIRECT, one job, on a file kept in tmpfs, read or written
#   raw       directly,
#   js        through a FUSE mount whose JS handler preads/pwrites the file (the JS round trip;
#             writes through libuv's thread pool, as the volume does),
#   mapped    through the same mount with every extent mapped (reads served on the FUSE thread),
#   native    the same with every extent marked writable and native writes on (writes served
#             on the FUSE thread),
#   mergerfs  through mergerfs, when installed, for reference (a C FUSE filesystem).
# Besides IOPS and latency it prints the filesystem process's CPU time per read (all threads),
# which varies less than latency when the machine is shared.
# Needs root, /dev/fuse, fio, and the compiled binding (node_modules/.bin/tsc -p tsconfig.json).
#
# Usage: scripts/fastpath-bench.sh [seconds per run, default 10] [file size MiB, default 256]
#
# On the 2-vCPU development VM (shared, load average ~7), 6 s runs, 128 MiB:
#   path                   IOPS  mean lat (us)  CPU us/read
#   raw                  217086            3.8            -
#   js                    11065           88.9         66.8
#   mapped                30843           31.8         11.3
#   js+direct_io          12125           81.1         57.1
#   mapped+direct_io      50005           19.3         10.8
#   mergerfs              20310           48.4         14.3
# (a second run: js 13.6k, mapped 43.6k, js+direct_io 14.5k, mapped+direct_io 34.0k, mergerfs
# 22.6k IOPS). Latency varies with the load; CPU per read is steadier: the fast path costs about a
# fifth of the JS round trip, a little less than mergerfs.
# Writes (O_DIRECT opens get FOPEN_DIRECT_IO by default), 3 s runs, 64 MiB, load average ~3:
#   js 9.1k IOPS (108 us, 90 CPU us/write), native 41.9k (23 us, 12.0), mergerfs 39.9k (24 us,
#   12.7); one run at load ~5 had native at 11.3k: latency follows the machine's load.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECONDS_PER_RUN=${1:-10}
SIZE_MIB=${2:-256}
BINDING=$ROOT/dist/src/fuse/binding.js
[ -f "$BINDING" ] || { echo "fastpath-bench: $BINDING missing: node_modules/.bin/tsc -p tsconfig.json" >&2; exit 1; }
command -v fio >/dev/null || { echo "fastpath-bench: fio is missing" >&2; exit 1; }

WORK=$(mktemp -d /tmp/shadowfs-fastpath-XXXXXX)
DATA=$(mktemp -d /dev/shm/shadowfs-fastpath-XXXXXX)
cleanup() {
  fusermount -uz "$WORK/mnt" 2>/dev/null || true
  fusermount -uz "$WORK/mergerfs" 2>/dev/null || true
  rm -rf "$WORK" "$DATA"
}
trap cleanup EXIT
mkdir -p "$WORK/mnt" "$WORK/mergerfs"
dd if=/dev/urandom of="$DATA/file" bs=1M count="$SIZE_MIB" status=none

fio_4k() { # file rw [pid of the serving process] -> "IOPS mean-latency-us cpu-us-per-op"
  local ticks0=0 ticks1=0
  [ -n "${3:-}" ] && ticks0=$(awk '{print $14 + $15}' "/proc/$3/stat")
  fio --name=fastpath --filename="$1" --rw="$2" --bs=4k --direct=1 --numjobs=1 --ioengine=psync \
    --runtime="$SECONDS_PER_RUN" --time_based --size="${SIZE_MIB}M" --output-format=json >"$WORK/fio.json"
  [ -n "${3:-}" ] && ticks1=$(awk '{print $14 + $15}' "/proc/$3/stat")
  node -e 'const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).jobs[0];
    const r = j.read.total_ios > 0 ? j.read : j.write;
    const cpuUs = (process.argv[2] * 1e6) / process.argv[3];
    console.log(Math.round(r.iops), (r.clat_ns.mean / 1000).toFixed(1), process.argv[2] > 0 ? (cpuUs / r.total_ios).toFixed(1) : "-")' \
    "$WORK/fio.json" "$((ticks1 - ticks0))" "$(getconf CLK_TCK)"
}

serve() { # mode (js|mapped|native) rw [extra -o options]: mount, fio through it, unmount; prints "IOPS latency cpu hits misses"
  node - "$BINDING" "$DATA/file" "$WORK/mnt" "$1" "$SECONDS_PER_RUN" "$SIZE_MIB" "$2" "${3:-}" <<'EOF'
const [binding, file, mnt, mode, seconds, sizeMiB, rw, extra] = process.argv.slice(2);
const fs = require('fs');
const { execFile } = require('child_process');
const { FuseMount, Errno } = require(binding);
const size = fs.statSync(file).size;
const fd = fs.openSync(file, 'r+');
const EXTENT = 1 << 20;
let fm;
fm = new FuseMount(mnt, {
  getattr: (p, cb) => p === '/' ? cb(0, { mode: 0o40755, uid: 0, gid: 0, size: 0, atime: 0, mtime: 0, ctime: 0 })
    : p === '/file' ? cb(0, { mode: 0o100644, uid: 0, gid: 0, size, atime: 0, mtime: 0, ctime: 0 }) : cb(Errno.ENOENT),
  open: (p, flags, cb) => {
    const fh = 1;
    if (mode !== 'js') fm.setFileMap(fh, EXTENT);
    if (mode === 'mapped') for (let k = 0; k * EXTENT < size; k++) fm.mapExtent(fh, k, fd, 0);
    if (mode === 'native') {
      fm.setFileWrites(fh, fd, size);
      fm.setExtentsWritable(fh, 0, Math.ceil(size / EXTENT) - 1, true);
      fm.setNativeWrites(true);
    }
    cb(0, fh);
  },
  // A JS read handler as cheap as it gets: a synchronous pread from tmpfs. Writes go through the
  // thread pool, as the volume's do (a synchronous pwrite would freeze JS on a hung volume).
  read: (p, fh, buf, len, pos, cb) => cb(fs.readSync(fd, buf, 0, len, pos)),
  write: (p, fh, buf, len, pos, cb) => fs.write(fd, buf, 0, len, pos, (err, n) => cb(err ? -5 : n)),
}, { maxReadBytes: 131072, options: extra ? extra.split(',') : [] });
fm.mount().then(() => {
  const cpu0 = process.cpuUsage();
  const args = ['--name=fastpath', `--filename=${mnt}/file`, `--rw=${rw}`, '--bs=4k', '--direct=1', '--numjobs=1',
    '--ioengine=psync', `--runtime=${seconds}`, '--time_based', `--size=${sizeMiB}M`, '--output-format=json'];
  execFile('fio', args, { maxBuffer: 1 << 24 }, async (err, out) => {
    if (err) throw err;
    const j = JSON.parse(out).jobs[0];
    const r = rw === 'randread' ? j.read : j.write;
    const cpu = process.cpuUsage(cpu0);
    const w = fm.nativeWriteStats();
    const s = rw === 'randread' ? fm.fastPathStats() : { hits: w.hits, misses: r.total_ios - w.hits };
    await fm.unmount();
    const cpuPerOp = (cpu.user + cpu.system) / (r.total_ios || 1);
    console.log(Math.round(r.iops), (r.clat_ns.mean / 1000).toFixed(1), cpuPerOp.toFixed(1), s.hits, s.misses);
  });
});
EOF
}

[ -n "$(command -v mergerfs)" ] && mergerfs -o cache.files=off "$DATA" "$WORK/mergerfs"
mergerfs_pid=$(pgrep -f "^mergerfs .*$WORK/mergerfs" | head -1 || true)
for rw in randread randwrite; do
  echo "fio 4k $rw, direct=1, numjobs=1, ${SECONDS_PER_RUN}s each, ${SIZE_MIB} MiB file in tmpfs"
  printf '%-16s %10s %14s %12s %10s %10s\n' path IOPS 'mean lat (us)' 'CPU us/op' hits misses
  read -r iops lat cpu <<<"$(fio_4k "$DATA/file" "$rw")"
  printf '%-16s %10s %14s %12s\n' raw "$iops" "$lat" "$cpu"
  if [ "$rw" = randread ]; then
    # Reads with the binding's defaults, and with -o direct_io (every open FOPEN_DIRECT_IO, as
    # mergerfs cache.files=off does; O_DIRECT opens get it by default now, so the rows agree).
    runs=("js" "mapped" "js direct_io" "mapped direct_io")
  else
    runs=("js" "native")
  fi
  for run_ in "${runs[@]}"; do
    read -r mode opts <<<"$run_"
    read -r iops lat cpu hits misses <<<"$(serve "$mode" "$rw" "${opts:-}")"
    printf '%-16s %10s %14s %12s %10s %10s\n' "$mode${opts:++$opts}" "$iops" "$lat" "$cpu" "$hits" "$misses"
  done
  if [ -n "$mergerfs_pid" ]; then
    read -r iops lat cpu <<<"$(fio_4k "$WORK/mergerfs/file" "$rw" "$mergerfs_pid")"
    printf '%-16s %10s %14s %12s\n' mergerfs "$iops" "$lat" "$cpu"
  fi
done
[ -n "$mergerfs_pid" ] && fusermount -u "$WORK/mergerfs"
true
