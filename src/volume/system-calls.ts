/**
 * System calls Node lacks, as the volume needs them. The mount passes the patched FUSE binding's,
 * made on a libuv pool thread and never in a child process (why: src/fuse/binding.ts).
 */
export interface SystemCalls {
  /** sync(2): every filesystem's dirty data and metadata. */
  syncAll(): Promise<void>;
  /** mknod(2) of a FIFO or device node (`mode` with its S_IF* type); rejects with the errno's FsError. */
  mknod(path: string, mode: number, dev: number): Promise<void>;
  /** fallocate(2) of an fd; rejects with the errno's FsError (ENOSPC, EOPNOTSUPP, ...). */
  fallocateFd(fd: number, mode: number, offsetBytes: number, lengthBytes: number): Promise<void>;
}
