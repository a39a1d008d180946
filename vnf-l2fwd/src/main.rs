//! `vnf-l2fwd`: the VNF binary. See `vnf-l2fwd --help` and README.md.
//!
//! Exit codes: 0 success; 1 a runtime failure (a worker panicked, an mbuf leaked, a pcap
//! replay ended at a bad record); 2 bad command line or configuration (the message names the
//! option); 3 a port or pool could not be opened (the message says what to do).

mod config_file;
mod ctl;
mod demo_l3;
mod dpdk_ports;
mod lcores;
mod limits;
mod metrics;
mod modes;
mod ports;
mod reload;
mod stats;

use clap::{Args, CommandFactory, Parser, Subcommand};
use dataplane::fwd::L2Fwd;
use dataplane::lcore::{stop_on_signals, Forward, Lcore, Runtime};
use dataplane::mbuf::{Mempool, MempoolConfig};
use dataplane::port::{MacAddr, Port};
use ports::PortSpec;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(name = "vnf-l2fwd", version, about = "l2fwd/l3fwd VNF on the dataplane library")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// l2fwd between two null ports on one pinned core: no privileges, no NIC, no DPDK.
    Demo(DemoArgs),
    /// DPDK l2fwd: forward between port pairs, rewriting MAC addresses.
    L2fwd(modes::L2fwdArgs),
    /// List network devices and bind them to vfio-pci, like dpdk-devbind.py.
    Devbind(DevbindArgs),
    /// DPDK l3fwd: route IPv4/IPv6 by LPM or exact match (SIGHUP reloads the route files).
    L3fwd(modes::L3fwdArgs),
    /// testpmd io mode: forward untouched to the paired port.
    Io(modes::TestpmdArgs),
    /// testpmd macswap mode: swap the MAC addresses and forward to the paired port.
    Macswap(modes::TestpmdArgs),
    /// testpmd rxonly mode: receive and free.
    Rxonly(modes::TestpmdArgs),
    /// testpmd txonly mode: send generated IPv4/UDP frames on every enabled port.
    Txonly(modes::TxonlyArgs),
    /// testpmd icmpecho mode: answer ICMP echo and ARP requests out of the receiving port.
    Icmpecho(modes::IcmpechoArgs),
    /// Kubernetes: show the ports, CPUs and hugepages this pod was given, and the command to run.
    Discover(DiscoverArgs),
    /// What this node offers a data plane (CPU, extensions, NUMA, hugepages, IOMMU, SR-IOV, AF_XDP).
    NodeFeatures(NodeFeaturesArgs),
    /// Control a running VNF.
    Ctl(CtlArgs),
}

#[derive(Args, Debug)]
struct CtlArgs {
    #[command(subcommand)]
    cmd: CtlCmd,
}

#[derive(Subcommand, Debug)]
enum CtlCmd {
    /// Send SIGHUP to the running VNF: l3fwd reloads its route files. Waits for the outcome
    /// (exit 0 when reloaded, 1 when rejected) when the VNF has a pidfile.
    Reload(CtlTarget),
}

#[derive(Args, Debug)]
struct CtlTarget {
    /// The VNF's process id (instead of reading it from the pidfile).
    #[arg(long)]
    pid: Option<i32>,
    /// The VNF's pidfile; the result of the reload is read from `<pidfile>.reload` when the
    /// pidfile names the signalled process.
    #[arg(long, default_value = ctl::DEFAULT_PIDFILE)]
    pidfile: std::path::PathBuf,
    /// Seconds to wait for the outcome of the reload (1-86400). A big route table takes a
    /// while to build; the VNF goes on forwarding with its current table meanwhile.
    #[arg(long, value_name = "SECONDS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=86400))]
    timeout: u64,
}

#[derive(Args, Debug)]
struct DiscoverArgs {
    /// The downward API annotations file.
    #[arg(long, default_value = vnf_l2fwd::discover::DEFAULT_PODNETINFO)]
    podnetinfo: std::path::PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Root of the sysfs/procfs tree (for tests).
    #[arg(long, default_value = "/", hide = true)]
    root: std::path::PathBuf,
}

#[derive(Args, Debug)]
struct NodeFeaturesArgs {
    /// Root of the /proc and /sys trees to read (a node's root, e.g. the host's / mounted at
    /// /host: it must hold proc/cpuinfo).
    #[arg(long, default_value = "/")]
    root: std::path::PathBuf,
    /// Output format: table, json, or nfd (a Node Feature Discovery features.d file).
    #[arg(long, default_value = "table", value_parser = ["table", "json", "nfd"])]
    format: String,
    /// Write to this file (atomically: a temporary file renamed over it) instead of stdout.
    #[arg(long)]
    output: Option<std::path::PathBuf>,
    /// Repeat every this many seconds (1-86400), until SIGTERM (for a DaemonSet).
    #[arg(long)]
    every: Option<u64>,
}

