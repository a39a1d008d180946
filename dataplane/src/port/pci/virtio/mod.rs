//! virtio-net, modern (virtio 1.x over PCI), as a poll-mode [`Port`].
//!
//! # Bring-up (virtio 1.2, 3.1.1)
//! 1. The virtio structures are found by walking the capability list: vendor capabilities
//!    (id 0x09) of type common, notify and device configuration, each naming a BAR, an
//!    offset and a length. The first usable one of each type wins (a notify structure in an
//!    I/O-port BAR, which VFIO cannot map, is skipped for the next one).
//! 2. Reset (status 0, wait until it reads 0), bus mastering on, `ACKNOWLEDGE`, `DRIVER`.
//! 3. Features: `VERSION_1` and `ACCESS_PLATFORM` are required (behind VFIO the device must
//!    translate through the IOMMU); `MAC`, `STATUS`, `MRG_RXBUF`, `SPEED_DUPLEX`,
//!    `ORDER_PLATFORM` are taken when offered; `CTRL_VQ` and `CTRL_RX` when offered (for
//!    promiscuous mode); `MQ` when more than one queue pair is asked for. Then
//!    `FEATURES_OK`, read back: a device that clears it refused the set.
//! 4. Queues: receive queue `2 i`, transmit queue `2 i + 1` for each pair `i`, the control
//!    queue after the device's last pair; each a split virtqueue (`vq.rs`) with
//!    `VRING_AVAIL_F_NO_INTERRUPT` set (we poll, no MSI-X). Then `DRIVER_OK`.
//! 5. Receive rings are filled, and with several pairs `VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET`
//!    tells the device how many to use.
//!
//! # Data path
//! Every frame is preceded by the 12-byte `virtio_net_hdr` (the `VERSION_1` layout). It
//! lives in the mbuf's headroom, so nothing is copied:
//! - **Receive**: each buffer posted is one descriptor covering `[data - 12, chunk end)` of
//!   a fresh mbuf; the device writes the header just before the mbuf's data offset and the
//!   frame exactly at it. A used buffer becomes the mbuf it always was, with its length set.
//!   The ring is refilled from the pool in bursts; an empty pool counts `rx_nombuf` and the
//!   ring runs short until the pool recovers. With `MRG_RXBUF`, a frame longer than the data
//!   room arrives spread over several buffers (`num_buffers`): it is dropped and counted in
//!   the queue's errors, and every buffer it used is recycled. Without it, the device
//!   drops such frames itself.
//! - **Transmit**: a zeroed header is prepended in the headroom and one descriptor covers
//!   header and frame. Completed buffers return to the pool in bursts when the ring runs
//!   low, and on [`TxQueue::flush`]. A full ring takes fewer packets than offered (the rest
//!   stay with the caller) and counts the refusals in the queue's `missed` counter; it never
//!   waits. An mbuf from another pool is copied into this port's pool (its region is the
//!   one mapped for DMA).
//! - A device reset under the driver (see `hold.rs`): seen by the link check (the device
//!   left `DRIVER_OK`, or asks for a reset) or by a transmit ring that stays full while the
//!   device status says so (read once every 64 refused bursts, `STUCK_CHECK`). The transmit
//!   queues then count what was left in their rings as errors and refuse everything.
//! - Notifications are written only when the device asks for them (`VRING_USED_F_NO_NOTIFY`
//!   clear).
//!
//! Per-queue counters (packets, bytes, errors, `rx_nombuf`) are in [`PortCounters`]; the
//! port sums them.
//!
//! # Teardown
//! See [the module above](super): rings are parked until the device has been reset.

pub mod regs;
#[cfg(test)]
pub(crate) mod sim;
#[cfg(test)]
mod tests;
mod vq;

use super::dma::{DmaArea, PoolDma};
use super::hold::{alloc_refill, DeviceHold, Quiesce, Slots};
use super::{barrier, fallback_mac, DeviceAccess, PciError, PciPortConfig};
use crate::buf::{PacketBuf, PacketMeta};
use crate::burst::Burst;
use crate::mbuf::{Mbuf, Mempool};
use crate::port::{
    drain_at_close, BoxRx, BoxTx, LinkStatus, MacAddr, Port, PortCounters, PortError, PortInfo, PortStats, QueueClaims,
    RxQueue, TxQueue,
};
use regs::{common, feature, feature::bit, hdr, netcfg, ring, status};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vfio::pci::{self as cfg, PciId};
use vq::SplitQueue;

/// The driver's name in [`PortInfo::driver`].
pub const DRIVER_NAME: &str = "pci:virtio-net";

/// Most receive buffers posted per refill (one allocation burst).
const REFILL_BURST: usize = 64;
/// Refill once this many receive descriptors are free (DPDK's `rx_free_thresh`).
const REFILL_MIN: usize = 32;
/// Control queue entries (a command is a chain of three).
const CTRL_RING: u16 = 16;
/// How long the device gets for a reset or a control command.
const DEVICE_TIMEOUT: Duration = Duration::from_secs(2);
/// Smallest receive data room without `MRG_RXBUF`: a 1514-byte frame plus a VLAN tag.
const MIN_RX_ROOM: usize = 1518;
/// A transmit ring full with nothing completed reads the device status once every this many
/// refused bursts, to tell a device reset under us from a slow device.
const STUCK_CHECK: u32 = 64;

/// Why a device status shows the device is no longer running with us (reset under us, or
/// failed), if it does.
fn status_dead(st: u8) -> Option<&'static str> {
    if st == 0xff {
        Some("the device reads all ones")
    } else if st & status::DRIVER_OK == 0 {
        Some("the device left DRIVER_OK")
    } else if st & (status::DEVICE_NEEDS_RESET | status::FAILED) != 0 {
        Some("the device asks for a reset")
    } else {
        None
    }
}

