//! Console statistics in DPDK l2fwd's layout, and the final summary.
//!
//! With `--stats-format json` the final summary is one JSON object as well: the periodic
//! statistics object (`drops`, `ports`, `uptime_s`, `workers`: see
//! [`crate::metrics::render_json`]) with a `summary` member ([`summary_json`]) holding what the
//! text summary says after the port block: `elapsed_s`, `forwarded` (packets sent on all
//! ports), `rate_pps`, `lcores` (`[{"lcore", "tx_queue", "received", "sent"}]`, one per
//! lcore), `busy_cycles_per_packet` (null before any packet), `mbufs` (the leak check's
//! message; null when an lcore panicked), `panicked` (the lcores that panicked), l3fwd's
//! `route_table` (`generation`, `routes_v4`, `routes_v6`, `reloads_ok`, `reloads_rejected`)
//! and the mode's own figures ([`SummaryItem`]: rxonly's `rxonly_freed`, txonly's
//! `txonly_bursts_not_generated`).

use dataplane::lcore::{DropReason, Runtime};
use std::fmt::Write as _;
use std::io::IsTerminal;

/// One port's totals as l2fwd prints them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortLine {
    pub sent: u64,
    pub received: u64,
    pub dropped: u64,
}

/// Reads the per-port totals from the runtime.
pub fn port_lines(rt: &Runtime, ports: usize) -> Vec<PortLine> {
    rt.port_stats(ports).into_iter().map(|(rx, tx, dropped)| PortLine { sent: tx, received: rx, dropped }).collect()
}

/// A packet rate for people: Mpps from 1 Mpps up, kpps below (a slow link or an emulated NIC
/// would otherwise read "0.00 Mpps").
pub fn rate(pps: f64) -> String {
    if pps >= 1e6 {
        format!("{:.2} Mpps", pps / 1e6)
    } else {
        format!("{:.1} kpps", pps / 1e3)
    }
}

/// A port's link state in DPDK l2fwd's words: `Port 0 Link up at 1000 Mbps full-duplex`,
/// `Port 1 Link up` (speed unknown), `Port 2 Link down`.
pub fn link_line(port: usize, l: &dataplane::port::LinkStatus) -> String {
    if !l.up {
        return format!("Port {port} Link down");
    }
    if l.speed_mbps == 0 {
        // Speed and duplex unknown (virtio-net without VIRTIO_NET_F_SPEED_DUPLEX, a veth).
        return format!("Port {port} Link up");
    }
    format!(
        "Port {port} Link up at {} Mbps {}",
        l.speed_mbps,
        if l.full_duplex { "full-duplex" } else { "half-duplex" }
    )
}

/// The worker's cost per packet: busy timer cycles per packet received (idle polls left out,
/// as testpmd's "CPU cycles/packet"), and the same in nanoseconds.
pub fn cycles_line(cycles_per_packet: f64, hz: u64) -> String {
    let ns = cycles_per_packet * 1e9 / hz.max(1) as f64;
    format!("Busy cycles per packet: {cycles_per_packet:.1} ({ns:.1} ns at a {:.3} GHz timer)", hz as f64 / 1e9)
}

/// Formats DPDK l2fwd's statistics block.
pub fn render(lines: &[PortLine], drops: &[u64; DropReason::COUNT]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "\nPort statistics ====================================");
    let mut tot = PortLine::default();
    for (p, l) in lines.iter().enumerate() {
        let _ = write!(
            s,
            "\nStatistics for port {p} ------------------------------\
             \nPackets sent: {:>24}\nPackets received: {:>20}\nPackets dropped: {:>21}",
            l.sent, l.received, l.dropped
        );
        tot.sent += l.sent;
        tot.received += l.received;
        tot.dropped += l.dropped;
    }
    let other: u64 = drops.iter().enumerate().filter(|(i, _)| *i != DropReason::TxFull as usize).map(|(_, d)| d).sum();
    let _ = write!(
        s,
        "\nAggregate statistics ===============================\
         \nTotal packets sent: {:>18}\nTotal packets received: {:>14}\nTotal packets dropped: {:>15}",
        tot.sent,
        tot.received,
        tot.dropped + other
    );
    for r in DropReason::ALL {
        let d = drops[r as usize];
        if d > 0 {
            let _ = write!(s, "\n  dropped {:<14} {:>14}", r.name(), d);
        }
    }
    let _ = writeln!(s, "\n====================================================");
    s
}

