/**
 * The health state machine on simulated traffic (deterministic: seeded noise, simulated clock).
 */
import t from 'tap';
import { HealthMonitor, HealthReport, OpKind, Transition } from '../../src/health/health-monitor';
import { resolveHealthSettings } from '../../src/health/health-settings';
import { isVolumeFault } from '../../src/health/volume-faults';
import { noisy, rng, simulate } from './simulate';

const LIMIT_MS = 1000; // the default latency limit
const probeOk = (random: () => number, medianUs = 300) => () => ({ latencyUs: noisy(random, medianUs, 0.3, 0), ok: true });

/** A healthy minute: 100 ops/s around 1 ms, a probe a second. Baselines are learned by the end. */
function healthyMinute(m: HealthMonitor, random: () => number, fromMs = 0): void {
  simulate(m, {
    fromMs, toMs: fromMs + 60_000, opsPerSec: 100, random,
    latencyUs: () => noisy(random, 1000, 0.3, 0.005),
    probeEveryMs: 1000, probe: probeOk(random),
  });
}

t.test('a latency ramp fails over well before the limit and before any error', async (t) => {
  const random = rng(11);
  const m = new HealthMonitor();
  const rampStartMs = 120_000;
  const rampMs = 30_000;
  // 1 ms -> 2 s over 30 s: the 1 s limit is reached 15 s into the ramp.
  const medianUs = (ms: number): number => 1000 + (2_000_000 - 1000) * Math.min(1, Math.max(0, ms - rampStartMs) / rampMs);
  const limitReachedMs = rampStartMs + rampMs * ((LIMIT_MS * 1000 - 1000) / (2_000_000 - 1000));
  const run = simulate(m, {
    fromMs: 0, toMs: rampStartMs + rampMs, opsPerSec: 100, random,
    latencyUs: (ms) => noisy(random, medianUs(ms), 0.3, 0.005),
    probeEveryMs: 1000, probe: probeOk(random),
    until: (r) => r.failOverNow,
  });
  const r = run.stoppedBy as HealthReport;
  t.ok(r, 'failed over');
  const atMs = run.stoppedAtMs as number;
  t.ok(atMs <= limitReachedMs - 5_000, `failover at ramp + ${((atMs - rampStartMs) / 1000).toFixed(0)} s; the limit is reached at ramp + ${((limitReachedMs - rampStartMs) / 1000).toFixed(0)} s`);
  t.ok(medianUs(atMs) < (LIMIT_MS * 1000) / 2, `latency then was ${(medianUs(atMs) / 1000).toFixed(0)} ms, under half the limit`);
  t.equal(r.state, 'failed-over');
  t.equal(r.action, 'fail-over');
  t.match(r.reason, /trend .* reaches the 1000 ms limit in/, 'decided by the trend');
  t.ok(r.predictedMsToLimit !== undefined && r.predictedMsToLimit <= m.settings.horizonMs);
  t.equal(r.errorRate, 0, 'no op had failed');
  t.ok(run.reports.filter((x) => x.failOverNow).length === 1, 'decided once');
  const log = m.transitions();
  t.ok(log.length >= 1 && log.every((x) => x.timeMs >= rampStartMs), 'nothing happened before the ramp');
  // Either straight from healthy (the trend was decisive before suspicion was confirmed) or via suspect.
  t.match(log.map((x) => x.to).join(' -> '), /^(suspect -> )?failed-over$/, log.map((x) => `${x.from} -> ${x.to}: ${x.reason}`).join('; '));
});

t.test('a hang (ops that never answer) fails over as soon as the op timeout passes', async (t) => {
  const random = rng(12);
  const m = new HealthMonitor();
  healthyMinute(m, random);
  const hangMs = 60_000;
  const run = simulate(m, {
    fromMs: hangMs, toMs: hangMs + 30_000, opsPerSec: 100, random,
    latencyUs: () => undefined, // begun, never ended
    probeEveryMs: 0,
    until: (r) => r.state !== 'healthy',
  });
  const r = run.stoppedBy as HealthReport;
  t.ok(r);
  t.equal(run.stoppedAtMs, hangMs + m.settings.opTimeoutMs, 'at the first evaluation after the timeout');
  t.equal(r.state, 'failed-over');
  t.ok(r.failOverNow);
  t.match(r.reason, /timed out/);
  t.ok(r.pendingOps > 0);
  t.same(m.transitions().map((x) => [x.from, x.to]), [['healthy', 'failed-over']], 'straight from healthy: no warning period for a hang');
});

t.test('an op timed out by the owner fails over at the next evaluation', async (t) => {
  const random = rng(13);
  const m = new HealthMonitor();
  healthyMinute(m, random);
  m.recordTimeout('write', 60_100);
  const r = m.evaluate(60_200);
  t.equal(r.state, 'failed-over');
  t.match(r.reason, /1 write op\(s\) timed out/);
});

