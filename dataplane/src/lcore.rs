//! Poll-mode workers ("lcores"): one thread per core, pinned, running to completion.
//!
//! Each [`Lcore`] owns the receive queues it polls, one transmit queue and one tx buffer per
//! output port, and its statistics. The loop, as in DPDK's l2fwd/l3fwd:
//!
//! 1. read the cycle counter once; if the drain period (100 µs default) has passed, flush
//!    every tx buffer;
//! 2. for each receive queue: `rx_burst` (32 by default, up to 512), classify the burst once
//!    ([`crate::classify`], at the [`Level`] the stage asks for in
//!    [`Forward::classify_level`]; skipped for queues whose hardware fills the packet type,
//!    [`RxQueue::fills_ptype`](crate::port::RxQueue::fills_ptype), and for pipeline rings,
//!    whose packets were classified by the lcore that received them) so that packet type,
//!    header lengths and flow hash are in each packet's metadata, and hand the burst to the
//!    [`Forward`] stage, which sends each packet to a port's tx buffer ([`Tx::send`]) or drops
//!    it with a reason ([`Tx::drop_pkt`]); a full tx buffer is flushed at once, and what the
//!    port refuses is freed and counted as dropped;
//! 3. every 4096 iterations, housekeeping: the stop flag and the stage's periodic work.
//!
//! Statistics are [`Counter`](crate::stats::Counter)s written only by the owning lcore and summed by the control
//! thread ([`Runtime::port_stats`]).
//!
//! **Pipeline mode** for ports with a single queue: an rx lcore runs a [`Distributor`](crate::fwd::Distributor) that
//! spreads packets by flow hash over internal ring ports, and worker lcores receive from those
//! rings (see [`pipeline_rings`]). Stopping drains it in order: rx lcores stop and flush into
//! the rings, workers empty the rings, then everyone flushes tx and exits, so every mbuf
//! returns to its pool.

use crate::arch;
use crate::buf::PacketBuf;
use crate::burst::{Burst, MAX_BURST};
use crate::classify::{Classified, ClassifyConfig, Impl, Level};
use crate::port::{BoxRx, BoxTx, MAX_PORTS};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub use crate::stage::{DropReason, Forward, LcorePortStats, LcoreStats, Tx};

struct RxSlot<B: PacketBuf> {
    port: u16,
    q: BoxRx<B>,
    /// A pipeline ring (drained at stop) rather than an external port.
    internal: bool,
    /// Counted as received on `port` (false for a generator: see [`Lcore::add_source`]).
    counted: bool,
    /// Run the classifier on its bursts (false when the queue fills the packet type itself,
    /// and for pipeline rings).
    classify: bool,
}

/// Loop iterations in a row that found every queue empty before a worker with an idle sleep
/// ([`Lcore::set_idle_sleep_us`]) starts sleeping.
pub const IDLE_POLLS: u32 = 256;

/// One poll-mode worker, built then launched by a [`Runtime`].
pub struct Lcore<B: PacketBuf, F: Forward<B>> {
    name: String,
    cpu: Option<usize>,
    rx: Vec<RxSlot<B>>,
    tx: Tx<B>,
    fwd: F,
    rx_burst: usize,
    /// [`Lcore::set_rx_chunk`]; 0: whole bursts.
    rx_chunk: usize,
    drain_us: u64,
    idle_sleep_us: u64,
    stats: Arc<LcoreStats>,
    feeds_pipeline: bool,
    /// The stage's [`Forward::classify_level`].
    level: Level,
    /// The classifier implementation for this CPU ([`crate::classify::implementation`]).
    imp: Impl,
    classify_cfg: ClassifyConfig,
    /// The classifier's records for one burst.
    classified: Box<[Classified; MAX_BURST]>,
}

impl<B: PacketBuf, F: Forward<B>> fmt::Debug for Lcore<B, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lcore").field("name", &self.name).field("cpu", &self.cpu).field("rx", &self.rx.len()).finish()
    }
}

