/**
 * Errors meant for the user: the CLI prints `message` on one line and exits non-zero, never a
 * stack trace. Anything else that escapes is a bug and is reported as such.
 */
export class ShadowfsError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = 'ShadowfsError';
  }
}

/** An error that carries the errno the application should see (negative values go to FUSE). */
export class FsError extends Error {
  constructor(readonly code: string, message?: string) {
    super(message ?? code);
    this.name = 'FsError';
  }
}

/** Node's system errors carry the symbolic code (ENOENT, ...); FsError too. */
export function errorCode(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'string') {
    return (err as { code: string }).code;
  }
  return undefined;
}
