/**
 * Writes while failed over: the bytes go to the shadow copies instead of the live file.
 *
 * An extent with fresh copies on directory tiers is patched in place on all of them; one without
 * gets a whole new copy, built from its old bytes (an object-tier copy, or the live volume if it
 * still answers within the deadline) and the new ones. Each written extent ends up on at least two
 * tiers when two healthy directory tiers exist (two failure domains), and its record is persisted
 * before the write is acknowledged.
 */
import { CopyRecord, ExtentMap, isFresh } from '../extents/extent-map';
import { isHealthyDirectoryTier, TierSet, VolumeTier } from '../tiers/tier-set';
import type { ExtentRef } from '../tiers/tier';
import { OpenFile } from '../volume/open-files';
import { FsError } from '../util/errors';
import { LiveGuard } from './live-guard';
import { preadFull } from '../util/fd-io';

export interface ShadowWriteDeps {
  map: ExtentMap;
  tiers: TierSet;
  extentSizeBytes: number;
  guard: LiveGuard;
  /** The coverage tier's id, preferred as one of the two homes of a new copy. */
  coverageTierId: () => number | undefined;
  discard: (fileId: string, index: number, tierId: number) => void;
  /** The extent's bytes written while failed over are lost (FailoverJournal.lost). */
  isLost: (fileId: string, index: number) => boolean;
}

/**
 * A write while failed over that failed before it changed any copy of the extent (the old bytes
 * could not be read, or no tier took the new copy): the extent is as it was.
 */
export class ExtentNotWritten extends FsError {
  constructor(message: string) {
    super('EIO', message);
  }
}

export class ShadowWriter {
  constructor(private readonly d: ShadowWriteDeps) {}

  private freshCopies(fileId: string, index: number): CopyRecord[] {
    const rec = this.d.map.get(fileId, index);
    if (!rec) return [];
    return rec.copies.filter((c) => isFresh(rec, c) && this.d.tiers.isUsable(c.tierId));
  }

  /**
   * The extent's bytes before the write (up to `length`): a fresh copy on any tier, else zeros when
   * the extent lies past what the live file held (a hole) or the mount made it zeros, else the live
   * file if it still answers (the shadows were not complete). Bytes journaled as lost, or written
   * while failed over (`changedSinceFailover`) with no copy that can be read now, are an error:
   * neither zeros nor the live file's older bytes are the extent's.
   */
  async oldBytes(file: OpenFile, index: number, length: number, liveSizeBytes: number, changedSinceFailover: boolean): Promise<Buffer> {
    const E = this.d.extentSizeBytes;
    const out = Buffer.alloc(length);
    if (length === 0) return out;
    const copies = this.freshCopies(file.fileId, index);
    let failed = '';
    for (const c of copies) {
      const vt = this.d.tiers.get(c.tierId);
      if (!vt) continue;
      try {
        // A short read failed part way (a bad sector): the rest of `out` would pass zeros off as the extent's bytes.
        const want = Math.min(length, c.sizeBytes);
        const n = await vt.tier.read({ fileId: file.fileId, index }, 0, want, out, 0);
        if (n === want) return out;
        out.fill(0);
        failed = `read ${n} of ${want} bytes`;
      } catch (err) {
        failed = (err as Error).message;
      }
    }
    const rec = this.d.map.get(file.fileId, index);
    if (changedSinceFailover && rec?.copies.some((c) => isFresh(rec, c))) throw new FsError('EIO', `extent ${index} of ${file.livePath}: no shadow copy of it can be read (${failed || 'its tiers are unavailable'})`);
    if (this.d.isLost(file.fileId, index)) throw new FsError('EIO', `extent ${index} of ${file.livePath}: its bytes written while failed over are lost (its last copy was damaged)`);
    const liveHas = Math.min(length, Math.max(0, liveSizeBytes - index * E));
    // Zeros the mount made (a grown file, a punched hole) need no copy and no live volume.
    if (liveHas === 0 || this.d.map.get(file.fileId, index)?.zeros) return out;
    if (file.readFd < 0) throw new FsError('EIO', `extent ${index} of ${file.livePath} has no shadow copy and the live volume is failed over`);
    try {
      await this.d.guard.run('read', () => preadFull(file.readFd, out, 0, liveHas, index * E), { force: true });
    } catch (err) {
      throw new FsError('EIO', `extent ${index} of ${file.livePath} has no shadow copy and the live volume does not answer (${(err as Error).message})`);
    }
    return out;
  }

