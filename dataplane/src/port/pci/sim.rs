//! A simulated PCI device for the unit tests: the ring logic of a driver runs against it in
//! plain `cargo test`, on any machine.
//!
//! - Config space is a 256-byte array owned by the device model; writes to the command
//!   register turn the model's bus mastering on and off.
//! - BAR registers are the model's: every read and write goes to [`SimModel::mmio_read`] /
//!   [`SimModel::mmio_write`] (a model keeps its registers in a `Vec` or fields and reacts
//!   to writes: a doorbell makes it process a queue at once, on the caller's thread).
//! - DMA goes through [`SimMemory`], a model of an IOMMU over process memory: the driver's
//!   rings and the pool region are mapped at IOVAs by [`SimPci::alloc_dma`] and
//!   [`SimPci::map_pool`]; the model reads and writes only through IOVAs, and an access
//!   outside a live mapping, or while bus mastering is off, is recorded as a fault instead of
//!   touching memory. Tests assert there were none, which checks the addresses a driver
//!   gives its device as a real IOMMU would.
//!
//! Everything runs on the test's thread (the model is behind a mutex, so a test may also
//! drive it from another thread), so the simulation is deterministic.

use super::dma::{anon_memory, DmaArea, PoolDma};
use super::{DeviceAccess, PciError};
use crate::buf::PacketBuf;
use crate::burst::Burst;
use crate::mbuf::{Mbuf, Mempool};
use crate::port::Port;
use proptest::prelude::*;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use vfio::pci as cfg;

/// A device model behind a [`SimPci`].
pub(crate) trait SimModel: Send + 'static {
    /// The config space.
    fn config(&mut self) -> &mut [u8; 256];
    /// Length of BAR `bar`, `None` when it cannot be mapped (absent, or I/O ports).
    fn bar_len(&self, bar: u8) -> Option<u64>;
    /// A register read of `width` bytes.
    fn mmio_read(&mut self, mem: &mut SimMemory, bar: u8, off: u32, width: u8) -> u64;
    /// A register write of `width` bytes.
    fn mmio_write(&mut self, mem: &mut SimMemory, bar: u8, off: u32, width: u8, v: u64);
}

#[derive(Debug)]
struct SimMap {
    id: u64,
    iova: u64,
    len: usize,
    ptr: usize,
}

/// The simulated IOMMU: what the device can reach, by IOVA.
#[derive(Debug, Default)]
pub(crate) struct SimMemory {
    maps: Vec<SimMap>,
    next_iova: u64,
    next_id: u64,
    /// DMA attempts outside a mapping or without bus mastering.
    pub faults: Vec<String>,
    /// The command register's bus-master bit.
    pub bus_master: bool,
    /// How many times a pool region was mapped.
    pub pool_maps: usize,
}

impl SimMemory {
    /// Live mappings.
    pub fn live_maps(&self) -> usize {
        self.maps.len()
    }

    fn translate(&mut self, iova: u64, len: usize, what: &str) -> Option<*mut u8> {
        if !self.bus_master {
            self.faults.push(format!("{what} at IOVA {iova:#x} with bus mastering off"));
            return None;
        }
        for m in &self.maps {
            if iova >= m.iova && iova.checked_add(len as u64).is_some_and(|e| e <= m.iova + m.len as u64) {
                return Some((m.ptr + (iova - m.iova) as usize) as *mut u8);
            }
        }
        self.faults.push(format!("{what} of {len} bytes at IOVA {iova:#x}: not mapped"));
        None
    }

    /// DMA read; `false` (and a fault) outside a mapping.
    #[allow(unsafe_code)]
    pub fn read(&mut self, iova: u64, buf: &mut [u8]) -> bool {
        match self.translate(iova, buf.len(), "DMA read") {
            Some(p) => {
                // SAFETY: `p..p+len` is inside a live mapping (a DmaArea or a pool region,
                // both of which stay mapped in the process until their mapping entry is
                // removed, which happens first when they drop).
                unsafe { std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), buf.len()) };
                true
            }
            None => false,
        }
    }

    /// DMA write; `false` (and a fault) outside a mapping.
    #[allow(unsafe_code)]
    pub fn write(&mut self, iova: u64, data: &[u8]) -> bool {
        match self.translate(iova, data.len(), "DMA write") {
            Some(p) => {
                // SAFETY: as in `read`.
                unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
                true
            }
            None => false,
        }
    }

    /// Little-endian u16 by DMA (0 on a fault).
    pub fn r16(&mut self, iova: u64) -> u16 {
        let mut b = [0u8; 2];
        self.read(iova, &mut b);
        u16::from_le_bytes(b)
    }

    /// Little-endian u32 by DMA (0 on a fault).
    pub fn r32(&mut self, iova: u64) -> u32 {
        let mut b = [0u8; 4];
        self.read(iova, &mut b);
        u32::from_le_bytes(b)
    }

    /// Little-endian u64 by DMA (0 on a fault).
    pub fn r64(&mut self, iova: u64) -> u64 {
        let mut b = [0u8; 8];
        self.read(iova, &mut b);
        u64::from_le_bytes(b)
    }

    /// Little-endian u16 store by DMA.
    pub fn w16(&mut self, iova: u64, v: u16) {
        self.write(iova, &v.to_le_bytes());
    }

    /// Little-endian u32 store by DMA.
    pub fn w32(&mut self, iova: u64, v: u32) {
        self.write(iova, &v.to_le_bytes());
    }

    fn add(&mut self, ptr: usize, len: usize, align: u64) -> (u64, u64) {
        let iova = (self.next_iova.max(0x1_0000_0000) + align - 1) & !(align - 1);
        self.next_iova = iova + len as u64;
        self.next_id += 1;
        self.maps.push(SimMap { id: self.next_id, iova, len, ptr });
        (iova, self.next_id)
    }
}

