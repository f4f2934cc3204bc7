/**
 * The order in which a full tier gives up copies for room: least recently read first; a protected
 * copy is passed over and goes back at the recent end, so the next search for room starts with
 * the others; the manager's constructor rebuilds the order from the map after a restart.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ExtentMap } from '../../src/extents/extent-map';
import { ShadowManager } from '../../src/shadow/shadow-manager';
import { DirectoryTier } from '../../src/tiers/directory-tier';
import { TierSet } from '../../src/tiers/tier-set';
import { silentLogger } from '../../src/util/log';
import type { OpenFile } from '../../src/volume/open-files';
import { openFileOn } from '../helpers/open-file';

const E = 64 * 1024;
const SLOTS = 3;

t.test('a full tier evicts the least recently read copy; a protected one goes to the recent end', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shadowfs-evict-order-'));
  const map = await ExtentMap.open(path.join(dir, 'extents'));
  const tier = new DirectoryTier({ name: 'nvme', class: 'nvme', path: path.join(dir, 'nvme'), capacityBytes: SLOTS * E, costPerGiBMonth: 0.1 });
  await tier.open();
  const tiers = await TierSet.create([tier], map);
  const shadows = new ShadowManager(map, tiers, E, { maxQueuedCopies: 64, concurrentCopies: 1, maxBytesPerSec: 1024 ** 3 }, silentLogger);
  shadows.lastForegroundMs = () => 0;
  const names = ['a', 'b', 'c', 'd', 'e', 'f'];
  const files = new Map<string, OpenFile>(
    names.map((n, i) => {
      const p = path.join(dir, n);
      fs.writeFileSync(p, Buffer.alloc(E, i + 1));
      return [n, openFileOn(p)];
    }),
  );
  const nameOf = new Map([...files].map(([n, f]) => [f.fileId, n]));
  t.teardown(async () => {
    for (const f of files.values()) fs.closeSync(f.readFd);
    await tier.close();
    await map.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const tierId = tiers.all()[0].id;
  const file = (n: string): OpenFile => files.get(n) as OpenFile;
  const copy = (n: string): Promise<boolean> => new Promise((resolve) => t.ok(shadows.requestCopy(file(n), 0, tierId, resolve), `copy of ${n} queued`));
  const order = (): string[] => [...shadows.copiesOn(tierId)].map((c) => nameOf.get(c.fileId) ?? '?');
  const held = (): string[] => names.filter((n) => map.hasCopyOn(file(n).fileId, 0, tierId));

  for (const n of ['a', 'b', 'c']) t.ok(await copy(n), `${n} copied`);
  t.same(order(), ['a', 'b', 'c'], 'in the order copied');
  shadows.touch(tierId, file('a').fileId, 0); // a read of a
  t.same(order(), ['b', 'c', 'a'], 'a read moves a copy to the recent end');

  const protectedNames = new Set(['b']);
  shadows.isProtected = (_tier, fileId) => protectedNames.has(nameOf.get(fileId) ?? '');
  t.ok(await copy('d'), 'd copied into a full tier');
  t.same(held(), ['a', 'b', 'd'], 'c went: b, older, is protected');
  t.same(order(), ['a', 'b', 'd'], 'b passed over: back after a, before the new copy');

  protectedNames.clear();
  t.ok(await copy('e'), 'e copied');
  t.same(held(), ['b', 'd', 'e'], 'a went, not b: the search for room starts past the one passed over');
  t.same(order(), ['b', 'd', 'e']);
  t.equal(shadows.counters.evictions, 2);

  // After a restart the order is rebuilt from the map (in the map's order), and eviction goes on.
  const again = new ShadowManager(map, tiers, E, { maxQueuedCopies: 64, concurrentCopies: 1, maxBytesPerSec: 1024 ** 3 }, silentLogger);
  again.lastForegroundMs = () => 0;
  t.same([...again.copiesOn(tierId)].map((c) => nameOf.get(c.fileId)).sort(), ['b', 'd', 'e'], 'every copy known again');
  const oldest = [...again.copiesOn(tierId)][0];
  t.ok(await new Promise<boolean>((resolve) => again.requestCopy(file('f'), 0, tierId, resolve)), 'f copied after the restart');
  t.notOk(map.hasCopyOn(oldest.fileId, 0, tierId), 'the first in the rebuilt order went');
  t.equal([...again.copiesOn(tierId)].length, SLOTS);
});