#[derive(Args, Debug)]
struct DemoArgs {
    /// Seconds to run.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// CPU to pin the worker to (default: the last CPU this process may use).
    #[arg(long)]
    cpu: Option<usize>,
    /// Statistics period in seconds (0 = only the final summary; at most 86400).
    #[arg(short = 'T', long = "stats-period", default_value_t = 1)]
    period: u64,
    /// Receive burst size (1-512).
    #[arg(long = "rx-burst", default_value_t = 32)]
    rx_burst: usize,
    /// l2fwd (swap ports, rewrite MACs) or l3fwd (IPv4/UDP frames routed by LPM).
    #[arg(long, default_value = "l2fwd", value_parser = ["l2fwd", "l3fwd"])]
    mode: String,
    /// l3fwd: random /24 routes in the table besides the two the frames use.
    #[arg(long, default_value_t = 1000)]
    routes: usize,
}

#[derive(Args, Debug)]
struct DevbindArgs {
    /// Show the status of all network devices.
    #[arg(long, short = 's')]
    status: bool,
    /// Bind to this driver (only vfio-pci is supported).
    #[arg(long, short = 'b', requires = "devices")]
    bind: Option<String>,
    /// Unbind from the current driver and give the device back to its kernel driver.
    #[arg(long, short = 'u', requires = "devices")]
    unbind: bool,
    /// Bind even an interface that carries the default route or is up with routes.
    #[arg(long)]
    force: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Root of the sysfs/procfs tree (for tests).
    #[arg(long, default_value = "/", hide = true)]
    root: std::path::PathBuf,
    /// PCI addresses or interface names.
    devices: Vec<String>,
}

fn parse_portmask(s: &str) -> Result<u32, String> {
    let h = s.trim_start_matches("0x").trim_start_matches("0X");
    let v = u32::from_str_radix(h, 16).map_err(|_| format!("port mask {s:?} is not a hex number"))?;
    if v == 0 {
        return Err("port mask 0 enables no port".into());
    }
    Ok(v)
}

/// A command-line or configuration error (exit 2), or a setup error (exit 3).
#[derive(Debug)]
enum Failure {
    Usage(String),
    Setup(String),
    Runtime(String),
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Failure::Usage(_) => 2,
            Failure::Setup(_) => 3,
            Failure::Runtime(_) => 1,
        }
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let file = config_file::named_file(&args);
    let args = match config_file::expand(args, &Cli::command()) {
        Ok(a) => a,
        Err(m) => {
            eprintln!("vnf-l2fwd: {m}");
            return ExitCode::from(2);
        }
    };
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            if let (Some(f), true) = (&file, e.use_stderr()) {
                eprintln!("vnf-l2fwd: note: options were read from {}", f.display());
            }
            e.exit()
        }
    };
    let r = match cli.cmd {
        Cmd::Demo(a) => demo(a),
        Cmd::L2fwd(a) => modes::l2fwd(a),
        Cmd::Devbind(a) => devbind(a),
        Cmd::Discover(a) => discover(a),
        Cmd::NodeFeatures(a) => node_features(a),
        Cmd::Ctl(a) => ctl_cmd(a),
        Cmd::L3fwd(a) => modes::l3fwd(a),
        Cmd::Io(a) => modes::testpmd(a, modes::Mode::Io),
        Cmd::Macswap(a) => modes::testpmd(a, modes::Mode::MacSwap),
        Cmd::Rxonly(a) => modes::testpmd(a, modes::Mode::RxOnly),
        Cmd::Txonly(a) => modes::txonly(a),
        Cmd::Icmpecho(a) => modes::icmpecho(a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            let (Failure::Usage(m) | Failure::Setup(m) | Failure::Runtime(m)) = &f;
            eprintln!("vnf-l2fwd: {m}");
            ExitCode::from(f.code())
        }
    }
}

/// Parses "(0,1)(2,3)" into pairs.
fn parse_portmap(s: &str) -> Result<Vec<(u16, u16)>, Failure> {
    let bad = |m: &str| Failure::Usage(format!("--portmap {s:?}: {m}; expected e.g. \"(0,1)(2,3)\""));
    let mut out = vec![];
    let mut rest = s.trim();
    while !rest.is_empty() {
        let r = rest.strip_prefix('(').ok_or_else(|| bad("missing '('"))?;
        let (inner, tail) = r.split_once(')').ok_or_else(|| bad("missing ')'"))?;
        let (a, b) = inner.split_once(',').ok_or_else(|| bad("a pair needs two ports"))?;
        let a: u16 = a.trim().parse().map_err(|_| bad("port is not a number"))?;
        let b: u16 = b.trim().parse().map_err(|_| bad("port is not a number"))?;
        out.push((a, b));
        rest = tail.trim_start_matches(',').trim();
    }
    if out.is_empty() {
        return Err(bad("no pair"));
    }
    Ok(out)
}

