//! Opening a PCI device through Linux VFIO: container, group, device, regions, DMA.
//!
//! The sequence (as in the kernel's `Documentation/driver-api/vfio.rst`):
//! 1. open `/dev/vfio/vfio` (the [`Container`]), check `VFIO_GET_API_VERSION` and which IOMMU
//!    back-ends `VFIO_CHECK_EXTENSION` reports (type1v2, type1, no-IOMMU);
//! 2. open `/dev/vfio/<group>` (or `/dev/vfio/noiommu-<group>`), check the group's
//!    `VFIO_GROUP_FLAGS_VIABLE` (every device of the group on vfio-pci or harmless), attach
//!    it with `VFIO_GROUP_SET_CONTAINER`, then `VFIO_SET_IOMMU` on the container (once);
//! 3. `VFIO_GROUP_GET_DEVICE_FD` with the PCI address gives the [`Device`];
//!    `VFIO_DEVICE_GET_INFO` and `VFIO_DEVICE_GET_REGION_INFO` describe it; BARs that allow
//!    it are mmapped ([`RegionMapping`]);
//! 4. memory that the device will DMA to or from is mapped with `VFIO_IOMMU_MAP_DMA`
//!    ([`Container::map_dma`]) and unmapped with `VFIO_IOMMU_UNMAP_DMA` when the
//!    [`DmaMapping`] drops.
//!
//! Structures and constants come from the `vfio-bindings` crate; the ioctl request numbers
//! are `_IO(VFIO_TYPE, VFIO_BASE + n)`, computed here as the kernel's `_IO` macro does.
//! Without `/dev/vfio/vfio` every entry point fails with [`VfioError::NotAvailable`], which
//! says what to load and enable.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use libc::{c_int, c_ulong};
use vfio_bindings::bindings::vfio as sys;

use crate::sysfs::{self, PciAddr, SysRoot};

#[cfg(any(
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc",
    target_arch = "sparc64"
))]
const IOC_NONE_SHIFTED: c_ulong = 1 << 29;
#[cfg(not(any(
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc",
    target_arch = "sparc64"
)))]
const IOC_NONE_SHIFTED: c_ulong = 0;

/// `_IO(VFIO_TYPE, VFIO_BASE + n)`: direction none, size 0.
const fn vfio_io(n: u32) -> c_ulong {
    IOC_NONE_SHIFTED | ((sys::VFIO_TYPE as c_ulong) << 8) | (sys::VFIO_BASE + n) as c_ulong
}

/// The VFIO ioctl request numbers (`include/uapi/linux/vfio.h`).
pub mod ioctl {
    use super::{c_ulong, vfio_io};
    /// `VFIO_GET_API_VERSION`.
    pub const GET_API_VERSION: c_ulong = vfio_io(0);
    /// `VFIO_CHECK_EXTENSION`.
    pub const CHECK_EXTENSION: c_ulong = vfio_io(1);
    /// `VFIO_SET_IOMMU`.
    pub const SET_IOMMU: c_ulong = vfio_io(2);
    /// `VFIO_GROUP_GET_STATUS`.
    pub const GROUP_GET_STATUS: c_ulong = vfio_io(3);
    /// `VFIO_GROUP_SET_CONTAINER`.
    pub const GROUP_SET_CONTAINER: c_ulong = vfio_io(4);
    /// `VFIO_GROUP_UNSET_CONTAINER`.
    pub const GROUP_UNSET_CONTAINER: c_ulong = vfio_io(5);
    /// `VFIO_GROUP_GET_DEVICE_FD`.
    pub const GROUP_GET_DEVICE_FD: c_ulong = vfio_io(6);
    /// `VFIO_DEVICE_GET_INFO`.
    pub const DEVICE_GET_INFO: c_ulong = vfio_io(7);
    /// `VFIO_DEVICE_GET_REGION_INFO`.
    pub const DEVICE_GET_REGION_INFO: c_ulong = vfio_io(8);
    /// `VFIO_DEVICE_RESET`.
    pub const DEVICE_RESET: c_ulong = vfio_io(11);
    /// `VFIO_IOMMU_GET_INFO`.
    pub const IOMMU_GET_INFO: c_ulong = vfio_io(12);
    /// `VFIO_IOMMU_MAP_DMA`.
    pub const IOMMU_MAP_DMA: c_ulong = vfio_io(13);
    /// `VFIO_IOMMU_UNMAP_DMA`.
    pub const IOMMU_UNMAP_DMA: c_ulong = vfio_io(14);
}

/// Errors of the VFIO side.
#[derive(Debug, thiserror::Error)]
pub enum VfioError {
    /// `/dev/vfio/vfio` does not exist: VFIO is not loaded or not enabled.
    #[error("{path} not found: load the vfio-pci module (modprobe vfio-pci) and enable the IOMMU (intel_iommu=on or amd_iommu=on on x86, iommu.passthrough=0 on arm64), or use no-IOMMU mode (modprobe vfio enable_unsafe_noiommu_mode=1; no isolation, physical addresses for DMA)")]
    NotAvailable {
        /// The missing path.
        path: PathBuf,
    },
    /// Opening a VFIO character device failed.
    #[error("open {path}: {source}")]
    Open {
        /// The device node.
        path: PathBuf,
        /// The underlying error (EACCES: run as root or grant access to the node).
        source: io::Error,
    },
    /// An ioctl failed.
    #[error("{op} on {path}: {source}")]
    Ioctl {
        /// The ioctl's name.
        op: &'static str,
        /// The file it was issued on.
        path: PathBuf,
        /// The error the kernel returned.
        source: io::Error,
    },
    /// The kernel speaks another VFIO API version.
    #[error("{path}: VFIO API version {found}, expected {expected}")]
    ApiVersion {
        /// The container node.
        path: PathBuf,
        /// What the kernel reported.
        found: i32,
        /// What we speak.
        expected: u32,
    },
    /// The container supports no IOMMU back-end we can use.
    #[error("{path}: the kernel offers neither the type1 IOMMU back-end nor no-IOMMU mode: enable the IOMMU (intel_iommu=on / iommu.passthrough=0 on arm64) or vfio's enable_unsafe_noiommu_mode")]
    NoIommuBackend {
        /// The container node.
        path: PathBuf,
    },
    /// The group's node does not exist.
    #[error("{path} not found: no device of IOMMU group {group} is bound to vfio-pci (bind it first)")]
    GroupMissing {
        /// The group.
        group: u32,
        /// The missing node.
        path: PathBuf,
    },
    /// The group is not viable: some device of it is on a kernel driver.
    #[error(
        "IOMMU group {group} is not viable: bind every device of the group to vfio-pci (devbind --status shows them)"
    )]
    GroupNotViable {
        /// The group.
        group: u32,
    },
    /// A no-IOMMU group needs a container in no-IOMMU mode, and the other way round.
    #[error("IOMMU group {group}: {why}")]
    GroupMode {
        /// The group.
        group: u32,
        /// What does not fit.
        why: &'static str,
    },
    /// Reading sysfs failed (finding the device's group).
    #[error(transparent)]
    Sysfs(#[from] crate::Error),
    /// A region cannot be used as asked.
    #[error("{device}: region {index}: {why}")]
    Region {
        /// The device.
        device: PciAddr,
        /// The region index (0–5 are BARs, 7 config space).
        index: u32,
        /// What is wrong.
        why: &'static str,
    },
    /// mmap of a region failed.
    #[error("{device}: mmap of region {index}: {source}")]
    Mmap {
        /// The device.
        device: PciAddr,
        /// The region index.
        index: u32,
        /// The error.
        source: io::Error,
    },
    /// A DMA range is not acceptable.
    #[error("DMA range vaddr {vaddr:#x} len {len:#x} iova {iova:#x}: {why}")]
    BadDmaRange {
        /// Process address.
        vaddr: usize,
        /// Length.
        len: usize,
        /// Device address.
        iova: u64,
        /// What is wrong.
        why: &'static str,
    },
    /// DMA mapping needs an IOMMU; in no-IOMMU mode use physical addresses.
    #[error("VFIO_IOMMU_MAP_DMA is not available in no-IOMMU mode: program the device with physical addresses (/proc/self/pagemap) instead")]
    DmaNoIommu,
    /// DMA mapping needs a group attached (and so an IOMMU type set) first.
    #[error("no IOMMU group attached to the container yet: open a group before mapping DMA")]
    NoGroup,
}