/// The model and its IOMMU.
pub(crate) struct SimState<M> {
    pub model: M,
    pub mem: SimMemory,
}

fn lock<M>(s: &Mutex<SimState<M>>) -> MutexGuard<'_, SimState<M>> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// A test's handle on the simulated device (inspect the model, inject traffic).
pub(crate) struct SimHandle<M>(Arc<Mutex<SimState<M>>>);

impl<M> Clone for SimHandle<M> {
    fn clone(&self) -> Self {
        SimHandle(self.0.clone())
    }
}

impl<M: SimModel> SimHandle<M> {
    /// Runs `f` on the model and its memory.
    pub fn with<R>(&self, f: impl FnOnce(&mut M, &mut SimMemory) -> R) -> R {
        let mut g = lock(&self.0);
        let SimState { model, mem } = &mut *g;
        f(model, mem)
    }
}

/// A simulated device, as a driver sees it.
pub(crate) struct SimPci<M> {
    state: Arc<Mutex<SimState<M>>>,
    mapped: [bool; 6],
    name: String,
}

impl<M> std::fmt::Debug for SimPci<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimPci").field("name", &self.name).finish()
    }
}

impl<M: SimModel> SimPci<M> {
    /// A device named `name` run by `model`, and the test's handle on it.
    pub fn new(name: &str, model: M) -> (Self, SimHandle<M>) {
        let state = Arc::new(Mutex::new(SimState { model, mem: SimMemory::default() }));
        (SimPci { state: state.clone(), mapped: [false; 6], name: name.into() }, SimHandle(state))
    }

    fn reg(&self, bar: u8, off: u32, width: u8) -> u64 {
        if !self.mapped.get(bar as usize).copied().unwrap_or(false) {
            return !0;
        }
        let mut g = lock(&self.state);
        let SimState { model, mem } = &mut *g;
        model.mmio_read(mem, bar, off, width)
    }

    fn set_reg(&self, bar: u8, off: u32, width: u8, v: u64) {
        if !self.mapped.get(bar as usize).copied().unwrap_or(false) {
            return;
        }
        let mut g = lock(&self.state);
        let SimState { model, mem } = &mut *g;
        model.mmio_write(mem, bar, off, width, v)
    }

    fn map(&self, ptr: usize, len: usize, align: u64) -> (u64, SimMapGuard<M>) {
        let (iova, id) = lock(&self.state).mem.add(ptr, len, align);
        (iova, SimMapGuard { state: Arc::downgrade(&self.state), id })
    }
}

/// Removes a mapping from the simulated IOMMU when dropped.
struct SimMapGuard<M> {
    state: Weak<Mutex<SimState<M>>>,
    id: u64,
}

impl<M> std::fmt::Debug for SimMapGuard<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SimMapGuard({})", self.id)
    }
}

impl<M> Drop for SimMapGuard<M> {
    fn drop(&mut self) {
        if let Some(s) = self.state.upgrade() {
            lock(&s).mem.maps.retain(|m| m.id != self.id);
        }
    }
}

impl<M: SimModel> DeviceAccess for SimPci<M> {
    fn name(&self) -> &str {
        &self.name
    }

