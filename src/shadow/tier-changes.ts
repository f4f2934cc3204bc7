/**
 * Changing the tiers of a running volume: add a tier, change a capacity, drain and remove a tier.
 * Draining drops the copies that are caches of bytes the live volume (and the coverage tier) still
 * hold, one by one, with progress, while reads fall back to the other tiers. A copy that is the
 * only one of bytes written through the mount that coverage has not copied yet (with an object
 * coverage tier, or one that is down or full: ARCHITECTURE rule 2) is moved to another tier first;
 * if none can take it, the tier stays. The coverage tier itself cannot be removed.
 */
import { ExtentMap } from '../extents/extent-map';
import { TierSet, VolumeTier } from '../tiers/tier-set';
import { ShadowTier } from '../tiers/tier';
import { ShadowfsError } from '../util/errors';
import type { FilePinner } from './coverage';
import { ShadowManager } from './shadow-manager';

/** Opens the file an extent belongs to, so that its copy can be moved. */
export interface DrainFiles extends FilePinner {
  livePathOf(fileId: string): string | undefined;
}

export interface DrainProgress {
  tier: string;
  totalCopies: number;
  removedCopies: number;
  /** Copies moved to another tier first: the only ones of their bytes besides the live volume. */
  movedCopies: number;
  done: boolean;
  /** Left behind for the operator once removed (an owner mark that could not be deleted). */
  note?: string;
}

export class TierChanges {
  private drain: DrainProgress | undefined;

  constructor(
    private readonly map: ExtentMap,
    private readonly tiers: TierSet,
    private readonly shadows: ShadowManager,
    private readonly coverageTier: () => string | undefined,
    private readonly files?: DrainFiles,
  ) {}

  async add(tier: ShadowTier): Promise<void> {
    if (this.tiers.byName(tier.spec.name)) throw new ShadowfsError(`a tier named ${tier.spec.name} exists already`);
    await tier.open(await this.map.volumeId());
    await this.tiers.add(tier, this.map);
  }

  async setCapacity(name: string, capacityBytes: number): Promise<{ evicted: boolean }> {
    const vt = this.tiers.byName(name);
    if (!vt) throw new ShadowfsError(`no tier named ${name}`);
    if (capacityBytes <= 0) throw new ShadowfsError('capacity must be above zero');
    if (this.shadows.protectedTiers.has(vt.id) && capacityBytes < vt.tier.usedBytes()) {
      throw new ShadowfsError(`tier ${name} holds the volume's coverage (${vt.tier.usedBytes()} bytes): it cannot shrink below that`);
    }
    vt.tier.spec.capacityBytes = capacityBytes;
    return { evicted: await this.shadows.shrinkToCapacity(vt.id) };
  }

  progress(): DrainProgress | undefined {
    return this.drain ? { ...this.drain } : undefined;
  }

  /** Drops every copy on the tier (moving the ones that must stay first), then removes it from the volume. */
  async remove(name: string): Promise<DrainProgress> {
    const vt = this.tiers.byName(name);
    if (!vt) throw new ShadowfsError(`no tier named ${name}`);
    if (this.coverageTier() === name) throw new ShadowfsError(`tier ${name} is the coverage tier; it cannot be removed`);
    if (this.tiers.all().length === 1) throw new ShadowfsError(`tier ${name} is the only tier`);
    if (this.drain && !this.drain.done) throw new ShadowfsError(`tier ${this.drain.tier} is being drained already`);
    let copies = this.copiesOn(vt.id);
    const drain: DrainProgress = { tier: name, totalCopies: copies.length, removedCopies: 0, movedCopies: 0, done: false };
    this.drain = drain;
    this.tiers.draining.add(vt.id);
    try {
      // Copies to the tier that began before the drain did (admission, a pin, a promote, a write's
      // copy) may publish on it while it drains, also when it held nothing: after they end (no
      // new one is taken now: ShadowManager.idleFor), what they left is dropped too, until a look
      // right before the removal finds none. Copies to other tiers are not waited for.
      for (;;) {
        const sole: { fileId: string; index: number }[] = [];
        for (const c of copies) {
          if (this.shadows.isSoleHome(c.fileId, c.index, vt.id)) {
            sole.push(c);
            continue;
          }
          if (this.map.removeCopy(c.fileId, c.index, vt.id)) this.shadows.discard(c.fileId, c.index, vt.id);
          drain.removedCopies++;
          // Let foreground requests in between removals.
          if (drain.removedCopies % 64 === 0) await new Promise((r) => setImmediate(r));
        }
        await this.moveSoleCopies(vt, sole, drain);
        await this.shadows.idleFor(vt.id);
        copies = this.copiesOn(vt.id);
        if (copies.length === 0) break;
        drain.totalCopies += copies.length;
      }
      this.tiers.remove(vt.id);
      this.shadows.forgetTier(vt.id);
      await this.map.flush();
      drain.note = await vt.tier.disown(await this.map.volumeId());
      await vt.tier.close();
    } catch (err) {
      this.drain = undefined;
      throw err;
    } finally {
      this.tiers.draining.delete(vt.id);
    }
    drain.done = true;
    return { ...drain };
  }

  /**
   * The sole copies go to another tier (the move drops the source once the new copy is published);
   * the next round drops whatever is no longer sole. One that cannot move keeps the tier.
   */
  private async moveSoleCopies(vt: VolumeTier, sole: { fileId: string; index: number }[], drain: DrainProgress): Promise<void> {
    let stuck = 0;
    for (const { fileId, index } of sole) {
      if (!this.shadows.isSoleHome(fileId, index, vt.id)) continue;
      if (await this.moveOne(vt, fileId, index)) drain.movedCopies++;
      else if (this.shadows.isSoleHome(fileId, index, vt.id)) stuck++;
    }
    if (stuck > 0) {
      throw new ShadowfsError(
        `tier ${vt.tier.spec.name} holds the only copy of ${stuck} extent(s) written through the mount that the coverage tier does not hold yet, ` +
          'and no other tier could take them: the tier stays. Retry when coverage has caught up (shadowfs status) or another tier has room',
      );
    }
  }

  private async moveOne(vt: VolumeTier, fileId: string, index: number): Promise<boolean> {
    const livePath = this.files?.livePathOf(fileId);
    const file = livePath ? await this.files?.pinFile(livePath) : undefined;
    if (!this.files || !file) return false;
    try {
      // Renamed or replaced since: the path names another file now.
      if (file.fileId !== fileId) return false;
      for (const to of this.tiers.homesForWrites(undefined, [vt.id])) {
        for (let attempt = 0; attempt < 100; attempt++) {
          const moved = await new Promise<boolean | undefined>((resolve) => {
            if (!this.shadows.requestMigrate(file, index, vt.id, to.id, resolve)) resolve(undefined);
          });
          if (moved === true || !this.shadows.isSoleHome(fileId, index, vt.id)) return true;
          if (moved === false) break;
          // Refused: the copy queue is full, or the same copy is queued already.
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      return false;
    } finally {
      this.files.unpinFile(file);
    }
  }

  private copiesOn(tierId: number): { fileId: string; index: number }[] {
    const copies: { fileId: string; index: number }[] = [];
    for (const fileId of this.map.fileIds()) {
      for (const index of this.map.extents(fileId).keys()) if (this.map.hasCopyOn(fileId, index, tierId)) copies.push({ fileId, index });
    }
    return copies;
  }
}
