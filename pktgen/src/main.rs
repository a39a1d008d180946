//! `pktgen`: generate and receive numbered UDP traffic on the dataplane ports.
//!
//! - `pktgen run --tx-port SPEC [--rx-port SPEC] ...`: send (and receive on a second port in
//!   the same process), print the per-flow table, optionally JSON.
//! - `pktgen rx --port SPEC --duration S --flows N`: receive only (the sender is another
//!   `pktgen run` without `--rx-port`).
//! - `pktgen rfc2544 --tx-port SPEC --rx-port SPEC --sizes 64,512,1518,imix ...`: zero-loss
//!   throughput per frame size; table, JSON and SVG plots.

use clap::{Args, Parser, Subcommand};
use pktgen::engine::{opener, receive, run_trial, Side, TrialConfig};
use pktgen::frame::{FrameSize, GenConfig};
use pktgen::ports::{OpenSpec, PortSpec};
use pktgen::rfc2544::{line_rate_pps, search, SearchConfig};
use pktgen::rx::Receiver;
use pktgen::tx::{send, Generator, TxConfig};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(version, about = "Traffic generator and receiver on the dataplane ports")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Send (and receive on a second port).
    Run(RunArgs),
    /// Receive only.
    Rx(RxArgs),
    /// RFC 2544 throughput search.
    Rfc2544(Rfc2544Args),
}

#[derive(Args, Debug, Clone)]
struct Traffic {
    /// Flows (UDP source port base+i, source address base + i % src-addrs).
    #[arg(long, default_value_t = 1)]
    flows: u16,
    /// Source addresses to cycle through.
    #[arg(long = "src-addrs", default_value_t = 1)]
    src_addrs: u32,
    /// Source address (198.18.0.0/15).
    #[arg(long, default_value = "198.18.0.1")]
    src_ip: Ipv4Addr,
    /// Destination address (198.18.0.0/15).
    #[arg(long, default_value = "198.18.0.2")]
    dst_ip: Ipv4Addr,
    /// Source MAC.
    #[arg(long, default_value = "02:00:00:00:00:10")]
    src_mac: String,
    /// Destination MAC.
    #[arg(long, default_value = "02:00:00:00:00:11")]
    dst_mac: String,
    /// UDP destination port (also the receiver's filter).
    #[arg(long, default_value_t = 7777)]
    udp_port: u16,
    /// 802.1Q VLAN id.
    #[arg(long)]
    vlan: Option<u16>,
    /// Packets per burst.
    #[arg(long, default_value_t = 32)]
    burst: usize,
    /// Promiscuous mode on the receive port.
    #[arg(short = 'P')]
    promiscuous: bool,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Port to send on.
    #[arg(long = "tx-port")]
    tx_port: PortSpec,
    /// Port to receive on (same process).
    #[arg(long = "rx-port")]
    rx_port: Option<PortSpec>,
    /// Frame size 64..9000 or imix (FCS included).
    #[arg(long, default_value = "64")]
    size: FrameSize,
    /// Packets per second (default: full speed).
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds to send.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Stop after this many packets.
    #[arg(long)]
    count: Option<u64>,
    #[command(flatten)]
    t: Traffic,
    /// Write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct RxArgs {
    /// Port to receive on.
    #[arg(long)]
    port: PortSpec,
    /// Flows expected.
    #[arg(long, default_value_t = 1)]
    flows: u16,
    /// UDP destination port.
    #[arg(long, default_value_t = 7777)]
    udp_port: u16,
    /// Seconds to receive.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Promiscuous mode.
    #[arg(short = 'P')]
    promiscuous: bool,
    /// Write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct Rfc2544Args {
    /// Port to send on (into the device under test).
    #[arg(long = "tx-port")]
    tx_port: PortSpec,
    /// Port to receive on (from the device under test).
    #[arg(long = "rx-port")]
    rx_port: PortSpec,
    /// Frame sizes, comma separated (64..9000 or imix).
    #[arg(long, value_delimiter = ',', default_value = "64,128,256,512,1024,1280,1518")]
    sizes: Vec<FrameSize>,
    /// Highest rate to try, packets per second (default: --line-rate-gbps for each size).
    #[arg(long = "max-rate")]
    max_rate: Option<f64>,
    /// Line rate in Gbit/s used when --max-rate is not given.
    #[arg(long = "line-rate-gbps", default_value_t = 10.0)]
    line_rate_gbps: f64,
    /// Trial duration, seconds.
    #[arg(long, default_value_t = 2.0)]
    trial: f64,
    /// Search resolution, percent of the maximum rate.
    #[arg(long, default_value_t = 1.0)]
    resolution: f64,
    /// Loss tolerated, percent.
    #[arg(long = "loss-tolerance", default_value_t = 0.0)]
    loss_tolerance: f64,
    /// Trials per size at most.
    #[arg(long = "max-trials", default_value_t = 16)]
    max_trials: u32,
    #[command(flatten)]
    t: Traffic,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write SVG plots PREFIX-throughput.svg and PREFIX-latency-SIZE.svg.
    #[arg(long)]
    svg: Option<String>,
}

fn mac(s: &str) -> Result<[u8; 6], String> {
    let v: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16))
        .collect::<Result<_, _>>()
        .map_err(|_| format!("bad MAC {s:?}"))?;
    v.try_into().map_err(|_| format!("bad MAC {s:?}"))
}

