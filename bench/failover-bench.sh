#!/usr/bin/env bash
# shadowfs failover benchmark (issue 5; `make bench-failover`). Five scenarios, each on a fresh
# shadowfs mount whose live volume is a faultfs mount (fixtures/faultfs) of a backing directory,
# with an nvme tier and an hdd coverage tier, once coverage is 100%, while fio runs a verifying
# 4 KiB random read/write workload on the mount (fixtures/fio/failover-verify.fio):
#   (a) the live volume's latency ramps up (0 → 1 s over 30 s), then it returns EIO: the failover
#       must come before the first EIO; fio sees no error and no verify failure; worst op < 1 s
#   (b) the live volume hangs outright: the same
#   (c) it hangs and comes back after 10 s: resync completes, failback, and then the backing
#       directory holds exactly the bytes the mount shows (sha256 of every file)
#   (d) it hangs, and 5 s later the nvme tier (a faultfs mount too) returns EIO: still no error
#   (e) only its reads hang, 1.5 s into fio (while extents are still being copied from it)
# Per scenario: time to detect (fault → the live volume's health leaves healthy), time to fail over
# (fault → served from the shadows), worst fio op latency, fio errors and verify failures, resync
# throughput. Prints a Markdown table; with --docs also writes it into docs/failover.md (between
# its markers). The driver is fixtures/failover-bench/failover-bench.ts (docs/failover.md explains
# every number). Everything it mounts is unmounted on exit, also on Ctrl-C or failure.
#
# Needs: root (FUSE), fio, fusermount, node, and a built tree (make build: dist/).
# Knobs (environment):
#   FAILOVER_SCENARIOS=a,b,c,d,e   which scenarios
#   FAILOVER_RUNTIME=40          fio seconds per scenario (scenario a needs more than the ramp + 5)
#   FAILOVER_SIZE=64M            the fio file (fio units)
#   FAILOVER_EXTENT_SIZE=1MiB    the mount's extent size
#   FAILOVER_RAMP_SECONDS=30  FAILOVER_RAMP_TO_MS=1000   scenario a's ramp
#   BENCH_ROOT=.state/bench/failover   work directory (mounts, data, results)
#   FAILOVER_DOCS=0              1: as --docs
# Results: $BENCH_ROOT/results/<UTC time>/ (per scenario: fio JSON, health timeline, daemon log;
# table.md, results.json), and results/latest.
# Exit status: 0 when every check held, 1 otherwise.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

DOCS=()
[[ ${FAILOVER_DOCS:-0} == 1 ]] && DOCS=(--docs "$REPO/docs/failover.md")
for arg in "$@"; do
  case $arg in
    --docs) DOCS=(--docs "$REPO/docs/failover.md") ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) printf 'failover-bench: unknown argument %s (--docs, --help)\n' "$arg" >&2; exit 2 ;;
  esac
done

ROOT=$(mkdir -p "${BENCH_ROOT:-$REPO/.state/bench/failover}" && cd "${BENCH_ROOT:-$REPO/.state/bench/failover}" && pwd)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS=$ROOT/results/$STAMP
DRIVER=$REPO/dist/fixtures/failover-bench/failover-bench.js

die() { printf 'failover-bench: %s\n' "$*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || die "run as root (FUSE mounts)"
for tool in fio fusermount node; do
  command -v "$tool" >/dev/null || die "$tool is not installed (make deps installs the Debian packages)"
done
[[ -f $DRIVER && -f $REPO/dist/fixtures/faultfs/faultfs.js ]] || die "dist/ is not built: run make build (or node_modules/.bin/tsc -p tsconfig.json)"

# Whatever a run killed hard left mounted under the work directory (deepest first).
unmount_leftovers() {
  awk -v r="$ROOT/work/" 'index($5, r) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
    fusermount -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
}
unmount_leftovers
trap unmount_leftovers EXIT

mkdir -p "$RESULTS"
ln -sfn "$STAMP" "$ROOT/results/latest"
rc=0
node "$DRIVER" --root "$ROOT" --results "$RESULTS" \
  --scenarios "${FAILOVER_SCENARIOS:-a,b,c,d,e}" --runtime "${FAILOVER_RUNTIME:-40}" --size "${FAILOVER_SIZE:-64M}" \
  --extent-size "${FAILOVER_EXTENT_SIZE:-1MiB}" --ramp-seconds "${FAILOVER_RAMP_SECONDS:-30}" --ramp-to-ms "${FAILOVER_RAMP_TO_MS:-1000}" \
  "${DOCS[@]}" || rc=$?
printf 'failover-bench: results in %s\n' "$RESULTS"
exit "$rc"
