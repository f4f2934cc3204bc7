/**
 * One-off moves an operator asks for (`shadowfs promote`, `shadowfs demote`), unlike pins which
 * persist: promote copies a file's extents (or a range) to a tier now; demote moves them off a tier
 * to the next cheaper one, or drops the copy when the coverage tier (or that cheaper tier) already
 * holds it, or when no cheaper tier exists (the live volume always has the bytes). Copies the shadow
 * manager must keep (an active hint, a pin, a write's only copy) stay, counted by reason.
 *
 * The bytes are moved by the shadow manager like any copy (throttled, generation-checked); this
 * only decides what to ask for, waits for it and counts. Afterwards the operator's choice is held
 * for a while (`holdMs`): the predictive planner neither drops a promoted copy nor brings a demoted
 * extent back (OperatorMoves). Capacity pressure may still evict a promoted copy: that is what a
 * pin is for.
 */
import { randomUUID } from 'node:crypto';
import { ExtentMap, isFresh } from '../extents/extent-map';
import { TierSet, VolumeTier } from '../tiers/tier-set';
import { ShadowfsError } from '../util/errors';
import type { OpenFile } from '../volume/open-files';
import { FilePinner } from './coverage';
import type { OperatorMoves } from './predictive-placement';
import { Placements } from './pins';
import { ShadowManager } from './shadow-manager';

/**
 * Why a demote left a copy on its tier: the copies the shadow manager must keep (mustKeep), told
 * apart so the operator learns which (the CLI words them: src/cli/commands/placement.ts).
 */
export interface KeptExtents {
  /** The tier is the coverage tier (its copies are never evicted). */
  coverageTier: number;
  /** The file is pinned to the tier. */
  pinned: number;
  /** An active hint covers the extent (it is kept on the fastest tier while the hint lasts). */
  hinted: number;
  /** The copy is the extent's only one besides the live volume (a write the coverage tier lacks yet). */
  soleCopy: number;
}

export type KeptReason = keyof KeptExtents;

export interface MoveProgress {
  id: string;
  kind: 'promote' | 'demote';
  path: string;
  tier: string;
  totalExtents: number;
  doneExtents: number;
  /** Copies made (promote) or copies moved to a cheaper tier (demote). */
  copiedExtents: number;
  /** Demote: copies dropped because another tier (or only the live volume) holds the bytes. */
  droppedExtents: number;
  /** Already where asked (promote), or had no copy on the tier (demote). */
  unchangedExtents: number;
  /** Demote: copies left on the tier because they must stay there, by reason. */
  keptExtents: KeptExtents;
  failedExtents: number;
  /** Demote: where the moved copies went. */
  movedTo?: string;
  running: boolean;
  startedAtMs: number;
  finishedAtMs: number | null;
}

export interface MoveRequest {
  id?: string;
  /** Volume path (for messages), live path and file id of the file. */
  path: string;
  livePath: string;
  fileId: string;
  tier: string;
  /** Extent range (inclusive); default the whole file. */
  firstIndex?: number;
  lastIndex?: number;
}

/** Copies in flight per move: enough to keep the shadow manager busy, few enough to share it. */
const WINDOW = 8;
const RETRY_MS = 50;
const REFUSED_FOR_MS = 5 * 60_000;
const MAX_JOBS_REMEMBERED = 64;
const DEFAULT_HOLD_MS = 10 * 60_000;

export class OneOffMoves implements OperatorMoves {
  private readonly jobs = new Map<string, MoveProgress>();
  /** `fileId:index:tier` -> what the operator did there, until when. */
  private readonly held = new Map<string, { keep: boolean; untilMs: number }>();

  constructor(
    private readonly map: ExtentMap,
    private readonly tiers: TierSet,
    private readonly shadows: ShadowManager,
    private readonly files: FilePinner,
    private readonly placements: Placements,
    private readonly extentSizeBytes: number,
    private readonly coverageTier: () => string | undefined,
    private readonly holdMs = DEFAULT_HOLD_MS,
  ) {}

  progress(id: string): MoveProgress | undefined {
    const p = this.jobs.get(id);
    return p ? { ...p, keptExtents: { ...p.keptExtents } } : undefined;
  }

  keeps(fileId: string, index: number, tierName: string, nowMs: number): boolean {
    const h = this.held.get(`${fileId}:${index}:${tierName}`);
    return !!h && h.keep && h.untilMs > nowMs;
  }

  avoids(fileId: string, index: number, tierName: string, nowMs: number): boolean {
    const h = this.held.get(`${fileId}:${index}:${tierName}`);
    return !!h && !h.keep && h.untilMs > nowMs;
  }