/// Lcore configuration errors.
#[derive(Debug, thiserror::Error)]
pub enum LcoreError {
    /// Invalid setting.
    #[error("lcore {lcore}: {msg}")]
    Config {
        /// Lcore name.
        lcore: String,
        /// What is wrong.
        msg: String,
    },
    /// The thread could not be started.
    #[error("lcore {lcore}: cannot start its thread: {source}")]
    Spawn {
        /// Lcore name.
        lcore: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl<B: PacketBuf, F: Forward<B>> Lcore<B, F> {
    /// A worker running stage `fwd`, pinned to `cpu` when given.
    pub fn new(name: &str, cpu: Option<usize>, fwd: F) -> Self {
        let stats = Arc::new(LcoreStats::default());
        let level = fwd.classify_level();
        Lcore {
            name: name.to_string(),
            cpu,
            rx: Vec::new(),
            tx: Tx::new(stats.clone(), crate::burst::DEFAULT_BURST),
            fwd,
            rx_burst: crate::burst::DEFAULT_BURST,
            rx_chunk: 0,
            drain_us: 100,
            idle_sleep_us: 0,
            stats,
            feeds_pipeline: false,
            level,
            imp: crate::classify::implementation(),
            classify_cfg: ClassifyConfig::default(),
            classified: Box::new([Classified::default(); MAX_BURST]),
        }
    }

    /// The classifier configuration (hash kind, RSS key); Toeplitz with the default key unless
    /// set.
    pub fn set_classify_config(&mut self, cfg: ClassifyConfig) -> &mut Self {
        self.classify_cfg = cfg;
        self
    }

    /// The classification level the stage asked for.
    pub fn classify_level(&self) -> Level {
        self.level
    }

    /// Polls `q`, a receive queue of port `port`.
    pub fn add_rx(&mut self, port: u16, q: BoxRx<B>) -> &mut Self {
        let classify = !q.fills_ptype();
        self.rx.push(RxSlot { port, q, internal: false, counted: true, classify });
        self
    }

    /// Polls `q`, a source of generated frames for port `port` (testpmd's txonly: see
    /// [`crate::txgen`]); what it yields is handed to the stage as if received on `port`, but
    /// not counted as received.
    pub fn add_source(&mut self, port: u16, q: BoxRx<B>) -> &mut Self {
        let classify = !q.fills_ptype();
        self.rx.push(RxSlot { port, q, internal: false, counted: false, classify });
        self
    }

    /// Polls `q`, an internal pipeline ring (drained before the lcore stops).
    pub fn add_pipeline_rx(&mut self, port: u16, q: BoxRx<B>) -> &mut Self {
        // Classified by the lcore that received them; the metadata travels with the packets.
        self.rx.push(RxSlot { port, q, internal: true, counted: true, classify: false });
        self
    }

    /// Sends to port `port` through `q`.
    ///
    /// # Errors
    /// When `port` is not below [`MAX_PORTS`] or already has a tx queue on this lcore.
    pub fn add_tx(&mut self, port: u16, q: BoxTx<B>) -> Result<&mut Self, LcoreError> {
        match self.tx.attach(port, q) {
            Ok(()) => Ok(self),
            Err(msg) => Err(LcoreError::Config { lcore: self.name.clone(), msg }),
        }
    }

    /// Marks this lcore as feeding pipeline rings (it must stop before their consumers).
    pub fn set_feeds_pipeline(&mut self, on: bool) -> &mut Self {
        self.feeds_pipeline = on;
        self
    }

    /// Receive burst size (1 to 512; 32 default).
    ///
    /// # Errors
    /// Out of range.
    pub fn set_rx_burst(&mut self, n: usize) -> Result<&mut Self, LcoreError> {
        if n == 0 || n > MAX_BURST {
            return Err(LcoreError::Config {
                lcore: self.name.clone(),
                msg: format!("rx burst {n} must be 1 to {MAX_BURST}"),
            });
        }
        self.rx_burst = n;
        Ok(self)
    }

    /// Hands each received burst to the stage in chunks of at most `n` packets, each classified
    /// just before its stage call (0, the default: the whole burst at once). For packet
    /// memory on 4 KiB pages: a 32-packet receive burst from a copying PMD touches more pages
    /// than the CPU's first-level TLB holds, so a pass over the whole burst (the classifier's,
    /// then the stage's) finds the first packets' translations gone, at about 10 cycles a
    /// packet per pass; chunks of 8 keep them. On hugepages the chunks only add calls
    /// (`benches/FORWARDING_RESULTS.md`, "4 KiB pages"). Stages that ask for no
    /// classification ([`Level::None`]) get the whole burst whatever this says.
    ///
    /// # Errors
    /// More than 512.
    pub fn set_rx_chunk(&mut self, n: usize) -> Result<&mut Self, LcoreError> {
        if n > MAX_BURST {
            return Err(LcoreError::Config {
                lcore: self.name.clone(),
                msg: format!("rx chunk {n} must be 0 (whole bursts) to {MAX_BURST}"),
            });
        }
        self.rx_chunk = n;
        Ok(self)
    }

    /// Transmit buffer size (1 to 512; 32 default).
    ///
    /// # Errors
    /// Out of range.
    pub fn set_tx_burst(&mut self, n: usize) -> Result<&mut Self, LcoreError> {
        if n == 0 || n > MAX_BURST {
            return Err(LcoreError::Config {
                lcore: self.name.clone(),
                msg: format!("tx burst {n} must be 1 to {MAX_BURST}"),
            });
        }
        self.tx.set_burst(n);
        Ok(self)
    }

    /// Tx drain period in microseconds (100 default).
    pub fn set_drain_us(&mut self, us: u64) -> &mut Self {
        self.drain_us = us.max(1);
        self
    }

    /// Sleep `us` microseconds in each loop iteration that finds every queue empty, once
    /// [`IDLE_POLLS`] iterations in a row found nothing (0, the default: always busy-poll, as
    /// DPDK's workers do). For workers on shared or oversubscribed CPUs (VPP's
    /// `poll-sleep-usec`, adaptive): a quiet worker gives its CPU away, a busy one never
    /// sleeps. The cost is latency, up to `us` for the first packet after a quiet spell, and
    /// a receive ring must hold what arrives during one sleep. At most one second.
    ///
    /// # Errors
    /// More than one second.
    pub fn set_idle_sleep_us(&mut self, us: u64) -> Result<&mut Self, LcoreError> {
        if us > 1_000_000 {
            return Err(LcoreError::Config {
                lcore: self.name.clone(),
                msg: format!("idle sleep {us} us must be at most 1000000"),
            });
        }
        self.idle_sleep_us = us;
        Ok(self)
    }

    /// The statistics handle (valid after launch too).
    pub fn stats(&self) -> Arc<LcoreStats> {
        self.stats.clone()
    }

    /// One pass over the receive queues (only the pipeline rings when `internal_only`):
    /// receive a burst from each and hand it to the stage (in chunks: see
    /// [`Lcore::set_rx_chunk`]). Returns the packets received.
    #[inline(always)]
    fn poll_rx(&mut self, burst: &mut Burst<B>, internal_only: bool) -> usize {
        let mut got = 0;
        // Taken out for the loop (a move of the Vec, no allocation) so that the stage can be
        // run through `&mut self`.
        let mut rx = std::mem::take(&mut self.rx);
        for slot in rx.iter_mut() {
            if internal_only && !slot.internal {
                continue;
            }
            let n = slot.q.rx_burst(burst, self.rx_burst);
            if n == 0 {
                continue;
            }
            got += n;
            if slot.counted {
                self.stats.ports[slot.port as usize].rx.add(n as u64);
            }
            let classify = slot.classify && self.level != Level::None;
            if classify {
                self.stats.classified_bursts.inc();
            }
            if self.rx_chunk == 0 || n <= self.rx_chunk || self.level == Level::None {
                self.stage(slot.port, classify, burst);
            } else {
                let mut chunk: Burst<B> = Burst::new();
                while !burst.is_empty() {
                    let k = burst.len().min(self.rx_chunk);
                    burst.drain_front(k, |m| {
                        // Cannot fail: the chunk is empty and k is at most its capacity.
                        let _ = chunk.push(m);
                    });
                    self.stage(slot.port, classify, &mut chunk);
                }
            }
        }
        self.rx = rx;
        got
    }

    /// Classifies `burst` (when `classify`) and hands it to the stage, which must send or drop
    /// every packet.
    #[inline(always)]
    fn stage(&mut self, port: u16, classify: bool, burst: &mut Burst<B>) {
        if classify {
            let k = match self.level {
                Level::Full => {
                    crate::classify::classify_burst_with(self.imp, burst, &self.classify_cfg, &mut self.classified[..])
                        .unwrap_or(0)
                }
                Level::L2 => crate::classify::classify_burst_l2(burst),
                Level::L3 => crate::classify::classify_burst_l3(burst),
                _ => crate::classify::classify_burst_lengths(burst, &mut self.classified[..]),
            };
            self.stats.classified_pkts.add(k as u64);
        }
        self.fwd.forward(port, burst, &mut self.tx);
        if !burst.is_empty() {
            // A stage must send or drop every packet: one that leaves some is a bug
            // (asserted in debug builds). In release builds they are freed and counted,
            // never leaked.
            debug_assert!(burst.is_empty(), "lcore {}: the stage left {} packets unhandled", self.name, burst.len());
            let k = burst.len() as u64;
            burst.clear();
            self.stats.drop_reason(DropReason::Filtered, k);
        }
    }

    /// Runs one iteration of the loop on the calling thread — receive from every queue,
    /// process, buffer for tx — then flushes the tx buffers when `flush` is set. For embedding
    /// the lcore in a loop of one's own (and for benchmarks); [`Lcore::run`] is the usual way.
    /// Returns the packets received.
    pub fn poll_once(&mut self, burst: &mut Burst<B>, flush: bool) -> usize {
        let n = self.poll_rx(burst, false);
        if flush {
            self.tx.flush_all();
        }
        n
    }

    /// Runs the loop on the calling thread until `ctl` says stop. Pins first when a cpu was
    /// given.
    pub fn run(mut self, ctl: &Control) {
        if let Some(cpu) = self.cpu {
            if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
                log::warn!("lcore {}: could not pin to cpu {cpu}; running unpinned", self.name);
            }
        }
        let mut burst: Burst<B> = Burst::new();
        let drain = arch::us_to_cycles(self.drain_us);
        let mut last_drain = arch::cycles();
        let mut iter: u32 = 0;
        let mut busy: u64 = 0;
        let mut loops: u64 = 0;
        let mut busy_cycles: u64 = 0;
        let mut prev = last_drain;
        let mut prev_busy = false;
        let idle_sleep = (self.idle_sleep_us > 0).then(|| Duration::from_micros(self.idle_sleep_us));
        let mut empty: u32 = 0;
        let stats = self.stats.clone();
        loop {
            let now = arch::cycles();
            // The previous iteration's length counts when it received something (one add on
            // the timer read the loop makes anyway).
            if prev_busy {
                busy_cycles = busy_cycles.wrapping_add(now.wrapping_sub(prev));
            }
            prev = now;
            if now.wrapping_sub(last_drain) > drain {
                self.tx.flush_all();
                last_drain = now;
            }
            let got = self.poll_rx(&mut burst, false);
            loops += 1;
            prev_busy = got > 0;
            busy += prev_busy as u64;
            if let Some(d) = idle_sleep {
                if prev_busy {
                    empty = 0;
                } else if empty < IDLE_POLLS {
                    empty += 1;
                } else {
                    // Quiet: nothing buffered may wait out the sleep, and a stop is seen
                    // within one sleep, not 0x1000 of them.
                    self.tx.flush_all();
                    if ctl.stopping() {
                        break;
                    }
                    std::thread::sleep(d);
                }
            }
            iter = iter.wrapping_add(1);
            if iter & 0xfff == 0 {
                stats.loops.set(loops);
                stats.busy_loops.set(busy);
                stats.busy_cycles.set(busy_cycles);
                self.fwd.housekeeping();
                if ctl.stopping() {
                    break;
                }
            }
        }
        // Stop: external rx is no longer polled. Feeders flush into the rings and leave;
        // ring consumers keep going until every feeder has left and their rings are empty.
        self.tx.final_flush();
        if self.feeds_pipeline {
            ctl.feeders.fetch_sub(1, Ordering::AcqRel);
        }
        if self.rx.iter().any(|s| s.internal) {
            let mut idle_passes = 0;
            loop {
                let feeders_done = ctl.feeders.load(Ordering::Acquire) == 0;
                let got = self.poll_rx(&mut burst, true);
                if got == 0 && feeders_done {
                    idle_passes += 1;
                    if idle_passes > 2 {
                        break;
                    }
                } else if got == 0 {
                    std::thread::yield_now();
                }
            }
            self.tx.final_flush();
        }
        if prev_busy {
            busy_cycles = busy_cycles.wrapping_add(arch::cycles().wrapping_sub(prev));
        }
        stats.loops.set(loops);
        stats.busy_loops.set(busy);
        stats.busy_cycles.set(busy_cycles);
    }
}

/// The loop counters of a set of lcores, summed ([`Runtime::busy_totals`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BusyTotals {
    /// Loop iterations.
    pub loops: u64,
    /// Iterations that received at least one packet.
    pub busy_loops: u64,
    /// Timer cycles of those iterations ([`LcoreStats::busy_cycles`]).
    pub busy_cycles: u64,
    /// Packets received from every port.
    pub rx: u64,
    /// Received bursts run through the classifier ([`LcoreStats::classified_bursts`]).
    pub classified_bursts: u64,
}

