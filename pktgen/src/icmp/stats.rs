//! The run's summary, computed the way iputils' `ping` computes its own, and the counts of
//! what was ignored.

use super::*;

/// Packets that arrived and were ignored, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Ignored {
    /// Shorter than an IPv4 header (raw) or an ICMP header, or an IP total shorter than its header.
    pub short: u64,
    /// ICMP checksum wrong.
    pub bad_checksum: u64,
    /// Not an echo reply (another ICMP type, our own requests on a raw socket, not IPv4/ICMP).
    pub other_type: u64,
    /// An echo reply for someone else: another identifier, source address or run cookie.
    pub foreign: u64,
    /// Our identifier but a sequence number we never sent.
    pub unknown_seq: u64,
    /// Our identifier and sequence but a payload of the wrong length or content.
    pub bad_data: u64,
}

impl Ignored {
    /// Sum of every reason.
    pub fn total(&self) -> u64 {
        self.short + self.bad_checksum + self.other_type + self.foreign + self.unknown_seq + self.bad_data
    }
}

/// A ping run's outcome, as iputils summarises it, plus what was ignored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PingStats {
    /// Destination.
    pub target: Ipv4Addr,
    /// Socket used: "dgram" or "raw".
    pub socket: &'static str,
    /// Requests sent (including those `sendto` refused, as iputils counts them).
    pub transmitted: u32,
    /// Distinct requests answered.
    pub received: u32,
    /// Further replies to an already answered request.
    pub duplicates: u32,
    /// `sendto`/`recvfrom` errors (ICMP errors, no route, ...).
    pub errors: u32,
    /// The first such error, as text.
    pub first_error: Option<String>,
    /// (transmitted - received) / transmitted, percent, rounded to a C `float` as iputils does.
    pub loss_pct: f64,
    /// From the first request to the last packet sent or received, ms (rounded).
    pub time_ms: u64,
    /// Minimum RTT, ms (with µs resolution); None without replies.
    pub min_ms: Option<f64>,
    /// Average RTT, ms.
    pub avg_ms: Option<f64>,
    /// Maximum RTT, ms.
    pub max_ms: Option<f64>,
    /// Mean deviation (standard deviation), ms.
    pub mdev_ms: Option<f64>,
    /// Ignored packets by reason.
    pub ignored: Ignored,
    #[serde(skip)]
    pub(super) rtt_us: [i64; 4],
}

impl PingStats {
    /// iputils' closing lines:
    ///
    /// ```text
    /// --- 198.18.0.2 ping statistics ---
    /// 5 packets transmitted, 4 received, +1 duplicates, 20% packet loss, time 812ms
    /// rtt min/avg/max/mdev = 0.031/0.045/0.071/0.012 ms
    /// ```
    ///
    /// (iputils' "+N corrupted" is not printed: we ignore and count bad replies in
    /// [`PingStats::ignored`] instead.)
    pub fn summary(&self) -> String {
        let mut s = format!(
            "--- {} ping statistics ---\n{} packets transmitted, {} received",
            self.target, self.transmitted, self.received
        );
        if self.duplicates > 0 {
            s += &format!(", +{} duplicates", self.duplicates);
        }
        if self.errors > 0 {
            s += &format!(", +{} errors", self.errors);
        }
        if self.transmitted > 0 {
            s += &format!(", {}% packet loss, time {}ms", fmt_g(self.loss_pct), self.time_ms);
        }
        s.push('\n');
        if self.received > 0 {
            let f = |us: i64| format!("{}.{:03}", us / 1000, us % 1000);
            let [a, b, c, d] = self.rtt_us;
            s += &format!("rtt min/avg/max/mdev = {}/{}/{}/{} ms\n", f(a), f(b), f(c), f(d));
        }
        s
    }
}

/// Integer square root by Newton's method exactly as iputils' `llsqrt` (for `a = k² - 1` it
/// returns `k`, otherwise the floor root; 0 for `a <= 0`).
pub(super) fn isqrt(a: i64) -> i64 {
    if a <= 0 {
        return 0;
    }
    let (mut x, mut prev) = (a, i64::MAX);
    while x < prev {
        prev = x;
        x = (x + a / x) / 2;
    }
    x
}

/// C's `%g` (6 significant digits, trailing zeros removed) for a non-negative finite value.
pub(super) fn fmt_g(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let e = v.abs().log10().floor() as i32;
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if !(-4..6).contains(&e) {
        let m = v / 10f64.powi(e);
        // Rounding may carry the mantissa to 10.
        let (m, e) = if format!("{m:.5}").starts_with("10") { (m / 10.0, e + 1) } else { (m, e) };
        let sign = if e < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", trim(format!("{m:.5}")), e.abs());
    }
    trim(format!("{v:.*}", (5 - e).max(0) as usize))
}
