//! The device state a port shares with its queues, and the order of teardown.
//!
//! A driver keeps its device and its register bookkeeping in a [`DeviceHold`], behind an
//! `Arc` shared by the port and every queue. Receive buffers posted to the device and
//! transmits not yet completed belong to the device until it stops, so a queue that drops
//! does not free its ring: it [`parks`](DeviceHold::park) it here. When the last holder
//! drops, the hold
//! 1. quiesces the device (the driver's [`Quiesce`]: a reset that stops all DMA),
//! 2. turns bus mastering off (a second guard: no DMA without it, whatever the device
//!    thinks),
//! 3. frees the parked rings (every mbuf back to its pool, every ring unmapped),
//! 4. then lets the pool's DMA mapping go, and the device (BARs, file descriptor).
//!
//! When neither 1 nor 2 succeeds, nothing guarantees the device has stopped writing: the
//! parked rings are leaked (logged), never handed back for reuse.
//!
//! # A device reset under the driver
//! Something else may reset the device while the port runs (a sysfs reset, a function-level
//! reset by the host, a PF reset under its VFs): its queues lose their rings and stop. The
//! driver notices it in its link check or when a transmit ring stops moving, and marks the
//! hold [`dead`](DeviceHold::mark_dead) (one error logged). From then on the port reports
//! link down and its transmit queues refuse every packet (counted, the caller keeps them),
//! and count the transmits left in their rings, which the device will never send, as
//! transmit errors: every packet given to a dead port is accounted for. The buffers stay
//! where they are until the teardown, as for a live device.
use super::dma::PoolDma;
use super::{DeviceAccess, PciError};
use crate::mbuf::{Mbuf, Mempool};
use crate::Burst;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// How a driver stops its device before the buffers lent to it are freed.
pub trait Quiesce<D: DeviceAccess>: Send + Sync + 'static {
    /// Stops every DMA of the device (a reset), waiting until it has.
    ///
    /// # Errors
    /// The device did not stop (a timeout).
    fn quiesce(&self, dev: &D) -> Result<(), PciError>;
}

/// A device, its driver's state `S`, and what the queues parked. See the module docs.
pub struct DeviceHold<D: DeviceAccess, S: Quiesce<D>> {
    /// The device.
    pub dev: D,
    /// The driver's state (register locations, negotiated features, ...).
    pub state: S,
    /// The device's name for messages.
    pub name: String,
    parked: Mutex<Vec<Box<dyn Send>>>,
    pool_dma: Option<Arc<PoolDma>>,
    /// The device was reset under the driver (see the module docs).
    dead: AtomicBool,
}

impl<D: DeviceAccess, S: Quiesce<D>> std::fmt::Debug for DeviceHold<D, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceHold").field("dev", &self.name).finish()
    }
}

impl<D: DeviceAccess, S: Quiesce<D>> DeviceHold<D, S> {
    /// Holds `dev` with driver state `state`. From here on, dropping the hold quiesces the
    /// device: build it before anything that lets the device DMA.
    pub fn new(dev: D, state: S) -> Self {
        let name = dev.name().to_string();
        DeviceHold { dev, state, name, parked: Mutex::new(Vec::new()), pool_dma: None, dead: AtomicBool::new(false) }
    }

    /// Marks the device reset under the driver (see the module docs), `why` saying how it
    /// was seen; logs the error the first time. Returns whether this call marked it.
    pub fn mark_dead(&self, why: &str) -> bool {
        // No data is published through the flag: a queue that reads it late posts a few more
        // packets into its dead ring, which it counts when it does read it.
        let first = !self.dead.swap(true, Ordering::Relaxed);
        if first {
            log::error!(
                "{}: {why}: the device was reset under the driver; the port stays down, its transmit queues refuse \
                 and count every packet until the port is opened again",
                self.name
            );
        }
        first
    }

