/**
 * `shadowfs status` says where reads were served from with the native fast path's reads counted
 * for the tier they came from (or the live file), not left out of the table.
 */
import t from 'tap';
import { servedLines } from '../../src/cli/commands/status';
import type { TierStatus } from '../../src/control/protocol';

const tier = (name: string, cls: string, health = 'healthy'): TierStatus => ({ name, class: cls, health, usedBytes: 0, capacityBytes: 1, costPerGiBMonth: 0.1 });

t.test('native reads count for the fast path tier and the live file, beside the redirector\'s', async (t) => {
  const lines = servedLines({
    served: [{ source: 'ssd', bytes: 4 * 1048576, reads: 1000 }, { source: 'live', bytes: 8192, reads: 2 }],
    // 3,000 native reads: a quarter of the extents they touched had no copy (the live file).
    fastPath: { hits: 3000, misses: 1002, errors: 0, liveHits: 25, copyHits: 75 },
    tiers: [tier('nvme', 'nvme'), tier('ssd', 'ssd')],
  });
  t.same(lines, [
    "reads served by (share of read requests, the native fast path's included):",
    '  nvme      56.2%       2250 reads: 2250 natively',
    '  ssd       25.0%       1000 reads: 1000 through the redirector (4.0 MiB)',
    '  live      18.8%        752 reads: 750 natively, 2 through the redirector (8.0 KiB)',
  ]);
});

t.test('no reads yet', async (t) => {
  t.same(servedLines({ served: [], fastPath: { hits: 0, misses: 0, errors: 0 }, tiers: [tier('nvme', 'nvme')] }).slice(1), ['  (no reads yet)']);
});

t.test('a failed fastest tier is not credited: the fast path maps the fastest usable one', async (t) => {
  const lines = servedLines({ served: [], fastPath: { hits: 10, misses: 0, errors: 0, copyHits: 1 }, tiers: [tier('nvme', 'nvme', 'failed'), tier('ssd', 'ssd')] });
  t.same(lines.slice(1), ['  ssd      100.0%         10 reads: 10 natively']);
});