fn gen_config(t: &Traffic, size: FrameSize) -> Result<GenConfig, String> {
    let g = GenConfig {
        src_mac: mac(&t.src_mac)?,
        dst_mac: mac(&t.dst_mac)?,
        src_ip: t.src_ip,
        dst_ip: t.dst_ip,
        src_addrs: t.src_addrs,
        src_port: 1024,
        dst_port: t.udp_port,
        flows: t.flows,
        size,
        vlan: t.vlan,
    };
    g.validate()?;
    Ok(g)
}

fn write_json<T: serde::Serialize>(p: &Option<PathBuf>, v: &T) -> Result<(), String> {
    if let Some(p) = p {
        let s = serde_json::to_string_pretty(v).map_err(|e| e.to_string())?;
        std::fs::write(p, s + "\n").map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(())
}

fn run(a: RunArgs) -> Result<(), String> {
    let gen = gen_config(&a.t, a.size)?;
    let tx =
        TxConfig { rate_pps: a.rate, duration: Duration::from_secs_f64(a.duration), count: a.count, burst: a.t.burst };
    let max = gen.buf_len(a.size.max());
    match a.rx_port {
        Some(rx) => {
            let cfg = TrialConfig { gen, tx, ..TrialConfig::default() };
            let r = run_trial(
                &cfg,
                Side { open: opener(a.tx_port, 0, max, false), ns: None },
                Side { open: opener(rx, 1, max, a.t.promiscuous), ns: None },
            )?;
            print!("{}", r.table(32));
            write_json(&a.json, &r)
        }
        None => {
            let mut g = Generator::new(&gen)?;
            let (mut p, pool) = a.tx_port.open(0, max, false)?;
            let mut q = p.tx_queue(0).map_err(|e| e.to_string())?;
            let stop = AtomicBool::new(false);
            let r = send(&mut q, &pool, &mut g, &tx, &stop);
            let total: u64 = r.sent.iter().sum();
            println!(
                "sent {total} packets in {:.3} s ({:.4} Mpps), {} allocation failures",
                r.elapsed_s,
                total as f64 / r.elapsed_s.max(1e-9) / 1e6,
                r.alloc_failures
            );
            write_json(&a.json, &serde_json::json!({"sent": r.sent, "elapsed_s": r.elapsed_s}))
        }
    }
}

fn rx(a: RxArgs) -> Result<(), String> {
    let (mut p, _pool) = a.port.open(0, 9216, a.promiscuous)?;
    let mut r = Receiver::new(a.flows, a.udp_port);
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let d = Duration::from_secs_f64(a.duration);
    std::thread::spawn(move || {
        std::thread::sleep(d);
        s2.store(true, Ordering::Relaxed);
    });
    receive(&mut p, &mut r, &stop, || {})?;
    let rep = r.report(&[], Some(a.duration));
    print!("{}", rep.table(32));
    write_json(&a.json, &rep)
}

fn rfc2544(a: Rfc2544Args) -> Result<(), String> {
    let mut results = Vec::new();
    for &size in &a.sizes {
        let gen = gen_config(&a.t, size)?;
        let max = gen.buf_len(size.max());
        let max_rate = a.max_rate.unwrap_or_else(|| line_rate_pps(a.line_rate_gbps, size.mean()));
        let scfg = SearchConfig {
            max_rate_pps: max_rate,
            resolution_pct: a.resolution,
            loss_tolerance_pct: a.loss_tolerance,
            max_trials: a.max_trials,
        };
        let (txo, rxo) = (opener(a.tx_port.clone(), 0, max, false), opener(a.rx_port.clone(), 1, max, a.t.promiscuous));
        let label = size.to_string();
        let r = search(&label, size.mean(), &scfg, &mut |rate| {
            let cfg = TrialConfig {
                gen: gen.clone(),
                tx: TxConfig {
                    rate_pps: Some(rate),
                    duration: Duration::from_secs_f64(a.trial),
                    count: None,
                    burst: a.t.burst,
                },
                ..TrialConfig::default()
            };
            let r = run_trial(&cfg, Side { open: txo.clone(), ns: None }, Side { open: rxo.clone(), ns: None })?;
            eprintln!(
                "  size {label}: {:.0} pps -> sent {}, lost {} ({:.4}%)",
                rate,
                r.sent.unwrap_or(0),
                r.total.lost,
                r.loss_pct.unwrap_or(0.0)
            );
            Ok(r)
        })?;
        results.push(r);
    }
    print!("{}", pktgen::rfc2544::table(&results));
    write_json(&a.json, &results)?;
    if let Some(prefix) = &a.svg {
        let t = PathBuf::from(format!("{prefix}-throughput.svg"));
        pktgen::plot::throughput_svg(&t, "RFC 2544 zero-loss throughput", &results)?;
        println!("wrote {}", t.display());
        for r in &results {
            if let Some(h) = r.hist.as_ref().filter(|h| h.count() > 0) {
                let p = PathBuf::from(format!("{prefix}-latency-{}.svg", r.size));
                pktgen::plot::latency_svg(&p, &format!("latency at {:.0} pps, size {}", r.throughput_pps, r.size), h)?;
                println!("wrote {}", p.display());
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let res = match Cli::parse().cmd {
        Cmd::Run(a) => run(a),
        Cmd::Rx(a) => rx(a),
        Cmd::Rfc2544(a) => rfc2544(a),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pktgen: {e}");
            ExitCode::FAILURE
        }
    }
}
