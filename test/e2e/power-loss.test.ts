/**
 * After a power loss, copies that may disagree with the live file are not served. A power loss
 * cannot be made here, so the test makes its two parts: the daemon dies with kill -9 (what was
 * not synced is still in the page cache), and the state's stored boot id is changed, which is what
 * the next mount sees after a real restart. The files written since their last sync point lose
 * their copies then; a file fsynced through the mount, and everything after a clean unmount, keep
 * theirs. Without a restart (the same boot id) a kill -9 drops nothing.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { cli, sandboxedMount, Sandbox } from '../helpers/mounted-volume';
import { failoverConfigFile } from '../helpers/failover-config';
import { ExtentMap } from '../../src/extents/extent-map';
import type { StatusReport, WhichTierReport } from '../../src/control/protocol';

const KiB = 1024;

function whichTier(sb: Sandbox, name: string): WhichTierReport {
  const r = cli(['which-tier', '--json', path.join(sb.mnt, name)]);
  if (r.status !== 0) throw new Error(`which-tier: ${r.stderr}`);
  return JSON.parse(r.stdout) as WhichTierReport;
}

/** Tiers holding a fresh copy of each extent of the file (through the mount). */
const freshTiers = (sb: Sandbox, name: string): string[][] => whichTier(sb, name).extents.map((e) => e.fresh);
/** Each extent's generation: dropping an extent's copies moves it on (coverage may copy it again at once). */
const generations = (sb: Sandbox, name: string): number[] => whichTier(sb, name).extents.map((e) => e.generation);

/** What the next mount will read from the state: the files still marked, after storing `bootId` if given. */
async function stateAfterStop(sb: Sandbox, bootId?: string): Promise<string[]> {
  const map = await ExtentMap.open(path.join(sb.state, 'extents'));
  try {
    if (bootId) await map.setBootId(bootId);
    return map.markedFiles();
  } finally {
    await map.close();
  }
}

const fileIdOf = (p: string): string => fs.statSync(p).ino.toString(16);

function shadowStatus(sb: Sandbox): { unsyncedFiles?: number; filesDroppedAfterRestart?: number } {
  const r = cli(['status', sb.mnt, '--json']);
  if (r.status !== 0) throw new Error(`status: ${r.stderr}`);
  return (JSON.parse(r.stdout) as StatusReport).shadow;
}

t.test('after a restart, the files written since their last sync point lose their copies; fsynced ones keep them', async (t) => {
  const { sb, vol } = sandboxedMount(t, (sb) => ({ configFile: failoverConfigFile(sb, { enabled: false }) }), 'power-loss-');
  await vol.start();
  const synced = randomBytes(200 * KiB);
  const unsynced = randomBytes(200 * KiB);
  await fsp.writeFile(path.join(sb.mnt, 'synced.bin'), synced);
  const fh = await fsp.open(path.join(sb.mnt, 'synced.bin'), 'r+');
  await fh.sync();
  await fh.close();
  await fsp.writeFile(path.join(sb.mnt, 'unsynced.bin'), unsynced);
  t.ok(freshTiers(sb, 'unsynced.bin').every((tiers) => tiers.length > 0), 'the writes made copies of every extent');
  t.equal(shadowStatus(sb).unsyncedFiles, 1, 'status: one file written since its last sync point');
  t.match(cli(['status', sb.mnt]).stdout, /power loss: 1 file\(s\) written since their last sync point/);

  // kill -9, then the same machine: nothing is lost from the page cache, so nothing is dropped.
  await vol.crash();
  const marked = await stateAfterStop(sb);
  t.same(marked, [fileIdOf(path.join(sb.live, 'unsynced.bin'))], 'the unsynced file is marked in the state, the fsynced one not');
  await vol.start();
  t.ok(freshTiers(sb, 'unsynced.bin').every((tiers) => tiers.length > 0), 'a kill -9 without a restart keeps the copies');

  // kill -9, then a restart.
  const before = { unsynced: generations(sb, 'unsynced.bin'), synced: generations(sb, 'synced.bin') };
  await vol.crash();
  await stateAfterStop(sb, 'another-boot');
  await vol.start();
  const after = generations(sb, 'unsynced.bin');
  t.ok(after.every((g, i) => g > before.unsynced[i]), `after a restart every copy the unsynced file had is dropped (generations ${before.unsynced} -> ${after})`);
  t.same(generations(sb, 'synced.bin'), before.synced, 'the fsynced file keeps its copies');
  t.ok(freshTiers(sb, 'synced.bin').every((tiers) => tiers.length > 0));
  t.ok((await fsp.readFile(path.join(sb.mnt, 'unsynced.bin'))).equals(unsynced), 'the unsynced file reads from the live volume');
  t.ok((await fsp.readFile(path.join(sb.mnt, 'synced.bin'))).equals(synced));
  t.match(vol.output, /machine restarted while 1 file\(s\) had writes not yet synced/, 'the daemon says so');
  t.equal(shadowStatus(sb).filesDroppedAfterRestart, 1, 'and so does status');
  t.match(cli(['status', sb.mnt]).stdout, /the machine had restarted before this mount: copies of 1 file\(s\) were dropped/);

  // A clean unmount is a sync point: after it, a restart drops nothing.
  await fsp.appendFile(path.join(sb.mnt, 'unsynced.bin'), 'more');
  t.equal(await vol.stop(), 0);
  t.same(await stateAfterStop(sb, 'a-third-boot'), [], 'no file is marked after a clean unmount');
  await vol.start();
  await new Promise((r) => setTimeout(r, 500));
  t.ok(freshTiers(sb, 'unsynced.bin').some((tiers) => tiers.length > 0), 'the copies made since are kept');
  t.notMatch(vol.output, /machine restarted/, 'and nothing is dropped');
});
