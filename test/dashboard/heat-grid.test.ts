/** The heat map's grid: the tier each extent is read from, folded into a bounded number of cells. */
import t from 'tap';
import type { ExtentRecord } from '../../src/extents/extent-map';
import { buildHeatGrid, ExtentSource, heatGridSteps, LIVE_ONLY, MAX_CELLS } from '../../src/dashboard/heat-grid';

const NVME = 3;
const HDD = 7;
const TIERS = [{ id: NVME, name: 'nvme' }, { id: HDD, name: 'hdd' }];

function source(files: Record<string, Map<number, ExtentRecord>>): ExtentSource {
  return { fileIds: () => Object.keys(files), extents: (id) => files[id] ?? new Map() };
}

const copy = (tierId: number, generation: number) => ({ tierId, generation, crc32: 0, sizeBytes: 65536 });

t.test('one cell per extent while they fit: the fastest fresh copy decides, stale copies do not count', async (t) => {
  const file = new Map<number, ExtentRecord>([
    [0, { generation: 2, copies: [copy(HDD, 2), copy(NVME, 2)] }],
    [1, { generation: 2, copies: [copy(HDD, 2), copy(NVME, 1)] }],
    [2, { generation: 5, copies: [copy(NVME, 4)] }],
    [3, { generation: 0, copies: [] }],
  ]);
  const other = new Map<number, ExtentRecord>([[9, { generation: 1, copies: [copy(NVME, 1)] }]]);
  const grid = buildHeatGrid({ extents: source({ f1: file, f0: other }), tiers: TIERS, label: (id) => `/data/${id}`, heat: (id, i) => (id === 'f1' ? i : 100) });
  t.same(grid.tiers, ['nvme', 'hdd']);
  t.equal(grid.extentsPerCell, 1);
  t.equal(grid.totalExtents, 5);
  // Files in label order: f0 first.
  t.same(grid.files, [{ label: '/data/f0', firstCell: 0, extents: 1 }, { label: '/data/f1', firstCell: 1, extents: 4 }]);
  t.same(grid.tier, [0, 0, 1, LIVE_ONLY, LIVE_ONLY], 'nvme, nvme (fastest fresh), hdd (nvme stale), live (only stale), live (no copies)');
  t.same(grid.heat, [100, 0, 1, 2, 3]);
});

t.test('a large volume is folded into at most MAX_CELLS cells, by majority tier', async (t) => {
  const files: Record<string, Map<number, ExtentRecord>> = {};
  let total = 0;
  for (let f = 0; f < 300; f++) {
    const m = new Map<number, ExtentRecord>();
    for (let i = 0; i < 100 + f; i++) {
      // Per file: the first 40 % on nvme, the rest on hdd.
      m.set(i, { generation: 1, copies: [copy(i < (100 + f) * 0.4 ? NVME : HDD, 1)] });
      total++;
    }
    files[`file-${String(f).padStart(3, '0')}`] = m;
  }
  let heatCalls = 0;
  const grid = buildHeatGrid({ extents: source(files), tiers: TIERS, label: (id) => id, heat: () => (heatCalls++, 1) });
  t.equal(grid.totalExtents, total);
  t.ok(grid.tier.length <= MAX_CELLS, `${grid.tier.length} cells for ${total} extents`);
  t.equal(grid.tier.length, Math.ceil(total / grid.extentsPerCell), 'every extent is in exactly one cell');
  t.equal(grid.extentsPerCell, Math.ceil(total / MAX_CELLS));
  const nvmeShare = grid.tier.filter((x) => x === 0).length / grid.tier.length;
  t.ok(nvmeShare > 0.35 && nvmeShare < 0.45, `cells mostly follow their extents' tiers (${nvmeShare.toFixed(2)} on nvme)`);
  t.ok(heatCalls <= grid.tier.length * 4, `heat is sampled, not asked of every extent (${heatCalls} calls)`);
  t.ok(grid.files.length <= 256, 'file labels are bounded');
  t.equal(grid.fileCount, 300);
  t.equal(grid.heat?.length, grid.tier.length);
});

t.test('without a heat source: tier colours only', async (t) => {
  const grid = buildHeatGrid({ extents: source({ a: new Map([[0, { generation: 0, copies: [copy(HDD, 0)] }]]) }), tiers: TIERS, label: (id) => id });
  t.equal(grid.heat, null);
  t.same(grid.tier, [1]);
  const empty = buildHeatGrid({ extents: source({}), tiers: TIERS, label: (id) => id });
  t.same([empty.tier, empty.totalExtents, empty.files, empty.fileCount], [[], 0, [], 0]);
});

t.test('in slices: a big file inserted out of order comes out in index order, with many pauses', async (t) => {
  const n = 60_000;
  const file = new Map<number, ExtentRecord>();
  // Out of order (a stride coprime with n), like a map filled by random reads.
  for (let k = 0; k < n; k++) {
    const i = (k * 7919) % n;
    file.set(i, { generation: 1, copies: [copy(i < n / 2 ? NVME : HDD, 1)] });
  }
  const input = { extents: source({ big: file }), tiers: TIERS, label: (id: string) => id };
  const steps = heatGridSteps(input, 1_000);
  let pauses = 0;
  let r = steps.next();
  while (!r.done) {
    pauses++;
    r = steps.next();
  }
  t.ok(pauses > n / 1_000, `the walk paused ${pauses} times`);
  const grid = r.value;
  t.same(grid, buildHeatGrid(input), 'the same grid as in one go');
  const half = grid.tier.length / 2;
  t.ok(grid.tier.slice(0, Math.floor(half)).every((x) => x === 0), 'the first half of the file (nvme) comes first');
  t.ok(grid.tier.slice(Math.ceil(half)).every((x) => x === 1), 'then the second (hdd)');
});
