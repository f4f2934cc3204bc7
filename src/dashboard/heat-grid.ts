/**
 * The heat map's data: every extent the extent map knows, file by file in index order, folded
 * into at most MAX_CELLS cells so the page gets a bounded payload whatever the volume's size.
 * A cell is `extentsPerCell` consecutive extents; it shows the tier most of them are read from
 * (the fastest tier holding a fresh copy, or the live volume) and the hottest of a few of them.
 */
import type { ExtentRecord } from '../extents/extent-map';
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
  extents(fileId: string): ReadonlyMap<number, ExtentRecord>;
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

export function buildHeatGrid(input: HeatGridInput): HeatGrid {
  const rankOf = new Map(input.tiers.map((t, i) => [t.id, i]));
  const files = [...input.extents.fileIds()]
    .map((fileId) => ({ fileId, label: input.label(fileId), extents: input.extents.extents(fileId) }))
    .filter((f) => f.extents.size > 0)
    .sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
  const totalExtents = files.reduce((n, f) => n + f.extents.size, 0);
  const perCell = Math.max(1, Math.ceil(totalExtents / MAX_CELLS));
  const grid: HeatGrid = { tiers: input.tiers.map((t) => t.name), totalExtents, fileCount: files.length, extentsPerCell: perCell, tier: [], heat: input.heat ? [] : null, files: [] };

  // The cell being filled: how many of its extents each tier serves, and its sampled members.
  let votes = new Map<number, number>();
  let members: { fileId: string; index: number }[] = [];
  let filled = 0;
  const close = (): void => {
    if (filled === 0) return;
    let best = LIVE_ONLY;
    let bestVotes = -1;
    for (const [tier, n] of votes) if (n > bestVotes || (n === bestVotes && tier < best)) [best, bestVotes] = [tier, n];
    grid.tier.push(best);
    if (grid.heat && input.heat) {
      const step = Math.max(1, Math.ceil(members.length / HEAT_SAMPLES_PER_CELL));
      let hottest = 0;
      for (let i = 0; i < members.length; i += step) hottest = Math.max(hottest, input.heat(members[i].fileId, members[i].index));
      grid.heat.push(hottest);
    }
    votes = new Map();
    members = [];
    filled = 0;
  };
  for (const f of files) {
    if (grid.files.length < MAX_FILE_LABELS) grid.files.push({ label: f.label, firstCell: grid.tier.length + (filled > 0 ? 1 : 0), extents: f.extents.size });
    const indices = [...f.extents.keys()].sort((a, b) => a - b);
    for (const index of indices) {
      const rec = f.extents.get(index) as ExtentRecord;
      let where = LIVE_ONLY;
      for (const c of rec.copies) {
        const r = rankOf.get(c.tierId);
        if (r !== undefined && isFresh(rec, c) && (where === LIVE_ONLY || r < where)) where = r;
      }
      votes.set(where, (votes.get(where) ?? 0) + 1);
      members.push({ fileId: f.fileId, index });
      if (++filled === perCell) close();
    }
  }
  close();
  return grid;
}
