//! The sender: frame templates per flow and size, a token bucket on the cycle counter.

use crate::frame::{GenConfig, Signature};
use dataplane::arch::{cycles, cycles_per_sec};
use dataplane::mbuf::{Mbuf, Mempool};
use dataplane::port::BoxTx;
use dataplane::{Burst, PacketBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A token bucket on [`cycles`]: `rate` packets per second, at most `depth` at once.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: u64,
    hz: u64,
    /// Tokens times `hz` (fixed point).
    credit: u128,
    depth: u128,
    last: u64,
}

impl TokenBucket {
    /// A bucket of `rate_pps` with `depth` packets of burst, starting empty at `now` cycles.
    pub fn new(rate_pps: f64, depth: u32, hz: u64, now: u64) -> Self {
        let hz = hz.max(1);
        TokenBucket {
            rate: rate_pps.max(1.0).round() as u64,
            hz,
            credit: 0,
            depth: depth.max(1) as u128 * hz as u128,
            last: now,
        }
    }

    /// Packets that may be sent at `now` (at most `want`), taken from the bucket.
    #[inline]
    pub fn take(&mut self, now: u64, want: u32) -> u32 {
        let dt = now.wrapping_sub(self.last) as u128;
        self.last = now;
        self.credit = (self.credit + dt * self.rate as u128).min(self.depth);
        let n = ((self.credit / self.hz as u128) as u32).min(want);
        self.credit -= n as u128 * self.hz as u128;
        n
    }

    /// Cycles until the next token (0 when one is there).
    pub fn cycles_to_next(&self) -> u64 {
        let need = (self.hz as u128).saturating_sub(self.credit);
        need.div_ceil(self.rate as u128) as u64
    }
}

/// How long / how fast to send.
#[derive(Debug, Clone)]
pub struct TxConfig {
    /// Packets per second; `None` sends at full speed.
    pub rate_pps: Option<f64>,
    /// How long to send.
    pub duration: Duration,
    /// Stop after this many packets.
    pub count: Option<u64>,
    /// Packets per burst (1 to 64).
    pub burst: usize,
}

impl Default for TxConfig {
    fn default() -> Self {
        TxConfig { rate_pps: None, duration: Duration::from_secs(1), count: None, burst: 32 }
    }
}

/// What a sender did.
#[derive(Debug, Clone, Default)]
pub struct TxResult {
    /// Packets handed to the port, per flow (sequence numbers `0..sent[i]`).
    pub sent: Vec<u64>,
    /// Seconds from the first to the last burst.
    pub elapsed_s: f64,
    /// Mbuf allocation failures (pool empty).
    pub alloc_failures: u64,
}

/// Builds frames from per-flow, per-size templates (made once) and numbers them.
#[derive(Debug)]
pub struct Generator {
    cfg: GenConfig,
    /// templates[flow * sizes + size_index]
    templates: Vec<Vec<u8>>,
    sizes: usize,
    next_seq: Vec<u64>,
    flow: u16,
    size_idx: usize,
    sig_off: usize,
}

impl Generator {
    /// Templates for `cfg` (validated).
    ///
    /// # Errors
    /// An invalid configuration.
    pub fn new(cfg: &GenConfig) -> Result<Self, String> {
        cfg.validate()?;
        let pat = cfg.size.pattern();
        let mut templates = Vec::with_capacity(cfg.flows as usize * pat.len());
        for f in 0..cfg.flows {
            for &s in pat {
                templates.push(cfg.template(f, s));
            }
        }
        Ok(Generator {
            cfg: cfg.clone(),
            templates,
            sizes: pat.len(),
            next_seq: vec![0; cfg.flows as usize],
            flow: 0,
            size_idx: 0,
            sig_off: cfg.header_len(),
        })
    }

    /// Writes the next frame (flows round robin, sizes in pattern order) into `m`; returns
    /// its flow, or `None` when the frame does not fit the mbuf.
    #[inline]
    pub fn fill(&mut self, m: &mut Mbuf, tx_ns: u32) -> Option<u16> {
        let flow = self.flow;
        let t = &self.templates[flow as usize * self.sizes + self.size_idx];
        let d = m.append(t.len())?;
        d.copy_from_slice(t);
        let seq = self.next_seq[flow as usize];
        Signature { flow, seq, tx_ns }.write(&mut d[self.sig_off..]);
        self.next_seq[flow as usize] = seq + 1;
        self.flow += 1;
        if self.flow == self.cfg.flows {
            self.flow = 0;
            self.size_idx = (self.size_idx + 1) % self.sizes;
        }
        Some(flow)
    }

