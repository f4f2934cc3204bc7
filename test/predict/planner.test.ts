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
  t.same(tiersOf(out), [[], ['nvme'], ['nvme']], 'below minPromoteAccesses no copy starts; on the only (slowest) tier a resident may stay while there is room');
});

t.test('demotion: a cooling extent moves down a tier instead of being dropped, with hysteresis', async (t) => {
  // nvme costs 2.5x ssd: entry bar 0.125 accesses on nvme, 0.05 on ssd; residents keep a quarter of it.
  const tiers = [tier('nvme', 'nvme', 1, 100, 0.25), tier('ssd', 'ssd', 2, 250, 0.1)];
  const plan = (a: number, on: string[]): ReturnType<typeof planPlacement> => planPlacement({ tiers, extents: [ext(0, a, on)], liveLatencyUs: 8000 });
  t.same(tiersOf(plan(0.04, ['nvme'])), [['nvme']], 'above the nvme keep bar (0.03): stays');
  const cooled = plan(0.02, ['nvme']);
  t.same(tiersOf(cooled), [['ssd']], 'below it: goes to ssd');
  t.equal(cooled.placements[0].demotedFrom, 'nvme', 'as a move from nvme (not a re-read of the live volume)');
  t.equal(cooled.demotions, 1);
  t.equal(cooled.tiers.ssd.demotionsIn, 1);
  t.same(tiersOf(plan(0, ['nvme'])), [['ssd']], 'however cold: ssd is the slowest performance tier, it keeps what it has room for');
  t.same(tiersOf(plan(0, ['ssd'])), [['ssd']], '... until hotter extents need the room');
  t.same(tiersOf(plan(0.02, [])), [[]], 'but a newcomer that cold gets no copy anywhere');
  t.same(tiersOf(plan(0.1, ['ssd'])), [['ssd']], 'climbing back needs the full nvme entry bar (0.125)');
  t.same(tiersOf(plan(0.2, ['ssd'])), [['nvme']], '... and then it is promoted');

  // Heat wandering inside the band never moves it.
  let on = ['nvme'];
  for (const a of [0.04, 0.1, 0.035, 0.12, 0.05, 0.032]) {
    const out = plan(a, on);
    t.equal(out.copies, 0, `heat ${a}: no copy`);
    on = tiersOf(out)[0];
  }
  t.same(on, ['nvme']);
});

t.test('demotion: a resident displaced by a hotter extent moves to the slower tier', async (t) => {
  const tiers = [tier('nvme', 'nvme', 1, 100, 0.25), tier('ssd', 'ssd', 2, 250, 0.1)];
  const out = planPlacement({ tiers, extents: [ext(0, 1, ['nvme']), ext(1, 5)], liveLatencyUs: 8000 });
  t.same(tiersOf(out), [['ssd'], ['nvme']]);
  t.equal(out.placements[0].demotedFrom, 'nvme');
  t.equal(out.placements[1].demotedFrom, undefined, 'a newcomer is a plain copy');
  // A full slower tier: the displaced extent competes there like anyone (here: it loses and is dropped).
  const full = planPlacement({ tiers, extents: [ext(0, 1, ['nvme']), ext(1, 5), ext(2, 3, ['ssd']), ext(3, 3, ['ssd'])], liveLatencyUs: 8000 });
  t.same(tiersOf(full), [[], ['nvme'], ['ssd'], ['ssd']]);
  t.equal(full.demotions, 0);
});
