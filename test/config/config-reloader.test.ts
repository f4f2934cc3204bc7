/**
 * The reloader against a real file and a real chokidar watch, with a recording target in place of
 * a mount (the e2e test drives a real one).
 */
import t, { Test } from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigReloader, ReloadTarget } from '../../src/config/config-reloader';
import { WatchdogConfig } from '../../src/config/watchdog-config';
import { volumeConfigFrom } from '../../src/cli/load-config';
import { TierSpec } from '../../src/tiers/tier';
import { ShadowfsError } from '../../src/util/errors';
import { createLogger } from '../../src/util/log';
import { waitFor } from '../helpers/wait';

function setup(t: Test) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shadowfs-reload-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'volume.json');
  const base = {
    live: path.join(dir, 'live'),
    stateDir: path.join(dir, 'state'),
    tiers: [{ name: 'nvme', path: path.join(dir, 'nvme'), capacity: '64MiB' }],
  };
  const write = (over: Record<string, unknown>): void => fs.writeFileSync(file, JSON.stringify({ ...base, ...over }));
  write({});
  const calls: string[] = [];
  let tiers: TierSpec[] = [];
  const preflightRefusals: string[] = [];
  let failOn: string | undefined;
  const call = (what: string): void => {
    if (failOn && what.startsWith(failOn)) throw new ShadowfsError(`${failOn} broke`);
    calls.push(what);
  };
  const target: ReloadTarget = {
    tiers: () => tiers.map((s) => ({ ...s })),
    preflight: async () => preflightRefusals,
    addTier: async (s) => {
      call(`add ${s.name}`);
      tiers.push(s);
    },
    setTierCapacity: async (name, bytes) => {
      call(`capacity ${name} ${bytes}`);
      tiers = tiers.map((s) => (s.name === name ? { ...s, capacityBytes: bytes } : s));
    },
    setTierCost: (name, cost) => call(`cost ${name} ${cost}`),
    removeTier: async (name) => {
      call(`remove ${name}`);
      tiers = tiers.filter((s) => s.name !== name);
    },
    setCopyLimits: (l) => call(`limits ${JSON.stringify(l)}`),
    setAdmitAfterReads: (n) => call(`admit ${n}`),
    setCoverageScanIntervalMs: (ms) => call(`scan ${ms}`),
    setScrubIntervalMs: (ms) => call(`scrub every ${ms}`),
    setScrubRate: (bytesPerSec) => call(`scrub rate ${bytesPerSec}`),
    setWatchLive: async (on) => call(`watch ${on}`),
    setPredictor: (p) => call(`plan ${p.planIntervalMs}`),
  };
  const lines: string[] = [];
  const initial = volumeConfigFrom({ config: file });
  tiers = initial.tiers.map((s) => ({ ...s }));
  const reloader = new ConfigReloader(file, () => volumeConfigFrom({ config: file }), initial, createLogger('info', (l) => lines.push(l)));
  reloader.attach(target);
  return { file, write, calls, reloader, lines, preflightRefusals, target, setFailOn: (s: string) => (failOn = s) };
}

t.test('accepted: every change applied in order, logged, kept as the last reload', async (t) => {
  const s = setup(t);
  s.write({ copyRate: '10MiB', concurrentCopies: 2, tiers: [{ name: 'nvme', path: path.join(path.dirname(s.file), 'nvme'), capacity: '32MiB' }, { name: 'ssd', path: '/x/ssd', capacity: '1GiB' }] });
  const r = await s.reloader.reload('command');
  t.equal(r.accepted, true);
  t.same(s.calls, ['add ssd', `capacity nvme ${32 * 1024 ** 2}`, `limits {"maxBytesPerSec":${10 * 1024 ** 2}}`, 'limits {"concurrentCopies":2}']);
  t.equal(r.changes.length, 4);
  t.match(s.lines.at(-1), /info  \[config\] reloaded .*volume\.json \(command\): tier ssd added .*; tier nvme: capacity 64\.0 MiB → 32\.0 MiB; copyRate/);
  t.same(s.reloader.summary().lastReload, r);
  // Applied once: the same file again changes nothing.
  s.calls.length = 0;
  const again = await s.reloader.reload('command');
  t.same([again.accepted, again.changes, s.calls], [true, [], []]);
  t.match(s.lines.at(-1), /no changes$/);
});

t.test('settings without tiers: scan interval, watchLive, predictor', async (t) => {
  const s = setup(t);
  s.write({ coverageScanInterval: '30s', watchLive: true, predictor: { planIntervalMs: '5s' } });
  const r = await s.reloader.reload('command');
  t.equal(r.accepted, true);
  t.same(s.calls, ['scan 30000', 'watch true', 'plan 5000']);
});

t.test('refused: a broken file, a fixed setting, a preflight reason — nothing applied, old settings kept', async (t) => {
  const s = setup(t);
  fs.writeFileSync(s.file, '{ "live": ');
  let r = await s.reloader.reload('command');
  t.equal(r.accepted, false);
  t.match(r.reason, /volume\.json is not valid JSON/);
  t.match(s.lines.at(-1), /warn  \[config\] reload of .*volume\.json refused, keeping the old settings: config file .* is not valid JSON/);

  s.write({ watchdog: { latencyLimitMs: -1 } });
  r = await s.reloader.reload('command');
  t.match(r.reason, /volume\.json: config watchdog\.latencyLimitMs: expected a number > 0, got -1$/);

  s.write({ live: '/elsewhere', copyRate: '1MiB' });
  r = await s.reloader.reload('command');
  t.match(r.reason, /^live: cannot change on a running mount/);

  s.write({ copyRate: '1MiB' });
  s.preflightRefusals.push('tiers: not today');
  r = await s.reloader.reload('command');
  t.same([r.accepted, r.reason], [false, 'tiers: not today']);
  t.same(s.calls, [], 'nothing was applied by any refused reload');
  t.equal(s.reloader.settings().copyBytesPerSec, 200 * 1024 ** 2, 'old settings kept');
});

