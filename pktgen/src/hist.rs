//! A fixed-bucket log histogram of nanosecond values: exact below 32, then 16 buckets per
//! power of two (relative error under 1/16). 976 `u64` buckets, no allocation per value.

use serde::Serialize;

const SUB_BITS: u32 = 4;
const SUB: u64 = 1 << SUB_BITS;
const LINEAR: u64 = 2 * SUB;
/// Number of buckets.
pub const BUCKETS: usize = (LINEAR + (64 - SUB_BITS as u64 - 1) * SUB) as usize;

/// A latency histogram. See the module docs.
#[derive(Clone)]
pub struct LatencyHist {
    counts: Box<[u64; BUCKETS]>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl std::fmt::Debug for LatencyHist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyHist")
            .field("count", &self.count)
            .field("min", &self.min)
            .field("max", &self.max)
            .finish()
    }
}

impl Default for LatencyHist {
    fn default() -> Self {
        Self::new()
    }
}

/// Summary of a histogram, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct LatencySummary {
    /// Values recorded.
    pub count: u64,
    /// Smallest.
    pub min_ns: u64,
    /// Mean.
    pub mean_ns: f64,
    /// Median (bucket midpoint, within 1/16).
    pub p50_ns: u64,
    /// 99th percentile (bucket midpoint, within 1/16).
    pub p99_ns: u64,
    /// Largest.
    pub max_ns: u64,
}

/// The bucket of value `v`.
#[inline(always)]
pub fn bucket_of(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let e = 63 - v.leading_zeros() as u64; // >= SUB_BITS + 1
    let sub = (v >> (e - SUB_BITS as u64)) & (SUB - 1);
    (LINEAR + (e - SUB_BITS as u64 - 1) * SUB + sub) as usize
}

/// The smallest and largest values of bucket `i`.
pub fn bucket_range(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < LINEAR {
        return (i, i);
    }
    let e = (i - LINEAR) / SUB + SUB_BITS as u64 + 1;
    let sub = (i - LINEAR) % SUB;
    let shift = e - SUB_BITS as u64;
    let lo = (SUB + sub) << shift;
    (lo, lo + ((1u64 << shift) - 1))
}

impl LatencyHist {
    /// An empty histogram (one allocation, here).
    pub fn new() -> Self {
        LatencyHist { counts: Box::new([0; BUCKETS]), count: 0, sum: 0, min: u64::MAX, max: 0 }
    }

    /// Records one value.
    #[inline]
    pub fn record(&mut self, v: u64) {
        self.counts[bucket_of(v)] += 1;
        self.count += 1;
        self.sum += v as u128;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// Adds another histogram into this one.
    pub fn merge(&mut self, o: &LatencyHist) {
        for (a, b) in self.counts.iter_mut().zip(o.counts.iter()) {
            *a += b;
        }
        self.count += o.count;
        self.sum += o.sum;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The value at quantile `q` (0..=1): the midpoint of its bucket, clamped to min..=max.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut acc = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            acc += c;
            if acc >= rank {
                let (lo, hi) = bucket_range(i);
                return (lo + (hi - lo) / 2).clamp(self.min, self.max);
            }
        }
        self.max
    }

    /// Non-empty buckets as (low, high, count).
    pub fn buckets(&self) -> Vec<(u64, u64, u64)> {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| {
                let (lo, hi) = bucket_range(i);
                (lo, hi, c)
            })
            .collect()
    }

    /// min / mean / p50 / p99 / max.
    pub fn summary(&self) -> LatencySummary {
        if self.count == 0 {
            return LatencySummary::default();
        }
        LatencySummary {
            count: self.count,
            min_ns: self.min,
            mean_ns: self.sum as f64 / self.count as f64,
            p50_ns: self.quantile(0.5),
            p99_ns: self.quantile(0.99),
            max_ns: self.max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut last = 0;
        for i in 0..BUCKETS {
            let (lo, hi) = bucket_range(i);
            assert!(lo <= hi);
            if i > 0 {
                assert_eq!(lo, last + 1, "bucket {i}");
            }
            assert_eq!(bucket_of(lo), i);
            assert_eq!(bucket_of(hi), i);
            last = hi;
        }
        assert_eq!(last, u64::MAX);
    }

    #[test]
    fn quantiles_within_a_sixteenth() {
        let mut h = LatencyHist::new();
        for v in 1..=10_000u64 {
            h.record(v * 100);
        }
        let s = h.summary();
        assert_eq!((s.min_ns, s.max_ns, s.count), (100, 1_000_000, 10_000));
        for (got, want) in [(s.p50_ns, 500_000.0), (s.p99_ns, 990_000.0)] {
            assert!((got as f64 - want).abs() / want < 1.0 / 16.0, "{got} vs {want}");
        }
        assert!((s.mean_ns - 500_050.0).abs() < 1e-6);
    }
}
