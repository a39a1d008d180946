//! The advanced receive and transmit descriptor rings of the 82576/I350, PF and VF alike,
//! and the [`RxQueue`]/[`TxQueue`] built on them.
//!
//! # Receive
//! A ring of `size` 16-byte descriptors in its own [`DmaArea`]. The driver owns the tail
//! register (`RDT`: one past the last descriptor it gave the device), the device the head.
//! At most `size - 1` descriptors are posted: a tail equal to the head means "none". Each
//! posted descriptor carries the IOVA of a fresh mbuf's data (`PKT_ADDR`) and a zero header
//! address; the device overwrites it with the write-back format (status with `DD`, `EOP`
//! and errors, length, RSS hash).
//!
//! Buffer size: the device's buffer size is set in 1 KiB units (`SRRCTL.BSIZEPKT`), and it
//! must never exceed the mbuf's data room, whatever frame arrives; so it is the data room
//! rounded *down* to a KiB (1 KiB for the default 2048-byte chunks, 3 KiB for 4096-byte
//! ones). A longer frame spans several descriptors: its later parts are copied behind the
//! first part in the first mbuf (the only copy on this path, and only for frames longer
//! than one buffer) and their mbufs recycled; a frame larger than the data room is dropped
//! and counted in the queue's errors, as is a frame the device flags with a receive error.
//!
//! Refill: freed descriptors are given fresh mbufs in bursts (at least [`REFILL_MIN`]
//! at a time, one tail write per burst); an empty pool counts `rx_nombuf` and the ring runs
//! short until the pool recovers.
//!
//! # Transmit
//! One advanced data descriptor per packet (the mbuf's data is contiguous): buffer IOVA,
//! length, `DEXT | DTYP_DATA | IFCS | EOP`, the payload length in `olinfo_status`. The last
//! descriptor of each burst also has `RS`, and the device writes its head index back to a
//! word in the ring's area (*head write-back*, `TDWBAL` bit 0) after processing it: one
//! 4-byte read tells how many descriptors are done, with no descriptor read at all.
//! Completed mbufs go back to the pool in bursts when the ring runs low and on
//! [`TxQueue::flush`]. A full ring takes fewer packets than offered (the rest stay with the
//! caller) and counts the refusals in the queue's `missed`; it never waits.
//!
//! A device reset under the driver (see `hold.rs`): a ring that stays full with the head not
//! moving checks, every [`STUCK_CHECK`] refusals (one register read), whether its queue is
//! still programmed as we left it; when it is not, or the port's link check saw the reset,
//! the queue counts the transmits left in its ring as errors (after reclaiming what the
//! device reported done before the reset), and from then on refuses every packet.
//!
//! # Ordering, at each step
//! - **Post receive buffers**: descriptor stores, then [`barrier::dma_mb`], then the `RDT`
//!   store. The device reads descriptors only up to the tail it was given, so the
//!   descriptors must be visible before the tail (store→store, which `io_wmb` alone would
//!   give). The full barrier also orders earlier *loads*: the buffers are recycled mbufs
//!   whose old contents the application read; on aarch64 a load can in principle still be
//!   pending when a later store — the tail — reaches the device, which could then overwrite
//!   the buffer under it. One full barrier per refill burst closes that (as the virtio
//!   driver does for the same reason).
//! - **Receive**: the `DD` loads of a run of descriptors, then one [`barrier::dma_rmb`],
//!   then the lengths, hashes and packet bytes. The device writes a descriptor's other
//!   fields and the packet before it sets `DD` (QEMU writes the status word last, hardware
//!   writes the descriptor in one transaction after the data); without the barrier aarch64
//!   could satisfy the length or data loads before the `DD` load and read stale values.
//! - **Transmit**: descriptor (and packet) stores, then [`barrier::io_wmb`], then the `TDT`
//!   store, so the device woken by the tail finds the descriptors it covers.
//! - **Reclaim**: the head write-back load, then [`barrier::dma_rmb`], then the buffers are
//!   reused (freed, later overwritten: stores). The device writes the head after it has
//!   fetched every buffer before it; the barrier (`DMB OSHLD` orders loads against later
//!   stores too) keeps our reuse from being ordered before the load that allows it.

