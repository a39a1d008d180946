//! RFC 2544 throughput: per frame size, a binary search for the highest offered rate whose
//! trial loses no more than the tolerance (zero by default).

use crate::hist::{LatencyHist, LatencySummary};
use crate::rx::Report;
use serde::Serialize;

/// Search settings.
#[derive(Debug, Clone, Copy)]
pub struct SearchConfig {
    /// Highest rate to try (packets per second), e.g. the line rate of the size.
    pub max_rate_pps: f64,
    /// Stop when the bracket is narrower than this percentage of `max_rate_pps`.
    pub resolution_pct: f64,
    /// Loss tolerated in a passing trial, in percent of sent.
    pub loss_tolerance_pct: f64,
    /// At most this many trials per size.
    pub max_trials: u32,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig { max_rate_pps: 1e6, resolution_pct: 1.0, loss_tolerance_pct: 0.0, max_trials: 20 }
    }
}

/// One trial's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    /// Rate asked for.
    pub rate_pps: f64,
    /// Rate the sender achieved.
    pub offered_pps: f64,
    /// Packets sent.
    pub sent: u64,
    /// Packets lost.
    pub lost: u64,
    /// Loss percent.
    pub loss_pct: f64,
    /// Within the tolerance.
    pub pass: bool,
    /// The sender fell more than 2% short of the rate asked (its own limit, not the DUT's).
    pub generator_limited: bool,
    /// Latency over the trial.
    pub latency: LatencySummary,
}

/// The result for one frame size.
#[derive(Debug, Clone, Serialize)]
pub struct SizeResult {
    /// Frame size label ("64", "imix").
    pub size: String,
    /// Mean frame size in bytes (FCS included).
    pub mean_frame: f64,
    /// Highest passing offered rate (0 when none passed).
    pub throughput_pps: f64,
    /// The same in frame bits per second / 1e6 (FCS included, no preamble/IFG).
    pub throughput_mbps: f64,
    /// Latency at the passing rate.
    pub latency: LatencySummary,
    /// The passing trial was limited by the sender, not the device: the throughput is a
    /// lower bound.
    pub generator_limited: bool,
    /// Every trial in search order.
    pub trials: Vec<Trial>,
    /// The latency histogram of the passing trial (for plots).
    #[serde(skip)]
    pub hist: Option<LatencyHist>,
}

fn trial_of(rate: f64, r: &Report, tol: f64) -> Trial {
    let sent = r.sent.unwrap_or(0);
    let lost = r.total.lost;
    let loss_pct = if sent == 0 { 100.0 } else { lost as f64 * 100.0 / sent as f64 };
    Trial {
        rate_pps: rate,
        offered_pps: r.tx_pps.unwrap_or(0.0),
        sent,
        lost,
        loss_pct,
        pass: sent > 0 && loss_pct <= tol,
        generator_limited: r.tx_pps.is_some_and(|o| o < rate * 0.98),
        latency: r.latency,
    }
}

/// Searches one frame size; `run(rate_pps)` runs a trial at that rate.
///
/// # Errors
/// The first trial error.
pub fn search(
    size: &str,
    mean_frame: f64,
    cfg: &SearchConfig,
    run: &mut dyn FnMut(f64) -> Result<Report, String>,
) -> Result<SizeResult, String> {
    let mut res = SizeResult {
        size: size.to_string(),
        mean_frame,
        throughput_pps: 0.0,
        throughput_mbps: 0.0,
        latency: LatencySummary::default(),
        generator_limited: false,
        trials: Vec::new(),
        hist: None,
    };
    let step = cfg.max_rate_pps * cfg.resolution_pct.max(0.001) / 100.0;
    let (mut lo, mut hi) = (0.0f64, cfg.max_rate_pps);
    let mut rate = cfg.max_rate_pps;
    for _ in 0..cfg.max_trials.max(1) {
        let r = run(rate)?;
        let t = trial_of(rate, &r, cfg.loss_tolerance_pct);
        let pass = t.pass;
        if pass {
            lo = rate;
            res.throughput_pps = if t.offered_pps > 0.0 { t.offered_pps.min(rate) } else { rate };
            res.latency = t.latency;
            res.hist = r.hist.clone();
            res.generator_limited = t.generator_limited;
        } else {
            hi = rate;
        }
        res.trials.push(t);
        // A passing trial the sender could not drive at full rate cannot be bettered.
        if (pass && (rate >= cfg.max_rate_pps || t_limited(&res))) || hi - lo <= step {
            break;
        }
        rate = (lo + hi) / 2.0;
    }
    res.throughput_mbps = res.throughput_pps * mean_frame * 8.0 / 1e6;
    Ok(res)
}

