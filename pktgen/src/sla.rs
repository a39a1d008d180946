//! SLA suites (YAML, in the spirit of Yardstick test cases) and their runner.
//!
//! ```yaml
//! name: smoke
//! topology: netns          # build sender ns <-> forwarder ns (vnf-l2fwd) <-> receiver ns
//! cases:
//!   - {name: ping, type: ping, packetsize: 64, count: 5, interval: 0.2, sla: {max_rtt: 10}}
//!   - {name: tput, type: throughput, rate_pps: 2000, duration: 1, sla: {min_mpps: 0.001}}
//!   - {name: lat, type: latency, rate_pps: 1000, duration: 1, sla: {max_p99_us: 5000}}
//!   - {name: loss, type: loss, rate_pps: 1000, duration: 1, sla: {max_loss_pct: 0}}
//! ```
//!
//! `topology: pods` runs against given addresses and ports in the caller's namespace:
//! `pods: {ping_target: 198.18.1.2, tx_port: af_packet:net1, rx_port: af_packet:net2,
//! src_ip: .., dst_ip: .., dst_mac: 02:..}`. There a ping target may also be a host name
//! (resolved through `/etc/hosts` and DNS, e.g. a Kubernetes Service) or any unicast address:
//! a ping case sends `count` echo requests to one host, the cluster network's latency is what
//! TC080 measures. Generated traffic keeps to 198.18.0.0/15 in both topologies.
//!
//! Ping cases use the built-in ICMP echo ([`crate::icmp`]): no `ping` binary, a datagram ICMP
//! socket where `net.ipv4.ping_group_range` allows it, else a raw one (`CAP_NET_RAW`).

use crate::engine::{opener, run_trial, Side, TrialConfig};
use crate::frame::{FrameSize, GenConfig};
use crate::icmp::{PingConfig, SocketKind};
use crate::ports::PortSpec;
use crate::tx::TxConfig;
use dataplane::port::spec::SpecError;
use netns::{veth_pair, Netns};
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Topology kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Topology {
    /// Namespaces built by the runner around a vnf-l2fwd forwarder.
    Netns,
    /// Given addresses and ports (cluster pods).
    Pods,
}

/// Addresses and ports for `topology: pods`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Pods {
    /// Ping target: an IPv4 address or a host name.
    pub ping_target: Option<String>,
    /// Port spec to send on.
    pub tx_port: Option<String>,
    /// Port spec to receive on.
    pub rx_port: Option<String>,
    /// Source address of generated frames.
    pub src_ip: Option<Ipv4Addr>,
    /// Destination address of generated frames.
    pub dst_ip: Option<Ipv4Addr>,
    /// Destination MAC of generated frames.
    pub dst_mac: Option<String>,
}

/// Case kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// ICMP echo (tc080-like).
    Ping,
    /// Received rate.
    Throughput,
    /// p99 latency.
    Latency,
    /// Loss.
    Loss,
}

/// SLA thresholds (each kind needs its own).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Sla {
    /// ping: largest round trip, ms.
    pub max_rtt: Option<f64>,
    /// throughput: smallest received rate, Mpps.
    pub min_mpps: Option<f64>,
    /// latency: largest p99, µs.
    pub max_p99_us: Option<f64>,
    /// loss: largest loss, percent.
    pub max_loss_pct: Option<f64>,
}

/// One test case.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Name.
    pub name: String,
    /// Kind.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// ping: ICMP payload bytes (`ping -s`).
    pub packetsize: Option<u32>,
    /// Seconds (ping: count = duration / interval; traffic: send time). Default 1.
    pub duration: Option<f64>,
    /// ping: echo requests (overrides duration).
    pub count: Option<u32>,
    /// ping: seconds between requests (default 1).
    pub interval: Option<f64>,
    /// ping: target (default the topology's receiver): an address in 198.18.0.0/15 with
    /// `topology: netns`; with `topology: pods` any unicast address or a host name.
    pub target: Option<String>,
    /// ping: seconds to wait for missing replies after the last request (default 1).
    pub timeout: Option<f64>,
    /// ping: ICMP socket, `auto` (default: datagram, else raw), `dgram` or `raw`.
    pub socket: Option<SocketKind>,
    /// traffic: frame size (64..9000 or "imix"; default 64).
    pub frame_size: Option<serde_yaml::Value>,
    /// traffic: packets per second (default full speed).
    pub rate_pps: Option<f64>,
    /// traffic: flows (default 1).
    pub flows: Option<u16>,
    /// traffic: VLAN id.
    pub vlan: Option<u16>,
    /// Thresholds.
    pub sla: Sla,
}

