/**
 * The heat map's data: every extent the extent map knows, file by file in index order, folded
 * into at most MAX_CELLS cells so the page gets a bounded payload whatever the volume's size.
 * A cell is `extentsPerCell` consecutive extents; it shows the tier most of them are read from
 * (the fastest tier holding a fresh copy, or the live volume) and the hottest of a few of them.
 *
 * Walking a million extents takes a few hundred milliseconds, far too long to hold the event loop
 * that serves FUSE requests: `heatGridSteps` does the walk in slices (a generator the caller
 * resumes on later turns of the loop); `buildHeatGrid` runs it to the end at once.
 */
import type { ExtentRecords } from '../extents/extent-map';
import { isFresh } from '../extents/extent-map';

export const MAX_CELLS = 4096;
/** Extents whose heat is asked for per cell (heat prediction is not free). */
const HEAT_SAMPLES_PER_CELL = 4;
/** File boundaries labelled on the page; more would be unreadable anyway. */
const MAX_FILE_LABELS = 256;
/** Cell tier index of extents with no fresh copy on any tier. */
export const LIVE_ONLY = -1;

export interface ExtentSource {
  fileIds(): Iterable<string>;
  extents(fileId: string): ExtentRecords;
}

export interface HeatGridInput {
  extents: ExtentSource;
  /** Tiers fastest first: the extent map's tier id and the tier's name. */
  tiers: readonly { id: number; name: string }[];
  /** Predicted accesses of an extent over the planning horizon; absent: tier colours only. */
  heat?: (fileId: string, index: number) => number;
  /** What to call a file on the page (a path when known). */
  label: (fileId: string) => string;
}

export interface HeatGrid {
  tiers: string[];
  totalExtents: number;
  /** Files with extents (only the first MAX_FILE_LABELS are in `files`). */
  fileCount: number;
  extentsPerCell: number;
  /** Per cell: index into `tiers`, or LIVE_ONLY. */
  tier: number[];
  /** Per cell: the hottest sampled extent's predicted accesses; null without a heat source. */
  heat: number[] | null;
  /** Where each file's cells begin (the first MAX_FILE_LABELS files). */
  files: { label: string; firstCell: number; extents: number }[];
}

/** A file with more extents than this is ordered in slices (sorting a million keys takes ~250 ms). */
const SORT_AT_ONCE = 20_000;
const BUCKET_EXTENTS = 1_000;

/**
 * A file's extent indices in ascending order, as runs to be read one after the other. A big file's
 * keys are first spread over buckets by value (distinct integers: a dense file's buckets hold about
 * BUCKET_EXTENTS each), then each bucket is sorted when reached, pausing between steps.
 */
function* ascendingRuns(extents: Pick<ExtentRecords, 'size' | 'keys'>, extentsPerSlice: number): Generator<void, Float64Array[], void> {
  if (extents.size <= SORT_AT_ONCE) return [Float64Array.from(extents.keys()).sort()];
  let max = 0;
  let seen = 0;
  for (const k of extents.keys()) {
    if (k > max) max = k;
    if (++seen % extentsPerSlice === 0) yield;
  }
  const bucketCount = Math.ceil(extents.size / BUCKET_EXTENTS);
  const width = Math.floor(max / bucketCount) + 1;
  const buckets: number[][] = Array.from({ length: bucketCount }, () => []);
  for (const k of extents.keys()) {
    buckets[Math.min(bucketCount - 1, Math.floor(k / width))].push(k);
    if (++seen % extentsPerSlice === 0) yield;
  }
  const runs: Float64Array[] = [];
  for (const b of buckets) {
    runs.push(Float64Array.from(b).sort());
    seen += b.length;
    if (seen >= extentsPerSlice) {
      seen = 0;
      yield;
    }
  }
  return runs;
}

export function buildHeatGrid(input: HeatGridInput): HeatGrid {
  const steps = heatGridSteps(input, Number.POSITIVE_INFINITY);
  let r = steps.next();
  while (!r.done) r = steps.next();
  return r.value;
}

/** The same walk, pausing (yielding) after every `extentsPerSlice` extents. */
export function* heatGridSteps(input: HeatGridInput, extentsPerSlice: number): Generator<void, HeatGrid, void> {
  let sinceYield = 0;
  const rankOf = new Map(input.tiers.map((t, i) => [t.id, i]));
  const files = [...input.extents.fileIds()]
    .map((fileId) => ({ fileId, label: input.label(fileId), extents: input.extents.extents(fileId) }))
    .filter((f) => f.extents.size > 0)
    .sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
  const totalExtents = files.reduce((n, f) => n + f.extents.size, 0);
  yield;
  const perCell = Math.max(1, Math.ceil(totalExtents / MAX_CELLS));
  const grid: HeatGrid = { tiers: input.tiers.map((t) => t.name), totalExtents, fileCount: files.length, extentsPerCell: perCell, tier: [], heat: input.heat ? [] : null, files: [] };

  // The cell being filled: how many of its extents each tier serves (slot 0: live only, slot
  // i + 1: tier i) and its hottest sampled extent. Nothing is kept per extent: a million of
  // them would keep the garbage collector busy (the map's record of each dies young).
  const votes = new Uint32Array(input.tiers.length + 1);
  const sampleEvery = Math.max(1, Math.ceil(perCell / HEAT_SAMPLES_PER_CELL));
  let hottest = 0;
  let filled = 0;
  const close = (): void => {
    if (filled === 0) return;
    // Most votes wins; a tie goes to the faster tier, and a tier beats the live volume.
    let best = 0;
    for (let v = 1; v < votes.length; v++) if (votes[v] > votes[best] || (votes[v] > 0 && votes[v] === votes[best] && best === 0)) best = v;
    grid.tier.push(best === 0 ? LIVE_ONLY : best - 1);
    grid.heat?.push(hottest);
    votes.fill(0);
    hottest = 0;
    filled = 0;
  };
  for (const f of files) {
    if (grid.files.length < MAX_FILE_LABELS) grid.files.push({ label: f.label, firstCell: grid.tier.length + (filled > 0 ? 1 : 0), extents: f.extents.size });
    const runs = yield* ascendingRuns(f.extents, extentsPerSlice);
    for (const run of runs) {
      for (const index of run) {
        if (++sinceYield >= extentsPerSlice) {
          sinceYield = 0;
          yield;
        }
        // The map changes while the walk pauses: skip what went, stop before the payload outgrows its bound.
        const rec = f.extents.get(index);
        if (!rec || grid.tier.length >= 2 * MAX_CELLS) continue;
        let where = LIVE_ONLY;
        for (const c of rec.copies) {
          const r = rankOf.get(c.tierId);
          if (r !== undefined && isFresh(rec, c) && (where === LIVE_ONLY || r < where)) where = r;
        }
        votes[where + 1]++;
        if (input.heat && filled % sampleEvery === 0) hottest = Math.max(hottest, input.heat(f.fileId, index));
        if (++filled === perCell) close();
      }
    }
  }
  close();
  return grid;
}
