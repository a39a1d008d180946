//! The receiver: per-flow [`SeqTracker`] and [`LatencyHist`], and the report.

use crate::frame::Signature;
use crate::hist::{LatencyHist, LatencySummary};
use crate::seq::{SeqCounts, SeqTracker};
use serde::Serialize;

/// Receive-side state for `flows` flows (allocated once).
#[derive(Debug)]
pub struct Receiver {
    dst_port: u16,
    trackers: Vec<SeqTracker>,
    hists: Vec<LatencyHist>,
    /// Frames that were not ours (other traffic, unknown flow ids).
    pub foreign: u64,
    /// Bytes of our frames.
    pub bytes: u64,
    /// Frames the receive port's backend dropped before we could read them (its `imissed`:
    /// an AF_PACKET ring that was full, say); set from the port's counters when receiving ends.
    pub port_missed: u64,
}

/// Figures of one flow.
#[derive(Debug, Clone, Serialize)]
pub struct FlowReport {
    /// Flow id.
    pub flow: u16,
    /// Packets sent (when known).
    pub sent: Option<u64>,
    /// Sequence accounting.
    #[serde(flatten)]
    pub counts: SeqCounts,
    /// Latency.
    pub latency: LatencySummary,
}

/// A receiver's report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Per flow.
    pub flows: Vec<FlowReport>,
    /// All flows together.
    pub total: SeqCounts,
    /// Packets sent in all (when known).
    pub sent: Option<u64>,
    /// Latency of all flows.
    pub latency: LatencySummary,
    /// Frames that were not ours.
    pub foreign: u64,
    /// Frames the receive port dropped before they were read (ring full), any sender's.
    pub port_missed: u64,
    /// Bytes of our frames received (buffer bytes, no FCS).
    pub bytes: u64,
    /// Seconds the sender sent for (when known).
    pub duration_s: Option<f64>,
    /// Offered rate, packets per second (when known).
    pub tx_pps: Option<f64>,
    /// Received unique packets per second over the send duration (when known).
    pub rx_pps: Option<f64>,
    /// Loss in percent of sent (when known).
    pub loss_pct: Option<f64>,
    #[serde(skip)]
    /// The merged latency histogram (for plots).
    pub hist: Option<LatencyHist>,
}

impl Receiver {
    /// A receiver of frames to UDP `dst_port` from `flows` flows.
    pub fn new(flows: u16, dst_port: u16) -> Self {
        Receiver {
            dst_port,
            trackers: vec![SeqTracker::new(); flows as usize],
            hists: vec![LatencyHist::new(); flows as usize],
            foreign: 0,
            bytes: 0,
            port_missed: 0,
        }
    }

    /// Accounts one frame received at `rx_ns` (CLOCK_MONOTONIC). No allocation.
    #[inline]
    pub fn on_frame(&mut self, frame: &[u8], rx_ns: u64) {
        match Signature::parse(frame, self.dst_port) {
            Some(s) if (s.flow as usize) < self.trackers.len() => self.on_signature(s, rx_ns, frame.len()),
            _ => self.foreign += 1,
        }
    }

    /// Accounts one already-parsed signature.
    #[inline]
    pub fn on_signature(&mut self, s: Signature, rx_ns: u64, len: usize) {
        let f = s.flow as usize;
        let (Some(t), Some(h)) = (self.trackers.get_mut(f), self.hists.get_mut(f)) else {
            self.foreign += 1;
            return;
        };
        self.bytes += len as u64;
        if t.record(s.seq) != crate::seq::SeqEvent::Duplicate {
            h.record((rx_ns as u32).wrapping_sub(s.tx_ns) as u64);
        }
    }