/// The last CPU this process may run on (its cpuset, as in a container).
fn default_cpu() -> Option<usize> {
    allowed_cpus().last().copied()
}

/// The CPUs this process may run on, from /proc/self/status.
fn allowed_cpus() -> Vec<usize> {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Cpus_allowed_list:")).map(|l| l[18..].trim().to_string()))
        .map(|list| parse_cpu_list(&list))
        .unwrap_or_default()
}

/// Parses a kernel CPU list like "0-3,8,10-11".
fn parse_cpu_list(s: &str) -> Vec<usize> {
    let mut v = vec![];
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                    v.extend(a..=b.min(a + 4096));
                }
            }
            None => {
                if let Ok(c) = part.parse() {
                    v.push(c);
                }
            }
        }
    }
    v
}

/// After the ports are closed: `Ok(message)` when every mbuf is back, `Err(message)` if not.
type LeakCheck = Box<dyn Fn() -> Result<String, String>>;

/// Makes the frame source a txonly lcore polls for a port, instead of its receive queue.
type Sources<B> = Box<dyn FnMut(u16) -> Result<dataplane::port::BoxRx<B>, Failure>>;

struct RunSetup<P: Port> {
    ports: Vec<P>,
    period: u64,
    duration: Option<f64>,
    leak_check: LeakCheck,
    show_mpps: bool,
    /// Ports to poll and send on (bit per port id).
    enabled: u32,
    /// Called by the control loop every 20 ms until it returns None (route reload on
    /// SIGHUP, `reload::RouteReload::poll`); a returned status is written beside the pidfile
    /// for `ctl reload`. Dropped when the loop ends, which abandons a reload in progress.
    tick: Option<Box<dyn FnMut() -> Option<ctl::ReloadStatus>>>,
    metrics: Option<metrics::Server>,
    json: bool,
    /// Route-table reload statistics (l3fwd), shown with the other statistics.
    reload: Option<Arc<metrics::ReloadStats>>,
    /// The lcores and the queues they poll.
    plan: lcores::Plan,
    /// None: no pidfile; Some(None): the default one when writable; Some(Some(p)): `p`.
    pidfile: Option<Option<std::path::PathBuf>>,
    /// txonly: generators polled instead of the plan's receive queues.
    sources: Option<Sources<P::Buf>>,
    /// The mode's own figures for the final summary.
    items: Vec<stats::SummaryItem>,
}

/// The counters of every port, for metrics and JSON output.
fn samples<P: Port>(rt: &Runtime, ports: &[P]) -> Vec<metrics::PortSample> {
    stats::port_lines(rt, ports.len())
        .into_iter()
        .zip(ports)
        .map(|(line, p)| {
            let info = p.info();
            metrics::PortSample { name: info.name, driver: info.driver, line, hw: p.stats(), link: p.link() }
        })
        .collect()
}

/// The leak check of one of our mempools.
fn pool_check(pool: Mempool) -> LeakCheck {
    Box::new(move || match pool.in_use() {
        0 => Ok(format!("All {} mbufs returned to the pool: no leak.", pool.size())),
        n => Err(format!("{n} mbufs did not return to pool {:?}", pool.config().name)),
    })
}

