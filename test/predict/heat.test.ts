import t from 'tap';
import { PredictionEngine } from '../../src/predict/engine';
import { WorkloadHistory } from '../../src/predict/history';
import { applyHint, applyPin, removePin } from '../../src/predict/hints';
import { planPlacement, type PlannerExtent } from '../../src/predict/planner';
import { seededRandom } from '../../src/util/seeded-random';

const MiB = 1024 * 1024;
const DAY = 86_400e6;
const at = (day: number, h: number, m: number, s = 0): number => day * DAY + (h * 3600 + m * 60 + s) * 1e6;

function engine(): PredictionEngine {
  return new PredictionEngine(WorkloadHistory.inMemory(), { extentSizeBytes: MiB, random: () => 0.5 });
}

t.test('an extent read every night at 02:00 is worth staging at 01:59, not before', async (t) => {
  const e = engine();
  const ref = { fileId: 'db', index: 42 };
  // Some daytime noise elsewhere so time moves on, and the nightly read.
  for (let d = 0; d < 4; d++) {
    for (let h = 0; h < 24; h += 3) e.recordExtentAccess({ fileId: 'db', index: 1000 + h }, at(d, h, 30));
    e.recordExtentAccess(ref, at(d, 2, 0));
    e.tick(at(d, 23, 0));
  }
  t.ok(e.predict(ref, at(4, 1, 0)) < 0.05, `at 01:00 it is cold (${e.predict(ref, at(4, 1, 0)).toFixed(4)})`);
  t.ok(e.predict(ref, at(4, 1, 58, 30)) < 0.05, 'at 01:58:30 still not');
  t.ok(e.predict(ref, at(4, 1, 59, 5)) > 0.5, `at 01:59 it is worth its run (${e.predict(ref, at(4, 1, 59, 5)).toFixed(2)})`);
  const stats = e.history.extents.get('db', 42);
  const due = stats ? (e.heat.dueUs(stats, at(4, 1, 0)) ?? 0) : 0;
  t.ok(due >= at(4, 1, 58, 55) && due <= at(4, 1, 59, 5), `due at ${((due % DAY) / 60e6).toFixed(2)} min past midnight`);
  t.ok(e.takeDue(at(4, 1, 59, 1)).some((r) => r.index === 42), 'the due queue hands it out at 01:59');
  t.notOk(e.takeDue(at(4, 1, 59, 30)).some((r) => r.index === 42), 'once per run');
  // Right after the read it is "between runs" again: cold, it will be staged before the next one.
  e.recordExtentAccess(ref, at(4, 2, 0));
  t.ok(e.predict(ref, at(4, 2, 10)) < 0.05, 'cold again ten minutes after its run');
});

t.test('hints and pins change the prediction and the plan', async (t) => {
  const e = engine();
  const hot = { fileId: 'f', index: 0 };
  const cold = { fileId: 'f', index: 100 };
  for (let i = 0; i < 30; i++) e.recordExtentAccess(hot, i * 2e6);
  e.recordExtentAccess(cold, 1e6);
  const now = 61e6;
  const plan = (): string[][] => {
    const extents: PlannerExtent[] = [hot, cold].map((ref) => ({
      ref,
      sizeBytes: MiB,
      predictedAccesses: e.predict(ref, now),
      currentTiers: [],
      pinnedTier: e.history.hints.effect(ref.fileId, ref.index, now).pinnedTier,
    }));
    const out = planPlacement({ tiers: [{ name: 'nvme', class: 'nvme', capacityBytes: MiB, latencyUs: 50, costPerGiBMonth: 0.25, healthy: true }], extents, liveLatencyUs: 5000 });
    return out.placements.map((p) => p.tiers);
  };
  t.same(plan(), [['nvme'], []], 'by heat alone the hot extent wins');

  applyHint(e.history, { kind: 'willneed', fileId: 'f', fromIndex: 100, toIndex: 199, expectedAccesses: 50 }, now);
  t.equal(e.predict(cold, now), 50, 'willneed raises the prediction');
  t.same(plan(), [[], ['nvme']], 'and wins the fast tier');
  t.ok(e.planningCandidates(now).some((r) => r.index === 150), 'hinted extents never seen become candidates');

  applyHint(e.history, { kind: 'dontneed', fileId: 'f', fromIndex: 100, toIndex: 100 }, now + 1);
  t.equal(e.predict(cold, now + 2), 0, 'dontneed (given later) wins over willneed');

  applyPin(e.history, { fileId: 'f', fromIndex: 100, toIndex: 100, tier: 'nvme' }, now);
  t.same(plan(), [[], ['nvme']], 'a pin places the extent regardless of heat');
  t.ok(removePin(e.history, { fileId: 'f', fromIndex: 100, toIndex: 100 }));
  t.same(plan(), [['nvme'], []], 'unpinned: back to heat');

  applyHint(e.history, { kind: 'random', fileId: 'seq' }, now);
  for (let i = 0; i < 10; i++) t.same(e.recordExtentAccess({ fileId: 'seq', index: i }, now + i * 1000).readahead, [], 'random hint: no readahead');
  applyHint(e.history, { kind: 'sequential', fileId: 'seq2' }, now);
  e.recordExtentAccess({ fileId: 'seq2', index: 0 }, now);
  t.ok(e.recordExtentAccess({ fileId: 'seq2', index: 1 }, now + 1000).readahead.length >= 8, 'sequential hint: full readahead at once');
  t.throws(() => applyHint(e.history, { kind: 'periodic', fileId: 'x' }, now), /periodic hint needs periodUs/);
});