/// True when the config-space header `hdr` is a virtio-net device this driver can try:
/// modern `1af4:1041`, or transitional `1af4:1000` with subsystem id 1 (net).
pub fn is_virtio_net(hdr: &[u8]) -> bool {
    match PciId::from_config(hdr) {
        Some(PciId { vendor: regs::VENDOR, device: regs::DEVICE_NET_MODERN }) => true,
        Some(PciId { vendor: regs::VENDOR, device: regs::DEVICE_NET_TRANSITIONAL }) => {
            cfg::read_u16(hdr, cfg::SUBSYSTEM_ID) == Some(regs::TYPE_NET)
        }
        _ => false,
    }
}

/// Where one virtio structure lives: BAR, offset, length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Loc {
    bar: u8,
    off: u32,
    len: u32,
}

/// The structures the capability walk found.
#[derive(Debug, Clone, Copy)]
struct Caps {
    common: Loc,
    notify: Loc,
    notify_mult: u32,
    device: Loc,
}

/// Finds the common, notify and device configuration structures, mapping their BARs.
fn find_caps<D: DeviceAccess>(dev: &mut D, hdr: &[u8]) -> Result<Caps, PciError> {
    let name = dev.name().to_string();
    let bad = |msg: String| PciError::Device { device: name.clone(), msg };
    let list = cfg::capabilities(hdr).map_err(|e| bad(format!("config space: {e}")))?;
    let (mut common, mut notify, mut device) = (None, None, None);
    for c in list.iter().filter(|c| c.id == cfg::CAP_ID_VENDOR) {
        let at = |f: u16| c.offset as u16 + f;
        let byte = |f: u16| hdr.get(at(f) as usize).copied().unwrap_or(0);
        let (cap_len, ty, bar) = (byte(regs::cap::LEN), byte(regs::cap::CFG_TYPE), byte(regs::cap::BAR));
        let (Some(off), Some(len)) =
            (cfg::read_u32(hdr, at(regs::cap::OFFSET)), cfg::read_u32(hdr, at(regs::cap::LENGTH)))
        else {
            continue;
        };
        let slot = match ty {
            regs::CAP_COMMON_CFG => &mut common,
            regs::CAP_NOTIFY_CFG => &mut notify,
            regs::CAP_DEVICE_CFG => &mut device,
            _ => continue,
        };
        let min_len = if ty == regs::CAP_NOTIFY_CFG { regs::cap::NOTIFY_SIZE } else { regs::cap::SIZE };
        if slot.is_some() || cap_len < min_len || bar > 5 {
            continue;
        }
        let mult = if ty == regs::CAP_NOTIFY_CFG {
            match cfg::read_u32(hdr, at(regs::cap::NOTIFY_OFF_MULTIPLIER)) {
                Some(m) => m,
                None => continue,
            }
        } else {
            0
        };
        let bar_len = match dev.map_bar(bar) {
            Ok(l) => l,
            Err(e) => {
                log::debug!("{name}: virtio structure type {ty} in BAR {bar} skipped: {e}");
                continue;
            }
        };
        if off as u64 + len as u64 > bar_len {
            log::debug!("{name}: virtio structure type {ty} at {off:#x}+{len:#x} is past BAR {bar}'s end {bar_len:#x}");
            continue;
        }
        *slot = Some((Loc { bar, off, len }, mult));
    }
    let common = common.ok_or_else(|| {
        bad("no usable virtio common configuration capability: not a modern (virtio 1.x) device, or a legacy-only one \
             (QEMU: -device virtio-net-pci,disable-legacy=on)"
            .into())
    })?;
    if common.0.len < common::MIN_LEN {
        return Err(bad(format!("virtio common configuration is {} bytes, below {}", common.0.len, common::MIN_LEN)));
    }
    let notify = notify.ok_or_else(|| bad("no usable virtio notification capability in a memory BAR".into()))?;
    let device = device.ok_or_else(|| bad("no virtio device configuration capability".into()))?;
    Ok(Caps { common: common.0, notify: notify.0, notify_mult: notify.1, device: device.0 })
}

/// virtio's part of the device state: where the structures are, what was negotiated.
#[derive(Debug)]
pub(crate) struct Virtio {
    caps: Caps,
    features: u64,
}

impl<D: DeviceAccess> Quiesce<D> for Virtio {
    /// A virtio reset: device status 0, then wait until it reads back 0.
    fn quiesce(&self, dev: &D) -> Result<(), PciError> {
        reset(dev, &self.caps)
    }
}

/// Resets the device and waits (polling) until the status reads back 0.
fn reset<D: DeviceAccess>(dev: &D, caps: &Caps) -> Result<(), PciError> {
    let at = caps.common.off + common::DEVICE_STATUS;
    dev.write8(caps.common.bar, at, 0);
    let start = Instant::now();
    let mut spins = 0u32;
    while dev.read8(caps.common.bar, at) != 0 {
        if start.elapsed() > DEVICE_TIMEOUT {
            return Err(PciError::Timeout { device: dev.name().to_string(), what: "the device reset" });
        }
        spins += 1;
        if spins > 100 {
            std::thread::sleep(Duration::from_micros(100));
        } else {
            std::hint::spin_loop();
        }
    }
    Ok(())
}

/// The device, shared by the port and its queues (see [`DeviceHold`]).
pub(crate) type Shared<D> = DeviceHold<D, Virtio>;

