import t from 'tap';
import { OneOffMoves } from '../../src/shadow/one-off-moves';
import type { ShadowManager } from '../../src/shadow/shadow-manager';
import type { Placements } from '../../src/shadow/pins';
import { directoryTierFixture } from '../helpers/tier-fixture';

t.test('a promote to a tier being drained is refused at once, saying why', async (t) => {
  const fx = await directoryTierFixture(t);
  // The refusal comes before any file or copy is looked at: nothing else is needed.
  const moves = new OneOffMoves(fx.map, fx.tiers, undefined as unknown as ShadowManager, { pinFile: async () => undefined, unpinFile: () => undefined }, undefined as unknown as Placements, 64 * 1024, () => undefined);
  fx.tiers.draining.add(fx.tierId);
  await t.rejects(moves.promote({ path: '/f', livePath: '/live/f', fileId: 'abc', tier: 'nvme' }), { message: 'tier nvme is being removed (tier remove is draining it): nothing new is copied there' });
});
