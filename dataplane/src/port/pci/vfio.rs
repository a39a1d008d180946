//! [`VfioDevice`]: the [`DeviceAccess`] of a real PCI device bound to vfio-pci.
//!
//! One VFIO container serves the whole process: every device opened here joins it (its
//! IOMMU group is attached once, and must be viable), so one IOMMU address space holds
//! every ring and every pool, and a mempool's region is DMA-mapped into it once however many
//! ports use the pool. The container, the groups and the pool mappings are shared through
//! reference counts: the container closes when the last device and mapping are gone, a pool
//! mapping is removed when the last port using it has dropped.
//!
//! IOVAs come from one [`IovaAllocator`] per container, inside the ranges the kernel
//! reports for the IOMMU, from 4 GiB up.

use super::dma::{anon_memory, DmaArea, IovaAllocator, PoolDma};
use super::{DeviceAccess, PciError};
use crate::mbuf::Mempool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use vfio::device::{Container, DmaMapping, Group, RegionMapping, VfioError};
use vfio::{PciAddr, SysRoot};

/// The process-wide VFIO state.
#[derive(Debug)]
struct Context {
    container: Mutex<Container>,
    groups: Mutex<HashMap<u32, Weak<Group>>>,
    pools: Mutex<PoolRegistry>,
    iova: Mutex<Option<IovaAllocator>>,
}

/// The one context, while anything uses it.
static CONTEXT: Mutex<Weak<Context>> = Mutex::new(Weak::new());

/// Locks a control-plane mutex, carrying on after a panic elsewhere (the data it guards
/// stays consistent: every critical section here is a map insert or lookup).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Context {
    fn get(root: &SysRoot) -> Result<Arc<Context>, PciError> {
        let mut slot = lock(&CONTEXT);
        if let Some(c) = slot.upgrade() {
            return Ok(c);
        }
        let c = Arc::new(Context {
            container: Mutex::new(Container::open_in(root)?),
            groups: Mutex::new(HashMap::new()),
            pools: Mutex::new(PoolRegistry::default()),
            iova: Mutex::new(None),
        });
        *slot = Arc::downgrade(&c);
        Ok(c)
    }

    fn group(&self, root: &SysRoot, id: u32) -> Result<Arc<Group>, PciError> {
        let mut groups = lock(&self.groups);
        if let Some(g) = groups.get(&id).and_then(Weak::upgrade) {
            return Ok(g);
        }
        let g = Arc::new(lock(&self.container).open_group(root, id)?);
        if g.is_noiommu() {
            return Err(PciError::NoIommu { group: id });
        }
        groups.insert(id, Arc::downgrade(&g));
        Ok(g)
    }

    /// Takes an IOVA range; the allocator is set up on first use (the container needs a
    /// group attached before it can report its IOVA ranges).
    fn alloc_iova(&self, len: u64, align: u64) -> Result<u64, PciError> {
        let mut a = lock(&self.iova);
        if a.is_none() {
            let info = lock(&self.container).iommu_info()?;
            *a = Some(IovaAllocator::new(info.iova_ranges));
        }
        a.as_mut().and_then(|a| a.alloc(len, align)).ok_or(PciError::IovaExhausted { len })
    }

    /// Maps `len` bytes at `vaddr` at a fresh IOVA.
    ///
    /// # Safety
    /// As [`Container::map_dma`]: the memory must stay mapped in the process until the
    /// returned mapping drops.
    #[allow(unsafe_code)]
    unsafe fn map(&self, vaddr: *mut u8, len: usize, align: u64) -> Result<DmaMapping, PciError> {
        let iova = self.alloc_iova(len as u64, align)?;
        // VFIO pins the pages against RLIMIT_MEMLOCK: raise the soft limit if allowed. Still
        // short, the map fails with ENOMEM, reported as DmaLimit.
        let _ = crate::memlock::ensure(len as u64);
        // SAFETY: the caller's promise.
        unsafe { lock(&self.container).map_dma(vaddr, len, iova) }.map_err(|e| match e {
            VfioError::Ioctl { ref source, .. } if source.raw_os_error() == Some(libc::ENOMEM) => {
                PciError::DmaLimit { len, source: e }
            }
            e => PciError::Vfio(e),
        })
    }
}