/// Shared stop control of a set of lcores.
#[derive(Debug, Default)]
pub struct Control {
    stop: AtomicBool,
    feeders: AtomicUsize,
}

impl Control {
    /// True once a stop was asked.
    #[inline]
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Asks every lcore to stop.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Launched lcores: their threads, statistics and the stop control.
#[derive(Debug)]
pub struct Runtime {
    ctl: Arc<Control>,
    threads: Vec<(String, JoinHandle<()>)>,
    stats: Vec<Arc<LcoreStats>>,
}

impl Runtime {
    /// Starts one thread per lcore.
    ///
    /// # Errors
    /// When a pinned cpu is not in this process's allowed set, or a thread cannot start (the
    /// ones started are stopped again).
    pub fn launch<B: PacketBuf, F: Forward<B> + 'static>(lcores: Vec<Lcore<B, F>>) -> Result<Runtime, LcoreError> {
        let allowed: Vec<usize> = core_affinity::get_core_ids().unwrap_or_default().into_iter().map(|c| c.id).collect();
        for l in &lcores {
            if let Some(cpu) = l.cpu {
                if !allowed.is_empty() && !allowed.contains(&cpu) {
                    return Err(LcoreError::Config {
                        lcore: l.name.clone(),
                        msg: format!("cpu {cpu} is not in this process's CPU set {allowed:?}"),
                    });
                }
            }
        }
        let ctl = Arc::new(Control::default());
        ctl.feeders.store(lcores.iter().filter(|l| l.feeds_pipeline).count(), Ordering::Relaxed);
        let mut rt = Runtime { ctl: ctl.clone(), threads: vec![], stats: vec![] };
        for l in lcores {
            let name = l.name.clone();
            rt.stats.push(l.stats());
            let c = ctl.clone();
            match std::thread::Builder::new().name(format!("lcore-{name}")).spawn(move || l.run(&c)) {
                Ok(h) => rt.threads.push((name, h)),
                Err(e) => {
                    rt.stop();
                    let _ = rt.join();
                    return Err(LcoreError::Spawn { lcore: name, source: e });
                }
            }
        }
        Ok(rt)
    }

