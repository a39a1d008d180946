//! The Prometheus `/metrics` endpoint (`--metrics-addr`) and the JSON statistics lines
//! (`--stats-format json`).
//!
//! The control thread renders a snapshot of the counters a few times a second and publishes
//! it; the HTTP thread (tiny_http) serves the latest snapshot. Nothing here touches the data
//! path: the lcores only write their own counters.

use crate::stats::PortLine;
use dataplane::lcore::DropReason;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Route-table reloads (l3fwd): written by the control thread's reload, read by the statistics
/// and the metrics endpoint.
#[derive(Debug, Default)]
pub struct ReloadStats {
    /// Reloads that swapped in a new table.
    pub ok: std::sync::atomic::AtomicU64,
    /// Reloads rejected (bad file); the running table stayed.
    pub rejected: std::sync::atomic::AtomicU64,
    /// Generation of the table in use.
    pub generation: std::sync::atomic::AtomicU64,
    /// IPv4 routes in the table in use.
    pub routes_v4: std::sync::atomic::AtomicU64,
    /// IPv6 routes in the table in use.
    pub routes_v6: std::sync::atomic::AtomicU64,
}

impl ReloadStats {
    fn get(&self) -> [u64; 5] {
        [&self.ok, &self.rejected, &self.generation, &self.routes_v4, &self.routes_v6]
            .map(|a| a.load(Ordering::Relaxed))
    }

    /// The Prometheus families.
    pub fn prometheus(&self) -> String {
        let [ok, rej, gen, r4, r6] = self.get();
        format!(
            "# HELP vnf_route_reloads_total Route-table reloads, by result.\n# TYPE vnf_route_reloads_total counter\n\
             vnf_route_reloads_total{{result=\"ok\"}} {ok}\nvnf_route_reloads_total{{result=\"rejected\"}} {rej}\n\
             # HELP vnf_route_table_generation Generation of the route table in use.\n# TYPE vnf_route_table_generation gauge\n\
             vnf_route_table_generation {gen}\n\
             # HELP vnf_route_table_routes Routes in the table in use.\n# TYPE vnf_route_table_routes gauge\n\
             vnf_route_table_routes{{family=\"ipv4\"}} {r4}\nvnf_route_table_routes{{family=\"ipv6\"}} {r6}\n"
        )
    }

    /// One line for the console statistics.
    pub fn text(&self) -> String {
        let [ok, rej, gen, r4, r6] = self.get();
        format!("Route table: generation {gen}, {r4} IPv4 / {r6} IPv6 routes; reloads {ok} ok, {rej} rejected\n")
    }
}

/// Counters of one port as the metrics and JSON output show them.
#[derive(Debug, Clone, Default)]
pub struct PortSample {
    /// Port name (interface, file, vdev).
    pub name: String,
    /// Backend.
    pub driver: String,
    /// l2fwd-style sent/received/dropped.
    pub line: PortLine,
    /// Backend counters (rte_eth_stats names).
    pub hw: dataplane::port::PortStats,
    /// Link state.
    pub link: dataplane::port::LinkStatus,
}

