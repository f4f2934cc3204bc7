/**
 * Names the file when a damaged copy is dropped (a read's checksum, a scrub, a tier read or patch
 * that failed), and says so loudly when that copy was the last home of bytes written while failed
 * over: they are lost, reads of them fail with EIO, and an operator needs the file's path, not its
 * id, to act. A tier going bad drops many copies at once, so each minute names the first few and
 * then only counts (losses are always named).
 */
import { Logger } from '../util/log';

export interface DamagedCopiesDeps {
  /** Mount-relative paths of the file (none when unknown, e.g. a file removed since). */
  pathsOf(fileId: string): string[];
  tierName(tierId: number): string;
  log: Logger;
  nowMs?: () => number;
}

export const NAMED_PER_MINUTE = 20;

export class DamagedCopies {
  private windowStartMs = Number.NEGATIVE_INFINITY;
  private named = 0;
  private unnamed = 0;

  constructor(private readonly d: DamagedCopiesDeps) {}

  /** lost: the copy was the last home of its bytes (FailoverController.copyDropped). */
  dropped(fileId: string, index: number, tierId: number, why: string, lost: boolean): void {
    const now = (this.d.nowMs ?? Date.now)();
    if (now - this.windowStartMs >= 60_000) {
      if (this.unnamed > 0) this.d.log.warn('copies', `${this.unnamed} more damaged copies dropped in the last minute (not named)`);
      this.windowStartMs = now;
      this.named = 0;
      this.unnamed = 0;
    }
    if (this.named >= NAMED_PER_MINUTE && !lost) {
      this.unnamed++;
      return;
    }
    this.named++;
    const paths = this.d.pathsOf(fileId);
    const name = paths.length > 0 ? paths.join(', ') : `file ${fileId}`;
    const said = `${name}: the copy of extent ${index} on ${this.d.tierName(tierId)} ${why}; dropped`;
    if (lost) {
      this.d.log.error('copies', `${said}. It was the last copy of bytes written there while failed over: they are lost. Reads of that extent fail (EIO) until a write replaces all of it`);
    } else {
      this.d.log.warn('copies', said);
    }
  }
}
