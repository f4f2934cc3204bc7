/**
 * A full tier evicts; it never fails a write, and it does not stay over its capacity. Copies take
 * room when they are made; a write that grows a copy in place (an append within its extent) takes
 * none first, so the tier evicts after it.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, sandboxedMount } from '../helpers/mounted-volume';
import { waitFor } from '../helpers/wait';
import type { StatusReport } from '../../src/control/protocol';

const KiB = 1024;
const FILES = 8;

function nvme(mnt: string): StatusReport['tiers'][number] {
  const s = JSON.parse(cli(['status', '--json', mnt]).stdout) as StatusReport;
  return s.tiers.find((x) => x.name === 'nvme') as StatusReport['tiers'][number];
}

t.test('appends that grow copies in place leave the tier within its capacity', async (t) => {
  const { sb, vol } = sandboxedMount(t, { extentSize: '64KiB', admitAfter: 1, tiers: [{ name: 'nvme', capacity: '256KiB' }] });
  const want: Buffer[] = [];
  for (let i = 0; i < FILES; i++) {
    want.push(Buffer.alloc(KiB, i + 1));
    fs.writeFileSync(path.join(sb.live, `f${i}`), want[i]);
  }
  await vol.start();
  for (let i = 0; i < FILES; i++) fs.readFileSync(path.join(sb.mnt, `f${i}`));
  await waitFor(() => nvme(sb.mnt).usedBytes === FILES * KiB, 'a 1 KiB copy of every file on nvme');

  // Each copy grows to a whole extent: 8 x 64 KiB = 512 KiB of copies on a 256 KiB tier.
  for (let i = 0; i < FILES; i++) {
    const more = Buffer.alloc(63 * KiB, 0x40 + i);
    fs.appendFileSync(path.join(sb.mnt, `f${i}`), more);
    want[i] = Buffer.concat([want[i], more]);
  }
  await waitFor(() => nvme(sb.mnt).usedBytes <= 256 * KiB, 'nvme back within its capacity', 15_000);
  const tier = nvme(sb.mnt);
  t.ok(tier.usedBytes > 0, `the copies that fit stay (${tier.usedBytes} bytes)`);
  for (let i = 0; i < FILES; i++) t.ok(fs.readFileSync(path.join(sb.mnt, `f${i}`)).equals(want[i]), `f${i} reads what was written`);
  t.equal(await vol.stop(), 0);
  for (let i = 0; i < FILES; i++) t.ok(fs.readFileSync(path.join(sb.live, `f${i}`)).equals(want[i]), `f${i} on the live volume`);
});
