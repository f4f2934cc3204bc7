// The shadowfs dashboard page: polls the mount's snapshot every second and redraws. Plain browser
// JavaScript, no framework and no build step; charts are SVG, the heat map a canvas.
'use strict';

(function () {
  const POLL_MS = 1000;
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const TIER_COLOURS = ['#2f6fde', '#2a9d8f', '#e09f3e', '#9b5de5', '#d1495b', '#6a994e', '#577590', '#bc6c25'];
  const FAST_PATH_COLOUR = '#7fb3ff';
  const LIVE_COLOUR = '#9aa5b1';
  const STATE_COLOURS = { healthy: '#40c057', suspect: '#fab005', 'failed-over': '#e03131', failed: '#e03131', resyncing: '#339af0' };
  const HEAT_COLUMNS = 64;
  const HEAT_CELL_PX = 12;

  const $ = (id) => document.getElementById(id);
  let lastOkMs = 0;
  let heat = null;

  // ---- formatting ----
  function bytes(n) {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let v = n;
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i === 0 ? String(v) : v.toFixed(v < 10 ? 2 : 1)) + ' ' + units[i];
  }
  function money(x) { return '$' + (x < 10 ? x.toFixed(4) : x.toFixed(2)); }
  function rate(x) { return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2); }
  function duration(s) {
    if (s < 60) return Math.round(s) + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min' + (Math.round(s % 60) ? ' ' + Math.round(s % 60) + ' s' : '');
    if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
    return Math.floor(s / 86400) + ' d ' + Math.floor((s % 86400) / 3600) + ' h';
  }
  function clock(ms) { return new Date(ms).toLocaleTimeString([], { hour12: false }); }
  function percent(x) { return (x * 100).toFixed(x < 0.999 ? 1 : 0) + ' %'; }

  // ---- DOM helpers ----
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }
  /** Sizes an SVG's coordinate system to its on-screen width (text keeps its shape); returns it. */
  function fit(chart, height) {
    const width = Math.max(300, Math.round(chart.getBoundingClientRect().width) || 1000);
    chart.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    return width;
  }
  function stateBadge(state) {
    return el('span', { class: 'state state-' + (state || 'none') }, state || 'no watchdog');
  }
  function sourceColour(name, tierNames) {
    const i = tierNames.indexOf(name);
    if (i >= 0) return TIER_COLOURS[i % TIER_COLOURS.length];
    return name === 'fast path' ? FAST_PATH_COLOUR : LIVE_COLOUR;
  }
  function swatch(colour) {
    const s = el('span', { class: 'swatch' });
    s.style.background = colour;
    return s;
  }

  // ---- header ----
  function renderHeader(s) {
    $('mountpoint').textContent = s.mountpoint;
    $('live-path').textContent = s.livePath;
    $('placement').textContent = s.placement.policy;
    $('uptime').textContent = duration(s.uptimeSeconds);
    $('updated').textContent = clock(s.atMs);
    const badge = stateBadge(s.health.state);
    badge.id = 'health-badge';
    $('health-badge').replaceWith(badge);
    const c = s.coverage;
    $('coverage').textContent = c ? percent(c.coveredShare) + ' on ' + c.tier + (c.lagMs > 0 ? ', lag ' + duration(c.lagMs / 1000) : '') : 'no coverage tier';
  }

  // ---- tiers ----
  function renderTiers(s) {
    const names = s.tiers.map((t) => t.name);
    const body = $('tiers').tBodies[0];
    body.replaceChildren();
    for (const t of s.tiers) {
      const row = el('tr', { 'data-tier': t.name, 'data-used-bytes': String(t.usedBytes), 'data-capacity-bytes': String(t.capacityBytes) });
      const nameCell = el('td');
      nameCell.append(swatch(sourceColour(t.name, names)), el('span', { class: 'tier-name' }, t.name), document.createTextNode(' '), el('span', { class: 'class' }, t.class));
      row.append(nameCell);
      const health = el('td');
      health.append(stateBadge(t.health));
      row.append(health);
      const share = t.capacityBytes > 0 ? Math.min(1, t.usedBytes / t.capacityBytes) : 0;
      const barCell = el('td');
      const bar = el('span', { class: 'bar', title: percent(share) });
      const fill = el('span');
      fill.style.width = (share * 100).toFixed(1) + '%';
      fill.style.background = share > 0.95 ? '#e03131' : sourceColour(t.name, names);
      bar.append(fill);
      barCell.append(bar, document.createTextNode(' ' + percent(share)));
      row.append(barCell);
      row.append(el('td', { class: 'num used' }, bytes(t.usedBytes)));
      row.append(el('td', { class: 'num' }, bytes(t.capacityBytes)));
      row.append(el('td', { class: 'num' }, money(t.costPerGiBMonth)));
      row.append(el('td', { class: 'num' }, money(t.costPerMonth)));
      body.append(row);
    }
    const saved = s.cost.allOnFastestPerMonth - s.cost.placementPerMonth;
    $('cost-summary').textContent = 'Copies cost ' + money(s.cost.placementPerMonth) + '/month where they are; ' +
      money(s.cost.allOnFastestPerMonth) + '/month if all were on the fastest tier' + (saved > 0 ? ' (saving ' + money(saved) + ')' : '') + '.';
  }

  // ---- counters ----
  function renderCounters(s) {
    const dl = $('counters');
    dl.replaceChildren();
    const totalReads = s.fastPath.hits + s.servedReads;
    const rows = [
      ['reads served', String(totalReads), 'reads-total'],
      ['… natively (fast path)', String(s.fastPath.hits) + (s.fastPath.mappedExtents !== undefined ? ' (' + s.fastPath.mappedExtents + ' extents mapped)' : '')],
      ['copies made', s.shadow.copies + ' (' + bytes(s.shadow.copyBytes) + ')', 'copies'],
      ['evictions', String(s.shadow.evictions)],
      ['stale copies dropped', String(s.shadow.discardedCopies)],
      ['failed copies', String(s.shadow.failedCopies)],
      ['copy read errors', String(s.shadow.copyErrors)],
      ['corrupt copies', String(s.shadow.corruptCopies)],
      ['pins / hints', s.pins + ' / ' + s.hints],
      ['planner', s.placement.policy === 'predictive' ? s.placement.rounds + ' rounds, ' + s.placement.requested + ' copies requested, ' + s.placement.readahead + ' readahead' : 'reactive admission'],
    ];
    if (s.coverage) rows.push(['coverage pending', bytes(s.coverage.pendingBytes) + ' of ' + bytes(s.coverage.totalBytes)]);
    for (const [k, v, id] of rows) {
      dl.append(el('dt', {}, k));
      dl.append(el('dd', id ? { id } : {}, v));
    }
  }

  // ---- IOPS chart ----
  function renderIops(s) {
    const chart = $('iops-chart');
    chart.replaceChildren();
    const H = 230, L = 48, R = 8, T = 8, B = 22;
    const W = fit(chart, H);
    const pts = s.iops.points;
    const names = s.tiers.map((t) => t.name);
    const totals = pts.map((p) => p.reads.reduce((a, b) => a + b, 0));
    // The engine's one-minute windows: what it forecast for each and what came (reads and writes).
    const report = s.forecast.report;
    const minute = report ? report.horizons.find((h) => h.horizonSteps === 1) : null;
    const windows = minute ? minute.points.filter((p) => p.forecast.iops !== null) : [];
    const next = minute && minute.next ? minute.next : null;
    const forecasts = windows.map((p) => p.forecast.iops).concat(windows.map((p) => p.actual.iops), next ? [next.iops] : []).filter((v) => v !== null);
    // Trailing one-minute mean of the actual total: the forecast is a one-minute mean too.
    const mean60 = totals.map((_, i) => {
      const from = Math.max(0, i - 59);
      let sum = 0;
      for (let j = from; j <= i; j++) sum += totals[j];
      return sum / (i - from + 1);
    });
    const ymax = Math.max(1, ...totals, ...forecasts) * 1.1;
    const now = s.atMs;
    // The window grows with the history, up to five minutes: a young mount is not a sliver.
    const span = Math.min(300000, Math.max(60000, pts.length > 0 ? now - pts[0].atMs : 0));
    const x = (ms) => L + ((ms - (now - span)) / span) * (W - L - R);
    const y = (v) => H - B - (v / ymax) * (H - B - T);
    // Axes and grid.
    for (let k = 0; k <= 4; k++) {
      const v = (ymax / 1.1) * (k / 4);
      chart.append(svg('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: '#eef0f2' }));
      chart.append(svg('text', { x: L - 4, y: y(v) + 4, 'text-anchor': 'end' }, rate(v)));
    }
    // Time ticks at round steps back from now, at most six.
    const stepMs = [10000, 15000, 30000, 60000].find((st) => span / st <= 6) || 60000;
    for (let ago = 0; ago <= span + 1; ago += stepMs) {
      chart.append(svg('text', { x: x(now - ago), y: H - 6, 'text-anchor': ago === 0 ? 'end' : 'middle' }, ago === 0 ? 'now' : '-' + duration(ago / 1000)));
    }
    // Stacked areas, one per source, fastest tier at the bottom.
    const base = pts.map(() => 0);
    s.iops.sources.forEach((name, si) => {
      if (pts.length < 2) return;
      const top = pts.map((p, i) => base[i] + p.reads[si]);
      if (top.every((v, i) => v === base[i])) return;
      const upper = pts.map((p, i) => x(p.atMs).toFixed(1) + ',' + y(top[i]).toFixed(1));
      const lower = pts.map((p, i) => x(p.atMs).toFixed(1) + ',' + y(base[i]).toFixed(1)).reverse();
      chart.append(svg('polygon', { points: upper.concat(lower).join(' '), fill: sourceColour(name, names), 'fill-opacity': 0.75, 'data-source': name }));
      for (let i = 0; i < top.length; i++) base[i] = top[i];
    });
    const line = (values, attrs) => {
      const coords = [];
      values.forEach((v, i) => { if (v !== null) coords.push(x(pts[i].atMs).toFixed(1) + ',' + y(v).toFixed(1)); });
      if (coords.length > 0) chart.append(svg('polyline', Object.assign({ points: coords.join(' '), fill: 'none' }, attrs)));
    };
    line(totals, { stroke: '#1f2933', 'stroke-width': 1, id: 'iops-total-line' });
    line(mean60, { stroke: '#1f2933', 'stroke-width': 2, 'stroke-opacity': 0.5, id: 'iops-mean-line' });
    // Forecast vs actual per completed minute, and the forecast for the minute under way.
    const segment = (fromMs, toMs, v, attrs) => {
      if (v === null || toMs <= now - span) return;
      const a = Math.max(fromMs, now - span);
      const b = Math.min(toMs, now);
      if (b > a) chart.append(svg('line', Object.assign({ x1: x(a), x2: x(b), y1: y(v), y2: y(v) }, attrs)));
    };
    for (const w of windows) {
      segment(w.fromMs, w.toMs, w.actual.iops, { stroke: '#1f2933', 'stroke-width': 3, class: 'actual-window' });
      segment(w.fromMs, w.toMs, w.forecast.iops, { stroke: '#d1495b', 'stroke-width': 3, 'stroke-dasharray': '6 4', class: 'forecast-window' });
    }
    if (next) segment(next.fromMs, next.toMs, next.iops, { stroke: '#d1495b', 'stroke-width': 3, 'stroke-dasharray': '2 3', class: 'forecast-next' });
    const latest = totals.length > 0 ? totals[totals.length - 1] : 0;
    chart.setAttribute('data-points', String(pts.length));
    chart.setAttribute('data-max-total', String(Math.max(0, ...totals)));
    chart.setAttribute('data-latest-total', String(latest));

    const legend = $('iops-legend');
    legend.replaceChildren();
    s.iops.sources.forEach((name, si) => {
      const item = el('span');
      const last = pts.length > 0 ? pts[pts.length - 1].reads[si] : 0;
      item.append(swatch(sourceColour(name, names)), document.createTextNode(name + ' ' + rate(last) + '/s'));
      legend.append(item);
    });
    legend.append(el('span', {}, '— total ' + rate(latest) + '/s, thick: 1-min mean ' + rate(mean60.length ? mean60[mean60.length - 1] : 0) + '/s'));
    if (s.forecast.available) {
      legend.append(el('span', { style: 'color:#d1495b' }, '- - forecast per minute (dotted: the minute under way)'));
      legend.append(el('span', {}, '▬ actual per minute, as the engine counted it'));
    }

    $('forecast-note').textContent = s.forecast.note;
    const fbody = $('forecast').tBodies[0];
    fbody.replaceChildren();
    $('forecast').style.display = s.forecast.available ? '' : 'none';
    for (const h of report ? report.horizons : []) {
      const row = el('tr');
      const nextIops = h.next && h.next.iops !== null ? rate(h.next.iops) : 'after the first complete minute';
      const mase = h.mase.iops === null ? 'not scored yet' : h.mase.iops.toFixed(2) + ' over ' + h.scoredPoints + ' windows';
      row.append(el('td', {}, h.horizon), el('td', { class: 'num' }, nextIops), el('td', { class: 'num' }, mase));
      fbody.append(row);
    }
  }

  // ---- heat map ----
  function tierColour(index) {
    return index < 0 ? LIVE_COLOUR : TIER_COLOURS[index % TIER_COLOURS.length];
  }
  function renderHeat(s) {
    heat = s.heat;
    const canvas = $('heat-map');
    const n = heat.tier.length;
    const rows = Math.max(1, Math.ceil(n / HEAT_COLUMNS));
    canvas.width = HEAT_COLUMNS * HEAT_CELL_PX;
    canvas.height = rows * HEAT_CELL_PX;
    canvas.setAttribute('data-cells', String(n));
    const ctx = canvas.getContext('2d');
    ctx.fillStyle = '#f4f5f7';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    let maxHeat = 0;
    if (heat.heat) for (const h of heat.heat) maxHeat = Math.max(maxHeat, h);
    for (let i = 0; i < n; i++) {
      const cx = (i % HEAT_COLUMNS) * HEAT_CELL_PX;
      const cy = Math.floor(i / HEAT_COLUMNS) * HEAT_CELL_PX;
      ctx.fillStyle = tierColour(heat.tier[i]);
      // Heat as opacity on a log scale: a few hot extents must not wash out the rest.
      ctx.globalAlpha = heat.heat && maxHeat > 0 ? 0.2 + 0.8 * (Math.log1p(heat.heat[i]) / Math.log1p(maxHeat)) : 1;
      ctx.fillRect(cx + 1, cy + 1, HEAT_CELL_PX - 2, HEAT_CELL_PX - 2);
    }
    ctx.globalAlpha = 1;
    // File boundaries: a dark tick at each file's first cell.
    ctx.fillStyle = '#1f2933';
    for (const f of heat.files) {
      const cx = (f.firstCell % HEAT_COLUMNS) * HEAT_CELL_PX;
      const cy = Math.floor(f.firstCell / HEAT_COLUMNS) * HEAT_CELL_PX;
      ctx.fillRect(cx, cy, 2, HEAT_CELL_PX);
    }
    const legend = $('heat-legend');
    legend.replaceChildren();
    const counts = new Map();
    for (const t of heat.tier) counts.set(t, (counts.get(t) || 0) + 1);
    heat.tiers.forEach((name, i) => {
      const item = el('span', { 'data-heat-tier': name, 'data-heat-cells': String(counts.get(i) || 0) });
      item.append(swatch(tierColour(i)), document.createTextNode(name + ': ' + (counts.get(i) || 0) + ' cells'));
      legend.append(item);
    });
    const live = el('span', { 'data-heat-tier': 'live only', 'data-heat-cells': String(counts.get(-1) || 0) });
    live.append(swatch(LIVE_COLOUR), document.createTextNode('live only: ' + (counts.get(-1) || 0) + ' cells'));
    legend.append(live);
    $('heat-note').textContent = heat.totalExtents + ' extents in ' + heat.fileCount + ' files, ' + heat.extentsPerCell +
      ' per cell, in file order (a dark tick starts a file); colour: the tier a cell is read from' +
      (heat.heatSource === 'predicted' ? '; opacity: predicted accesses (log scale, hottest ' + maxHeat.toFixed(2) + ')' : '; reactive placement keeps no per-extent heat, so opacity is uniform') + '.' +
      (heat.error ? ' The last rebuild failed (' + heat.error + '): this is an older map.' : '');
  }
  function describeCell(i) {
    if (!heat || i < 0 || i >= heat.tier.length) return '';
    let file = null;
    for (const f of heat.files) if (f.firstCell <= i) file = f; else break;
    // Past the last labelled file's cells: one of the files the grid did not name.
    if (file && file === heat.files[heat.files.length - 1] && heat.fileCount > heat.files.length &&
      i >= file.firstCell + Math.ceil(file.extents / heat.extentsPerCell)) file = { label: '(one of ' + (heat.fileCount - heat.files.length) + ' more files)', firstCell: i, extents: 0 };
    const where = heat.tier[i] < 0 ? 'live only' : heat.tiers[heat.tier[i]];
    const first = file ? (i - file.firstCell) * heat.extentsPerCell : null;
    const range = first === null ? '' : heat.extentsPerCell === 1 ? ' extent ' + first : ' extents ' + first + '–' + (first + heat.extentsPerCell - 1);
    return (file ? file.label : '?') + range + ' · ' + where + (heat.heat ? ' · heat ' + heat.heat[i].toFixed(2) : '');
  }
  $('heat-map').addEventListener('mousemove', (ev) => {
    const canvas = ev.currentTarget;
    const rect = canvas.getBoundingClientRect();
    const px = ((ev.clientX - rect.left) / rect.width) * canvas.width;
    const py = ((ev.clientY - rect.top) / rect.height) * canvas.height;
    const i = Math.floor(py / HEAT_CELL_PX) * HEAT_COLUMNS + Math.floor(px / HEAT_CELL_PX);
    $('heat-hover').textContent = describeCell(i) || 'hover a cell for its file, extents, tier and heat';
  });

  // ---- health ----
  function renderHealth(s) {
    const h = s.health;
    const chart = $('health-timeline');
    chart.replaceChildren();
    const L = 90, R = 8;
    const W = fit(chart, 74);
    const spanMs = Math.max(600000, s.uptimeSeconds * 1000);
    const start = s.atMs - spanMs;
    const x = (ms) => L + ((Math.max(ms, start) - start) / spanMs) * (W - L - R);
    chart.append(svg('text', { x: 0, y: 20 }, 'volume'));
    if (h.watchdog) {
      // Segments between transitions from the mount's start; before the first, the state it left.
      const ts = h.transitions;
      let from = Math.max(start, s.atMs - s.uptimeSeconds * 1000);
      let state = ts.length > 0 ? ts[0].from : h.state;
      for (const t of ts.concat([{ atMs: s.atMs, from: h.state, to: h.state }])) {
        if (t.atMs > from) chart.append(svg('rect', { x: x(from), y: 8, width: Math.max(1, x(t.atMs) - x(from)), height: 18, fill: STATE_COLOURS[state] || LIVE_COLOUR, 'data-state': state }));
        from = Math.max(from, t.atMs);
        state = t.to;
      }
    } else {
      chart.append(svg('rect', { x: L, y: 8, width: W - L - R, height: 18, fill: '#e4e7eb' }));
      chart.append(svg('text', { x: L + 8, y: 21 }, 'no watchdog: this mount does not monitor the live volume'));
    }
    chart.append(svg('text', { x: 0, y: 50 }, 'tier changes'));
    chart.append(svg('line', { x1: L, x2: W - R, y1: 46, y2: 46, stroke: '#dde1e6' }));
    for (const c of h.tierChanges) {
      chart.append(svg('rect', { x: x(c.atMs) - 2, y: 38, width: 4, height: 16, fill: STATE_COLOURS[c.to] || LIVE_COLOUR }));
    }
    chart.append(svg('text', { x: L, y: 70 }, '-' + duration(spanMs / 1000)));
    chart.append(svg('text', { x: W - R, y: 70, 'text-anchor': 'end' }, 'now'));
    const f = s.failover;
    let note = h.watchdog ? 'Live volume: ' + h.state + '. ' : 'No watchdog: volume health is not monitored in this mount. ';
    if (f) {
      note += 'Serving from ' + (f.mode === 'live' ? 'the live volume' : f.mode === 'failed-over' ? 'the shadows (failed over' + (f.since ? ' since ' + clock(f.since) : '') + ')' : 'the live volume, resyncing') + '.';
      if (f.mode !== 'live' || f.dirtyExtents > 0) note += ' ' + f.dirtyExtents + ' extents changed while failed over await resync.';
      if (f.abandonedOps > 0) note += ' ' + f.abandonedOps + ' live operations abandoned after their deadline.';
      if (f.reason && f.mode !== 'live') note += ' Reason: ' + f.reason + '.';
    }
    $('health-note').textContent = note + ' Tier health comes from the tier prober.';

    const rows = h.transitions.map((t) => ({ atMs: t.atMs, what: 'volume', from: t.from, to: t.to, reason: t.reason }))
      .concat(h.tierChanges.map((c) => ({ atMs: c.atMs, what: 'tier ' + c.tier, from: c.from, to: c.to, reason: '' })))
      .sort((a, b) => b.atMs - a.atMs).slice(0, 30);
    const body = $('transitions').tBodies[0];
    body.replaceChildren();
    if (rows.length === 0) {
      const r = el('tr');
      r.append(el('td', { colspan: '4' }, 'no transitions yet'));
      body.append(r);
    }
    for (const t of rows) {
      const r = el('tr');
      const states = el('td');
      states.append(stateBadge(t.from), document.createTextNode(' → '), stateBadge(t.to));
      r.append(el('td', {}, clock(t.atMs)), el('td', {}, t.what), states, el('td', {}, t.reason));
      body.append(r);
    }
  }

  // ---- polling ----
  function render(s) {
    renderHeader(s);
    renderTiers(s);
    renderCounters(s);
    renderIops(s);
    renderHeat(s);
    renderHealth(s);
  }
  async function poll() {
    try {
      const res = await fetch('/api/snapshot', { cache: 'no-store' });
      if (!res.ok) throw new Error('HTTP ' + res.status);
      render(await res.json());
      lastOkMs = Date.now();
      $('stale').style.display = 'none';
      document.body.setAttribute('data-updates', String(Number(document.body.getAttribute('data-updates') || 0) + 1));
    } catch (err) {
      const stale = $('stale');
      stale.style.display = 'block';
      stale.textContent = 'No answer from the mount (' + err.message + ')' + (lastOkMs ? ': figures below are from ' + clock(lastOkMs) : '') + '.';
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }
  poll();
})();