    /// The stop control (to hand to a signal handler thread).
    pub fn control(&self) -> Arc<Control> {
        self.ctl.clone()
    }

    /// Asks every lcore to stop (they drain and flush first).
    pub fn stop(&self) {
        self.ctl.stop();
    }

    /// True when every lcore thread has finished.
    pub fn finished(&self) -> bool {
        self.threads.iter().all(|(_, h)| h.is_finished())
    }

    /// Waits for every lcore; returns the names of lcores that panicked.
    pub fn join(&mut self) -> Vec<String> {
        let mut failed = vec![];
        for (name, h) in self.threads.drain(..) {
            if h.join().is_err() {
                failed.push(name);
            }
        }
        failed
    }

    /// Every lcore's statistics.
    pub fn lcore_stats(&self) -> &[Arc<LcoreStats>] {
        &self.stats
    }

    /// Per-port (rx, tx, dropped) summed over lcores, for ports `0..n`.
    pub fn port_stats(&self, n: usize) -> Vec<(u64, u64, u64)> {
        (0..n.min(MAX_PORTS))
            .map(|p| {
                self.stats.iter().fold((0, 0, 0), |a, s| {
                    let ps = &s.ports[p];
                    (a.0 + ps.rx.get(), a.1 + ps.tx.get(), a.2 + ps.dropped.get())
                })
            })
            .collect()
    }

