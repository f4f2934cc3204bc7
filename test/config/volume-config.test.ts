import t from 'tap';
import { parseVolumeConfig } from '../../src/config/volume-config';
import { DEFAULT_HEALTH_SETTINGS } from '../../src/health/health-settings';
import { ShadowfsError } from '../../src/util/errors';

const base = { live: '/srv/volume', tiers: [{ name: 'nvme', path: '/mnt/nvme', capacity: '1GiB' }] };

t.test('watchdog and predictor: defaults when the sections are absent', async (t) => {
  const c = parseVolumeConfig(base);
  t.same(c.watchdog, { enabled: true, probeIntervalMs: 1000, health: DEFAULT_HEALTH_SETTINGS });
  t.same(c.predictor, { planIntervalMs: 2000 });
});

t.test('watchdog: durations as strings or ms numbers, ratios and counts as numbers', async (t) => {
  const c = parseVolumeConfig({
    ...base,
    watchdog: { enabled: false, probeIntervalMs: '250ms', latencyLimitMs: '2s', horizonMs: 45_000, minHealthyForFailbackMs: '5m', suspectRatio: 4, errorRateThreshold: 0.1, minSamples: 20 },
  });
  t.equal(c.watchdog.enabled, false);
  t.equal(c.watchdog.probeIntervalMs, 250);
  t.equal(c.watchdog.health.latencyLimitMs, 2000);
  t.equal(c.watchdog.health.horizonMs, 45_000);
  t.equal(c.watchdog.health.minHealthyForFailbackMs, 300_000);
  t.equal(c.watchdog.health.suspectRatio, 4);
  t.equal(c.watchdog.health.errorRateThreshold, 0.1);
  t.equal(c.watchdog.health.minSamples, 20);
  // Unset settings keep their defaults.
  t.equal(c.watchdog.health.recoverRatio, DEFAULT_HEALTH_SETTINGS.recoverRatio);
});

t.test('watchdog: precise messages naming the key path', async (t) => {
  const bad = (watchdog: unknown): string => {
    try {
      parseVolumeConfig({ ...base, watchdog });
    } catch (err) {
      t.type(err, ShadowfsError);
      return (err as Error).message;
    }
    t.fail('accepted a bad watchdog section');
    return '';
  };
  t.match(bad({ foo: 1 }), /^config watchdog\.foo: expected one of enabled, probeIntervalMs, latencyLimitMs, .*, got "foo"$/);
  t.equal(bad('fast'), 'config watchdog: expected an object of watchdog settings, got "fast"');
  t.equal(bad({ enabled: 'yes' }), 'config watchdog.enabled: expected true or false, got "yes"');
  t.equal(bad({ latencyLimitMs: 'soon' }), 'config watchdog.latencyLimitMs: expected a duration like 30s, 5m or 250ms, got "soon"');
  t.equal(bad({ latencyLimitMs: true }), 'config watchdog.latencyLimitMs: expected milliseconds or a duration like 30s, got true');
  t.equal(bad({ latencyLimitMs: 0 }), 'config watchdog.latencyLimitMs: expected a number > 0, got 0');
  t.equal(bad({ suspectRatio: '3x' }), 'config watchdog.suspectRatio: expected a number, got "3x"');
  t.equal(bad({ minSamples: 2.5 }), 'config watchdog.minSamples: expected a whole number >= 0, got 2.5');
  t.equal(bad({ probeIntervalMs: '1ms' }), 'config watchdog.probeIntervalMs: expected a duration from 10ms to 1h, got "1ms"');
  t.match(bad({ errorRateThreshold: 1.5 }), /^config watchdog\.errorRateThreshold: expected 0 <= x < 1/);
  t.match(bad({ recoverRatio: 5, suspectRatio: 2 }), /^config watchdog: .*recoverRatio must not exceed suspectRatio/);
  t.match(bad({ bucketMs: '10s', errorWindowMs: '5s' }), /^config watchdog: windows must be at least one bucket/);
});

t.test('predictor: planning interval', async (t) => {
  t.equal(parseVolumeConfig({ ...base, predictor: { planIntervalMs: '500ms' } }).predictor.planIntervalMs, 500);
  t.equal(parseVolumeConfig({ ...base, predictor: { planIntervalMs: 10_000 } }).predictor.planIntervalMs, 10_000);
  t.throws(() => parseVolumeConfig({ ...base, predictor: { horizon: '1m' } }), /^config predictor\.horizon: expected one of planIntervalMs, got "horizon"$/);
  t.throws(() => parseVolumeConfig({ ...base, predictor: { planIntervalMs: 5 } }), /^config predictor\.planIntervalMs: expected a duration from 100ms to 1h, got 5$/);
  t.throws(() => parseVolumeConfig({ ...base, predictor: [] }), /^config predictor: expected an object/);
});

t.test('top level: the new sections are known keys, unknown ones still refused', async (t) => {
  t.throws(() => parseVolumeConfig({ ...base, watchdgo: {} }), /^config watchdgo: expected one of .*watchdog, predictor, got "watchdgo"$/);
});

t.test('writeAroundAfter: a size, "off", 4 MiB when absent; a clear message otherwise', async (t) => {
  t.equal(parseVolumeConfig(base).writeAroundAfterBytes, 4 * 1024 * 1024);
  t.equal(parseVolumeConfig({ ...base, writeAroundAfter: '16MiB' }).writeAroundAfterBytes, 16 * 1024 * 1024);
  t.equal(parseVolumeConfig({ ...base, writeAroundAfter: 'off' }).writeAroundAfterBytes, 0);
  t.throws(() => parseVolumeConfig({ ...base, writeAroundAfter: '12 parsecs' }), /^config writeAroundAfter: expected a size like 512MiB, 20GiB or 1TB, got "12 parsecs"$/);
  t.throws(() => parseVolumeConfig({ ...base, writeAroundAfter: [] }), /^config writeAroundAfter: expected a size like 4MiB, or "off"/);
});

t.test('scrub: weekly at 64 MiB/s by default, "off" turns the background scrub off', async (t) => {
  const c = parseVolumeConfig(base);
  t.equal(c.scrubIntervalMs, 7 * 24 * 3600_000);
  t.equal(c.scrubBytesPerSec, 64 * 1024 * 1024);
  t.equal(parseVolumeConfig({ ...base, scrubInterval: 'off' }).scrubIntervalMs, null);
  t.equal(parseVolumeConfig({ ...base, scrubInterval: '12h', scrubRate: '8MiB' }).scrubIntervalMs, 12 * 3600_000);
  t.throws(() => parseVolumeConfig({ ...base, scrubInterval: true }), ShadowfsError);
});