  /** Copy the extents to `tier` now; resolves when every copy is made (or failed). */
  async promote(req: MoveRequest): Promise<MoveProgress> {
    const vt = this.tierNamed(req.tier);
    if (vt.tier.health() !== 'healthy') throw new ShadowfsError(`tier ${req.tier} is ${vt.tier.health()}: nothing can be copied there now`);
    if (this.tiers.draining.has(vt.id)) throw new ShadowfsError(drainingRefusal(req.tier));
    return this.withFile(req, 'promote', async (file, p, first, last) => {
      const bytes = Math.max(0, Math.min(file.sizeBytes, (last + 1) * this.extentSizeBytes) - first * this.extentSizeBytes);
      if (bytes > vt.tier.spec.capacityBytes) {
        throw new ShadowfsError(`${req.path}: ${bytes} bytes do not fit tier ${req.tier} (capacity ${vt.tier.spec.capacityBytes} bytes)`);
      }
      const waits: Promise<void>[] = [];
      for (let index = first; index <= last; index++) {
        this.hold(file.fileId, index, req.tier, true);
        if (this.hasFresh(file.fileId, index, vt.id)) {
          p.unchangedExtents++;
          p.doneExtents++;
          continue;
        }
        waits.push(this.copy(file, index, vt.id, p, (copy) => this.shadows.requestCopy(file, index, vt.id, copy)));
        if (waits.length >= WINDOW) await waits.shift();
      }
      await Promise.all(waits);
    });
  }

  /** Move the extents off `tier`: to the next cheaper tier, or drop copies held elsewhere. */
  async demote(req: MoveRequest): Promise<MoveProgress> {
    const vt = this.tierNamed(req.tier);
    if (req.tier === this.coverageTier()) throw new ShadowfsError(`${req.tier} is the coverage tier: it holds every extent, nothing is demoted from it`);
    const pin = this.placements.pinOf(req.fileId);
    if (pin?.tier === req.tier) throw new ShadowfsError(`${req.path} is pinned to ${req.tier}: unpin it first`);
    const cheaper = this.nextCheaper(vt);
    const coverage = this.coverageTier() ? this.tiers.byName(this.coverageTier() as string) : undefined;
    return this.withFile(req, 'demote', async (file, p, first, last) => {
      if (cheaper) p.movedTo = cheaper.tier.spec.name;
      const waits: Promise<void>[] = [];
      for (let index = first; index <= last; index++) {
        const rec = this.map.get(file.fileId, index);
        const onTier = rec?.copies.find((c) => c.tierId === vt.id);
        if (!rec || !onTier) {
          p.unchangedExtents++;
          p.doneExtents++;
          continue;
        }
        const heldElsewhere = (coverage && this.hasFresh(file.fileId, index, coverage.id)) || (cheaper && this.hasFresh(file.fileId, index, cheaper.id));
        // Nothing cheaper, the bytes held elsewhere already, or a stale copy: just drop it.
        const drop = !cheaper || heldElsewhere || !isFresh(rec, onTier);
        // Asked before anything moves: a migration would copy to the cheaper tier and only then be
        // refused the drop. Only a drop can lose a sole copy (a migration makes another first).
        const kept = this.keptBecause(file.fileId, index, vt, drop);
        if (kept) {
          p.keptExtents[kept]++;
          p.doneExtents++;
          continue;
        }
        this.hold(file.fileId, index, req.tier, false);
        if (drop) {
          if (await this.shadows.evict(file.fileId, index, vt.id)) p.droppedExtents++;
          else this.countRefusedDrop(p, file.fileId, index, vt);
          p.doneExtents++;
          continue;
        }
        this.hold(file.fileId, index, cheaper.tier.spec.name, true);
        waits.push(this.copy(file, index, cheaper.id, p, (moved) => this.shadows.requestMigrate(file, index, vt.id, cheaper.id, moved)));
        if (waits.length >= WINDOW) await waits.shift();
      }
      await Promise.all(waits);
    });
  }

  /**
   * Why the shadow manager must keep this copy (ShadowManager.mustKeep, told apart), if it must.
   * `dropping`: whether the copy would go with no copy made elsewhere first.
   */
  private keptBecause(fileId: string, index: number, vt: VolumeTier, dropping: boolean): KeptReason | undefined {
    const name = vt.tier.spec.name;
    if (this.shadows.protectedTiers.has(vt.id) || name === this.coverageTier()) return 'coverageTier';
    if (this.placements.pinOf(fileId)?.tier === name) return 'pinned';
    if (this.placements.isProtected(name, fileId, index, Date.now())) return 'hinted';
    if (dropping && this.shadows.isSoleHome(fileId, index, vt.id)) return 'soleCopy';
    return undefined;
  }

  /** The shadow manager refused a drop the checks above allowed: a pin, hint or write came meanwhile, or the copy went. */
  private countRefusedDrop(p: MoveProgress, fileId: string, index: number, vt: VolumeTier): void {
    const kept = this.keptBecause(fileId, index, vt, true);
    if (kept) p.keptExtents[kept]++;
    else if (!this.map.hasCopyOn(fileId, index, vt.id)) p.unchangedExtents++;
    else p.failedExtents++;
  }

