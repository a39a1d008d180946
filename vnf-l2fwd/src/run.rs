//! The run machinery every forwarding subcommand shares: the error type and its exit codes,
//! pools and their leak checks, the lcore plan, and [`run_l2fwd`], which builds the lcores,
//! runs them until the duration or a signal, prints the statistics and checks that every
//! mbuf came back. `main.rs` parses and dispatches; `modes.rs` builds a stage and its ports
//! and hands them here.

use crate::{ctl, lcores, metrics, ports, stats};
use dataplane::lcore::{stop_on_signals, Forward, Lcore, Runtime};
use dataplane::mbuf::{Mempool, MempoolConfig};
use dataplane::port::Port;
use ports::PortSpec;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A command-line or configuration error (exit 2), or a setup error (exit 3).
#[derive(Debug)]
pub(crate) enum Failure {
    Usage(String),
    Setup(String),
    Runtime(String),
}

impl Failure {
    pub(crate) fn code(&self) -> u8 {
        match self {
            Failure::Usage(_) => 2,
            Failure::Setup(_) => 3,
            Failure::Runtime(_) => 1,
        }
    }
}

/// After the ports are closed: `Ok(message)` when every mbuf is back, `Err(message)` if not.
pub(crate) type LeakCheck = Box<dyn Fn() -> Result<String, String>>;

/// Makes the frame source a txonly lcore polls for a port, instead of its receive queue.
pub(crate) type Sources<B> = Box<dyn FnMut(u16) -> Result<dataplane::port::BoxRx<B>, Failure>>;

pub(crate) struct RunSetup<P: Port> {
    pub(crate) ports: Vec<P>,
    pub(crate) period: u64,
    pub(crate) duration: Option<f64>,
    pub(crate) leak_check: LeakCheck,
    pub(crate) show_mpps: bool,
    /// Ports to poll and send on (bit per port id).
    pub(crate) enabled: u32,
    /// Called by the control loop every 20 ms until it returns None (route reload on
    /// SIGHUP, `reload::RouteReload::poll`); a returned status is written beside the pidfile
    /// for `ctl reload`. Dropped when the loop ends, which abandons a reload in progress.
    pub(crate) tick: Option<Box<dyn FnMut() -> Option<ctl::ReloadStatus>>>,
    pub(crate) metrics: Option<metrics::Server>,
    pub(crate) json: bool,
    /// Route-table reload statistics (l3fwd), shown with the other statistics.
    pub(crate) reload: Option<Arc<metrics::ReloadStats>>,
    /// The lcores and the queues they poll.
    pub(crate) plan: lcores::Plan,
    /// None: no pidfile; Some(None): the default one when writable; Some(Some(p)): `p`.
    pub(crate) pidfile: Option<Option<std::path::PathBuf>>,
    /// txonly: generators polled instead of the plan's receive queues.
    pub(crate) sources: Option<Sources<P::Buf>>,
    /// The mode's own figures for the final summary.
    pub(crate) items: Vec<stats::SummaryItem>,
}

/// The counters of every port, for metrics and JSON output.
pub(crate) fn samples<P: Port>(rt: &Runtime, ports: &[P]) -> Vec<metrics::PortSample> {
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
pub(crate) fn pool_check(pool: Mempool) -> LeakCheck {
    Box::new(move || match pool.in_use() {
        0 => Ok(format!("All {} mbufs returned to the pool: no leak.", pool.size())),
        n => Err(format!("{n} mbufs did not return to pool {:?}", pool.config().name)),
    })
}

/// Builds the plan's lcores (each with its rx queues, tx queue `k` on every enabled port and
/// its own clone of stage `fwd`) and runs them until the duration or a signal.
pub(crate) fn run_l2fwd<P: Port, F: Forward<P::Buf> + Clone + 'static>(
    mut s: RunSetup<P>,
    fwd: F,
    rx_burst: usize,
    rx_chunk: usize,
    tx_burst: usize,
    idle_sleep_us: u64,
) -> Result<(), Failure> {
    let nl = s.plan.lcores.len();
    let mut lcores = Vec::with_capacity(nl);
    for (k, lp) in s.plan.lcores.iter().enumerate() {
        let name = lp.cpu.map_or_else(|| k.to_string(), |c| c.to_string());
        let mut l = Lcore::new(&name, lp.cpu, fwd.clone());
        l.set_rx_burst(rx_burst).map_err(|e| Failure::Usage(e.to_string()))?;
        l.set_rx_chunk(rx_chunk).map_err(|e| Failure::Usage(e.to_string()))?;
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
                    &rt.busy_totals(),
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
        let mut text =
            metrics::render_prometheus(&samples(&rt, &s.ports), &rt.drop_stats(), &rt.busy_totals(), elapsed);
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

pub(crate) fn make_pool(n: u32) -> Result<Mempool, Failure> {
    Mempool::new(MempoolConfig::new("mbuf_pool", n)).map_err(|e| Failure::Setup(e.to_string()))
}

/// The lcore plan from `--config` / `-q` / `--cpu`, polling every receive queue a kernel or
/// PCI port spreads its traffic over, with the port specs' queues fitted to it
/// (`Plan::fit_spec`: what it needs where `queues=` is not given, checked where it is).
pub(crate) fn make_plan(
    config: Option<&str>,
    q: Option<usize>,
    cpu: Option<usize>,
    enabled: &[u16],
    specs: &mut [PortSpec],
) -> Result<lcores::Plan, Failure> {
    let mut plan =
        lcores::plan(config, q, cpu, enabled, &vnf_l2fwd::node_features::allowed_cpus()).map_err(Failure::Usage)?;
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
pub(crate) fn ports_from_discovery(
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

/// The last CPU this process may run on (its cpuset, as in a container).
pub(crate) fn default_cpu() -> Option<usize> {
    vnf_l2fwd::node_features::allowed_cpus().last().copied()
}
