//! The driver side of a split virtqueue (virtio 1.x, section 2.7), in one [`DmaArea`]:
//!
//! ```text
//! 0                 descriptor table   size x 16 B  (le64 addr, le32 len, le16 flags, le16 next)
//! 16 size           available ring     le16 flags, le16 idx, le16 ring[size], le16 used_event
//! (page aligned)    used ring          le16 flags, le16 idx, {le32 id, le32 len}[size], le16 avail_event
//! ```
//!
//! The driver writes descriptors and the available ring; the device writes the used ring.
//! The used ring starts on its own page so the device's writes never share a cache line
//! with the driver's.
//!
//! Indices are free-running 16-bit counters (`avail.idx`, `used.idx`), masked by `size - 1`
//! on access; the size is a power of two. Descriptor ids come from a free stack: a buffer
//! is one descriptor (rx, tx) or a short chain (control), and the device may return them
//! in any order.
//!
//! # Ordering, at each step
//! - **Publish** ([`SplitQueue::publish`]): descriptor and ring-entry stores, then
//!   [`barrier::dma_wmb`], then the `avail.idx` store. The device reads `avail.idx` and then
//!   the entries it covers; without the barrier, on aarch64 it could see the new index
//!   before the descriptors and fetch stale addresses. A transmitted buffer is only read by
//!   the device, so only our stores need ordering.
//! - **Publish a recycled receive buffer** ([`SplitQueue::publish_full`]): the same with
//!   [`barrier::dma_mb`], which also orders earlier *loads*: the buffer last held a packet
//!   that the application read; `DMB OSHST` orders stores only, so on aarch64 a read of the
//!   old packet could in principle be satisfied after the device, having seen the new index,
//!   wrote the next packet into the same buffer. One full barrier per refill burst closes
//!   that.
//! - **Decide whether to notify** ([`SplitQueue::device_wants_notify`]): [`barrier::dma_mb`]
//!   between the `avail.idx` store and the `used.flags` load. This is the store→load case
//!   (which x86 reorders too): the device clears `NO_NOTIFY` and then re-checks `avail.idx`;
//!   we store `avail.idx` and then check `NO_NOTIFY`. With both sides fenced, at least one
//!   sees the other's store, so a buffer is never left unnoticed.
//! - **Notify**: [`barrier::io_wmb`] before the doorbell write (done by the caller that owns
//!   the register access), so the device woken by it finds the new index.
//! - **Consume** ([`SplitQueue::used_pending`] then [`SplitQueue::used_elem`]): the
//!   `used.idx` load, then [`barrier::dma_rmb`], then the used entries and the buffer bytes.
//!   The device writes the entries and the data before it advances `used.idx`; the barrier
//!   keeps our loads of them from being satisfied before the index load (aarch64 may
//!   reorder loads), and, being `DMB OSHLD`, also keeps later stores (reusing a transmitted
//!   buffer) after it.
use super::super::barrier;
use super::super::dma::DmaArea;
use super::regs::ring;

/// Bytes of the available ring for `size` entries.
const fn avail_len(size: usize) -> usize {
    4 + 2 * size + 2
}

/// Bytes of the used ring for `size` entries.
const fn used_len(size: usize) -> usize {
    4 + 8 * size + 2
}

/// Offsets of the available and used rings and the total length, for `size` entries.
pub(crate) fn layout(size: u16) -> (usize, usize, usize) {
    let s = size as usize;
    let avail = ring::DESC_SIZE * s;
    let used = (avail + avail_len(s)).div_ceil(4096) * 4096;
    (avail, used, used + used_len(s))
}

/// A split virtqueue, driver side. See the module docs.
#[derive(Debug)]
pub(crate) struct SplitQueue {
    mem: DmaArea,
    index: u16,
    size: u16,
    mask: u16,
    avail: usize,
    used: usize,
    /// Next `avail.idx` value (entries pushed but maybe not yet published).
    avail_idx: u16,
    /// Next used entry to consume.
    last_used: u16,
    free: Box<[u16]>,
    nfree: u16,
    /// Byte offset of the queue's doorbell in the notify structure's BAR.
    notify_off: u32,
}

