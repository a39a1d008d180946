//! [`Mbuf`], one pointer to a chunk of a pool, and its [`PacketBuf`] implementation.
#![allow(unsafe_code)]

use super::{MbufHeader, Mempool, MempoolError, Shared, MBUF_HEADER};
use crate::buf::{PacketBuf, PacketMeta};
use crate::burst::Burst;
use std::fmt;
use std::ptr::NonNull;

/// A packet buffer from a [`Mempool`]. One pointer wide; returns to its pool on drop.
pub struct Mbuf {
    pub(super) hdr: NonNull<MbufHeader>,
}

// SAFETY: an Mbuf exclusively owns its chunk; its pool (`Shared`) is Sync.
unsafe impl Send for Mbuf {}
// SAFETY: &Mbuf only gives shared reads of the chunk.
unsafe impl Sync for Mbuf {}

impl Mbuf {
    #[inline(always)]
    fn h(&self) -> &MbufHeader {
        // SAFETY: the header is valid and owned by this mbuf for its whole life.
        unsafe { self.hdr.as_ref() }
    }

    #[inline(always)]
    fn hm(&mut self) -> &mut MbufHeader {
        // SAFETY: as above, and &mut self gives exclusive access.
        unsafe { self.hdr.as_mut() }
    }

    #[inline(always)]
    fn buf_ptr(&self) -> *mut u8 {
        // SAFETY: the buffer starts right after the 64-byte header, inside the chunk.
        unsafe { (self.hdr.as_ptr() as *mut u8).add(MBUF_HEADER) }
    }

    /// Sets the packet length to `len` (data offset unchanged); `false` when it does not fit.
    #[inline(always)]
    pub fn set_len(&mut self, len: usize) -> bool {
        let h = self.h();
        if h.data_off as usize + len > h.buf_len as usize {
            return false;
        }
        self.hm().data_len = len as u16;
        true
    }

    /// Room for data in this mbuf from the default headroom on.
    pub fn data_room(&self) -> usize {
        self.h().buf_len as usize - self.h().data_off as usize
    }

    /// The pool this mbuf came from, as an opaque id (see [`Mempool::id`]).
    pub fn pool_id(&self) -> usize {
        // SAFETY: the pool outlives its mbufs (see the module docs).
        unsafe { (*self.h().pool).id }
    }

    /// The receive timestamp (timer cycles).
    pub fn timestamp(&self) -> u64 {
        self.h().timestamp
    }

    /// Sets the receive timestamp.
    pub fn set_timestamp(&mut self, t: u64) {
        self.hm().timestamp = t;
    }

    /// Input queue.
    pub fn queue(&self) -> u16 {
        self.h().queue
    }

    /// Gives up ownership without returning the chunk to the pool; returns the chunk's header
    /// address. Used to hand the chunk to the kernel (AF_XDP fill/tx rings).
    pub fn into_raw_chunk(self) -> usize {
        let p = self.hdr.as_ptr() as usize;
        core::mem::forget(self);
        p
    }

    /// Copies `src` into a fresh mbuf from `pool`.
    ///
    /// # Errors
    /// `Exhausted` when the pool is empty, `Config` when `src` is larger than the data room.
    pub fn from_slice(pool: &Mempool, src: &[u8]) -> Result<Mbuf, MempoolError> {
        let mut m = pool.alloc()?;
        match m.append(src.len()) {
            Some(d) => d.copy_from_slice(src),
            None => {
                return Err(MempoolError::Config(format!(
                    "{} bytes exceed the mbuf data room {}",
                    src.len(),
                    m.data_room()
                )))
            }
        }
        Ok(m)
    }

    /// Returns a burst of mbufs to their pools, grouping consecutive mbufs of the same pool
    /// into one bulk put (the fast way to free a tx burst).
    #[inline]
    pub fn free_bulk<const N: usize>(burst: &mut Burst<Mbuf, N>) {
        let mut chunks = [0usize; 64];
        let mut k = 0;
        let mut pool: *const Shared = core::ptr::null();
        let len = burst.len();
        // Emptied first: should anything below panic, the mbufs not yet returned leak
        // instead of being dropped twice by the burst.
        // SAFETY: the len values are moved out one by one below, each exactly once.
        unsafe { burst.set_len(0) };
        for i in 0..len {
            // SAFETY: i < len, the old length: the slot still holds its value, moved out here.
            let m = unsafe { burst.as_ptr().add(i).read() };
            let p = m.h().pool;
            if (p != pool && k > 0) || k == chunks.len() {
                // SAFETY: `pool` is the pool of the k chunks gathered so far; it is alive
                // while its mbufs are.
                unsafe { (*pool).put_chunks(&chunks[..k]) };
                k = 0;
            }
            pool = p;
            chunks[k] = m.into_raw_chunk();
            k += 1;
        }
        if k > 0 {
            // SAFETY: as above.
            unsafe { (*pool).put_chunks(&chunks[..k]) };
        }
    }
}

