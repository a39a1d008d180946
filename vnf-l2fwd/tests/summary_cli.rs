//! What the VNF says at start and at the end (issue 17, item 11): with `--stats-format json`
//! the final summary is one JSON object too, and a port whose link is down at start gets a
//! warning naming it.

use netns::{veth_pair, Netns};
use pcap_file::pcap::{PcapPacket, PcapWriter};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_vnf-l2fwd")
}

fn run(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().unwrap()
}

fn write_pcap(path: &Path, n: u32) {
    let mut w = PcapWriter::new(std::fs::File::create(path).unwrap()).unwrap();
    for i in 0..n {
        let mut f = vec![0u8; 64];
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 0xaa]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 0xbb]);
        f[12..14].copy_from_slice(&[0x88, 0xb5]);
        f[14..18].copy_from_slice(&i.to_be_bytes());
        w.write_packet(&PcapPacket::new(Duration::ZERO, 64, &f)).unwrap();
    }
}

/// Every stdout line after the start-up lines is a JSON object; the last one is the summary.
fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    let out = String::from_utf8_lossy(&o.stdout);
    let start = ["Port ", "Lcore ", "l3fwd (", "txonly: ", "rxonly: "];
    let mut v = vec![];
    for l in out.lines().filter(|l| !l.is_empty() && !start.iter().any(|s| l.starts_with(s))) {
        v.push(serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?} in\n{out}")));
    }
    v
}

#[test]
fn json_final_summary_is_one_object() {
    let dir = tempfile::tempdir().unwrap();
    let inp = dir.path().join("in.pcap");
    write_pcap(&inp, 10);
    let pid = dir.path().join("vnf.pid");
    let o = run(&[
        "l2fwd",
        "--port",
        &format!("pcap:rx={}", inp.display()),
        "--port",
        &format!("pcap:tx={}", dir.path().join("out.pcap").display()),
        "--portmap",
        "(0,1)",
        "--duration",
        "0.5",
        "-T",
        "0",
        "--stats-format",
        "json",
        "--pidfile",
        pid.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let objs = json_lines(&o);
    assert_eq!(objs.len(), 1, "-T 0: only the summary, one object: {objs:?}");
    let j = &objs[0];
    // The periodic object's members (a reader of the statistics lines takes the last one)...
    assert_eq!(j["ports"][0]["received"], 10);
    assert_eq!(j["ports"][1]["sent"], 10);
    assert!(j["drops"].is_object() && j["workers"].is_object());
    // The classifier ran on the received bursts (issue 16's debug counter).
    assert!(j["workers"]["classified_bursts"].as_u64().unwrap() >= 1, "{j}");
    // ...and the summary's own.
    let s = &j["summary"];
    assert_eq!(s["forwarded"], 10, "{s}");
    assert!(s["elapsed_s"].as_f64().unwrap() >= 0.5, "{s}");
    assert!(s["rate_pps"].is_number(), "{s}");
    assert_eq!(s["lcores"].as_array().unwrap().len(), 1, "{s}");
    assert_eq!(s["lcores"][0]["received"], 10, "{s}");
    assert!(s["mbufs"].as_str().unwrap().contains("no leak"), "{s}");
    assert!(s.get("route_table").is_none(), "{s}");
    assert_eq!(s["panicked"], serde_json::json!([]), "{s}");
    let line = String::from_utf8_lossy(&o.stdout).lines().last().unwrap().to_string();
    assert!(line.starts_with("{\"drops\""), "statistics readers find the lines by their start: {line}");
}

#[test]
fn json_summary_carries_the_mode_figures() {
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.cfg");
    std::fs::write(&routes, "R198.18.0.0/16 1\n").unwrap();
    let pid = dir.path().join("vnf.pid");
    let pid = pid.to_str().unwrap();
    let common = ["--duration", "0.3", "-T", "0", "--stats-format", "json", "--pidfile", pid];
    let mut l3 = vec!["l3fwd", "--port", "null", "--port", "null", "--rule_ipv4", routes.to_str().unwrap()];
    l3.extend(common);
    let o = run(&l3);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let objs = json_lines(&o);
    let s = &objs.last().unwrap()["summary"];
    assert_eq!(s["route_table"]["routes_v4"], 1, "{s}");
    let w = &objs.last().unwrap()["workers"];
    assert!(w["classified_bursts"].as_u64().unwrap() > 0, "l3fwd classifies what it receives: {w}");
    assert_eq!(s["route_table"]["reloads_rejected"], 0, "{s}");
    let mut rx = vec!["rxonly", "--port", "null"];
    rx.extend(common);
    let o = run(&rx);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let objs = json_lines(&o);
    assert_eq!(objs.len(), 1, "{objs:?}");
    assert!(objs[0]["summary"]["rxonly_freed"].as_u64().unwrap() > 0, "{}", objs[0]);
    let mut tx = vec!["txonly", "--port", "null"];
    tx.extend(common);
    let o = run(&tx);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let objs = json_lines(&o);
    assert_eq!(objs.len(), 1, "{objs:?}");
    assert!(objs[0]["summary"]["txonly_bursts_not_generated"].is_u64(), "{}", objs[0]);
}

/// The text summary is as it was (DPDK l2fwd's block, then the rate and the leak check).
#[test]
fn text_final_summary_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let pid = dir.path().join("vnf.pid");
    let o = run(&["rxonly", "--port", "null", "--duration", "0.2", "-T", "0", "--pidfile", pid.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    let tail: Vec<&str> = out.lines().rev().take(3).collect();
    assert!(tail[0].starts_with("rxonly: ") && tail[0].ends_with(" packets received and freed"), "{out}");
    assert!(tail[1].ends_with("no leak."), "{out}");
    assert!(tail[2].starts_with("Forwarded "), "{out}");
    assert!(out.contains("Port statistics ===="), "{out}");
}

/// A port whose interface is down (no carrier: the veth's peer is down) starts with a warning
/// naming it; an interface that is up gets none.
#[test]
fn link_down_at_start_is_a_warning() {
    if !netns::require_or_skip("link_down_at_start_is_a_warning") {
        return;
    }
    let (a, b) = (Netns::new("lnkdn_a").unwrap(), Netns::new("lnkdn_b").unwrap());
    let _v = veth_pair(&a, "vlkd0", &b, "vlkd1").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pid = dir.path().join("vnf.pid");
    let vnf = |ns: &Netns| {
        Command::new("ip")
            .args(["netns", "exec", ns.name(), bin(), "l2fwd", "--port", "af_packet:vlkd0", "--port", "null"])
            .args(["--duration", "0.3", "-T", "0", "--pidfile", pid.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let o = vnf(&a);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains("link is down"), "the link is up: {err}");
    b.ip(&["link", "set", "dev", "vlkd1", "down"]).unwrap();
    // The kernel updates the operational state (IFF_RUNNING) after the carrier, in linkwatch.
    let t0 = std::time::Instant::now();
    let operstate = || {
        let c = Command::new("ip").args(["netns", "exec", a.name(), "cat", "/sys/class/net/vlkd0/operstate"]).output();
        String::from_utf8_lossy(&c.unwrap().stdout).trim().to_string()
    };
    while operstate() != "down" {
        assert!(t0.elapsed() < Duration::from_secs(5), "vlkd0 is still {}", operstate());
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = vnf(&a);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("port 0 (vlkd0): link is down"), "{err}");
}
