/**
 * Changing the tiers of a running volume: add a tier, change a capacity, drain and remove a tier.
 * Draining moves nothing that would be lost: every copy on a non-coverage tier is a cache of bytes
 * the live volume (and the coverage tier) still hold, so draining drops them one by one, with
 * progress, while reads fall back to the other tiers; the coverage tier itself cannot be removed.
 */
import { ExtentMap } from '../extents/extent-map';
import { TierSet } from '../tiers/tier-set';
import { ShadowTier } from '../tiers/tier';
import { ShadowfsError } from '../util/errors';
import { ShadowManager } from './shadow-manager';

export interface DrainProgress {
  tier: string;
  totalCopies: number;
  removedCopies: number;
  done: boolean;
}

export class TierChanges {
  private drain: DrainProgress | undefined;

  constructor(
    private readonly map: ExtentMap,
    private readonly tiers: TierSet,
    private readonly shadows: ShadowManager,
    private readonly coverageTier: () => string | undefined,
  ) {}

  async add(tier: ShadowTier): Promise<void> {
    if (this.tiers.byName(tier.spec.name)) throw new ShadowfsError(`a tier named ${tier.spec.name} exists already`);
    await tier.open();
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

  /** Drops every copy on the tier, then removes it from the volume. */
  async remove(name: string): Promise<DrainProgress> {
    const vt = this.tiers.byName(name);
    if (!vt) throw new ShadowfsError(`no tier named ${name}`);
    if (this.coverageTier() === name) throw new ShadowfsError(`tier ${name} is the coverage tier; it cannot be removed`);
    if (this.tiers.all().length === 1) throw new ShadowfsError(`tier ${name} is the only tier`);
    if (this.drain && !this.drain.done) throw new ShadowfsError(`tier ${this.drain.tier} is being drained already`);
    let copies = this.copiesOn(vt.id);
    const drain: DrainProgress = { tier: name, totalCopies: copies.length, removedCopies: 0, done: false };
    this.drain = drain;
    // Copies running or asked for meanwhile may publish on the tier while it drains: after they
    // end, what they left is dropped too, until a look right before the removal finds none.
    while (copies.length > 0) {
      for (const { fileId, index } of copies) {
        if (this.map.removeCopy(fileId, index, vt.id)) this.shadows.discard(fileId, index, vt.id);
        drain.removedCopies++;
        // Let foreground requests in between removals.
        if (drain.removedCopies % 64 === 0) await new Promise((r) => setImmediate(r));
      }
      await this.shadows.idle();
      copies = this.copiesOn(vt.id);
      drain.totalCopies += copies.length;
    }
    this.tiers.remove(vt.id);
    await this.map.flush();
    await vt.tier.close();
    drain.done = true;
    return { ...drain };
  }

  private copiesOn(tierId: number): { fileId: string; index: number }[] {
    const copies: { fileId: string; index: number }[] = [];
    for (const fileId of this.map.fileIds()) {
      for (const index of this.map.extents(fileId).keys()) if (this.map.hasCopyOn(fileId, index, tierId)) copies.push({ fileId, index });
    }
    return copies;
  }
}
