//! `vnf-l2fwd demo`: l2fwd or l3fwd between two synthetic null ports, to see the data path
//! run without any NIC (and to measure it: `ci/bench`'s `null` and `l3fwd` rows).

use crate::run::{default_cpu, make_pool, pool_check, run_l2fwd, Failure, RunSetup};
use crate::{demo_l3, lcores, limits, ports};
use clap::Args;
use dataplane::fwd::L2Fwd;
use dataplane::mbuf::Mempool;
use dataplane::port::{MacAddr, Port};
use ports::PortSpec;

#[derive(Args, Debug)]
pub(crate) struct DemoArgs {
    /// Seconds to run.
    #[arg(long, default_value_t = 5.0)]
    pub(crate) duration: f64,
    /// CPU to pin the worker to (default: the last CPU this process may use).
    #[arg(long)]
    pub(crate) cpu: Option<usize>,
    /// Statistics period in seconds (0 = only the final summary; at most 86400).
    #[arg(short = 'T', long = "stats-period", default_value_t = 1)]
    pub(crate) period: u64,
    /// Receive burst size (1-512).
    #[arg(long = "rx-burst", default_value_t = 32)]
    pub(crate) rx_burst: usize,
    /// l2fwd (swap ports, rewrite MACs) or l3fwd (IPv4/UDP frames routed by LPM).
    #[arg(long, default_value = "l2fwd", value_parser = ["l2fwd", "l3fwd"])]
    pub(crate) mode: String,
    /// l3fwd: random /24 routes in the table besides the two the frames use.
    #[arg(long, default_value_t = 1000)]
    pub(crate) routes: usize,
}

pub(crate) fn demo(a: DemoArgs) -> Result<(), Failure> {
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
    let allowed = vnf_l2fwd::node_features::allowed_cpus();
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
    run_l2fwd(setup(ports), fwd, a.rx_burst, 0, 32, 0)
}

/// Where a worker runs, for messages: `cpu 3`, or `not pinned`.
pub(crate) fn worker_cpu(cpu: Option<usize>) -> String {
    cpu.map_or_else(|| "not pinned".to_string(), |c| format!("cpu {c}"))
}

/// The l3fwd demo: null ports whose frames are IPv4/UDP to the other port's network, routed
/// through a table of `--routes` random /24s.
pub(crate) fn demo_l3fwd(
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
    run_l2fwd(setup(ports), fwd, a.rx_burst, 0, 32, 0)
}
