//! A pod-like test bed shared by the namespace tests (root needed):
//!
//! ```text
//!  client (c0 198.18.1.2/24) ── net1 [ pod: vnf-l2fwd l3fwd ] net2 ── (198.18.2.2/24, 198.18.3.2/32 s0) server
//! ```
//!
//! The pod's interfaces are named net1 and net2 as Multus presents them; the VNF takes its
//! ports from a network-status annotations file (no --port) and answers ARP for 198.18.1.1 and
//! 198.18.2.1, the client's and server's gateways. The client sends sequenced UDP datagrams
//! `[phase, seq]` to port 9000; the server counts each (phase, seq) it receives.

#![allow(dead_code)] // each test file uses its own part of the bed

pub mod cli;

use netns::{fmt_mac, veth_pair, Netns, Veth};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const C0: [u8; 6] = [2, 0, 0, 0, 1, 2];
pub const NET1: [u8; 6] = [2, 0, 0, 0, 1, 1];
pub const NET2: [u8; 6] = [2, 0, 0, 0, 2, 1];
pub const S0: [u8; 6] = [2, 0, 0, 0, 2, 2];
/// The routes the VNF starts with: the client's and the server's subnets.
pub const ROUTES: &str = "R198.18.1.0/24 0\nR198.18.2.0/24 1\n";
/// [`ROUTES`] plus 198.18.3.0/24, the server's second address.
pub const ROUTES_PLUS: &str = "R198.18.1.0/24 0\nR198.18.2.0/24 1\nR198.18.3.0/24 1\n";

