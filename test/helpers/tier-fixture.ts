/**
 * An extent map and one empty directory tier ('nvme', 64 MiB) in a temporary directory, closed
 * and removed when the test ends: the pieces unit tests of the shadow manager and the redirector
 * build on.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ExtentMap } from '../../src/extents/extent-map';
import { DirectoryTier } from '../../src/tiers/directory-tier';
import { TierSet } from '../../src/tiers/tier-set';
import type { LiveReader } from '../../src/io/redirector';
import { preadFull } from '../../src/util/fd-io';
import type { OpenFile } from '../../src/volume/open-files';
import { openFileOn } from './open-file';
import type { HasTeardown } from './temp-dir';

export interface TierFixture {
  dir: string;
  map: ExtentMap;
  tier: DirectoryTier;
  tiers: TierSet;
  tierId: number;
}

export async function directoryTierFixture(t: HasTeardown): Promise<TierFixture> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shadowfs-tier-'));
  const map = await ExtentMap.open(path.join(dir, 'extents'));
  const tier = new DirectoryTier({ name: 'nvme', class: 'nvme', path: path.join(dir, 'nvme'), capacityBytes: 64 * 1024 * 1024, costPerGiBMonth: 0.1 });
  await tier.open();
  const tiers = await TierSet.create([tier], map);
  t.teardown(async () => {
    await tier.close();
    await map.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { dir, map, tier, tiers, tierId: tiers.all()[0].id };
}

export interface LiveFileFixture extends TierFixture {
  /** The live file's path. */
  p: string;
  /** It, opened as the volume would (read fd closed when the test ends). */
  file: OpenFile;
  /** Reads of it, as the redirector takes them from the live volume. */
  live: LiveReader;
}

/** A tier fixture and a live file holding `bytes` beside it: what redirector unit tests read and write. */
export async function liveFileFixture(t: HasTeardown, bytes: Buffer): Promise<LiveFileFixture> {
  const fx = await directoryTierFixture(t);
  const p = path.join(fx.dir, 'f');
  fs.writeFileSync(p, bytes);
  const file = openFileOn(p);
  t.teardown(() => fs.closeSync(file.readFd));
  const live: LiveReader = { authoritative: true, pread: (buf, at, length, position) => preadFull(file.readFd, buf, at, length, position) };
  return { ...fx, p, file, live };
}
