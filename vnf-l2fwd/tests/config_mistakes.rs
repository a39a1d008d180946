//! Configuration mistakes that used to be accepted silently (issue 17, item 10): each is now
//! an error (exit 2) or a warning naming the mistake.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::cli::{bin, run};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn assert_usage(args: &[&str], want: &[&str]) {
    let o = run(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    for w in want {
        assert!(err.contains(w), "{args:?}: {err:?} does not say {w:?}");
    }
}

/// The first CPU this process may use (an lcore id for `--config`).
fn first_cpu() -> usize {
    vnf_l2fwd::node_features::allowed_cpus()[0]
}

/// `--config` naming a queue beyond an explicit `queues=` was silently grown.
#[test]
fn config_queue_beyond_queues_is_an_error() {
    let c = first_cpu();
    let config = format!("(0,0,{c}),(0,2,{c}),(1,0,{c})");
    assert_usage(
        &["l2fwd", "--port", "null,queues=2", "--port", "null", "--config", &config],
        &["port 0", "queues=2", "rx queue 2"],
    );
    // Without queues= the port gets what --config needs, as before.
    let o = run(&["l2fwd", "--port", "null", "--port", "null", "--config", &config, "--duration", "0.2", "-T", "0"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A port in two `--portmap` pairs: the last pair won silently. DPDK l2fwd refuses it ("port
/// %u is used in other port pairs").
#[test]
fn duplicate_portmap_pair_is_an_error() {
    let four = ["--port", "null", "--port", "null", "--port", "null", "--port", "null"];
    for (map, port) in [("(0,1)(0,1)", "port 0"), ("(0,1)(2,3)(1,0)", "port 1"), ("(0,1)(2,1)", "port 1")] {
        for mode in ["l2fwd", "io", "macswap"] {
            let mut args = vec![mode];
            args.extend(four);
            args.extend(["--portmap", map, "--duration", "1"]);
            assert_usage(&args, &["--portmap", port, "two pairs"]);
        }
    }
    // A port paired with itself is one pair (testpmd's loopback), and allowed.
    let o = run(&["io", "--port", "null", "--portmap", "(0,0)", "--duration", "0.2", "-T", "0"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// An enabled port that no `--portmap` pair names drops all it receives.
#[test]
fn unpaired_port_is_a_warning() {
    let o = run(&["l2fwd", "--port", "null", "--port", "null", "--port", "null", "--portmap", "(0,1)"]
        .into_iter()
        .chain(["--duration", "0.2", "-T", "0"])
        .collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("port 2 is in no --portmap pair"), "{}", stderr(&o));
}

fn l3fwd(routes: &std::path::Path, extra: &[&str]) -> Output {
    let r = routes.to_str().unwrap();
    let pidfile = routes.with_extension("pid");
    let mut args = vec!["l3fwd", "--port", "null", "--port", "null", "--rule_ipv4", r, "--duration", "0.3", "-T", "0"];
    args.extend(["--pidfile", pidfile.to_str().unwrap()]);
    args.extend(extra);
    run(&args)
}

/// A route to a port that does not exist (or is masked out) sent all its traffic to
/// `no_tx_port`. DPDK l3fwd does not use routes to disabled ports; here it is an error at
/// start, naming the file, the line and the port.
#[test]
fn route_to_a_missing_port_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.cfg");
    std::fs::write(&routes, "# two ports\nR198.18.1.0/24 0\nR198.18.2.0/24 2\n").unwrap();
    let o = l3fwd(&routes, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("routes.cfg: line 3") && stderr(&o).contains("port 2"), "{}", stderr(&o));
    // Port 1 exists but -p leaves it out.
    std::fs::write(&routes, "R198.18.1.0/24 0\nR198.18.2.0/24 1\n").unwrap();
    let o = l3fwd(&routes, &["-p", "0x1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("line 2") && stderr(&o).contains("port 1"), "{}", stderr(&o));
    // EM routes too.
    std::fs::write(&routes, "R198.18.0.1 198.18.0.2 9 9 0x11 5\n").unwrap();
    let o = l3fwd(&routes, &["--lookup", "em"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("port 5"), "{}", stderr(&o));
    // --default-port to a masked-out port drops every miss the same way.
    std::fs::write(&routes, "R198.18.1.0/24 0\n").unwrap();
    let o = l3fwd(&routes, &["-p", "0x1", "--default-port", "1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--default-port 1"), "{}", stderr(&o));
}

/// A prefix given twice: the later line wins (as rte_lpm_add replaces the next hop), now
/// with a warning naming both lines.
#[test]
fn duplicate_route_prefix_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.cfg");
    std::fs::write(&routes, "R198.18.1.0/24 0\nR198.18.2.0/24 1\nR198.18.1.7/24 1\n").unwrap();
    let o = l3fwd(&routes, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("routes.cfg: line 3: 198.18.1.0/24 repeats line 1"), "{err}");
    assert!(err.contains("port 1 replaces port 0"), "{err}");
}

/// A reload naming a missing port is rejected by the same check, and the running table stays.
#[test]
fn reload_with_a_route_to_a_missing_port_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.cfg");
    let pidfile = dir.path().join("vnf.pid");
    std::fs::write(&routes, "R198.18.1.0/24 0\n").unwrap();
    let mut child = Command::new(bin())
        .args(["l3fwd", "--port", "null", "--port", "null", "--duration", "20", "-T", "0", "--rule_ipv4"])
        .arg(&routes)
        .arg("--pidfile")
        .arg(&pidfile)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !pidfile.exists() {
        assert!(t0.elapsed() < Duration::from_secs(10), "no pidfile");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(&routes, "R198.18.1.0/24 0\nR198.18.9.0/24 7\n").unwrap();
    let o = Command::new(bin()).args(["ctl", "reload", "--pidfile"]).arg(&pidfile).output().unwrap();
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let out: Vec<String> = BufReader::new(child.stdout.take().unwrap()).lines().map(Result::unwrap).collect();
    assert!(child.wait().unwrap().success(), "{out:?}");
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("rejected") && stderr(&o).contains("port 7"), "{}", stderr(&o));
    assert!(out.iter().any(|l| l.contains("1 IPv4 / 0 IPv6 routes; reloads 0 ok, 1 rejected")), "{out:?}");
}

/// `--port` help pointed to itself ("same forms as `l2fwd --port`"); io, macswap and rxonly
/// listed an `--addr` described as icmpecho's.
#[test]
fn help_lists_the_port_forms_and_only_icmpecho_has_addr() {
    for mode in ["l2fwd", "l3fwd", "io", "macswap", "rxonly", "txonly", "icmpecho"] {
        let help = stdout(&run(&[mode, "--help"]));
        assert!(!help.contains("same forms as"), "{mode}: {help}");
        for form in
            ["null[,size=N][,queues=N]", "pcap:rx=FILE", "af_xdp:IFACE", "af_packet:IFACE", "pci:ADDRESS", "vdev:"]
        {
            assert!(help.contains(form), "{mode} --help does not list {form}: {help}");
        }
        let has_addr = help.contains("--addr");
        assert_eq!(has_addr, mode == "icmpecho" || mode == "l3fwd", "{mode}: {help}");
    }
    for mode in ["io", "macswap", "rxonly"] {
        let o = run(&[mode, "--port", "null", "--addr", "0,198.18.0.1", "--duration", "0.2"]);
        assert_eq!(o.status.code(), Some(2), "{mode}: {}", stderr(&o));
    }
    let o = run(&["icmpecho", "--port", "null", "--addr", "0,198.18.0.1", "--duration", "0.2", "-T", "0"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Internal formatting leaked into messages: `cpu Some(1)`, `l3fwd (Lpm)`.
#[test]
fn messages_do_not_show_rust_debug_formatting() {
    let c = first_cpu().to_string();
    let o = run(&["demo", "--duration", "0.2", "-T", "0", "--cpu", &c]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains(&format!("on one worker (cpu {c})")), "{}", stdout(&o));
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.cfg");
    std::fs::write(&routes, "R198.18.1.0/24 0\n").unwrap();
    let o = l3fwd(&routes, &[]);
    assert!(stdout(&o).contains("l3fwd (lpm): 1 IPv4 routes"), "{}", stdout(&o));
    // A CPU set is a kernel CPU list, not a Rust vector.
    let o = run(&["l2fwd", "--port", "null", "--port", "null", "--cpu", "100000"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!stderr(&o).contains('['), "{}", stderr(&o));
    for o in [&o, &run(&["demo", "--cpu", "100000"])] {
        assert!(!stderr(o).contains("Some(") && !stderr(o).contains('['), "{}", stderr(o));
    }
}
