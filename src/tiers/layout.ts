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
 * Sizes of the copies a tier holds, per file, with a running total: the tier's in-memory
 * inventory (exact, so usedBytes() never needs a walk). Proportional to the tier's contents.
 */
export class CopyInventory {
  private readonly byFile = new Map<string, Map<number, number>>();
  private totalBytes = 0;

  usedBytes(): number {
    return this.totalBytes;
  }

  sizeOf(ref: ExtentRef): number | undefined {
    return this.byFile.get(ref.fileId)?.get(ref.index);
  }

  /** Indexes held for a file (a copy of the list, safe to mutate the inventory while iterating). */
  indexesOf(fileId: string): number[] {
    return [...(this.byFile.get(fileId)?.keys() ?? [])];
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
    if (!perFile) this.byFile.set(ref.fileId, (perFile = new Map()));
    this.totalBytes += sizeBytes - (perFile.get(ref.index) ?? 0);
    perFile.set(ref.index, sizeBytes);
  }

  delete(ref: ExtentRef): void {
    const perFile = this.byFile.get(ref.fileId);
    const size = perFile?.get(ref.index);
    if (!perFile || size === undefined) return;
    this.totalBytes -= size;
    perFile.delete(ref.index);
    if (perFile.size === 0) this.byFile.delete(ref.fileId);
  }

  clear(): void {
    this.byFile.clear();
    this.totalBytes = 0;
  }
}
