//! Console statistics in DPDK l2fwd's layout, and the final summary.

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

/// Per-lcore totals (DPDK does not print these): one line per lcore, when there are several.
pub fn render_lcores(rt: &Runtime, plan: &crate::lcores::Plan, ports: usize) -> String {
    let mut s = String::new();
    if plan.lcores.len() < 2 {
        return s;
    }
    for (k, (st, lp)) in rt.lcore_stats().iter().zip(&plan.lcores).enumerate() {
        let (rx, tx) = st.ports[..ports.min(st.ports.len())]
            .iter()
            .fold((0u64, 0u64), |a, p| (a.0 + p.rx.get(), a.1 + p.tx.get()));
        let _ = writeln!(s, "Lcore {}: received {rx} sent {tx}", lp.cpu.unwrap_or(k));
    }
    s
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
    fn rate_units() {
        assert_eq!(super::rate(11_500_000.0), "11.50 Mpps");
        assert_eq!(super::rate(3_956.0), "4.0 kpps");
        assert_eq!(super::rate(0.0), "0.0 kpps");
    }
}