impl<D: DeviceAccess> DeviceHold<D, Virtio> {
    #[inline(always)]
    fn c_r8(&self, off: u32) -> u8 {
        self.dev.read8(self.state.caps.common.bar, self.state.caps.common.off + off)
    }
    #[inline(always)]
    fn c_r16(&self, off: u32) -> u16 {
        self.dev.read16(self.state.caps.common.bar, self.state.caps.common.off + off)
    }
    #[inline(always)]
    fn c_r32(&self, off: u32) -> u32 {
        self.dev.read32(self.state.caps.common.bar, self.state.caps.common.off + off)
    }
    #[inline(always)]
    fn c_w8(&self, off: u32, v: u8) {
        self.dev.write8(self.state.caps.common.bar, self.state.caps.common.off + off, v)
    }
    #[inline(always)]
    fn c_w16(&self, off: u32, v: u16) {
        self.dev.write16(self.state.caps.common.bar, self.state.caps.common.off + off, v)
    }
    #[inline(always)]
    fn c_w32(&self, off: u32, v: u32) {
        self.dev.write32(self.state.caps.common.bar, self.state.caps.common.off + off, v)
    }
    /// A 64-bit field as two 32-bit writes, low half first (allowed by virtio 4.1.3.1).
    fn c_w64(&self, off: u32, v: u64) {
        self.c_w32(off, v as u32);
        self.c_w32(off + 4, (v >> 32) as u32);
    }
    fn d_r8(&self, off: u32) -> u8 {
        if off >= self.state.caps.device.len {
            return 0;
        }
        self.dev.read8(self.state.caps.device.bar, self.state.caps.device.off + off)
    }
    fn d_r16(&self, off: u32) -> u16 {
        if off + 2 > self.state.caps.device.len {
            return 0;
        }
        self.dev.read16(self.state.caps.device.bar, self.state.caps.device.off + off)
    }
    fn d_r32(&self, off: u32) -> u32 {
        if off + 4 > self.state.caps.device.len {
            return 0;
        }
        self.dev.read32(self.state.caps.device.bar, self.state.caps.device.off + off)
    }

    fn status(&self) -> u8 {
        self.c_r8(common::DEVICE_STATUS)
    }

    fn add_status(&self, bits: u8) {
        let s = self.status();
        self.c_w8(common::DEVICE_STATUS, s | bits);
    }

    fn has(&self, f: u32) -> bool {
        self.state.features & bit(f) != 0
    }

    /// Resets the device.
    fn reset(&self) -> Result<(), PciError> {
        reset(&self.dev, &self.state.caps)
    }

    /// The 64 feature bits the device offers.
    fn device_features(&self) -> u64 {
        self.c_w32(common::DEVICE_FEATURE_SELECT, 0);
        let lo = self.c_r32(common::DEVICE_FEATURE) as u64;
        self.c_w32(common::DEVICE_FEATURE_SELECT, 1);
        let hi = self.c_r32(common::DEVICE_FEATURE) as u64;
        lo | hi << 32
    }

    fn set_driver_features(&self, f: u64) {
        self.c_w32(common::DRIVER_FEATURE_SELECT, 0);
        self.c_w32(common::DRIVER_FEATURE, f as u32);
        self.c_w32(common::DRIVER_FEATURE_SELECT, 1);
        self.c_w32(common::DRIVER_FEATURE, (f >> 32) as u32);
    }

    /// Reads device configuration with `f`, again if the configuration generation changed
    /// meanwhile (a consistent snapshot of multi-field values).
    fn read_config<T>(&self, f: impl Fn(&Self) -> T) -> T {
        for _ in 0..100 {
            let g = self.c_r8(common::CONFIG_GENERATION);
            let v = f(self);
            if self.c_r8(common::CONFIG_GENERATION) == g {
                return v;
            }
        }
        f(self)
    }

    /// Programs virtqueue `index` with a ring of up to `want` entries.
    fn setup_queue(&self, index: u16, want: u16) -> Result<SplitQueue, PciError> {
        let bad = |msg: String| PciError::Device { device: self.name.clone(), msg };
        self.c_w16(common::QUEUE_SELECT, index);
        let max = self.c_r16(common::QUEUE_SIZE);
        if max == 0 || max == u16::MAX {
            return Err(bad(format!("virtqueue {index} is not available")));
        }
        // Split rings are powers of two; a device maximum that is not one is rounded down.
        let size = 1u16 << want.min(max).clamp(1, ring::MAX_SIZE).ilog2();
        if size < 4 {
            return Err(bad(format!("virtqueue {index} has only {max} entries")));
        }
        let units = self.c_r16(common::QUEUE_NOTIFY_OFF) as u64;
        let notify = units * self.state.caps.notify_mult as u64;
        if notify + 2 > self.state.caps.notify.len as u64 {
            return Err(bad(format!(
                "virtqueue {index}: notify offset {notify:#x} is past the notify structure ({:#x} bytes)",
                self.state.caps.notify.len
            )));
        }
        let mem = self.dev.alloc_dma(vq::layout(size).2)?;
        let q = SplitQueue::new(mem, index, size, self.state.caps.notify.off + notify as u32);
        let (desc, avail, used) = q.iovas();
        self.c_w16(common::QUEUE_SIZE, size);
        self.c_w64(common::QUEUE_DESC, desc);
        self.c_w64(common::QUEUE_DRIVER, avail);
        self.c_w64(common::QUEUE_DEVICE, used);
        self.c_w16(common::QUEUE_ENABLE, 1);
        if self.c_r16(common::QUEUE_ENABLE) != 1 {
            return Err(bad(format!("virtqueue {index} did not enable")));
        }
        Ok(q)
    }

    /// Rings queue `q`'s doorbell.
    #[inline(always)]
    fn notify(&self, q: &SplitQueue) {
        // The device woken by the doorbell must find the avail.idx we stored before it.
        barrier::io_wmb();
        self.dev.write16(self.state.caps.notify.bar, q.notify_off(), q.index());
    }
}

/// A virtqueue and the mbufs lent through it (slot = descriptor id).
#[derive(Debug)]
struct MbufRing {
    vq: SplitQueue,
    slots: Slots,
}

impl MbufRing {
    fn new(vq: SplitQueue) -> Self {
        let slots = Slots::new(vq.size() as usize);
        MbufRing { vq, slots }
    }

    /// Descriptors the device holds (made available, not yet returned used).
    fn held(&self) -> u16 {
        self.vq.size() - self.vq.nfree()
    }

    /// Takes back the mbuf of descriptor `id` (from the device's used ring); `None` for an
    /// id the device should not have returned.
    #[inline(always)]
    fn take(&mut self, id: u32) -> Option<Mbuf> {
        let m = self.slots.take(id as usize)?;
        self.vq.free_desc(id as u16);
        Some(m)
    }
}

