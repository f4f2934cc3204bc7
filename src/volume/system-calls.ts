/**
 * System calls Node lacks, as the volume needs them. The mount passes the patched FUSE binding's
 * (src/fuse/binding.ts), made on a libuv pool thread: never in a child process, because a fork and
 * exec in the daemon blocks its JS thread for as long as a FUSE live volume it holds fds on hangs
 * (the child's exec closes its copies of those fds, and each close waits for the server's answer).
 */
export interface SystemCalls {
  /** sync(2): every filesystem's dirty data and metadata. */
  syncAll(): Promise<void>;
  /** mknod(2) of a FIFO or device node (`mode` with its S_IF* type); rejects with the errno's FsError. */
  mknod(path: string, mode: number, dev: number): Promise<void>;
  /** fallocate(2) of an fd; rejects with the errno's FsError (ENOSPC, EOPNOTSUPP, ...). */
  fallocateFd(fd: number, mode: number, offsetBytes: number, lengthBytes: number): Promise<void>;
}