  /** The tier one step cheaper than `vt` (the dearest of the cheaper healthy tiers), if any. */
  private nextCheaper(vt: VolumeTier): VolumeTier | undefined {
    const cost = vt.tier.spec.costPerGiBMonth;
    return this.tiers
      .all()
      .filter((t) => t.id !== vt.id && this.tiers.takesCopies(t) && t.tier.spec.costPerGiBMonth < cost)
      .sort((a, b) => b.tier.spec.costPerGiBMonth - a.tier.spec.costPerGiBMonth || this.tiers.rank(a.id) - this.tiers.rank(b.id))[0];
  }

  private tierNamed(name: string): VolumeTier {
    const vt = this.tiers.byName(name);
    if (!vt) throw new ShadowfsError(`no tier named ${name} (tiers: ${this.tiers.all().map((t) => t.tier.spec.name).join(', ')})`);
    return vt;
  }

  private hasFresh(fileId: string, index: number, tierId: number): boolean {
    const rec = this.map.get(fileId, index);
    return !!rec && rec.copies.some((c) => c.tierId === tierId && isFresh(rec, c));
  }

  private hold(fileId: string, index: number, tier: string, keep: boolean): void {
    const now = Date.now();
    this.held.set(`${fileId}:${index}:${tier}`, { keep, untilMs: now + this.holdMs });
    if (this.held.size > 100_000) for (const [k, h] of this.held) if (h.untilMs <= now) this.held.delete(k);
  }

  /**
   * Ask for one copy and wait for it. The shadow manager's queue is bounded: a refused request is
   * retried (it may also mean the same copy is already queued, so a fresh copy ends the wait).
   */
  private async copy(file: OpenFile, index: number, tierId: number, p: MoveProgress, ask: (done: (ok: boolean) => void) => boolean): Promise<void> {
    // Refusals for this long (a shadow manager that is closing, a queue that never drains): give up.
    const giveUpAtMs = Date.now() + REFUSED_FOR_MS;
    for (;;) {
      const outcome = await new Promise<boolean | undefined>((resolve) => {
        if (!ask((ok) => resolve(ok))) resolve(undefined);
      });
      if (outcome !== undefined) {
        if (outcome) p.copiedExtents++;
        else p.failedExtents++;
        break;
      }
      if (this.hasFresh(file.fileId, index, tierId)) {
        p.copiedExtents++;
        break;
      }
      if (Date.now() > giveUpAtMs) {
        p.failedExtents++;
        break;
      }
      await new Promise((r) => setTimeout(r, RETRY_MS));
    }
    p.doneExtents++;
  }

  private async withFile(
    req: MoveRequest,
    kind: 'promote' | 'demote',
    work: (file: OpenFile, p: MoveProgress, first: number, last: number) => Promise<void>,
  ): Promise<MoveProgress> {
    const file = await this.files.pinFile(req.livePath);
    if (!file || file.fileId !== req.fileId) {
      if (file) this.files.unpinFile(file);
      throw new ShadowfsError(`${req.path}: the file changed or vanished`);
    }
    const count = Math.ceil(file.sizeBytes / this.extentSizeBytes);
    const first = Math.max(0, req.firstIndex ?? 0);
    const last = Math.min(count - 1, req.lastIndex ?? count - 1);
    const p: MoveProgress = {
      id: req.id ?? randomUUID(),
      kind,
      path: req.path,
      tier: req.tier,
      totalExtents: Math.max(0, last - first + 1),
      doneExtents: 0,
      copiedExtents: 0,
      droppedExtents: 0,
      unchangedExtents: 0,
      keptExtents: { coverageTier: 0, pinned: 0, hinted: 0, soleCopy: 0 },
      failedExtents: 0,
      running: true,
      startedAtMs: Date.now(),
      finishedAtMs: null,
    };
    this.jobs.set(p.id, p);
    if (this.jobs.size > MAX_JOBS_REMEMBERED) this.jobs.delete(this.jobs.keys().next().value as string);
    try {
      await work(file, p, first, last);
    } finally {
      this.files.unpinFile(file);
      p.running = false;
      p.finishedAtMs = Date.now();
    }
    return { ...p, keptExtents: { ...p.keptExtents } };
  }
}

/** Extent range of a byte range A-B (inclusive; default the whole file), validated for the control API. */
export function extentRangeOf(fromByte: unknown, toByte: unknown, sizeBytes: number, extentSizeBytes: number): { firstIndex: number; lastIndex: number } {
  const from = fromByte === undefined ? 0 : Number(fromByte);
  const to = toByte === undefined ? Math.max(0, sizeBytes - 1) : Number(toByte);
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < 0 || to < from) throw new ShadowfsError('range: expected A-B with 0 <= A <= B (bytes)');
  if (from >= sizeBytes && sizeBytes > 0) throw new ShadowfsError(`range: starts at byte ${from}, past the end of the file (${sizeBytes} bytes)`);
  return { firstIndex: Math.floor(from / extentSizeBytes), lastIndex: Math.floor(to / extentSizeBytes) };
}

/** Why nothing new goes to a tier `tier remove` is draining (promote, pin). */
export function drainingRefusal(tierName: string): string {
  return `tier ${tierName} is being removed (tier remove is draining it): nothing new is copied there`;
}
