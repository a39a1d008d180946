//! The forwarding subcommands, all on `run_l2fwd`'s lcores and sharing [`PortArgs`]: `l2fwd`
//! (DPDK l2fwd), `l3fwd` (DPDK l3fwd with SIGHUP route reload) and testpmd's forwarding modes
//! `io`, `macswap`, `rxonly`, `txonly` and `icmpecho`.

use crate::dpdk_ports;
use crate::ports::{self, PortSpec};
use crate::run::{
    make_plan, make_pool, pool_check, ports_from_discovery, run_l2fwd, Failure, LeakCheck, RunSetup, Sources,
};
use clap::Args;
use dataplane::fwd::{IcmpEcho, Io, L2Fwd, MacSwap, PortPairs, RxOnly};
use dataplane::l3fwd::{L3Fwd, L3FwdTables, Lookup, TableHandle};
use dataplane::lcore::Forward;
use dataplane::port::{BoxRx, MacAddr, Port, MAX_PORTS};
use dataplane::stats::Counter;
use dataplane::txgen::{BufPool, TxGen, TxGenConfig};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Options shared by every forwarding mode: ports, lcores, statistics.
#[derive(Args, Debug)]
pub struct PortArgs {
    /// Read options from this TOML file: one key per long option name (`port = ["null",
    /// "null"]`, `rule_ipv4 = "routes.txt"`, `stats-period = 5`, `promiscuous = true`);
    /// options given on the command line win. See docs/CONFIG.md.
    #[arg(long = "config-file", value_name = "FILE")]
    config_file: Option<PathBuf>,
    /// A port, repeatable, in port-id order: `null[,size=N][,queues=N]` (synthetic frames,
    /// size 14-1728), `ring` (a ring looped back), `pcap:rx=FILE[,tx=FILE]` (or tx= alone),
    /// `af_xdp:IFACE[,queues=N][,mode=auto|copy|zerocopy][,xdp=auto|native|generic][,busy_poll=USECS]`,
    /// `af_packet:IFACE[,queues=N][,qdisc_bypass=0|1]`, `pci:ADDRESS[,queues=N][,rxd=N][,txd=N]`
    /// (our drivers on vfio-pci), `vdev:DEVARGS` or a bare PCI address (DPDK ports, in a
    /// `dpdk` build). `queues=N` (1-64) opens exactly N queues; without it a port gets what
    /// the lcore plan needs. Without any --port, the ports come from Kubernetes discovery (see
    /// `vnf-l2fwd discover`).
    #[arg(long = "port")]
    ports: Vec<PortSpec>,
    /// The downward API annotations file discovery reads when no --port is given.
    #[arg(long, default_value = vnf_l2fwd::discover::DEFAULT_PODNETINFO)]
    podnetinfo: PathBuf,
    /// Write the process id here, for `vnf-l2fwd ctl reload` (default: /run/vnf-l2fwd.pid
    /// when writable).
    #[arg(long)]
    pidfile: Option<PathBuf>,
    /// Put kernel-interface ports in promiscuous mode (DPDK ports always are).
    #[arg(short = 'P', long)]
    promiscuous: bool,
    /// Extra DPDK EAL arguments, one string (e.g. --eal '-l 0-1 --socket-mem 1024').
    #[arg(long, allow_hyphen_values = true)]
    eal: Option<String>,
    /// Which driver a bare PCI address gets, given with --port or found by discovery: `dpdk`
    /// (DPDK's PMD; the default in a build with the `dpdk` feature) or `native` (our
    /// virtio-net and igb/igbvf drivers on vfio-pci, as `pci:ADDRESS` asks; the default and
    /// the only choice without DPDK).
    #[arg(long = "pci-driver", value_parser = ["native", "dpdk"])]
    pci_driver: Option<String>,
    /// Hex mask of the ports to use (default: all).
    #[arg(short = 'p', long, value_parser = parse_portmask)]
    portmask: Option<u32>,
    /// Statistics period in seconds (0 = off; at most 86400).
    #[arg(short = 'T', long = "stats-period", default_value_t = 10)]
    period: u64,
    /// Stop after this many seconds (default: run until SIGINT/SIGTERM).
    #[arg(long)]
    duration: Option<f64>,
    /// CPU to pin the worker to (the single lcore used without --config or -q).
    #[arg(long)]
    cpu: Option<usize>,
    /// Lcore map as in DPDK l3fwd: "(port,queue,lcore),..." — each lcore (a CPU id) polls
    /// the receive queues named for it and sends on tx queue <its index> of every port.
    #[arg(long)]
    config: Option<String>,
    /// Ports per lcore (DPDK l2fwd's -q): queue 0 of N ports per lcore, on this process's CPUs
    /// in order.
    #[arg(short = 'q', long = "queues-per-lcore")]
    queues_per_lcore: Option<usize>,
    /// Set from --config / -q / --cpu once the ports are known.
    #[arg(skip)]
    plan: crate::lcores::Plan,
    /// Receive burst size (1-512; a burst above a port's rx ring is never full).
    #[arg(long = "rx-burst", default_value_t = 32)]
    rx_burst: usize,
    /// Transmit buffer size (1-512, and at most every enabled port's tx ring: `txd=` of a PCI
    /// port).
    #[arg(long = "tx-burst", default_value_t = 32)]
    tx_burst: usize,
    /// Hand each received burst to the stage in chunks of at most N packets (0: whole bursts).
    /// Default: 8 when the packet memory is on 4 KiB pages (no hugepages, DPDK's --no-huge),
    /// where it saves a TLB miss per packet and pass; whole bursts on hugepages.
    #[arg(long = "rx-chunk")]
    rx_chunk: Option<usize>,
    /// Whether the packet memory is on 4 KiB pages; set once the ports are open.
    #[arg(skip)]
    small_pages: std::cell::Cell<bool>,
    /// Microseconds a worker sleeps per poll once 256 polls in a row found every queue empty
    /// (0, the default: always busy-poll). For shared or oversubscribed CPUs, as VPP's
    /// poll-sleep-usec: costs up to this much latency after a quiet spell. At most 1000000.
    #[arg(long = "idle-sleep-us", default_value_t = 0)]
    idle_sleep_us: u64,
    /// Number of mbufs in the pool. At least what the rx rings hold plus a burst per lcore and
    /// port (an error below it names that minimum); below DPDK l3fwd's count (which adds the
    /// tx rings and lcore caches) a warning. Default: DPDK l3fwd's count, at least 16384.
    #[arg(long)]
    mbufs: Option<u32>,
    /// The pool size decided from --mbufs and the ports (`limits::check`).
    #[arg(skip)]
    pool_mbufs: u32,
    /// Serve Prometheus metrics on this address, HOST:PORT (e.g. 0.0.0.0:9100); off by default.
    #[arg(long = "metrics-addr")]
    metrics_addr: Option<String>,
    /// Periodic statistics as DPDK l2fwd's text block or one JSON object per period; with json
    /// the final summary is one JSON object too (the last object, with a `summary` member:
    /// README.md).
    #[arg(long = "stats-format", default_value = "text", value_parser = ["text", "json"])]
    stats_format: String,
}

