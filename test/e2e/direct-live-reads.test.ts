/**
 * Replication reads the live file with O_DIRECT (src/volume/direct-live-reads.ts). On a real mount
 * with a directory coverage tier, every copy it makes must hold the live file's bytes: files whose
 * size is not a multiple of 4 KiB, and extents written through the mount (so still dirty in the
 * live file's page cache) just before replication reaches them.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { cli, Sandbox, sandboxedMount } from '../helpers/mounted-volume';
import { waitFor } from '../helpers/wait';
import { extentPath } from '../../src/tiers/layout';
import type { StatusReport, WhichTierReport } from '../../src/control/protocol';

const EXTENT = 64 * 1024;
const { O_DIRECT } = fs.constants;

const status = (sb: Sandbox): StatusReport => JSON.parse(cli(['status', '--json', sb.mnt]).stdout) as StatusReport;

/** Indexes of the extents of `name` with a fresh copy on `tier`. */
function freshOn(sb: Sandbox, name: string, tier: string): number[] {
  const w = JSON.parse(cli(['which-tier', '--json', path.join(sb.mnt, name)]).stdout) as WhichTierReport;
  return w.extents.filter((e) => e.fresh.includes(tier)).map((e) => e.index);
}

/** fds of process `pid` open on `file` with O_DIRECT. */
function directFds(pid: number, file: string): number[] {
  return fs.readdirSync(`/proc/${pid}/fd`).map(Number).filter((fd) => {
    try {
      if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) !== file) return false;
      const flags = /flags:\s+([0-7]+)/.exec(fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      return !!flags && (parseInt(flags[1], 8) & O_DIRECT) !== 0;
    } catch {
      return false; // closed meanwhile
    }
  });
}

t.test('copies read with O_DIRECT hold the live bytes: unaligned tails, extents written just before', async (t) => {
  // A slow copy rate (about 8 extents a second) so the test can write ahead of the replication.
  const { sb, vol } = sandboxedMount(t, {
    extentSize: '64KiB',
    tiers: [{ name: 'hdd', capacity: '64MiB' }],
    coverageTier: 'hdd',
    extraArgs: ['--copy-rate', '512KiB'],
  });
  const files = new Map<string, Buffer>([
    ['a.bin', randomBytes(40 * EXTENT + 1234)], // last extent ends off the 4 KiB grid
    ['b.bin', randomBytes(4 * EXTENT)],
    ['c.bin', randomBytes(100)], // less than one 4 KiB block
  ]);
  for (const [name, bytes] of files) fs.writeFileSync(path.join(sb.live, name), bytes);
  await vol.start();

  // Held open through the mount: the file (and its direct fd) stays open until the end.
  const fd = fs.openSync(path.join(sb.mnt, 'a.bin'), 'r+');
  t.teardown(() => {
    try {
      fs.closeSync(fd);
    } catch {
      /* closed by the test */
    }
  });
  const a = files.get('a.bin') as Buffer;
  // Not replicated yet: the writes make these two extents' copies themselves (write-through, the
  // rest of the extent read from the live file). The other extents the test wrote into the live
  // directory just before the mount: still dirty in its page cache (for ~30 s), which a direct
  // read must have the kernel write back first.
  const early = freshOn(sb, 'a.bin', 'hdd');
  for (const index of [30, 40]) t.notOk(early.includes(index), `extent ${index} has no copy yet`);
  const mid = randomBytes(5000);
  fs.writeSync(fd, mid, 0, mid.length, 30 * EXTENT + 777);
  mid.copy(a, 30 * EXTENT + 777);
  const tail = randomBytes(1000);
  fs.writeSync(fd, tail, 0, tail.length, a.length - 1000);
  tail.copy(a, a.length - 1000);

  await waitFor(() => status(sb).coverage?.coveredShare === 1, 'coverage 100%', 30_000);
  const pid = status(sb).pid;
  const liveA = path.join(sb.live, 'a.bin');
  t.equal(directFds(pid, liveA).length, 1, 'the daemon reads the open live file through one O_DIRECT fd');
  t.notMatch(vol.output, /refused/, 'the live volume took direct reads (none turned off)');
  const shadow = status(sb).shadow;
  const liveReads = shadow.liveReads ?? { direct: 0, buffered: 0 };
  t.ok(liveReads.direct > 0, `status counts the copies' direct reads of the live file (${liveReads.direct} direct, ${liveReads.buffered} buffered)`);
  // (Unless replication reached one of the two between the check above and its write.)
  const written = shadow.writtenCopies ?? 0;
  t.ok(written <= 2 && shadow.copies + written >= 46, `the writes made their extents' copies (${written}), replication the others (${shadow.copies})`);
  t.ok(liveReads.direct + liveReads.buffered >= shadow.copies, `every background copy read the live file (${liveReads.direct + liveReads.buffered} reads, ${shadow.copies} copies)`);
  t.match(cli(['status', sb.mnt]).stdout, new RegExp(`copies read the live file: ${liveReads.direct} times with O_DIRECT`), 'and says so in its text');

  const tierDir = sb.tierDir('hdd');
  for (const [name, model] of files) {
    t.ok(fs.readFileSync(path.join(sb.live, name)).equals(model), `${name}: the live file holds the model`);
    const fileId = fs.statSync(path.join(sb.live, name)).ino.toString(16);
    const extents = Math.ceil(model.length / EXTENT);
    let right = 0;
    for (let index = 0; index < extents; index++) {
      const copy = fs.readFileSync(extentPath(tierDir, { fileId, index }));
      if (copy.equals(model.subarray(index * EXTENT, (index + 1) * EXTENT))) right++;
      else t.fail(`${name} extent ${index}: the copy on hdd differs from the live bytes (${copy.length} bytes)`);
    }
    t.equal(right, extents, `${name}: all ${extents} copies on hdd hold the live bytes`);
    t.ok(fs.readFileSync(path.join(sb.mnt, name)).equals(model), `${name} reads right through the mount`);
  }

  fs.closeSync(fd);
  await waitFor(() => directFds(pid, liveA).length === 0, 'the direct fd closed with the file', 5_000);
  t.equal(await vol.stop(), 0, 'unmounts cleanly');
});
