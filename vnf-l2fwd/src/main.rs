//! `vnf-l2fwd`: the VNF binary. See `vnf-l2fwd --help` and README.md.
//!
//! Exit codes: 0 success; 1 a runtime failure (a worker panicked, an mbuf leaked, a pcap
//! replay ended at a bad record); 2 bad command line or configuration (the message names the
//! option); 3 a port or pool could not be opened (the message says what to do).

mod config_file;
mod ctl;
mod demo;
mod demo_l3;
mod dpdk_ports;
mod lcores;
mod limits;
mod metrics;
mod modes;
mod ports;
mod reload;
mod run;
mod stats;

use clap::{Args, CommandFactory, Parser, Subcommand};
use dataplane::lcore::stop_on_signals;
use run::Failure;
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
    Demo(demo::DemoArgs),
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
        Cmd::Demo(a) => demo::demo(a),
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