/// Pool id → its live DMA mapping: a pool is mapped once per container however many devices
/// use it, and again only after every user has let the mapping go.
#[derive(Debug, Default)]
struct PoolRegistry(HashMap<usize, Weak<PoolDma>>);

impl PoolRegistry {
    /// The live mapping of `pool`, or a new one from `map`.
    fn get_or_map(
        &mut self,
        pool: &Mempool,
        map: impl FnOnce() -> Result<Arc<PoolDma>, PciError>,
    ) -> Result<Arc<PoolDma>, PciError> {
        if let Some(p) = self.0.get(&pool.id()).and_then(Weak::upgrade) {
            return Ok(p);
        }
        self.0.retain(|_, w| w.strong_count() > 0);
        let p = map()?;
        self.0.insert(pool.id(), Arc::downgrade(&p));
        Ok(p)
    }
}

/// A PCI device opened through VFIO, with the BARs a driver mapped.
#[derive(Debug)]
pub struct VfioDevice {
    // Drop order: BAR mappings, then the device fd, then the group, then the context.
    bars: [Option<RegionMapping>; 6],
    dev: vfio::device::Device,
    _group: Arc<Group>,
    ctx: Arc<Context>,
    name: String,
}

impl VfioDevice {
    /// Opens `addr` (bound to vfio-pci) through the process's VFIO container.
    ///
    /// # Errors
    /// [`PciError::Vfio`]: VFIO missing (`/dev/vfio/vfio`), the device or its IOMMU group not
    /// found in sysfs, the group not viable (another device of it on a kernel driver) or not
    /// openable (EBUSY: another process holds it); [`PciError::NoIommu`] for a no-IOMMU
    /// group (IOVAs need an IOMMU).
    pub fn open(addr: PciAddr) -> Result<Self, PciError> {
        Self::open_in(&SysRoot::host(), addr)
    }

    /// As [`VfioDevice::open`], with sysfs and `/dev/vfio` under `root`.
    ///
    /// # Errors
    /// As [`VfioDevice::open`].
    pub fn open_in(root: &SysRoot, addr: PciAddr) -> Result<Self, PciError> {
        let ctx = Context::get(root)?;
        let gid = vfio::sysfs::device_iommu_group(root, addr).map_err(VfioError::from)?;
        let group = ctx.group(root, gid)?;
        let dev = group.open_device(addr)?;
        if !dev.info().is_pci() {
            return Err(PciError::Device { device: addr.to_string(), msg: "VFIO says it is not a PCI device".into() });
        }
        Ok(VfioDevice { bars: Default::default(), dev, _group: group, ctx, name: addr.to_string() })
    }

    /// The VFIO device (config space, regions, reset).
    pub fn device(&self) -> &vfio::device::Device {
        &self.dev
    }

    #[inline(always)]
    fn bar(&self, bar: u8) -> Option<&RegionMapping> {
        self.bars.get(bar as usize).and_then(Option::as_ref)
    }
}

impl DeviceAccess for VfioDevice {
    fn name(&self) -> &str {
        &self.name
    }

    fn config_read(&self, offset: u16, buf: &mut [u8]) -> Result<(), PciError> {
        Ok(self.dev.read_config(offset as u64, buf)?)
    }

    fn config_write(&self, offset: u16, buf: &[u8]) -> Result<(), PciError> {
        Ok(self.dev.write_config(offset as u64, buf)?)
    }

    fn map_bar(&mut self, bar: u8) -> Result<u64, PciError> {
        if let Some(m) = self.bar(bar) {
            return Ok(m.len() as u64);
        }
        let slot = self.bars.get_mut(bar as usize).ok_or_else(|| PciError::Device {
            device: self.name.clone(),
            msg: format!("BAR {bar} does not exist (0-5)"),
        })?;
        let m = self.dev.map_region(bar as u32)?;
        let len = m.len() as u64;
        *slot = Some(m);
        Ok(len)
    }

    #[inline(always)]
    fn read8(&self, bar: u8, off: u32) -> u8 {
        self.bar(bar).and_then(|m| m.read8(off as usize)).unwrap_or(!0)
    }

