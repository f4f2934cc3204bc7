/**
 * Scrub: read every shadow copy whole and check it against its checksum. A copy that fails (or
 * cannot be read) is dropped — it will be made again from a good source — and a copy whose
 * checksum is unknown (patched in place since) gets one. One copy at a time, in the background:
 * at full speed when an operator asks (`shadowfs scrub`), paced when the schedule does
 * (scrub-schedule.ts), since reads check a copy only the first time after a mount.
 */
import { crc32 } from 'node:zlib';
import { ExtentMap, isFresh } from '../extents/extent-map';
import { TierSet } from '../tiers/tier-set';
import { Pacer } from '../util/pacer';
import { errorCode } from '../util/errors';

export interface ScrubProgress {
  running: boolean;
  totalCopies: number;
  checkedCopies: number;
  checkedBytes: number;
  badCopies: number;
  checksumsAdded: number;
  startedAtMs: number | null;
  finishedAtMs: number | null;
  /** Held to the background rate (a scheduled scrub no operator is waiting for). */
  paced: boolean;
}

export class Scrubber {
  private progress: ScrubProgress = { running: false, totalCopies: 0, checkedCopies: 0, checkedBytes: 0, badCopies: 0, checksumsAdded: 0, startedAtMs: null, finishedAtMs: null, paced: false };
  private current: Promise<ScrubProgress> | undefined;
  private stopping = false;
  private readonly pacer = new Pacer(() => this.bytesPerSec);

  constructor(
    private readonly map: ExtentMap,
    private readonly tiers: TierSet,
    /**
     * Drops a copy the map still points at (and its bytes); the caller re-covers what it lost.
     * unreadable: the tier failed the read (it may answer later), rather than returning wrong bytes.
     */
    private readonly dropCopy: (fileId: string, index: number, tierId: number, why: string, unreadable: boolean) => void,
    private readonly afterScrub: (bad: number) => void,
    /** The rate of a paced scrub (a reload may change it while one runs); none by default. */
    public bytesPerSec = Number.POSITIVE_INFINITY,
  ) {}

  status(): ScrubProgress {
    return { ...this.progress };
  }

  /**
   * Starts a scrub, or joins the one running (an operator joining a paced one lifts its pace).
   * Resolves with the final counts.
   */
  run({ paced = false }: { paced?: boolean } = {}, nowMs: () => number = Date.now): Promise<ScrubProgress> {
    if (this.current) {
      if (!paced) this.progress.paced = false;
      return this.current;
    }
    this.stopping = false;
    this.current = this.scrub(paced, nowMs).finally(() => (this.current = undefined));
    return this.current;
  }

  /** At unmount: the scrub running ends after the copy it is reading (it is not counted as done). */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.current?.catch(() => undefined);
  }

  private async scrub(paced: boolean, nowMs: () => number): Promise<ScrubProgress> {
    const work: { fileId: string; index: number; tierId: number }[] = [];
    for (const fileId of this.map.fileIds()) {
      for (const [index, rec] of this.map.extents(fileId)) {
        for (const c of rec.copies) if (isFresh(rec, c)) work.push({ fileId, index, tierId: c.tierId });
      }
    }
    this.progress = { running: true, totalCopies: work.length, checkedCopies: 0, checkedBytes: 0, badCopies: 0, checksumsAdded: 0, startedAtMs: nowMs(), finishedAtMs: null, paced };
    for (const w of work) {
      if (this.stopping) break;
      const rec = this.map.get(w.fileId, w.index);
      const copy = rec?.copies.find((c) => c.tierId === w.tierId);
      const vt = this.tiers.get(w.tierId);
      if (!rec || !copy || !isFresh(rec, copy) || !vt) {
        this.progress.checkedCopies++;
        continue;
      }
      if (this.progress.paced) await this.pacer.take(copy.sizeBytes);
      const generation = rec.generation;
      const crcBefore = copy.crc32;
      const buf = Buffer.allocUnsafe(copy.sizeBytes);
      let n = -1;
      let readError = '';
      try {
        n = await vt.tier.read({ fileId: w.fileId, index: w.index }, 0, copy.sizeBytes, buf, 0);
      } catch (err) {
        n = -1;
        readError = errorCode(err) ?? (err as Error).message;
      }
      // A write while we read makes the bytes a moving target: the copy is checked next time. So
      // does one begun before (it keeps the generation it bumped, and patches the copy in place:
      // then the checksum changes, or the write is still on). A copy made again meanwhile (same
      // generation, new bytes) is not the one we read.
      const now = this.map.get(w.fileId, w.index);
      const held = this.map.currentCopy(w.fileId, w.index, copy);
      const still = !!now && now.generation === generation && held?.generation === generation && held.crc32 === crcBefore;
      if (still && !this.map.isWriting(w.fileId, w.index)) {
        if (n !== copy.sizeBytes || (copy.crc32 !== null && crc32(buf.subarray(0, n)) !== copy.crc32)) {
          this.progress.badCopies++;
          this.dropCopy(w.fileId, w.index, w.tierId, n < 0 ? `could not be read (${readError})` : n !== copy.sizeBytes ? `held ${n} of its ${copy.sizeBytes} bytes` : 'failed its checksum', n < 0);
        } else if (copy.crc32 === null) {
          this.map.setChecksum(w.fileId, w.index, w.tierId, generation, crc32(buf));
          this.progress.checksumsAdded++;
        } else {
          this.map.markVerified(w.fileId, w.index, copy);
        }
      }
      this.progress.checkedCopies++;
      this.progress.checkedBytes += Math.max(0, n);
    }
    await this.map.flush();
    this.progress.running = false;
    this.progress.finishedAtMs = nowMs();
    if (!this.stopping) await this.map.setLastScrubbed(this.progress.finishedAtMs);
    this.afterScrub(this.progress.badCopies);
    return this.status();
  }
}