/// What a receive queue needs besides its ring.
struct RxEnv<D: DeviceAccess> {
    shared: Arc<Shared<D>>,
    pool: Mempool,
    counters: Arc<PortCounters>,
    /// IOVA of an address in the pool = address + delta (wrapping).
    delta: u64,
    /// Posted buffer length: header + data room.
    buf_len: u32,
    mrg: bool,
    q: u16,
    port: u16,
}

/// A receive queue (receiveq `q`).
struct VirtioRx<D: DeviceAccess> {
    ring: Option<MbufRing>,
    /// Buffers still to drop of a frame that spanned several.
    skip: u16,
    env: RxEnv<D>,
}

impl<D: DeviceAccess> VirtioRx<D> {
    /// Posts fresh mbufs (one burst at most) when the ring has `min` free descriptors or
    /// more; `false` when the pool ran dry (counted in `rx_nombuf`).
    #[inline]
    fn refill(ring: &mut MbufRing, env: &RxEnv<D>, min: usize) -> bool {
        let free = ring.vq.nfree() as usize;
        if free == 0 || free < min {
            return true;
        }
        let mut b: Burst<Mbuf, REFILL_BURST> = Burst::new();
        let n = alloc_refill(&env.pool, free, &mut b);
        if n == 0 {
            env.counters.rx(env.q as usize).nombuf.inc();
            return false;
        }
        let (delta, len) = (env.delta, env.buf_len);
        let MbufRing { vq, slots } = ring;
        b.drain_front(n, |m| {
            // n <= free: a descriptor is always there.
            let Some(id) = vq.alloc_desc() else { return };
            // The header goes in the headroom, the frame lands at the mbuf's data offset.
            let addr = (m.data().as_ptr() as u64).wrapping_add(delta).wrapping_sub(hdr::LEN as u64);
            vq.set_desc(id, addr, len, ring::DESC_F_WRITE, 0);
            vq.push_avail(id);
            slots.put(id as usize, m);
        });
        // Recycled buffers: full barrier (see vq's docs).
        vq.publish_full();
        if vq.device_wants_notify() {
            env.shared.notify(vq);
        }
        true
    }

    /// Fills the whole ring (at open).
    fn fill(&mut self) -> bool {
        let Some(ring) = self.ring.as_mut() else { return false };
        while ring.vq.nfree() > 0 {
            if !Self::refill(ring, &self.env, 1) {
                return false;
            }
        }
        true
    }
}

impl<D: DeviceAccess> RxQueue for VirtioRx<D> {
    type Buf = Mbuf;

    fn rx_burst(&mut self, out: &mut Burst<Mbuf>, max: usize) -> usize {
        let Some(ring) = self.ring.as_mut() else { return 0 };
        let env = &self.env;
        let want = max.min(out.spare());
        let pending = ring.vq.used_pending();
        let (mut got, mut bytes, mut bad, mut used) = (0usize, 0u64, 0u64, 0u16);
        if pending > 0 && want > 0 {
            // used.idx before the entries and the frames it covers.
            barrier::dma_rmb();
            let meta = PacketMeta { port: env.port, queue: env.q, ..Default::default() };
            while used < pending && got < want {
                let (id, len) = ring.vq.used_elem(used);
                used += 1;
                let Some(mut m) = ring.take(id) else {
                    // An id we did not post, or posted once and got twice: a device fault.
                    bad += 1;
                    continue;
                };
                if self.skip > 0 {
                    // A later buffer of a frame already dropped.
                    self.skip -= 1;
                    continue;
                }
                if len < hdr::LEN as u32 || len > env.buf_len {
                    bad += 1;
                    continue;
                }
                if env.mrg {
                    // num_buffers, in the header just before the data.
                    let nb = match m.prepend(hdr::LEN) {
                        Some(h) => u16::from_le_bytes([h[hdr::NUM_BUFFERS], h[hdr::NUM_BUFFERS + 1]]),
                        None => 1,
                    };
                    m.adj(hdr::LEN);
                    if nb > 1 {
                        // Larger than the mbuf data room: dropped, counted once.
                        self.skip = nb - 1;
                        bad += 1;
                        continue;
                    }
                }
                let n = len as usize - hdr::LEN;
                m.set_len(n);
                m.set_meta(meta);
                bytes += n as u64;
                got += 1;
                // Room was checked: got < want <= spare.
                let _ = out.push(m);
            }
            ring.vq.consume_used(used);
        }
        Self::refill(ring, env, REFILL_MIN.min(ring.vq.size() as usize / 2));
        if got > 0 || bad > 0 {
            let c = env.counters.rx(env.q as usize);
            c.packets.add(got as u64);
            c.bytes.add(bytes);
            if bad > 0 {
                c.errors.add(bad);
            }
        }
        got
    }
}

impl<D: DeviceAccess> Drop for VirtioRx<D> {
    fn drop(&mut self) {
        if let Some(r) = self.ring.take() {
            self.env.shared.park(Box::new(r));
        }
    }
}

/// What a transmit queue needs besides its ring.
struct TxEnv<D: DeviceAccess> {
    shared: Arc<Shared<D>>,
    pool: Mempool,
    counters: Arc<PortCounters>,
    /// IOVA of an address in the pool = address + delta (wrapping).
    delta: u64,
    /// Reclaim completed buffers when fewer descriptors than this are free.
    free_thresh: usize,
    q: u16,
}

/// A transmit queue (transmitq `q`).
struct VirtioTx<D: DeviceAccess> {
    ring: Option<MbufRing>,
    env: TxEnv<D>,
    /// Refused bursts since the device last completed a buffer.
    stuck: u32,
    /// The device was reset under us and what was in flight is counted.
    dead: bool,
}

