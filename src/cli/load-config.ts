/** Turns `mount` flags and/or a config file into a validated VolumeConfig. */
import * as fs from 'node:fs';
import { isRecord } from '../config/check';
import { NEED_A_TIER, parseTierFlag, parseVolumeConfig, RawVolumeConfig, VolumeConfig } from '../config/volume-config';
import { ShadowfsError } from '../util/errors';

export interface VolumeFlags {
  config?: string;
  live?: string;
  tier?: string[];
  state?: string;
  extentSize?: string;
  admitAfter?: number;
  writeAroundAfter?: string;
  coverageTier?: string;
  copyRate?: string;
  scrubInterval?: string;
  watchLive?: boolean;
  placement?: string;
}

export function readConfigFile(file: string): RawVolumeConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ShadowfsError(`config file ${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ShadowfsError(`config file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  // null, a list or a string would otherwise reach the flags merged into it (a crash, or "no live volume").
  if (!isRecord(raw)) throw new ShadowfsError(`config file ${file}: expected a JSON object ({"live": ..., "tiers": [...]}), got ${Array.isArray(raw) ? 'a list' : JSON.stringify(raw)}`);
  return raw as RawVolumeConfig;
}

export function volumeConfigFrom(flags: VolumeFlags): VolumeConfig {
  const raw: RawVolumeConfig = flags.config ? readConfigFile(flags.config) : {};
  if (flags.live !== undefined) raw.live = flags.live;
  if (flags.tier && flags.tier.length > 0) raw.tiers = flags.tier.map(parseTierFlag);
  if (flags.state !== undefined) raw.stateDir = flags.state;
  if (flags.extentSize !== undefined) raw.extentSize = flags.extentSize;
  if (flags.admitAfter !== undefined) raw.admitAfterReads = flags.admitAfter;
  if (flags.writeAroundAfter !== undefined) raw.writeAroundAfter = flags.writeAroundAfter;
  if (flags.coverageTier !== undefined) raw.coverageTier = flags.coverageTier;
  if (flags.copyRate !== undefined) raw.copyRate = flags.copyRate;
  if (flags.scrubInterval !== undefined) raw.scrubInterval = flags.scrubInterval;
  if (flags.watchLive !== undefined) raw.watchLive = flags.watchLive;
  if (flags.placement !== undefined) raw.placement = flags.placement;
  if (raw.live === undefined) throw new ShadowfsError('no live volume: give --live DIR or a --config file with "live"');
  // Flags alone: said as flags. A config file's missing tiers are refused by parseVolumeConfig,
  // after its checks of the file's keys.
  if (!flags.config && raw.tiers === undefined) {
    throw new ShadowfsError(`no tiers: a shadowfs volume needs at least one tier to keep its shadow copies on; ${NEED_A_TIER}`);
  }
  try {
    return parseVolumeConfig(raw);
  } catch (err) {
    if (err instanceof ShadowfsError && flags.config) throw new ShadowfsError(`${flags.config}: ${err.message}`);
    throw err;
  }
}