/// Builds the plan's lcores (each with its rx queues, tx queue `k` on every enabled port and
/// its own clone of stage `fwd`) and runs them until the duration or a signal.
fn run_l2fwd<P: Port, F: Forward<P::Buf> + Clone + 'static>(
    mut s: RunSetup<P>,
    fwd: F,
    rx_burst: usize,
    tx_burst: usize,
    idle_sleep_us: u64,
) -> Result<(), Failure> {
    let nl = s.plan.lcores.len();
    let mut lcores = Vec::with_capacity(nl);
    for (k, lp) in s.plan.lcores.iter().enumerate() {
        let name = lp.cpu.map_or_else(|| k.to_string(), |c| c.to_string());
        let mut l = Lcore::new(&name, lp.cpu, fwd.clone());
        l.set_rx_burst(rx_burst).map_err(|e| Failure::Usage(e.to_string()))?;
        l.set_tx_burst(tx_burst).map_err(|e| Failure::Usage(e.to_string()))?;
        l.set_idle_sleep_us(idle_sleep_us).map_err(|e| Failure::Usage(e.to_string()))?;
        for &(port, q) in &lp.rx {
            if let Some(make) = s.sources.as_mut() {
                l.add_source(port, make(port)?);
                continue;
            }
            let p = s.ports.get_mut(port as usize).ok_or_else(|| Failure::Usage(format!("no port {port}")))?;
            let info = p.info();
            if s.plan.implicit && info.rx_queues == 0 {
                continue;
            }
            if q >= info.rx_queues {
                return Err(Failure::Setup(format!(
                    "port {port} ({}) has {} rx queue(s); lcore {name} polls queue {q}",
                    info.name, info.rx_queues
                )));
            }
            l.add_rx(port, p.rx_queue(q).map_err(|e| Failure::Setup(e.to_string()))?);
        }
        for (id, p) in s.ports.iter_mut().enumerate().filter(|(id, _)| s.enabled & (1 << id) != 0) {
            let info = p.info();
            if info.tx_queues == 0 {
                continue;
            }
            if k as u16 >= info.tx_queues {
                return Err(Failure::Setup(format!(
                    "port {id} ({}) has {} tx queue(s); {nl} lcores need one each",
                    info.name, info.tx_queues
                )));
            }
            l.add_tx(id as u16, p.tx_queue(k as u16).map_err(|e| Failure::Setup(e.to_string()))?)
                .map_err(|e| Failure::Setup(e.to_string()))?;
        }
        lcores.push(l);
    }
    // The lcores have their clones. Kept, the template would hold l3fwd's first route table
    // for the whole run, past reloads.
    drop(fwd);
    if nl > 1 {
        for (k, lp) in s.plan.lcores.iter().enumerate() {
            println!("Lcore {} (tx queue {k}) polls (port, queue) {:?}", lp.cpu.unwrap_or(k), lp.rx);
        }
    }
    let mut pidfile = match &s.pidfile {
        Some(p) => ctl::PidFile::create(p.as_deref()).map_err(Failure::Setup)?,
        None => None,
    };
    if let Some(p) = &pidfile {
        eprintln!("vnf-l2fwd: pid {} in {}", std::process::id(), p.path().display());
    }
    if s.tick.is_none() {
        // SIGHUP (`ctl reload`) must not kill a mode with nothing to reload.
        let hup = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())
            .map_err(|e| Failure::Setup(format!("cannot install the SIGHUP handler: {e}")))?;
        let mut seq = 0;
        s.tick = Some(Box::new(move || {
            hup.swap(false, Ordering::Relaxed).then(|| {
                seq += 1;
                let msg = "nothing to reload in this mode (only l3fwd reloads)".to_string();
                log::info!("reload {seq} (SIGHUP): {msg}");
                ctl::ReloadStatus { seq, state: ctl::ReloadState::Ignored, msg }
            })
        }));
    }
    let stop = Arc::new(AtomicBool::new(false));
    stop_on_signals(stop.clone()).map_err(|e| Failure::Setup(format!("cannot install signal handlers: {e}")))?;
    let start = Instant::now();
    let mut rt = Runtime::launch(lcores).map_err(|e| Failure::Setup(e.to_string()))?;
    let nports = s.ports.len();
    // Link state, as DPDK's l2fwd prints it at start; changes are logged while running.
    let mut links: Vec<_> = s.ports.iter().map(|p| p.link()).collect();
    for (id, l) in links.iter().enumerate() {
        println!("{}", stats::link_line(id, l));
        if !l.up {
            log::warn!(
                "port {id} ({}): link is down at start (interface down or no carrier): the port receives and sends \
                 nothing until it comes up",
                s.ports[id].info().name
            );
        }
    }
    let mut next_link = Instant::now() + Duration::from_millis(500);
    let mut next_stats = Instant::now() + Duration::from_secs(s.period.max(1));
    let mut next_metrics = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(20));
        if stop.load(Ordering::Relaxed) || rt.finished() {
            break;
        }
        if let Some(m) = &s.metrics {
            if Instant::now() >= next_metrics {
                next_metrics += Duration::from_millis(250);
                let mut text = metrics::render_prometheus(
                    &samples(&rt, &s.ports),
                    &rt.drop_stats(),
                    start.elapsed().as_secs_f64(),
                );
                if let Some(r) = &s.reload {
                    text.push_str(&r.prometheus());
                }
                m.publish(text);
            }
        }
        if let Some(t) = s.tick.as_mut() {
            while let Some(status) = t() {
                if let Some(pf) = &mut pidfile {
                    pf.write_reload_status(&status);
                }
            }
        }
        if let Some(d) = s.duration {
            if start.elapsed().as_secs_f64() >= d {
                break;
            }
        }
        if Instant::now() >= next_link {
            next_link += Duration::from_millis(500);
            for (id, (p, was)) in s.ports.iter().zip(links.iter_mut()).enumerate() {
                let now = p.link();
                if now.up != was.up {
                    eprintln!("vnf-l2fwd: {} (link state change)", stats::link_line(id, &now));
                }
                *was = now;
            }
        }
        if s.period > 0 && Instant::now() >= next_stats {
            next_stats += Duration::from_secs(s.period);
            if s.json {
                println!(
                    "{}",
                    metrics::render_json(
                        &samples(&rt, &s.ports),
                        &rt.drop_stats(),
                        &rt.busy_totals(),
                        start.elapsed().as_secs_f64(),
                    )
                );
            } else {
                let mut block = stats::render(&stats::port_lines(&rt, nports), &rt.drop_stats());
                if let Some(r) = &s.reload {
                    block.push_str(&r.text());
                }
                stats::print_live(&block);
            }
        }
    }
    // A reload in progress is abandoned, its builder thread not waited for.
    s.tick = None;
    rt.stop();
    let failed = rt.join();
    let elapsed = start.elapsed().as_secs_f64();
    let lines = stats::port_lines(&rt, nports);
    if let Some(m) = &s.metrics {
        let mut text = metrics::render_prometheus(&samples(&rt, &s.ports), &rt.drop_stats(), elapsed);
        if let Some(r) = &s.reload {
            text.push_str(&r.prometheus());
        }
        m.publish(text);
    }
    let lcore_lines = stats::lcore_lines(&rt, &s.plan, nports);
    // What the backends met beyond their counters (pcap: oversize frames, a bad record).
    let (notes, input_fault) = stats::port_notes(&s.ports);
    let fwd_total: u64 = lines.iter().map(|l| l.sent).sum();
    // JSON: one object, printed once the leak check has run (see `stats`).
    let json =
        s.json.then(|| metrics::json_value(&samples(&rt, &s.ports), &rt.drop_stats(), &rt.busy_totals(), elapsed));
    if !s.json {
        print!("{}", stats::render(&lines, &rt.drop_stats()));
        print!("{notes}");
        if let Some(r) = &s.reload {
            print!("{}", r.text());
        }
        print!("{}", stats::render_lcores(&lcore_lines));
        if let Some(c) = rt.busy_cycles_per_packet() {
            println!("{}", stats::cycles_line(c, dataplane::arch::cycles_per_sec()));
        }
        if s.show_mpps {
            println!("Forwarded {fwd_total} packets in {elapsed:.2} s: {}", stats::rate(fwd_total as f64 / elapsed));
        }
    }
    let cycles = rt.busy_cycles_per_packet();
    drop(rt);
    s.ports.clear();
    let leak = failed.is_empty().then(|| (s.leak_check)());
    let items: Vec<(&'static str, u64)> = s.items.iter().map(|i| (i.key, (i.value)())).collect();
    if let Some(mut v) = json {
        let f = stats::Final {
            elapsed_s: elapsed,
            forwarded: fwd_total,
            lcores: lcore_lines,
            busy_cycles_per_packet: cycles,
            mbufs: leak.clone().map(|r| r.unwrap_or_else(|e| e)),
            panicked: failed.clone(),
            route_table: s.reload.as_ref().map(|r| {
                [&r.generation, &r.routes_v4, &r.routes_v6, &r.ok, &r.rejected].map(|a| a.load(Ordering::Relaxed))
            }),
            items,
        };
        v["summary"] = stats::summary_json(&f);
        v["summary"]["notes"] = notes.lines().map(|l| l.trim().to_string()).collect::<Vec<_>>().into();
        println!("{v}");
    } else {
        if let Some(Ok(m)) = &leak {
            println!("{m}");
        }
        for (i, (_, n)) in s.items.iter().zip(&items) {
            println!("{}", (i.text)(*n));
        }
    }
    if !failed.is_empty() {
        return Err(Failure::Runtime(format!("lcore(s) {} panicked", failed.join(", "))));
    }
    if let Some(Err(m)) = leak {
        return Err(Failure::Runtime(m));
    }
    input_fault.map_or(Ok(()), |m| Err(Failure::Runtime(m)))
}