/// An IOMMU back-end of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IommuType {
    /// `VFIO_TYPE1v2_IOMMU`.
    Type1v2,
    /// `VFIO_TYPE1_IOMMU`.
    Type1,
    /// `VFIO_NOIOMMU_IOMMU` (no isolation, no DMA mapping).
    NoIommu,
}

impl IommuType {
    fn raw(self) -> u32 {
        match self {
            IommuType::Type1v2 => sys::VFIO_TYPE1v2_IOMMU,
            IommuType::Type1 => sys::VFIO_TYPE1_IOMMU,
            IommuType::NoIommu => sys::VFIO_NOIOMMU_IOMMU,
        }
    }
}

fn ioctl_err(op: &'static str, path: &Path) -> VfioError {
    VfioError::Ioctl { op, path: path.to_path_buf(), source: io::Error::last_os_error() }
}

fn open_node(path: &Path) -> Result<File, VfioError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|source| VfioError::Open { path: path.to_path_buf(), source })
}

/// A VFIO container (`/dev/vfio/vfio`): the IOMMU context that groups attach to and DMA
/// mappings live in.
#[derive(Debug)]
pub struct Container {
    fd: Arc<OwnedFd>,
    path: PathBuf,
    supported: Vec<IommuType>,
    iommu: Option<IommuType>,
}

impl Container {
    /// Opens the host's container, `/dev/vfio/vfio`.
    ///
    /// # Errors
    /// As [`Container::open_in`].
    pub fn open() -> Result<Self, VfioError> {
        Self::open_in(&SysRoot::host())
    }

    /// Opens `<root>/dev/vfio/vfio` and checks the API version and IOMMU back-ends.
    ///
    /// # Errors
    /// [`VfioError::NotAvailable`] when the node does not exist, [`VfioError::Open`],
    /// [`VfioError::Ioctl`], [`VfioError::ApiVersion`], [`VfioError::NoIommuBackend`].
    pub fn open_in(root: &SysRoot) -> Result<Self, VfioError> {
        let path = root.dev_vfio().join("vfio");
        if !path.exists() {
            return Err(VfioError::NotAvailable { path });
        }
        let file = open_node(&path)?;
        let fd = file.as_raw_fd();
        // SAFETY: `fd` is an open descriptor owned by `file`; VFIO_GET_API_VERSION takes no
        // argument and only returns an int.
        let version = unsafe { libc::ioctl(fd, ioctl::GET_API_VERSION as _) };
        if version < 0 {
            return Err(ioctl_err("VFIO_GET_API_VERSION", &path));
        }
        if version as u32 != sys::VFIO_API_VERSION {
            return Err(VfioError::ApiVersion { path, found: version, expected: sys::VFIO_API_VERSION });
        }
        let mut supported = Vec::new();
        for t in [IommuType::Type1v2, IommuType::Type1, IommuType::NoIommu] {
            // SAFETY: as above; VFIO_CHECK_EXTENSION takes the extension number by value.
            let r = unsafe { libc::ioctl(fd, ioctl::CHECK_EXTENSION as _, t.raw() as c_ulong) };
            if r > 0 {
                supported.push(t);
            }
        }
        if supported.is_empty() {
            return Err(VfioError::NoIommuBackend { path });
        }
        Ok(Container { fd: Arc::new(OwnedFd::from(file)), path, supported, iommu: None })
    }

    /// The IOMMU back-ends the kernel offers, best first.
    pub fn supported(&self) -> &[IommuType] {
        &self.supported
    }

    /// The back-end set by the first group attached, if any.
    pub fn iommu_type(&self) -> Option<IommuType> {
        self.iommu
    }