    fn config_read(&self, offset: u16, buf: &mut [u8]) -> Result<(), PciError> {
        let mut g = lock(&self.state);
        let c = g.model.config();
        let o = offset as usize;
        let src = c
            .get(o..o + buf.len())
            .ok_or_else(|| PciError::Device { device: self.name.clone(), msg: "config read past 256 bytes".into() })?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn config_write(&self, offset: u16, buf: &[u8]) -> Result<(), PciError> {
        let mut g = lock(&self.state);
        let o = offset as usize;
        let c = g.model.config();
        let dst = c
            .get_mut(o..o + buf.len())
            .ok_or_else(|| PciError::Device { device: self.name.clone(), msg: "config write past 256 bytes".into() })?;
        dst.copy_from_slice(buf);
        let cmd = cfg::read_u16(&c[..], cfg::COMMAND).unwrap_or(0);
        g.mem.bus_master = cmd & cfg::COMMAND_BUS_MASTER != 0;
        Ok(())
    }

    fn map_bar(&mut self, bar: u8) -> Result<u64, PciError> {
        let len = lock(&self.state).model.bar_len(bar).ok_or_else(|| PciError::Device {
            device: self.name.clone(),
            msg: format!("BAR {bar} cannot be mapped"),
        })?;
        self.mapped[bar as usize] = true;
        Ok(len)
    }

    fn read8(&self, bar: u8, off: u32) -> u8 {
        self.reg(bar, off, 1) as u8
    }
    fn read16(&self, bar: u8, off: u32) -> u16 {
        self.reg(bar, off, 2) as u16
    }
    fn read32(&self, bar: u8, off: u32) -> u32 {
        self.reg(bar, off, 4) as u32
    }
    fn write8(&self, bar: u8, off: u32, v: u8) {
        self.set_reg(bar, off, 1, v as u64)
    }
    fn write16(&self, bar: u8, off: u32, v: u16) {
        self.set_reg(bar, off, 2, v as u64)
    }
    fn write32(&self, bar: u8, off: u32, v: u32) {
        self.set_reg(bar, off, 4, v as u64)
    }

    fn alloc_dma(&self, len: usize) -> Result<DmaArea, PciError> {
        let mem = anon_memory(len).map_err(|source| PciError::Memory { len, source })?;
        let (iova, guard) = self.map(mem.as_mut_ptr() as usize, mem.len(), 4096);
        Ok(DmaArea::new(mem, iova, Box::new(guard)))
    }

    fn map_pool(&self, pool: &Mempool) -> Result<Arc<PoolDma>, PciError> {
        let r = pool.region();
        let (iova, guard) = self.map(r.base() as usize, r.len(), r.page_size() as u64);
        lock(&self.state).mem.pool_maps += 1;
        Ok(Arc::new(PoolDma::new(pool, iova, Box::new(guard))))
    }
}

// ---- what the drivers' tests share ------------------------------------------------------------

/// A device model the shared driver tests drive: frames in, transmit completions held or
/// released, frames out, faults seen.
pub(crate) trait RingModel: SimModel {
    /// Offers `frame` to receive queue 0; `false` when the device had no buffer for it.
    fn inject(&mut self, mem: &mut SimMemory, frame: &[u8]) -> bool;
    /// Holds transmit completions (`true`), or releases them, completing what was held.
    fn hold_tx(&mut self, mem: &mut SimMemory, on: bool);
    /// The frames the device sent, in order, with the transmit queue each left from.
    fn tx_frames(&self) -> &[(u16, Vec<u8>)];
    /// How many times the driver rang transmit queue `q`'s doorbell (a tail write, a notify).
    fn tx_doorbells(&self, q: u16) -> u64;
    /// What the model found wrong in the driver's use of it.
    fn faults(&self) -> &[String];
    /// The frames the device sent, in order.
    fn sent(&self) -> Vec<Vec<u8>> {
        self.tx_frames().iter().map(|f| f.1.clone()).collect()
    }
}

/// A driver under the shared tests below: how it opens a port on a fresh simulated device,
/// and the one way the drivers' rings legitimately differ.
pub(crate) trait SimDriver {
    /// The device model.
    type Model: RingModel;
    /// The driver's port.
    type Port: crate::port::Port<Buf = Mbuf>;
    /// Opens port `id` with `queues` queue pairs and rings of `rx`/`tx` entries on a fresh
    /// device.
    fn open_port(&self, id: u16, queues: u16, rx: u16, tx: u16, pool: &Mempool)
        -> (Self::Port, SimHandle<Self::Model>);
    /// [`Self::open_port`] as port 0.
    fn open(&self, queues: u16, rx: u16, tx: u16, pool: &Mempool) -> (Self::Port, SimHandle<Self::Model>) {
        self.open_port(0, queues, rx, tx, pool)
    }
    /// The destination MAC of frames the port receives.
    fn mac(&self) -> [u8; 6];
    /// How many packets a transmit ring of `n` entries holds at once (igb keeps one entry
    /// free to tell full from empty; virtio's free list needs none).
    fn tx_capacity(&self, n: u16) -> usize;
    /// Transmit queue `q`'s refusals (a full ring), as the port counts them.
    fn tx_missed(port: &Self::Port, q: u16) -> u64;
    /// Resets the device under the open port, as a sysfs reset does.
    fn reset_under(&self, h: &SimHandle<Self::Model>);
    /// Has the port found its device reset?
    fn is_dead(port: &Self::Port) -> bool;
    /// How many refused bursts a full transmit ring waits between looks at the device.
    fn stuck_check(&self) -> u32;
    /// After a port whose device was reset under it is dropped: every mbuf of `pool` back,
    /// the device reset and its DMA off, nothing mapped, no fault.
    fn torn_down_after_reset(&self, h: &SimHandle<Self::Model>, pool: &Mempool);
    /// The driver's own checks of a port whose device was reset under it, before the drop.
    fn after_reset(&self, _port: &Self::Port, _h: &SimHandle<Self::Model>) {}
}

/// `#[test]` functions, each running the shared test of its name (in this module) on the
/// listed drivers: `shared_driver_tests! { full_tx_ring_refuses_counts_and_recovers: PF, VF; }`.
macro_rules! shared_driver_tests {
    ($($test:ident: $($driver:expr),+;)*) => {
        $(
            #[test]
            fn $test() {
                $( $crate::port::pci::sim::$test(&$driver); )+
            }
        )*
    };
}
pub(crate) use shared_driver_tests;

/// The sequence number [`frame_to`] wrote into a frame.
pub(crate) fn id_of(frame: &[u8]) -> u32 {
    u32::from_be_bytes(frame[14..18].try_into().unwrap())
}

/// Both drivers: a burst of 20 goes out without a copy (the device reads the mbufs in
/// place), in order, with one doorbell; the mbufs come back only when the queue reclaims
/// (a flush here), and the counters say 20 packets, 2000 bytes.
pub(crate) fn tx_burst_sends_without_copy_and_reclaims_in_bursts<D: SimDriver>(d: &D) {
    let p = test_pool("sim-tx", 1024);
    let (mut port, h) = d.open(1, 64, 64, &p);
    let mut tx = port.tx_queue(0).unwrap();
    let mut b: Burst<Mbuf> = Burst::new();
    for i in 0..20 {
        let _ = b.push(Mbuf::from_slice(&p, &frame_to(d.mac(), i, 100)).unwrap());
    }
    let before = p.in_use();
    assert_eq!(tx.tx_burst(&mut b), 20);
    assert!(b.is_empty());
    h.with(|m, _| {
        assert_eq!(m.tx_frames().len(), 20);
        for (i, (q, f)) in m.tx_frames().iter().enumerate() {
            assert_eq!(*q, 0);
            assert_eq!(f, &frame_to(d.mac(), i as u32, 100));
        }
        assert_eq!(m.tx_doorbells(0), 1, "one doorbell per burst");
    });
    // Done by the device, but held until the ring runs low or a flush.
    assert_eq!(p.in_use(), before);
    tx.flush();
    assert_eq!(p.in_use(), before - 20);
    let st = port.stats();
    assert_eq!((st.opackets, st.obytes, st.oerrors), (20, 2000, 0));
    no_faults(&h);
    drop((tx, port));
    assert_eq!(p.in_use(), 0);
}

/// Both drivers: a full transmit ring (16 entries, the device holding completions) takes
/// what fits, leaves the rest with the caller in order, refuses at once when full and counts
/// each refusal; once the device catches up the next burst reclaims and goes through, and all
/// 24 leave once, in order.
pub(crate) fn full_tx_ring_refuses_counts_and_recovers<D: SimDriver>(d: &D) {
    let p = test_pool("sim-full", 1024);
    let (mut port, h) = d.open(1, 64, 16, &p);
    let cap = d.tx_capacity(16);
    let mut tx = port.tx_queue(0).unwrap();
    h.with(|m, mem| m.hold_tx(mem, true));
    let mut b: Burst<Mbuf> = Burst::new();
    for i in 0..24 {
        let _ = b.push(Mbuf::from_slice(&p, &frame_to(d.mac(), i, 64)).unwrap());
    }
    assert_eq!(tx.tx_burst(&mut b), cap, "a 16-entry ring takes {cap}");
    assert_eq!(b.len(), 24 - cap, "the rest stays with the caller, in order");
    assert_eq!(id_of(b[0].data()), cap as u32);
    assert_eq!(tx.tx_burst(&mut b), 0, "still full: refused at once, never waits");
    assert_eq!(D::tx_missed(&port, 0), 2 * (24 - cap) as u64);
    // The device catches up; the next burst reclaims and goes through.
    h.with(|m, mem| m.hold_tx(mem, false));
    assert_eq!(tx.tx_burst(&mut b), 24 - cap);
    h.with(|m, _| {
        let got: Vec<u32> = m.tx_frames().iter().map(|(_, f)| id_of(f)).collect();
        assert_eq!(got, (0..24).collect::<Vec<_>>());
    });
    no_faults(&h);
    drop((b, tx, port));
    assert_eq!(p.in_use(), 0);
}

/// Both drivers: 16-entry rings and 70 000 frames forwarded from rx to tx, so that ring
/// slots and 16-bit indices wrap many times; every frame arrives and leaves once, in order.
/// Returns the device for the driver's own checks.
pub(crate) fn ring_indices_wrap_around<D: SimDriver>(d: &D) -> SimHandle<D::Model> {
    let p = test_pool("sim-wrap", 256);
    let (mut port, h) = d.open(1, 16, 16, &p);
    let mut rx = port.rx_queue(0).unwrap();
    let mut tx = port.tx_queue(0).unwrap();
    let mut out: Burst<Mbuf> = Burst::new();
    let total = 70_000u32;
    let (mut next, mut seen) = (0u32, 0u32);
    while seen < total {
        for _ in 0..5 {
            if next < total && h.with(|m, mem| m.inject(mem, &frame_to(d.mac(), next, 64))) {
                next += 1;
            }
        }
        rx.rx_burst(&mut out, 32);
        for m in out.iter() {
            assert_eq!(id_of(m.data()), seen);
            seen += 1;
        }
        let n = out.len();
        assert_eq!(tx.tx_burst(&mut out), n);
    }
    tx.flush();
    h.with(|m, _| {
        assert_eq!(m.tx_frames().len(), total as usize);
        assert_eq!(m.tx_frames().last().unwrap().1, frame_to(d.mac(), total - 1, 64));
    });
    let st = port.stats();
    assert_eq!((st.ipackets, st.opackets), (total as u64, total as u64));
    no_faults(&h);
    drop((rx, tx, port));
    assert_eq!(p.in_use(), 0);
    h
}

/// Both drivers: a device reset under a port with 5 packets done (not yet reclaimed) and 10
/// the device will never take: the port sees it (link down, dead), refuses every later packet
/// (the caller keeps and counts them), and counts the 10 as transmit errors, once.
pub(crate) fn a_device_reset_under_the_port_is_counted_to_the_last_packet<D: SimDriver>(d: &D) {
    let p = test_pool("sim-reset", 1024);
    let (mut port, h) = d.open(1, 64, 32, &p);
    let mut tx = port.tx_queue(0).unwrap();
    let mut b: Burst<Mbuf> = Burst::new();
    let push = |b: &mut Burst<Mbuf>, ids: std::ops::Range<u32>| {
        for i in ids {
            let _ = b.push(Mbuf::from_slice(&p, &frame_to(d.mac(), i, 64)).unwrap());
        }
    };
    push(&mut b, 0..5);
    assert_eq!(tx.tx_burst(&mut b), 5);
    h.with(|m, mem| m.hold_tx(mem, true));
    push(&mut b, 5..15);
    assert_eq!(tx.tx_burst(&mut b), 10);
    d.reset_under(&h);
    assert_eq!(port.link(), crate::port::LinkStatus::default(), "the reset is seen");
    assert!(D::is_dead(&port));
    push(&mut b, 15..22);
    assert_eq!(tx.tx_burst(&mut b), 0, "refused: the caller keeps and counts them");
    assert_eq!(b.len(), 7);
    tx.flush();
    assert_eq!(tx.tx_burst(&mut b), 0);
    let st = port.stats();
    assert_eq!((st.opackets, st.oerrors), (15, 10), "5 went out, 10 never will, counted once");
    assert_eq!(D::tx_missed(&port, 0), 14, "7 refused twice");
    h.with(|m, _| assert_eq!(m.tx_frames().len(), 5));
    d.after_reset(&port, &h);
    drop((b, tx, port));
    d.torn_down_after_reset(&h, &p);
}

/// Both drivers: a full transmit ring whose device completes nothing is no reset by itself
/// (a slow device); after a reset, the ring's periodic look at the device finds it with no
/// link check, and the packets in the ring are counted as transmit errors.
pub(crate) fn a_stuck_transmit_ring_finds_the_reset_without_the_link_check<D: SimDriver>(d: &D) {
    let p = test_pool("sim-stuck", 1024);
    let (mut port, h) = d.open(1, 64, 16, &p);
    let cap = d.tx_capacity(16);
    let mut tx = port.tx_queue(0).unwrap();
    h.with(|m, mem| m.hold_tx(mem, true));
    let mut b: Burst<Mbuf> = Burst::new();
    for i in 0..=cap as u32 {
        let _ = b.push(Mbuf::from_slice(&p, &frame_to(d.mac(), i, 64)).unwrap());
    }
    assert_eq!(tx.tx_burst(&mut b), cap);
    for _ in 0..3 * d.stuck_check() {
        assert_eq!(tx.tx_burst(&mut b), 0);
    }
    assert!(!D::is_dead(&port), "a full ring alone is no reset");
    assert_eq!(port.stats().oerrors, 0);
    d.reset_under(&h);
    for _ in 0..d.stuck_check() {
        assert_eq!(tx.tx_burst(&mut b), 0);
    }
    assert!(D::is_dead(&port), "the stuck ring looked at the device");
    assert_eq!(tx.tx_burst(&mut b), 0);
    assert_eq!(port.stats().oerrors, cap as u64, "the ring's packets never sent");
    assert_eq!(b.len(), 1);
    assert!(!port.link().up);
    drop((b, tx, port));
    d.torn_down_after_reset(&h, &p);
}

/// Both drivers: a transmit queue dropped while the device still holds frames waits for the
/// device to send them (the port's close resets it, which would lose them although counted
/// as sent); frames the device never sends are counted as transmit errors after a bounded
/// wait. Either way every mbuf comes back.
pub(crate) fn frames_the_device_holds_at_close_are_sent_or_counted<D: SimDriver>(d: &D)
where
    D::Model: Send,
{
    let p = test_pool("sim-close", 1024);
    let push = |b: &mut Burst<Mbuf>, ids: std::ops::Range<u32>| {
        for i in ids {
            let _ = b.push(Mbuf::from_slice(&p, &frame_to(d.mac(), i, 64)).unwrap());
        }
    };
    // The device catches up 100 ms after the close began: all 10 go out, no error.
    let (mut port, h) = d.open(1, 64, 32, &p);
    let mut tx = port.tx_queue(0).unwrap();
    let mut b: Burst<Mbuf> = Burst::new();
    h.with(|m, mem| m.hold_tx(mem, true));
    push(&mut b, 0..10);
    assert_eq!(tx.tx_burst(&mut b), 10);
    let dev = h.clone();
    let late = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        dev.with(|m, mem| m.hold_tx(mem, false));
    });
    drop(tx);
    late.join().unwrap();
    h.with(|m, _| {
        let got: Vec<u32> = m.tx_frames().iter().map(|(_, f)| id_of(f)).collect();
        assert_eq!(got, (0..10).collect::<Vec<_>>(), "sent before the close went on");
    });
    let st = port.stats();
    assert_eq!((st.opackets, st.oerrors), (10, 0));
    no_faults(&h);
    drop(port);
    assert_eq!(p.in_use(), 0);
    // The device never sends: the close gives up (500 ms without progress) and counts them.
    let (mut port, h) = d.open(1, 64, 32, &p);
    let mut tx = port.tx_queue(0).unwrap();
    h.with(|m, mem| m.hold_tx(mem, true));
    push(&mut b, 0..7);
    assert_eq!(tx.tx_burst(&mut b), 7);
    let t = std::time::Instant::now();
    drop(tx);
    assert!(t.elapsed() < std::time::Duration::from_secs(5), "the wait is bounded");
    let st = port.stats();
    assert_eq!((st.opackets, st.oerrors), (7, 7), "never sent: counted as errors, once");
    assert!(h.with(|m, _| m.tx_frames().is_empty()));
    no_faults(&h);
    drop(port);
    assert_eq!(p.in_use(), 0);
}