/// A suite file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// Name.
    pub name: Option<String>,
    /// Topology.
    pub topology: Topology,
    /// Pods settings (topology: pods).
    pub pods: Option<Pods>,
    /// Cases, in order.
    pub cases: Vec<Case>,
}

/// A bad suite file.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// Unreadable.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Error.
        source: std::io::Error,
    },
    /// Not the expected shape (the message names the field).
    #[error("{0}")]
    Invalid(String),
}

impl Case {
    /// The frame size.
    ///
    /// # Errors
    /// A message naming the field.
    pub fn size(&self) -> Result<FrameSize, String> {
        match &self.frame_size {
            None => Ok(FrameSize::Fixed(64)),
            Some(serde_yaml::Value::Number(n)) => n.to_string().parse(),
            Some(serde_yaml::Value::String(s)) => s.parse(),
            Some(v) => Err(format!("{v:?} is neither a number nor imix")),
        }
    }

    fn validate(&self, at: &str, topology: Topology) -> Result<(), String> {
        let need = |v: Option<f64>, f: &str| -> Result<(), String> {
            match v {
                None => Err(format!("{at}: sla.{f} is required for a {:?} case", self.kind).to_lowercase()),
                Some(x) if !x.is_finite() || x < 0.0 => Err(format!("{at}: sla.{f} must be a number >= 0")),
                Some(_) => Ok(()),
            }
        };
        let pos = |v: Option<f64>, f: &str| match v {
            Some(x) if !x.is_finite() || x <= 0.0 => Err(format!("{at}: {f} must be > 0")),
            _ => Ok(()),
        };
        pos(self.duration, "duration")?;
        pos(self.interval, "interval")?;
        pos(self.rate_pps, "rate_pps")?;
        pos(self.timeout, "timeout")?;
        if self.timeout.is_some_and(|d| d > 60.0) {
            return Err(format!("{at}: timeout must be at most 60 s"));
        }
        if self.duration.is_some_and(|d| d > 3600.0) {
            return Err(format!("{at}: duration must be at most 3600 s"));
        }
        match self.kind {
            Kind::Ping => {
                need(self.sla.max_rtt, "max_rtt")?;
                if let Some(t) = &self.target {
                    check_target(t, topology).map_err(|e| format!("{at}: target: {e}"))?;
                }
                if self.interval.is_some_and(|i| i < 0.001) {
                    return Err(format!("{at}: interval must be at least 0.001 s"));
                }
                if self.packetsize.is_some_and(|s| s > 65507) {
                    return Err(format!("{at}: packetsize must be at most 65507"));
                }
                if self.count == Some(0) {
                    return Err(format!("{at}: count must be at least 1"));
                }
                if topology == Topology::Pods && self.target.is_none() {
                    return Err(format!("{at}: target (or pods.ping_target) is required with topology: pods"));
                }
            }
            Kind::Throughput => need(self.sla.min_mpps, "min_mpps")?,
            Kind::Latency => need(self.sla.max_p99_us, "max_p99_us")?,
            Kind::Loss => need(self.sla.max_loss_pct, "max_loss_pct")?,
        }
        if self.kind != Kind::Ping {
            self.size().map_err(|e| format!("{at}: frame_size: {e}"))?;
            if self.flows == Some(0) {
                return Err(format!("{at}: flows must be at least 1"));
            }
            if let Some(v) = self.vlan {
                if !(1..=4094).contains(&v) {
                    return Err(format!("{at}: vlan must be 1 to 4094"));
                }
            }
        }
        Ok(())
    }
}