    /// Opens IOMMU group `group` under `root` (`dev/vfio/<group>`, or
    /// `dev/vfio/noiommu-<group>`), checks it is viable, attaches it to this container and,
    /// for the first group, sets the IOMMU back-end.
    ///
    /// # Errors
    /// [`VfioError::GroupMissing`], [`VfioError::Open`], [`VfioError::GroupNotViable`],
    /// [`VfioError::GroupMode`], [`VfioError::Ioctl`].
    pub fn open_group(&mut self, root: &SysRoot, group: u32) -> Result<Group, VfioError> {
        let dir = root.dev_vfio();
        let normal = dir.join(group.to_string());
        let noiommu_path = dir.join(format!("noiommu-{group}"));
        let (path, noiommu) = if normal.exists() {
            (normal, false)
        } else if noiommu_path.exists() {
            (noiommu_path, true)
        } else {
            return Err(VfioError::GroupMissing { group, path: normal });
        };
        let wanted = if noiommu {
            if !self.supported.contains(&IommuType::NoIommu) {
                return Err(VfioError::GroupMode {
                    group,
                    why: "no-IOMMU group but the container does not offer no-IOMMU mode",
                });
            }
            IommuType::NoIommu
        } else {
            match self.supported.iter().find(|t| **t != IommuType::NoIommu) {
                Some(t) => *t,
                None => {
                    return Err(VfioError::GroupMode {
                        group,
                        why: "IOMMU group but the container offers only no-IOMMU mode",
                    })
                }
            }
        };
        if let Some(set) = self.iommu {
            if (set == IommuType::NoIommu) != noiommu {
                return Err(VfioError::GroupMode {
                    group,
                    why: "cannot mix no-IOMMU and IOMMU groups in one container",
                });
            }
        }
        let file = open_node(&path)?;
        let gfd = file.as_raw_fd();
        let mut status =
            sys::vfio_group_status { argsz: std::mem::size_of::<sys::vfio_group_status>() as u32, flags: 0 };
        // SAFETY: `gfd` is open; VFIO_GROUP_GET_STATUS writes a `vfio_group_status` of at
        // most `argsz` bytes through the pointer, which points to one on our stack.
        let r = unsafe { libc::ioctl(gfd, ioctl::GROUP_GET_STATUS as _, &mut status) };
        if r < 0 {
            return Err(ioctl_err("VFIO_GROUP_GET_STATUS", &path));
        }
        if status.flags & sys::VFIO_GROUP_FLAGS_VIABLE == 0 {
            return Err(VfioError::GroupNotViable { group });
        }
        let cfd: c_int = self.fd.as_raw_fd();
        // SAFETY: VFIO_GROUP_SET_CONTAINER reads one `int` (the container fd) through the
        // pointer, which points to `cfd` on our stack.
        let r = unsafe { libc::ioctl(gfd, ioctl::GROUP_SET_CONTAINER as _, &cfd) };
        if r < 0 {
            return Err(ioctl_err("VFIO_GROUP_SET_CONTAINER", &path));
        }
        if self.iommu.is_none() {
            // SAFETY: the container fd is open; VFIO_SET_IOMMU takes the type by value.
            let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), ioctl::SET_IOMMU as _, wanted.raw() as c_ulong) };
            if r < 0 {
                return Err(ioctl_err("VFIO_SET_IOMMU", &self.path));
            }
            self.iommu = Some(wanted);
        }
        Ok(Group { file, group, path, noiommu, _container: Arc::clone(&self.fd) })
    }

    /// Maps `len` bytes at `vaddr` for device DMA at `iova` (read and write), with
    /// `VFIO_IOMMU_MAP_DMA`. The mapping is removed when the returned [`DmaMapping`] drops.
    /// `vaddr`, `len` and `iova` must be page-aligned, `len` non-zero.
    ///
    /// # Safety
    /// `vaddr..vaddr+len` must be memory of this process that stays mapped, and is not
    /// reused for anything the device must not see, until the [`DmaMapping`] is dropped:
    /// the device may read and write it at any time meanwhile. (The kernel pins the pages,
    /// so they will not move, but unmapping them from the process does not stop the device.)
    ///
    /// # Errors
    /// [`VfioError::BadDmaRange`], [`VfioError::DmaNoIommu`], [`VfioError::NoGroup`],
    /// [`VfioError::Ioctl`].
    pub unsafe fn map_dma(&self, vaddr: *mut u8, len: usize, iova: u64) -> Result<DmaMapping, VfioError> {
        check_dma_range(vaddr as usize, len, iova, page_size())?;
        match self.iommu {
            None => return Err(VfioError::NoGroup),
            Some(IommuType::NoIommu) => return Err(VfioError::DmaNoIommu),
            Some(_) => {}
        }
        let map = sys::vfio_iommu_type1_dma_map {
            argsz: std::mem::size_of::<sys::vfio_iommu_type1_dma_map>() as u32,
            flags: sys::VFIO_DMA_MAP_FLAG_READ | sys::VFIO_DMA_MAP_FLAG_WRITE,
            vaddr: vaddr as u64,
            iova,
            size: len as u64,
        };
        // SAFETY: the container fd is open; VFIO_IOMMU_MAP_DMA reads a
        // `vfio_iommu_type1_dma_map` through the pointer. The memory it names is the
        // caller's promise (see `# Safety`).
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), ioctl::IOMMU_MAP_DMA as _, &map) };
        if r < 0 {
            return Err(ioctl_err("VFIO_IOMMU_MAP_DMA", &self.path));
        }
        Ok(DmaMapping { container: Arc::clone(&self.fd), path: self.path.clone(), iova, len, unmapped: false })
    }

    /// What the IOMMU accepts (`VFIO_IOMMU_GET_INFO`): page sizes and, on Linux 5.4+, the
    /// usable IOVA ranges (reserved windows such as x86's MSI range at 0xfee00000 or the
    /// SMMU's software MSI window are left out of them).
    ///
    /// # Errors
    /// [`VfioError::NoGroup`] before a group is attached, [`VfioError::DmaNoIommu`] in
    /// no-IOMMU mode, [`VfioError::Ioctl`].
    pub fn iommu_info(&self) -> Result<IommuInfo, VfioError> {
        match self.iommu {
            None => return Err(VfioError::NoGroup),
            Some(IommuType::NoIommu) => return Err(VfioError::DmaNoIommu),
            Some(_) => {}
        }
        const HDR: usize = std::mem::size_of::<sys::vfio_iommu_type1_info>();
        // u64 words keep the buffer 8-byte aligned, as the structures in it need.
        let mut buf = vec![0u64; HDR / 8];
        let mut argsz = HDR;
        for _ in 0..2 {
            buf.resize(argsz.div_ceil(8), 0);
            let info = buf.as_mut_ptr() as *mut sys::vfio_iommu_type1_info;
            // SAFETY: `buf` holds at least HDR bytes, 8-byte aligned (u64 words), so `info`
            // points to writable memory for one `vfio_iommu_type1_info`.
            unsafe { (*info).argsz = argsz as u32 };
            // SAFETY: the container fd is open; VFIO_IOMMU_GET_INFO writes at most `argsz`
            // bytes (the header, then capabilities if they fit) into `buf`, which has
            // `argsz` bytes or more.
            let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), ioctl::IOMMU_GET_INFO as _, info) };
            if r < 0 {
                return Err(ioctl_err("VFIO_IOMMU_GET_INFO", &self.path));
            }
            // SAFETY: as above; the kernel has written the header.
            let need = unsafe { (*info).argsz } as usize;
            if need <= argsz {
                break;
            }
            argsz = need.min(1 << 16);
        }
        // SAFETY: `buf` is `buf.len() * 8` initialised bytes.
        let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr() as *const u8, buf.len() * 8) };
        Ok(parse_iommu_info(bytes))
    }
}

/// What [`Container::iommu_info`] reports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IommuInfo {
    /// Bitmap of the IOMMU page sizes (bit n set: 2^n bytes); 0 when not reported.
    pub page_sizes: u64,
    /// Usable IOVA ranges as inclusive `(start, end)` pairs, sorted; `None` when the kernel
    /// does not report them (before Linux 5.4).
    pub iova_ranges: Option<Vec<(u64, u64)>>,
}

