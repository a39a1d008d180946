//! Exact per-flow sequence accounting.
//!
//! A [`SeqTracker`] keeps the highest sequence number seen and a bitmap of the [`WINDOW`]
//! numbers at and below it. A number above the highest advances the window; one inside the
//! window whose bit is set is a **duplicate**; one inside the window not yet seen is
//! **reordered** (late, but not lost). At the end, **lost** = expected − unique received.
//! A number more than [`WINDOW`] below the highest cannot be told apart from a duplicate; it
//! is counted as reordered and in `beyond_window`, so the figures are exact whenever the
//! reordering depth is below [`WINDOW`] (and `beyond_window` says when it was not).

use serde::Serialize;

/// Sequence numbers remembered below the highest seen.
pub const WINDOW: u64 = 4096;
const WORDS: usize = (WINDOW / 64) as usize;

/// Per-flow sequence tracker. Fixed size, no allocation per packet.
#[derive(Debug, Clone)]
pub struct SeqTracker {
    started: bool,
    highest: u64,
    bits: [u64; WORDS],
    unique: u64,
    duplicates: u64,
    reordered: u64,
    beyond_window: u64,
}

impl Default for SeqTracker {
    fn default() -> Self {
        Self::new()
    }
}

/// What one sequence number turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqEvent {
    /// Above everything seen so far.
    InOrder,
    /// Below the highest seen, not seen before.
    Reordered,
    /// Seen before.
    Duplicate,
}

/// Final figures of one flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct SeqCounts {
    /// Packets received (including duplicates).
    pub received: u64,
    /// Distinct sequence numbers received.
    pub unique: u64,
    /// Expected minus unique (never negative).
    pub lost: u64,
    /// Packets whose number had been received before.
    pub duplicated: u64,
    /// Packets that arrived after a higher number (counted once each, not lost).
    pub reordered: u64,
    /// Reordered packets that came more than [`WINDOW`] late (assumed not duplicates).
    pub beyond_window: u64,
}

impl SeqTracker {
    /// An empty tracker.
    pub const fn new() -> Self {
        SeqTracker {
            started: false,
            highest: 0,
            bits: [0; WORDS],
            unique: 0,
            duplicates: 0,
            reordered: 0,
            beyond_window: 0,
        }
    }

    #[inline(always)]
    fn bit(s: u64) -> (usize, u64) {
        (((s % WINDOW) / 64) as usize, 1u64 << (s % 64))
    }

    /// Records sequence number `s`.
    #[inline]
    pub fn record(&mut self, s: u64) -> SeqEvent {
        if !self.started || s > self.highest {
            if !self.started || s - self.highest >= WINDOW {
                self.bits = [0; WORDS];
            } else {
                let mut x = self.highest + 1;
                while x < s {
                    if x % 64 == 0 && s - x >= 64 {
                        self.bits[((x % WINDOW) / 64) as usize] = 0;
                        x += 64;
                    } else {
                        let (w, m) = Self::bit(x);
                        self.bits[w] &= !m;
                        x += 1;
                    }
                }
            }
            self.started = true;
            self.highest = s;
            let (w, m) = Self::bit(s);
            self.bits[w] |= m;
            self.unique += 1;
            return SeqEvent::InOrder;
        }
        if self.highest - s >= WINDOW {
            self.unique += 1;
            self.reordered += 1;
            self.beyond_window += 1;
            return SeqEvent::Reordered;
        }
        let (w, m) = Self::bit(s);
        if self.bits[w] & m != 0 {
            self.duplicates += 1;
            SeqEvent::Duplicate
        } else {
            self.bits[w] |= m;
            self.unique += 1;
            self.reordered += 1;
            SeqEvent::Reordered
        }
    }

    /// Highest number seen, if any.
    pub fn highest(&self) -> Option<u64> {
        self.started.then_some(self.highest)
    }

    /// The figures, given how many numbers (0..expected) were sent; `None` takes the highest
    /// seen + 1 (what a receiver alone can know).
    pub fn counts(&self, expected: Option<u64>) -> SeqCounts {
        let expected = expected.unwrap_or(if self.started { self.highest + 1 } else { 0 });
        SeqCounts {
            received: self.unique + self.duplicates,
            unique: self.unique,
            lost: expected.saturating_sub(self.unique),
            duplicated: self.duplicates,
            reordered: self.reordered,
            beyond_window: self.beyond_window,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Oracle: a set of seen numbers, max so far.
    fn oracle(seq: &[u64], expected: u64) -> SeqCounts {
        let mut seen = HashSet::new();
        let mut c = SeqCounts::default();
        let mut max: Option<u64> = None;
        for &s in seq {
            c.received += 1;
            if !seen.insert(s) {
                c.duplicated += 1;
                continue;
            }
            if max.is_some_and(|m| s < m) {
                c.reordered += 1;
            }
            max = Some(max.map_or(s, |m| m.max(s)));
        }
        c.unique = seen.len() as u64;
        c.lost = expected.saturating_sub(c.unique);
        c
    }

    #[test]
    fn crafted() {
        let mut t = SeqTracker::new();
        // 6 and 8 lost; 2 and 9 duplicated; 2, 4 and 7 late.
        for s in [0, 1, 3, 2, 2, 5, 9, 4, 9, 7] {
            t.record(s);
        }
        let c = t.counts(Some(10));
        assert_eq!(c, SeqCounts { received: 10, unique: 8, lost: 2, duplicated: 2, reordered: 3, beyond_window: 0 });
    }

    #[test]
    fn matches_oracle_on_pseudo_random_streams() {
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200 {
            let n = 3000u64;
            let mut v: Vec<u64> = Vec::new();
            for s in 0..n {
                match rnd() % 20 {
                    0 => {} // drop
                    1 => {
                        v.push(s);
                        v.push(s);
                    }
                    _ => v.push(s),
                }
            }
            // local swaps (reordering depth < WINDOW)
            for _ in 0..100 {
                let i = (rnd() % v.len() as u64) as usize;
                let j = (i + (rnd() % 500) as usize).min(v.len() - 1);
                v.swap(i, j);
            }
            let mut t = SeqTracker::new();
            for &s in &v {
                t.record(s);
            }
            assert_eq!(t.counts(Some(n)), oracle(&v, n));
        }
    }

    #[test]
    fn big_gap_then_late_arrivals() {
        let mut t = SeqTracker::new();
        t.record(0);
        t.record(10_000);
        assert_eq!(t.record(9_999), SeqEvent::Reordered);
        assert_eq!(t.record(9_999), SeqEvent::Duplicate);
        assert_eq!(t.record(1), SeqEvent::Reordered); // beyond the window
        let c = t.counts(Some(10_001));
        assert_eq!((c.unique, c.lost, c.duplicated, c.reordered, c.beyond_window), (4, 9_997, 1, 2, 1));
    }

    #[test]
    fn empty() {
        assert_eq!(SeqTracker::new().counts(Some(5)).lost, 5);
        assert_eq!(SeqTracker::new().counts(None), SeqCounts::default());
    }
}
