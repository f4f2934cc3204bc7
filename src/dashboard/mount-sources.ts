/**
 * Where a running mount's dashboard gets its data: adapts the volume, the predictive placement
 * (when on) and the status report builder to the small interfaces DashboardData reads.
 */
import * as path from 'node:path';
import { StatusReport } from '../control/protocol';
import { Placements } from '../shadow/pins';
import { PredictivePlacement } from '../shadow/predictive-placement';
import { Volume } from '../volume/volume';
import { DashboardSources, ForecastSource, HealthSource } from './dashboard-data';

/** File paths remembered for heat map labels (files seen open or pinned). */
const MAX_REMEMBERED_LABELS = 10_000;

export interface MountParts {
  volume: Volume;
  placements: Placements;
  predictive: PredictivePlacement | undefined;
  status: () => StatusReport;
  health?: HealthSource;
}

export function mountSources(parts: MountParts): DashboardSources {
  const { volume, placements, predictive } = parts;
  const labels = new Map<string, string>();
  const remember = (fileId: string, livePath: string): string => {
    const label = path.relative(volume.livePath, livePath) || livePath;
    labels.delete(fileId);
    labels.set(fileId, label);
    if (labels.size > MAX_REMEMBERED_LABELS) labels.delete(labels.keys().next().value as string);
    return label;
  };
  return {
    status: parts.status,
    extents: volume.map,
    tiers: () => volume.tiers.all().map((t) => ({ id: t.id, name: t.tier.spec.name })),
    fileLabels: () => {
      const pins = new Map(placements.allPins().map((p) => [p.fileId, p.path]));
      return (fileId) => {
        const open = volume.open.file(fileId)?.livePath ?? pins.get(fileId);
        if (open) return remember(fileId, open);
        // The map knows files by inode; a file never seen open here is shown as one (find -inum).
        return labels.get(fileId) ?? `inode 0x${fileId}`;
      };
    },
    forecast: predictive ? engineForecasts(predictive, volume.livePath) : undefined,
    health: parts.health,
  };
}

/** One-minute windows of forecast vs actual kept per horizon: five span the IOPS chart. */
const FORECAST_POINTS = 5;

function engineForecasts(predictive: PredictivePlacement, source: string): ForecastSource {
  return {
    report: () => predictive.forecast(source, { points: FORECAST_POINTS }),
    heat: (fileId, index, nowMs) => predictive.engine.predict({ fileId, index }, nowMs * 1000),
  };
}