impl SplitQueue {
    /// A queue of `size` entries (a power of two, at most 32768) over `mem` (at least
    /// `layout(size).2` bytes, zeroed); device queue `index`, doorbell at `notify_off`.
    /// Asks the device not to interrupt (we poll).
    pub(crate) fn new(mem: DmaArea, index: u16, size: u16, notify_off: u32) -> Self {
        debug_assert!(size.is_power_of_two() && size <= ring::MAX_SIZE);
        let (avail, used, len) = layout(size);
        debug_assert!(mem.len() >= len);
        let q = SplitQueue {
            mem,
            index,
            size,
            mask: size - 1,
            avail,
            used,
            avail_idx: 0,
            last_used: 0,
            // Popped from the end: ids come out 0, 1, 2, ...
            free: (0..size).rev().collect(),
            nfree: size,
            notify_off,
        };
        q.mem.write_u16(q.avail, ring::AVAIL_F_NO_INTERRUPT);
        q
    }

    /// The device's index of this queue.
    #[inline(always)]
    pub(crate) fn index(&self) -> u16 {
        self.index
    }

    /// Number of entries.
    #[inline(always)]
    pub(crate) fn size(&self) -> u16 {
        self.size
    }

    /// The doorbell's byte offset in the notify BAR.
    #[inline(always)]
    pub(crate) fn notify_off(&self) -> u32 {
        self.notify_off
    }

    /// IOVAs of the descriptor table, the available ring and the used ring.
    pub(crate) fn iovas(&self) -> (u64, u64, u64) {
        let b = self.mem.iova();
        (b, b + self.avail as u64, b + self.used as u64)
    }

    /// Free descriptors.
    #[inline(always)]
    pub(crate) fn nfree(&self) -> u16 {
        self.nfree
    }

    /// Takes a free descriptor id.
    #[inline(always)]
    pub(crate) fn alloc_desc(&mut self) -> Option<u16> {
        if self.nfree == 0 {
            return None;
        }
        self.nfree -= 1;
        self.free.get(self.nfree as usize).copied()
    }

    /// Returns descriptor `id` (which must be in use) to the free stack.
    #[inline(always)]
    pub(crate) fn free_desc(&mut self, id: u16) {
        debug_assert!(self.nfree < self.size, "more descriptors freed than exist");
        if let Some(s) = self.free.get_mut(self.nfree as usize) {
            *s = id;
            self.nfree += 1;
        }
    }

    /// Writes descriptor `id`.
    #[inline(always)]
    pub(crate) fn set_desc(&self, id: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let o = ring::DESC_SIZE * (id & self.mask) as usize;
        self.mem.write_u64(o, addr);
        self.mem.write_u32(o + 8, len);
        self.mem.write_u16(o + 12, flags);
        self.mem.write_u16(o + 14, next);
    }

    /// Puts descriptor chain head `id` in the next available slot (not yet visible to the
    /// device: see [`SplitQueue::publish`]).
    #[inline(always)]
    pub(crate) fn push_avail(&mut self, id: u16) {
        let slot = (self.avail_idx & self.mask) as usize;
        self.mem.write_u16(self.avail + 4 + 2 * slot, id);
        self.avail_idx = self.avail_idx.wrapping_add(1);
    }

    /// Makes the pushed entries visible: `dma_wmb`, then `avail.idx`. For buffers the device
    /// only reads (see the module docs).
    #[inline(always)]
    pub(crate) fn publish(&self) {
        barrier::dma_wmb();
        self.mem.write_u16(self.avail + 2, self.avail_idx);
    }

    /// As [`SplitQueue::publish`] with a full barrier, for buffers the device writes and we
    /// read before (recycled receive buffers; see the module docs).
    #[inline(always)]
    pub(crate) fn publish_full(&self) {
        barrier::dma_mb();
        self.mem.write_u16(self.avail + 2, self.avail_idx);
    }