/// Renders the Prometheus text exposition format.
pub fn render_prometheus(ports: &[PortSample], drops: &[u64; DropReason::COUNT], uptime_s: f64) -> String {
    let mut s = String::new();
    let mut family = |name: &str, help: &str, kind: &str, rows: &mut dyn Iterator<Item = (String, u64)>| {
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, v) in rows {
            let _ = writeln!(s, "{name}{labels} {v}");
        }
    };
    let lbl =
        |i: usize, p: &PortSample| format!("{{port=\"{i}\",name=\"{}\",driver=\"{}\"}}", esc(&p.name), esc(&p.driver));
    family(
        "vnf_port_rx_packets_total",
        "Packets received from the port by the workers.",
        "counter",
        &mut ports.iter().enumerate().map(|(i, p)| (lbl(i, p), p.line.received)),
    );
    family(
        "vnf_port_tx_packets_total",
        "Packets sent on the port by the workers.",
        "counter",
        &mut ports.iter().enumerate().map(|(i, p)| (lbl(i, p), p.line.sent)),
    );
    family(
        "vnf_port_tx_dropped_total",
        "Packets the port's tx queue refused (freed and counted).",
        "counter",
        &mut ports.iter().enumerate().map(|(i, p)| (lbl(i, p), p.line.dropped)),
    );
    for (name, help, f) in [
        (
            "vnf_port_ipackets_total",
            "Backend counter: packets received.",
            (|h: &dataplane::port::PortStats| h.ipackets) as fn(&_) -> u64,
        ),
        ("vnf_port_opackets_total", "Backend counter: packets sent.", |h| h.opackets),
        ("vnf_port_ibytes_total", "Backend counter: bytes received.", |h| h.ibytes),
        ("vnf_port_obytes_total", "Backend counter: bytes sent.", |h| h.obytes),
        ("vnf_port_imissed_total", "Backend counter: packets missed on receive.", |h| h.imissed),
        ("vnf_port_ierrors_total", "Backend counter: receive errors.", |h| h.ierrors),
        ("vnf_port_oerrors_total", "Backend counter: transmit errors.", |h| h.oerrors),
        ("vnf_port_rx_nombuf_total", "Backend counter: receive attempts without a free mbuf.", |h| h.rx_nombuf),
    ] {
        family(name, help, "counter", &mut ports.iter().enumerate().map(|(i, p)| (lbl(i, p), f(&p.hw))));
    }
    family(
        "vnf_port_link_up",
        "1 when the port's link is up.",
        "gauge",
        &mut ports.iter().enumerate().map(|(i, p)| (lbl(i, p), u64::from(p.link.up))),
    );
    family(
        "vnf_dropped_packets_total",
        "Packets dropped by the data path, by reason.",
        "counter",
        &mut DropReason::ALL.iter().map(|r| (format!("{{reason=\"{}\"}}", r.name()), drops[*r as usize])),
    );
    let _ = writeln!(s, "# HELP vnf_uptime_seconds Seconds since forwarding started.\n# TYPE vnf_uptime_seconds gauge");
    let _ = writeln!(s, "vnf_uptime_seconds {uptime_s:.3}");
    s
}

/// One JSON object with the same figures (for `--stats-format json`), and the workers' loop
/// counters summed (`workers`: loops, busy_loops, busy_cycles, rx, and the timer's rate
/// `timer_hz`), from which a reader takes busy cycles per packet over a window.
pub fn render_json(
    ports: &[PortSample],
    drops: &[u64; DropReason::COUNT],
    workers: &dataplane::lcore::BusyTotals,
    uptime_s: f64,
) -> String {
    json_value(ports, drops, workers, uptime_s).to_string()
}

/// [`render_json`]'s object, for the final summary to add its `summary` member to.
pub fn json_value(
    ports: &[PortSample],
    drops: &[u64; DropReason::COUNT],
    workers: &dataplane::lcore::BusyTotals,
    uptime_s: f64,
) -> serde_json::Value {
    let ports: Vec<serde_json::Value> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            serde_json::json!({
                "port": i, "name": p.name, "driver": p.driver,
                "sent": p.line.sent, "received": p.line.received, "dropped": p.line.dropped,
                "ipackets": p.hw.ipackets, "opackets": p.hw.opackets, "ibytes": p.hw.ibytes, "obytes": p.hw.obytes,
                "imissed": p.hw.imissed, "ierrors": p.hw.ierrors, "oerrors": p.hw.oerrors, "rx_nombuf": p.hw.rx_nombuf,
                "link_up": p.link.up, "link_speed_mbps": p.link.speed_mbps,
            })
        })
        .collect();
    let drops: serde_json::Map<String, serde_json::Value> =
        DropReason::ALL.iter().map(|r| (r.name().to_string(), drops[*r as usize].into())).collect();
    let workers = serde_json::json!({
        "loops": workers.loops, "busy_loops": workers.busy_loops, "busy_cycles": workers.busy_cycles,
        "rx": workers.rx, "timer_hz": dataplane::arch::cycles_per_sec(),
    });
    serde_json::json!({ "uptime_s": uptime_s, "ports": ports, "drops": drops, "workers": workers })
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The HTTP endpoint. Serves `/metrics` (the latest snapshot) and `/healthz`; stops on drop.
pub struct Server {
    snapshot: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    addr: std::net::SocketAddr,
}

