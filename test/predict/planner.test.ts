import t from 'tap';
import { planPlacement, type PlannerExtent, type PlannerInput, type PlannerTier } from '../../src/predict/planner';

const MiB = 1024 * 1024;
const tier = (name: string, cls: PlannerTier['class'], capExtents: number, latencyUs: number, cost: number, healthy = true): PlannerTier => ({
  name,
  class: cls,
  capacityBytes: capExtents * MiB,
  latencyUs,
  costPerGiBMonth: cost,
  healthy,
});
const ext = (index: number, predictedAccesses: number, currentTiers: string[] = [], pinnedTier?: string): PlannerExtent => ({
  ref: { fileId: 'f', index },
  sizeBytes: MiB,
  predictedAccesses,
  currentTiers,
  pinnedTier,
});
const tiersOf = (out: ReturnType<typeof planPlacement>): string[][] => out.placements.map((p) => p.tiers);

t.test('fills the fastest tier with the hottest extents, the next tier with the next', async (t) => {
  const input: PlannerInput = {
    tiers: [tier('ssd', 'ssd', 2, 200, 0.1), tier('nvme', 'nvme', 1, 50, 0.25)],
    extents: [ext(0, 1), ext(1, 9), ext(2, 5), ext(3, 3), ext(4, 0)],
    liveLatencyUs: 5000,
  };
  const out = planPlacement(input);
  t.same(tiersOf(out), [[], ['nvme'], ['ssd'], ['ssd'], []]);
  t.equal(out.copies, 3);
  t.equal(out.tiers.nvme.usedBytes, MiB);
  t.ok(out.tiers.ssd.thresholdScore > 0, 'a full tier reports the score an extent must beat');
  t.same(planPlacement(input), out, 'pure: same input, same output');
});

t.test('hysteresis: a resident is only displaced by a clearly hotter extent', async (t) => {
  const tiers = [tier('nvme', 'nvme', 1, 50, 0.25)];
  const close = planPlacement({ tiers, extents: [ext(0, 1.0, ['nvme']), ext(1, 1.2)], liveLatencyUs: 5000, hysteresis: 0.25 });
  t.same(tiersOf(close), [['nvme'], []], '1.2 does not beat 1.0 x 1.25');
  t.equal(close.copies, 0);
  const clear = planPlacement({ tiers, extents: [ext(0, 1.0, ['nvme']), ext(1, 1.3)], liveLatencyUs: 5000, hysteresis: 0.25 });
  t.same(tiersOf(clear), [[], ['nvme']]);
  t.equal(clear.evictions, 1);
  // Flapping check: alternate which of two near-equal extents looks hotter; the plan never moves.
  let current = [['nvme'], [] as string[]];
  for (let round = 0; round < 10; round++) {
    const a = round % 2 === 0 ? 1.0 : 1.1;
    const b = round % 2 === 0 ? 1.1 : 1.0;
    const out = planPlacement({ tiers, extents: [ext(0, a, current[0]), ext(1, b, current[1])], liveLatencyUs: 5000 });
    t.equal(out.copies, 0, `round ${round}: no copy`);
    current = tiersOf(out);
  }
});

t.test('pins, unhealthy tiers, coverage and the copy budget', async (t) => {
  const tiers = [tier('nvme', 'nvme', 2, 50, 0.25), tier('ssd', 'ssd', 4, 200, 0.1, false), tier('hdd', 'hdd', 100, 4000, 0.03)];
  const out = planPlacement({
    tiers,
    coverageTier: 'hdd',
    extents: [ext(0, 10), ext(1, 8), ext(2, 0, [], 'nvme'), ext(3, 5, ['ssd'])],
    liveLatencyUs: 8000,
  });
  // The pin takes one nvme slot before heat is considered; ssd is unhealthy so extent 3 loses it.
  t.same(tiersOf(out), [['nvme', 'hdd'], ['hdd'], ['nvme', 'hdd'], ['hdd']]);
  t.equal(out.tiers.ssd, undefined, 'nothing is planned on an unhealthy tier');
  t.equal(out.tiers.hdd.extents, 4, 'the coverage tier holds every extent');

  const noCoverage = planPlacement({ tiers: [tier('nvme', 'nvme', 1, 50, 0.25, true), tier('s3', 'object', 100, 20000, 0.02, false), tier('hdd', 'hdd', 100, 4000, 0.03)], coverageTier: 's3', extents: [ext(0, 1)], liveLatencyUs: 8000 });
  t.same(tiersOf(noCoverage), [['nvme', 'hdd']], 'an unhealthy coverage tier is stood in for by the cheapest healthy one');
  t.match(noCoverage.warnings.join('\n'), /coverage tier s3 is unhealthy; using hdd/);

  const budget = planPlacement({ tiers: [tier('nvme', 'nvme', 3, 50, 0.25)], extents: [ext(0, 9), ext(1, 8), ext(2, 7), ext(3, 1, ['nvme'])], liveLatencyUs: 5000, maxNewCopies: 1 });
  t.same(tiersOf(budget), [['nvme'], [], [], ['nvme']], 'one new copy allowed: the hottest gets it, the resident keeps its place');

  const badPin = planPlacement({ tiers: [tier('nvme', 'nvme', 1, 50, 0.25)], extents: [ext(0, 1, [], 'optane')], liveLatencyUs: 5000 });
  t.match(badPin.warnings.join('\n'), /pin to unknown tier optane ignored/);
  t.throws(() => planPlacement({ tiers: [tier('a', 'ssd', 1, 1, 1), tier('a', 'ssd', 1, 1, 1)], extents: [] }), /duplicate tier name a/);
});

t.test('cold extents are not copied just because there is room', async (t) => {
  const out = planPlacement({ tiers: [tier('nvme', 'nvme', 10, 50, 0.25)], extents: [ext(0, 0.01), ext(1, 0.5), ext(2, 0, ['nvme'])], liveLatencyUs: 5000 });
  t.same(tiersOf(out), [[], ['nvme'], ['nvme']], 'below minPromoteAccesses no copy starts; a resident may stay while there is room');
});
