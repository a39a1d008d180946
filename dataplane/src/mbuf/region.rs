//! The memory region a pool is carved from: one mapping (hugepages when available), its base
//! pointer and the page-size probes.

use super::{MemBacking, MempoolError};
use std::fmt;
use std::fs::File;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One contiguous mapped memory region, the backing of a pool.
pub struct MemRegion {
    /// Kept raw: its pointer carries write permission for the whole region without creating a
    /// reference to the memory, which mbufs, the kernel (AF_XDP) and devices (DMA) share.
    map: memmap2::MmapRaw,
    page_size: usize,
    hugepages: bool,
    _file: Option<File>,
}

impl MemRegion {
    /// Maps at least `len` bytes (rounded up to the page size) with `backing`.
    ///
    /// # Errors
    /// [`MempoolError::Map`] when the mapping fails (for `Auto`, only when normal pages fail).
    #[allow(unsafe_code)]
    pub fn map(len: usize, backing: &MemBacking) -> Result<Self, MempoolError> {
        const M2: usize = 2 << 20;
        const G1: usize = 1 << 30;
        let round = |len: usize, p: usize| len.div_ceil(p) * p;
        let anon = |len: usize, bits: Option<u8>| {
            let mut o = memmap2::MmapOptions::new();
            o.len(len);
            populate(&mut o);
            if bits.is_some() {
                o.huge(bits);
            }
            o.map_anon()
        };
        match backing {
            MemBacking::Normal => Self::normal(len),
            MemBacking::Huge2M => {
                let l = round(len, M2);
                let map = anon(l, Some(21)).map_err(|e| MempoolError::Map {
                    len: l,
                    backing: "2 MiB hugepages",
                    source: e,
                })?;
                Ok(MemRegion { map: map.into(), page_size: M2, hugepages: true, _file: None })
            }
            MemBacking::Huge1G => {
                let l = round(len, G1);
                let map = anon(l, Some(30)).map_err(|e| MempoolError::Map {
                    len: l,
                    backing: "1 GiB hugepages",
                    source: e,
                })?;
                Ok(MemRegion { map: map.into(), page_size: G1, hugepages: true, _file: None })
            }
            // Miri models only plain anonymous private mappings.
            MemBacking::Auto if cfg!(miri) => Self::normal(len),
            MemBacking::Auto => {
                let l = round(len, M2);
                match anon(l, Some(21)) {
                    Ok(map) => Ok(MemRegion { map: map.into(), page_size: M2, hugepages: true, _file: None }),
                    Err(e) => {
                        log::warn!(
                            "no 2 MiB hugepages for {l} bytes ({e}); using normal pages (reserve some with \
                             `echo N > /proc/sys/vm/nr_hugepages` for better TLB behaviour)"
                        );
                        Self::normal(len)
                    }
                }
            }
            MemBacking::Hugetlbfs(dir) => {
                let page = hugetlbfs_page_size(dir).unwrap_or(M2);
                let l = round(len, page);
                let path = dir.join(format!(
                    "dataplane-{}-{}",
                    std::process::id(),
                    REGION_SEQ.fetch_add(1, Ordering::Relaxed)
                ));
                let err = |e| MempoolError::Map { len: l, backing: "hugetlbfs file", source: e };
                let file =
                    std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path).map_err(err)?;
                let _ = std::fs::remove_file(&path);
                file.set_len(l as u64).map_err(err)?;
                // SAFETY: the file was just created and unlinked: no other process can map or
                // truncate it, so the mapping stays valid for the region's lifetime.
                let map = unsafe { memmap2::MmapOptions::new().len(l).populate().map_mut(&file) }.map_err(err)?;
                Ok(MemRegion { map: map.into(), page_size: page, hugepages: true, _file: Some(file) })
            }
        }
    }

    fn normal(len: usize) -> Result<Self, MempoolError> {
        let page = vfio::device::page_size();
        let l = len.div_ceil(page) * page;
        let mut o = memmap2::MmapOptions::new();
        o.len(l);
        populate(&mut o);
        let map = o.map_anon().map_err(|e| MempoolError::Map { len: l, backing: "normal pages", source: e })?;
        Ok(MemRegion { map: map.into(), page_size: page, hugepages: false, _file: None })
    }

    /// Base address (page aligned). Register it for DMA (AF_XDP UMEM, VFIO DMA map).
    pub fn base(&self) -> *mut u8 {
        self.map.as_mut_ptr()
    }

    /// Length in bytes (a multiple of the page size).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True for an empty region (never, for a pool's).
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// Page size backing the region.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// True when backed by hugepages.
    pub fn is_hugepages(&self) -> bool {
        self.hugepages
    }
}

impl fmt::Debug for MemRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemRegion")
            .field("base", &self.base())
            .field("len", &self.len())
            .field("page_size", &self.page_size)
            .finish()
    }
}

/// Asks for the mapping to be populated up front (MAP_POPULATE), so the data path takes no
/// page faults; not under Miri, which models only plain anonymous mappings.
fn populate(o: &mut memmap2::MmapOptions) {
    if !cfg!(miri) {
        o.populate();
    }
}

static REGION_SEQ: AtomicUsize = AtomicUsize::new(0);

/// The page size of a hugetlbfs mount, from /proc/mounts (`pagesize=2M` option).
fn hugetlbfs_page_size(dir: &std::path::Path) -> Option<usize> {
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    let dir = dir.canonicalize().ok()?;
    mounts.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        let (_, mnt, fstype, opts) = (it.next()?, it.next()?, it.next()?, it.next()?);
        if fstype != "hugetlbfs" || std::path::Path::new(mnt) != dir {
            return None;
        }
        opts.split(',').find_map(|o| {
            let v = o.strip_prefix("pagesize=")?;
            let (num, mult) = match v.chars().last()? {
                'K' => (&v[..v.len() - 1], 1usize << 10),
                'M' => (&v[..v.len() - 1], 1 << 20),
                'G' => (&v[..v.len() - 1], 1 << 30),
                _ => (v, 1),
            };
            num.parse::<usize>().ok().map(|n| n * mult)
        })
    })
}