    #[inline(always)]
    fn read16(&self, bar: u8, off: u32) -> u16 {
        self.bar(bar).and_then(|m| m.read16(off as usize)).unwrap_or(!0)
    }

    #[inline(always)]
    fn read32(&self, bar: u8, off: u32) -> u32 {
        self.bar(bar).and_then(|m| m.read32(off as usize)).unwrap_or(!0)
    }

    #[inline(always)]
    fn write8(&self, bar: u8, off: u32, v: u8) {
        if let Some(m) = self.bar(bar) {
            m.write8(off as usize, v);
        }
    }

    #[inline(always)]
    fn write16(&self, bar: u8, off: u32, v: u16) {
        if let Some(m) = self.bar(bar) {
            m.write16(off as usize, v);
        }
    }

    #[inline(always)]
    fn write32(&self, bar: u8, off: u32, v: u32) {
        if let Some(m) = self.bar(bar) {
            m.write32(off as usize, v);
        }
    }

    #[allow(unsafe_code)]
    fn alloc_dma(&self, len: usize) -> Result<DmaArea, PciError> {
        let mem = anon_memory(len).map_err(|source| PciError::Memory { len, source })?;
        let page = super::dma::page_size() as u64;
        // SAFETY: `mem` is moved into the DmaArea together with the mapping, which the
        // area drops first (field order), so the memory outlives the IOMMU mapping.
        let map = unsafe { self.ctx.map(mem.as_mut_ptr(), mem.len(), page)? };
        let iova = map.iova();
        Ok(DmaArea::new(mem, iova, Box::new(map)))
    }

    #[allow(unsafe_code)]
    fn map_pool(&self, pool: &Mempool) -> Result<Arc<PoolDma>, PciError> {
        lock(&self.ctx.pools).get_or_map(pool, || {
            let r = pool.region();
            // IOVA aligned to the region's page size, so the IOMMU can use large pages for
            // a hugepage-backed pool.
            // SAFETY: the PoolDma built below holds a handle of the pool, which keeps the
            // region mapped, and drops the IOMMU mapping before that handle (field order).
            let map = unsafe { self.ctx.map(r.base(), r.len(), r.page_size() as u64)? };
            let iova = map.iova();
            log::debug!(
                "{}: mempool {:?} mapped for DMA at IOVA {iova:#x} ({} bytes)",
                self.name,
                pool.config().name,
                r.len()
            );
            Ok(Arc::new(PoolDma::new(pool, iova, Box::new(map))))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_is_mapped_once_while_in_use() {
        #[derive(Debug)]
        struct Keep;
        let pool = |n| {
            let mut c = crate::mbuf::MempoolConfig::new("reg", n);
            c.backing = crate::mbuf::MemBacking::Normal;
            Mempool::new(c).unwrap()
        };
        let (a, b) = (pool(8), pool(8));
        let mut reg = PoolRegistry::default();
        let mut maps = 0;
        let mut get = |reg: &mut PoolRegistry, p: &Mempool| {
            reg.get_or_map(p, || {
                maps += 1;
                Ok(Arc::new(PoolDma::new(p, 0x1_0000_0000 * maps, Box::new(Keep))))
            })
            .unwrap()
        };
        let a1 = get(&mut reg, &a);
        let a2 = get(&mut reg, &a);
        assert!(Arc::ptr_eq(&a1, &a2), "second device, same mapping");
        let b1 = get(&mut reg, &b);
        assert_ne!(a1.iova_base(), b1.iova_base());
        drop((a1, a2));
        let a3 = get(&mut reg, &a);
        assert_eq!(a3.iova_base(), 0x3_0000_0000, "mapped again once the last user left");
        assert_eq!(reg.0.len(), 2);
        let err = reg.get_or_map(&pool(8), || Err(PciError::IovaExhausted { len: 1 }));
        assert!(err.is_err());
    }

    #[test]
    fn without_vfio_the_error_says_what_to_load() {
        let dir = std::env::temp_dir().join(format!("pci-vfio-none-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = VfioDevice::open_in(&SysRoot::new(&dir), PciAddr::new(0, 3, 0, 0)).unwrap_err();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(matches!(e, PciError::Vfio(VfioError::NotAvailable { .. })), "{e}");
        assert!(e.to_string().contains("modprobe vfio-pci"), "{e}");
    }
}
