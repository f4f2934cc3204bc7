/**
 * The tiers of one volume, with the small ids the extent map uses for them, in read preference
 * order (fastest class first; declaration order breaks ties).
 */
import { ExtentMap } from '../extents/extent-map';
import { ShadowTier, TIER_CLASS_RANK } from './tier';

export interface VolumeTier {
  id: number;
  tier: ShadowTier;
}

/** A healthy directory tier: its copies can be patched in place and take writes (an object tier's cannot). */
export function isHealthyDirectoryTier(vt: VolumeTier | undefined): vt is VolumeTier {
  return !!vt && vt.tier.spec.class !== 'object' && vt.tier.health() === 'healthy';
}

export class TierSet {
  private readonly byId = new Map<number, VolumeTier>();
  private ordered: VolumeTier[] = [];

  static async create(tiers: ShadowTier[], map: ExtentMap): Promise<TierSet> {
    const set = new TierSet();
    for (const tier of tiers) await set.add(tier, map);
    return set;
  }

  async add(tier: ShadowTier, map: ExtentMap): Promise<VolumeTier> {
    // Opened with the volume as its owner, the tier is claimed already (a no-op here); this is the
    // guarantee for one opened without.
    await tier.claim(await map.volumeId());
    const vt = { id: await map.tierId(tier.spec.name), tier };
    this.byId.set(vt.id, vt);
    this.ordered = [...this.byId.values()].sort(
      (a, b) => TIER_CLASS_RANK[a.tier.spec.class] - TIER_CLASS_RANK[b.tier.spec.class],
    );
    return vt;
  }

  /** Takes a tier out of the set (its copies must be gone from the map first). */
  remove(id: number): VolumeTier | undefined {
    const vt = this.byId.get(id);
    this.byId.delete(id);
    this.ordered = this.ordered.filter((t) => t.id !== id);
    return vt;
  }

  get(id: number): VolumeTier | undefined {
    return this.byId.get(id);
  }

  byName(name: string): VolumeTier | undefined {
    return this.ordered.find((t) => t.tier.spec.name === name);
  }

  /** Fastest first. */
  all(): readonly VolumeTier[] {
    return this.ordered;
  }

  rank(id: number): number {
    const t = this.byId.get(id);
    return t ? TIER_CLASS_RANK[t.tier.spec.class] : Number.MAX_SAFE_INTEGER;
  }

  isUsable(id: number): boolean {
    return this.byId.get(id)?.tier.health() === 'healthy';
  }

  /** Tiers being drained for removal: a new copy there would only have to move again (the shadow manager refuses it). */
  readonly draining = new Set<number>();

  /** Healthy and not being drained: a tier a policy may send new copies to. */
  takesCopies(vt: VolumeTier): boolean {
    return vt.tier.health() === 'healthy' && !this.draining.has(vt.id);
  }

  /** The fastest tier that takes new copies (admission's and pins' default target). */
  fastestTakingCopies(): VolumeTier | undefined {
    return this.ordered.find((vt) => this.takesCopies(vt));
  }

  /**
   * Where a write puts a whole new copy of an extent: healthy directory tiers (a copy there can be
   * patched by the writes that follow; an object-tier copy would have to be uploaded again for
   * each), the coverage tier first, then fastest first.
   */
  homesForWrites(coverageTierId: number | undefined, exclude: readonly number[] = []): VolumeTier[] {
    return this.ordered
      .filter((vt) => isHealthyDirectoryTier(vt) && !exclude.includes(vt.id) && !this.draining.has(vt.id))
      .sort((a, b) => (a.id === coverageTierId ? -1 : b.id === coverageTierId ? 1 : this.rank(a.id) - this.rank(b.id)));
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.ordered.map((t) => t.tier.close()));
  }
}
