/**
 * Reactive admission, the placement policy until the predictive planner drives the shadow
 * manager: an extent read `admitAfterReads` times is copied to the fastest usable tier that does
 * not hold it yet. Read counts are kept for a bounded number of extents (oldest forgotten first).
 */
import { ReadObserver } from '../io/redirector';
import { TierSet } from '../tiers/tier-set';
import { OpenFile } from '../volume/open-files';
import { ShadowManager } from './shadow-manager';

const MAX_TRACKED_EXTENTS = 100_000;

export class ReactiveAdmission implements ReadObserver {
  private readonly reads = new Map<string, number>();

  constructor(
    private readonly tiers: TierSet,
    private readonly shadows: ShadowManager,
    private readonly admitAfterReads: number,
  ) {}

  onExtentRead(file: OpenFile, index: number, servedBy: number | 'live'): void {
    if (servedBy !== 'live') this.shadows.touch(servedBy, file.fileId, index);
    const target = this.tiers.fastestTakingCopies();
    if (!target || servedBy === target.id) return;
    const k = `${file.fileId}:${index}`;
    const n = (this.reads.get(k) ?? 0) + 1;
    this.reads.delete(k);
    if (n >= this.admitAfterReads) {
      this.shadows.requestCopy(file, index, target.id);
      return;
    }
    this.reads.set(k, n);
    if (this.reads.size > MAX_TRACKED_EXTENTS) {
      const oldest = this.reads.keys().next();
      if (!oldest.done) this.reads.delete(oldest.value);
    }
  }
}