/// `vnf-l2fwd l2fwd` options (DPDK l2fwd's names).
#[derive(Args, Debug)]
pub struct L2fwdArgs {
    #[command(flatten)]
    port: PortArgs,
    /// Port pairs, e.g. "(0,1)(2,3)" (default: consecutive enabled ports).
    #[arg(long)]
    portmap: Option<String>,
    /// Leave MAC addresses untouched.
    #[arg(long = "no-mac-updating")]
    no_mac_updating: bool,
    /// Destination MAC for a port: PORT,MAC (repeatable; default 02:00:00:00:00:<port>).
    #[arg(long = "eth-dest")]
    eth_dest: Vec<String>,
}

/// `vnf-l2fwd l3fwd` options (DPDK l3fwd's names where it has them).
#[derive(Args, Debug)]
pub struct L3fwdArgs {
    #[command(flatten)]
    port: PortArgs,
    /// IPv4 route file (DPDK l3fwd format: `R<prefix>/<len> <port>` for lpm, 5-tuples for em).
    #[arg(long = "rule_ipv4", required = true)]
    rule_ipv4: PathBuf,
    /// IPv6 route file.
    #[arg(long = "rule_ipv6")]
    rule_ipv6: Option<PathBuf>,
    /// Lookup method: lpm or em.
    #[arg(long, default_value = "lpm", value_parser = parse_lookup)]
    lookup: Lookup,
    /// Next-hop MAC for an output port: PORT,MAC (repeatable; default 02:00:00:00:00:<port>).
    #[arg(long = "eth-dest")]
    eth_dest: Vec<String>,
    /// Route IPv6 too (needs --rule_ipv6).
    #[arg(long)]
    ipv6: bool,
    /// Drop frames longer than this (64 to the mbuf data room: 1728, DPDK ports 2048).
    #[arg(long = "max-pkt-len")]
    max_pkt_len: Option<usize>,
    /// Send route misses to this port instead of dropping them.
    #[arg(long = "default-port")]
    default_port: Option<u16>,
    /// The VNF's own address on a port, answered to ARP / neighbor solicitation: PORT,IP
    /// (repeatable).
    #[arg(long = "addr")]
    addr: Vec<String>,
}