fn t_limited(r: &SizeResult) -> bool {
    r.trials.last().is_some_and(|t| t.pass && t.generator_limited)
}

/// A text table of results (`*`: limited by the sender, a lower bound).
pub fn table(results: &[SizeResult]) -> String {
    let mut s = format!(
        "{:>6} {:>12} {:>10} {:>10} {:>9} {:>9} {:>9} {:>7}\n",
        "size", "tput_pps", "tput_Mpps", "tput_Mbps", "p50_us", "p99_us", "max_us", "trials"
    );
    for r in results {
        s += &format!(
            "{:>6} {:>11.0}{} {:>10.4} {:>10.1} {:>9.1} {:>9.1} {:>9.1} {:>7}\n",
            r.size,
            r.throughput_pps,
            if r.generator_limited { "*" } else { " " },
            r.throughput_pps / 1e6,
            r.throughput_mbps,
            r.latency.p50_ns as f64 / 1e3,
            r.latency.p99_ns as f64 / 1e3,
            r.latency.max_ns as f64 / 1e3,
            r.trials.len()
        );
    }
    s
}

/// Line rate in packets per second of `gbps` for frames of `mean_frame` bytes (FCS
/// included), counting 20 bytes of preamble and inter-frame gap.
pub fn line_rate_pps(gbps: f64, mean_frame: f64) -> f64 {
    gbps * 1e9 / ((mean_frame + 20.0) * 8.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{GenConfig, Signature};
    use crate::rx::Receiver;

    /// A device that forwards everything up to `cap` pps and drops the excess.
    fn dut(cap: f64, rate: f64) -> Report {
        let g = GenConfig::default();
        let mut r = Receiver::new(1, g.dst_port);
        let sent = 1000u64;
        let pass = if rate <= cap { sent } else { (sent as f64 * cap / rate) as u64 };
        let mut f = g.template(0, 64);
        for seq in 0..pass {
            Signature { flow: 0, seq, tx_ns: 0 }.write(&mut f[g.header_len()..]);
            r.on_frame(&f, 5000);
        }
        let mut rep = r.report(&[sent], Some(sent as f64 / rate));
        rep.tx_pps = Some(rate);
        rep
    }

    #[test]
    fn finds_the_capacity_within_the_resolution() {
        let cfg = SearchConfig { max_rate_pps: 1e6, resolution_pct: 1.0, ..SearchConfig::default() };
        let r = search("64", 64.0, &cfg, &mut |rate| Ok(dut(420_000.0, rate))).unwrap();
        assert!(r.throughput_pps <= 420_000.0 && r.throughput_pps > 410_000.0, "{}", r.throughput_pps);
        assert!(!r.trials[0].pass);
        assert!(r.trials.len() <= 9);
        assert_eq!(r.latency.p50_ns, 5000);
        assert!(table(&[r]).contains("64"));
    }

    #[test]
    fn line_rate_passes_at_once_and_tolerance_is_honoured() {
        let cfg = SearchConfig { max_rate_pps: 1e6, ..SearchConfig::default() };
        let r = search("64", 64.0, &cfg, &mut |rate| Ok(dut(2e6, rate))).unwrap();
        assert_eq!((r.trials.len(), r.throughput_pps), (1, 1e6));
        // 5% over capacity loses ~4.8%: passes with a 5% tolerance.
        let cfg = SearchConfig { max_rate_pps: 1.05e6, loss_tolerance_pct: 5.0, ..SearchConfig::default() };
        let r = search("64", 64.0, &cfg, &mut |rate| Ok(dut(1e6, rate))).unwrap();
        assert_eq!(r.trials.len(), 1);
        assert!((line_rate_pps(10.0, 64.0) - 14_880_952.38).abs() < 1.0);
        // A sender that reaches only 300k: the search stops at its first pass, flagged.
        let cfg = SearchConfig { max_rate_pps: 1e6, ..SearchConfig::default() };
        let r = search("64", 64.0, &cfg, &mut |rate| {
            let mut rep = dut(2e6, rate.min(3e5));
            rep.tx_pps = Some(rate.min(3e5));
            Ok(rep)
        })
        .unwrap();
        assert!(r.generator_limited);
        assert_eq!(r.throughput_pps, 3e5);
        assert!(table(&[r]).contains("300000*"));
    }
}