impl IommuInfo {
    /// The smallest IOMMU page size (4096 when not reported).
    pub fn min_page(&self) -> u64 {
        if self.page_sizes == 0 {
            4096
        } else {
            1 << self.page_sizes.trailing_zeros()
        }
    }
}

/// Parses the bytes of a `vfio_iommu_type1_info` with its capability chain. Malformed
/// capabilities end the walk (what was found so far is kept).
fn parse_iommu_info(b: &[u8]) -> IommuInfo {
    let u32_at = |o: usize| b.get(o..o + 4).map(|s| u32::from_le_bytes(s.try_into().unwrap_or_default()));
    let u64_at = |o: usize| b.get(o..o + 8).map(|s| u64::from_le_bytes(s.try_into().unwrap_or_default()));
    let u16_at = |o: usize| b.get(o..o + 2).map(|s| u16::from_le_bytes(s.try_into().unwrap_or_default()));
    let flags = u32_at(4).unwrap_or(0);
    let mut info = IommuInfo { page_sizes: 0, iova_ranges: None };
    if flags & sys::VFIO_IOMMU_INFO_PGSIZES != 0 {
        info.page_sizes = u64_at(8).unwrap_or(0);
    }
    if flags & sys::VFIO_IOMMU_INFO_CAPS == 0 {
        return info;
    }
    let mut off = u32_at(16).unwrap_or(0) as usize;
    // Each capability header is 8 bytes; a chain longer than the buffer allows loops.
    let mut left = b.len() / 8;
    while off != 0 && left > 0 {
        left -= 1;
        let (Some(id), Some(next)) = (u16_at(off), u32_at(off + 4)) else { break };
        if id as u32 == sys::VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE {
            let n = u32_at(off + 8).unwrap_or(0) as usize;
            let mut v = Vec::new();
            for i in 0..n {
                let at = off + 16 + 16 * i;
                match (u64_at(at), u64_at(at + 8)) {
                    (Some(s), Some(e)) if s <= e => v.push((s, e)),
                    (Some(_), Some(_)) => {}
                    _ => break,
                }
            }
            v.sort_unstable();
            info.iova_ranges = Some(v);
        }
        off = next as usize;
    }
    info
}

/// The system page size (`sysconf(_SC_PAGESIZE)`), 4096 when it cannot be had.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

/// Checks a DMA range: non-empty, page-aligned, no wrap-around.
fn check_dma_range(vaddr: usize, len: usize, iova: u64, page: usize) -> Result<(), VfioError> {
    let bad = |why| VfioError::BadDmaRange { vaddr, len, iova, why };
    if len == 0 {
        return Err(bad("empty"));
    }
    if vaddr % page != 0 || len % page != 0 || iova % page as u64 != 0 {
        return Err(bad("vaddr, len and iova must be page-aligned"));
    }
    if vaddr.checked_add(len).is_none() || iova.checked_add(len as u64).is_none() {
        return Err(bad("range wraps around"));
    }
    Ok(())
}

/// An IOMMU group attached to a [`Container`].
#[derive(Debug)]
pub struct Group {
    file: File,
    group: u32,
    path: PathBuf,
    noiommu: bool,
    _container: Arc<OwnedFd>,
}

impl Group {
    /// The group number.
    pub fn id(&self) -> u32 {
        self.group
    }

    /// Opened as a no-IOMMU group.
    pub fn is_noiommu(&self) -> bool {
        self.noiommu
    }

    /// Gets the device `addr` of this group (`VFIO_GROUP_GET_DEVICE_FD`) and its info.
    ///
    /// # Errors
    /// [`VfioError::Ioctl`] (the device is not in this group, or not on vfio-pci).
    pub fn open_device(&self, addr: PciAddr) -> Result<Device, VfioError> {
        // A PCI address has no NUL byte; fall back to an empty name (which the kernel
        // rejects) rather than panic.
        let name = CString::new(addr.to_string()).unwrap_or_default();
        // SAFETY: the group fd is open; VFIO_GROUP_GET_DEVICE_FD reads a NUL-terminated
        // string through the pointer and returns a new fd (or -1).
        let fd = unsafe { libc::ioctl(self.file.as_raw_fd(), ioctl::GROUP_GET_DEVICE_FD as _, name.as_ptr()) };
        if fd < 0 {
            return Err(ioctl_err("VFIO_GROUP_GET_DEVICE_FD", &self.path));
        }
        // SAFETY: `fd` is a fresh descriptor that the kernel just handed to us and nothing
        // else owns.
        let file = unsafe { File::from_raw_fd(fd) };
        let path = self.path.join(addr.to_string());
        let mut info =
            sys::vfio_device_info { argsz: std::mem::size_of::<sys::vfio_device_info>() as u32, ..Default::default() };
        // SAFETY: the device fd is open; VFIO_DEVICE_GET_INFO writes at most `argsz` bytes
        // of `vfio_device_info` through the pointer, which points to one on our stack.
        let r = unsafe { libc::ioctl(file.as_raw_fd(), ioctl::DEVICE_GET_INFO as _, &mut info) };
        if r < 0 {
            return Err(ioctl_err("VFIO_DEVICE_GET_INFO", &path));
        }
        Ok(Device {
            file,
            addr,
            path,
            info: DeviceInfo { flags: info.flags, num_regions: info.num_regions, num_irqs: info.num_irqs },
            config: OnceLock::new(),
        })
    }
}

/// What `VFIO_DEVICE_GET_INFO` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceInfo {
    /// `VFIO_DEVICE_FLAGS_*`.
    pub flags: u32,
    /// Number of regions (BARs 0–5, ROM, config, VGA, …).
    pub num_regions: u32,
    /// Number of IRQ kinds.
    pub num_irqs: u32,
}

impl DeviceInfo {
    /// A PCI device.
    pub fn is_pci(&self) -> bool {
        self.flags & sys::VFIO_DEVICE_FLAGS_PCI != 0
    }

    /// Supports `VFIO_DEVICE_RESET`.
    pub fn can_reset(&self) -> bool {
        self.flags & sys::VFIO_DEVICE_FLAGS_RESET != 0
    }
}

/// What `VFIO_DEVICE_GET_REGION_INFO` says about one region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionInfo {
    /// The region index (`VFIO_PCI_BAR0_REGION_INDEX` … `VFIO_PCI_CONFIG_REGION_INDEX`).
    pub index: u32,
    /// `VFIO_REGION_INFO_FLAG_*`.
    pub flags: u32,
    /// Size in bytes (0: not implemented).
    pub size: u64,
    /// Offset of the region in the device fd.
    pub offset: u64,
}