/// Options of the testpmd modes io, macswap and rxonly.
#[derive(Args, Debug)]
pub struct TestpmdArgs {
    #[command(flatten)]
    port: PortArgs,
    /// Port pairs, e.g. "(0,1)(2,3)" (default: consecutive enabled ports; a lone last port is
    /// paired with itself).
    #[arg(long)]
    portmap: Option<String>,
}

/// Options of icmpecho: the testpmd ones and its own addresses.
#[derive(Args, Debug)]
pub struct IcmpechoArgs {
    #[command(flatten)]
    testpmd: TestpmdArgs,
    /// An own address on a port, PORT,IPV4 (repeatable; none = answer every echo and ARP
    /// request, as testpmd does).
    #[arg(long = "addr")]
    addr: Vec<String>,
}

/// Options of `txonly` (testpmd's names).
#[derive(Args, Debug)]
pub struct TxonlyArgs {
    #[command(flatten)]
    port: PortArgs,
    /// Frame length in bytes without FCS (42 to the mbuf data room: 1728, DPDK ports 2048).
    #[arg(long, default_value_t = 64)]
    txpkts: usize,
    /// Destination MAC of the frames sent on a port: PORT,MAC (repeatable; default
    /// 02:00:00:00:00:<port>).
    #[arg(long = "eth-peer")]
    eth_peer: Vec<String>,
    /// IPv4 source and destination: SRC,DST.
    #[arg(long = "tx-ip", default_value = "198.18.0.1,198.18.0.2")]
    tx_ip: String,
    /// UDP source and destination ports: SRC[,DST].
    #[arg(long = "tx-udp", default_value = "9,9")]
    tx_udp: String,
    /// Vary the IPv4 source address over 256 consecutive addresses (flows).
    #[arg(long = "txonly-multi-flow")]
    multi_flow: bool,
    /// Vary the IPv4 source address over this many addresses, counting up from the --tx-ip
    /// source (at least 1, and not past 255.255.255.255; overrides --txonly-multi-flow).
    #[arg(long = "tx-flows")]
    flows: Option<u32>,
}

/// A testpmd forwarding mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward untouched.
    Io,
    /// Swap the MACs and forward.
    MacSwap,
    /// Receive and free.
    RxOnly,
    /// Answer ICMP echo and ARP.
    IcmpEcho,
}

fn parse_lookup(s: &str) -> Result<Lookup, String> {
    s.parse()
}

fn usage(m: String) -> Failure {
    Failure::Usage(m)
}

fn parse_port(opt: &str, v: &str, s: &str, nports: usize) -> Result<u16, Failure> {
    let p: u16 = s.trim().parse().map_err(|_| usage(format!("{opt} {v:?}: port {s:?} is not a number")))?;
    if p as usize >= nports {
        return Err(usage(format!("{opt} {v:?}: no port {p} ({nports} ports given)")));
    }
    Ok(p)
}

fn parse_eth_dest(v: &str, nports: usize) -> Result<(u16, MacAddr), Failure> {
    parse_port_mac("--eth-dest", v, nports)
}

fn parse_port_mac(opt: &str, v: &str, nports: usize) -> Result<(u16, MacAddr), Failure> {
    let (p, m) = v.split_once(',').ok_or_else(|| usage(format!("{opt} {v:?}: expected PORT,MAC")))?;
    let p = parse_port(opt, v, p, nports)?;
    let m: MacAddr = m.trim().parse().map_err(|e| usage(format!("{opt} {v:?}: {e}")))?;
    Ok((p, m))
}

fn parse_addr(v: &str, nports: usize) -> Result<(u16, IpAddr), Failure> {
    let (p, a) = v.split_once(',').ok_or_else(|| usage(format!("--addr {v:?}: expected PORT,IP")))?;
    let p = parse_port("--addr", v, p, nports)?;
    let a: IpAddr = a.trim().parse().map_err(|_| usage(format!("--addr {v:?}: {a:?} is not an IP address")))?;
    Ok((p, a))
}

