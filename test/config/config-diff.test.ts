import t from 'tap';
import { describeChange, diffConfigs } from '../../src/config/config-diff';
import { parseVolumeConfig } from '../../src/config/volume-config';

const raw = {
  live: '/srv/volume',
  stateDir: '/var/lib/shadowfs/v',
  coverageTier: 'hdd',
  tiers: [
    { name: 'nvme', path: '/mnt/nvme', capacity: '1GiB' },
    { name: 'hdd', path: '/mnt/hdd', capacity: '10GiB', costPerGiBMonth: 0.02 },
  ],
};
const parse = (over: Record<string, unknown>) => parseVolumeConfig({ ...raw, ...over });
const base = parse({});

t.test('the same file: no changes, nothing refused', async (t) => {
  t.same(diffConfigs(base, parse({})), { changes: [], refusals: [] });
});

t.test('live changes: tiers first (adds, capacities, costs, removals), then settings', async (t) => {
  const next = parse({
    copyRate: '50MiB',
    concurrentCopies: 2,
    admitAfterReads: 3,
    coverageScanInterval: '1m',
    watchLive: true,
    watchdog: { latencyLimitMs: '500ms', enabled: false },
    predictor: { planIntervalMs: '5s' },
    tiers: [
      { name: 'ssd', path: '/mnt/ssd', capacity: '4GiB' },
      { name: 'hdd', path: '/mnt/hdd', capacity: '20GiB', costPerGiBMonth: 0.01 },
    ],
  });
  const d = diffConfigs(base, next);
  t.same(d.refusals, []);
  t.same(d.changes.map((c) => c.kind), [
    'tier-add', 'tier-capacity', 'tier-cost', 'tier-remove',
    'copy-rate', 'concurrent-copies', 'admit-after-reads', 'coverage-scan-interval', 'watch-live', 'watchdog', 'predictor',
  ]);
  t.same(d.changes.map(describeChange), [
    'tier ssd added (ssd, /mnt/ssd, 4.0 GiB)',
    'tier hdd: capacity 10.0 GiB → 20.0 GiB',
    'tier hdd: cost per GiB-month 0.02 → 0.01',
    'tier nvme drained and removed',
    'copyRate 200.0 MiB/s → 50.0 MiB/s',
    'concurrentCopies 4 → 2',
    'admitAfterReads 2 → 3',
    'coverageScanInterval 300s → 60s',
    'watchLive false → true',
    'watchdog: enabled true → false, latencyLimitMs 1000 → 500',
    'predictor: planIntervalMs 2000 → 5000',
  ]);
});

t.test('what is fixed for the life of a mount is refused, each with its reason', async (t) => {
  const d = diffConfigs(base, parse({
    live: '/srv/other',
    stateDir: '/var/lib/shadowfs/w',
    extentSize: '64KiB',
    placement: 'predictive',
    coverageTier: 'nvme',
    tiers: [
      { name: 'nvme', path: '/mnt/nvme2', capacity: '1GiB' },
      { name: 'hdd', class: 'ssd', path: '/mnt/hdd', capacity: '10GiB', costPerGiBMonth: 0.02 },
    ],
  }));
  t.same(d.refusals, [
    'live: cannot change on a running mount; unmount and mount again (/srv/volume → /srv/other)',
    'stateDir: cannot change on a running mount; unmount and mount again (/var/lib/shadowfs/v → /var/lib/shadowfs/w)',
    'extentSize: fixed for a state directory (1048576 → 65536)',
    'placement: cannot change on a running mount; unmount and mount again (reactive → predictive)',
    'coverageTier: cannot change on a running mount; unmount and mount again (hdd → nvme)',
    'tiers.nvme.path: cannot change on a running mount; remove the tier and add one under another name (/mnt/nvme → /mnt/nvme2)',
    'tiers.hdd.class: cannot change on a running mount; remove the tier and add one under another name (hdd → ssd)',
  ]);
});

t.test('diffs against the tiers as they run, not as the file last said', async (t) => {
  // `tier set` made nvme 2GiB since; the file still says 1GiB: the file wins on the next reload.
  const running = { ...base, tiers: base.tiers.map((s) => (s.name === 'nvme' ? { ...s, capacityBytes: 2 * 1024 ** 3 } : s)) };
  t.same(diffConfigs(running, parse({})).changes.map(describeChange), ['tier nvme: capacity 2.0 GiB → 1.0 GiB']);
});