    /// The loop counters summed over lcores: iterations, busy iterations, busy timer cycles
    /// and packets received (as of each lcore's last snapshot for the first three: they are
    /// published every 0x1000 iterations). Differences of two readings give the busy cycles
    /// per packet and the mean burst (packets per busy iteration) over a window.
    pub fn busy_totals(&self) -> BusyTotals {
        self.stats.iter().fold(BusyTotals::default(), |a, s| BusyTotals {
            loops: a.loops + s.loops.get(),
            busy_loops: a.busy_loops + s.busy_loops.get(),
            busy_cycles: a.busy_cycles + s.busy_cycles.get(),
            rx: a.rx + s.ports.iter().map(|p| p.rx.get()).sum::<u64>(),
            classified_bursts: a.classified_bursts + s.classified_bursts.get(),
        })
    }

    /// Busy timer cycles per packet received, over all lcores: the cycles of the loop
    /// iterations that received packets ([`LcoreStats::busy_cycles`]) divided by the packets
    /// they received from every port. `None` before the first packet.
    pub fn busy_cycles_per_packet(&self) -> Option<f64> {
        let cycles: u64 = self.stats.iter().map(|s| s.busy_cycles.get()).sum();
        let packets: u64 = self.stats.iter().flat_map(|s| s.ports.iter()).map(|p| p.rx.get()).sum();
        (packets > 0).then(|| cycles as f64 / packets as f64)
    }

