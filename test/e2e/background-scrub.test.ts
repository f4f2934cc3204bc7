/**
 * The background scrub (scrubInterval, scrubRate): a copy that rots while the volume is mounted,
 * after its first read checked it, is found without an operator asking, dropped, and never served
 * again; when the last scrub finished is kept across remounts, and a reload changes the schedule.
 */
import t, { Test } from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, MountedVolume, makeSandbox, removeSandbox, Sandbox } from '../helpers/mounted-volume';
import { readWholeDirect } from '../helpers/direct-read';
import { waitFor } from '../helpers/wait';
import type { StatusReport } from '../../src/control/protocol';

const EXTENT = 64 * 1024;

function configFile(sb: Sandbox, extra: Record<string, unknown>): string {
  const file = path.join(sb.root, 'volume.json');
  fs.writeFileSync(file, JSON.stringify({
    live: sb.live, stateDir: sb.state, extentSize: '64KiB', admitAfterReads: 1,
    tiers: [{ name: 'nvme', class: 'nvme', path: sb.tierDir('nvme'), capacity: '64MiB' }],
    ...extra,
  }));
  return file;
}

function status(mnt: string): StatusReport {
  const r = cli(['status', '--json', mnt]);
  if (r.status !== 0) throw new Error(`status: ${r.stderr}`);
  return JSON.parse(r.stdout) as StatusReport;
}

function copyFiles(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && !e.name.startsWith('.'))
    .map((e) => path.join(e.parentPath, e.name));
}

function setUp(t: Test, extra: Record<string, unknown>): { sb: Sandbox; vol: MountedVolume; file: string } {
  const sb = makeSandbox();
  const file = configFile(sb, extra);
  const vol = new MountedVolume(sb, { configFile: file });
  t.teardown(async () => {
    await vol.cleanup();
    removeSandbox(sb);
  });
  return { sb, vol, file };
}

t.test('a copy damaged while mounted is found by the background scrub and not served', async (t) => {
  const { sb, vol } = setUp(t, { scrubInterval: '2s', scrubRate: '1GiB' });
  const data = Buffer.alloc(4 * EXTENT);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + 3) & 0xff;
  fs.writeFileSync(path.join(sb.live, 'f.bin'), data);
  await vol.start();
  const f = path.join(sb.mnt, 'f.bin');
  t.ok(readWholeDirect(f, data.length, EXTENT).equals(data));
  await waitFor(() => copyFiles(sb.tierDir('nvme')).length === 4, 'four copies');
  // Served from the copies once: each was read whole and checked then.
  t.ok(readWholeDirect(f, data.length, EXTENT).equals(data));

  const damagedAt = Date.now();
  for (const copy of copyFiles(sb.tierDir('nvme'))) {
    const fd = fs.openSync(copy, 'r+');
    fs.writeSync(fd, Buffer.from('ROTTEN'), 0, 6, 100);
    fs.closeSync(fd);
  }
  await waitFor(() => (status(sb.mnt).scrub?.lastFinishedAtMs ?? 0) > damagedAt, 'a background scrub after the damage', 30_000);
  t.notOk(copyFiles(sb.tierDir('nvme')).some((c) => fs.readFileSync(c).includes('ROTTEN')), 'no damaged copy is left on the tier');
  t.ok(readWholeDirect(f, data.length, EXTENT).equals(data), 'the reader sees the right bytes');
  for (let i = 0; i < 4; i++) {
    const named = new RegExp(`/f\\.bin: the copy of extent ${i} on nvme failed its checksum; dropped`);
    t.ok(await waitFor(() => named.test(vol.output), 'the log line', 5_000).then(() => true, () => false), `the log names the file of damaged copy ${i}`);
  }
  const s = status(sb.mnt);
  t.ok(s.scrub && s.scrub.nextDueAtMs !== null && s.scrub.nextDueAtMs >= (s.scrub.lastFinishedAtMs as number) + 2000, 'the next one is an interval after the last');
  t.match(cli(['status', sb.mnt]).stdout, /^scrub: last scrubbed \S+, next background scrub \S+/m);
  t.equal(await vol.stop(), 0);
});

t.test('the last scrub is remembered across remounts; a reload turns the schedule on and off', async (t) => {
  const { sb, vol, file } = setUp(t, { scrubInterval: 'off' });
  fs.writeFileSync(path.join(sb.live, 'g.bin'), Buffer.alloc(2 * EXTENT, 1));
  await vol.start();
  let s = status(sb.mnt);
  t.same([s.scrub?.lastFinishedAtMs, s.scrub?.nextDueAtMs], [null, null], 'never scrubbed, none scheduled');
  t.match(cli(['status', sb.mnt]).stdout, /^scrub: never scrubbed, no background scrub \(scrubInterval off\)$/m);
  fs.readFileSync(path.join(sb.mnt, 'g.bin'));
  await waitFor(() => copyFiles(sb.tierDir('nvme')).length === 2, 'two copies');
  const r = cli(['scrub', '--json', sb.mnt]);
  t.equal(r.status, 0, r.stderr);
  const last = status(sb.mnt).scrub?.lastFinishedAtMs;
  t.type(last, 'number', 'the scrub an operator ran counts as the last one');
  t.equal(await vol.stop(), 0);

  await vol.start();
  s = status(sb.mnt);
  t.equal(s.scrub?.lastFinishedAtMs, last, 'kept across the remount');
  t.equal(s.scrub?.nextDueAtMs, null);

  fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(fs.readFileSync(file, 'utf8')), scrubInterval: '3h', scrubRate: '10MiB' }));
  // The mount watches its config file: the edit is reloaded without a command.
  await waitFor(() => status(sb.mnt).config?.lastReload != null, 'the reload of the edited file');
  t.same(status(sb.mnt).config?.lastReload?.changes, ['scrubInterval off → 10800s', 'scrubRate 64.0 MiB/s → 10.0 MiB/s']);
  t.equal(status(sb.mnt).scrub?.nextDueAtMs, (last as number) + 3 * 3600_000, 'due an interval after the last scrub');
  t.equal(await vol.stop(), 0);
});

t.test('bad scrub settings are refused in one line', async (t) => {
  const sb = makeSandbox();
  t.teardown(() => removeSandbox(sb));
  for (const [extra, why] of [
    [{ scrubInterval: 'weekly' }, /scrubInterval: expected a duration like 30s/],
    [{ scrubInterval: '0s' }, /scrubInterval.*a duration of at least 1s, or "off"/],
    [{ scrubRate: '0' }, /scrubRate.*above zero/],
  ] as const) {
    const r = cli(['mount', '--config', configFile(sb, extra), sb.mnt]);
    t.equal(r.status, 1, JSON.stringify(extra));
    t.match(r.stderr, why);
    t.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  }
  fs.mkdirSync(sb.tierDir('nvme'), { recursive: true });
  const flag = cli(['mount', '--live', sb.live, '--state', sb.state, '--tier', `nvme=${sb.tierDir('nvme')},cap=1GiB`, '--scrub-interval', 'fortnightly', sb.mnt]);
  t.equal(flag.status, 1, 'the mount flag is checked the same way');
  t.match(flag.stderr, /^shadowfs: config scrubInterval: expected a duration like 30s, 5m or 250ms, got "fortnightly"\n$/);
});
