/**
 * TierSpec → ShadowTier. Constructs only; the caller awaits `open()` (which checks the tier is
 * usable and throws a ShadowfsError naming the tier if not).
 */
import { ShadowfsError } from '../util/errors';
import { DirectoryTier, type DirectoryTierOptions } from './directory-tier';
import { ObjectTier, type ObjectTierOptions } from './object-tier';
import type { ShadowTier, TierSpec } from './tier';

export interface OpenTierOptions {
  directory?: DirectoryTierOptions;
  object?: ObjectTierOptions;
}

export function openTier(spec: TierSpec, options: OpenTierOptions = {}): ShadowTier {
  if (spec.class === 'object') {
    if (!spec.object) throw new ShadowfsError(`tier ${spec.name}: class object needs endpoint, bucket and cache settings`);
    return new ObjectTier(spec, options.object);
  }
  if (spec.object) throw new ShadowfsError(`tier ${spec.name}: object store settings given for a ${spec.class} tier`);
  return new DirectoryTier(spec, options.directory);
}
