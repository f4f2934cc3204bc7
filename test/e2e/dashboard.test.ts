/**
 * The dashboard of a running mount, end to end: a real mount with --dashboard-port 0, real reads
 * and writes through it, and the page rendered in headless Chromium (Debian's, driven by
 * playwright-core). The page must show the mount's own numbers and follow them live.
 *
 * SHADOWFS_DASHBOARD_SCREENSHOT=PATH also saves the reactive mount's screenshot there (how
 * docs/dashboard.png is made).
 */
import t, { Test } from 'tap';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { StatusReport } from '../../src/control/protocol';
import { cli, MountedVolume, sandboxedMount, type MountOptions, type Sandbox } from '../helpers/mounted-volume';
import { waitFor } from '../helpers/wait';

const CHROMIUM = '/usr/bin/chromium';
const MiB = 1024 * 1024;

function request(url: string, opts: { method?: string; host?: string } = {}): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = http.request({ hostname: u.hostname, port: u.port, path: u.pathname, method: opts.method ?? 'GET', headers: opts.host ? { Host: opts.host } : {} }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type']) }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function mountWithDashboard(t: Test, opts: MountOptions): Promise<{ sb: Sandbox; vol: MountedVolume; url: string }> {
  const { sb, vol } = sandboxedMount(t, { ...opts, extraArgs: [...(opts.extraArgs ?? []), '--dashboard-port', '0'] }, 'shadowfs-dashboard-');
  fs.writeFileSync(path.join(sb.live, 'a.bin'), Buffer.alloc(MiB, 1));
  fs.writeFileSync(path.join(sb.live, 'b.bin'), Buffer.alloc(MiB / 2, 2));
  await vol.start();
  const url = /dashboard at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(vol.output)?.[1];
  if (!url) throw new Error(`the mount did not say where its dashboard is: ${vol.output}`);
  return { sb, vol, url };
}

async function openPage(browser: Browser, url: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await page.goto(url);
  await until(page, `${UPDATES} >= 1`, 'a first update');
  if (errors.length > 0) throw new Error(`the page reported errors: ${errors.join('; ')}`);
  return page;
}

// Browser-side expressions are strings: this project compiles without the DOM library.
const UPDATES = "Number(document.body.getAttribute('data-updates') ?? 0)";
const updates = (page: Page): Promise<number> => page.evaluate<number>(UPDATES);

/**
 * Polls a browser-side expression until it is true. Not page.waitForFunction: that evaluates
 * strings inside the page, which the dashboard's Content-Security-Policy rightly forbids.
 */
async function until(page: Page, expression: string, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await page.evaluate<boolean>(expression))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (${expression})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
const attr = (id: string, name: string): string => `Number(document.getElementById('${id}')?.getAttribute('${name}'))`;
const READS_TOTAL = "Number(document.getElementById('reads-total')?.textContent)";
/** Pixels of the heat map canvas that differ from its background. */
const PAINTED = `(() => {
  const c = document.getElementById('heat-map');
  const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < px.length; i += 4) if (px[i] !== 0xf4 || px[i + 1] !== 0xf5 || px[i + 2] !== 0xf7) n++;
  return n;
})()`;

/** Tier name → used bytes as the page shows them. */
async function pageTiers(page: Page): Promise<Record<string, { used: number; capacity: number; text: string }>> {
  return page.$$eval('#tiers tbody tr', (rows) => Object.fromEntries(rows.map((r) => [
    r.querySelector('.tier-name')?.textContent ?? '',
    { used: Number(r.getAttribute('data-used-bytes')), capacity: Number(r.getAttribute('data-capacity-bytes')), text: r.querySelector('.used')?.textContent ?? '' },
  ])));
}