/// Checks the options every mode shares and makes the lcore plan: everything before any
/// port, socket, file or pool is opened (limits: see `crate::limits`). Returns the port mask.
fn check_common(a: &mut PortArgs) -> Result<u32, Failure> {
    if a.cpu.is_some() && (a.config.is_some() || a.queues_per_lcore.is_some()) {
        let other = if a.config.is_some() { "--config" } else { "-q" };
        return Err(usage(format!(
            "--cpu pins the single lcore of the default plan; with {other} the lcores are placed by {other}, so \
             --cpu would be ignored: give one of them"
        )));
    }
    if a.ports.is_empty() {
        ports_from_discovery(&a.podnetinfo, &mut a.ports, &mut a.cpu)?;
    }
    match a.pci_driver.as_deref() {
        Some("native") => {
            for p in a.ports.iter_mut() {
                if let Some(native) = dpdk_ports::native_for_bare_pci(p).map_err(usage)? {
                    *p = native;
                }
            }
        }
        Some("dpdk") if !cfg!(feature = "dpdk") => {
            return Err(usage(
                "--pci-driver dpdk: this vnf-l2fwd was built without DPDK (rebuild with --features dpdk); \
                 the native drivers take bare PCI addresses"
                    .into(),
            ))
        }
        _ => {}
    }
    if a.ports.len() > MAX_PORTS {
        return Err(usage(format!("{} ports given; at most {MAX_PORTS}", a.ports.len())));
    }
    ports::check_pcap_files(&a.ports).map_err(usage)?;
    let mask = a.portmask.unwrap_or(u32::MAX);
    if (0..a.ports.len()).all(|p| mask & (1 << p) == 0) {
        return Err(usage(format!("port mask {mask:#x} enables none of the {} ports given", a.ports.len())));
    }
    let possible = ((1u64 << a.ports.len()) - 1) as u32;
    if let Some(m) = a.portmask.filter(|m| m & !possible != 0) {
        return Err(usage(format!(
            "port mask {m:#x} names port {}, but {} ports are given (possible mask: {possible:#x})",
            (m & !possible).trailing_zeros(),
            a.ports.len()
        )));
    }
    let enabled: Vec<u16> = (0..a.ports.len() as u16).filter(|p| mask & (1 << p) != 0).collect();
    a.plan = make_plan(a.config.as_deref(), a.queues_per_lcore, a.cpu, &enabled, &mut a.ports)?;
    let checked = crate::limits::check(&crate::limits::Options {
        specs: &a.ports,
        plan: &a.plan,
        enabled: &enabled,
        rx_burst: a.rx_burst,
        tx_burst: a.tx_burst,
        idle_sleep_us: a.idle_sleep_us,
        mbufs: a.mbufs,
        period: a.period,
        duration: a.duration,
        metrics_addr: a.metrics_addr.as_deref(),
    })
    .map_err(usage)?;
    for w in &checked.warnings {
        log::warn!("{w}");
    }
    a.pool_mbufs = checked.mbufs;
    Ok(mask)
}

/// The opened ports, their leak check and the pool their buffers come from.
struct Opened<P, A> {
    ports: Vec<P>,
    leak: LeakCheck,
    pool: A,
}

/// Something to run once the ports are open (generic over the port and buffer types).
trait Runner {
    fn run<P: Port, A: BufPool<Buf = P::Buf> + Clone>(self, a: &PortArgs, o: Opened<P, A>) -> Result<(), Failure>;
}

fn open_and_run<R: Runner>(a: &PortArgs, r: R) -> Result<(), Failure> {
    // The metrics listener is started once the ports run; an address that cannot be bound
    // (in use, a privileged port) fails here, before any port is opened.
    if let Some(addr) = a.metrics_addr.as_deref() {
        drop(std::net::TcpListener::bind(addr).map_err(|e| Failure::Setup(format!("--metrics-addr {addr}: {e}")))?);
    }
    if a.eal.is_some() || a.ports.iter().any(PortSpec::is_dpdk) {
        let queues: Vec<(u16, u16)> =
            (0..a.ports.len() as u16).map(|p| (a.plan.rx_queues(p).max(1), a.plan.queues_needed(p))).collect();
        let (ports, leak, pool) = dpdk_ports::open_all(&a.ports, &queues, a.eal.as_deref(), a.pool_mbufs)?;
        a.small_pages.set(dpdk_ports::small_pages());
        return r.run(a, Opened { ports, leak, pool });
    }
    let pool = make_pool(a.pool_mbufs)?;
    a.small_pages.set(!pool.region().is_hugepages());
    let mut ports = vec![];
    for (id, spec) in a.ports.iter().enumerate() {
        ports.push(ports::open(id as u16, spec, &pool, a.promiscuous).map_err(|e| Failure::Setup(e.to_string()))?);
    }
    r.run(a, Opened { ports, leak: pool_check(pool.clone()), pool })
}

fn run_stage<P: Port, F: Forward<P::Buf> + Clone + 'static>(
    a: &PortArgs,
    ports: Vec<P>,
    leak: LeakCheck,
    fwd: F,
    tick: Option<Box<dyn FnMut() -> Option<crate::ctl::ReloadStatus>>>,
    reload: Option<Arc<crate::metrics::ReloadStats>>,
    sources: Option<Sources<P::Buf>>,
) -> Result<(), Failure> {
    run_stage_with(a, ports, leak, fwd, tick, reload, sources, vec![])
}