    /// After a publish: whether the device asks to be notified (`dma_mb`, then
    /// `used.flags`; see the module docs).
    #[inline(always)]
    pub(crate) fn device_wants_notify(&self) -> bool {
        barrier::dma_mb();
        self.mem.read_u16(self.used) & ring::USED_F_NO_NOTIFY == 0
    }

    /// Used entries ready to consume (at most the queue size, whatever the device wrote).
    /// Call [`barrier::dma_rmb`] before reading them when this is not zero.
    #[inline(always)]
    pub(crate) fn used_pending(&self) -> u16 {
        let idx = self.mem.read_u16(self.used + 2);
        idx.wrapping_sub(self.last_used).min(self.size)
    }

    /// The `i`-th unconsumed used entry: (descriptor id, bytes written by the device).
    #[inline(always)]
    pub(crate) fn used_elem(&self, i: u16) -> (u32, u32) {
        let slot = (self.last_used.wrapping_add(i) & self.mask) as usize;
        let o = self.used + 4 + 8 * slot;
        (self.mem.read_u32(o), self.mem.read_u32(o + 4))
    }

    /// Marks `n` used entries consumed.
    #[inline(always)]
    pub(crate) fn consume_used(&mut self, n: u16) {
        self.last_used = self.last_used.wrapping_add(n);
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::dma::{anon_memory, DmaArea};
    use super::*;

    #[derive(Debug)]
    struct NoMap;

    fn queue(size: u16) -> SplitQueue {
        let mem = DmaArea::new(anon_memory(layout(size).2).unwrap(), 0x10_0000, Box::new(NoMap));
        SplitQueue::new(mem, 3, size, 12)
    }

    #[test]
    fn layout_matches_the_spec() {
        assert_eq!(layout(256), (4096, 8192, 8192 + 4 + 8 * 256 + 2));
        assert_eq!(layout(8), (128, 4096, 4096 + 70));
        let q = queue(8);
        assert_eq!(q.iovas(), (0x10_0000, 0x10_0080, 0x10_1000));
        assert_eq!(q.mem.read_u16(128), ring::AVAIL_F_NO_INTERRUPT);
    }

    #[test]
    fn descriptors_and_avail_ring_bytes() {
        let mut q = queue(4);
        let id = q.alloc_desc().unwrap();
        assert_eq!(id, 0);
        q.set_desc(id, 0x1122_3344_5566, 1500, ring::DESC_F_WRITE, 0);
        q.push_avail(id);
        assert_eq!(q.mem.read_u16(64 + 2), 0, "not published yet");
        q.publish();
        assert_eq!(q.mem.read_u16(64 + 2), 1);
        assert_eq!(q.mem.read_u16(64 + 4), 0);
        assert_eq!(q.mem.read_u64(0), 0x1122_3344_5566);
        assert_eq!(q.mem.read_u32(8), 1500);
        assert_eq!(q.mem.read_u16(12), ring::DESC_F_WRITE);
        // The device uses it: entry then index.
        let used = q.used;
        q.mem.write_u32(used + 4, 0);
        q.mem.write_u32(used + 8, 77);
        q.mem.write_u16(used + 2, 1);
        assert_eq!(q.used_pending(), 1);
        assert_eq!(q.used_elem(0), (0, 77));
        q.consume_used(1);
        assert_eq!(q.used_pending(), 0);
        q.free_desc(0);
        assert_eq!(q.nfree(), 4);
        // A device that runs used.idx far ahead is clamped to the ring size.
        q.mem.write_u16(used + 2, 1000);
        assert_eq!(q.used_pending(), 4);
        assert!(q.device_wants_notify());
        q.mem.write_u16(used, ring::USED_F_NO_NOTIFY);
        assert!(!q.device_wants_notify());
    }

    #[test]
    fn free_stack_hands_out_every_id_once() {
        let mut q = queue(8);
        let mut ids: Vec<u16> = std::iter::from_fn(|| q.alloc_desc()).collect();
        assert_eq!(ids, (0..8).collect::<Vec<_>>());
        assert_eq!(q.alloc_desc(), None);
        ids.reverse();
        for id in ids {
            q.free_desc(id);
        }
        assert_eq!(q.nfree(), 8);
    }
}