t.test('errors starting fail over at once; an isolated error only raises suspicion', async (t) => {
  const random = rng(14);
  const failing = new HealthMonitor();
  healthyMinute(failing, random);
  const run = simulate(failing, {
    fromMs: 60_000, toMs: 70_000, opsPerSec: 100, random,
    latencyUs: () => noisy(random, 1000, 0.3, 0), fails: () => true,
    until: (r) => r.failOverNow,
  });
  t.equal(run.stoppedAtMs, 61_000, 'within the first second of errors');
  t.match(run.stoppedBy?.reason, /ops failed \(.*% > 5\.0%\)/);

  const blip = new HealthMonitor();
  healthyMinute(blip, random);
  let failed = false;
  const once = simulate(blip, {
    fromMs: 60_000, toMs: 180_000, opsPerSec: 100, random,
    latencyUs: () => noisy(random, 1000, 0.3, 0),
    fails: (ms) => (!failed && ms >= 60_500 ? (failed = true) : false),
    probeEveryMs: 1000, probe: probeOk(random),
  });
  t.notOk(once.reports.some((r) => r.failOverNow), 'one error is not a failover');
  const log = blip.transitions();
  t.same(log.map((x) => x.to), ['suspect', 'healthy'], 'suspect, then healthy again');
  t.match(log[0].reason, /1 of \d+ read ops failed/);
  // The error stays in the eval window (give or take a bucket and an evaluation), then
  // minHealthyForClearMs of clean signals are needed.
  const s = resolveHealthSettings();
  t.ok(log[1].timeMs - 60_500 >= s.evalWindowMs - 2 * s.bucketMs + s.minHealthyForClearMs,
    `healthy again ${((log[1].timeMs - 60_500) / 1000).toFixed(0)} s after the error`);
});

t.test('noise around a stable baseline never causes a transition', async (t) => {
  const profiles: { name: string; opsPerSec: number; medianUs: number; sigma: number; spikeShare: number; kinds?: OpKind[] }[] = [
    { name: 'network volume, busy', opsPerSec: 100, medianUs: 1000, sigma: 0.5, spikeShare: 0.01, kinds: ['read', 'write', 'meta'] },
    { name: 'nearly idle', opsPerSec: 3, medianUs: 1000, sigma: 0.5, spikeShare: 0.01 },
    { name: 'hdd', opsPerSec: 50, medianUs: 8000, sigma: 0.8, spikeShare: 0.02, kinds: ['read', 'sync'] },
    { name: 'nvme', opsPerSec: 100, medianUs: 80, sigma: 0.4, spikeShare: 0.005 },
  ];
  for (const [i, p] of profiles.entries()) {
    const random = rng(100 + i);
    const m = new HealthMonitor();
    const run = simulate(m, {
      fromMs: 0, toMs: 3_600_000, opsPerSec: p.opsPerSec, random,
      latencyUs: () => noisy(random, p.medianUs, p.sigma, p.spikeShare),
      kind: p.kinds ? (r) => (p.kinds as OpKind[])[Math.floor(r() * (p.kinds as OpKind[]).length)] : undefined,
      probeEveryMs: 1000, probe: probeOk(random),
    });
    t.same(m.transitions(), [], `${p.name}: an hour without a transition`);
    t.equal(run.reports[run.reports.length - 1].state, 'healthy');
  }
});

t.test('failback needs sustained health; resyncDone completes it', async (t) => {
  const random = rng(15);
  const m = new HealthMonitor();
  healthyMinute(m, random);
  // The live volume breaks: ops and probes fail for 30 s.
  const broken = simulate(m, {
    fromMs: 60_000, toMs: 90_000, opsPerSec: 100, random,
    latencyUs: () => noisy(random, 1000, 0.3, 0), fails: () => true,
    probeEveryMs: 1000, probe: () => ({ latencyUs: 500, ok: false }),
  });
  t.equal(broken.reports.filter((r) => r.failOverNow).length, 1);
  t.equal(m.state, 'failed-over');

  // Failed over: no foreground ops reach the volume, only probes. It recovers at 90 s, but one probe
  // fails again at 130 s. Probe latency is back near its baseline.
  const recovering = simulate(m, {
    fromMs: 90_000, toMs: 400_000, opsPerSec: 0, random,
    latencyUs: () => 0,
    probeEveryMs: 1000, probe: (ms) => ({ latencyUs: noisy(random, 300, 0.3, 0), ok: ms !== 130_000 }),
    until: (r) => r.state !== 'failed-over',
  });
  const r = recovering.stoppedBy as HealthReport;
  t.ok(r, 'failback started');
  t.equal(r.state, 'resyncing');
  t.equal(r.action, 'resync');
  const lastBadMs = 130_000;
  t.ok((recovering.stoppedAtMs as number) >= lastBadMs + m.settings.minHealthyForFailbackMs,
    `resync at ${(recovering.stoppedAtMs as number) / 1000} s: at least ${m.settings.minHealthyForFailbackMs / 1000} s after the last failed probe`);
  t.ok((recovering.stoppedAtMs as number) <= lastBadMs + m.settings.evalWindowMs + m.settings.minHealthyForFailbackMs + 2_000,
    'and not much later: once the failed probe left the window and the clean stretch was long enough');
  t.match(r.reason, /healthy for \d+ s \(\d+ probes in a row OK, latency near baseline\)/);

  m.resyncDone(recovering.stoppedAtMs as number + 5_000);
  t.equal(m.state, 'healthy');
  t.same(m.transitions().map((x) => x.to), ['failed-over', 'resyncing', 'healthy']);
  t.equal(m.transitions()[2].reason, 'resync finished');
});