/// [`run_stage`] with the mode's own figures for the final summary.
#[allow(clippy::too_many_arguments)]
fn run_stage_with<P: Port, F: Forward<P::Buf> + Clone + 'static>(
    a: &PortArgs,
    ports: Vec<P>,
    leak: LeakCheck,
    fwd: F,
    tick: Option<Box<dyn FnMut() -> Option<crate::ctl::ReloadStatus>>>,
    reload: Option<Arc<crate::metrics::ReloadStats>>,
    sources: Option<Sources<P::Buf>>,
    items: Vec<crate::stats::SummaryItem>,
) -> Result<(), Failure> {
    for (id, p) in ports.iter().enumerate() {
        println!("Port {id}: {} ({}) MAC {}", p.info().name, p.info().driver, p.mac());
    }
    let metrics = a.metrics_addr.as_deref().map(crate::metrics::Server::start).transpose().map_err(Failure::Setup)?;
    if let Some(m) = &metrics {
        eprintln!("vnf-l2fwd: metrics on http://{}/metrics", m.addr());
    }
    let s = RunSetup {
        ports,
        period: a.period,
        duration: a.duration,
        leak_check: leak,
        show_mpps: true,
        enabled: a.portmask.unwrap_or(u32::MAX),
        tick,
        reload,
        metrics,
        json: a.stats_format == "json",
        plan: a.plan.clone(),
        pidfile: Some(a.pidfile.clone()),
        sources,
        items,
    };
    // 4 KiB pages: chunks of 8 (`Lcore::set_rx_chunk`).
    let rx_chunk = a.rx_chunk.unwrap_or(if a.small_pages.get() { 8 } else { 0 });
    run_l2fwd(s, fwd, a.rx_burst, rx_chunk, a.tx_burst, a.idle_sleep_us)
}

/// The l3fwd options other than the ports, and the tables loaded from the route files.
struct L3Runner {
    handle: TableHandle,
    /// The ports routes may name (bit per port): the enabled ones.
    route_ports: u32,
    rule_ipv4: PathBuf,
    rule_ipv6: Option<PathBuf>,
    lookup: Lookup,
    eth_dest: Vec<String>,
    default_port: Option<u16>,
    max_pkt_len: Option<usize>,
    addr: Vec<String>,
}

impl Runner for L3Runner {
    fn run<P: Port, A: BufPool<Buf = P::Buf> + Clone>(self, pa: &PortArgs, o: Opened<P, A>) -> Result<(), Failure> {
        let Opened { ports, leak, pool: _ } = o;
        let a = &self;
        let n = ports.len();
        let handle = a.handle.clone();
        let (r4, r6) = handle.current().routes();
        println!("l3fwd ({}): {r4} IPv4 routes, {r6} IPv6 routes", a.lookup);
        let mut fwd = L3Fwd::new(&handle);
        for (id, p) in ports.iter().enumerate() {
            fwd.set_port_mac(id as u16, p.mac());
        }
        for v in &a.eth_dest {
            let (p, m) = parse_eth_dest(v, n)?;
            fwd.set_eth_dest(p, m);
        }
        for v in &a.addr {
            let (p, ip) = parse_addr(v, n)?;
            fwd.add_addr(p, ip);
        }
        fwd.set_default_port(a.default_port).set_max_pkt_len(a.max_pkt_len);
        // SIGHUP: rebuild the tables aside, on a thread of their own, and swap them in; a bad
        // file keeps the running ones (reload.rs).
        let hup = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())
            .map_err(|e| Failure::Setup(format!("cannot install the SIGHUP handler: {e}")))?;
        let stats = Arc::new(crate::metrics::ReloadStats::default());
        let (r4, r6) = handle.current().routes();
        stats.routes_v4.store(r4 as u64, Ordering::Relaxed);
        stats.routes_v6.store(r6 as u64, Ordering::Relaxed);
        let files = crate::reload::RouteFiles {
            ipv4: a.rule_ipv4.clone(),
            ipv6: a.rule_ipv6.clone(),
            lookup: a.lookup,
            ports: Some(a.route_ports),
        };
        let mut reload = crate::reload::RouteReload::new(files, handle.clone(), stats.clone(), hup);
        let tick = move || reload.poll();
        run_stage(pa, ports, leak, fwd, Some(Box::new(tick)), Some(stats), None)
    }
}

