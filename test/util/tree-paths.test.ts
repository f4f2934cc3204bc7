import t from 'tap';
import { isAtOrUnder, movedPath, parentOf } from '../../src/util/tree-paths';

t.test('isAtOrUnder compares whole names', async (t) => {
  t.ok(isAtOrUnder('/a', '/a'));
  t.ok(isAtOrUnder('/a/b/c', '/a'));
  t.notOk(isAtOrUnder('/ab', '/a'), 'a sibling sharing a prefix is not below');
  t.notOk(isAtOrUnder('/a', '/a/b'));
  t.ok(isAtOrUnder('/x', '/'), 'everything is below the root');
});

t.test('movedPath follows a rename of a file or a directory', async (t) => {
  t.equal(movedPath('/d/f', '/d/f', '/e'), '/e');
  t.equal(movedPath('/d/sub/f', '/d', '/x/y'), '/x/y/sub/f');
  t.equal(movedPath('/dd/f', '/d', '/x'), undefined, 'not moved by a rename of a name it only starts with');
  t.equal(movedPath('/other', '/d', '/x'), undefined);
});

t.test('parentOf', async (t) => {
  t.equal(parentOf('/'), '/');
  t.equal(parentOf('/a'), '/');
  t.equal(parentOf('/a/b'), '/a');
});