/// One l2fwd worker (`fwd::L2Fwd` on an `lcore`) forwarding between a port of driver `d0`
/// and one of `d1`, both ways at once (3000 frames of `len0(k)` bytes into port 0, 2000 of 64
/// into port 1): every frame leaves the other port once, in order, intact, with its MACs
/// rewritten; the counters agree; every mbuf comes back.
pub(crate) fn l2fwd_worker_forwards<D0: SimDriver, D1: SimDriver>(d0: &D0, d1: &D1, len0: impl Fn(u32) -> usize) {
    use crate::fwd::L2Fwd;
    use crate::lcore::{Lcore, Runtime};
    use crate::wire::MacAddr;
    let p = test_pool("sim-l2fwd", 2048);
    let (mut p0, h0) = d0.open_port(0, 1, 128, 128, &p);
    let (mut p1, h1) = d1.open_port(1, 1, 128, 128, &p);
    let mut fwd = L2Fwd::new();
    fwd.pair(0, 1).set_port_mac(0, p0.mac()).set_port_mac(1, p1.mac());
    let mut lcore = Lcore::new("w0", None, fwd);
    lcore.add_rx(0, p0.rx_queue(0).unwrap()).add_rx(1, p1.rx_queue(0).unwrap());
    lcore.add_tx(0, p0.tx_queue(0).unwrap()).unwrap();
    lcore.add_tx(1, p1.tx_queue(0).unwrap()).unwrap();
    let mut rt = Runtime::launch(vec![lcore]).unwrap();
    let (n0, n1) = (3000u32, 2000u32);
    let (mut i0, mut i1) = (0u32, 0u32);
    let start = std::time::Instant::now();
    loop {
        // Inject while the receive rings have room; the worker refills them.
        while i0 < n0 && h0.with(|m, mem| m.inject(mem, &frame_to(d0.mac(), i0, len0(i0)))) {
            i0 += 1;
        }
        while i1 < n1 && h1.with(|m, mem| m.inject(mem, &frame_to(d1.mac(), 1_000_000 + i1, 64))) {
            i1 += 1;
        }
        let out1 = h1.with(|m, _| m.tx_frames().len()) as u32;
        let out0 = h0.with(|m, _| m.tx_frames().len()) as u32;
        if out1 == n0 && out0 == n1 {
            break;
        }
        assert!(start.elapsed().as_secs() < 60, "stuck: {i0}/{i1} injected, {out1}/{out0} out");
        std::thread::yield_now();
    }
    rt.stop();
    assert!(rt.join().is_empty(), "no worker panicked");
    drop(rt);
    fn check<M: RingModel>(h: &SimHandle<M>, want: impl Fn(u32) -> Vec<u8>, n: u32, out_port: u8, mac: MacAddr) {
        h.with(|m, _| {
            assert_eq!(m.tx_frames().len(), n as usize);
            for (k, (_, f)) in m.tx_frames().iter().enumerate() {
                let want = want(k as u32);
                assert_eq!(&f[..6], &MacAddr::local(out_port).0, "destination rewritten");
                assert_eq!(&f[6..12], &mac.0, "source = the output port's MAC");
                assert_eq!(&f[12..], &want[12..], "frame {k} intact and in order");
            }
        })
    }
    check(&h1, |k| frame_to(d0.mac(), k, len0(k)), n0, 1, p1.mac());
    check(&h0, |k| frame_to(d1.mac(), 1_000_000 + k, 64), n1, 0, p0.mac());
    let (s0, s1) = (p0.stats(), p1.stats());
    assert_eq!((s0.ipackets, s1.opackets, s1.ipackets, s0.opackets), (n0 as u64, n0 as u64, n1 as u64, n1 as u64));
    no_faults(&h0);
    no_faults(&h1);
    drop((p0, p1));
    assert_eq!(p.in_use(), 0);
}