/// `vnf-l2fwd l3fwd`.
pub fn l3fwd(mut a: L3fwdArgs) -> Result<(), Failure> {
    let mask = check_common(&mut a.port)?;
    if a.ipv6 && a.rule_ipv6.is_none() {
        return Err(usage("--ipv6 needs --rule_ipv6 FILE".into()));
    }
    if let Some(l) = a.max_pkt_len {
        let room = crate::limits::data_room(&a.port.ports);
        if !(64..=room).contains(&l) {
            return Err(usage(format!(
                "--max-pkt-len {l} must be 64 to {room} (the mbuf data room: no longer frame can be received)"
            )));
        }
    }
    // Parse the option values once before opening ports, so a typo fails fast (exit 2).
    let n = a.port.ports.len();
    for v in &a.eth_dest {
        parse_eth_dest(v, n)?;
    }
    for v in &a.addr {
        parse_addr(v, n)?;
    }
    let route_ports = enabled_ports(mask, n).iter().fold(0u32, |m, &p| m | 1 << p);
    if let Some(p) = a.default_port {
        if p as usize >= n {
            return Err(usage(format!("--default-port {p}: no such port ({n} ports given)")));
        }
        if route_ports & (1 << p) == 0 {
            return Err(usage(format!(
                "--default-port {p}: the port mask leaves it out, so every miss would be dropped"
            )));
        }
    }
    // The route files, checked as a reload checks them (routes only to ports in use).
    let (tables, warnings) = L3FwdTables::load(&a.rule_ipv4, a.rule_ipv6.as_deref(), a.lookup, route_ports)
        .map_err(|e| usage(format!("route file: {e}")))?;
    for w in &warnings {
        log::warn!("{w}");
    }
    let L3fwdArgs { port, rule_ipv4, rule_ipv6, lookup, eth_dest, ipv6: _, max_pkt_len, default_port, addr } = a;
    let handle = TableHandle::new(tables);
    let r = L3Runner { handle, route_ports, rule_ipv4, rule_ipv6, lookup, eth_dest, default_port, max_pkt_len, addr };
    open_and_run(&port, r)
}

struct TestpmdRunner {
    mode: Mode,
    pairs: PortPairs,
    addrs: Vec<(u16, IpAddr)>,
}

impl Runner for TestpmdRunner {
    fn run<P: Port, A: BufPool<Buf = P::Buf> + Clone>(self, pa: &PortArgs, o: Opened<P, A>) -> Result<(), Failure> {
        let Opened { ports, leak, pool: _ } = o;
        match self.mode {
            Mode::Io => run_stage(pa, ports, leak, Io { pairs: self.pairs }, None, None, None),
            Mode::MacSwap => run_stage(pa, ports, leak, MacSwap { pairs: self.pairs }, None, None, None),
            Mode::RxOnly => {
                let fwd = RxOnly::default();
                let c = fwd.counter();
                let freed = crate::stats::SummaryItem {
                    key: "rxonly_freed",
                    value: Box::new(move || c.get()),
                    text: |n| format!("rxonly: {n} packets received and freed"),
                };
                run_stage_with(pa, ports, leak, fwd, None, None, None, vec![freed])
            }
            Mode::IcmpEcho => {
                let mut fwd = IcmpEcho::new();
                for (id, p) in ports.iter().enumerate() {
                    fwd.set_port_mac(id as u16, p.mac());
                }
                for &(p, a) in &self.addrs {
                    if let IpAddr::V4(a) = a {
                        fwd.add_addr(p, a);
                    }
                }
                run_stage(pa, ports, leak, fwd, None, None, None)
            }
        }
    }
}

/// The port pairs from `--portmap`, or consecutive enabled ports (a lone last port paired
/// with itself when `odd_ok`), every named port checked to be enabled and in one pair only (as
/// DPDK l2fwd's `check_port_pair_config`; `(0,0)` is one pair). An enabled port in no pair
/// gets a warning: what it receives has nowhere to go.
fn port_pairs(portmap: Option<&str>, enabled: &[u16], odd_ok: bool) -> Result<Vec<(u16, u16)>, Failure> {
    let pairs = match portmap {
        Some(m) => parse_portmap(m)?,
        None => {
            if !odd_ok && enabled.len() % 2 != 0 {
                return Err(usage(format!(
                    "{} ports enabled: l2fwd pairs ports, so their number must be even (or give --portmap)",
                    enabled.len()
                )));
            }
            enabled.chunks(2).map(|c| (c[0], *c.get(1).unwrap_or(&c[0]))).collect()
        }
    };
    let mut paired: Vec<u16> = vec![];
    for &(x, y) in &pairs {
        for p in [x, y] {
            if !enabled.contains(&p) {
                return Err(usage(format!("--portmap names port {p}, which is not given or not in the port mask")));
            }
        }
        for p in if x == y { vec![x] } else { vec![x, y] } {
            if paired.contains(&p) {
                return Err(usage(format!(
                    "--portmap {:?}: port {p} is in two pairs; a port forwards to one peer (DPDK l2fwd refuses this \
                     too)",
                    portmap.unwrap_or_default()
                )));
            }
            paired.push(p);
        }
    }
    for p in enabled.iter().filter(|p| !paired.contains(p)) {
        log::warn!("port {p} is in no --portmap pair: what it receives is dropped (no_tx_port)");
    }
    Ok(pairs)
}

fn enabled_ports(mask: u32, n: usize) -> Vec<u16> {
    (0..n as u16).filter(|p| mask & (1 << p) != 0).collect()
}

