/**
 * A temporary directory removed when the test ends.
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The part of a tap test the helpers need (tap's Test type is heavy to name). */
export interface HasTeardown {
  teardown(fn: () => unknown): void;
}

export async function tempDir(t: HasTeardown, prefix = 'shadowfs-test-'): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  return dir;
}