/// Both drivers: an mbuf of another pool (outside the DMA-mapped region) is copied into one
/// of the port's and freed; an empty one is dropped and counted as a transmit error.
pub(crate) fn foreign_pool_mbufs_are_copied_empty_ones_dropped<D: SimDriver>(d: &D) {
    let p = test_pool("sim-own", 1024);
    let other = test_pool("sim-foreign", 16);
    let (mut port, h) = d.open(1, 64, 64, &p);
    let frame = |i| frame_to(d.mac(), i, 80);
    let mut tx = port.tx_queue(0).unwrap();
    let mut b: Burst<Mbuf> = Burst::new();
    let _ = b.push(Mbuf::from_slice(&other, &frame(1)).unwrap());
    let _ = b.push(other.alloc().unwrap());
    let _ = b.push(Mbuf::from_slice(&p, &frame(2)).unwrap());
    assert_eq!(tx.tx_burst(&mut b), 3);
    assert_eq!(other.in_use(), 0, "the foreign mbuf was copied and freed");
    h.with(|m, _| assert_eq!(m.sent(), [frame(1), frame(2)]));
    let st = port.stats();
    assert_eq!((st.opackets, st.oerrors), (2, 1));
    no_faults(&h);
    drop((tx, port));
    assert_eq!(p.in_use(), 0);
}

