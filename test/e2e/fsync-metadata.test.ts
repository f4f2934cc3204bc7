/**
 * An fsync through the mount makes the metadata behind the file durable too, not only its bytes:
 * LevelDB batches are written without a sync, so a power loss could take the newest records (the
 * withdrawal of a copy's fresh claim that preceded the write, or, failed over, the journal entry
 * that tells resync to replay it). Watched with strace on the daemon: the fsync of a file through
 * the mount must sync the extent map's LevelDB log, and failed over the failover store's log too.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { cli, sandboxedMount } from '../helpers/mounted-volume';
import { failoverConfigFile } from '../helpers/failover-config';
import { waitFor } from '../helpers/wait';
import type { StatusReport } from '../../src/control/protocol';

/** The paths the daemon fsyncs or fdatasyncs while `during` runs (strace -y names each fd's file). */
async function syncedPaths(pid: number, during: () => void): Promise<string[]> {
  const out = path.join(fs.mkdtempSync('/tmp/shadowfs-strace-'), 'trace');
  const strace = spawn('strace', ['-f', '-qq', '-y', '-e', 'trace=fsync,fdatasync', '-o', out, '-p', String(pid)], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => strace.on('exit', () => resolve()));
  try {
    // Attached once it has written its output file; then a little longer for every thread.
    await waitFor(() => fs.existsSync(out), 'strace attached', 10_000, 20);
    await new Promise((r) => setTimeout(r, 300));
    during();
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    strace.kill('SIGINT');
    await exited;
  }
  const trace = fs.readFileSync(out, 'utf8');
  fs.rmSync(path.dirname(out), { recursive: true, force: true });
  return [...trace.matchAll(/f(?:data)?sync\(\d+<([^>]+)>/g)].map((m) => m[1]);
}

t.test('fsync through the mount syncs the extent map, and failed over the failover journal', async (t) => {
  const { sb, vol } = sandboxedMount(t, (sb) => ({ configFile: failoverConfigFile(sb, { enabled: false }) }), 'fsync-meta-');
  await vol.start();
  const file = path.join(sb.mnt, 'f.bin');
  fs.writeFileSync(file, Buffer.alloc(200 * 1024, 1));
  const status = (): StatusReport => JSON.parse(cli(['status', '--json', sb.mnt]).stdout) as StatusReport;
  await waitFor(() => status().coverage?.coveredShare === 1, 'full coverage', 30_000, 200);
  const { pid } = status();
  const isLog = (dir: string) => (p: string): boolean => p.startsWith(path.join(sb.state, dir) + '/') && p.endsWith('.log');

  const fd = fs.openSync(file, 'r+');
  try {
    const live = await syncedPaths(pid, () => {
      fs.writeSync(fd, Buffer.alloc(4096, 2), 0, 4096, 8192);
      fs.fsyncSync(fd);
    });
    t.ok(live.some(isLog('extents')), `the extent map's log is synced (synced: ${live.join(', ')})`);

    t.equal(cli(['failover', sb.mnt]).status, 0, 'failed over');
    const over = await syncedPaths(pid, () => {
      fs.writeSync(fd, Buffer.alloc(4096, 3), 0, 4096, 12288);
      fs.fsyncSync(fd);
    });
    t.ok(over.some(isLog('extents')), `failed over: the extent map's log is synced (synced: ${over.join(', ')})`);
    t.ok(over.some(isLog('failover')), 'and the failover journal\'s');
  } finally {
    fs.closeSync(fd);
  }
});