fn make_pool(n: u32) -> Result<Mempool, Failure> {
    Mempool::new(MempoolConfig::new("mbuf_pool", n)).map_err(|e| Failure::Setup(e.to_string()))
}

fn demo(a: DemoArgs) -> Result<(), Failure> {
    if a.duration.is_nan() || a.duration <= 0.0 || a.duration > 86400.0 {
        return Err(Failure::Usage(format!("--duration {} must be between 0 and 86400 seconds", a.duration)));
    }
    limits::check_period(a.period).map_err(Failure::Usage)?;
    if a.rx_burst == 0 || a.rx_burst > dataplane::burst::MAX_BURST {
        return Err(Failure::Usage(format!(
            "--rx-burst {} must be 1 to {} (the largest burst)",
            a.rx_burst,
            dataplane::burst::MAX_BURST
        )));
    }
    let allowed = allowed_cpus();
    if let Some(c) = a.cpu.filter(|c| !allowed.is_empty() && !allowed.contains(c)) {
        return Err(Failure::Usage(format!(
            "--cpu {c} is not in this process's CPU set {}",
            vnf_l2fwd::node_features::fmt_cpus(&allowed)
        )));
    }
    if a.mode == "l3fwd" && a.routes > 1_000_000 {
        return Err(Failure::Usage(format!("--routes {} must be at most 1000000", a.routes)));
    }
    let pool = make_pool(8192)?;
    let cpu = a.cpu.or_else(default_cpu);
    let mut ports = vec![];
    for id in 0..2u16 {
        if a.mode == "l3fwd" {
            break; // its ports carry template frames
        }
        ports.push(
            ports::open(id, &PortSpec::Null { size: 64, queues: 1 }, &pool, false)
                .map_err(|e| Failure::Setup(e.to_string()))?,
        );
    }
    let setup = |ports| RunSetup {
        ports,
        period: a.period,
        duration: Some(a.duration),
        leak_check: pool_check(pool.clone()),
        show_mpps: true,
        metrics: None,
        json: false,
        enabled: u32::MAX,
        tick: None,
        reload: None,
        plan: lcores::single(cpu, &[0, 1]),
        pidfile: None,
        sources: None,
        items: vec![],
    };
    if a.mode == "l3fwd" {
        return demo_l3fwd(&a, cpu, &pool, setup);
    }
    let mut fwd = L2Fwd::new();
    fwd.pair(0, 1);
    for (id, p) in ports.iter().enumerate() {
        fwd.set_port_mac(id as u16, p.mac());
        println!("Port {id}: {} ({}) MAC {}", p.info().name, p.info().driver, p.mac());
    }
    println!("l2fwd demo: null0 <-> null1 on one worker ({}) for {} s", worker_cpu(cpu), a.duration);
    run_l2fwd(setup(ports), fwd, a.rx_burst, 32, 0)
}

