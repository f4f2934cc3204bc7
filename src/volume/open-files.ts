/**
 * Open files and handles. Several handles (and hard links) can share one file; the file's state
 * (size as known to the mount, write lock, write epoch) lives once per file id.
 */
import { Mutex } from '../util/mutex';
import { movedPath } from '../util/tree-paths';

export interface OpenFile {
  /** Stable identity of the live file: its inode number in hex (survives rename). */
  fileId: string;
  /** Its path: where it was last opened, moved along by renames through the mount (not by renames behind its back). */
  livePath: string;
  /** Size as the mount knows it; kept current by writes and truncates through the mount. */
  sizeBytes: number;
  /** Serialises writes and truncates so the live file and its copies see them in one order. */
  writeLock: Mutex;
  /** A read-only fd on the live file, shared by background copies. */
  readFd: number;
  handles: number;
  /** Set when a write through the mount changed the file since its record was last stored. */
  modified: boolean;
  /**
   * Stores of its record begun (Volume.storeRecord). Two can overlap (a last close, then an open, a
   * write and another last close): only the last begun may write, its fstat seeing what the
   * other's saw and more; the other, finishing later, would store an older size and mtime.
   */
  recordStores?: number;
  /** The last store of its record begun, until it ends: the file is not forgotten before (Volume.closeFile). */
  lastRecordStore?: Promise<void>;
  /** Some extent may be written natively (NativeWrites): counts as modified until the file closes. */
  nativeWritable: boolean;
  /** The last link went away while open: its copies go at the last close. */
  unlinked: boolean;
  /** Handles open on this file. */
  fhs: Set<number>;
}

export interface Handle {
  fh: number;
  /** fd of the live file, opened with the application's access mode (never O_DIRECT). */
  fd: number;
  file: OpenFile;
  writable: boolean;
}

export class OpenFiles {
  private readonly files = new Map<string, OpenFile>();
  private readonly handles = new Map<number, Handle>();

  file(fileId: string): OpenFile | undefined {
    return this.files.get(fileId);
  }

  addFile(file: OpenFile): void {
    this.files.set(file.fileId, file);
  }

  removeFile(fileId: string): void {
    this.files.delete(fileId);
  }

  handle(fh: number): Handle | undefined {
    return this.handles.get(fh);
  }

  addHandle(h: Handle): void {
    this.handles.set(h.fh, h);
    h.file.handles++;
    h.file.fhs.add(h.fh);
  }

  /** Set by the assembly: told just before a handle is forgotten (its fh may name another file next). */
  beforeRemoveHandle: ((h: Handle) => void) | undefined;

  /** Returns the file when this was its last handle. */
  removeHandle(fh: number): OpenFile | undefined {
    const h = this.handles.get(fh);
    if (!h) return undefined;
    this.beforeRemoveHandle?.(h);
    this.handles.delete(fh);
    h.file.handles--;
    h.file.fhs.delete(fh);
    return h.file.handles === 0 ? h.file : undefined;
  }

  /**
   * A rename through the mount moved `from` (a file, or a directory and all under it) to `to` (live
   * paths): the open files there follow it. Failed over, a handle's writes find their file's entry
   * by this path; left at the old one, they would fail, or land on a file made there since.
   */
  moved(from: string, to: string): void {
    for (const f of this.files.values()) f.livePath = movedPath(f.livePath, from, to) ?? f.livePath;
  }

  handlesOf(fileId: string): Iterable<number> {
    return this.files.get(fileId)?.fhs ?? [];
  }

  allFiles(): IterableIterator<OpenFile> {
    return this.files.values();
  }
}