    /// Whether the device was reset under the driver. One relaxed load: cheap enough for
    /// every burst.
    #[inline(always)]
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Relaxed)
    }

    /// Maps `pool` for the device (once per IOMMU address space) and keeps the mapping
    /// until after the device is quiesced and the parked buffers are freed.
    ///
    /// # Errors
    /// As [`DeviceAccess::map_pool`].
    pub fn map_pool(&mut self, pool: &Mempool) -> Result<Arc<PoolDma>, PciError> {
        let p = self.dev.map_pool(pool)?;
        self.pool_dma = Some(p.clone());
        Ok(p)
    }

    /// Keeps `ring` (a ring and the mbufs lent through it) until the device is quiesced.
    pub fn park(&self, ring: Box<dyn Send>) {
        self.parked.lock().unwrap_or_else(|e| e.into_inner()).push(ring);
    }
}

impl<D: DeviceAccess, S: Quiesce<D>> Drop for DeviceHold<D, S> {
    fn drop(&mut self) {
        let stopped = self.state.quiesce(&self.dev);
        let no_dma = self.dev.set_bus_master(false);
        let parked = std::mem::take(self.parked.get_mut().unwrap_or_else(|e| e.into_inner()));
        match (stopped, no_dma) {
            (Err(r), Err(b)) => {
                // Nothing stops the device: the buffers it holds must never be reused.
                log::error!(
                    "{}: the device neither stopped ({r}) nor lost bus mastering ({b}): leaking {} rings and their mbufs",
                    self.name,
                    parked.len()
                );
                std::mem::forget(parked);
            }
            (Err(r), Ok(())) => {
                log::warn!("{}: {r}; bus mastering is off, so its buffers are safe to free", self.name);
            }
            _ => {}
        }
        // `parked` drops here, before the fields: mbufs back, rings unmapped; then the
        // pool mapping and the device go with the fields.
    }
}

/// Per-descriptor storage of the mbufs lent to a device: slot `i` holds the mbuf of
/// descriptor `i` while the device owns it.
#[derive(Debug)]
pub struct Slots(Box<[Option<Mbuf>]>);

impl Slots {
    /// `n` empty slots.
    pub fn new(n: usize) -> Self {
        Slots((0..n).map(|_| None).collect())
    }

    /// Stores `m` in slot `i` (ignored past the end; a driver sizes the slots to its ring).
    #[inline(always)]
    pub fn put(&mut self, i: usize, m: Mbuf) {
        if let Some(s) = self.0.get_mut(i) {
            *s = Some(m);
        }
    }

    /// Takes slot `i`'s mbuf; `None` for an empty slot or one past the end (a device
    /// returning a descriptor it was not given).
    #[inline(always)]
    pub fn take(&mut self, i: usize) -> Option<Mbuf> {
        self.0.get_mut(i)?.take()
    }
}

/// Allocates up to `want` mbufs (at most `N`) into `out` for a receive refill: all of them,
/// or, when the pool runs low, half as many, and so on. Returns how many (0: the pool is
/// empty, which the caller counts as `rx_nombuf`).
#[inline]
pub fn alloc_refill<const N: usize>(pool: &Mempool, want: usize, out: &mut Burst<Mbuf, N>) -> usize {
    let mut n = want.min(N).min(out.spare());
    while n > 0 {
        if pool.alloc_bulk(out, n).is_ok() {
            return n;
        }
        n /= 2;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mbuf::{MemBacking, MempoolConfig};

    #[test]
    fn refill_halves_when_the_pool_runs_low() {
        let mut c = MempoolConfig::new("hold", 40);
        c.backing = MemBacking::Normal;
        c.cache_size = 0;
        let pool = Mempool::new(c).unwrap();
        let mut b: Burst<Mbuf, 64> = Burst::new();
        assert_eq!(alloc_refill(&pool, 64, &mut b), 32, "64 fail, 32 fit");
        assert_eq!(alloc_refill(&pool, 64, &mut b), 8, "32 and 16 fail");
        assert_eq!(alloc_refill(&pool, 64, &mut b), 0);
        let mut s = Slots::new(4);
        s.put(2, b.pop().unwrap());
        s.put(9, b.pop().unwrap());
        assert!(s.take(2).is_some());
        assert!(s.take(2).is_none());
        assert!(s.take(9).is_none());
        drop((b, s));
        assert_eq!(pool.in_use(), 0);
    }
}