/// The l2fwd options other than the ports.
struct L2Runner {
    pairs: Vec<(u16, u16)>,
    eth_dest: Vec<(u16, MacAddr)>,
    mac_updating: bool,
}

impl Runner for L2Runner {
    fn run<P: Port, A: BufPool<Buf = P::Buf> + Clone>(self, pa: &PortArgs, o: Opened<P, A>) -> Result<(), Failure> {
        let Opened { ports, leak, pool: _ } = o;
        let mut fwd = L2Fwd::new();
        for &(x, y) in &self.pairs {
            fwd.pair(x, y);
        }
        for (id, p) in ports.iter().enumerate() {
            fwd.set_port_mac(id as u16, p.mac());
        }
        for &(p, m) in &self.eth_dest {
            fwd.set_eth_dest(p, m);
        }
        fwd.set_mac_updating(self.mac_updating);
        run_stage(pa, ports, leak, fwd, None, None, None)
    }
}

/// `vnf-l2fwd l2fwd`.
pub fn l2fwd(mut a: L2fwdArgs) -> Result<(), Failure> {
    let mask = check_common(&mut a.port)?;
    let n = a.port.ports.len();
    let pairs = port_pairs(a.portmap.as_deref(), &enabled_ports(mask, n), false)?;
    let eth_dest = a.eth_dest.iter().map(|v| parse_eth_dest(v, n)).collect::<Result<Vec<_>, _>>()?;
    open_and_run(&a.port, L2Runner { pairs, eth_dest, mac_updating: !a.no_mac_updating })
}

/// The txonly options other than the ports.
struct TxonlyRunner {
    cfg: TxGenConfig,
    eth_peer: Vec<(u16, MacAddr)>,
}

impl Runner for TxonlyRunner {
    fn run<P: Port, A: BufPool<Buf = P::Buf> + Clone>(self, pa: &PortArgs, o: Opened<P, A>) -> Result<(), Failure> {
        let Opened { ports, leak, pool } = o;
        let mut cfgs = vec![];
        let mut pairs = PortPairs::default();
        for (id, p) in ports.iter().enumerate() {
            let id = id as u16;
            pairs.pair(id, id);
            let dst_mac = self.eth_peer.iter().rev().find(|(q, _)| *q == id).map_or(MacAddr::local(id as u8), |e| e.1);
            cfgs.push(TxGenConfig { src_mac: p.mac(), dst_mac, ..self.cfg.clone() });
        }
        let failures: Arc<std::sync::Mutex<Vec<Arc<Counter>>>> = Arc::default();
        let f = failures.clone();
        let sources: Sources<P::Buf> = Box::new(move |port: u16| -> Result<BoxRx<P::Buf>, Failure> {
            let cfg = cfgs.get(port as usize).ok_or_else(|| usage(format!("no port {port}")))?;
            let g = TxGen::new(pool.clone(), cfg).map_err(|e| usage(format!("txonly: {e}")))?;
            f.lock().unwrap_or_else(|e| e.into_inner()).push(g.alloc_failures());
            Ok(Box::new(g))
        });
        println!(
            "txonly: {}-byte IPv4/UDP frames {} -> {}, {} flow(s), on every enabled port",
            self.cfg.frame_len, self.cfg.src_ip, self.cfg.dst_ip, self.cfg.flows
        );
        let empty = crate::stats::SummaryItem {
            key: "txonly_bursts_not_generated",
            value: Box::new(move || failures.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|c| c.get()).sum()),
            text: |n| format!("txonly: {n} bursts not generated (mbuf pool empty: the ports could not keep up)"),
        };
        run_stage_with(pa, ports, leak, Io { pairs }, None, None, Some(sources), vec![empty])
    }
}

fn parse_pair<T: std::str::FromStr>(opt: &str, v: &str, second_optional: bool) -> Result<(T, Option<T>), Failure> {
    let bad = || usage(format!("{opt} {v:?}: expected two values separated by a comma"));
    let (a, b) = match v.split_once(',') {
        Some((a, b)) => (a, Some(b)),
        None if second_optional => (v, None),
        None => return Err(bad()),
    };
    let a = a.trim().parse().map_err(|_| bad())?;
    let b = b.map(|b| b.trim().parse().map_err(|_| bad())).transpose()?;
    Ok((a, b))
}

