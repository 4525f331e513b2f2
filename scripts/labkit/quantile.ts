/**
 * Nearest-rank quantile (the smallest sample with at least q of the samples at or
 * below it; numpy's `percentile(…, method='inverted_cdf')`), NaN for no samples.
 * `xs` need not be sorted. The one quantile of the lab's figures and the benches.
 */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}