impl<D: DeviceAccess> VirtioTx<D> {
    /// Returns the buffers the device is done with to the pool, in bursts.
    #[inline]
    fn reclaim(ring: &mut MbufRing, env: &TxEnv<D>) {
        let pending = ring.vq.used_pending();
        if pending == 0 {
            return;
        }
        // used.idx before the entries, and before the buffers are reused (stores).
        barrier::dma_rmb();
        let mut b: Burst<Mbuf, 64> = Burst::new();
        let mut bad = 0u64;
        for i in 0..pending {
            let (id, _) = ring.vq.used_elem(i);
            match ring.take(id) {
                Some(m) => {
                    if let Err(m) = b.push(m) {
                        Mbuf::free_bulk(&mut b);
                        let _ = b.push(m);
                    }
                }
                None => bad += 1,
            }
        }
        ring.vq.consume_used(pending);
        Mbuf::free_bulk(&mut b);
        if bad > 0 {
            env.counters.tx(env.q as usize).errors.add(bad);
        }
    }

    /// The device was reset under us: takes what it completed before, and counts the buffers
    /// left in the ring as transmit errors (it will never send them), once. They stay in
    /// the ring until the teardown.
    #[cold]
    fn abandon(&mut self) {
        let Some(ring) = self.ring.as_mut() else { return };
        if self.dead {
            return;
        }
        Self::reclaim(ring, &self.env);
        let left = ring.held();
        if left > 0 {
            self.env.counters.tx(self.env.q as usize).errors.add(left as u64);
        }
        self.dead = true;
    }

    /// A full ring the device completes nothing of: every [`STUCK_CHECK`] times, whether the
    /// device status says it was reset under us.
    #[cold]
    fn check_stuck(&mut self) {
        self.stuck = self.stuck.wrapping_add(1);
        if self.stuck % STUCK_CHECK != 0 {
            return;
        }
        let st = self.env.shared.status();
        if let Some(why) = status_dead(st) {
            self.env
                .shared
                .mark_dead(&format!("transmit queue {} found its ring full and {why} (status {st:#x})", self.env.q));
        }
    }
}

impl<D: DeviceAccess> TxQueue for VirtioTx<D> {
    type Buf = Mbuf;

    fn tx_burst(&mut self, pkts: &mut Burst<Mbuf>) -> usize {
        if self.env.shared.is_dead() {
            // Reset under us: nothing more goes into the ring; the caller keeps (and counts)
            // every packet.
            self.abandon();
            self.env.counters.tx(self.env.q as usize).missed.add(pkts.len() as u64);
            return 0;
        }
        let Some(ring) = self.ring.as_mut() else { return 0 };
        let env = &self.env;
        if (ring.vq.nfree() as usize) < pkts.len().max(env.free_thresh) {
            let before = ring.vq.nfree();
            Self::reclaim(ring, env);
            if ring.vq.nfree() != before {
                self.stuck = 0;
            }
        }
        let n = pkts.len().min(ring.vq.nfree() as usize);
        let refused = pkts.len() - n;
        let c = env.counters.tx(env.q as usize);
        if refused > 0 {
            // Ring full: the caller keeps (and counts) the rest.
            c.missed.add(refused as u64);
        }
        if n == 0 {
            if refused > 0 {
                self.check_stuck();
            }
            return 0;
        }
        let (mut sent, mut bytes, mut bad) = (0u64, 0u64, 0u64);
        let delta = env.delta;
        let pool = &env.pool;
        let MbufRing { vq, slots } = ring;
        pkts.drain_front(n, |m| {
            // The port's pool is the region mapped for DMA; another pool's mbuf is copied.
            let mut m = if pool.owns(&m) {
                m
            } else {
                match Mbuf::from_slice(pool, m.data()) {
                    Ok(c) => c,
                    Err(_) => {
                        bad += 1;
                        return;
                    }
                }
            };
            let len = m.len();
            if len == 0 {
                bad += 1;
                return;
            }
            match m.prepend(hdr::LEN) {
                // No offloads: an all-zero header (flags 0, GSO_NONE).
                Some(h) => h.fill(0),
                None => {
                    bad += 1;
                    return;
                }
            }
            // n <= free: a descriptor is always there.
            let Some(id) = vq.alloc_desc() else {
                bad += 1;
                return;
            };
            vq.set_desc(id, (m.data().as_ptr() as u64).wrapping_add(delta), (len + hdr::LEN) as u32, 0, 0);
            vq.push_avail(id);
            slots.put(id as usize, m);
            sent += 1;
            bytes += len as u64;
        });
        if sent > 0 {
            vq.publish();
            if vq.device_wants_notify() {
                env.shared.notify(vq);
            }
            c.packets.add(sent);
            c.bytes.add(bytes);
        }
        if bad > 0 {
            c.errors.add(bad);
        }
        n
    }

    fn flush(&mut self) {
        if self.env.shared.is_dead() {
            self.abandon();
        } else if let Some(ring) = self.ring.as_mut() {
            Self::reclaim(ring, &self.env);
        }
    }
}

impl<D: DeviceAccess> Drop for VirtioTx<D> {
    /// The device is reset when the port closes, and a frame it has not sent by then is lost
    /// although counted as sent: waits (bounded, [`drain_at_close`]) until the device has used
    /// every buffer the ring holds, and counts what it never sent as transmit errors.
    fn drop(&mut self) {
        if self.env.shared.is_dead() {
            self.abandon();
        } else if let (Some(ring), false) = (self.ring.as_mut(), self.dead) {
            let left = drain_at_close(ring, |r| r.held() as u64, |r| Self::reclaim(r, &self.env));
            if left > 0 {
                log::warn!(
                    "{}: transmit queue {} closed with {left} frame(s) the device never sent; counted as tx errors",
                    self.env.shared.name,
                    self.env.q
                );
                self.abandon();
            }
        }
        if let Some(r) = self.ring.take() {
            self.env.shared.park(Box::new(r));
        }
    }
}