    /// Flows.
    pub fn flows(&self) -> u16 {
        self.cfg.flows
    }
}

/// Sends until the duration or count is reached or `stop` is set. Packets a full queue
/// refuses are retried (so every numbered packet is sent, and `sent` is exact).
pub fn send(txq: &mut BoxTx<Mbuf>, pool: &Mempool, gen: &mut Generator, cfg: &TxConfig, stop: &AtomicBool) -> TxResult {
    let hz = cycles_per_sec();
    let burst = cfg.burst.clamp(1, 64);
    let mut res = TxResult { sent: vec![0; gen.flows() as usize], ..TxResult::default() };
    let mut pkts: Burst<Mbuf> = Burst::new();
    let mut flows = [0u16; 64];
    let start = cycles();
    let end = start + (cfg.duration.as_secs_f64() * hz as f64) as u64;
    // The bucket holds up to 10 ms of packets (at most 4096, at least a burst), so a sender
    // preempted for a while catches up instead of falling short of the rate.
    let depth = |r: f64| ((r / 100.0) as u32).clamp(burst as u32, 4096.max(burst as u32));
    let mut bucket = cfg.rate_pps.map(|r| TokenBucket::new(r, depth(r), hz, start));
    let idle_ns = |c: u64| (c as u128 * 1_000_000_000 / hz as u128) as u64;
    let limit = cfg.count.unwrap_or(u64::MAX);
    let mut queued = 0u64;
    let mut last = start;
    loop {
        let now = cycles();
        if now >= end || stop.load(Ordering::Relaxed) {
            break;
        }
        if pkts.is_empty() {
            if queued >= limit {
                break;
            }
            let want = (burst as u64).min(limit - queued) as u32;
            let n = match bucket.as_mut() {
                Some(b) => b.take(now, want),
                None => want,
            };
            if n == 0 {
                // Sleep through long gaps (low rates) instead of burning a shared core.
                let wait = bucket.as_ref().map_or(0, |b| idle_ns(b.cycles_to_next()));
                if wait > 100_000 {
                    std::thread::sleep(Duration::from_nanos(wait - 50_000));
                } else {
                    std::hint::spin_loop();
                }
                continue;
            }
            let ts = crate::now_ns() as u32;
            for slot in flows.iter_mut().take(n as usize) {
                let Ok(mut m) = pool.alloc() else {
                    res.alloc_failures += 1;
                    break;
                };
                match gen.fill(&mut m, ts) {
                    Some(f) => *slot = f,
                    None => break,
                }
                let _ = pkts.push(m);
            }
            queued += pkts.len() as u64;
            // The flow ids of this burst are flows[..pkts.len()], front first.
        }
        let k = txq.tx_burst(&mut pkts);
        if k > 0 {
            for &f in &flows[..k] {
                res.sent[f as usize] += 1;
            }
            last = cycles();
            // Keep the unsent tail's flow ids at the front, as tx_burst keeps its packets.
            flows.copy_within(k..k + pkts.len(), 0);
        }
    }
    // Whatever is still queued was numbered but not sent: it is the highest numbers of its
    // flows, so dropping it keeps `sent` exact.
    drop(pkts);
    txq.flush();
    res.elapsed_s = last.wrapping_sub(start) as f64 / hz as f64;
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bucket_rate_and_depth() {
        let hz = 1_000_000_000;
        let mut b = TokenBucket::new(1000.0, 32, hz, 0);
        assert_eq!(b.take(0, 32), 0);
        assert_eq!(b.take(1_000_000, 32), 1); // 1 ms -> 1 packet
        assert_eq!(b.take(1_500_000, 32), 0);
        assert_eq!(b.take(2_000_000, 32), 1);
        assert_eq!(b.take(10_000_000_000, 64), 32); // capped by the depth
        let mut sent = 0;
        for t in 0..1000u64 {
            sent += b.take(10_000_000_000 + t * 1_000_000, 32);
        }
        assert!((998..=1000).contains(&sent), "{sent}");
        let b = TokenBucket::new(1000.0, 1, hz, 0);
        assert_eq!(b.cycles_to_next(), 1_000_000);
    }
}