/// A kubelet downward-API annotations file with a Multus network-status for net1 and net2
/// (no device-info: kernel interfaces).
pub fn annotations() -> String {
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

/// The namespaces, links and files of one bed; all removed on drop.
pub struct PodBed {
    pub client: Netns,
    pub pod: Netns,
    pub server: Netns,
    _v1: Veth,
    v2: Option<Veth>,
    pub dir: tempfile::TempDir,
    pub routes: PathBuf,
    pub pidfile: PathBuf,
    pub info: PathBuf,
}

impl PodBed {
    /// Builds the bed (the caller has checked `netns::require_or_skip`).
    pub fn new() -> PodBed {
        let (client, pod, server) =
            (Netns::new("client").unwrap(), Netns::new("pod").unwrap(), Netns::new("server").unwrap());
        let v1 = veth_pair(&client, "c0", &pod, "net1").unwrap();
        client.set_mac("c0", C0).unwrap();
        pod.set_mac("net1", NET1).unwrap();
        client.add_addr("c0", "198.18.1.2/24").unwrap();
        client.ip(&["route", "add", "default", "via", "198.18.1.1"]).unwrap();
        // veth hands the peer UDP with the checksum left to offload (CHECKSUM_PARTIAL); the
        // frames the VNF reads through AF_XDP/AF_PACKET and sends on would reach the server
        // with a partial checksum and be dropped. A NIC computes it; here the client's stack must.
        client.exec(&["ethtool", "-K", "c0", "tx", "off"]).expect("ethtool -K c0 tx off");
        let dir = tempfile::tempdir().unwrap();
        let (info, routes, pidfile) =
            (dir.path().join("annotations"), dir.path().join("routes.cfg"), dir.path().join("vnf.pid"));
        std::fs::write(&info, annotations()).unwrap();
        std::fs::write(&routes, ROUTES).unwrap();
        let mut bed = PodBed { client, pod, server, _v1: v1, v2: None, dir, routes, pidfile, info };
        bed.server_link();
        bed
    }

    /// Creates net2 ── s0 with the server's addresses and default route.
    fn server_link(&mut self) {
        self.v2 = Some(veth_pair(&self.pod, "net2", &self.server, "s0").unwrap());
        self.pod.set_mac("net2", NET2).unwrap();
        self.server.set_mac("s0", S0).unwrap();
        self.server.add_addr("s0", "198.18.2.2/24").unwrap();
        self.server.add_addr("s0", "198.18.3.2/32").unwrap();
        self.server.ip(&["route", "add", "default", "via", "198.18.2.1"]).unwrap();
    }

    /// Deletes the server's link (net2 goes with it) and creates it again.
    pub fn recreate_server_link(&mut self) {
        drop(self.v2.take());
        self.server_link();
    }

    /// Deletes the server's link only.
    pub fn delete_server_link(&mut self) {
        drop(self.v2.take());
    }

    /// Starts `vnf-l2fwd l3fwd` in the pod with the bed's files, a metrics endpoint and
    /// `extra` options; waits for its pidfile.
    pub fn start_l3fwd(&self, extra: &[&str]) -> Vnf {
        let mport =
            self.pod.run(|| std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()).unwrap();
        let maddr = format!("127.0.0.1:{mport}");
        let mut child = Command::new("ip")
            .args(["netns", "exec", self.pod.name(), env!("CARGO_BIN_EXE_vnf-l2fwd"), "l3fwd"])
            .arg("--podnetinfo")
            .arg(&self.info)
            .arg("--rule_ipv4")
            .arg(&self.routes)
            .arg("--pidfile")
            .arg(&self.pidfile)
            .args(["--eth-dest", &format!("0,{}", fmt_mac(C0)), "--eth-dest", &format!("1,{}", fmt_mac(S0))])
            .args(["--addr", "0,198.18.1.1", "--addr", "1,198.18.2.1", "-P", "-T", "0"])
            .args(["--metrics-addr", &maddr])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let reader = {
            let (out, lines) = (child.stdout.take().unwrap(), lines.clone());
            std::thread::spawn(move || {
                for l in BufReader::new(out).lines() {
                    lines.lock().unwrap().push(l.unwrap_or_default());
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
        let mut vnf = Vnf {
            child: Some(child),
            lines,
            reader: Some(reader),
            stderr: Some(stderr),
            maddr,
            pod: self.pod.name().to_string(),
        };
        let t0 = Instant::now();
        while !self.pidfile.exists() {
            let exited = vnf.child.as_mut().unwrap().try_wait().unwrap().is_some();
            if t0.elapsed() > Duration::from_secs(15) || exited {
                let (status, out, err) = vnf.stop();
                panic!("the VNF did not start ({status}):\n{out}\n{err}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        vnf
    }

    /// Sends one datagram of phase 0 until the server has seen one (ARP resolved both ways,
    /// the path works), for up to 10 s.
    pub fn warm_up(&self, server: &Counter) {
        let t0 = Instant::now();
        while server.warm.load(Ordering::Relaxed) == 0 {
            assert!(t0.elapsed() < Duration::from_secs(10), "no warm-up datagram crossed the VNF");
            send(&self.client, "198.18.2.2:9000", 0, 1, 1000).join().unwrap();
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The running VNF.
pub struct Vnf {
    child: Option<Child>,
    /// Its standard output, line by line.
    pub lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    stderr: Option<std::thread::JoinHandle<String>>,
    /// The metrics endpoint (inside the pod's namespace).
    pub maddr: String,
    pod: String,
}

impl Vnf {
    /// The process id.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// Sends signal `sig`.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our child's pid (`ip netns exec` execs the VNF in place).
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// GET `path` from the metrics endpoint (None when it does not answer in 5 s).
    pub fn get(&self, path: &'static str) -> Option<String> {
        let addr = self.maddr.clone();
        netns::spawn_in(&self.pod, move || http_get(&addr, path)).ok()?.join().ok().flatten()
    }

    /// Value of the first metric line starting with `prefix` (name and labels).
    pub fn metric(&self, prefix: &str) -> Option<f64> {
        let m = self.get("/metrics")?;
        metric_in(&m, prefix)
    }

    /// Waits up to `secs` for metric `prefix` to reach `want` (or more).
    pub fn wait_metric(&self, prefix: &str, want: f64, secs: u64) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(secs) {
            if self.metric(prefix).is_some_and(|v| v >= want) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Resident set size in KiB and open file descriptors, from /proc.
    pub fn rss_kib_and_fds(&self) -> (u64, usize) {
        let pid = self.pid();
        let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| l.strip_prefix("VmRSS:")?.trim().strip_suffix("kB")?.trim().parse().ok())
            })
            .unwrap_or(0);
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
        (rss, fds)
    }

    /// Sends SIGTERM and waits up to 10 s: the exit status, standard output and error.
    pub fn terminate(mut self) -> (ExitStatus, String, String, Duration) {
        let t0 = Instant::now();
        self.signal(libc::SIGTERM);
        let c = self.child.as_mut().unwrap();
        while c.try_wait().unwrap().is_none() && t0.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let took = t0.elapsed();
        let (s, o, e) = self.stop();
        (s, o, e, took)
    }

    /// Kills the process if it still runs and collects its output.
    pub fn stop(&mut self) -> (ExitStatus, String, String) {
        let mut c = self.child.take().unwrap();
        if c.try_wait().unwrap().is_none() {
            let _ = c.kill();
        }
        let status = c.wait().unwrap();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let err = self.stderr.take().map(|e| e.join().unwrap_or_default()).unwrap_or_default();
        (status, self.lines.lock().unwrap().join("\n"), err)
    }
}

impl Drop for Vnf {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// GET `path` with HTTP/1.0; None on any failure or after 5 s.
pub fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut c = std::net::TcpStream::connect(addr).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    c.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes()).ok()?;
    let mut out = String::new();
    c.read_to_string(&mut out).ok()?;
    Some(out)
}

/// Value of the first line of `text` starting with `prefix`.
pub fn metric_in(text: &str, prefix: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(prefix))?.rsplit(' ').next()?.parse().ok()
}

/// Sends `n` datagrams `[phase, seq]` from the client to `dst` at `pps` per second.
pub fn send(client: &Netns, dst: &'static str, phase: u8, n: u32, pps: u32) -> std::thread::JoinHandle<()> {
    client
        .spawn(move || {
            let s = UdpSocket::bind("198.18.1.2:0").unwrap();
            let t0 = Instant::now();
            let gap = Duration::from_secs(1) / pps.max(1);
            for seq in 0..n {
                let mut b = [0u8; 5];
                b[0] = phase;
                b[1..].copy_from_slice(&seq.to_be_bytes());
                // A deleted route or link makes the kernel refuse some: those are lost, as intended.
                let _ = s.send_to(&b, dst);
                let due = t0 + gap * (seq + 1);
                if let Some(w) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(w);
                }
            }
        })
        .unwrap()
}

/// The server's count of each (phase, seq) received on UDP port 9000.
pub struct Counter {
    pub seen: Arc<Mutex<BTreeMap<(u8, u32), u32>>>,
    /// Phase-0 (warm-up) datagrams seen.
    pub warm: Arc<std::sync::atomic::AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Counter {
    /// Starts counting in the server's namespace.
    pub fn start(server: &Netns) -> Counter {
        let seen = Arc::new(Mutex::new(BTreeMap::new()));
        let warm = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let (seen, warm, stop) = (seen.clone(), warm.clone(), stop.clone());
            server
                .spawn(move || {
                    let s = UdpSocket::bind("0.0.0.0:9000").unwrap();
                    s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
                    let mut b = [0u8; 16];
                    while !stop.load(Ordering::Relaxed) {
                        if let Ok(5) = s.recv(&mut b) {
                            if b[0] == 0 {
                                warm.fetch_add(1, Ordering::Relaxed);
                            } else {
                                let k = (b[0], u32::from_be_bytes(b[1..5].try_into().unwrap()));
                                *seen.lock().unwrap().entry(k).or_default() += 1;
                            }
                        }
                    }
                })
                .unwrap()
        };
        Counter { seen, warm, stop, handle: Some(handle) }
    }

    /// Lost sequence numbers and duplicated ones of `phase` (sent `0..n`), after waiting up to
    /// `secs` for the last ones to arrive.
    pub fn check(&self, phase: u8, n: u32, secs: u64) -> (Vec<u32>, Vec<u32>) {
        let t0 = Instant::now();
        loop {
            let seen = self.seen.lock().unwrap();
            let lost: Vec<u32> = (0..n).filter(|s| !seen.contains_key(&(phase, *s))).collect();
            if lost.is_empty() || t0.elapsed() > Duration::from_secs(secs) {
                let dup = seen.iter().filter(|(k, c)| k.0 == phase && **c > 1).map(|(k, _)| k.1).collect();
                return (lost, dup);
            }
            drop(seen);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Asserts every datagram of `phase` (sent `0..n`) arrived exactly once.
    pub fn assert_exact(&self, phase: u8, n: u32, what: &str) {
        let (lost, dup) = self.check(phase, n, 3);
        assert!(lost.is_empty(), "{what}: {} of {n} lost, first {:?}", lost.len(), &lost[..lost.len().min(10)]);
        assert!(dup.is_empty(), "{what}: duplicates {:?}", &dup[..dup.len().min(10)]);
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