  /**
   * Apply a write of `data` at `position` to extent `index` whose new length is `copyLen`
   * (`data` may be empty: the extent only changes length). changedSinceFailover: an earlier write
   * while failed over changed the extent (see oldBytes). Returns once persisted.
   */
  async writeExtent(file: OpenFile, index: number, data: Buffer, offsetInExtent: number, copyLen: number, liveSizeBytes: number, changedSinceFailover: boolean): Promise<void> {
    const ref = { fileId: file.fileId, index };
    const patchable = this.freshCopies(file.fileId, index).filter((c) => isHealthyDirectoryTier(this.d.tiers.get(c.tierId)));
    const done: number[] = [];
    if (patchable.length > 0) {
      await this.d.map.prepareShadowWrite(file.fileId, index);
      await Promise.all(patchable.map(async (c) => {
        const vt = this.d.tiers.get(c.tierId) as VolumeTier;
        try {
          if (data.length > 0) await vt.tier.patch(ref, offsetInExtent, data, false);
          // With no bytes (an old last extent the file grew past) offsetInExtent may be the extent's
          // end: that says nothing about the copy's length, which must still become copyLen.
          const written = data.length > 0 ? offsetInExtent + data.length : 0;
          if (Math.max(c.sizeBytes, written) !== copyLen) await vt.tier.truncate(ref, copyLen);
          done.push(c.tierId);
        } catch {
          // That copy is lost to this write; the others carry it (or the write fails below).
        }
      }));
    }
    if (done.length < 2) {
      // A new whole copy: from a patched one if there is one, else from the old bytes.
      let whole: Buffer | undefined;
      if (done.length === 1) {
        whole = Buffer.alloc(copyLen);
        // The patched copy holds the write: if it cannot be read back, it stays the one home
        // rather than fail a write that has landed.
        const n = await (this.d.tiers.get(done[0]) as VolumeTier).tier.read(ref, 0, copyLen, whole, 0).catch(() => -1);
        if (n !== copyLen) whole = undefined;
      } else if (offsetInExtent === 0 && data.length >= copyLen) {
        // Every byte is new: the old ones are not needed (nor missed, if they were lost).
        whole = Buffer.from(data.subarray(0, copyLen));
      } else {
        whole = await this.oldBytes(file, index, copyLen, liveSizeBytes, changedSinceFailover).catch((err: Error) => {
          if (patchable.length > 0) throw err;
          throw new ExtentNotWritten(err.message);
        });
        data.copy(whole, offsetInExtent);
      }
      if (whole) await this.putWhole(ref, whole, done);
    }
    if (done.length === 0) {
      const why = `no shadow tier could take extent ${index} of ${file.livePath}`;
      // Copies it tried to patch may hold part of the write now: then the extent has changed.
      throw patchable.length === 0 ? new ExtentNotWritten(why) : new FsError('EIO', why);
    }
    for (const stale of await this.d.map.commitShadowWrite(file.fileId, index, done, copyLen)) {
      this.d.discard(file.fileId, index, stale.tierId);
    }
  }

  /**
   * Puts a whole copy on the tiers not in `done` (adding each that took it) until two hold the
   * extent. Tiers with room for it first, each group in its order: no room is made by evictions
   * here (the shadows are all the volume has now), so a tier takes a copy past its capacity only
   * when no other has room, rather than fail the write.
   */
  private async putWhole(ref: ExtentRef, whole: Buffer, done: number[]): Promise<void> {
    const homes = this.d.tiers.homesForWrites(this.d.coverageTierId(), done);
    const fits = (vt: VolumeTier): boolean => vt.tier.freeBytes() >= whole.length;
    for (const vt of [...homes.filter(fits), ...homes.filter((vt) => !fits(vt))]) {
      if (done.length >= 2) return;
      try {
        await vt.tier.put(ref, whole);
        done.push(vt.id);
      } catch {
        // try the next tier
      }
    }
  }
}