/// Where a worker runs, for messages: `cpu 3`, or `not pinned`.
fn worker_cpu(cpu: Option<usize>) -> String {
    cpu.map_or_else(|| "not pinned".to_string(), |c| format!("cpu {c}"))
}

/// The l3fwd demo: null ports whose frames are IPv4/UDP to the other port's network, routed
/// through a table of `--routes` random /24s.
fn demo_l3fwd(
    a: &DemoArgs,
    cpu: Option<usize>,
    pool: &Mempool,
    setup: impl FnOnce(Vec<ports::AnyPort>) -> RunSetup<ports::AnyPort>,
) -> Result<(), Failure> {
    use dataplane::l3fwd::{L3Fwd, L3FwdTables, TableHandle};
    use dataplane::port::null::{NullConfig, NullPort};
    let mut ports = vec![];
    for id in 0..2u16 {
        let mut c = NullConfig::new(id);
        let peer = MacAddr::local(0x10 + id as u8);
        let src = demo_l3::dst_of_port(1 - id);
        c.template = Some(demo_l3::frame(c.mac, peer, src, demo_l3::dst_of_port(id)));
        ports
            .push(ports::AnyPort::Null(NullPort::new(id, c, pool.clone()).map_err(|e| Failure::Setup(e.to_string()))?));
    }
    let routes = demo_l3::routes(a.routes);
    let tables = L3FwdTables::from_lpm_routes(&routes, &[]).map_err(|e| Failure::Setup(e.to_string()))?;
    let mut fwd = L3Fwd::new(&TableHandle::new(tables));
    for (id, p) in ports.iter().enumerate() {
        fwd.set_port_mac(id as u16, p.mac());
        println!("Port {id}: {} ({}) MAC {}", p.info().name, p.info().driver, p.mac());
    }
    println!(
        "l3fwd demo: null0 <-> null1, IPv4/UDP to {} and {} through {} LPM routes, on one worker ({}) for {} s",
        demo_l3::dst_of_port(0),
        demo_l3::dst_of_port(1),
        routes.len(),
        worker_cpu(cpu),
        a.duration
    );
    run_l2fwd(setup(ports), fwd, a.rx_burst, 32, 0)
}

/// The lcore plan from `--config` / `-q` / `--cpu`, polling every receive queue a kernel or
/// PCI port spreads its traffic over, with the port specs' queues fitted to it
/// (`Plan::fit_spec`: what it needs where `queues=` is not given, checked where it is).
fn make_plan(
    config: Option<&str>,
    q: Option<usize>,
    cpu: Option<usize>,
    enabled: &[u16],
    specs: &mut [PortSpec],
) -> Result<lcores::Plan, Failure> {
    let mut plan = lcores::plan(config, q, cpu, enabled, &allowed_cpus()).map_err(Failure::Usage)?;
    for (id, spec) in specs.iter_mut().enumerate() {
        let id = id as u16;
        let explicit = lcores::spread_rx_queues(spec).is_some_and(|n| n > 0);
        plan.fit_spec(id, spec, enabled.contains(&id)).map_err(Failure::Usage)?;
        // Then every rx queue the port ends up with is polled; only a --config that leaves out
        // queues the operator asked for with queues= is an error.
        if let Some(n) = lcores::spread_rx_queues(spec) {
            plan.cover_rx_queues(id, n, config.is_some() && explicit).map_err(Failure::Usage)?;
        }
    }
    Ok(plan)
}