function statusOf(mnt: string): StatusReport {
  const r = cli(['status', '--json', mnt]);
  if (r.status !== 0) throw new Error(`status failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as StatusReport;
}

t.test('dashboard', async (t) => {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  t.teardown(() => browser.close());

  t.test('reactive placement: real numbers, live updates, a screenshot', async (t) => {
    const { sb, vol, url } = await mountWithDashboard(t, {
      extentSize: '64KiB', admitAfter: 1,
      tiers: [{ name: 'nvme', capacity: '8MiB' }, { name: 'bulk', capacity: '64MiB', cls: 'hdd' }], coverageTier: 'bulk',
    });
    // I/O through the mount: a file read twice (admitted to nvme), a file written.
    fs.readFileSync(path.join(sb.mnt, 'a.bin'));
    fs.readFileSync(path.join(sb.mnt, 'a.bin'));
    fs.writeFileSync(path.join(sb.mnt, 'c.bin'), Buffer.alloc(256 * 1024, 3));
    const page = await openPage(browser, url);

    // Tier names and used bytes match `shadowfs status --json` (copies may still be landing: the
    // two must agree once they stop).
    let status = statusOf(sb.mnt);
    let shown = await pageTiers(page);
    const agree = (): boolean => status.tiers.every((tier) => shown[tier.name]?.used === tier.usedBytes);
    const deadline = Date.now() + 15_000;
    while (!agree() && Date.now() < deadline) {
      const seen = await updates(page);
      await until(page, `${UPDATES} > ${seen}`, 'the next update', 5_000);
      status = statusOf(sb.mnt);
      shown = await pageTiers(page);
    }
    t.same(Object.keys(shown).sort(), status.tiers.map((x) => x.name).sort(), 'the page lists the mount\'s tiers');
    for (const tier of status.tiers) {
      t.equal(shown[tier.name]?.used, tier.usedBytes, `${tier.name}: used bytes as status reports them`);
      t.equal(shown[tier.name]?.capacity, tier.capacityBytes, `${tier.name}: capacity`);
    }
    t.ok(status.tiers.find((x) => x.name === 'nvme')!.usedBytes > 0, 'reads made copies on nvme');
    t.match(shown.nvme.text, /KiB|MiB/, 'used bytes are shown in human units');

    // The heat map has cells, drawn, and the read file's extents are on nvme. The heat grid is
    // rebuilt less often than the page polls (dashboard-data.ts), so it may lag the tier figures.
    await until(page, `${attr('heat-map', 'data-cells')} > 0`, 'heat map cells').catch(() => undefined);
    const cells = Number(await page.getAttribute('#heat-map', 'data-cells'));
    t.ok(cells > 0, `the heat map has cells (${cells})`);
    t.ok(Number(await page.getAttribute('[data-heat-tier="nvme"]', 'data-heat-cells')) > 0, 'some cells are on nvme');
    const painted = await page.evaluate<number>(PAINTED);
    t.ok(painted > 100, `the heat map is painted (${painted} pixels)`);

    // The IOPS chart has points, and the reads show in it.
    await until(page, `${attr('iops-chart', 'data-points')} >= 2 && ${attr('iops-chart', 'data-max-total')} > 0`, 'reads in the IOPS chart');
    t.ok(Number(await page.getAttribute('#iops-chart', 'data-points')) >= 2, 'the IOPS chart has points');
    t.ok(Number(await page.getAttribute('#iops-chart', 'data-max-total')) > 0, 'the reads show in it');
    t.ok(await page.$('#iops-chart polygon'), 'reads are drawn as areas by source');
    t.match(await page.textContent('#forecast-note'), /reactive placement: no forecast/);
    t.equal(await page.textContent('#health-badge'), status.failover?.health, 'the live volume\'s health as status reports it');

    // Live: more reads through the mount move the page's numbers without a reload.
    const before = Number(await page.textContent('#reads-total'));
    fs.readFileSync(path.join(sb.mnt, 'b.bin'));
    await until(page, `${READS_TOTAL} > ${before}`, 'the new reads on the page');
    t.ok(Number(await page.textContent('#reads-total')) > before, 'reads served went up on the page');

    // The JSON endpoint, and what the server refuses.
    const snap = await request(`${url}api/snapshot`);
    t.equal(snap.status, 200);
    t.match(snap.type, /application\/json/);
    t.equal((JSON.parse(snap.body) as { mountpoint: string }).mountpoint, sb.mnt);
    t.equal((await request(`${url}nothing`)).status, 404);
    t.equal((await request(`${url}api/snapshot`, { method: 'POST' })).status, 405, 'read-only');
    t.equal((await request(`${url}api/snapshot`, { host: 'evil.example:80' })).status, 421, 'other host names are refused');

    // A failover and failback by hand show on the health timeline and in the transitions.
    await waitFor(() => statusOf(sb.mnt).coverage?.coveredShare === 1, 'full coverage on bulk');
    const over = cli(['failover', sb.mnt]);
    t.equal(over.status, 0, 'failover accepted', { stderr: over.stderr });
    await until(page, "document.getElementById('health-badge')?.textContent === 'failed-over'", 'the failed-over state on the page');
    t.match(await page.textContent('#health-note'), /failed over/, 'the page says the volume is served from its shadows');
    const back = cli(['failback', sb.mnt]);
    t.equal(back.status, 0, 'failback accepted', { stderr: back.stderr });
    await until(page, "document.getElementById('health-badge')?.textContent === 'healthy'", 'healthy again after failback', 30_000);
    const states = await page.$$eval('#health-timeline rect[data-state]', (rects) => rects.map((r) => r.getAttribute('data-state')));
    t.ok(states.includes('failed-over'), `the timeline shows the failed-over stretch (${states.join(', ')})`);
    const rows = await page.$$eval('#transitions tbody tr', (trs) => trs.map((r) => r.textContent ?? ''));
    t.ok(rows.some((r) => /healthy.*→.*failed-over/.test(r)), 'the transition into failover is listed');

    const shot = path.join(sb.root, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    const png = fs.readFileSync(shot);
    t.same([...png.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47], 'a PNG');
    t.ok(png.length > 30_000, `the screenshot is not blank (${png.length} bytes)`);
    if (process.env.SHADOWFS_DASHBOARD_SCREENSHOT) fs.copyFileSync(shot, process.env.SHADOWFS_DASHBOARD_SCREENSHOT);
    await page.close();
    t.equal(await vol.stop(), 0, 'unmounts cleanly with the dashboard open', { output: vol.output });
  });

  t.test('predictive placement: forecasts and predicted heat', async (t) => {
    const { sb, vol, url } = await mountWithDashboard(t, { extentSize: '64KiB', extraArgs: ['--placement', 'predictive'] });
    for (let i = 0; i < 3; i++) fs.readFileSync(path.join(sb.mnt, 'a.bin'));
    const page = await openPage(browser, url);
    t.match(await page.textContent('#forecast-note'), /prediction engine/);
    t.equal(await page.$$eval('#forecast tbody tr', (rows) => rows.length), 3, 'forecasts at 1, 10 and 60 minutes');
    await until(page, `${attr('heat-map', 'data-cells')} > 0`, 'heat map cells');
    t.match(await page.textContent('#heat-note'), /predicted accesses/, 'heat comes from the engine');
    await page.close();
    t.equal(await vol.stop(), 0, 'unmounts cleanly', { output: vol.output });
  });
});
