import t from 'tap';
import { CopyInventory } from '../../src/tiers/layout';

t.test('sizes, totals and removals, sparse indexes and sizes past 32 bits', async (t) => {
  const inv = new CopyInventory();
  const sizes = new Map<number, number>([[0, 4096], [1, 0], [255, 17], [256, 2 ** 33 + 5], [70_000, 1], [2 ** 40, 9]]);
  for (const [index, size] of sizes) inv.set({ fileId: 'f', index }, size);
  inv.set({ fileId: 'g', index: 3 }, 100);
  const total = (): number => [...sizes.values()].reduce((a, b) => a + b, 0) + 100;
  t.equal(inv.usedBytes(), total());
  for (const [index, size] of sizes) t.equal(inv.sizeOf({ fileId: 'f', index }), size, `extent ${index}`);
  t.equal(inv.sizeOf({ fileId: 'f', index: 2 }), undefined, 'a copy never set is not there');
  t.equal(inv.sizeOf({ fileId: 'f', index: 2 ** 40 + 1 }), undefined);
  t.same(inv.indexesOf('f').sort((a, b) => a - b), [...sizes.keys()]);
  inv.set({ fileId: 'f', index: 0 }, 100);
  sizes.set(0, 100);
  t.equal(inv.usedBytes(), total(), 'a size replaced counts once');
  inv.delete({ fileId: 'f', index: 1 });
  sizes.delete(1);
  inv.delete({ fileId: 'f', index: 12345 });
  t.equal(inv.usedBytes(), total(), 'deleting what is not there changes nothing');
  t.equal(inv.sizeOf({ fileId: 'f', index: 1 }), undefined, 'a copy of 0 bytes is gone once deleted');
  const seen: string[] = [];
  for (const c of inv.copies()) {
    seen.push(`${c.fileId}/${c.index}=${c.sizeBytes}`);
    // Removals while iterating: a copy removed before it is reached is not listed.
    if (c.fileId === 'f' && c.index === 0) inv.delete({ fileId: 'f', index: 255 });
  }
  sizes.delete(255);
  t.same(seen.sort(), [...[...sizes].map(([i, s]) => `f/${i}=${s}`), 'g/3=100'].sort());
  for (const index of [...sizes.keys()]) inv.delete({ fileId: 'f', index });
  t.same(inv.indexesOf('f'), []);
  t.equal(inv.usedBytes(), 100);
  inv.clear();
  t.equal(inv.usedBytes(), 0);
  t.same([...inv.copies()], []);
});