impl RegionInfo {
    /// Readable.
    pub fn readable(&self) -> bool {
        self.flags & sys::VFIO_REGION_INFO_FLAG_READ != 0
    }
    /// Writable.
    pub fn writable(&self) -> bool {
        self.flags & sys::VFIO_REGION_INFO_FLAG_WRITE != 0
    }
    /// Can be mmapped.
    pub fn mmappable(&self) -> bool {
        self.flags & sys::VFIO_REGION_INFO_FLAG_MMAP != 0
    }
}

/// The PCI config space region index.
pub const CONFIG_REGION: u32 = sys::VFIO_PCI_CONFIG_REGION_INDEX;

/// A device opened through VFIO.
#[derive(Debug)]
pub struct Device {
    file: File,
    addr: PciAddr,
    path: PathBuf,
    info: DeviceInfo,
    /// The config region's info, asked once.
    config: OnceLock<RegionInfo>,
}

impl Device {
    /// Its PCI address.
    pub fn addr(&self) -> PciAddr {
        self.addr
    }

    /// Its info.
    pub fn info(&self) -> DeviceInfo {
        self.info
    }

    /// Describes region `index`.
    ///
    /// # Errors
    /// [`VfioError::Region`] for an index past `num_regions`, [`VfioError::Ioctl`].
    pub fn region_info(&self, index: u32) -> Result<RegionInfo, VfioError> {
        if index >= self.info.num_regions {
            return Err(VfioError::Region { device: self.addr, index, why: "no such region" });
        }
        let mut ri = sys::vfio_region_info {
            argsz: std::mem::size_of::<sys::vfio_region_info>() as u32,
            index,
            ..Default::default()
        };
        // SAFETY: the device fd is open; VFIO_DEVICE_GET_REGION_INFO writes at most `argsz`
        // bytes of `vfio_region_info` through the pointer (capabilities past `argsz` are not
        // written), which points to one on our stack.
        let r = unsafe { libc::ioctl(self.file.as_raw_fd(), ioctl::DEVICE_GET_REGION_INFO as _, &mut ri) };
        if r < 0 {
            return Err(ioctl_err("VFIO_DEVICE_GET_REGION_INFO", &self.path));
        }
        Ok(RegionInfo { index, flags: ri.flags, size: ri.size, offset: ri.offset })
    }

    /// The implemented BARs (regions 0–5 with a non-zero size).
    ///
    /// # Errors
    /// As [`Device::region_info`].
    pub fn bars(&self) -> Result<Vec<RegionInfo>, VfioError> {
        let mut v = Vec::new();
        for i in sys::VFIO_PCI_BAR0_REGION_INDEX..=sys::VFIO_PCI_BAR5_REGION_INDEX {
            if i >= self.info.num_regions {
                break;
            }
            let r = self.region_info(i)?;
            if r.size > 0 {
                v.push(r);
            }
        }
        Ok(v)
    }

    /// Maps region `index` (a BAR) into the process, read-write and shared.
    ///
    /// Regions whose MSI-X table cannot be mapped report no `MMAP` flag on older kernels and
    /// are refused here; sparse-mmap capabilities are not handled.
    ///
    /// # Errors
    /// [`VfioError::Region`] (empty, not mmappable, too large), [`VfioError::Mmap`],
    /// [`VfioError::Ioctl`].
    pub fn map_region(&self, index: u32) -> Result<RegionMapping, VfioError> {
        let info = self.region_info(index)?;
        let region = |why| VfioError::Region { device: self.addr, index, why };
        if info.size == 0 {
            return Err(region("not implemented (size 0)"));
        }
        if !info.mmappable() {
            return Err(region("cannot be mmapped (use read/write on the device fd)"));
        }
        let len = usize::try_from(info.size).map_err(|_| region("larger than the address space"))?;
        let map = memmap2::MmapOptions::new()
            .offset(info.offset)
            .len(len)
            .map_raw(&self.file)
            .map_err(|source| VfioError::Mmap { device: self.addr, index, source })?;
        Ok(RegionMapping { map, info })
    }

    /// The config region's description (asked once, then cached).
    fn config_info(&self) -> Result<RegionInfo, VfioError> {
        if let Some(i) = self.config.get() {
            return Ok(*i);
        }
        let i = self.region_info(CONFIG_REGION)?;
        Ok(*self.config.get_or_init(|| i))
    }

    fn config_range(&self, offset: u64, len: usize, why: &'static str) -> Result<RegionInfo, VfioError> {
        let info = self.config_info()?;
        if offset.saturating_add(len as u64) > info.size {
            return Err(VfioError::Region { device: self.addr, index: CONFIG_REGION, why });
        }
        Ok(info)
    }

    /// Reads PCI config space at `offset` into `buf` (through the config region).
    ///
    /// # Errors
    /// [`VfioError::Region`], [`VfioError::Ioctl`] (the read's error is reported as one).
    pub fn read_config(&self, offset: u64, buf: &mut [u8]) -> Result<(), VfioError> {
        let info = self.config_range(offset, buf.len(), "read past the end of config space")?;
        self.file.read_exact_at(buf, info.offset + offset).map_err(|source| VfioError::Ioctl {
            op: "pread(config)",
            path: self.path.clone(),
            source,
        })
    }

    /// Writes `buf` to PCI config space at `offset`. VFIO virtualises parts of config space
    /// (BARs, MSI/MSI-X, parts of the command register); writes there reach the emulation.
    ///
    /// # Errors
    /// [`VfioError::Region`], [`VfioError::Ioctl`] (the write's error is reported as one).
    pub fn write_config(&self, offset: u64, buf: &[u8]) -> Result<(), VfioError> {
        let info = self.config_range(offset, buf.len(), "write past the end of config space")?;
        self.file.write_all_at(buf, info.offset + offset).map_err(|source| VfioError::Ioctl {
            op: "pwrite(config)",
            path: self.path.clone(),
            source,
        })
    }

    /// Reads the config byte at `offset`.
    ///
    /// # Errors
    /// As [`Device::read_config`].
    pub fn read_config_u8(&self, offset: u16) -> Result<u8, VfioError> {
        let mut b = [0u8; 1];
        self.read_config(offset as u64, &mut b)?;
        Ok(b[0])
    }

