/**
 * Hot reload of a real mount started from a config file: edits that can apply live are applied
 * (a tier shrinks, a tier appears, a tier is drained and removed); edits that cannot (the live path,
 * a broken file) are refused with the reason, the old settings stay, `shadowfs reload` exits 1, and
 * the mount keeps serving files throughout.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MountedVolume, cli, makeSandbox, removeSandbox } from '../helpers/mounted-volume';
import { waitFor } from '../helpers/wait';
import { controlRequest } from '../../src/control/control-client';
import type { ReloadReport, StatusReport } from '../../src/control/protocol';

const EXTENT = 64 * 1024;
const KIB = 1024;

/** Files under a directory tier, recursively (one per extent copy). */
function copiesIn(dir: string): number {
  if (!fs.existsSync(dir)) return 0;
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && !e.name.startsWith('.')).length;
}

t.test('a mount reloads its edited config file: live where safe, refused with the reason where not', async (t) => {
  const sb = makeSandbox();
  const file = path.join(sb.root, 'volume.json');
  const tier = (name: string, capacity: string) => ({ name, path: sb.tierDir(name), capacity });
  const config = { live: sb.live, stateDir: sb.state, extentSize: '64KiB', admitAfterReads: 1, tiers: [tier('nvme', '4MiB')] };
  // Written by rename, as editors save: the watcher must see the replaced file.
  const save = (c: unknown, text = JSON.stringify(c, null, 2)): void => {
    fs.writeFileSync(`${file}.tmp`, text);
    fs.renameSync(`${file}.tmp`, file);
  };
  save(config);
  const vol = new MountedVolume(sb, { configFile: file });
  t.teardown(async () => {
    await vol.cleanup();
    removeSandbox(sb);
  });

  const data = Buffer.alloc(16 * EXTENT);
  for (let i = 0; i < data.length; i += 4096) data.fill((i / 4096) & 0xff, i, i + 4096);
  fs.writeFileSync(path.join(sb.live, 'data.bin'), data);
  await vol.start();
  // Polled over the control socket itself: a CLI process per poll would cost a second each.
  const status = async (): Promise<StatusReport> => (await controlRequest(sb.mnt, { command: 'status' })) as StatusReport;
  const tierOf = (s: StatusReport, name: string) => s.tiers.find((x) => x.name === name);
  const readBack = (): void => void t.ok(fs.readFileSync(path.join(sb.mnt, 'data.bin')).equals(data), 'the mount serves the file intact');
  const lastReload = async (): Promise<ReloadReport | null> => (await status()).config?.lastReload ?? null;

  t.same((await status()).config, { file, lastReload: null }, 'status names the config file; no reload yet');
  readBack();
  await waitFor(async () => tierOf(await status(), 'nvme')?.usedBytes === data.length, 'the file copied to nvme');

  // Accepted, by the watcher: nvme shrinks to 256 KiB (evicting), an ssd tier appears.
  save({ ...config, tiers: [tier('nvme', '256KiB'), tier('ssd', '8MiB')] });
  await waitFor(async () => (await lastReload()) !== null, 'the reload of the edited file');
  let s = await status();
  t.equal(s.config?.lastReload?.accepted, true, `accepted: ${s.config?.lastReload?.reason ?? ''}`);
  t.equal(s.config?.lastReload?.trigger, 'file-changed');
  t.same(s.config?.lastReload?.changes, ['tier ssd added (ssd, ' + sb.tierDir('ssd') + ', 8.0 MiB)', 'tier nvme: capacity 4.0 MiB → 256.0 KiB']);
  t.equal(tierOf(s, 'nvme')?.capacityBytes, 256 * KIB, 'status shows the new capacity');
  t.ok((tierOf(s, 'nvme')?.usedBytes ?? Infinity) <= 256 * KIB, 'nvme shrank to its new capacity');
  t.ok(copiesIn(sb.tierDir('nvme')) <= 4, 'evicted copies are gone from the nvme directory');
  t.ok(tierOf(s, 'ssd'), 'the added tier is part of the volume');
  readBack();

  // Accepted: nvme removed from the file — drained, then gone; reads now fill ssd.
  save({ ...config, tiers: [tier('ssd', '8MiB')] });
  await waitFor(async () => !tierOf(await status(), 'nvme'), 'nvme removed');
  s = await status();
  t.match(s.config?.lastReload?.changes, ['tier nvme drained and removed']);
  t.equal(copiesIn(sb.tierDir('nvme')), 0, 'no copy left on the removed tier');
  readBack();
  await waitFor(async () => (tierOf(await status(), 'ssd')?.usedBytes ?? 0) > 0, 'reads promote to the remaining tier');

  // Refused: the live path cannot change on a running mount. The old settings stay.
  const other = path.join(sb.root, 'other-live');
  fs.mkdirSync(other);
  save({ ...config, live: other, copyRate: '1MiB', tiers: [tier('ssd', '2MiB')] });
  await waitFor(async () => (await lastReload())?.accepted === false, 'the refusal of the live path change');
  t.match((await lastReload())?.reason, /^live: cannot change on a running mount; unmount and mount again \(.*\/live → .*\/other-live\)$/);
  let r = cli(['reload', sb.mnt]);
  t.equal(r.status, 1, 'shadowfs reload exits 1');
  t.match(r.stderr, /^shadowfs: reload of .*volume\.json refused, the old settings are kept: live: cannot change on a running mount/);
  s = await status();
  t.same(s.tiers.map((x) => [x.name, x.capacityBytes]), [['ssd', 8 * 1024 * KIB]], 'the refused file changed nothing, not even its safe part');
  t.equal(s.livePath, sb.live);
  readBack();

  // Refused: a file that is not JSON at all.
  save(null, '{ "live": "' + sb.live + '", "tiers": [ ');
  r = cli(['reload', '--json', sb.mnt]);
  t.equal(r.status, 1, 'shadowfs reload --json exits 1 as well');
  const report = JSON.parse(r.stdout) as ReloadReport;
  t.same([report.accepted, report.changes, report.trigger], [false, [], 'command']);
  t.match(report.reason, /volume\.json is not valid JSON/);
  t.match(r.stderr, /not valid JSON/);
  readBack();
  fs.writeFileSync(path.join(sb.mnt, 'new.txt'), 'still writable\n');
  t.equal(fs.readFileSync(path.join(sb.live, 'new.txt'), 'utf8'), 'still writable\n', 'writes still reach the live volume');

  // Fixed again: the command reloads it and says what changed.
  save({ ...config, tiers: [tier('ssd', '4MiB')] });
  await waitFor(async () => (await lastReload())?.accepted === true, 'the fixed file reloaded');
  t.equal(tierOf(await status(), 'ssd')?.capacityBytes, 4 * 1024 * KIB);
  r = cli(['reload', sb.mnt]);
  t.equal(r.status, 0);
  t.match(r.stdout, /volume\.json: reloaded, nothing changed/);
  t.match(cli(['status', sb.mnt]).stdout, /\nconfig: .*volume\.json, last reload \S+ \(command\) applied: no changes\n/, 'status shows the config file and the last reload');

  // Every refusal is in the mount's log, with its reason (warnings show without --verbose).
  const logged = (re: RegExp) => waitFor(() => re.test(vol.output), `${re.source} in the log`, 5_000);
  await logged(/warn  \[config\] reload of .*volume\.json refused, keeping the old settings: live: cannot change/);
  await logged(/warn  \[config\] reload of .*volume\.json refused, keeping the old settings: config file .* is not valid JSON/);
  t.equal(await vol.stop(), 0, 'clean unmount');
});

