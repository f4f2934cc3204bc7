import t from 'tap';
import { changedExtents } from '../../src/io/changed-extents';

const E = 100;

t.test('growing a file: the extents past the old end are zeros, the old last one changed in part', async (t) => {
  t.same(changedExtents(E, 250, 520), { zeros: [3, 4, 5], partial: [2] }, 'old end inside extent 2');
  t.same(changedExtents(E, 300, 450), { zeros: [3, 4], partial: [] }, 'old end on a boundary');
  t.same(changedExtents(E, 0, 150), { zeros: [0, 1], partial: [] }, 'an empty file');
});

t.test('shrinking or keeping the size changes nothing by itself', async (t) => {
  t.same(changedExtents(E, 520, 250), { zeros: [], partial: [] });
  t.same(changedExtents(E, 520, 520), { zeros: [], partial: [] });
});

t.test('a zeroed range: whole extents inside it are zeros, its edges partial', async (t) => {
  t.same(changedExtents(E, 1000, 1000, { from: 150, to: 420 }), { zeros: [2, 3], partial: [1, 4] });
  t.same(changedExtents(E, 1000, 1000, { from: 200, to: 300 }), { zeros: [2], partial: [] }, 'exactly one extent');
  t.same(changedExtents(E, 950, 950, { from: 850, to: 5000 }), { zeros: [9], partial: [8] }, 'to the end: the short last extent is all zeros');
  t.same(changedExtents(E, 500, 500, { from: 600, to: 700 }), { zeros: [], partial: [] }, 'past the end, size kept: nothing');
});

t.test('a zeroed range that also grows the file is one stretch of zeros', async (t) => {
  t.same(changedExtents(E, 250, 600, { from: 120, to: 600 }), { zeros: [2, 3, 4, 5], partial: [1] });
  t.same(changedExtents(E, 250, 600, { from: 120, to: 200 }), { zeros: [3, 4, 5], partial: [1, 2] }, 'a range short of the old end: extent 2 keeps bytes');
});