/// A pool of `n` 2 KiB mbufs in normal memory.
pub(crate) fn test_pool(name: &str, n: u32) -> Mempool {
    test_pool_with(name, n, 2048)
}

/// A pool of `n` mbufs of `chunk` bytes in normal memory.
pub(crate) fn test_pool_with(name: &str, n: u32, chunk: u32) -> Mempool {
    let mut c = crate::mbuf::MempoolConfig::new(name, n);
    c.backing = crate::mbuf::MemBacking::Normal;
    c.cache_size = 32;
    c.chunk_size = chunk;
    Mempool::new(c).unwrap()
}

/// A frame of `len` bytes to `dst` whose bytes say which one it is (`i`, also big-endian at
/// offset 14 when it fits).
pub(crate) fn frame_to(dst: [u8; 6], i: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    for (k, b) in f[14..].iter_mut().enumerate() {
        *b = (i as usize + k) as u8;
    }
    if len >= 18 {
        f[14..18].copy_from_slice(&i.to_be_bytes());
    }
    f
}

/// Asserts neither the device model nor the IOMMU saw a fault.
pub(crate) fn no_faults<M: RingModel>(h: &SimHandle<M>) {
    h.with(|m, mem| {
        assert!(m.faults().is_empty(), "device model faults: {:#?}", m.faults());
        assert!(mem.faults.is_empty(), "IOMMU faults: {:#?}", mem.faults);
    });
}

