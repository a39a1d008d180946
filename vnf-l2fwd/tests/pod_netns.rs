//! The VNF as a Kubernetes pod would run it, on namespaces (root needed; skipped without it,
//! failing under CI=true), on the bed of `common`:
//!
//! ```text
//!  client (c0 198.18.1.2/24) ── net1 [ pod: vnf-l2fwd l3fwd ] net2 ── (198.18.2.2/24 s0) server
//! ```
//!
//! The pod's interfaces are named net1 and net2 as Multus presents them and the VNF takes its
//! ports from a network-status annotations file (no --port). It answers ARP for 198.18.1.1
//! and 198.18.2.1, the client's and server's gateways. Sequenced UDP datagrams must each
//! arrive exactly once, also across a route reload under load (`ctl reload`) that adds
//! 198.18.3.0/24; the metrics endpoint (inside the pod's namespace) agrees with the final
//! summary.

mod common;

use common::{metric_in, send, Counter, PodBed, ROUTES_PLUS};
use std::process::Command;
use std::time::Duration;

const PHASE1: u32 = 3000;
const PHASE2: u32 = 1000;

/// (sent, received) of port `p` from the final summary.
fn summary(out: &str, p: u32) -> (u64, u64) {
    let block = out.split(&format!("Statistics for port {p} ")).nth(1).unwrap();
    let val = |k: &str| -> u64 {
        block.lines().find(|l| l.starts_with(k)).unwrap().rsplit(' ').next().unwrap().parse().unwrap()
    };
    (val("Packets sent:"), val("Packets received:"))
}

#[test]
fn l3fwd_in_a_pod_namespace_zero_loss_across_reload() {
    if !netns::require_or_skip("l3fwd_in_a_pod_namespace_zero_loss_across_reload") {
        return;
    }
    let bed = PodBed::new();
    let vnf = bed.start_l3fwd(&["--duration", "60"]);
    let server = Counter::start(&bed.server);
    bed.warm_up(&server);

    // Phase 1, with a route reload in the middle of it.
    let sender = send(&bed.client, "198.18.2.2:9000", 1, PHASE1, 2000);
    std::thread::sleep(Duration::from_millis(600));
    std::fs::write(&bed.routes, ROUTES_PLUS).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_vnf-l2fwd"))
        .args(["ctl", "reload", "--pidfile"])
        .arg(&bed.pidfile)
        .output()
        .unwrap();
    assert!(o.status.success(), "ctl reload: {}", String::from_utf8_lossy(&o.stderr));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(said.contains("reload: routes reloaded: generation 1, 3 IPv4 routes"), "ctl reload said: {said}");
    sender.join().unwrap();
    // Phase 2: the new route.
    send(&bed.client, "198.18.3.2:9000", 2, PHASE2, 2000).join().unwrap();
    server.assert_exact(1, PHASE1, "phase 1");
    server.assert_exact(2, PHASE2, "phase 2");
    let seen = server.seen.lock().unwrap().clone();
    assert!(seen.keys().all(|k| (k.0 == 1 && k.1 < PHASE1) || (k.0 == 2 && k.1 < PHASE2)), "strays");

    // Traffic is over: the metrics (refreshed every 250 ms) must match the final summary.
    std::thread::sleep(Duration::from_millis(700));
    let m = vnf.get("/metrics").expect("metrics");
    let (status, out, err, _) = vnf.terminate();
    assert!(status.success(), "{out}\n{err}");
    assert!(err.contains("ports from discovery"), "{err}");
    assert!(err.contains("reload 1: routes reloaded: generation 1, 3 IPv4 routes"), "the VNF logs the reload: {err}");
    assert!(err.contains("reload 1: routes reloaded: generation 1, 3 IPv4 routes"), "the VNF logs the reload: {err}");
    assert!(out.contains("no leak"), "{out}");
    for p in 0..2u32 {
        let (sent, received) = summary(&out, p);
        let get = |name: &str| metric_in(&m, &format!("{name}{{port=\"{p}\"")).map(|v| v as u64);
        assert_eq!(get("vnf_port_tx_packets_total"), Some(sent), "port {p}: {m}\n{out}");
        assert_eq!(get("vnf_port_rx_packets_total"), Some(received), "port {p}: {m}\n{out}");
    }
    let (to_server, _) = summary(&out, 1);
    assert!(to_server >= u64::from(PHASE1 + PHASE2), "{out}");
    assert!(!bed.pidfile.exists(), "pidfile left behind");
}