t.test('while failed over, a reload neither removes nor shrinks a tier', async (t) => {
  const sb = makeSandbox();
  const file = path.join(sb.root, 'volume.json');
  const tier = (name: string, capacity: string) => ({ name, path: sb.tierDir(name), capacity });
  const config = { live: sb.live, stateDir: sb.state, coverageTier: 'hdd', watchdog: { enabled: false }, tiers: [tier('nvme', '4MiB'), tier('hdd', '64MiB')] };
  fs.writeFileSync(file, JSON.stringify(config));
  const vol = new MountedVolume(sb, { configFile: file });
  t.teardown(async () => {
    await vol.cleanup();
    removeSandbox(sb);
  });
  fs.writeFileSync(path.join(sb.live, 'a.txt'), 'served from the shadows\n');
  await vol.start();
  const status = async (): Promise<StatusReport> => (await controlRequest(sb.mnt, { command: 'status' })) as StatusReport;
  await waitFor(async () => (await status()).coverage?.coveredShare === 1, 'full coverage');
  t.equal(cli(['failover', sb.mnt]).status, 0, 'failed over');
  fs.writeFileSync(file, JSON.stringify({ ...config, tiers: [tier('hdd', '32MiB')] }));
  const r = cli(['reload', sb.mnt]);
  t.equal(r.status, 1);
  t.match(r.stderr, /tiers: the volume is failed-over, its shadows are what it serves from; no tier shrinks or goes away until it has failed back/);
  t.same((await status()).tiers.map((x) => [x.name, x.capacityBytes]), [['nvme', 4 * 1024 * KIB], ['hdd', 64 * 1024 * KIB]], 'both tiers kept whole');
  t.equal(fs.readFileSync(path.join(sb.mnt, 'a.txt'), 'utf8'), 'served from the shadows\n');
  t.equal(cli(['failback', sb.mnt, '--force']).status, 0, 'failed back');
  const after = cli(['reload', sb.mnt]);
  t.equal(after.status, 0, `accepted once live again: ${after.stderr}`);
  t.same((await status()).tiers.map((x) => [x.name, x.capacityBytes]), [['hdd', 32 * 1024 * KIB]]);
});

t.test('a mount started from flags has no file to reload', async (t) => {
  const sb = makeSandbox();
  const vol = new MountedVolume(sb);
  t.teardown(async () => {
    await vol.cleanup();
    removeSandbox(sb);
  });
  await vol.start();
  const r = cli(['reload', sb.mnt]);
  t.equal(r.status, 1);
  t.match(r.stderr, /this mount was started without --config: there is no config file to reload/);
  t.equal((JSON.parse(cli(['status', '--json', sb.mnt]).stdout) as StatusReport).config, null, 'status --json: no config file');
});
