//! One trial: a receiver thread and a sender thread, each opening its own port (inside a
//! network namespace when given), the sender numbering every packet and the receiver
//! accounting them. The receiver is ready before the sender starts and keeps draining for a
//! grace period after it stops.

use crate::frame::GenConfig;
use crate::ports::{DynPort, OpenSpec};
use crate::rx::{Receiver, Report};
use crate::tx::{send, Generator, TxConfig, TxResult};
use dataplane::mbuf::{Mbuf, Mempool};
use dataplane::Burst;
use netns::Netns;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

/// Opens a port and its pool; called on the side's own thread (inside its namespace).
pub type Opener = Arc<dyn Fn() -> Result<(DynPort, Mempool), String> + Send + Sync>;

/// One side of a trial.
#[derive(Clone)]
pub struct Side<'a> {
    /// Opens the port.
    pub open: Opener,
    /// Namespace to run in (the caller's when `None`).
    pub ns: Option<&'a Netns>,
}

impl std::fmt::Debug for Side<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Side").field("ns", &self.ns.map(|n| n.name())).finish()
    }
}

/// A trial's settings.
#[derive(Debug, Clone)]
pub struct TrialConfig {
    /// What to generate.
    pub gen: GenConfig,
    /// How fast and how long.
    pub tx: TxConfig,
    /// How long the receiver keeps draining after the sender stops.
    pub drain: Duration,
}

impl Default for TrialConfig {
    fn default() -> Self {
        TrialConfig { gen: GenConfig::default(), tx: TxConfig::default(), drain: Duration::from_millis(1000) }
    }
}

fn spawn<T: Send + 'static>(
    ns: Option<&Netns>,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<T>, String> {
    match ns {
        Some(n) => n.spawn(f).map_err(|e| format!("entering namespace {}: {e}", n.name())),
        None => Ok(std::thread::spawn(f)),
    }
}

fn join<T>(h: JoinHandle<T>, what: &str) -> Result<T, String> {
    h.join().map_err(|_| format!("the {what} thread panicked"))
}

/// Receives on queue 0 of `port` until `stop`, feeding `r`.
pub fn receive(port: &mut DynPort, r: &mut Receiver, stop: &AtomicBool, ready: impl FnOnce()) -> Result<(), String> {
    let mut rxq = port.rx_queue(0).map_err(|e| e.to_string())?;
    ready();
    let mut b: Burst<Mbuf> = Burst::new();
    let mut idle = 0u32;
    while !stop.load(Ordering::Relaxed) {
        if rxq.rx_burst(&mut b, 64) == 0 {
            // Poll, then back off to short sleeps when nothing comes (a shared machine).
            idle = idle.saturating_add(1);
            if idle > 4096 {
                std::thread::sleep(Duration::from_micros(20));
            } else {
                std::hint::spin_loop();
            }
            continue;
        }
        idle = 0;
        let now = crate::now_ns();
        for m in b.iter() {
            r.on_frame(dataplane::PacketBuf::data(m), now);
        }
        Mbuf::free_bulk(&mut b);
    }
    r.port_missed = port.stats().imissed;
    Ok(())
}

/// Runs one trial and returns the receiver's report (with the sender's counts).
///
/// # Errors
/// A port that cannot be opened, a bad configuration, a thread that panicked.
pub fn run_trial(cfg: &TrialConfig, tx: Side<'_>, rx: Side<'_>) -> Result<Report, String> {
    cfg.gen.validate()?;
    let stop_rx = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let (flows, port) = (cfg.gen.flows, cfg.gen.dst_port);
    let (open, stop) = (rx.open.clone(), stop_rx.clone());
    let rx_thread = spawn(rx.ns, move || -> Result<Receiver, String> {
        let mut r = Receiver::new(flows, port);
        let (mut p, _pool) = match open() {
            Ok(v) => v,
            Err(e) => {
                let _ = ready_tx.send(Err(e.clone()));
                return Err(e);
            }
        };
        let rt = ready_tx.clone();
        let res = receive(&mut p, &mut r, &stop, move || {
            let _ = rt.send(Ok(()));
        });
        if let Err(e) = &res {
            let _ = ready_tx.send(Err(e.clone()));
        }
        res.map(|_| r)
    })?;
    let ready = ready_rx.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| Err("receiver not ready".into()));
    if let Err(e) = ready {
        stop_rx.store(true, Ordering::Relaxed);
        let _ = rx_thread.join();
        return Err(format!("receiver: {e}"));
    }
    let (open, gen, txc) = (tx.open.clone(), cfg.gen.clone(), cfg.tx.clone());
    let tx_thread = spawn(tx.ns, move || -> Result<TxResult, String> {
        let mut g = Generator::new(&gen)?;
        let (mut p, pool) = open().map_err(|e| format!("sender: {e}"))?;
        let mut q = p.tx_queue(0).map_err(|e| format!("sender: {e}"))?;
        let never = AtomicBool::new(false);
        Ok(send(&mut q, &pool, &mut g, &txc, &never))
    });
    let txr = match tx_thread {
        Ok(h) => join(h, "sender").and_then(|r| r),
        Err(e) => Err(e),
    };
    if txr.is_ok() {
        std::thread::sleep(cfg.drain);
    }
    stop_rx.store(true, Ordering::Relaxed);
    let r = join(rx_thread, "receiver")??;
    let txr = txr?;
    Ok(r.report(&txr.sent, Some(txr.elapsed_s.max(1e-9))))
}

/// A trial's opener for a spec (inside whatever namespace the side's thread is in).
pub fn opener(spec: crate::ports::PortSpec, id: u16, max_frame: usize, promiscuous: bool) -> Opener {
    Arc::new(move || spec.open(id, max_frame, promiscuous))
}