impl Server {
    /// Listens on `addr` (e.g. `0.0.0.0:9100`).
    ///
    /// # Errors
    /// When the address is invalid or cannot be bound.
    pub fn start(addr: &str) -> Result<Server, String> {
        let server = tiny_http::Server::http(addr).map_err(|e| format!("--metrics-addr {addr}: {e}"))?;
        let bound = server.server_addr().to_ip().ok_or_else(|| format!("--metrics-addr {addr}: not an IP address"))?;
        let snapshot = Arc::new(Mutex::new(String::from("# no sample yet\n")));
        let stop = Arc::new(AtomicBool::new(false));
        let (snap, st) = (snapshot.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                while !st.load(Ordering::Relaxed) {
                    let req = match server.recv_timeout(Duration::from_millis(100)) {
                        Ok(Some(r)) => r,
                        Ok(None) => continue,
                        Err(_) => break,
                    };
                    let path = req.url().split('?').next().unwrap_or("").to_string();
                    let resp = match path.as_str() {
                        "/metrics" => {
                            let body = snap.lock().map(|s| s.clone()).unwrap_or_default();
                            let h = tiny_http::Header::from_bytes("Content-Type", "text/plain; version=0.0.4")
                                .expect("static header is valid");
                            tiny_http::Response::from_string(body).with_header(h)
                        }
                        "/healthz" | "/readyz" => tiny_http::Response::from_string("ok\n"),
                        _ => tiny_http::Response::from_string("not found\n").with_status_code(404),
                    };
                    let _ = req.respond(resp);
                }
            })
            .map_err(|e| format!("cannot start the metrics thread: {e}"))?;
        Ok(Server { snapshot, stop, thread: Some(thread), addr: bound })
    }

    /// The bound address.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Replaces the served snapshot.
    pub fn publish(&self, text: String) {
        if let Ok(mut s) = self.snapshot.lock() {
            *s = text;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_has_families_and_labels() {
        let p = PortSample {
            name: "net\"1".into(),
            driver: "af_xdp".into(),
            line: PortLine { sent: 5, received: 7, dropped: 1 },
            hw: Default::default(),
            link: dataplane::port::LinkStatus { up: true, speed_mbps: 1000, full_duplex: true },
        };
        let mut d = [0u64; DropReason::COUNT];
        d[DropReason::NoRoute as usize] = 3;
        let t = render_prometheus(std::slice::from_ref(&p), &d, 1.5);
        assert!(t.contains("vnf_port_rx_packets_total{port=\"0\",name=\"net\\\"1\",driver=\"af_xdp\"} 7"));
        assert!(t.contains("vnf_dropped_packets_total{reason=\"no_route\"} 3"));
        assert!(t.contains("# TYPE vnf_port_tx_packets_total counter"));
        assert!(t.contains("vnf_port_link_up{port=\"0\",name=\"net\\\"1\",driver=\"af_xdp\"} 1"), "{t}");
        let w = dataplane::lcore::BusyTotals { loops: 10, busy_loops: 4, busy_cycles: 900, rx: 9 };
        let json = render_json(&[p], &d, &w, 1.5);
        // ci/vm/lib.sh finds the statistics lines by their start.
        assert!(json.starts_with("{\"drops\""), "{json}");
        let j: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(j["workers"]["busy_cycles"], 900);
        assert_eq!(j["workers"]["busy_loops"], 4);
        assert_eq!(j["ports"][0]["sent"], 5);
        assert_eq!(j["ports"][0]["link_up"], true);
        assert_eq!(j["ports"][0]["link_speed_mbps"], 1000);
        assert_eq!(j["drops"]["no_route"], 3);
    }

    #[test]
    fn reload_stats_render() {
        let r = ReloadStats::default();
        r.ok.store(2, Ordering::Relaxed);
        r.generation.store(2, Ordering::Relaxed);
        r.routes_v4.store(7, Ordering::Relaxed);
        let t = r.prometheus();
        assert!(t.contains("vnf_route_reloads_total{result=\"ok\"} 2"), "{t}");
        assert!(t.contains("vnf_route_table_routes{family=\"ipv4\"} 7"), "{t}");
        assert!(r.text().contains("generation 2, 7 IPv4"));
    }

    #[test]
    fn serves_metrics_over_http() {
        let s = Server::start("127.0.0.1:0").unwrap();
        s.publish("vnf_test 1\n".into());
        let mut c = std::net::TcpStream::connect(s.addr()).unwrap();
        use std::io::{Read, Write};
        c.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200") || out.starts_with("HTTP/1.0 200"), "{out}");
        assert!(out.ends_with("vnf_test 1\n"));
    }
}