use super::super::barrier;
use super::super::dma::DmaArea;
use super::super::hold::{alloc_refill, Slots};
use super::super::DeviceAccess;
use super::regs::{rxd, txd};
use super::Shared;
use crate::buf::{PacketBuf, PacketMeta};
use crate::burst::Burst;
use crate::mbuf::{Mbuf, Mempool};
use crate::port::{drain_at_close, PortCounters, RxQueue, TxQueue};
use std::cell::Cell;
use std::sync::Arc;

/// Most receive buffers posted per refill (one allocation burst).
pub(crate) const REFILL_BURST: usize = 64;
/// Refill once this many receive descriptors are free: one `RDT` write per 64 descriptors,
/// every second full burst, as DPDK's igb PMD (it writes the tail once more than its
/// `rx_free_thresh` of 32 are held). A tail write is an MMIO write, the costliest thing on
/// this path (under emulation, a VM exit that also delivers the frames the device had
/// queued for want of descriptors).
pub(crate) const REFILL_MIN: usize = 64;
/// Most descriptors whose `DD` bit one receive call checks before its barrier.
const SCAN_MAX: u16 = 64;
/// Largest frame one transmit descriptor takes (the length field is 16 bits; the device's
/// own limit is lower still, and a mbuf's data room lower than that).
const MAX_TX_LEN: usize = 0x3fff;
/// A transmit ring full with its head not moving reads its queue's registers once every this
/// many refused bursts, to tell a device reset under us from a slow link.
pub(crate) const STUCK_CHECK: u32 = 64;

/// A receive descriptor ring and the mbufs lent through it (slot = descriptor index).
#[derive(Debug)]
pub(crate) struct RxRing {
    mem: DmaArea,
    size: u16,
    mask: u16,
    /// Next descriptor the device completes.
    next: u16,
    /// Descriptors given to the device (from `next` on).
    posted: u16,
    slots: Slots,
    /// The first part of a frame spanning several descriptors, still incomplete.
    chain: Option<Mbuf>,
    /// That frame does not fit the data room (or an earlier part was bad): drop it at EOP.
    chain_bad: bool,
}

impl RxRing {
    /// A ring of `size` descriptors (a power of two) over `mem` (at least `size * 16`
    /// bytes, zeroed).
    pub(crate) fn new(mem: DmaArea, size: u16) -> Self {
        debug_assert!(size.is_power_of_two() && mem.len() >= size as usize * rxd::SIZE);
        RxRing {
            mem,
            size,
            mask: size - 1,
            next: 0,
            posted: 0,
            slots: Slots::new(size as usize),
            chain: None,
            chain_bad: false,
        }
    }

    /// The IOVA of the first descriptor.
    pub(crate) fn iova(&self) -> u64 {
        self.mem.iova()
    }

    /// Ring length in bytes, as `RDLEN` takes it.
    pub(crate) fn bytes(&self) -> u32 {
        self.size as u32 * rxd::SIZE as u32
    }

    #[inline(always)]
    fn status(&self, i: u16) -> u32 {
        self.mem.read_u32(i as usize * rxd::SIZE + rxd::STATUS)
    }
}

/// What a receive queue needs besides its ring.
pub(crate) struct RxEnv<D: DeviceAccess> {
    pub(crate) shared: Arc<Shared<D>>,
    pub(crate) pool: Mempool,
    pub(crate) counters: Arc<PortCounters>,
    /// IOVA of an address in the pool = address + delta (wrapping).
    pub(crate) delta: u64,
    /// The device's buffer size per descriptor (a multiple of 1 KiB, at most the data room).
    pub(crate) buf_len: usize,
    /// The `RDT` register.
    pub(crate) tail_reg: u32,
    /// The descriptors carry an RSS hash.
    pub(crate) rss: bool,
    pub(crate) q: u16,
    pub(crate) port: u16,
}

