/**
 * Where an extent copy lives on a directory tier (and in the object tier's local cache):
 *
 *   <root>/<first 2 chars of fileId>/<fileId>/<index>
 *
 * One file per copy so a partial-extent read is exactly one pread and dropping a copy frees its
 * space with one unlink. The 2-character fan-out keeps directories small on big tiers.
 * Temporary files (`.tmp-<random>`) live beside the final name so rename is atomic.
 */
import path from 'node:path';
import { FsError, ShadowfsError } from '../util/errors';
import type { ExtentRef } from './tier';
import { PAGE_ROWS, PageMap, pageNoOf, rowOf, rowsToReach } from '../util/page-map';

export const TEMP_PREFIX = '.tmp-';
/** The owner mark: the id of the volume whose copies these are (a file in the root, or an object under the prefix). */
export const OWNER_MARK = '.shadowfs-volume';

/** The one-line refusal when a tier holds another volume's owner mark. */
export function ownedByAnother(label: string, where: string): ShadowfsError {
  return new ShadowfsError(`${label}: ${where} holds another shadowfs volume's copies (its ${OWNER_MARK} names another volume); give each volume tiers of its own`);
}

/** fileIds are short opaque tokens (an inode number in hex); never anything a path could escape with. */
const FILE_ID_RE = /^[0-9A-Za-z_-]{1,128}$/;

export function isValidFileId(fileId: string): boolean {
  return FILE_ID_RE.test(fileId);
}

export function assertFileId(fileId: string): void {
  if (!isValidFileId(fileId)) throw new FsError('EINVAL', `invalid fileId ${JSON.stringify(fileId)}`);
}

export function assertExtentRef(ref: ExtentRef): void {
  assertFileId(ref.fileId);
  if (!Number.isSafeInteger(ref.index) || ref.index < 0) {
    throw new FsError('EINVAL', `invalid extent index ${String(ref.index)} for fileId ${ref.fileId}`);
  }
}

/** The fan-out directory for a fileId (parent of fileDir). */
export function fanoutDir(root: string, fileId: string): string {
  return path.join(root, fileId.slice(0, 2));
}

/** The directory holding every copy of one file. */
export function fileDir(root: string, fileId: string): string {
  assertFileId(fileId);
  return path.join(fanoutDir(root, fileId), fileId);
}

/** The file holding one extent copy. */
export function extentPath(root: string, ref: ExtentRef): string {
  assertExtentRef(ref);
  return path.join(root, ref.fileId.slice(0, 2), ref.fileId, String(ref.index));
}

/** Parse a file name inside a fileId directory back to an extent index (undefined if not one). */
export function parseIndex(name: string): number | undefined {
  if (!/^(0|[1-9][0-9]{0,15})$/.test(name)) return undefined;
  const index = Number(name);
  return Number.isSafeInteger(index) ? index : undefined;
}

/** Key used for in-memory maps: unique per (fileId, index). */
export function refKey(ref: ExtentRef): string {
  return `${ref.fileId}/${ref.index}`;
}

/**
 * One file's copy sizes on a tier, as size + 1 (0: no copy), in pages that are plain arrays of
 * numbers: 8 B per extent, exact for any size. A Map entry per copy took ~36 B of V8 heap, ~36 MB
 * at a million copies. Not typed arrays: each costs ~200 B besides its bytes, more than the page
 * of a file of one extent.
 */
class FileCopySizes {
  readonly pages = new PageMap<number[]>();
  count = 0;

  get(index: number): number | undefined {
    const page = this.pages.get(pageNoOf(index));
    const row = rowOf(index);
    return page && row < page.length && page[row] > 0 ? page[row] - 1 : undefined;
  }

  /** Sets the size (undefined: no copy); returns the size it replaced. */
  set(index: number, sizeBytes: number | undefined): number | undefined {
    const pageNo = pageNoOf(index);
    const row = rowOf(index);
    let page = this.pages.get(pageNo);
    if (sizeBytes === undefined && (!page || row >= page.length)) return undefined;
    if (!page || row >= page.length) {
      const grown = new Array<number>(rowsToReach(page?.length ?? 0, row)).fill(0);
      page?.forEach((v, i) => (grown[i] = v));
      this.pages.set(pageNo, grown);
      page = grown;
    }
    const old = page[row] > 0 ? page[row] - 1 : undefined;
    page[row] = sizeBytes === undefined ? 0 : sizeBytes + 1;
    this.count += (sizeBytes === undefined ? 0 : 1) - (old === undefined ? 0 : 1);
    return old;
  }

  indexes(): number[] {
    const out: number[] = [];
    for (const [pageNo, page] of this.pages.entries()) {
      for (let row = 0; row < page.length; row++) if (page[row] > 0) out.push(pageNo * PAGE_ROWS + row);
    }
    return out;
  }
}

/**
 * Sizes of the copies a tier holds, per file, with a running total: the tier's in-memory
 * inventory (exact, so usedBytes() never needs a walk). Proportional to the tier's contents.
 */
export class CopyInventory {
  private readonly byFile = new Map<string, FileCopySizes>();
  private totalBytes = 0;

  usedBytes(): number {
    return this.totalBytes;
  }

  sizeOf(ref: ExtentRef): number | undefined {
    return this.byFile.get(ref.fileId)?.get(ref.index);
  }

  /** Indexes held for a file (a copy of the list, safe to mutate the inventory while iterating). */
  indexesOf(fileId: string): number[] {
    return this.byFile.get(fileId)?.indexes() ?? [];
  }

  /** Every copy, file by file; each file's indexes are copied first, so copies may be removed meanwhile. */
  *copies(): Generator<ExtentRef & { sizeBytes: number }> {
    for (const fileId of [...this.byFile.keys()]) {
      for (const index of this.indexesOf(fileId)) {
        const sizeBytes = this.byFile.get(fileId)?.get(index);
        if (sizeBytes !== undefined) yield { fileId, index, sizeBytes };
      }
    }
  }

  set(ref: ExtentRef, sizeBytes: number): void {
    let perFile = this.byFile.get(ref.fileId);
    if (!perFile) this.byFile.set(ref.fileId, (perFile = new FileCopySizes()));
    this.totalBytes += sizeBytes - (perFile.set(ref.index, sizeBytes) ?? 0);
  }

  delete(ref: ExtentRef): void {
    const perFile = this.byFile.get(ref.fileId);
    const size = perFile?.set(ref.index, undefined);
    if (!perFile || size === undefined) return;
    this.totalBytes -= size;
    if (perFile.count === 0) this.byFile.delete(ref.fileId);
  }

  clear(): void {
    this.byFile.clear();
    this.totalBytes = 0;
  }
}
