import t from 'tap';
import { parseBytes, parseDurationMs } from '../../src/util/units';
import { ShadowfsError } from '../../src/util/errors';

t.test('parseBytes understands binary and decimal units', async (t) => {
  t.equal(parseBytes('20GiB', 'cap'), 20 * 1024 ** 3);
  t.equal(parseBytes('1 MiB', 'cap'), 1024 * 1024);
  t.equal(parseBytes('1TB', 'cap'), 1e12);
  t.equal(parseBytes('4096', 'cap'), 4096);
  t.throws(() => parseBytes('12 parsecs', 'tier nvme: cap'), ShadowfsError);
  t.throws(() => parseBytes('12 parsecs', 'tier nvme: cap'), /tier nvme: cap: expected a size/);
});

t.test('parseDurationMs', async (t) => {
  t.equal(parseDurationMs('30s', 'lag'), 30_000);
  t.equal(parseDurationMs('250ms', 'lag'), 250);
  t.equal(parseDurationMs('5m', 'lag'), 300_000);
  t.throws(() => parseDurationMs('soon', 'lag'), /expected a duration/);
});
