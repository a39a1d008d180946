//! The VNF as a Kubernetes pod would run it, on namespaces (root needed; skipped without it,
//! failing under CI=true):
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

use netns::{fmt_mac, veth_pair, Netns};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const C0: [u8; 6] = [2, 0, 0, 0, 1, 2];
const NET1: [u8; 6] = [2, 0, 0, 0, 1, 1];
const NET2: [u8; 6] = [2, 0, 0, 0, 2, 1];
const S0: [u8; 6] = [2, 0, 0, 0, 2, 2];
const PHASE1: u32 = 3000;
const PHASE2: u32 = 1000;

/// A kubelet downward-API annotations file with a Multus network-status for net1 and net2
/// (no device-info: kernel interfaces).
fn annotations() -> String {
    let status = serde_json::json!([
        {"name": "k8s-pod-network", "interface": "eth0", "ips": ["10.244.1.17"],
         "mac": "0a:58:0a:f4:01:11", "default": true, "dns": {}},
        {"name": "vnf/net-a", "interface": "net1", "mac": fmt_mac(NET1), "dns": {}},
        {"name": "vnf/net-b", "interface": "net2", "mac": fmt_mac(NET2), "dns": {}},
    ]);
    let v = serde_json::to_string_pretty(&status).unwrap().replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        "k8s.v1.cni.cncf.io/network-status=\"{}\"\nk8s.v1.cni.cncf.io/networks=\"net-a,net-b\"\n",
        v.replace('\n', "\\n")
    )
}

/// Sends `n` datagrams `[phase, seq]` to `dst` at about 2000 per second.
fn send(client: &Netns, dst: &'static str, phase: u8, n: u32) -> std::thread::JoinHandle<()> {
    client
        .spawn(move || {
            let s = UdpSocket::bind("198.18.1.2:0").unwrap();
            let t0 = Instant::now();
            for seq in 0..n {
                let mut b = [0u8; 5];
                b[0] = phase;
                b[1..].copy_from_slice(&seq.to_be_bytes());
                s.send_to(&b, dst).unwrap();
                let due = t0 + Duration::from_micros(500) * (seq + 1);
                if let Some(w) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(w);
                }
            }
        })
        .unwrap()
}

fn http_get(addr: String) -> String {
    let mut c = std::net::TcpStream::connect(&addr).unwrap();
    c.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    out
}