    /// Drops by reason summed over lcores.
    pub fn drop_stats(&self) -> [u64; DropReason::COUNT] {
        let mut d = [0; DropReason::COUNT];
        for s in &self.stats {
            for (i, c) in s.drops.iter().enumerate() {
                d[i] += c.get();
            }
        }
        d
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop();
        let _ = self.join();
    }
}

/// One pipeline ring: its port id, the feeder's tx queue and the worker's rx queue.
pub type PipelineRing<B> = (u16, BoxTx<B>, BoxRx<B>);

/// The rings of a pipeline: `workers` ring ports of `capacity` slots, numbered from
/// `first_port`. Returns, per worker, the tx queue the feeder sends into (port
/// `first_port + k`) and the rx queue the worker polls; the packets keep their input port.
///
/// # Errors
/// When the capacity is not a power of two.
pub fn pipeline_rings<B: PacketBuf>(
    workers: u16,
    capacity: usize,
    first_port: u16,
) -> Result<Vec<PipelineRing<B>>, crate::port::PortError> {
    use crate::port::{ring::RingPort, Port};
    (0..workers)
        .map(|k| {
            let ring = Arc::new(
                crate::ring::Ring::new(capacity)
                    .map_err(|e| crate::port::PortError::Config { port: "pipeline".into(), msg: e.to_string() })?,
            );
            let id = first_port + k;
            let mut p = RingPort::new(&format!("pipe{k}"), id, vec![ring.clone()], vec![ring])?;
            p.set_preserve_port(true);
            Ok((id, p.tx_queue(0)?, p.rx_queue(0)?))
        })
        .collect()
}

/// Sets `flag` when SIGINT or SIGTERM arrives (and restores the default action after a second
/// one, so a stuck process can still be interrupted).
///
/// # Errors
/// When the handlers cannot be installed.
pub fn stop_on_signals(flag: Arc<AtomicBool>) -> std::io::Result<()> {
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_default(sig, flag.clone())?;
        signal_hook::flag::register(sig, flag.clone())?;
    }
    Ok(())
}