/// A receive queue.
pub(crate) struct IgbRx<D: DeviceAccess> {
    pub(crate) ring: Option<RxRing>,
    pub(crate) env: RxEnv<D>,
}

impl<D: DeviceAccess> IgbRx<D> {
    /// Posts fresh mbufs (one burst at most) when the ring has `min` free descriptors or
    /// more, and moves the tail; `false` when the pool ran dry (counted in `rx_nombuf`).
    #[inline]
    fn refill(ring: &mut RxRing, env: &RxEnv<D>, min: usize) -> bool {
        let free = (ring.size - 1 - ring.posted) as usize;
        if free == 0 || free < min {
            return true;
        }
        let mut b: Burst<Mbuf, REFILL_BURST> = Burst::new();
        let n = alloc_refill(&env.pool, free, &mut b);
        if n == 0 {
            env.counters.rx(env.q as usize).nombuf.inc();
            return false;
        }
        let mask = ring.mask;
        let mut tail = ring.next.wrapping_add(ring.posted) & mask;
        let delta = env.delta;
        let RxRing { mem, slots, .. } = ring;
        b.drain_front(n, |m| {
            let at = tail as usize * rxd::SIZE;
            // The frame lands at the mbuf's data offset; no header split.
            mem.write_u64(at + rxd::PKT_ADDR, (m.data().as_ptr() as u64).wrapping_add(delta));
            mem.write_u64(at + rxd::HDR_ADDR, 0);
            slots.put(tail as usize, m);
            tail = (tail + 1) & mask;
        });
        ring.posted += n as u16;
        // Descriptors (and the old contents' loads) before the tail: see the module docs.
        barrier::dma_mb();
        env.shared.dev.write32(0, env.tail_reg, tail as u32);
        true
    }

    /// Fills the whole ring (at open).
    pub(crate) fn fill(&mut self) -> bool {
        let Some(ring) = self.ring.as_mut() else { return false };
        while ring.posted < ring.size - 1 {
            if !Self::refill(ring, &self.env, 1) {
                return false;
            }
        }
        true
    }
}

impl<D: DeviceAccess> RxQueue for IgbRx<D> {
    type Buf = Mbuf;