fn metric(text: &str, name: &str, port: u32) -> u64 {
    let prefix = format!("{name}{{port=\"{port}\"");
    let l = text.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no {prefix} in {text}"));
    l.rsplit(' ').next().unwrap().parse().unwrap()
}

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
    let (client, pod, server) =
        (Netns::new("client").unwrap(), Netns::new("pod").unwrap(), Netns::new("server").unwrap());
    let _v1 = veth_pair(&client, "c0", &pod, "net1").unwrap();
    let _v2 = veth_pair(&pod, "net2", &server, "s0").unwrap();
    client.set_mac("c0", C0).unwrap();
    pod.set_mac("net1", NET1).unwrap();
    pod.set_mac("net2", NET2).unwrap();
    server.set_mac("s0", S0).unwrap();
    client.add_addr("c0", "198.18.1.2/24").unwrap();
    server.add_addr("s0", "198.18.2.2/24").unwrap();
    server.add_addr("s0", "198.18.3.2/32").unwrap();
    client.ip(&["route", "add", "default", "via", "198.18.1.1"]).unwrap();
    // veth hands the peer UDP with the checksum left to offload (CHECKSUM_PARTIAL); the
    // frames the VNF reads through AF_XDP/AF_PACKET and sends on would reach the server with
    // a partial checksum and be dropped. A NIC computes it; here the client's stack must.
    client.exec(&["ethtool", "-K", "c0", "tx", "off"]).expect("ethtool -K c0 tx off");
    server.ip(&["route", "add", "default", "via", "198.18.2.1"]).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let (info, routes, pidfile) =
        (dir.path().join("annotations"), dir.path().join("routes.cfg"), dir.path().join("vnf.pid"));
    std::fs::write(&info, annotations()).unwrap();
    std::fs::write(&routes, "R198.18.1.0/24 0\nR198.18.2.0/24 1\n").unwrap();
    let mport = pod.run(|| std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()).unwrap();
    let maddr = format!("127.0.0.1:{mport}");

    let mut child = Command::new("ip")
        .args(["netns", "exec", pod.name(), env!("CARGO_BIN_EXE_vnf-l2fwd"), "l3fwd"])
        .arg("--podnetinfo")
        .arg(&info)
        .arg("--rule_ipv4")
        .arg(&routes)
        .arg("--pidfile")
        .arg(&pidfile)
        .args(["--eth-dest", &format!("0,{}", fmt_mac(C0)), "--eth-dest", &format!("1,{}", fmt_mac(S0))])
        .args(["--addr", "0,198.18.1.1", "--addr", "1,198.18.2.1", "-P", "--duration", "60", "-T", "0"])
        .args(["--metrics-addr", &maddr])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let (out, lines) = (child.stdout.take().unwrap(), lines.clone());
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                lines.lock().unwrap().push(l.unwrap());
            }
        })
    };
    let stderr = {
        let mut e = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = e.read_to_string(&mut s);
            s
        })
    };
    let t0 = Instant::now();
    while !pidfile.exists() {
        if t0.elapsed() > Duration::from_secs(15) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the VNF did not start: {:?}\n{}", lines.lock().unwrap(), stderr.join().unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    // The server counts every datagram by (phase, seq).
    let stop = Arc::new(AtomicBool::new(false));
    let warm = Arc::new(AtomicBool::new(false));
    let rx = {
        let (stop, warm) = (stop.clone(), warm.clone());
        server
            .spawn(move || {
                let s = UdpSocket::bind("0.0.0.0:9000").unwrap();
                s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
                let mut seen: BTreeMap<(u8, u32), u32> = BTreeMap::new();
                let mut b = [0u8; 16];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(5) = s.recv(&mut b) {
                        if b[0] == 0 {
                            warm.store(true, Ordering::Relaxed);
                        } else {
                            *seen.entry((b[0], u32::from_be_bytes(b[1..5].try_into().unwrap()))).or_default() += 1;
                        }
                    }
                }
                seen
            })
            .unwrap()
    };
    // Warm-up: the client resolves its gateway (answered by the VNF) and the path works.
    let t0 = Instant::now();
    while !warm.load(Ordering::Relaxed) {
        assert!(t0.elapsed() < Duration::from_secs(10), "no warm-up datagram crossed the VNF: {:?}", lines.lock());
        send(&client, "198.18.2.2:9000", 0, 1).join().unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }

    // Phase 1, with a route reload in the middle of it.
    let sender = send(&client, "198.18.2.2:9000", 1, PHASE1);
    std::thread::sleep(Duration::from_millis(600));
    std::fs::write(&routes, "R198.18.1.0/24 0\nR198.18.2.0/24 1\nR198.18.3.0/24 1\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_vnf-l2fwd"))
        .args(["ctl", "reload", "--pidfile"])
        .arg(&pidfile)
        .output()
        .unwrap();
    assert!(o.status.success(), "ctl reload: {}", String::from_utf8_lossy(&o.stderr));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(said.contains("reload: routes reloaded: generation 1, 3 IPv4 routes"), "ctl reload said: {said}");
    sender.join().unwrap();
    // Phase 2: the new route.
    send(&client, "198.18.3.2:9000", 2, PHASE2).join().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let seen = rx.join().unwrap();
    for (phase, n) in [(1u8, PHASE1), (2, PHASE2)] {
        let lost: Vec<u32> = (0..n).filter(|s| !seen.contains_key(&(phase, *s))).collect();
        let dup: Vec<_> = seen.iter().filter(|(k, c)| k.0 == phase && **c != 1).collect();
        assert!(lost.is_empty(), "phase {phase}: {} of {n} lost, first {:?}", lost.len(), &lost[..lost.len().min(10)]);
        assert!(dup.is_empty(), "phase {phase}: duplicates {dup:?}");
    }
    assert!(seen.keys().all(|k| (k.0 == 1 && k.1 < PHASE1) || (k.0 == 2 && k.1 < PHASE2)), "strays");

    // Traffic is over: the metrics (refreshed every 250 ms) must match the final summary.
    std::thread::sleep(Duration::from_millis(700));
    let m = pod.run(move || http_get(maddr)).unwrap();
    assert!(Command::new("kill").arg(child.id().to_string()).status().unwrap().success());
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let err = stderr.join().unwrap();
    let out = lines.lock().unwrap().join("\n");
    assert!(status.success(), "{out}\n{err}");
    assert!(err.contains("ports from discovery"), "{err}");
    assert!(err.contains("reload 1: routes reloaded: generation 1, 3 IPv4 routes"), "the VNF logs the reload: {err}");
    assert!(out.contains("no leak"), "{out}");
    for p in 0..2 {
        let (sent, received) = summary(&out, p);
        assert_eq!(metric(&m, "vnf_port_tx_packets_total", p), sent, "port {p}: {m}\n{out}");
        assert_eq!(metric(&m, "vnf_port_rx_packets_total", p), received, "port {p}: {m}\n{out}");
    }
    let (to_server, _) = summary(&out, 1);
    assert!(to_server >= u64::from(PHASE1 + PHASE2), "{out}");
    assert!(!Path::new(&pidfile).exists(), "pidfile left behind");
}