/// `vnf-l2fwd txonly`.
pub fn txonly(mut a: TxonlyArgs) -> Result<(), Failure> {
    let mask = check_common(&mut a.port)?;
    let n = a.port.ports.len();
    let (src_ip, dst_ip) = parse_pair::<Ipv4Addr>("--tx-ip", &a.tx_ip, false)?;
    let (src_port, dst_port) = parse_pair::<u16>("--tx-udp", &a.tx_udp, true)?;
    let flows = a.flows.unwrap_or(if a.multi_flow { 256 } else { 1 });
    let room = u64::from(u32::MAX) - u64::from(u32::from(src_ip)) + 1;
    if u64::from(flows) > room {
        return Err(usage(format!(
            "--tx-flows {flows}: the source addresses from {src_ip} would run past 255.255.255.255 (at most {room} \
             flows from there)"
        )));
    }
    let cfg = TxGenConfig {
        src_ip,
        dst_ip: dst_ip.unwrap_or(src_ip),
        src_port,
        dst_port: dst_port.unwrap_or(src_port),
        frame_len: a.txpkts,
        flows,
        ..Default::default()
    };
    let room = crate::limits::data_room(&a.port.ports);
    if !(dataplane::txgen::MIN_FRAME..=room).contains(&a.txpkts) {
        return Err(usage(format!(
            "--txpkts {} must be {} to {room} (the mbuf data room: a frame is one mbuf)",
            a.txpkts,
            dataplane::txgen::MIN_FRAME
        )));
    }
    dataplane::txgen::build_frame(&cfg).map_err(|e| usage(format!("txonly: {e} (--txpkts, --tx-flows)")))?;
    let eth_peer = a.eth_peer.iter().map(|v| parse_port_mac("--eth-peer", v, n)).collect::<Result<Vec<_>, _>>()?;
    if enabled_ports(mask, n).is_empty() {
        return Err(usage("no port enabled".into()));
    }
    open_and_run(&a.port, TxonlyRunner { cfg, eth_peer })
}

/// `vnf-l2fwd io|macswap|rxonly`.
pub fn testpmd(a: TestpmdArgs, mode: Mode) -> Result<(), Failure> {
    testpmd_with(a, mode, &[])
}

/// `vnf-l2fwd icmpecho`.
pub fn icmpecho(a: IcmpechoArgs) -> Result<(), Failure> {
    testpmd_with(a.testpmd, Mode::IcmpEcho, &a.addr)
}

/// A testpmd mode; `addr`: icmpecho's own addresses.
fn testpmd_with(mut a: TestpmdArgs, mode: Mode, addr: &[String]) -> Result<(), Failure> {
    let mask = check_common(&mut a.port)?;
    let n = a.port.ports.len();
    let pairs = port_pairs(a.portmap.as_deref(), &enabled_ports(mask, n), true)?;
    let mut pp = PortPairs::default();
    for &(x, y) in &pairs {
        pp.pair(x, y);
    }
    let mut addrs = vec![];
    for v in addr {
        let (p, ip) = parse_addr(v, n)?;
        if ip.is_ipv6() {
            return Err(usage(format!("--addr {v:?}: icmpecho answers IPv4 only")));
        }
        addrs.push((p, ip));
    }
    open_and_run(&a.port, TestpmdRunner { mode, pairs: pp, addrs })
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

fn parse_portmask(s: &str) -> Result<u32, String> {
    let h = s.trim_start_matches("0x").trim_start_matches("0X");
    let v = u32::from_str_radix(h, 16).map_err(|_| format!("port mask {s:?} is not a hex number"))?;
    if v == 0 {
        return Err("port mask 0 enables no port".into());
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_values() {
        assert_eq!(parse_eth_dest("1,02:00:00:00:00:07", 2).unwrap().0, 1);
        assert_eq!(parse_addr("0,10.0.0.1", 1).unwrap(), (0, "10.0.0.1".parse().unwrap()));
        assert_eq!(parse_addr("1, 2001:db8::1", 2).unwrap().1, "2001:db8::1".parse::<IpAddr>().unwrap());
        for bad in ["2,02:00:00:00:00:07", "x,02:00:00:00:00:07", "1;02:00:00:00:00:07", "1,02:00"] {
            assert!(parse_eth_dest(bad, 2).is_err(), "{bad}");
        }
        for bad in ["0,10.0.0", "5,10.0.0.1", "10.0.0.1"] {
            assert!(parse_addr(bad, 2).is_err(), "{bad}");
        }
        assert_eq!(parse_lookup("em"), Ok(Lookup::Em));
        // A port in one pair only, as DPDK l2fwd checks; (0,0) is one pair.
        assert_eq!(port_pairs(Some("(0,1)(2,3)"), &[0, 1, 2, 3], false).unwrap(), vec![(0, 1), (2, 3)]);
        assert_eq!(port_pairs(Some("(0,0)"), &[0], true).unwrap(), vec![(0, 0)]);
        for dup in ["(0,1)(0,1)", "(0,1)(1,0)", "(0,1)(1,2)", "(0,0)(0,1)"] {
            assert!(port_pairs(Some(dup), &[0, 1, 2], false).is_err(), "{dup}");
        }
        assert!(parse_lookup("hash").is_err());
    }

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
    }
}
