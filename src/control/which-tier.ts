/** Where each extent of a file lives (what `shadowfs which-tier` shows). */
import * as path from 'node:path';
import { isFresh } from '../extents/extent-map';
import { ShadowfsError, errorCode } from '../util/errors';
import { Volume } from '../volume/volume';
import { WhichTierReport } from './protocol';

/** A path as the user gives it: inside the mount (absolute) or volume-relative. */
export function volumePath(mountpoint: string, given: string): string {
  const abs = path.resolve(mountpoint, given.startsWith('/') && !given.startsWith(mountpoint) ? '.' + given : given);
  const rel = path.relative(mountpoint, abs);
  if (rel.startsWith('..') || path.isAbsolute(rel)) throw new ShadowfsError(`${given} is outside the volume mounted at ${mountpoint}`);
  return '/' + rel;
}

export async function whichTier(volume: Volume, mountpoint: string, given: unknown, extentSizeBytes: number): Promise<WhichTierReport> {
  if (typeof given !== 'string' || given.length === 0) throw new ShadowfsError('which-tier needs a path');
  const vp = volumePath(mountpoint, given);
  let st;
  try {
    st = await volume.getattr(vp);
  } catch (err) {
    throw new ShadowfsError(`${given}: ${errorCode(err) === 'ENOENT' ? 'no such file in the volume' : (err as Error).message}`);
  }
  if (!st.isFile()) throw new ShadowfsError(`${given} is not a regular file`);
  const fileId = Volume.fileIdOf(st);
  const count = Math.ceil(st.size / extentSizeBytes);
  const extents = [];
  for (let index = 0; index < count; index++) {
    const rec = volume.map.get(fileId, index);
    const name = (id: number): string => volume.tiers.get(id)?.tier.spec.name ?? `#${id}`;
    const fresh = rec ? rec.copies.filter((c) => isFresh(rec, c)).sort((a, b) => volume.tiers.rank(a.tierId) - volume.tiers.rank(b.tierId)).map((c) => name(c.tierId)) : [];
    const stale = rec ? rec.copies.filter((c) => !isFresh(rec, c)).map((c) => name(c.tierId)) : [];
    extents.push({ index, generation: rec?.generation ?? 0, fresh, stale });
  }
  return { path: vp, fileId, sizeBytes: st.size, extentSizeBytes, extents };
}
