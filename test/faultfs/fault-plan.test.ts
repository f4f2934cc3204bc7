/**
 * faultfs's fault plan (pure) and gate (timers and pending promises), without a mount.
 */
import t from 'tap';
import os from 'os';
import { FaultPlan, FaultSpecError, parseFaultSpec, rampMs } from '../../fixtures/faultfs/fault-plan';
import { FaultGate } from '../../fixtures/faultfs/fault-gate';

const EIO = -os.constants.errno.EIO;
const ETIMEDOUT = -os.constants.errno.ETIMEDOUT;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

t.test('parseFaultSpec accepts the documented forms', async (t) => {
  t.same(parseFaultSpec({ latencyMs: 50 }), [{ latencyMs: 50 }]);
  t.same(parseFaultSpec({ ramp: { fromMs: 0, toMs: 2000, overSeconds: 30 } }), [{ ramp: { fromMs: 0, toMs: 2000, overSeconds: 30 } }]);
  t.same(parseFaultSpec({ error: 'EIO', ops: ['read', 'write'], probability: 1 }), [{ error: 'EIO', ops: ['read', 'write'], probability: 1 }]);
  t.same(parseFaultSpec({ hang: true }), [{ hang: true }]);
  t.same(parseFaultSpec({ clear: true }), []);
  t.same(parseFaultSpec({ rules: [{ latencyMs: 5 }, { error: 'ETIMEDOUT', ops: ['getattr'] }] }).length, 2);
});

t.test('parseFaultSpec rejects typos and nonsense', async (t) => {
  const bad: unknown[] = [
    null, [], 'EIO', { latencyMs: -1 }, { latencyMs: 'slow' }, { error: 'EBOGUS' }, { ops: ['raed'], hang: true },
    { ops: [], hang: true }, { probability: 0.5 }, { error: 'EIO', probability: 2 }, { hang: 'yes' },
    { ramp: { fromMs: 0, toMs: 10, overSeconds: 0 } }, { latency: 5 }, { clear: true, latencyMs: 1 }, { rules: {} },
  ];
  for (const spec of bad) t.throws(() => parseFaultSpec(spec), FaultSpecError, JSON.stringify(spec));
});

t.test('a ramp grows linearly from the moment it is set, then stays', async (t) => {
  const ramp = { fromMs: 100, toMs: 2100, overSeconds: 20 };
  t.equal(rampMs(ramp, 0), 100);
  t.equal(rampMs(ramp, 10_000), 1100);
  t.equal(rampMs(ramp, 20_000), 2100);
  t.equal(rampMs(ramp, 60_000), 2100);

  const plan = new FaultPlan();
  plan.set(parseFaultSpec({ ramp }), 5_000);
  t.equal(plan.decide('read', 15_000, Math.random).delayMs, 1100, 'time zero is when the spec was set');
});

t.test('decide: ops filter, combined rules, probability', async (t) => {
  const plan = new FaultPlan();
  t.same(plan.decide('read', 0, Math.random), { hang: false, delayMs: 0 }, 'no rules: pass');
  plan.set(parseFaultSpec({ rules: [{ latencyMs: 10 }, { latencyMs: 5, jitterMs: 10, ops: ['read'] }, { error: 'EIO', ops: ['read'], probability: 0.5 }] }), 0);
  t.same(plan.decide('getattr', 0, () => 0), { hang: false, delayMs: 10, errno: undefined });
  t.same(plan.decide('read', 0, () => 0.2), { hang: false, delayMs: 17, errno: 'EIO' }, 'delays add up; 0.2 < 0.5 fires');
  t.same(plan.decide('read', 0, () => 0.7), { hang: false, delayMs: 22, errno: undefined }, '0.7 >= 0.5 does not fire');
  plan.set(parseFaultSpec({ hang: true, ops: ['write'] }), 0);
  t.equal(plan.decide('write', 0, Math.random).hang, true);
  t.equal(plan.decide('read', 0, Math.random).hang, false);
  plan.clear(0);
  t.same(plan.decide('write', 0, Math.random), { hang: false, delayMs: 0 });
});

t.test('decide: a paths filter faults only ops on those paths', async (t) => {
  const plan = new FaultPlan();
  plan.set(parseFaultSpec({ error: 'EIO', ops: ['getattr'], paths: ['/dir/f.txt'] }), 0);
  t.equal(plan.decide('getattr', 0, Math.random, '/dir/f.txt').errno, 'EIO');
  t.equal(plan.decide('getattr', 0, Math.random, '/dir').errno, undefined, 'another path passes');
  t.equal(plan.decide('getattr', 0, Math.random).errno, undefined, 'an op without a path passes');
  t.equal(plan.decide('read', 0, Math.random, '/dir/f.txt').errno, undefined, 'another op passes');
  for (const spec of [{ paths: [], hang: true }, { paths: ['relative'], hang: true }, { paths: '/f', hang: true }]) {
    t.throws(() => parseFaultSpec(spec), FaultSpecError, JSON.stringify(spec));
  }
});

t.test('gate: errno, latency, hang released by a new plan', async (t) => {
  const gate = new FaultGate();
  t.equal(await gate.pass('read'), 0);
  gate.set(parseFaultSpec({ error: 'ETIMEDOUT', ops: ['read'] }));
  t.equal(await gate.pass('read'), ETIMEDOUT);
  t.equal(await gate.pass('write'), 0);

  gate.set(parseFaultSpec({ latencyMs: 60 }));
  const started = Date.now();
  t.equal(await gate.pass('getattr'), 0);
  t.ok(Date.now() - started >= 55, 'delayed by the latency (timer granularity aside)');

  gate.set(parseFaultSpec({ hang: true, ops: ['read'] }));
  let answered: number | undefined;
  const hung = gate.pass('read').then((v) => (answered = v));
  t.equal(await gate.pass('write'), 0, 'a hung read does not hold up other ops');
  await sleep(50);
  t.equal(answered, undefined, 'still hung');
  t.equal(gate.status().hungNow, 1);
  gate.set(parseFaultSpec({ hang: true, ops: ['write'] }));
  await hung;
  t.equal(answered, 0, 'a plan that no longer hangs reads lets it run');
  t.equal(gate.status().hungNow, 0);
});

t.test('gate: a hang stays hung across unrelated changes', async (t) => {
  const gate = new FaultGate();
  gate.set(parseFaultSpec({ hang: true }));
  let answered: number | undefined;
  const hung = gate.pass('read').then((v) => (answered = v));
  gate.set(parseFaultSpec({ rules: [{ hang: true }, { latencyMs: 1 }] }));
  await sleep(20);
  t.equal(answered, undefined);
  gate.set([]);
  await hung;
  t.equal(answered, 0);
});

t.test('gate: stop answers hung and delayed ops with EIO at once, and every later op', async (t) => {
  const gate = new FaultGate();
  gate.set(parseFaultSpec({ rules: [{ hang: true, ops: ['read'] }, { latencyMs: 60_000, ops: ['write'] }] }));
  const hung = gate.pass('read');
  const delayed = gate.pass('write');
  await sleep(10);
  t.match(gate.status(), { hungNow: 1, delayedNow: 1 });
  const started = Date.now();
  gate.stop();
  t.equal(await hung, EIO);
  t.equal(await delayed, EIO);
  t.ok(Date.now() - started < 1000, 'the 60 s delay was cut short');
  t.equal(await gate.pass('getattr'), EIO);
  t.match(gate.status(), { hungNow: 0, delayedNow: 0, stopping: true });
});