    /// The report; `sent[i]` is what flow i's sender sent (empty: unknown, the highest
    /// sequence number seen + 1 is taken), `duration_s` the send duration.
    pub fn report(&self, sent: &[u64], duration_s: Option<f64>) -> Report {
        let mut total = SeqCounts::default();
        let mut all = LatencyHist::new();
        let mut flows = Vec::with_capacity(self.trackers.len());
        let mut sent_total = 0;
        for (i, (t, h)) in self.trackers.iter().zip(&self.hists).enumerate() {
            let s = sent.get(i).copied();
            let c = t.counts(s);
            sent_total += s.unwrap_or(0);
            total.received += c.received;
            total.unique += c.unique;
            total.lost += c.lost;
            total.duplicated += c.duplicated;
            total.reordered += c.reordered;
            total.beyond_window += c.beyond_window;
            all.merge(h);
            flows.push(FlowReport { flow: i as u16, sent: s, counts: c, latency: h.summary() });
        }
        let known = !sent.is_empty();
        let sent_opt = known.then_some(sent_total);
        let d = duration_s.filter(|d| *d > 0.0);
        Report {
            flows,
            total,
            sent: sent_opt,
            latency: all.summary(),
            foreign: self.foreign,
            port_missed: self.port_missed,
            bytes: self.bytes,
            duration_s,
            tx_pps: d.and(sent_opt).map(|s| s as f64 / d.unwrap_or(1.0)),
            rx_pps: d.map(|d| total.unique as f64 / d),
            loss_pct: sent_opt.map(|s| if s == 0 { 0.0 } else { total.lost as f64 * 100.0 / s as f64 }),
            hist: Some(all),
        }
    }
}

fn us(ns: f64) -> String {
    format!("{:.1}", ns / 1000.0)
}

impl Report {
    /// A text table: one line per flow (up to `max_rows`) and a total line.
    pub fn table(&self, max_rows: usize) -> String {
        let mut s = format!(
            "{:>6} {:>10} {:>10} {:>8} {:>6} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
            "flow", "sent", "received", "lost", "dup", "reorder", "min_us", "mean_us", "p50_us", "p99_us", "max_us"
        );
        let row = |name: String, sent: Option<u64>, c: &SeqCounts, l: &LatencySummary| {
            format!(
                "{:>6} {:>10} {:>10} {:>8} {:>6} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
                name,
                sent.map_or("-".into(), |v| v.to_string()),
                c.received,
                c.lost,
                c.duplicated,
                c.reordered,
                us(l.min_ns as f64),
                us(l.mean_ns),
                us(l.p50_ns as f64),
                us(l.p99_ns as f64),
                us(l.max_ns as f64)
            )
        };
        for f in self.flows.iter().take(max_rows) {
            s += &row(f.flow.to_string(), f.sent, &f.counts, &f.latency);
        }
        if self.flows.len() > max_rows {
            s += &format!("   ... {} more flows\n", self.flows.len() - max_rows);
        }
        s += &row("total".into(), self.sent, &self.total, &self.latency);
        if let (Some(tx), Some(rx)) = (self.tx_pps, self.rx_pps) {
            s += &format!(
                "offered {:.4} Mpps, received {:.4} Mpps, loss {:.4}%, foreign frames {}, missed by the port {}\n",
                tx / 1e6,
                rx / 1e6,
                self.loss_pct.unwrap_or(0.0),
                self.foreign,
                self.port_missed
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::GenConfig;

    #[test]
    fn counts_flows_and_foreign_frames() {
        let g = GenConfig { flows: 2, ..GenConfig::default() };
        let mut r = Receiver::new(2, g.dst_port);
        let h = g.header_len();
        for (flow, seq) in [(0u16, 0u64), (1, 0), (0, 2), (0, 1), (1, 0)] {
            let mut f = g.template(flow, 64);
            Signature { flow, seq, tx_ns: 1000 }.write(&mut f[h..]);
            r.on_frame(&f, 3000);
        }
        r.on_frame(&[0u8; 60], 0);
        let rep = r.report(&[4, 1], Some(1.0));
        assert_eq!(rep.flows[0].counts.lost, 1);
        assert_eq!(rep.flows[0].counts.reordered, 1);
        assert_eq!(rep.flows[1].counts.duplicated, 1);
        assert_eq!(rep.foreign, 1);
        assert_eq!(rep.latency.min_ns, 2000);
        assert_eq!(rep.latency.count, 4);
        assert!((rep.loss_pct.unwrap() - 20.0).abs() < 1e-9);
        assert!(rep.table(10).contains("total"));
    }
}