/// The control virtqueue and its command buffer.
#[derive(Debug)]
struct CtrlQueue {
    vq: SplitQueue,
    buf: DmaArea,
    /// A command timed out: the device may still hold the buffer.
    broken: bool,
}

/// Offsets in the control command buffer.
const CTRL_DATA: usize = 16;
const CTRL_ACK: usize = 128;

impl CtrlQueue {
    /// Sends one command and waits (polling) for the device's answer.
    fn command<D: DeviceAccess>(&mut self, sh: &Shared<D>, class: u8, cmd: u8, data: &[u8]) -> Result<(), PciError> {
        let err = |msg: String| PciError::Device { device: sh.name.clone(), msg };
        if self.broken {
            return Err(err("the control virtqueue stopped answering earlier".into()));
        }
        if data.len() > CTRL_ACK - CTRL_DATA {
            return Err(err(format!("control command of {} bytes is too long", data.len())));
        }
        let b = &self.buf;
        b.write_u8(0, class);
        b.write_u8(1, cmd);
        b.write_bytes(CTRL_DATA, data);
        b.write_u8(CTRL_ACK, 0xff);
        let base = b.iova();
        // One command at a time: the queue is idle, ids come straight off the free stack.
        let (Some(h), Some(d), Some(a)) = (self.vq.alloc_desc(), self.vq.alloc_desc(), self.vq.alloc_desc()) else {
            return Err(err("control virtqueue out of descriptors".into()));
        };
        if data.is_empty() {
            self.vq.set_desc(h, base, 2, ring::DESC_F_NEXT, a);
        } else {
            self.vq.set_desc(h, base, 2, ring::DESC_F_NEXT, d);
            self.vq.set_desc(d, base + CTRL_DATA as u64, data.len() as u32, ring::DESC_F_NEXT, a);
        }
        self.vq.set_desc(a, base + CTRL_ACK as u64, 1, ring::DESC_F_WRITE, 0);
        self.vq.push_avail(h);
        // The device writes the ack byte we wrote before: full barrier.
        self.vq.publish_full();
        if self.vq.device_wants_notify() {
            sh.notify(&self.vq);
        }
        let start = Instant::now();
        while self.vq.used_pending() == 0 {
            if start.elapsed() > DEVICE_TIMEOUT {
                self.broken = true;
                return Err(PciError::Timeout { device: sh.name.clone(), what: "a control virtqueue command" });
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        barrier::dma_rmb();
        let (id, _) = self.vq.used_elem(0);
        self.vq.consume_used(1);
        for i in [a, d, h] {
            self.vq.free_desc(i);
        }
        if id != h as u32 {
            self.broken = true;
            return Err(err(format!("control virtqueue returned descriptor {id}, not {h}")));
        }
        match b.read_u8(CTRL_ACK) {
            regs::ctrl::OK => Ok(()),
            ack => Err(err(format!("device refused control command class {class} command {cmd} (ack {ack})"))),
        }
    }
}

/// A virtio-net port. See the module docs.
pub struct VirtioNetPort<D: DeviceAccess = super::VfioDevice> {
    rx: Vec<Option<VirtioRx<D>>>,
    tx: Vec<Option<VirtioTx<D>>>,
    ctrl: Option<CtrlQueue>,
    shared: Arc<Shared<D>>,
    claims: QueueClaims,
    counters: Arc<PortCounters>,
    id: u16,
    pairs: u16,
    mac: MacAddr,
    pool: Mempool,
}

impl<D: DeviceAccess> std::fmt::Debug for VirtioNetPort<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtioNetPort")
            .field("device", &self.shared.name)
            .field("id", &self.id)
            .field("pairs", &self.pairs)
            .field("mac", &self.mac)
            .finish()
    }
}

/// The features this driver can use.
const WANTED: u64 = bit(feature::VERSION_1)
    | bit(feature::ACCESS_PLATFORM)
    | bit(feature::ORDER_PLATFORM)
    | bit(feature::NET_MAC)
    | bit(feature::NET_STATUS)
    | bit(feature::NET_MRG_RXBUF)
    | bit(feature::NET_SPEED_DUPLEX)
    | bit(feature::NET_CTRL_VQ)
    | bit(feature::NET_CTRL_RX);