impl Suite {
    /// Parses and checks a suite.
    ///
    /// # Errors
    /// [`SuiteError::Invalid`] naming the field.
    pub fn parse(text: &str) -> Result<Suite, SuiteError> {
        let mut s: Suite = serde_yaml::from_str(text).map_err(|e| SuiteError::Invalid(e.to_string()))?;
        if s.cases.is_empty() {
            return Err(SuiteError::Invalid("cases: the suite has no cases".into()));
        }
        if s.topology == Topology::Pods {
            let p = s.pods.clone().ok_or_else(|| SuiteError::Invalid("pods: required with topology: pods".into()))?;
            if let Some(t) = &p.ping_target {
                check_target(t, Topology::Pods).map_err(|e| SuiteError::Invalid(format!("pods.ping_target: {e}")))?;
            }
            for (f, a) in [("pods.src_ip", p.src_ip), ("pods.dst_ip", p.dst_ip)] {
                if a.is_some_and(|a| !crate::is_bench_addr(a)) {
                    return Err(SuiteError::Invalid(format!(
                        "{f}: {} is outside 198.18.0.0/15",
                        a.unwrap_or(Ipv4Addr::UNSPECIFIED)
                    )));
                }
            }
            for c in &mut s.cases {
                if c.kind == Kind::Ping && c.target.is_none() {
                    c.target.clone_from(&p.ping_target);
                }
            }
            let traffic = s.cases.iter().any(|c| c.kind != Kind::Ping);
            if traffic {
                for (f, v) in [("pods.tx_port", &p.tx_port), ("pods.rx_port", &p.rx_port)] {
                    let v =
                        v.as_ref().ok_or_else(|| SuiteError::Invalid(format!("{f}: required for traffic cases")))?;
                    v.parse::<PortSpec>().map_err(|e| SuiteError::Invalid(format!("{f}: {e}")))?;
                }
                if let Some(m) = &p.dst_mac {
                    parse_mac(m).map_err(|e| SuiteError::Invalid(format!("pods.dst_mac: {e}")))?;
                }
            }
        }
        for (i, c) in s.cases.iter().enumerate() {
            c.validate(&format!("cases[{i}] ({})", c.name), s.topology).map_err(SuiteError::Invalid)?;
        }
        Ok(s)
    }

    /// Reads and parses a suite file.
    ///
    /// # Errors
    /// See [`Suite::parse`].
    pub fn load(path: &Path) -> Result<Suite, SuiteError> {
        let t = std::fs::read_to_string(path)
            .map_err(|source| SuiteError::Io { path: path.display().to_string(), source })?;
        Suite::parse(&t).map_err(|e| match e {
            SuiteError::Invalid(m) => SuiteError::Invalid(format!("{}: {m}", path.display())),
            e => e,
        })
    }
}

/// A ping target's rules: with `topology: netns` an IPv4 address in 198.18.0.0/15; with
/// `topology: pods` a unicast IPv4 address or a host name (letters, digits, `-`, `.`).
fn check_target(t: &str, topology: Topology) -> Result<(), String> {
    match (t.parse::<Ipv4Addr>(), topology) {
        (Ok(a), Topology::Netns) if !crate::is_bench_addr(a) => Err(format!("{a} is outside 198.18.0.0/15")),
        (Ok(a), _) if a.is_unspecified() || a.is_broadcast() || a.is_multicast() => {
            Err(format!("{a} is not a unicast address"))
        }
        (Ok(_), _) => Ok(()),
        (Err(_), Topology::Netns) => Err(format!("{t:?} is not an IPv4 address (host names only with topology: pods)")),
        (Err(_), Topology::Pods) => {
            let ok = !t.is_empty()
                && t.len() <= 253
                && t.split('.').all(|l| {
                    !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if ok {
                Ok(())
            } else {
                Err(format!("{t:?} is neither an IPv4 address nor a host name"))
            }
        }
    }
}

/// Resolves a checked target to its first IPv4 address.
fn resolve(t: &str) -> Result<Ipv4Addr, String> {
    if let Ok(a) = t.parse() {
        return Ok(a);
    }
    let addrs = (t, 0).to_socket_addrs().map_err(|e| format!("resolving {t}: {e}"))?;
    addrs
        .filter_map(|a| match a.ip() {
            std::net::IpAddr::V4(v) => Some(v),
            std::net::IpAddr::V6(_) => None,
        })
        .next()
        .ok_or_else(|| format!("resolving {t}: no IPv4 address"))
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let v: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16))
        .collect::<Result<_, _>>()
        .map_err(|_| format!("bad MAC {s:?}"))?;
    v.try_into().map_err(|_| format!("bad MAC {s:?}"))
}

