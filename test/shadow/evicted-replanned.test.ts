/**
 * A copy evicted to make room for another is looked at again by the next planning round. The
 * planner reconsiders only extents touched since its last round (and residents of its tiers), so
 * an extent that lost its copy this way stayed off its tier until it was read again.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ExtentMap } from '../../src/extents/extent-map';
import { PredictionEngine } from '../../src/predict/engine';
import { WorkloadHistory } from '../../src/predict/history';
import { ShadowManager } from '../../src/shadow/shadow-manager';
import { DirectoryTier } from '../../src/tiers/directory-tier';
import { TierSet } from '../../src/tiers/tier-set';
import { silentLogger } from '../../src/util/log';
import { openFileOn } from '../helpers/open-file';

const E = 64 * 1024;

t.test('the shadow manager tells who evicted what to make room', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shadowfs-evicted-'));
  const map = await ExtentMap.open(path.join(dir, 'extents'));
  const tier = new DirectoryTier({ name: 'nvme', class: 'nvme', path: path.join(dir, 'nvme'), capacityBytes: E, costPerGiBMonth: 0.1 });
  await tier.open();
  const tiers = await TierSet.create([tier], map);
  const shadows = new ShadowManager(map, tiers, E, { maxQueuedCopies: 8, concurrentCopies: 1, maxBytesPerSec: 1024 ** 3 }, silentLogger);
  shadows.lastForegroundMs = () => 0;
  const files = [0, 1].map((i) => {
    const p = path.join(dir, `f${i}`);
    fs.writeFileSync(p, Buffer.alloc(E, i + 1));
    return openFileOn(p);
  });
  t.teardown(async () => {
    for (const f of files) fs.closeSync(f.readFd);
    await tier.close();
    await map.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const evicted: string[] = [];
  shadows.onEvictedForRoom = (fileId, index, tierId) => void evicted.push(`${fileId}#${index}@${tierId}`);
  const tierId = tiers.all()[0].id;
  const copy = (i: number): Promise<boolean> => new Promise((resolve) => shadows.requestCopy(files[i], 0, tierId, resolve));
  t.ok(await copy(0), 'the first copy fills the tier');
  t.same(evicted, [], 'nothing evicted yet');
  t.ok(await copy(1), 'the second copy lands');
  t.same(evicted, [`${files[0].fileId}#0@${tierId}`], 'the first copy was evicted for it, and that was told');
  t.ok(await shadows.evict(files[1].fileId, 0, tierId), 'an eviction asked for (the planner\'s own drop)');
  t.equal(evicted.length, 1, 'is not reported as one for room');
});

t.test('the engine puts an extent back among the next round\'s candidates when asked to reconsider it', async (t) => {
  const e = new PredictionEngine(WorkloadHistory.inMemory(), { extentSizeBytes: E, random: () => 0.5 });
  const now = 1_000_000_000;
  e.recordExtentAccess({ fileId: 'a', index: 7 }, now);
  const has = (refs: { fileId: string; index: number }[]): boolean => refs.some((r) => r.fileId === 'a' && r.index === 7);
  t.ok(has(e.planningCandidates(now)), 'touched: a candidate');
  t.notOk(has(e.planningCandidates(now + 1)), 'the next round has forgotten it');
  e.reconsider({ fileId: 'a', index: 7 });
  t.ok(has(e.planningCandidates(now + 2)), 'reconsidered: a candidate again');
  e.reconsider({ fileId: 'never-seen', index: 1 });
  t.notOk(e.planningCandidates(now + 3).some((r) => r.fileId === 'never-seen'), 'an extent the engine never saw has nothing to plan with');
});