t.test('a periodic hint stages a range before its first run', async (t) => {
  const e = engine();
  const ref = { fileId: 'report', index: 3 };
  applyHint(e.history, { kind: 'periodic', fileId: 'report', fromIndex: 0, toIndex: 9, periodUs: DAY, nextAtUs: at(0, 6, 0) }, 0);
  t.equal(e.predict(ref, at(0, 5, 0)), 0, 'an hour before: nothing');
  t.ok(e.predict(ref, at(0, 5, 59, 30)) >= 1, 'thirty seconds before: worth staging');
  t.ok(e.planningCandidates(at(0, 5, 59, 30)).some((r) => r.fileId === 'report' && r.index === 9));
  t.ok(e.predict(ref, at(1, 5, 59, 30)) >= 1, 'and again the next day');
});

t.test('learned heat weights follow the workload', async (t) => {
  // A steady Zipf-like set: extent i is read at rate proportional to 1/(i+1).
  const e = new PredictionEngine(WorkloadHistory.inMemory(), { extentSizeBytes: MiB, random: seededRandom(3), sampleEveryAccesses: 2, heat: { refitEveryRows: 300 } });
  const r = seededRandom(9);
  let tUs = 0;
  for (let k = 0; k < 40000; k++) {
    tUs += 200_000;
    const i = Math.floor(Math.pow(200, r())) - 1;
    e.recordExtentAccess({ fileId: 'z', index: i }, tUs);
    if (k % 50 === 0) e.tick(tUs);
  }
  const w = e.heat.weights;
  t.ok(w.samples > 0, `refitted on ${w.samples} rows`);
  t.ok(w.weights.every((x) => x >= 0), `non-negative weights ${JSON.stringify(w.weights.map((x) => +x.toFixed(3)))}`);
  const hot = e.predict({ fileId: 'z', index: 0 }, tUs);
  const tail = e.predict({ fileId: 'z', index: 150 }, tUs);
  t.ok(hot > 5 * tail, `hot ${hot.toFixed(3)} >> tail ${tail.toFixed(3)}`);
});


t.test('periods that do not come true stop staging; periods that do keep it', async (t) => {
  // Chance: each extent read twice, a random 1-5 h apart, then never again. Each looks periodic
  // (one repeat) and is announced when its "next run" comes due; none comes.
  const chance = engine();
  const r = seededRandom(3);
  for (let i = 0; i < 300; i++) {
    const t0 = i * 60e6;
    chance.recordExtentAccess({ fileId: 'noise', index: i }, t0);
    chance.recordExtentAccess({ fileId: 'noise', index: i }, t0 + (1 + 4 * r()) * 3600e6);
  }
  const before = chance.heat.runPrecision(1);
  for (let now = 0; now < 3 * DAY; now += 60e6) chance.takeDue(now);
  t.equal(before, 1, 'a new engine trusts a period seen once');
  t.ok(chance.heat.runPrecision(1) < 0.05, `after ~300 runs that never came: ${chance.heat.runPrecision(1).toFixed(3)}`);
  // A new twice-read extent is no longer worth staging at its "due" time.
  const ref = { fileId: 'noise', index: 10_000 };
  chance.recordExtentAccess(ref, 4 * DAY);
  chance.recordExtentAccess(ref, 4 * DAY + 3600e6);
  t.ok(chance.predict(ref, 4 * DAY + 2 * 3600e6 - 30e6) < 0.05, 'a chance repeat is not staged');

  // Schedule: a job reads its extents every hour, as announced: precision stays high.
  const job = engine();
  for (let run = 0; run < 6; run++) {
    for (let i = 0; i < 100; i++) {
      const t0 = run * 3600e6 + i * 1e6;
      job.takeDue(t0);
      job.recordExtentAccess({ fileId: 'job', index: i }, t0);
    }
  }
  t.ok(job.heat.runPrecision(1) > 0.9 && job.heat.runPrecision(3) > 0.9, `announced runs came: ${job.heat.runPrecision(1).toFixed(2)} / ${job.heat.runPrecision(3).toFixed(2)}`);
  t.ok(job.predict({ fileId: 'job', index: 5 }, 6 * 3600e6 - 30e6) > 0.5, 'the job set is still staged before its run');
});