/// One case's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// Case name.
    pub name: String,
    /// Kind.
    pub kind: Kind,
    /// The threshold, as text ("max_rtt <= 10 ms").
    pub sla: String,
    /// The measured figure in the threshold's unit (None when the case could not run).
    pub measured: Option<f64>,
    /// SLA met.
    pub pass: bool,
    /// Why the case could not run.
    pub error: Option<String>,
    /// Everything measured.
    pub details: serde_json::Value,
}

/// A suite's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteResult {
    /// Suite name.
    pub suite: String,
    /// Every case passed.
    pub pass: bool,
    /// Per case.
    pub cases: Vec<CaseResult>,
}

impl SuiteResult {
    /// A text table.
    pub fn table(&self) -> String {
        let mut s = format!("{:<24} {:<10} {:<26} {:>12} {:<6}\n", "case", "type", "sla", "measured", "result");
        for c in &self.cases {
            s += &format!(
                "{:<24} {:<10} {:<26} {:>12} {:<6}{}\n",
                c.name,
                format!("{:?}", c.kind).to_lowercase(),
                c.sla,
                c.measured.map_or("-".into(), |m| format!("{m:.4}")),
                if c.pass { "PASS" } else { "FAIL" },
                c.error.as_ref().map_or(String::new(), |e| format!("  ({e})"))
            );
        }
        for c in &self.cases {
            if let Some(t) = c.details.get("summary").and_then(|v| v.as_str()) {
                s += &format!("\n{}: {t}", c.name);
            }
        }
        s += &format!("suite {}: {}\n", self.suite, if self.pass { "PASS" } else { "FAIL" });
        s
    }
}

/// The namespace topology: sender (s0, 198.18.0.1, 02:00:00:00:00:00) ↔ f0 [vnf-l2fwd] f1 ↔
/// receiver (r0, 198.18.0.2, 02:00:00:00:00:01), static neighbours both ways. The VNF is
/// stopped and the namespaces deleted on drop.
#[derive(Debug)]
pub struct NetnsTopo {
    vnf: Option<Child>,
    /// Sender namespace.
    pub sender: Netns,
    /// Forwarder namespace.
    pub fwd: Netns,
    /// Receiver namespace.
    pub receiver: Netns,
    vnf_log: PathBuf,
}

/// Sender address.
pub const SENDER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// Receiver address.
pub const RECEIVER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// Sender MAC (what l2fwd writes as destination on its port 0).
pub const SENDER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0];
/// Receiver MAC (what l2fwd writes as destination on its port 1).
pub const RECEIVER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