t.test('no failback while probes are slow, even without errors', async (t) => {
  const random = rng(16);
  const m = new HealthMonitor();
  healthyMinute(m, random);
  m.requestFailover(60_000, 'operator');
  const run = simulate(m, {
    fromMs: 60_000, toMs: 360_000, opsPerSec: 0, random, latencyUs: () => 0,
    probeEveryMs: 1000, probe: () => ({ latencyUs: noisy(random, 300 * 4, 0.3, 0), ok: true }), // 4 x baseline
  });
  t.equal(run.reports[0].action, 'fail-over', 'the requested failover is reported as an action');
  t.equal(m.state, 'failed-over', 'five minutes of slow-but-working probes are not health');
  t.notOk(run.reports.some((r) => r.action === 'resync'));
});

t.test('a failure during resync goes back to failed-over', async (t) => {
  const random = rng(17);
  const m = new HealthMonitor();
  healthyMinute(m, random);
  m.requestFailover(60_000);
  m.requestFailback(61_000, 'operator says the volume is back');
  t.equal(m.state, 'resyncing');
  t.equal(m.evaluate(61_500).action, 'resync');
  for (let i = 0; i < 5; i++) m.recordOp('write', 2000, false, 62_000 + i);
  const r = m.evaluate(62_500);
  t.equal(r.state, 'failed-over');
  t.equal(r.action, 'abort-resync');
  t.match(r.reason, /^during resync: 5 of \d+ write ops failed/);
});

t.test('the transition log: time, from, to, reason; bounded; reported as it happens', async (t) => {
  const seen: Transition[] = [];
  const m = new HealthMonitor({ transitionLogSize: 4 }, (x) => seen.push(x));
  for (let i = 0; i < 5; i++) {
    m.requestFailover(i * 10, `drill ${i}`);
    m.requestFailback(i * 10 + 1);
    m.resyncDone(i * 10 + 2);
  }
  t.equal(seen.length, 15, 'every transition reported');
  const log = m.transitions();
  t.equal(log.length, 4, 'the log keeps the last 4');
  t.same(log[log.length - 1], { timeMs: 42, from: 'resyncing', to: 'healthy', reason: 'resync finished' });
  t.same(seen[0], { timeMs: 0, from: 'healthy', to: 'failed-over', reason: 'drill 0' });
  t.ok(seen.every((x) => x.reason.length > 0));
});

t.test('a latency step raises suspicion once and clears once (hysteresis)', async (t) => {
  const random = rng(18);
  const m = new HealthMonitor();
  healthyMinute(m, random);
  // 4 x slower for 40 s: over the suspect threshold (3 x), far from the limit, not trending.
  simulate(m, {
    fromMs: 60_000, toMs: 300_000, opsPerSec: 100, random,
    latencyUs: (ms) => noisy(random, ms < 100_000 ? 4000 : 1000, 0.3, 0.005),
    probeEveryMs: 1000, probe: probeOk(random),
  });
  const log = m.transitions();
  t.same(log.map((x) => x.to), ['suspect', 'healthy'], 'no flapping while latency hovered or came back');
  t.match(log[0].reason, /read p95 .* is over 3 x baseline/);
  t.match(log[1].reason, /no warning sign for \d+ s/);
});

t.test('settings are checked; only volume faults count as errors', async (t) => {
  t.throws(() => new HealthMonitor({ latencyLimitMs: 0 }), /latencyLimitMs/);
  t.throws(() => new HealthMonitor({ errorRateThreshold: 1.5 }), /errorRateThreshold/);
  t.throws(() => new HealthMonitor({ recoverRatio: 4, suspectRatio: 3 }), /hysteresis/);
  t.throws(() => new HealthMonitor().recordOp('bogus' as OpKind, 1, true, 0), /unknown op kind/);
  t.ok(isVolumeFault('EIO'));
  t.ok(isVolumeFault('ETIMEDOUT'));
  t.notOk(isVolumeFault('ENOENT'));
  t.notOk(isVolumeFault(undefined));
});
