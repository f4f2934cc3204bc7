/** `shadowfs unmount`: ask the daemon serving a mount point to unmount cleanly (metadata flushed). */
import { processAlive } from '../../util/process-alive';
import * as path from 'node:path';
import type { CommandModule } from 'yargs';
import { lazyUnmount } from '../../fuse/binding';
import { fuseMountsAt, isMounted, isStale } from '../../fuse/mount-table';
import { readPid, removePidFile } from '../../control/runtime-files';
import { ShadowfsError } from '../../util/errors';

export interface UnmountArgs {
  mountpoint: string;
  timeout: number;
}

/**
 * Only a shadowfs mount is ours to detach: as root, fusermount -uz detaches whatever is mounted
 * there (/proc, a tmpfs, another FUSE file system), stale or not.
 */
async function requireShadowfsMount(mountpoint: string): Promise<void> {
  const types = await fuseMountsAt(mountpoint);
  if (types.length === 0) throw new ShadowfsError(`${mountpoint} is not mounted`);
  if (types[types.length - 1] !== 'fuse.shadowfs') throw new ShadowfsError(`${mountpoint} is not a shadowfs mount (it is ${types[types.length - 1]}); not touching it`);
}

export const unmountCommand: CommandModule<object, UnmountArgs> = {
  command: 'unmount <mountpoint>',
  aliases: ['umount'],
  describe: 'Unmount a shadowfs mount cleanly (the daemon flushes its metadata and exits)',
  builder: (y) => y
    .positional('mountpoint', { type: 'string', demandOption: true, describe: 'A shadowfs mount point (a stale one, its daemon gone, is cleared)' })
    .option('timeout', { type: 'number', default: 30, describe: 'Seconds to wait for the daemon before forcing a lazy unmount' }),
  handler: async (args) => {
    const mountpoint = path.resolve(args.mountpoint);
    // NaN (--timeout abc) or 0 would detach at once, under a daemon that is still flushing.
    if (!(args.timeout > 0)) throw new ShadowfsError('--timeout: expected a number of seconds above zero');
    await requireShadowfsMount(mountpoint);
    if (await isStale(mountpoint)) {
      await lazyUnmount(mountpoint);
      await removePidFile(mountpoint);
      process.stdout.write(`shadowfs: cleared a stale mount at ${mountpoint}\n`);
      return;
    }
    const pid = await readPid(mountpoint);
    if (pid === undefined || !processAlive(pid)) {
      await lazyUnmount(mountpoint);
      await removePidFile(mountpoint);
      process.stdout.write(`shadowfs: unmounted ${mountpoint} (no daemon found)\n`);
      return;
    }
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + args.timeout * 1000;
    while (Date.now() < deadline) {
      if (!processAlive(pid)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    if (processAlive(pid)) {
      // Its FUSE mount may be gone already while it still finishes (closing the volume): then there
      // is nothing to detach, and the unmount would fail on it.
      if (!(await isMounted(mountpoint))) {
        throw new ShadowfsError(`${mountpoint} is unmounted, but the daemon (pid ${pid}) is still shutting down after ${args.timeout} s; it was left to finish`);
      }
      await lazyUnmount(mountpoint);
      throw new ShadowfsError(`the daemon (pid ${pid}) did not exit within ${args.timeout} s; the mount was detached lazily`);
    }
    process.stdout.write(`shadowfs: unmounted ${mountpoint}\n`);
  },
};