fn ns_err(what: &str) -> impl Fn(netns::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

impl NetnsTopo {
    /// Builds the topology and starts `vnf` (the vnf-l2fwd binary) in the forwarder; waits
    /// until a ping crosses it.
    ///
    /// # Errors
    /// Namespace commands fail, the VNF exits or never forwards.
    pub fn build(vnf: &Path) -> Result<Self, String> {
        let sender = Netns::new("sla_s").map_err(ns_err("sender namespace"))?;
        let fwd = Netns::new("sla_f").map_err(ns_err("forwarder namespace"))?;
        let receiver = Netns::new("sla_r").map_err(ns_err("receiver namespace"))?;
        // The veths go with their namespaces.
        std::mem::forget(veth_pair(&sender, "s0", &fwd, "f0").map_err(ns_err("veth s0-f0"))?);
        std::mem::forget(veth_pair(&fwd, "f1", &receiver, "r0").map_err(ns_err("veth f1-r0"))?);
        let mut t = NetnsTopo {
            vnf: None,
            sender,
            fwd,
            receiver,
            vnf_log: std::env::temp_dir().join(format!("sla-vnf-{}.log", std::process::id())),
        };
        t.sender.set_mac("s0", SENDER_MAC).map_err(ns_err("s0 mac"))?;
        t.receiver.set_mac("r0", RECEIVER_MAC).map_err(ns_err("r0 mac"))?;
        t.sender.add_addr("s0", "198.18.0.1/24").map_err(ns_err("s0 address"))?;
        t.receiver.add_addr("r0", "198.18.0.2/24").map_err(ns_err("r0 address"))?;
        let rm = netns::fmt_mac(RECEIVER_MAC);
        let sm = netns::fmt_mac(SENDER_MAC);
        t.sender
            .ip(&["neigh", "replace", "198.18.0.2", "lladdr", &rm, "dev", "s0", "nud", "permanent"])
            .map_err(ns_err("sender neighbour"))?;
        t.receiver
            .ip(&["neigh", "replace", "198.18.0.1", "lladdr", &sm, "dev", "r0", "nud", "permanent"])
            .map_err(ns_err("receiver neighbour"))?;
        let log = std::fs::File::create(&t.vnf_log).map_err(|e| format!("{}: {e}", t.vnf_log.display()))?;
        let child = Command::new("ip")
            .args(["netns", "exec", t.fwd.name()])
            // A higher CPU share: the VNF's AF_PACKET rings hold ~8 ms of traffic at low
            // rates, and a VNF preempted longer than that by a busy machine drops packets.
            .args(["nice", "-n", "-10"])
            .arg(vnf)
            .args(["l2fwd", "--port", "af_packet:f0", "--port", "af_packet:f1", "-P", "-T", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", vnf.display()))?;
        t.vnf = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(c) = t.vnf.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    let log = std::fs::read_to_string(&t.vnf_log).unwrap_or_default();
                    return Err(format!("vnf-l2fwd exited ({st}): {}", log.trim()));
                }
            }
            let cfg = PingConfig { timeout: Duration::from_millis(500), ..PingConfig::new(RECEIVER_IP, 1) };
            let ok = t.sender.run(move || crate::icmp::ping(&cfg)).is_ok_and(|r| r.is_ok_and(|s| s.received == 1));
            if ok {
                return Ok(t);
            }
            if Instant::now() > deadline {
                return Err("no ping crossed vnf-l2fwd within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for NetnsTopo {
    fn drop(&mut self) {
        if let Some(mut c) = self.vnf.take() {
            #[allow(unsafe_code)]
            // SAFETY: signalling our own child by its pid (it has not been reaped yet).
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(3) {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(&self.vnf_log);
    }
}

/// Where a run happens.
#[derive(Debug)]
pub enum Env<'a> {
    /// The runner's namespaces.
    Netns(&'a NetnsTopo),
    /// The caller's namespace with the suite's pod settings.
    Pods(&'a Pods),
}

fn ping(env: &Env<'_>, c: &Case) -> Result<(f64, serde_json::Value), String> {
    let interval = c.interval.unwrap_or(1.0);
    let count = c.count.unwrap_or_else(|| ((c.duration.unwrap_or(5.0) / interval).ceil() as u32).max(1));
    let target = match &c.target {
        Some(t) => resolve(t)?,
        None => RECEIVER_IP,
    };
    let cfg = PingConfig {
        target,
        count,
        payload: c.packetsize.unwrap_or(56) as usize,
        interval: Duration::from_secs_f64(interval),
        timeout: Duration::from_secs_f64(c.timeout.unwrap_or(1.0)),
        socket: c.socket.unwrap_or_default(),
    };
    let st = match env {
        Env::Netns(t) => t.sender.run(move || crate::icmp::ping(&cfg)).map_err(|e| format!("sender namespace: {e}"))?,
        Env::Pods(_) => crate::icmp::ping(&cfg),
    }
    .map_err(|e| e.to_string())?;
    let mut details = serde_json::to_value(&st).unwrap_or_default();
    if let Some(m) = details.as_object_mut() {
        m.insert("summary".into(), st.summary().into());
    }
    let max = st.max_ms.ok_or_else(|| {
        let why = st.first_error.as_ref().map_or(String::new(), |e| format!("; first error: {e}"));
        format!("no reply from {target} ({} of {} received{why})", st.received, st.transmitted)
    })?;
    Ok((max, details))
}

fn traffic(env: &Env<'_>, c: &Case) -> Result<crate::rx::Report, String> {
    let size = c.size()?;
    let mut gen = GenConfig { size, flows: c.flows.unwrap_or(1), vlan: c.vlan, ..GenConfig::default() };
    let tx = TxConfig {
        rate_pps: c.rate_pps,
        duration: Duration::from_secs_f64(c.duration.unwrap_or(1.0)),
        ..TxConfig::default()
    };
    let max = gen.buf_len(size.max());
    match env {
        Env::Netns(t) => {
            gen.src_mac = SENDER_MAC;
            gen.dst_mac = RECEIVER_MAC;
            gen.src_ip = SENDER_IP;
            gen.dst_ip = RECEIVER_IP;
            let cfg = TrialConfig { gen, tx, ..TrialConfig::default() };
            let txs = PortSpec::AfPacket { iface: "s0".into(), queues: 0, qdisc_bypass: false };
            let rxs = PortSpec::AfPacket { iface: "r0".into(), queues: 0, qdisc_bypass: false };
            run_trial(
                &cfg,
                Side { open: opener(txs, 0, max, false), ns: Some(&t.sender) },
                Side { open: opener(rxs, 1, max, true), ns: Some(&t.receiver) },
            )
        }
        Env::Pods(p) => {
            if let Some(a) = p.src_ip {
                gen.src_ip = a;
            }
            if let Some(a) = p.dst_ip {
                gen.dst_ip = a;
            }
            if let Some(m) = &p.dst_mac {
                gen.dst_mac = parse_mac(m)?;
            }
            let txs: PortSpec = p.tx_port.as_deref().unwrap_or("").parse().map_err(|e: SpecError| e.to_string())?;
            let rxs: PortSpec = p.rx_port.as_deref().unwrap_or("").parse().map_err(|e: SpecError| e.to_string())?;
            let cfg = TrialConfig { gen, tx, ..TrialConfig::default() };
            run_trial(
                &cfg,
                Side { open: opener(txs, 0, max, false), ns: None },
                Side { open: opener(rxs, 1, max, true), ns: None },
            )
        }
    }
}

/// Runs one case.
pub fn run_case(env: &Env<'_>, c: &Case) -> CaseResult {
    let (sla, limit, upper) = match c.kind {
        Kind::Ping => (format!("max_rtt <= {} ms", c.sla.max_rtt.unwrap_or(0.0)), c.sla.max_rtt, true),
        Kind::Throughput => (format!("min_mpps >= {}", c.sla.min_mpps.unwrap_or(0.0)), c.sla.min_mpps, false),
        Kind::Latency => (format!("max_p99_us <= {}", c.sla.max_p99_us.unwrap_or(0.0)), c.sla.max_p99_us, true),
        Kind::Loss => (format!("max_loss_pct <= {}", c.sla.max_loss_pct.unwrap_or(0.0)), c.sla.max_loss_pct, true),
    };
    let limit = limit.unwrap_or(0.0);
    let measured = match c.kind {
        Kind::Ping => ping(env, c),
        k => traffic(env, c).map(|r| {
            let m = match k {
                Kind::Throughput => r.rx_pps.unwrap_or(0.0) / 1e6,
                Kind::Latency => {
                    if r.latency.count == 0 {
                        f64::INFINITY
                    } else {
                        r.latency.p99_ns as f64 / 1e3
                    }
                }
                _ => r.loss_pct.unwrap_or(100.0),
            };
            (m, serde_json::to_value(&r).unwrap_or_default())
        }),
    };
    match measured {
        Ok((m, details)) => CaseResult {
            name: c.name.clone(),
            kind: c.kind,
            sla,
            measured: m.is_finite().then_some(m),
            pass: if upper { m <= limit } else { m >= limit },
            error: None,
            details,
        },
        Err(e) => CaseResult {
            name: c.name.clone(),
            kind: c.kind,
            sla,
            measured: None,
            pass: false,
            error: Some(e),
            details: serde_json::Value::Null,
        },
    }
}

/// Finds the VNF binary: `explicit`, else `$VNF_L2FWD`, else `vnf-l2fwd` on `PATH`.
pub fn find_vnf(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("VNF_L2FWD") {
        return Some(PathBuf::from(p));
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join("vnf-l2fwd")).find(|p| p.is_file())
}

/// Runs a suite: builds the topology (netns), runs every case in order, tears down.
///
/// # Errors
/// The topology cannot be built (every case is then reported failed by the caller).
pub fn run_suite(s: &Suite, vnf: Option<&Path>) -> Result<SuiteResult, String> {
    let name = s.name.clone().unwrap_or_else(|| "suite".into());
    let cases = match s.topology {
        Topology::Netns => {
            let vnf = find_vnf(vnf).ok_or("vnf-l2fwd not found: pass --vnf PATH or set VNF_L2FWD")?;
            let topo = NetnsTopo::build(&vnf)?;
            s.cases.iter().map(|c| run_case(&Env::Netns(&topo), c)).collect::<Vec<_>>()
        }
        Topology::Pods => {
            let p = s.pods.clone().unwrap_or(Pods {
                ping_target: None,
                tx_port: None,
                rx_port: None,
                src_ip: None,
                dst_ip: None,
                dst_mac: None,
            });
            s.cases.iter().map(|c| run_case(&Env::Pods(&p), c)).collect()
        }
    };
    Ok(SuiteResult { suite: name, pass: cases.iter().all(|c| c.pass), cases })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = "name: t\ntopology: netns\ncases:\n  - {name: p, type: ping, count: 2, interval: 0.2, sla: {max_rtt: 10}}\n  - {name: t, type: throughput, rate_pps: 100, frame_size: imix, sla: {min_mpps: 0.0001}}\n";

    #[test]
    fn parses_a_suite() {
        let s = Suite::parse(OK).unwrap();
        assert_eq!(s.cases.len(), 2);
        assert_eq!(s.cases[1].size(), Ok(FrameSize::Imix));
    }

    #[test]
    fn errors_name_the_field() {
        for (text, field) in [
            (OK.replace("max_rtt", "max_rt"), "max_rt"),
            (OK.replace("min_mpps", "max_p99_us"), "sla.min_mpps"),
            (OK.replace("type: ping", "type: pong"), "pong"),
            (OK.replace("imix", "12"), "frame_size"),
            (OK.replace("interval: 0.2", "interval: -1"), "interval"),
            (OK.replace("topology: netns", "topology: pods"), "pods"),
            ("topology: netns\ncases: []\n".to_string(), "cases"),
            (OK.replace("count: 2", "count: 2, target: 10.0.0.1"), "target"),
        ] {
            let e = Suite::parse(&text).unwrap_err().to_string();
            assert!(e.contains(field), "{field}: {e}");
        }
    }

    #[test]
    fn ping_targets_by_topology() {
        let pods = "name: t\ntopology: pods\npods: {ping_target: vnf-l2fwd.vnf.svc.cluster.local}\ncases:\n  - {name: p, type: ping, sla: {max_rtt: 10}}\n";
        let s = Suite::parse(pods).unwrap();
        assert_eq!(s.cases[0].target.as_deref(), Some("vnf-l2fwd.vnf.svc.cluster.local"));
        // A cluster pod address is fine in pods mode, not in the runner's own namespaces.
        assert!(Suite::parse(&pods.replace("vnf-l2fwd.vnf.svc.cluster.local", "10.244.1.7")).is_ok());
        for (text, field) in [
            (pods.replace("vnf-l2fwd.vnf.svc.cluster.local", "255.255.255.255"), "unicast"),
            (pods.replace("vnf-l2fwd.vnf.svc.cluster.local", "'bad host!'"), "host name"),
            (OK.replace("count: 2", "count: 2, target: vnf-l2fwd"), "host names only"),
            (OK.replace("count: 2", "count: 2, timeout: 0"), "timeout"),
            (OK.replace("count: 2", "count: 2, socket: packet"), "packet"),
            (OK.replace("interval: 0.2", "interval: 0.0001"), "interval"),
        ] {
            let e = Suite::parse(&text).unwrap_err().to_string();
            assert!(e.contains(field), "{field}: {e}");
        }
        let s = Suite::parse(&OK.replace("count: 2", "count: 2, socket: dgram, timeout: 2")).unwrap();
        assert_eq!((s.cases[0].socket, s.cases[0].timeout), (Some(SocketKind::Dgram), Some(2.0)));
        assert_eq!(resolve("198.18.0.9"), Ok(Ipv4Addr::new(198, 18, 0, 9)));
        assert_eq!(resolve("localhost"), Ok(Ipv4Addr::LOCALHOST));
    }
}