/// One step of the ring property test ([`ring_ops`]).
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// The device receives `n` frames of `len` bytes.
    Inject(u8, u16),
    /// Poll rx with `max`.
    Rx(u8),
    /// Send up to this many of the frames received.
    Tx(u8),
    /// The device holds or releases transmit completions.
    Hold(bool),
    /// Flush the tx queue.
    Flush,
}

/// Steps of the ring property test, injected frames `lens` long.
pub(crate) fn op(lens: impl Strategy<Value = u16>) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u8..40, lens).prop_map(|(n, l)| Op::Inject(n, l)),
        4 => (1u8..=32).prop_map(Op::Rx),
        3 => (1u8..=32).prop_map(Op::Tx),
        1 => any::<bool>().prop_map(Op::Hold),
        1 => Just(Op::Flush),
    ]
}

/// The ring property test both drivers run: any interleaving of device and driver steps on
/// queue 0 of `port`. Frames of at most `room` bytes arrive once, in order, intact; longer
/// ones are counted as receive errors; everything sent leaves once, in order; refusals are
/// the queue's `missed` (`missed()`); the port's counters add up. Then the queues and the
/// port are dropped: every mbuf of `pool` must be back, every mapping gone, nothing faulted.
/// What the device looks like after the teardown is the caller's to check.
pub(crate) fn ring_ops<P, M>(
    ops: Vec<Op>,
    mut port: P,
    missed: impl Fn(&P) -> u64,
    h: &SimHandle<M>,
    pool: &Mempool,
    dst: [u8; 6],
    room: usize,
) -> Result<(), TestCaseError>
where
    P: crate::port::Port<Buf = Mbuf>,
    M: RingModel,
{
    let mut rx = port.rx_queue(0).unwrap();
    let mut tx = port.tx_queue(0).unwrap();
    let (mut next, mut delivered, mut oversize) = (0u32, vec![], 0u64);
    let mut received: Vec<Vec<u8>> = vec![];
    let mut pending: Burst<Mbuf> = Burst::new();
    let mut sent: Vec<Vec<u8>> = vec![];
    let mut refused = 0u64;
    for o in ops {
        match o {
            Op::Inject(n, len) => {
                for _ in 0..n {
                    let f = frame_to(dst, next, len as usize);
                    next += 1;
                    if h.with(|m, mem| m.inject(mem, &f)) {
                        if f.len() <= room {
                            delivered.push(f)
                        } else {
                            oversize += 1
                        }
                    }
                }
            }
            Op::Rx(max) => {
                let mut out: Burst<Mbuf> = Burst::new();
                let n = rx.rx_burst(&mut out, max as usize);
                prop_assert!(n <= max as usize);
                received.extend(out.iter().map(|m| m.data().to_vec()));
                let n = out.len();
                // What does not fit the pending burst is dropped (freed).
                out.drain_front(n, |m| {
                    let _ = pending.push(m);
                });
            }
            Op::Tx(k) => {
                let mut b: Burst<Mbuf> = Burst::new();
                for _ in 0..k.min(pending.len() as u8) {
                    if let Some(m) = pending.pop() {
                        let _ = b.push(m);
                    }
                }
                let offered = b.len();
                let before: Vec<Vec<u8>> = b.iter().map(|m| m.data().to_vec()).collect();
                let n = tx.tx_burst(&mut b);
                sent.extend(before[..n].iter().cloned());
                refused += (offered - n) as u64;
                prop_assert_eq!(b.len(), offered - n);
            }
            Op::Hold(on) => h.with(|m, mem| m.hold_tx(mem, on)),
            Op::Flush => tx.flush(),
        }
    }
    // Drain what is left on the device side.
    let mut out: Burst<Mbuf> = Burst::new();
    while rx.rx_burst(&mut out, 32) > 0 {
        received.extend(out.iter().map(|m| m.data().to_vec()));
        out.clear();
    }
    h.with(|m, mem| m.hold_tx(mem, false));
    prop_assert_eq!(&received, &delivered);
    let st = port.stats();
    prop_assert_eq!(st.ipackets, delivered.len() as u64);
    prop_assert_eq!(st.ierrors, oversize);
    prop_assert_eq!(st.opackets, sent.len() as u64);
    prop_assert_eq!(missed(&port), refused);
    prop_assert_eq!(&h.with(|m, _| m.sent()), &sent);
    drop((pending, out, rx, tx, port));
    prop_assert_eq!(pool.in_use(), 0);
    no_faults(h);
    h.with(|_, mem| assert_eq!(mem.live_maps(), 0));
    Ok(())
}