/// No --port: takes the pod's interfaces from Kubernetes discovery (and the worker CPU, when
/// --cpu is not given).
fn ports_from_discovery(
    podnetinfo: &std::path::Path,
    ports: &mut Vec<PortSpec>,
    cpu: &mut Option<usize>,
) -> Result<(), Failure> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let d = vnf_l2fwd::discover::discover(std::path::Path::new("/"), &env, podnetinfo)
        .map_err(|e| Failure::Usage(format!("no --port given and discovery failed: {e}")))?;
    for spec in d.port_specs() {
        let p: PortSpec = spec.parse().map_err(|e| Failure::Usage(format!("discovered port: {e}")))?;
        ports.push(p);
    }
    if ports.is_empty() {
        return Err(Failure::Usage("no --port given and discovery found no data port".into()));
    }
    if cpu.is_none() {
        *cpu = d.cpus.workers.first().or(d.cpus.effective.last()).copied();
    }
    eprintln!("vnf-l2fwd: ports from discovery: {:?}", d.port_specs());
    Ok(())
}

/// `vnf-l2fwd ctl reload`: SIGHUP to the VNF named by --pid or its pidfile.
fn ctl_cmd(a: CtlArgs) -> Result<(), Failure> {
    let CtlCmd::Reload(t) = a.cmd;
    let pid = match t.pid {
        Some(p) if p > 0 => p,
        Some(p) => return Err(Failure::Usage(format!("--pid {p} is not a process id"))),
        None => ctl::read_pid(&t.pidfile).map_err(Failure::Usage)?.ok_or_else(|| {
            Failure::Usage(format!("{}: no pidfile (is the VNF running? give --pid or --pidfile)", t.pidfile.display()))
        })?,
    };
    if !ctl::alive(pid) {
        return Err(Failure::Runtime(format!("pid {pid} is not running")));
    }
    let comm = ctl::comm(pid).unwrap_or_default();
    if !comm.is_empty() && !comm.starts_with("vnf-l2fwd") && !comm.starts_with("lcore-") {
        return Err(Failure::Usage(format!("pid {pid} is {comm:?}, not vnf-l2fwd")));
    }
    // The VNF records its reloads' states beside its pidfile. Our SIGHUP makes the reload
    // after the last one recorded now (queued behind it when it is running): wait for that
    // one's outcome.
    let status = (t.pid.is_none() || matches!(ctl::read_pid(&t.pidfile), Ok(Some(p)) if p == pid))
        .then(|| ctl::status_path(&t.pidfile));
    let before = status.as_deref().map(ctl::read_reload_statuses).unwrap_or_default();
    let ours = before.iter().map(|s| s.seq).max().unwrap_or(0) + 1;
    ctl::sighup(pid).map_err(|e| Failure::Runtime(format!("cannot signal pid {pid}: {e}")))?;
    println!("reload: SIGHUP sent to vnf-l2fwd pid {pid}");
    let Some(status) = status else {
        println!("reload: no pidfile for pid {pid}, so no result to wait for (see the VNF's log)");
        return Ok(());
    };
    let until = Instant::now() + Duration::from_secs(t.timeout);
    let mut shown: Option<ctl::ReloadStatus> = None;
    loop {
        let now = ctl::read_reload_statuses(&status);
        // Ours, or (should the history have moved past it) the first reload after it.
        if let Some(st) = now.iter().filter(|s| s.seq >= ours).min_by_key(|s| s.seq) {
            if st.state.is_final() {
                println!("reload: {}", st.msg);
                if st.state == ctl::ReloadState::Rejected {
                    return Err(Failure::Runtime(format!("pid {pid}: {}", st.msg)));
                }
                return Ok(());
            }
        }
        let latest = now.into_iter().max_by_key(|s| s.seq);
        if let Some(l) = latest.as_ref().filter(|l| l.state == ctl::ReloadState::Running) {
            if shown.as_ref() != Some(l) {
                match l.seq >= ours {
                    true => println!("reload: in progress: {}", l.msg),
                    false => println!("reload: queued behind reload {}, in progress: {}", l.seq, l.msg),
                }
                shown = Some(l.clone());
            }
        }
        // The VNF removes its pidfile as it exits (a reload in progress is then abandoned).
        if !ctl::alive(pid) || !matches!(ctl::read_pid(&t.pidfile), Ok(Some(p)) if p == pid) {
            return Err(Failure::Runtime(format!("pid {pid} exited before the reload finished")));
        }
        if Instant::now() >= until {
            let was = latest.map_or_else(|| "no status yet".to_string(), |l| l.line());
            return Err(Failure::Runtime(format!(
                "pid {pid} did not finish the reload within {} s ({}: {was}); it goes on: see the VNF's log, \
                 or wait longer with --timeout",
                t.timeout,
                status.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn devbind(a: DevbindArgs) -> Result<(), Failure> {
    use vfio::{devbind, status::Status, SysRoot};
    let root = SysRoot::new(&a.root);
    let err = |e: vfio::Error| Failure::Setup(e.to_string());
    if let Some(drv) = &a.bind {
        if drv != "vfio-pci" {
            return Err(Failure::Usage(format!("--bind {drv}: only vfio-pci is supported")));
        }
        for d in &a.devices {
            let addr = root.resolve(d).map_err(err)?;
            let out = devbind::bind_vfio(&root, &mut devbind::SysfsKernel, addr, a.force).map_err(err)?;
            println!("{addr}: bound to vfio-pci");
            if !out.group_offenders.is_empty() {
                println!(
                    "warning: IOMMU group {:?} is not viable until these are bound too: {:?}",
                    out.iommu_group, out.group_offenders
                );
            }
        }
    } else if a.unbind {
        for d in &a.devices {
            let addr = root.resolve(d).map_err(err)?;
            devbind::unbind(&root, &mut devbind::SysfsKernel, addr).map_err(err)?;
            println!("{addr}: unbound");
        }
    }
    if a.status || (a.bind.is_none() && !a.unbind) {
        let st = Status::read(&root).map_err(err)?;
        let out = if a.json { st.to_json() } else { st.to_text() };
        use std::io::Write;
        // A closed pipe (| head) is not an error worth a panic.
        let _ = std::io::stdout().write_all(out.as_bytes());
    }
    Ok(())
}

fn discover(a: DiscoverArgs) -> Result<(), Failure> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let d = vnf_l2fwd::discover::discover(&a.root, &env, &a.podnetinfo).map_err(|e| Failure::Setup(e.to_string()))?;
    if d.ports.is_empty() {
        log::warn!("discovery found no data port: the VNF would not run without --port");
    }
    print_out(&if a.json { d.to_json() } else { d.to_table() });
    Ok(())
}

fn node_features(a: NodeFeaturesArgs) -> Result<(), Failure> {
    if let Some(e) = a.every.filter(|e| !(1..=86400).contains(e)) {
        return Err(Failure::Usage(format!("--every {e} must be 1 to 86400 seconds")));
    }
    // Without the node's proc/cpuinfo the labels would say arch=unknown: a wrong --root (or a
    // missing host mount) is a usage error, not a node without features.
    let cpuinfo = a.root.join("proc/cpuinfo");
    if let Err(e) = std::fs::metadata(&cpuinfo) {
        let what = if a.root.is_dir() { format!("no {} ({e})", cpuinfo.display()) } else { "no such directory".into() };
        return Err(Failure::Usage(format!(
            "--root {}: {what}: not the root of a node's /proc and /sys",
            a.root.display()
        )));
    }
    let stop = Arc::new(AtomicBool::new(false));
    if a.every.is_some() {
        stop_on_signals(stop.clone()).map_err(|e| Failure::Setup(format!("cannot install signal handlers: {e}")))?;
    }
    loop {
        let f = vnf_l2fwd::node_features::NodeFeatures::read(&a.root);
        let out = match a.format.as_str() {
            "json" => f.to_json(),
            "nfd" => f.to_nfd(),
            _ => f.to_table(),
        };
        match &a.output {
            Some(p) => vnf_l2fwd::node_features::write_atomically(p, &out)
                .map_err(|e| Failure::Setup(format!("{}: {e}", p.display())))?,
            None => print_out(&out),
        }
        let Some(secs) = a.every else { return Ok(()) };
        let until = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < until {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Prints to stdout; a closed pipe (| head) is not an error worth a panic.
fn print_out(s: &str) {
    use std::io::Write;
    let _ = std::io::stdout().write_all(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portmap_and_masks() {
        assert_eq!(parse_portmap("(0,1)(2,3)").unwrap(), vec![(0, 1), (2, 3)]);
        assert_eq!(parse_portmap(" (0, 1),(3,2)").unwrap(), vec![(0, 1), (3, 2)]);
        for bad in ["", "(0,1", "0,1)", "(0)", "(a,1)"] {
            assert!(parse_portmap(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_portmask("0x3"), Ok(3));
        assert_eq!(parse_portmask("f"), Ok(15));
        assert!(parse_portmask("0").is_err());
        assert!(parse_portmask("zz").is_err());
        assert_eq!(parse_cpu_list("0-2,5"), vec![0, 1, 2, 5]);
    }
}