t.test('a step that fails midway: what ran before is reported, the rest not applied', async (t) => {
  const s = setup(t);
  s.setFailOn('remove');
  s.write({ copyRate: '1MiB', tiers: [{ name: 'hdd', path: '/x/hdd', capacity: '1GiB' }] });
  const r = await s.reloader.reload('command');
  t.equal(r.accepted, false);
  t.same(r.changes, ['tier hdd added (hdd, /x/hdd, 1.0 GiB)']);
  t.equal(r.reason, 'tier nvme drained and removed: remove broke');
  t.same(s.calls, ['add hdd'], 'the copy rate after the failed step was not touched');
  t.match(s.lines.at(-1), /refused \(applied before that: tier hdd added .*\): tier nvme drained and removed: remove broke/);
});

t.test('watchdog changes go to the listeners; a target without a setter refuses its setting', async (t) => {
  const s = setup(t);
  const heard: WatchdogConfig[] = [];
  s.write({ watchdog: { opTimeoutMs: '2s' } });
  let r = await s.reloader.reload('command');
  t.same(r.changes, ['watchdog: opTimeoutMs 5000 → 2000 (validated; no health monitor takes it yet)']);
  s.reloader.onWatchdogChange((w) => heard.push(w));
  s.write({ watchdog: { opTimeoutMs: '3s' } });
  r = await s.reloader.reload('command');
  t.same(r.changes, ['watchdog: opTimeoutMs 2000 → 3000']);
  t.equal(heard.at(-1)?.health.opTimeoutMs, 3000);

  delete s.target.setAdmitAfterReads;
  s.write({ watchdog: { opTimeoutMs: '3s' }, admitAfterReads: 5 });
  r = await s.reloader.reload('command');
  t.match(r.reason, /^admitAfterReads: the running admission policy cannot change it/);
});

t.test('watch: an edit of the file (also an editor\'s rename over it) is reloaded by itself', async (t) => {
  const s = setup(t);
  await s.reloader.watch();
  t.teardown(() => s.reloader.stop());
  s.write({ concurrentCopies: 8 });
  await waitFor(() => s.reloader.summary().lastReload !== null, 'a reload after the edit', 5_000, 20);
  t.same(s.reloader.summary().lastReload?.changes, ['concurrentCopies 4 → 8']);
  t.equal(s.reloader.summary().lastReload?.trigger, 'file-changed');
  const tmp = `${s.file}.tmp`;
  fs.writeFileSync(tmp, fs.readFileSync(s.file, 'utf8').replace('"concurrentCopies":8', '"concurrentCopies":16'));
  fs.renameSync(tmp, s.file);
  await waitFor(() => s.reloader.settings().concurrentCopies === 16, 'a reload after the rename', 5_000, 20);
  t.same(s.calls, ['limits {"concurrentCopies":8}', 'limits {"concurrentCopies":16}']);
});

t.test('tiers changed with the tier command stay so until the file changes that tier', async (t) => {
  const s = setup(t);
  const nvme = { name: 'nvme', path: path.join(path.dirname(s.file), 'nvme'), capacity: '64MiB' };
  // By hand: an ssd tier added, nvme cut to 16 MiB.
  await s.target.addTier({ name: 'ssd', class: 'ssd', path: '/x/ssd', capacityBytes: 2 ** 30, costPerGiBMonth: 0.08 });
  await s.target.setTierCapacity('nvme', 16 * 1024 ** 2);
  s.calls.length = 0;
  // An unrelated edit: neither is undone.
  s.write({ copyRate: '10MiB' });
  let r = await s.reloader.reload('command');
  t.equal(r.accepted, true);
  t.same(s.calls, [`limits {"maxBytesPerSec":${10 * 1024 ** 2}}`], 'ssd not drained, nvme not grown back');
  t.same(s.target.tiers().map((x) => [x.name, x.capacityBytes]), [['nvme', 16 * 1024 ** 2], ['ssd', 2 ** 30]]);
  // The file changes nvme's capacity: that edit applies.
  s.calls.length = 0;
  s.write({ copyRate: '10MiB', tiers: [{ ...nvme, capacity: '32MiB' }] });
  r = await s.reloader.reload('command');
  t.same(s.calls, [`capacity nvme ${32 * 1024 ** 2}`]);
  // A tier removed by hand stays removed while the file keeps naming it.
  await s.target.removeTier('nvme');
  s.calls.length = 0;
  s.write({ copyRate: '20MiB', tiers: [{ ...nvme, capacity: '32MiB' }] });
  r = await s.reloader.reload('command');
  t.same(s.calls, [`limits {"maxBytesPerSec":${20 * 1024 ** 2}}`], 'nvme not re-added');
  // The file adds a tier the mount has by hand: the file's spec wins.
  s.calls.length = 0;
  s.write({ copyRate: '20MiB', tiers: [{ ...nvme, capacity: '32MiB' }, { name: 'ssd', path: '/x/ssd', capacity: '512MiB' }] });
  r = await s.reloader.reload('command');
  t.same(s.calls, [`capacity ssd ${512 * 1024 ** 2}`, 'cost ssd 0.1'], 'capacity and cost as the file says');
});
