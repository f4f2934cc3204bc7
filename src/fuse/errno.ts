/** Errors → the negative errno FUSE expects. Unknown errors are EIO (and worth a log line). */
import { constants } from 'node:os';
import { errorCode } from '../util/errors';

const ERRNO = constants.errno as Record<string, number>;

export function toErrno(err: unknown): number {
  const code = errorCode(err);
  if (code === 'ENOTSUP') return -(ERRNO.EOPNOTSUPP ?? 95);
  if (code && ERRNO[code] !== undefined) return -ERRNO[code];
  return -ERRNO.EIO;
}

export function isKnownErrno(err: unknown): boolean {
  const code = errorCode(err);
  return !!code && (ERRNO[code] !== undefined || code === 'ENOTSUP');
}