/// The ports' notes for the final summary (what a backend met that its counters alone do not
/// explain, e.g. a pcap port's frames over the mbuf data room), one line each, and the text
/// of the first fatal one (a pcap replay that ended at a bad record), which fails the run.
pub fn port_notes<P: dataplane::port::Port>(ports: &[P]) -> (String, Option<String>) {
    let notes: Vec<_> = ports.iter().flat_map(|p| p.notes()).collect();
    let text = notes.iter().map(|n| format!("{}: {}\n", if n.fatal { "Error" } else { "Note" }, n.text)).collect();
    (text, notes.into_iter().find(|n| n.fatal).map(|n| n.text))
}

/// Prints a statistics block; on a terminal, clears the screen first so the view updates in
/// place (as l2fwd does).
pub fn print_live(block: &str) {
    if std::io::stdout().is_terminal() {
        // ESC[2J clear screen, ESC[1;1H cursor home: the sequences l2fwd prints.
        print!("\x1b[2J\x1b[1;1H");
    }
    print!("{block}");
}

/// One lcore's totals over all ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LcoreLine {
    /// Its id: the CPU it is pinned to, else its index.
    pub lcore: usize,
    /// The tx queue it sends on (its index in the plan).
    pub tx_queue: usize,
    /// Packets received.
    pub received: u64,
    /// Packets sent.
    pub sent: u64,
}

/// Reads the per-lcore totals from the runtime.
pub fn lcore_lines(rt: &Runtime, plan: &crate::lcores::Plan, ports: usize) -> Vec<LcoreLine> {
    rt.lcore_stats()
        .iter()
        .zip(&plan.lcores)
        .enumerate()
        .map(|(k, (st, lp))| {
            let (rx, tx) = st.ports[..ports.min(st.ports.len())]
                .iter()
                .fold((0u64, 0u64), |a, p| (a.0 + p.rx.get(), a.1 + p.tx.get()));
            LcoreLine { lcore: lp.cpu.unwrap_or(k), tx_queue: k, received: rx, sent: tx }
        })
        .collect()
}

/// Per-lcore totals (DPDK does not print these): one line per lcore, when there are several.
pub fn render_lcores(lines: &[LcoreLine]) -> String {
    let mut s = String::new();
    if lines.len() < 2 {
        return s;
    }
    for l in lines {
        let _ = writeln!(s, "Lcore {}: received {} sent {}", l.lcore, l.received, l.sent);
    }
    s
}

/// A mode's own figure in the final summary: its member of the JSON `summary` and its text
/// line.
pub struct SummaryItem {
    /// The JSON member.
    pub key: &'static str,
    /// Reads the figure (after the lcores stopped).
    pub value: Box<dyn Fn() -> u64>,
    /// The text line for it.
    pub text: fn(u64) -> String,
}

impl std::fmt::Debug for SummaryItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SummaryItem").field("key", &self.key).finish()
    }
}

