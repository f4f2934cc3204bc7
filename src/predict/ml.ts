/**
 * The one place that touches ml-regression. The package ships no type declarations, so it is
 * loaded with require() and described here by the little we use: ordinary least squares on a
 * matrix of features (MultivariateLinearRegression), and a straight line (SimpleLinearRegression,
 * for the watchdog's latency trend). Everything else in src/predict sees only `fitLinear` and plain
 * coefficient arrays, which are what we persist and shrink.
 */

interface MlrModel {
  /** (features + 1) rows x outputs columns; the last row is the intercept. */
  weights: number[][];
}
interface MlRegression {
  MultivariateLinearRegression: new (x: number[][], y: number[][], options?: { intercept?: boolean; statistics?: boolean }) => MlrModel;
  SimpleLinearRegression: new (x: number[], y: number[]) => { slope: number; intercept: number };
}

let mlRegression: MlRegression | undefined;
/** ml-regression costs ~30 ms to load: loaded at the first fit, not with every command's start-up. */
function loadMlRegression(): MlRegression {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  mlRegression ??= require('ml-regression') as MlRegression;
  return mlRegression;
}

/** Least-squares line y = intercept + slope * x (x with some spread; the caller checks that). */
export function fitLine(x: number[], y: number[]): { slope: number; intercept: number } {
  const { slope, intercept } = new (loadMlRegression().SimpleLinearRegression)(x, y);
  return { slope, intercept };
}

/** Coefficients of a linear model: y = intercept + sum(weights[i] * x[i]). */
export interface LinearCoefficients {
  weights: number[];
  intercept: number;
  /** Training rows the fit saw (the shrinkage towards a global model is weighted by it). */
  samples: number;
}

export interface FitOptions {
  /**
   * Ridge strength relative to each feature's sum of squares. Implemented as extra pseudo-rows (sqrt(l) * e_i -> 0) so the
   * fit is still ml-regression's OLS; it keeps the normal equations invertible when a feature is
   * constant (a flat series, a horizon with no seasonal lag yet).
   */
  ridge?: number;
  /** Force every weight >= 0 by dropping negative features and refitting (active-set NNLS). */
  nonNegative?: boolean;
}

/** Least-squares fit with ml-regression. Returns undefined when there are too few rows. */
export function fitLinear(rows: readonly number[][], targets: readonly number[], options: FitOptions = {}): LinearCoefficients | undefined {
  const n = rows.length;
  if (n === 0 || targets.length !== n) return undefined;
  const p = rows[0].length;
  if (n < p + 2) return undefined;
  const ridge = options.ridge ?? 1e-3;
  let active = Array.from({ length: p }, (_, i) => i);
  for (let round = 0; round <= p; round++) {
    const coef = fitActive(rows, targets, active, ridge);
    if (!coef) return undefined;
    if (!options.nonNegative) return { ...coef, samples: n };
    const negative = active.filter((feature) => coef.weights[feature] < 0);
    if (negative.length === 0) return { ...coef, samples: n };
    // Drop the most negative feature only: dropping all at once can discard a feature that
    // becomes positive once its correlated partner is gone.
    let worst = negative[0];
    for (const f of negative) if (coef.weights[f] < coef.weights[worst]) worst = f;
    active = active.filter((f) => f !== worst);
  }
  return undefined;
}

function fitActive(
  rows: readonly number[][],
  targets: readonly number[],
  active: readonly number[],
  ridge: number,
): { weights: number[]; intercept: number } | undefined {
  const p = rows[0].length;
  if (active.length === 0) {
    let mean = 0;
    for (const y of targets) mean += y;
    return { weights: new Array<number>(p).fill(0), intercept: mean / targets.length };
  }
  const x: number[][] = [];
  const y: number[][] = [];
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i];
    const v = new Array<number>(active.length);
    for (let j = 0; j < active.length; j++) v[j] = row[active[j]];
    x.push(v);
    y.push([targets[i]]);
  }
  // Scale-invariant ridge: feature j's penalty is ridge x (its sum of squares), so small-valued
  // features are not shrunk to nothing (the pseudo-row for j is sqrt(that) on column j, target 0).
  for (let j = 0; j < active.length; j++) {
    let ss = 0;
    for (let i = 0; i < rows.length; i++) ss += x[i][j] * x[i][j];
    const v = new Array<number>(active.length).fill(0);
    v[j] = Math.sqrt(Math.max(ridge * ss, 1e-12));
    x.push(v);
    y.push([0]);
  }
  let model: MlrModel;
  try {
    model = new (loadMlRegression().MultivariateLinearRegression)(x, y, { intercept: true, statistics: false });
  } catch {
    return undefined;
  }
  const weights = new Array<number>(p).fill(0);
  for (let j = 0; j < active.length; j++) weights[active[j]] = model.weights[j][0];
  const intercept = model.weights[active.length][0];
  if (!weights.every(Number.isFinite) || !Number.isFinite(intercept)) return undefined;
  return { weights, intercept };
}

export function predictLinear(coef: LinearCoefficients, x: readonly number[]): number {
  let y = coef.intercept;
  for (let i = 0; i < coef.weights.length; i++) y += coef.weights[i] * x[i];
  return y;
}

/**
 * Personalisation by shrinkage: the volume's own coefficients pulled towards the global ones with
 * weight n / (n + priorSamples). A volume with few samples behaves like the pooled model; one with
 * long history like its own fit. This is the posterior mean of a Gaussian prior centred on the
 * global fit, with priorSamples as the prior's strength in "rows".
 */
export function shrink(
  local: LinearCoefficients | undefined,
  global: LinearCoefficients | undefined,
  priorSamples: number,
): LinearCoefficients | undefined {
  if (!local) return global;
  if (!global || global.weights.length !== local.weights.length) return local;
  const w = local.samples / (local.samples + priorSamples);
  return {
    weights: local.weights.map((b, i) => w * b + (1 - w) * global.weights[i]),
    intercept: w * local.intercept + (1 - w) * global.intercept,
    samples: local.samples,
  };
}