impl Drop for Mbuf {
    #[inline]
    fn drop(&mut self) {
        let pool = self.h().pool;
        // SAFETY: the pool outlives its mbufs; the chunk is returned exactly once.
        unsafe { (*pool).put_chunks(&[self.hdr.as_ptr() as usize]) };
    }
}

impl fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mbuf")
            .field("len", &self.len())
            .field("port", &self.port())
            .field("headroom", &self.headroom())
            .finish()
    }
}

impl PacketBuf for Mbuf {
    #[inline(always)]
    fn data(&self) -> &[u8] {
        let h = self.h();
        // SAFETY: data_off + data_len <= buf_len is kept by every setter; the chunk is ours.
        unsafe { core::slice::from_raw_parts(self.buf_ptr().add(h.data_off as usize), h.data_len as usize) }
    }

    #[inline(always)]
    fn data_mut(&mut self) -> &mut [u8] {
        let (off, len) = (self.h().data_off as usize, self.h().data_len as usize);
        // SAFETY: as above, and &mut self gives exclusive access.
        unsafe { core::slice::from_raw_parts_mut(self.buf_ptr().add(off), len) }
    }

    #[inline(always)]
    fn len(&self) -> usize {
        self.h().data_len as usize
    }

    fn headroom(&self) -> usize {
        self.h().data_off as usize
    }

    fn tailroom(&self) -> usize {
        let h = self.h();
        h.buf_len as usize - h.data_off as usize - h.data_len as usize
    }

    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.h().data_off as usize {
            return None;
        }
        let h = self.hm();
        h.data_off -= n as u16;
        h.data_len += n as u16;
        Some(&mut self.data_mut()[..n])
    }

    fn adj(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        let h = self.hm();
        h.data_off += n as u16;
        h.data_len -= n as u16;
        true
    }

    fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.tailroom() {
            return None;
        }
        let old = self.len();
        self.hm().data_len += n as u16;
        Some(&mut self.data_mut()[old..])
    }

    fn trim(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        self.hm().data_len -= n as u16;
        true
    }

    fn meta(&self) -> PacketMeta {
        let h = self.h();
        PacketMeta {
            port: h.port,
            queue: h.queue,
            ptype: h.ptype,
            hash: h.hash,
            l2_len: h.l2_len,
            l3_len: h.l3_len,
            l4_len: h.l4_len,
            timestamp: h.timestamp,
        }
    }

    fn set_meta(&mut self, m: PacketMeta) {
        let h = self.hm();
        h.port = m.port;
        h.queue = m.queue;
        h.ptype = m.ptype;
        h.hash = m.hash;
        h.l2_len = m.l2_len;
        h.l3_len = m.l3_len;
        h.l4_len = m.l4_len;
        h.timestamp = m.timestamp;
    }

    #[inline(always)]
    fn ptype(&self) -> u32 {
        self.h().ptype
    }

    #[inline(always)]
    fn l2_len(&self) -> u8 {
        self.h().l2_len
    }

    #[inline(always)]
    fn set_class(&mut self, ptype: u32, l2_len: u8, l3_len: u16, l4_len: u8) {
        let h = self.hm();
        h.ptype = ptype;
        h.l2_len = l2_len;
        h.l3_len = l3_len;
        h.l4_len = l4_len;
    }

    #[inline(always)]
    fn port(&self) -> u16 {
        self.h().port
    }

    #[inline(always)]
    fn set_port(&mut self, port: u16) {
        self.hm().port = port;
    }

    #[inline(always)]
    fn hash(&self) -> u32 {
        self.h().hash
    }

    #[inline(always)]
    fn set_hash(&mut self, hash: u32) {
        self.hm().hash = hash;
    }

    #[inline(always)]
    fn prefetch(&self) {
        let h = self.h();
        crate::arch::prefetch(self.buf_ptr().wrapping_add(h.data_off as usize));
    }
}