/// What the final summary says besides the port statistics.
#[derive(Debug, Clone, Default)]
pub struct Final {
    /// Seconds the lcores ran.
    pub elapsed_s: f64,
    /// Packets sent on all ports.
    pub forwarded: u64,
    /// Per-lcore totals.
    pub lcores: Vec<LcoreLine>,
    /// Busy timer cycles per packet received, once there was one.
    pub busy_cycles_per_packet: Option<f64>,
    /// The leak check's message (none when an lcore panicked and it did not run).
    pub mbufs: Option<String>,
    /// Lcores that panicked.
    pub panicked: Vec<String>,
    /// l3fwd's route table: generation, IPv4 and IPv6 routes, reloads ok and rejected.
    pub route_table: Option<[u64; 5]>,
    /// The mode's figures.
    pub items: Vec<(&'static str, u64)>,
}

/// The `summary` member of the JSON final summary (see the module docs).
pub fn summary_json(f: &Final) -> serde_json::Value {
    let lcores: Vec<serde_json::Value> = f
        .lcores
        .iter()
        .map(|l| serde_json::json!({"lcore": l.lcore, "tx_queue": l.tx_queue, "received": l.received, "sent": l.sent}))
        .collect();
    let rate = if f.elapsed_s > 0.0 { f.forwarded as f64 / f.elapsed_s } else { 0.0 };
    let mut v = serde_json::json!({
        "elapsed_s": f.elapsed_s, "forwarded": f.forwarded, "rate_pps": rate, "lcores": lcores,
        "busy_cycles_per_packet": f.busy_cycles_per_packet, "mbufs": f.mbufs, "panicked": f.panicked,
    });
    if let Some([gen, r4, r6, ok, rej]) = f.route_table {
        v["route_table"] = serde_json::json!({
            "generation": gen, "routes_v4": r4, "routes_v6": r6, "reloads_ok": ok, "reloads_rejected": rej,
        });
    }
    for (k, n) in &f.items {
        v[*k] = (*n).into();
    }
    v
}

#[cfg(test)]
mod tests {
    #[test]
    fn link_lines() {
        use dataplane::port::LinkStatus;
        assert_eq!(super::link_line(0, &LinkStatus::default()), "Port 0 Link down");
        let up = LinkStatus { up: true, speed_mbps: 1000, full_duplex: true };
        assert_eq!(super::link_line(1, &up), "Port 1 Link up at 1000 Mbps full-duplex");
        let unknown = LinkStatus { up: true, speed_mbps: 0, full_duplex: false };
        assert_eq!(super::link_line(2, &unknown), "Port 2 Link up");
    }

    #[test]
    fn cycles_line_converts() {
        assert_eq!(
            super::cycles_line(260.0, 2_600_000_000),
            "Busy cycles per packet: 260.0 (100.0 ns at a 2.600 GHz timer)"
        );
    }

    #[test]
    fn summary_json_members() {
        let f = super::Final {
            elapsed_s: 2.0,
            forwarded: 10,
            lcores: vec![super::LcoreLine { lcore: 3, tx_queue: 0, received: 10, sent: 10 }],
            busy_cycles_per_packet: None,
            mbufs: Some("All 96 mbufs returned to the pool: no leak.".into()),
            panicked: vec![],
            route_table: Some([1, 2, 0, 1, 0]),
            items: vec![("rxonly_freed", 7)],
        };
        let v = super::summary_json(&f);
        assert_eq!(v["rate_pps"], 5.0);
        assert_eq!(v["lcores"][0], serde_json::json!({"lcore": 3, "tx_queue": 0, "received": 10, "sent": 10}));
        assert_eq!(v["busy_cycles_per_packet"], serde_json::Value::Null);
        assert_eq!(v["route_table"]["routes_v4"], 2);
        assert_eq!(v["rxonly_freed"], 7);
        // ci/vm/lib.sh reads the lcores as "lcore":N,"received":R,"sent":S.
        assert!(v.to_string().contains(r#""lcore":3,"received":10,"sent":10"#), "{v}");
    }

    #[test]
    fn rate_units() {
        assert_eq!(super::rate(11_500_000.0), "11.50 Mpps");
        assert_eq!(super::rate(3_956.0), "4.0 kpps");
        assert_eq!(super::rate(0.0), "0.0 kpps");
    }
}