    /// Reads the little-endian config word at `offset` (one 2-byte access).
    ///
    /// # Errors
    /// As [`Device::read_config`].
    pub fn read_config_u16(&self, offset: u16) -> Result<u16, VfioError> {
        let mut b = [0u8; 2];
        self.read_config(offset as u64, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    /// Reads the little-endian config dword at `offset` (one 4-byte access).
    ///
    /// # Errors
    /// As [`Device::read_config`].
    pub fn read_config_u32(&self, offset: u16) -> Result<u32, VfioError> {
        let mut b = [0u8; 4];
        self.read_config(offset as u64, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Writes a config byte.
    ///
    /// # Errors
    /// As [`Device::write_config`].
    pub fn write_config_u8(&self, offset: u16, v: u8) -> Result<(), VfioError> {
        self.write_config(offset as u64, &[v])
    }

    /// Writes a little-endian config word (one 2-byte access).
    ///
    /// # Errors
    /// As [`Device::write_config`].
    pub fn write_config_u16(&self, offset: u16, v: u16) -> Result<(), VfioError> {
        self.write_config(offset as u64, &v.to_le_bytes())
    }

    /// Writes a little-endian config dword (one 4-byte access).
    ///
    /// # Errors
    /// As [`Device::write_config`].
    pub fn write_config_u32(&self, offset: u16, v: u32) -> Result<(), VfioError> {
        self.write_config(offset as u64, &v.to_le_bytes())
    }

    /// The vendor and device id.
    ///
    /// # Errors
    /// As [`Device::read_config`].
    pub fn id(&self) -> Result<crate::pci::PciId, VfioError> {
        Ok(crate::pci::PciId {
            vendor: self.read_config_u16(crate::pci::VENDOR_ID)?,
            device: self.read_config_u16(crate::pci::DEVICE_ID)?,
        })
    }

    /// The standard config space (the first 256 bytes).
    ///
    /// # Errors
    /// As [`Device::read_config`].
    pub fn config_header(&self) -> Result<[u8; crate::pci::CONFIG_SPACE_SIZE], VfioError> {
        let mut b = [0u8; crate::pci::CONFIG_SPACE_SIZE];
        self.read_config(0, &mut b)?;
        Ok(b)
    }

    /// Walks the capability list ([`crate::pci::capabilities`]).
    ///
    /// # Errors
    /// As [`Device::read_config`]; [`VfioError::Region`] for a list that cannot be walked.
    pub fn capabilities(&self) -> Result<Vec<crate::pci::Capability>, VfioError> {
        crate::pci::capabilities(&self.config_header()?).map_err(|_| VfioError::Region {
            device: self.addr,
            index: CONFIG_REGION,
            why: "the capability list is malformed (a pointer out of range or a loop)",
        })
    }

    /// Turns bus mastering (the device's right to DMA) and memory decoding on or off in the
    /// command register; returns the command register as it was. Memory decoding stays on
    /// when bus mastering is turned off, so the BARs remain usable.
    ///
    /// # Errors
    /// As [`Device::read_config`] and [`Device::write_config`].
    pub fn set_bus_master(&self, on: bool) -> Result<u16, VfioError> {
        use crate::pci::{COMMAND, COMMAND_BUS_MASTER, COMMAND_MEMORY};
        let old = self.read_config_u16(COMMAND)?;
        let new = if on { old | COMMAND_BUS_MASTER | COMMAND_MEMORY } else { old & !COMMAND_BUS_MASTER };
        if new != old {
            self.write_config_u16(COMMAND, new)?;
        }
        Ok(old)
    }

    /// Resets the device (`VFIO_DEVICE_RESET`).
    ///
    /// # Errors
    /// [`VfioError::Ioctl`] (also when the device cannot reset; see
    /// [`DeviceInfo::can_reset`]).
    pub fn reset(&self) -> Result<(), VfioError> {
        // SAFETY: the device fd is open; VFIO_DEVICE_RESET takes no argument.
        let r = unsafe { libc::ioctl(self.file.as_raw_fd(), ioctl::DEVICE_RESET as _) };
        if r < 0 {
            return Err(ioctl_err("VFIO_DEVICE_RESET", &self.path));
        }
        Ok(())
    }
}

/// A BAR mapped into the process; unmapped on drop.
#[derive(Debug)]
pub struct RegionMapping {
    map: memmap2::MmapRaw,
    info: RegionInfo,
}

impl RegionMapping {
    /// The region described.
    pub fn info(&self) -> RegionInfo {
        self.info
    }

    /// The mapping's first byte.
    pub fn as_ptr(&self) -> *mut u8 {
        self.map.as_mut_ptr()
    }

    /// Its length.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether it is empty (never, for a mapped region).
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// A pointer to `size` bytes at `offset`, when they are inside the mapping and
    /// naturally aligned.
    fn reg(&self, offset: usize, size: usize) -> Option<*mut u8> {
        if offset % size != 0 || offset.checked_add(size)? > self.len() {
            return None;
        }
        // SAFETY: offset + size <= len, so the result is inside the mapping.
        Some(unsafe { self.as_ptr().add(offset) })
    }

    /// Reads the 8-bit device register at `offset`; `None` when out of range.
    pub fn read8(&self, offset: usize) -> Option<u8> {
        let p = self.reg(offset, 1)?;
        // SAFETY: `p` is inside the mapping (checked by `reg`), which stays mapped while
        // `self` lives.
        Some(unsafe { mmio::read8(p) })
    }

    /// Reads the 16-bit device register at `offset`; `None` when out of range or unaligned.
    pub fn read16(&self, offset: usize) -> Option<u16> {
        let p = self.reg(offset, 2)?;
        // SAFETY: in the mapping and 2-byte aligned (`reg`; the mapping is page-aligned).
        Some(unsafe { mmio::read16(p as *const u16) })
    }

    /// Reads the 32-bit device register at `offset`; `None` when out of range or unaligned.
    pub fn read32(&self, offset: usize) -> Option<u32> {
        let p = self.reg(offset, 4)?;
        // SAFETY: in the mapping and 4-byte aligned (`reg`; the mapping is page-aligned).
        Some(unsafe { mmio::read32(p as *const u32) })
    }

    /// Writes the 8-bit device register at `offset`; `false` when out of range.
    pub fn write8(&self, offset: usize, value: u8) -> bool {
        let Some(p) = self.reg(offset, 1) else { return false };
        // SAFETY: as in `read8`.
        unsafe { mmio::write8(p, value) };
        true
    }

    /// Writes the 16-bit device register at `offset`; `false` when out of range or
    /// unaligned.
    pub fn write16(&self, offset: usize, value: u16) -> bool {
        let Some(p) = self.reg(offset, 2) else { return false };
        // SAFETY: as in `read16`.
        unsafe { mmio::write16(p as *mut u16, value) };
        true
    }

    /// Writes the 32-bit device register at `offset`; `false` when out of range or
    /// unaligned.
    pub fn write32(&self, offset: usize, value: u32) -> bool {
        let Some(p) = self.reg(offset, 4) else { return false };
        // SAFETY: as in `read32`.
        unsafe { mmio::write32(p as *mut u32, value) };
        true
    }
}

/// Single-access loads and stores to device memory.
///
/// Each is exactly one access of its width (never split, merged or elided) and a compiler
/// barrier: no memory access of the program moves across it. They order nothing at the CPU
/// level: a driver puts the barrier the device needs next to them (see
/// `dataplane::port::pci::barrier`).
///
/// On aarch64 they are inline `ldr`/`str` with a plain base-register address. A volatile
/// access in Rust may compile to a pre/post-indexed or pair instruction, which a hypervisor
/// trapping the MMIO (a virtio device in a KVM guest) cannot decode (ESR_EL2.ISV = 0), so
/// Linux's `readl`/`writel` use inline assembly too. Elsewhere a volatile access is one plain
/// `mov`.
pub mod mmio {
    macro_rules! accessors {
        ($read:ident, $write:ident, $t:ty, $ld:literal, $st:literal, $reg:literal) => {
            /// Loads one register.
            ///
            /// # Safety
            /// `p` must point to mapped device (or ordinary) memory, aligned for the width.
            #[inline(always)]
            pub unsafe fn $read(p: *const $t) -> $t {
                #[cfg(target_arch = "aarch64")]
                {
                    let v: u64;
                    // SAFETY: the caller guarantees `p` is mapped and aligned; the asm reads
                    // exactly that location. No `nomem`/`readonly`: it is a compiler barrier.
                    unsafe {
                        core::arch::asm!(concat!($ld, " {v:", $reg, "}, [{p}]"), p = in(reg) p, v = out(reg) v,
                            options(nostack, preserves_flags))
                    };
                    v as $t
                }
                #[cfg(not(target_arch = "aarch64"))]
                {
                    // SAFETY: the caller guarantees `p` is mapped and aligned.
                    unsafe { core::ptr::read_volatile(p) }
                }
            }

            /// Stores one register.
            ///
            /// # Safety
            /// `p` must point to mapped device (or ordinary) memory, aligned for the width.
            #[inline(always)]
            pub unsafe fn $write(p: *mut $t, v: $t) {
                #[cfg(target_arch = "aarch64")]
                {
                    let v = v as u64;
                    // SAFETY: as in the load; the asm writes exactly that location.
                    unsafe {
                        core::arch::asm!(concat!($st, " {v:", $reg, "}, [{p}]"), p = in(reg) p, v = in(reg) v,
                            options(nostack, preserves_flags))
                    };
                }
                #[cfg(not(target_arch = "aarch64"))]
                {
                    // SAFETY: the caller guarantees `p` is mapped and aligned.
                    unsafe { core::ptr::write_volatile(p, v) }
                }
            }
        };
    }

    accessors!(read8, write8, u8, "ldrb", "strb", "w");
    accessors!(read16, write16, u16, "ldrh", "strh", "w");
    accessors!(read32, write32, u32, "ldr", "str", "w");
    accessors!(read64, write64, u64, "ldr", "str", "x");
}

/// A DMA mapping in a container; `VFIO_IOMMU_UNMAP_DMA` on drop.
#[derive(Debug)]
pub struct DmaMapping {
    container: Arc<OwnedFd>,
    path: PathBuf,
    iova: u64,
    len: usize,
    unmapped: bool,
}

impl DmaMapping {
    /// The device address of the mapping's first byte.
    pub fn iova(&self) -> u64 {
        self.iova
    }

    /// Its length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty (never).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn do_unmap(&mut self) -> Result<(), VfioError> {
        if self.unmapped {
            return Ok(());
        }
        self.unmapped = true;
        let unmap = sys::vfio_iommu_type1_dma_unmap {
            argsz: std::mem::size_of::<sys::vfio_iommu_type1_dma_unmap>() as u32,
            flags: 0,
            iova: self.iova,
            size: self.len as u64,
            data: Default::default(),
        };
        // SAFETY: the container fd is kept open by our Arc; VFIO_IOMMU_UNMAP_DMA reads (and
        // writes back `size` into) a `vfio_iommu_type1_dma_unmap` of `argsz` bytes on our
        // stack.
        let r = unsafe { libc::ioctl(self.container.as_raw_fd(), ioctl::IOMMU_UNMAP_DMA as _, &unmap) };
        if r < 0 {
            return Err(ioctl_err("VFIO_IOMMU_UNMAP_DMA", &self.path));
        }
        Ok(())
    }

    /// Unmaps now, reporting an error that a drop would swallow.
    ///
    /// # Errors
    /// [`VfioError::Ioctl`].
    pub fn unmap(mut self) -> Result<(), VfioError> {
        self.do_unmap()
    }
}

impl Drop for DmaMapping {
    fn drop(&mut self) {
        let _ = self.do_unmap();
    }
}

/// A PCI device opened through VFIO, with its group and container.
#[derive(Debug)]
pub struct VfioPciDevice {
    /// The container (map DMA here).
    pub container: Container,
    /// The device's IOMMU group.
    pub group: Group,
    /// The device.
    pub device: Device,
}

/// Opens `addr` through VFIO: container under `root`, the device's IOMMU group (from sysfs),
/// the device.
///
/// # Errors
/// [`VfioError::NotAvailable`] first when `<root>/dev/vfio/vfio` is missing, then as
/// [`Container::open_in`], [`Container::open_group`], [`Group::open_device`], and
/// [`VfioError::Sysfs`] when the device or its group is not found in sysfs.
pub fn open_device(root: &SysRoot, addr: PciAddr) -> Result<VfioPciDevice, VfioError> {
    let mut container = Container::open_in(root)?;
    let group_id = sysfs::device_iommu_group(root, addr)?;
    let group = container.open_group(root, group_id)?;
    let device = group.open_device(addr)?;
    Ok(VfioPciDevice { container, group, device })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_the_kernel() {
        // From include/uapi/linux/vfio.h: _IO(';', 100 + n) = 0x3b64 + n.
        assert_eq!(ioctl::GET_API_VERSION, 0x3b64);
        assert_eq!(ioctl::CHECK_EXTENSION, 0x3b65);
        assert_eq!(ioctl::SET_IOMMU, 0x3b66);
        assert_eq!(ioctl::GROUP_GET_STATUS, 0x3b67);
        assert_eq!(ioctl::GROUP_SET_CONTAINER, 0x3b68);
        assert_eq!(ioctl::GROUP_GET_DEVICE_FD, 0x3b6a);
        assert_eq!(ioctl::DEVICE_GET_INFO, 0x3b6b);
        assert_eq!(ioctl::DEVICE_GET_REGION_INFO, 0x3b6c);
        assert_eq!(ioctl::DEVICE_RESET, 0x3b6f);
        assert_eq!(ioctl::IOMMU_MAP_DMA, 0x3b71);
        assert_eq!(ioctl::IOMMU_UNMAP_DMA, 0x3b72);
    }

    #[test]
    fn iommu_info_parses_iova_ranges() {
        // Header (24 bytes), then a foreign capability (id 99) and the IOVA range one.
        let mut b = vec![0u8; 24 + 8 + 16 + 2 * 16];
        b[4..8].copy_from_slice(&(sys::VFIO_IOMMU_INFO_PGSIZES | sys::VFIO_IOMMU_INFO_CAPS).to_le_bytes());
        b[8..16].copy_from_slice(&0x4020_1000u64.to_le_bytes());
        b[16..20].copy_from_slice(&24u32.to_le_bytes());
        b[24..26].copy_from_slice(&99u16.to_le_bytes());
        b[28..32].copy_from_slice(&32u32.to_le_bytes());
        b[32..34].copy_from_slice(&(sys::VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE as u16).to_le_bytes());
        b[40..44].copy_from_slice(&2u32.to_le_bytes());
        for (i, (s, e)) in [(0xfef0_0000u64, 0xffff_ffff_ffffu64), (0, 0xfedf_ffff)].iter().enumerate() {
            b[48 + 16 * i..56 + 16 * i].copy_from_slice(&s.to_le_bytes());
            b[56 + 16 * i..64 + 16 * i].copy_from_slice(&e.to_le_bytes());
        }
        let info = parse_iommu_info(&b);
        assert_eq!(info.min_page(), 0x1000);
        assert_eq!(info.iova_ranges, Some(vec![(0, 0xfedf_ffff), (0xfef0_0000, 0xffff_ffff_ffff)]));
        // No capabilities flag: no ranges; a chain pointing at itself ends.
        b[4..8].copy_from_slice(&sys::VFIO_IOMMU_INFO_PGSIZES.to_le_bytes());
        assert_eq!(parse_iommu_info(&b).iova_ranges, None);
        b[4..8].copy_from_slice(&sys::VFIO_IOMMU_INFO_CAPS.to_le_bytes());
        b[28..32].copy_from_slice(&24u32.to_le_bytes());
        let info = parse_iommu_info(&b);
        assert_eq!((info.page_sizes, info.min_page(), info.iova_ranges), (0, 4096, None));
        // Truncated bytes never panic.
        for n in 0..b.len() {
            let _ = parse_iommu_info(&b[..n]);
        }
    }

    #[test]
    fn mmio_accessors_are_single_accesses_of_their_width() {
        let mut m = [0u64; 2];
        let p = m.as_mut_ptr() as *mut u8;
        // SAFETY: every access below is inside `m` and aligned for its width.
        unsafe {
            mmio::write64(p as *mut u64, 0x1122_3344_5566_7788);
            assert_eq!(mmio::read8(p), 0x88);
            assert_eq!(mmio::read16(p.add(2) as *const u16), 0x5566);
            assert_eq!(mmio::read32(p.add(4) as *const u32), 0x1122_3344);
            mmio::write8(p.add(8), 0xaa);
            mmio::write16(p.add(10) as *mut u16, 0xbbcc);
            mmio::write32(p.add(12) as *mut u32, 0xdead_beef);
            assert_eq!(mmio::read64(p.add(8) as *const u64), 0xdead_beef_bbcc_00aa);
        }
    }

    #[test]
    fn dma_range_checks() {
        assert!(check_dma_range(0x10000, 0x2000, 0x0, 4096).is_ok());
        for (v, l, i) in [
            (0x10000, 0, 0),
            (0x10001, 0x1000, 0),
            (0x10000, 0x1001, 0),
            (0x10000, 0x1000, 0x800),
            (usize::MAX & !0xfff, 0x2000, 0),
            (0x1000, 0x2000, !0xfff_u64),
        ] {
            let e = check_dma_range(v, l, i, 4096);
            assert!(matches!(e, Err(VfioError::BadDmaRange { .. })), "{v:#x} {l:#x} {i:#x}");
        }
    }

    fn empty_root() -> (tempfile::TempDir, SysRoot) {
        let dir = tempfile::tempdir().unwrap();
        let root = SysRoot::new(dir.path());
        (dir, root)
    }

    #[test]
    fn container_absent_is_a_clear_error() {
        let (_d, root) = empty_root();
        let e = Container::open_in(&root).unwrap_err();
        assert!(matches!(e, VfioError::NotAvailable { .. }));
        let msg = e.to_string();
        assert!(msg.contains("dev/vfio/vfio not found"), "{msg}");
        assert!(msg.contains("modprobe vfio-pci"), "{msg}");
        assert!(msg.contains("intel_iommu=on"), "{msg}");
        assert!(msg.contains("iommu.passthrough=0"), "{msg}");
        assert!(msg.contains("no-IOMMU"), "{msg}");
    }

    #[test]
    fn open_device_without_vfio_fails_before_touching_sysfs() {
        // No sysfs at all: the missing /dev/vfio/vfio is what is reported.
        let (_d, root) = empty_root();
        let e = open_device(&root, PciAddr::new(0, 0x18, 1, 1)).unwrap_err();
        assert!(matches!(e, VfioError::NotAvailable { .. }), "{e}");
    }

    #[test]
    fn host_without_dev_vfio_reports_not_available() {
        let host = Path::new("/dev/vfio/vfio");
        if host.exists() {
            // A VFIO machine: the open must then get past the existence check.
            if let Err(e) = Container::open() {
                assert!(!matches!(e, VfioError::NotAvailable { .. }), "{e}");
            }
            return;
        }
        let e = Container::open().unwrap_err();
        assert!(matches!(e, VfioError::NotAvailable { ref path } if path == host), "{e}");
        assert!(e.to_string().starts_with("/dev/vfio/vfio not found: load the vfio-pci module"));
    }

    #[test]
    fn a_non_vfio_node_fails_at_the_first_ioctl() {
        // A regular file where the container should be: open works, the real ioctl path
        // runs and the kernel answers ENOTTY.
        let (d, root) = empty_root();
        std::fs::create_dir_all(d.path().join("dev/vfio")).unwrap();
        std::fs::write(d.path().join("dev/vfio/vfio"), b"").unwrap();
        let e = Container::open_in(&root).unwrap_err();
        match e {
            VfioError::Ioctl { op, source, .. } => {
                assert_eq!(op, "VFIO_GET_API_VERSION");
                // ENOTTY from a kernel; qemu-user (aarch64 tests on x86) answers ENOSYS for
                // ioctls it does not translate.
                let errno = source.raw_os_error();
                assert!(errno == Some(libc::ENOTTY) || errno == Some(libc::ENOSYS), "{source}");
            }
            other => panic!("unexpected {other}"),
        }
    }
}
