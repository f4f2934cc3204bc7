/**
 * faultfs as it is meant to be used: mounted at the live volume path of a real shadowfs mount, so
 * that faults set at runtime reach shadowfs's live-volume I/O.
 */
import t from 'tap';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startFaultFs } from '../../fixtures/faultfs/faultfs-client';
import { MountedVolume, makeSandbox, removeSandbox } from '../helpers/mounted-volume';

t.test('shadowfs over a faultfs live volume', async (t) => {
  const sb = makeSandbox('faultfs-shadowfs-');
  const backing = path.join(sb.root, 'backing');
  await fsp.mkdir(backing);
  let vol: MountedVolume | undefined;
  let stopFault: (() => Promise<unknown>) | undefined;
  // Order matters: shadowfs first (it holds files open on the live volume), then faultfs.
  t.teardown(async () => {
    await vol?.cleanup();
    await stopFault?.().catch(() => undefined);
    removeSandbox(sb);
  });
  const ffs = await startFaultFs(backing, sb.live);
  stopFault = () => ffs.stop();
  vol = new MountedVolume(sb);
  await vol.start();

  const data = randomBytes(300 * 1024);
  await fsp.writeFile(path.join(sb.mnt, 'f'), data);
  t.same(await fsp.readFile(path.join(backing, 'f')), data, 'a write through shadowfs reaches the backing dir through faultfs');

  await ffs.set({ latencyMs: 250, ops: ['write'] });
  const started = process.hrtime.bigint();
  await fsp.writeFile(path.join(sb.mnt, 'g'), 'slow live volume');
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  t.ok(elapsedMs >= 250, `the live volume's injected write latency is felt through shadowfs (${elapsedMs.toFixed(0)} ms)`);
  await ffs.clear();
  t.equal(await fsp.readFile(path.join(backing, 'g'), 'utf8'), 'slow live volume');
});
