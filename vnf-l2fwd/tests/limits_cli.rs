//! Limits of the options and port specs (issue 17, item 7): each is checked before any port,
//! socket, XDP program or file is opened, with exit code 2 and a message naming the limit.
//!
//! Most cases give ports that cannot be opened (`af_packet:` on an interface that does not
//! exist, exit 3 when opened): exit 2 then proves the limit was checked first.

use pcap_file::pcap::PcapReader;
use std::process::Command;

mod common;

use common::cli::{bin, run};

/// Two ports that would fail to open (exit 3).
const UNOPENABLE: [&str; 4] = ["--port", "af_packet:nosuchif0", "--port", "af_packet:nosuchif1"];

fn assert_usage(args: &[&str], want: &[&str]) {
    let o = run(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    for w in want {
        assert!(err.contains(w), "{args:?}: {err:?} does not name {w:?}");
    }
    assert!(!err.contains("nosuchif"), "{args:?}: a port was opened before the check: {err}");
    assert!(o.stdout.is_empty(), "{args:?}: printed before the check: {}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn option_limits_are_checked_before_the_ports_are_opened() {
    for (extra, want) in [
        (&["--rx-burst", "0"][..], &["--rx-burst 0", "1 to 512"][..]),
        (&["--rx-burst", "513"], &["--rx-burst 513", "1 to 512"]),
        (&["--tx-burst", "0"], &["--tx-burst 0", "1 to 512"]),
        (&["--idle-sleep-us", "1000001"], &["--idle-sleep-us 1000001", "1000000"]),
        (&["-T", "86401"], &["--stats-period 86401", "86400"]),
        (&["-T", "18446744073709551615"], &["--stats-period", "86400"]),
        (&["--duration", "inf"], &["--duration inf"]),
        (&["--metrics-addr", "bogus"], &["--metrics-addr bogus", "HOST:PORT"]),
        (&["--metrics-addr", "0.0.0.0:99999"], &["--metrics-addr 0.0.0.0:99999"]),
        (&["--mbufs", "31"], &["--mbufs 31", "minimum"]),
        (&["--mbufs", "0"], &["--mbufs 0", "minimum"]),
        (&["--mbufs", "300000000"], &["--mbufs 300000000", "268435456"]),
        (&["-p", "0x7"], &["port mask 0x7", "port 2", "2 ports"]),
    ] {
        let mut args = vec!["l2fwd"];
        args.extend(UNOPENABLE);
        args.extend(extra);
        assert_usage(&args, want);
    }
}

#[test]
fn port_spec_limits_are_checked_before_the_ports_are_opened() {
    let dir = tempfile::tempdir().unwrap();
    let inp = dir.path().join("in.pcap");
    pcap_file::pcap::PcapWriter::new(std::fs::File::create(&inp).unwrap()).unwrap();
    let pcap = format!("pcap:rx={},tx={}", inp.display(), dir.path().join("out.pcap").display());
    for (ports, extra, want) in [
        // A null frame must fit the mbuf data room (2048-byte chunks less header and headroom).
        (&["--port", "null,size=9000", "--port", "af_packet:nosuchif0"][..], &[][..], &["size 9000", "1728"][..]),
        (&["--port", "null,size=1729", "--port", "af_packet:nosuchif0"], &[], &["size 1729", "1728"]),
        // SO_BUSY_POLL takes a C int of microseconds.
        (
            &["--port", "af_xdp:limit0,busy_poll=3000000000", "--port", "af_packet:nosuchif1"],
            &[],
            &["busy_poll", "2147483647"],
        ),
        (&["--port", "af_xdp:limit0,busy_poll=0", "--port", "af_packet:nosuchif1"], &[], &["busy_poll"]),
        (
            &["--port", "af_packet:limit0,qdisc_bypass=2", "--port", "af_packet:nosuchif1"],
            &[],
            &["qdisc_bypass", "0 or 1"],
        ),
        // A transmit burst must fit the port's transmit ring.
        (
            &["--port", "pci:0000:03:00.0,txd=64", "--port", "af_packet:nosuchif1"],
            &["--tx-burst", "128"],
            &["--tx-burst 128", "txd"],
        ),
        // The mbufs lent to the AF_XDP fill rings (1024 per queue) must leave some for the lcore.
        (
            &["--port", "af_xdp:nosuchif0,queues=8", "--port", "af_xdp:nosuchif1,queues=8"],
            &["--mbufs", "16000"],
            &["--mbufs 16000", "16384"],
        ),
        // A pcap port has one queue: two lcores cannot each have a tx queue on it.
        (&["--port", &pcap, "--port", "af_packet:nosuchif1"], &["-q", "1"], &["one tx queue", "2 lcores"]),
    ] {
        let mut args = vec!["l2fwd"];
        args.extend(ports);
        args.extend(extra);
        if extra.contains(&"-q") && num_cpus() < 2 {
            continue;
        }
        assert_usage(&args, want);
    }
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[test]
fn mode_limits_are_checked_before_the_ports_are_opened() {
    let mut tx = vec!["txonly", "--port", "af_packet:nosuchif0"];
    tx.extend(["--txpkts", "1729"]);
    assert_usage(&tx, &["--txpkts 1729", "1728"]);
    // The source addresses of the flows may not run past 255.255.255.255.
    let mut tx = vec!["txonly", "--port", "af_packet:nosuchif0"];
    tx.extend(["--tx-ip", "255.255.255.0,198.18.0.2", "--tx-flows", "257"]);
    assert_usage(&tx, &["--tx-flows 257", "at most 256"]);
    let mut l3 = vec!["l3fwd", "--rule_ipv4", "/nonexistent/routes.cfg"];
    l3.extend(UNOPENABLE);
    l3.extend(["--max-pkt-len", "9000"]);
    assert_usage(&l3, &["--max-pkt-len 9000", "1728"]);
    // --cpu is for the single-lcore default; with --config it would be ignored.
    let mut c = vec!["l2fwd", "--cpu", "0", "--config", "(0,0,0)(1,0,0)"];
    c.extend(UNOPENABLE);
    assert_usage(&c, &["--cpu", "--config"]);
}

#[test]
fn demo_and_node_features_limits() {
    for (args, want) in [
        (&["demo", "--rx-burst", "0"][..], "--rx-burst 0"),
        (&["demo", "--cpu", "100000"], "--cpu 100000"),
        (&["demo", "-T", "18446744073709551615"], "--stats-period 18446744073709551615"),
        (&["node-features", "--every", "0"], "--every 0"),
        (&["node-features", "--every", "18446744073709551615"], "--every 18446744073709551615"),
    ] {
        let o = run(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}: {}", String::from_utf8_lossy(&o.stdout));
    }
}

/// The minimum the error names is enough: the pool of exactly that many forwards.
#[test]
fn the_named_mbuf_minimum_forwards() {
    let o = run(&["l2fwd", "--port", "null", "--port", "null", "--mbufs", "31", "--duration", "0.3", "-T", "0"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let min: u32 = err
        .split("minimum ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no minimum in {err}"));
    let o = Command::new(bin())
        .args(["l2fwd", "--port", "null", "--port", "null", "--mbufs", &min.to_string(), "--duration", "0.5"])
        .args(["-T", "0"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    let sent: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("Total packets sent:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(sent > 0, "{min} mbufs forwarded nothing: {out}");
    let o = run(&["l2fwd", "--port", "null", "--port", "null", "--mbufs", &(min - 1).to_string()]);
    assert_eq!(o.status.code(), Some(2));
}

/// The largest frame that fits the data room is sent; one byte more is refused.
#[test]
fn txonly_sends_the_largest_frame_that_fits() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.pcap");
    let o = run(&["txonly", "--port", &format!("pcap:tx={}", out.display()), "--duration", "0.2", "-T", "0"]
        .iter()
        .copied()
        .chain(["--txpkts", "1728"])
        .collect::<Vec<_>>());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut r = PcapReader::new(std::fs::File::open(&out).unwrap()).unwrap();
    let first = r.next_packet().expect("a frame was sent").unwrap();
    assert_eq!(first.data.len(), 1728);
}

/// A --metrics-addr that cannot be bound (in use) fails before the ports are opened, as a
/// setup error (exit 3) naming the option.
#[test]
fn metrics_addr_in_use_fails_before_the_ports_are_opened() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut args = vec!["l2fwd"];
    args.extend(UNOPENABLE);
    args.extend(["--metrics-addr", &addr]);
    let o = run(&args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains(&format!("--metrics-addr {addr}")) && !err.contains("nosuchif"), "{err}");
}
