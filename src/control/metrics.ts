/**
 * Prometheus metrics of a running mount, on 127.0.0.1 only (`--metrics-port`). Values are read
 * from the status report at scrape time, so the data path pays nothing for them.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { LocalHttpServer } from './local-http';
import { StatusReport } from './protocol';

export class MetricsServer {
  private readonly registry = new Registry();
  private readonly http = new LocalHttpServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end('try /metrics\n');
      return;
    }
    this.registry.metrics().then(
      (text) => res.writeHead(200, { 'Content-Type': this.registry.contentType }).end(text),
      (err: Error) => res.writeHead(500).end(`${err.message}\n`),
    );
  });

  /**
   * The one metric fed from the data path (a histogram cannot be rebuilt from a snapshot): the
   * redirector reports each read served by a tier copy. Reads on the native fast path are not in it.
   */
  private readonly tierReadSeconds: Histogram<'tier'>;

  observeTierRead(tier: string, seconds: number): void {
    this.tierReadSeconds.observe({ tier }, seconds);
  }

  constructor(private readonly report: () => StatusReport) {
    const r = this.registry;
    this.tierReadSeconds = new Histogram({
      name: 'shadowfs_tier_read_seconds', help: 'Latency of reads served by each tier through the redirector', labelNames: ['tier'], registers: [r],
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    });
    const snapshot = (): StatusReport => this.report();
    let last: StatusReport | undefined;
    // Every metric reads the same snapshot per scrape; the first collector takes it.
    const current = (): StatusReport => (last ??= snapshot());
    new Gauge({ name: 'shadowfs_tier_used_bytes', help: 'Bytes held by shadow copies on each tier', labelNames: ['tier', 'class'], registers: [r],
      collect() { last = undefined; for (const t of current().tiers) this.set({ tier: t.name, class: t.class }, t.usedBytes); } });
    new Gauge({ name: 'shadowfs_tier_capacity_bytes', help: 'Capacity of each tier', labelNames: ['tier'], registers: [r],
      collect() { for (const t of current().tiers) this.set({ tier: t.name }, t.capacityBytes); } });
    new Gauge({ name: 'shadowfs_tier_healthy', help: '1 when the tier is healthy, 0 when suspect or failed', labelNames: ['tier'], registers: [r],
      collect() { for (const t of current().tiers) this.set({ tier: t.name }, t.health === 'healthy' ? 1 : 0); } });
    new Counter({ name: 'shadowfs_read_bytes_total', help: 'Bytes of reads served through the redirector, by source (tier name or live)', labelNames: ['source'], registers: [r],
      collect() { this.reset(); for (const s of current().served) this.inc({ source: s.source }, s.bytes); } });
    new Counter({ name: 'shadowfs_reads_total', help: 'Reads served through the redirector, by source', labelNames: ['source'], registers: [r],
      collect() { this.reset(); for (const s of current().served) this.inc({ source: s.source }, s.reads); } });
    new Counter({ name: 'shadowfs_fast_path_reads_total', help: 'Reads served natively from mapped tier copies', registers: [r],
      collect() { this.reset(); this.inc(current().fastPath.hits); } });
    const shadowCounter = (name: string, help: string, pick: (s: StatusReport['shadow']) => number): void => {
      new Counter({ name, help, registers: [r], collect() { this.reset(); this.inc(pick(current().shadow)); } });
    };
    shadowCounter('shadowfs_promotions_total', 'Shadow copies made (promotions and coverage copies)', (s) => s.copies);
    shadowCounter('shadowfs_promoted_bytes_total', 'Bytes copied to tiers', (s) => s.copyBytes);
    shadowCounter('shadowfs_evictions_total', 'Copies evicted to make room', (s) => s.evictions);
    shadowCounter('shadowfs_stale_copies_dropped_total', 'Copies dropped because a write made them stale', (s) => s.discardedCopies);
    shadowCounter('shadowfs_copy_read_errors_total', 'Reads of a copy that failed (served from elsewhere)', (s) => s.copyErrors);
    shadowCounter('shadowfs_corrupt_copies_total', 'Copies that failed their checksum', (s) => s.corruptCopies);
    shadowCounter('shadowfs_hedged_reads_total', 'Reads also sent to a second copy because the first was slower than its tier p95', (s) => s.hedgesIssued ?? 0);
    shadowCounter('shadowfs_written_around_total', 'Copies a streaming writer left stale instead of patching them (write-around)', (s) => s.writtenAround ?? 0);
    shadowCounter('shadowfs_written_copies_total', 'Whole copies made by writes to extents that had none to patch (write-through)', (s) => s.writtenCopies ?? 0);
    shadowCounter('shadowfs_live_only_writes_total', 'Extents a write left on the live volume alone (no tier could take a copy)', (s) => s.liveOnlyWrites ?? 0);
    shadowCounter('shadowfs_hedged_reads_won_total', 'Hedged reads the second copy answered first', (s) => s.hedgesWon ?? 0);
    shadowCounter('shadowfs_files_dropped_after_restart_total', 'Files whose copies this mount dropped: the machine had restarted with them written since their last sync point', (s) => s.filesDroppedAfterRestart ?? 0);
    new Gauge({ name: 'shadowfs_unsynced_files', help: 'Files written since their last sync point (their copies are dropped if the machine restarts before the next one)', registers: [r],
      collect() { this.set(current().shadow.unsyncedFiles ?? 0); } });
    new Gauge({ name: 'shadowfs_tier_read_p95_seconds', help: 'Recent p95 latency of reads served by each tier through the redirector', labelNames: ['tier'], registers: [r],
      collect() { for (const t of current().tiers) if (t.readP95Us !== undefined) this.set({ tier: t.name }, t.readP95Us / 1e6); } });
    new Gauge({ name: 'shadowfs_failed_over', help: '1 while the volume is served from its shadows (failed over or resyncing), 0 on the live volume', registers: [r],
      collect() { const f = current().failover; if (f) this.set(f.mode === 'live' ? 0 : 1); } });
    new Gauge({ name: 'shadowfs_live_health_state', help: 'Health of the live volume: 0 healthy, 1 suspect, 2 failed-over, 3 resyncing', registers: [r],
      collect() { const f = current().failover; if (f) this.set(['healthy', 'suspect', 'failed-over', 'resyncing'].indexOf(f.health)); } });
    new Gauge({ name: 'shadowfs_resync_dirty_extents', help: 'Extents changed while failed over, waiting for resync', registers: [r],
      collect() { const f = current().failover; if (f) this.set(f.dirtyExtents); } });
    new Gauge({ name: 'shadowfs_coverage_ratio', help: 'Share of the volume with a fresh copy on the coverage tier (absent without one)', registers: [r],
      collect() { const c = current().coverage; if (c) this.set(c.coveredShare); } });
    new Gauge({ name: 'shadowfs_replication_lag_seconds', help: 'Age of the oldest change not yet on the coverage tier', registers: [r],
      collect() { const c = current().coverage; if (c) this.set(c.lagMs / 1000); } });
  }

  async start(port: number): Promise<number> {
    return this.http.start(port);
  }

  async stop(): Promise<void> {
    await this.http.stop();
  }
}