impl<D: DeviceAccess> VirtioNetPort<D> {
    /// Brings up the virtio-net device `dev` as port `id` with `cfg.queues` queue pairs, its
    /// receive buffers from `pool` (whose region is mapped for the device's DMA).
    ///
    /// # Errors
    /// [`PortError::Config`] for a configuration that cannot work (no queue, ring sizes not
    /// powers of two, more ring entries than mbufs, a data room too small without
    /// `MRG_RXBUF`); [`PortError::Pci`] when the device is not virtio-net, lacks
    /// `VERSION_1`, `ACCESS_PLATFORM`, or `MQ` for several queues, refuses the features,
    /// has fewer queue pairs than asked, does not answer a control command, or DMA memory
    /// cannot be mapped. The device is reset before any error returns.
    pub fn open_device(id: u16, mut dev: D, cfg: &PciPortConfig, pool: &Mempool) -> Result<Self, PortError> {
        let name = dev.name().to_string();
        let perr = |e: PciError| e.into_port(&name);
        let conf = |msg: String| PortError::Config { port: name.clone(), msg };
        let dev_err = |msg: String| PciError::Device { device: name.clone(), msg }.into_port(&name);
        if cfg.queues == 0 {
            return Err(conf("a virtio-net port needs at least one queue pair".into()));
        }
        for (what, n) in [("rx ring", cfg.rx_ring), ("tx ring", cfg.tx_ring)] {
            if !n.is_power_of_two() || !(4..=ring::MAX_SIZE).contains(&n) {
                return Err(conf(format!("{what} size {n} must be a power of two from 4 to 32768")));
            }
        }
        let lent = cfg.queues as usize * cfg.rx_ring as usize;
        if lent >= pool.size() {
            return Err(conf(format!(
                "the receive rings lend {lent} mbufs ({} queues x {} entries) but the pool has only {}: use a bigger \
                 pool or smaller rings",
                cfg.queues,
                cfg.rx_ring,
                pool.size()
            )));
        }
        let hdr_bytes = dev.config_header().map_err(perr)?;
        if !is_virtio_net(&hdr_bytes) {
            let pid = PciId::from_config(&hdr_bytes).unwrap_or(PciId { vendor: !0, device: !0 });
            return Err(perr(PciError::Unsupported { device: name.clone(), id: pid }));
        }
        let caps = find_caps(&mut dev, &hdr_bytes).map_err(perr)?;
        let mut sh: Shared<D> = DeviceHold::new(dev, Virtio { caps, features: 0 });
        // From here on, an early return drops `sh`, which resets the device.
        sh.reset().map_err(perr)?;
        sh.dev.set_bus_master(true).map_err(perr)?;
        sh.add_status(status::ACKNOWLEDGE);
        sh.add_status(status::DRIVER);
        let offered = sh.device_features();
        if offered & bit(feature::VERSION_1) == 0 {
            return Err(dev_err("the device does not offer VIRTIO_F_VERSION_1 (a legacy-only device)".into()));
        }
        if offered & bit(feature::ACCESS_PLATFORM) == 0 {
            return Err(dev_err(
                "the device does not offer VIRTIO_F_ACCESS_PLATFORM: it would bypass the IOMMU and read guest-physical \
                 addresses, not our IOVAs (QEMU: -device virtio-net-pci,iommu_platform=on)"
                    .into(),
            ));
        }
        let mut wanted = WANTED;
        if cfg.queues > 1 {
            if offered & bit(feature::NET_MQ) == 0 || offered & bit(feature::NET_CTRL_VQ) == 0 {
                return Err(dev_err(format!(
                    "{} queue pairs asked but the device does not offer VIRTIO_NET_F_MQ with a control queue (QEMU: \
                     -netdev ...,queues=N and -device virtio-net-pci,mq=on)",
                    cfg.queues
                )));
            }
            wanted |= bit(feature::NET_MQ);
        }
        let features = offered & wanted;
        sh.set_driver_features(features);
        sh.add_status(status::FEATURES_OK);
        if sh.status() & status::FEATURES_OK == 0 {
            return Err(dev_err(format!("the device refused the features {features:#x} (FEATURES_OK cleared)")));
        }
        sh.state.features = features;
        let mrg = sh.has(feature::NET_MRG_RXBUF);
        let room = pool.config().chunk_size as usize - crate::mbuf::MBUF_HEADER - pool.config().headroom as usize;
        if !mrg && room < MIN_RX_ROOM {
            return Err(conf(format!(
                "the mempool's data room ({room} bytes) is below the {MIN_RX_ROOM} bytes a frame may need, and the \
                 device cannot split frames (no VIRTIO_NET_F_MRG_RXBUF): use 2048-byte chunks"
            )));
        }
        let max_pairs =
            if sh.has(feature::NET_MQ) { sh.read_config(|s| s.d_r16(netcfg::MAX_VIRTQUEUE_PAIRS)).max(1) } else { 1 };
        if cfg.queues > max_pairs {
            return Err(dev_err(format!("{} queue pairs asked, the device has {max_pairs}", cfg.queues)));
        }
        let ctrl_index = 2 * max_pairs as u32;
        let num_queues = sh.c_r16(common::NUM_QUEUES) as u32;
        let needed = if sh.has(feature::NET_CTRL_VQ) { ctrl_index + 1 } else { 2 * cfg.queues as u32 };
        if needed > num_queues {
            return Err(dev_err(format!("the device has {num_queues} virtqueues, {needed} are needed")));
        }
        let mac = if sh.has(feature::NET_MAC) {
            let b = sh.read_config(|s| std::array::from_fn::<u8, 6, _>(|i| s.d_r8(netcfg::MAC + i as u32)));
            MacAddr(b)
        } else {
            fallback_mac(&name)
        };
        let pool_dma: Arc<PoolDma> = sh.map_pool(pool).map_err(perr)?;
        let mut vqs = Vec::with_capacity(2 * cfg.queues as usize);
        for p in 0..cfg.queues {
            vqs.push(sh.setup_queue(2 * p, cfg.rx_ring).map_err(perr)?);
            vqs.push(sh.setup_queue(2 * p + 1, cfg.tx_ring).map_err(perr)?);
        }
        let ctrl = if sh.has(feature::NET_CTRL_VQ) {
            let vq = sh.setup_queue(ctrl_index as u16, CTRL_RING).map_err(perr)?;
            let buf = sh.dev.alloc_dma(4096).map_err(perr)?;
            Some(CtrlQueue { vq, buf, broken: false })
        } else {
            None
        };
        sh.add_status(status::DRIVER_OK);
        if sh.status() & status::DEVICE_NEEDS_RESET != 0 {
            return Err(dev_err("the device asked for a reset right after DRIVER_OK".into()));
        }
        let shared = Arc::new(sh);
        let counters = PortCounters::new(cfg.queues as usize, cfg.queues as usize);
        // Both queue kinds compute IOVAs as address + delta.
        let delta = pool_dma.iova_delta();
        let (mut rx, mut tx) = (Vec::new(), Vec::new());
        let mut it = vqs.into_iter();
        for q in 0..cfg.queues {
            let (Some(rvq), Some(tvq)) = (it.next(), it.next()) else { break };
            rx.push(Some(VirtioRx {
                ring: Some(MbufRing::new(rvq)),
                skip: 0,
                env: RxEnv {
                    shared: shared.clone(),
                    pool: pool.clone(),
                    counters: counters.clone(),
                    delta,
                    buf_len: (hdr::LEN + room) as u32,
                    mrg,
                    q,
                    port: id,
                },
            }));
            let free_thresh = (tvq.size() as usize / 2).max(1);
            tx.push(Some(VirtioTx {
                ring: Some(MbufRing::new(tvq)),
                env: TxEnv {
                    shared: shared.clone(),
                    pool: pool.clone(),
                    counters: counters.clone(),
                    delta,
                    free_thresh,
                    q,
                },
                stuck: 0,
                dead: false,
            }));
        }
        let mut port = VirtioNetPort {
            rx,
            tx,
            ctrl,
            shared,
            claims: QueueClaims::new(cfg.queues, cfg.queues),
            counters,
            id,
            pairs: cfg.queues,
            mac,
            pool: pool.clone(),
        };
        // From here on, an early return drops the port: queues park, the device resets.
        for r in port.rx.iter_mut().flatten() {
            if !r.fill() {
                return Err(PortError::Mempool { port: name.clone(), source: crate::mbuf::MempoolError::Exhausted });
            }
        }
        if cfg.queues > 1 {
            port.command(regs::ctrl::CLASS_MQ, regs::ctrl::MQ_VQ_PAIRS_SET, &cfg.queues.to_le_bytes())?;
        }
        log::info!(
            "{name}: virtio-net, {} queue pair(s), rings {}/{}, features {features:#x}{}",
            cfg.queues,
            port.rx.first().and_then(|r| r.as_ref()).and_then(|r| r.ring.as_ref()).map_or(0, |r| r.vq.size()),
            port.tx.first().and_then(|r| r.as_ref()).and_then(|r| r.ring.as_ref()).map_or(0, |r| r.vq.size()),
            if mrg { ", mergeable rx buffers" } else { "" }
        );
        Ok(port)
    }