    fn rx_burst(&mut self, out: &mut Burst<Mbuf>, max: usize) -> usize {
        let Some(ring) = self.ring.as_mut() else { return 0 };
        let env = &self.env;
        let want = max.min(out.spare());
        let (mut got, mut bytes, mut bad) = (0usize, 0u64, 0u64);
        if want > 0 {
            // How many descriptors are done: DD loads first, one barrier for all of them.
            let limit = ring.posted.min(SCAN_MAX);
            let mut done = 0u16;
            while done < limit && ring.status((ring.next + done) & ring.mask) & rxd::DD != 0 {
                done += 1;
            }
            if done > 0 {
                barrier::dma_rmb();
            }
            let meta = PacketMeta { port: env.port, queue: env.q, ..Default::default() };
            let mut i = 0u16;
            while i < done && got < want {
                let d = ring.next;
                let at = d as usize * rxd::SIZE;
                let st = ring.mem.read_u32(at + rxd::STATUS);
                let len = ring.mem.read_u16(at + rxd::LENGTH) as usize;
                let hash = if env.rss { ring.mem.read_u32(at + rxd::RSS) } else { 0 };
                ring.next = (d + 1) & ring.mask;
                ring.posted -= 1;
                i += 1;
                let Some(mut m) = ring.slots.take(d as usize) else {
                    // Every posted descriptor has its mbuf: a broken invariant, not data.
                    debug_assert!(false, "receive descriptor {d} without its mbuf");
                    bad += 1;
                    continue;
                };
                // A length past the buffer is a device fault: the buffer is not trusted.
                let part_ok = len <= env.buf_len && m.set_len(len);
                if st & rxd::EOP == 0 {
                    // Part of a frame that continues in the next descriptor.
                    match ring.chain.take() {
                        None => {
                            ring.chain_bad = !part_ok;
                            ring.chain = Some(m);
                        }
                        Some(mut head) => {
                            if !ring.chain_bad {
                                ring.chain_bad = !(part_ok && append(&mut head, &m));
                            }
                            ring.chain = Some(head);
                            // `m` goes back to the pool here (rare: frames over one buffer).
                        }
                    }
                    continue;
                }
                let (mut frame, ok) = match ring.chain.take() {
                    None => (m, part_ok),
                    Some(mut head) => {
                        let ok = !ring.chain_bad && part_ok && append(&mut head, &m);
                        (head, ok)
                    }
                };
                ring.chain_bad = false;
                if !ok || st & rxd::RXE != 0 || frame.is_empty() {
                    // Larger than the data room, or flagged bad by the device: dropped.
                    bad += 1;
                    continue;
                }
                frame.set_meta(PacketMeta { hash, ..meta });
                bytes += frame.len() as u64;
                got += 1;
                // Room was checked: got < want <= spare.
                let _ = out.push(frame);
            }
        }
        Self::refill(ring, env, REFILL_MIN.min(ring.size as usize / 2));
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

/// Appends `part`'s bytes to `head`; `false` when they do not fit its data room.
#[inline]
fn append(head: &mut Mbuf, part: &Mbuf) -> bool {
    let n = part.len();
    match head.append(n) {
        Some(dst) => {
            dst.copy_from_slice(part.data());
            true
        }
        None => false,
    }
}

impl<D: DeviceAccess> Drop for IgbRx<D> {
    fn drop(&mut self) {
        if let Some(r) = self.ring.take() {
            self.env.shared.park(Box::new(r));
        }
    }
}

/// A transmit descriptor ring, its head write-back word, and the mbufs lent through it.
#[derive(Debug)]
pub(crate) struct TxRing {
    mem: DmaArea,
    size: u16,
    mask: u16,
    /// Next descriptor to fill (the tail we last wrote, or will write).
    tail: u16,
    /// Oldest descriptor not yet reclaimed.
    clean: u16,
    /// Descriptors between `clean` and `tail`.
    inflight: u16,
    slots: Slots,
    /// Offset of the head write-back word in `mem`.
    wb: usize,
    /// Refused bursts since the head last moved.
    stuck: u32,
    /// The device was reset under us and what was in flight is counted: the ring is dead.
    dead: bool,
}

impl TxRing {
    /// Bytes of DMA memory a ring of `size` descriptors needs (descriptors, then the head
    /// write-back word on its own cache line).
    pub(crate) fn area_len(size: u16) -> usize {
        Self::wb_offset(size) + 64
    }

    fn wb_offset(size: u16) -> usize {
        (size as usize * txd::SIZE).div_ceil(64) * 64
    }

    /// A ring of `size` descriptors (a power of two) over `mem` (at least
    /// [`TxRing::area_len`] bytes, zeroed).
    pub(crate) fn new(mem: DmaArea, size: u16) -> Self {
        debug_assert!(size.is_power_of_two() && mem.len() >= Self::area_len(size));
        TxRing {
            mem,
            size,
            mask: size - 1,
            tail: 0,
            clean: 0,
            inflight: 0,
            slots: Slots::new(size as usize),
            wb: Self::wb_offset(size),
            stuck: 0,
            dead: false,
        }
    }

    /// The IOVA of the first descriptor.
    pub(crate) fn iova(&self) -> u64 {
        self.mem.iova()
    }

    /// The IOVA of the head write-back word.
    pub(crate) fn wb_iova(&self) -> u64 {
        self.mem.iova() + self.wb as u64
    }

    /// Ring length in bytes, as `TDLEN` takes it.
    pub(crate) fn bytes(&self) -> u32 {
        self.size as u32 * txd::SIZE as u32
    }

    /// Free descriptors (one always stays unused: a tail equal to the head means empty).
    #[inline(always)]
    fn free(&self) -> usize {
        (self.size - 1 - self.inflight) as usize
    }
}

/// What a transmit queue needs besides its ring.
pub(crate) struct TxEnv<D: DeviceAccess> {
    pub(crate) shared: Arc<Shared<D>>,
    pub(crate) pool: Mempool,
    pub(crate) counters: Arc<PortCounters>,
    /// IOVA of an address in the pool = address + delta (wrapping).
    pub(crate) delta: u64,
    /// Reclaim completed buffers when fewer descriptors than this are free.
    pub(crate) free_thresh: usize,
    /// The `TDT` register.
    pub(crate) tail_reg: u32,
    /// The `TXDCTL` register (the stuck-ring check).
    pub(crate) dctl_reg: u32,
    /// The `TDLEN` register (the stuck-ring check).
    pub(crate) len_reg: u32,
    pub(crate) q: u16,
}

/// A transmit queue.
pub(crate) struct IgbTx<D: DeviceAccess> {
    pub(crate) ring: Option<TxRing>,
    pub(crate) env: TxEnv<D>,
}

impl<D: DeviceAccess> IgbTx<D> {
    /// Returns the buffers the device is done with to the pool, in bursts. `false` when the
    /// device reported a head it cannot have (counted as a transmit error).
    #[inline]
    fn reclaim(ring: &mut TxRing, env: &TxEnv<D>) -> bool {
        if ring.inflight == 0 {
            return true;
        }
        let head = ring.mem.read_u32(ring.wb);
        let done = (head as u16).wrapping_sub(ring.clean) & ring.mask;
        if head >= ring.size as u32 || done > ring.inflight {
            // A head outside the ring or past our tail: a device fault, nothing reclaimed.
            env.counters.tx(env.q as usize).errors.inc();
            return false;
        }
        if done == 0 {
            return true;
        }
        ring.stuck = 0;
        // The head before the buffers are reused: see the module docs.
        barrier::dma_rmb();
        let mut b: Burst<Mbuf, 64> = Burst::new();
        for _ in 0..done {
            if let Some(m) = ring.slots.take(ring.clean as usize) {
                if let Err(m) = b.push(m) {
                    Mbuf::free_bulk(&mut b);
                    let _ = b.push(m);
                }
            }
            ring.clean = (ring.clean + 1) & ring.mask;
        }
        ring.inflight -= done;
        Mbuf::free_bulk(&mut b);
        true
    }

    /// The device was reset under us: takes what it reported done before, and counts the
    /// rest of the ring as transmit errors (the device will never send them), once. The
    /// buffers stay in the ring until the teardown.
    #[cold]
    fn abandon(ring: &mut TxRing, env: &TxEnv<D>) {
        if ring.dead {
            return;
        }
        Self::reclaim(ring, env);
        Self::give_up(ring, env);
    }

    /// Counts what the device still holds as transmit errors (it will never send them), once;
    /// the buffers stay in the ring until the teardown.
    #[cold]
    fn give_up(ring: &mut TxRing, env: &TxEnv<D>) {
        if ring.inflight > 0 {
            env.counters.tx(env.q as usize).errors.add(ring.inflight as u64);
        }
        ring.inflight = 0;
        ring.dead = true;
    }

    /// A full ring whose head does not move: every [`STUCK_CHECK`] times, whether the queue
    /// is still enabled with our ring (a device reset clears both, a gone device reads all
    /// ones).
    #[cold]
    fn check_stuck(ring: &mut TxRing, env: &TxEnv<D>) {
        ring.stuck = ring.stuck.wrapping_add(1);
        if ring.stuck % STUCK_CHECK != 0 {
            return;
        }
        let dev = &env.shared.dev;
        let (dctl, len) = (dev.read32(0, env.dctl_reg), dev.read32(0, env.len_reg));
        if dctl & super::regs::DCTL_ENABLE == 0 || len != ring.bytes() {
            env.shared.mark_dead(&format!(
                "transmit queue {} found stopped (TXDCTL {dctl:#x}, TDLEN {len:#x}) with its ring full",
                env.q
            ));
        }
    }
}

impl<D: DeviceAccess> TxQueue for IgbTx<D> {
    type Buf = Mbuf;

    fn tx_burst(&mut self, pkts: &mut Burst<Mbuf>) -> usize {
        let Some(ring) = self.ring.as_mut() else { return 0 };
        let env = &self.env;
        let c = env.counters.tx(env.q as usize);
        if env.shared.is_dead() {
            // Reset under us: nothing more goes into the ring; the caller keeps (and counts)
            // every packet.
            Self::abandon(ring, env);
            c.missed.add(pkts.len() as u64);
            return 0;
        }
        if ring.free() < pkts.len().max(env.free_thresh) {
            Self::reclaim(ring, env);
        }
        let n = pkts.len().min(ring.free());
        let refused = pkts.len() - n;
        if refused > 0 {
            // Ring full: the caller keeps (and counts) the rest.
            c.missed.add(refused as u64);
        }
        if n == 0 {
            if refused > 0 {
                Self::check_stuck(ring, env);
            }
            return 0;
        }
        let (mut sent, mut bytes, mut bad) = (0u16, 0u64, 0u64);
        let (delta, pool, mask) = (env.delta, &env.pool, ring.mask);
        let mut last = None;
        let TxRing { mem, slots, tail, .. } = ring;
        pkts.drain_front(n, |m| {
            // The port's pool is the region mapped for DMA; another pool's mbuf is copied.
            let m = if pool.owns(&m) {
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
            if len == 0 || len > MAX_TX_LEN {
                bad += 1;
                return;
            }
            let at = *tail as usize * txd::SIZE;
            let cmd = len as u32 | txd::DTYP_DATA | txd::DEXT | txd::IFCS | txd::EOP;
            mem.write_u64(at + txd::ADDR, (m.data().as_ptr() as u64).wrapping_add(delta));
            mem.write_u32(at + txd::CMD_TYPE_LEN, cmd);
            mem.write_u32(at + txd::OLINFO, (len as u32) << txd::PAYLEN_SHIFT);
            slots.put(*tail as usize, m);
            last = Some((at, cmd));
            *tail = (*tail + 1) & mask;
            sent += 1;
            bytes += len as u64;
        });
        if let Some((at, cmd)) = last {
            // One status report per burst: the device writes its head back after this one.
            mem.write_u32(at + txd::CMD_TYPE_LEN, cmd | txd::RS);
            ring.inflight += sent;
            // Descriptors before the tail: see the module docs.
            barrier::io_wmb();
            env.shared.dev.write32(0, env.tail_reg, ring.tail as u32);
            c.packets.add(sent as u64);
            c.bytes.add(bytes);
        }
        if bad > 0 {
            c.errors.add(bad);
        }
        n
    }

    fn flush(&mut self) {
        if let Some(ring) = self.ring.as_mut() {
            if self.env.shared.is_dead() {
                Self::abandon(ring, &self.env);
            } else {
                Self::reclaim(ring, &self.env);
            }
        }
    }
}

impl<D: DeviceAccess> Drop for IgbTx<D> {
    /// The device is reset when the port closes, and a frame it has not sent by then is lost
    /// although counted as sent: waits (bounded, [`drain_at_close`]) until the device has sent
    /// what the ring holds, and counts what it never sent as transmit errors.
    fn drop(&mut self) {
        if let Some(mut r) = self.ring.take() {
            if self.env.shared.is_dead() {
                Self::abandon(&mut r, &self.env);
            } else if !r.dead {
                // A faulty head ends the wait: what is still in the ring is counted below.
                let sane = Cell::new(true);
                drain_at_close(
                    &mut r,
                    |r| if sane.get() { r.inflight as u64 } else { 0 },
                    |r| sane.set(Self::reclaim(r, &self.env)),
                );
                if r.inflight > 0 {
                    log::warn!(
                        "{}: transmit queue {} closed with {} frame(s) the device never sent; counted as tx errors",
                        self.env.shared.name,
                        self.env.q,
                        r.inflight
                    );
                    Self::give_up(&mut r, &self.env);
                }
            }
            self.env.shared.park(Box::new(r));
        }
    }
}