    /// Sends a control command.
    fn command(&mut self, class: u8, cmd: u8, data: &[u8]) -> Result<(), PortError> {
        let name = self.shared.name.clone();
        let Some(c) = self.ctrl.as_mut() else {
            return Err(PciError::Device { device: name.clone(), msg: "no control virtqueue".into() }.into_port(&name));
        };
        c.command(&self.shared, class, cmd, data).map_err(|e| e.into_port(&name))
    }

    /// The negotiated feature bits.
    pub fn features(&self) -> u64 {
        self.shared.state.features
    }

    /// Queue pairs in use.
    pub fn queue_pairs(&self) -> u16 {
        self.pairs
    }

    /// Per-queue counters (receive queue `q`: packets, bytes, errors — oversized or bad
    /// frames —, `nombuf`; transmit queue `q`: packets, bytes, errors, `missed` — packets
    /// refused on a full ring).
    pub fn counters(&self) -> &Arc<PortCounters> {
        &self.counters
    }

    /// The pool the receive rings are filled from.
    pub fn pool(&self) -> &Mempool {
        &self.pool
    }
}

impl<D: DeviceAccess> Drop for VirtioNetPort<D> {
    fn drop(&mut self) {
        if let Some(c) = self.ctrl.take() {
            self.shared.park(Box::new(c));
        }
        // The queues not handed out park their rings as they drop with the fields.
    }
}

impl<D: DeviceAccess> Port for VirtioNetPort<D> {
    type Buf = Mbuf;

    fn info(&self) -> PortInfo {
        PortInfo {
            name: self.shared.name.clone(),
            driver: DRIVER_NAME.into(),
            rx_queues: self.pairs,
            tx_queues: self.pairs,
        }
    }

    fn mac(&self) -> MacAddr {
        self.mac
    }

    /// Down for good when the device left `DRIVER_OK` or asks for a reset (it was reset
    /// under us or hit an error: the port is then dead, see `hold.rs`); otherwise the link bit (with `VIRTIO_NET_F_STATUS`, else up), speed
    /// and duplex (with `VIRTIO_NET_F_SPEED_DUPLEX`).
    fn link(&self) -> LinkStatus {
        let sh = &self.shared;
        if sh.is_dead() {
            return LinkStatus::default();
        }
        let st = sh.status();
        if let Some(why) = status_dead(st) {
            // Reset under us, or failed: the port is dead (see `hold.rs`).
            sh.mark_dead(&format!("{why} (status {st:#x})"));
            return LinkStatus::default();
        }
        let (up, speed, duplex) = sh.read_config(|s| {
            let up = !s.has(feature::NET_STATUS) || s.d_r16(netcfg::STATUS) & netcfg::S_LINK_UP != 0;
            if s.has(feature::NET_SPEED_DUPLEX) {
                (up, s.d_r32(netcfg::SPEED), s.d_r8(netcfg::DUPLEX))
            } else {
                (up, u32::MAX, 0xff)
            }
        });
        LinkStatus { up, speed_mbps: if speed == u32::MAX { 0 } else { speed }, full_duplex: duplex == 1 }
    }

    fn stats(&self) -> PortStats {
        self.counters.snapshot()
    }

    /// With `VIRTIO_NET_F_CTRL_RX`, a `VIRTIO_NET_CTRL_RX_PROMISC` command. Without it the
    /// device has no receive filter to change (QEMU's delivers everything): turning it on is
    /// accepted as is, turning it off is an error.
    fn set_promiscuous(&mut self, on: bool) -> Result<(), PortError> {
        if !self.shared.has(feature::NET_CTRL_RX) {
            if on {
                return Ok(());
            }
            let name = self.shared.name.clone();
            return Err(PciError::Device {
                device: name.clone(),
                msg: "the device has no receive-mode control (VIRTIO_NET_F_CTRL_RX): promiscuous mode cannot be \
                      turned off"
                    .into(),
            }
            .into_port(&name));
        }
        self.command(regs::ctrl::CLASS_RX, regs::ctrl::RX_PROMISC, &[on as u8])
    }

    fn rx_queue(&mut self, q: u16) -> Result<BoxRx<Mbuf>, PortError> {
        Ok(Box::new(self.claims.take(&self.shared.name, true, q, &mut self.rx)?))
    }

    fn tx_queue(&mut self, q: u16) -> Result<BoxTx<Mbuf>, PortError> {
        Ok(Box::new(self.claims.take(&self.shared.name, false, q, &mut self.tx)?))
    }
}
