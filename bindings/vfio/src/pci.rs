//! PCI configuration space: the standard header's registers and the capability list.
//!
//! Pure functions over config-space bytes, so that a driver can walk the list the same way
//! on a real device ([`crate::device::Device::capabilities`]) and on a simulated one (the
//! bytes of a fake config space).
//!
//! The layout is the PCI Local Bus specification's type-0 header: vendor and device id at
//! 0x00/0x02, command at 0x04, status at 0x06, BARs from 0x10, subsystem ids at 0x2c/0x2e and
//! the capabilities pointer at 0x34. Capabilities live between 0x40 and 0xff, each starting
//! with `(id: u8, next: u8)`, dword-aligned.

use std::fmt;

/// Vendor id (u16).
pub const VENDOR_ID: u16 = 0x00;
/// Device id (u16).
pub const DEVICE_ID: u16 = 0x02;
/// Command register (u16).
pub const COMMAND: u16 = 0x04;
/// Status register (u16).
pub const STATUS: u16 = 0x06;
/// Revision id (u8).
pub const REVISION_ID: u16 = 0x08;
/// First BAR (u32); BAR n is at `BAR0 + 4 n`.
pub const BAR0: u16 = 0x10;
/// Subsystem vendor id (u16).
pub const SUBSYSTEM_VENDOR_ID: u16 = 0x2c;
/// Subsystem id (u16).
pub const SUBSYSTEM_ID: u16 = 0x2e;
/// Capabilities pointer (u8).
pub const CAPABILITIES_POINTER: u16 = 0x34;
/// Size of the standard (non-extended) config space.
pub const CONFIG_SPACE_SIZE: usize = 256;

/// Command: respond to I/O space accesses.
pub const COMMAND_IO: u16 = 1 << 0;
/// Command: respond to memory space accesses (needed for the BARs to decode).
pub const COMMAND_MEMORY: u16 = 1 << 1;
/// Command: the device may master the bus, i.e. do DMA.
pub const COMMAND_BUS_MASTER: u16 = 1 << 2;
/// Command: legacy INTx interrupts disabled.
pub const COMMAND_INTX_DISABLE: u16 = 1 << 10;

/// Status: the capabilities pointer is valid.
pub const STATUS_CAP_LIST: u16 = 1 << 4;

/// Capability id: power management.
pub const CAP_ID_PM: u8 = 0x01;
/// Capability id: MSI.
pub const CAP_ID_MSI: u8 = 0x05;
/// Capability id: vendor specific (virtio uses these).
pub const CAP_ID_VENDOR: u8 = 0x09;
/// Capability id: PCI Express.
pub const CAP_ID_EXP: u8 = 0x10;
/// Capability id: MSI-X.
pub const CAP_ID_MSIX: u8 = 0x11;

/// Lowest offset a capability may sit at (just past the standard header).
const CAP_MIN: u8 = 0x40;
/// At most (256 - 64) / 4 capabilities fit; a longer walk is a loop.
const CAP_MAX: usize = 48;

/// One entry of the capability list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capability {
    /// The capability id (`CAP_ID_*`).
    pub id: u8,
    /// Its offset in config space.
    pub offset: u8,
}

/// A capability list that cannot be walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CapListError {
    /// A pointer leads outside 0x40..=0xfc or past the bytes given.
    #[error("capability pointer {ptr:#04x} (after {after} entries) is outside 0x40..0x100")]
    BadPointer {
        /// The pointer.
        ptr: u8,
        /// Entries walked before it.
        after: usize,
    },
    /// The list does not end: it loops.
    #[error("capability list does not end after {CAP_MAX} entries: it loops")]
    Loop,
}

/// Walks the capability list in `cfg` (config space from offset 0, at least the 64-byte
/// header; 256 bytes to reach every capability). An empty list when the status register
/// says there is none.
///
/// # Errors
/// [`CapListError`] for a pointer out of range or a list that loops; a device with a broken
/// list is not one to drive.
///
/// # Examples
/// ```
/// use vfio::pci::{capabilities, Capability, CAP_ID_VENDOR, CAP_ID_MSIX, STATUS_CAP_LIST};
/// let mut cfg = [0u8; 256];
/// cfg[0x06] = STATUS_CAP_LIST as u8;
/// cfg[0x34] = 0x40;
/// cfg[0x40..0x42].copy_from_slice(&[CAP_ID_MSIX, 0x50]);
/// cfg[0x50..0x52].copy_from_slice(&[CAP_ID_VENDOR, 0x00]);
/// assert_eq!(
///     capabilities(&cfg).unwrap(),
///     [Capability { id: CAP_ID_MSIX, offset: 0x40 }, Capability { id: CAP_ID_VENDOR, offset: 0x50 }]
/// );
/// ```
pub fn capabilities(cfg: &[u8]) -> Result<Vec<Capability>, CapListError> {
    let mut out = Vec::new();
    let status = read_u16(cfg, STATUS).unwrap_or(0);
    if status & STATUS_CAP_LIST == 0 {
        return Ok(out);
    }
    // The two low bits of every pointer are reserved and must be masked off.
    let mut ptr = cfg.get(CAPABILITIES_POINTER as usize).copied().unwrap_or(0) & 0xfc;
    while ptr != 0 {
        if out.len() >= CAP_MAX {
            return Err(CapListError::Loop);
        }
        let at = ptr as usize;
        if ptr < CAP_MIN || at + 2 > cfg.len() {
            return Err(CapListError::BadPointer { ptr, after: out.len() });
        }
        out.push(Capability { id: cfg[at], offset: ptr });
        ptr = cfg[at + 1] & 0xfc;
    }
    Ok(out)
}

/// Little-endian u16 at `off` of `cfg`, `None` past the end.
pub fn read_u16(cfg: &[u8], off: u16) -> Option<u16> {
    let o = off as usize;
    Some(u16::from_le_bytes(cfg.get(o..o + 2)?.try_into().ok()?))
}

/// Little-endian u32 at `off` of `cfg`, `None` past the end.
pub fn read_u32(cfg: &[u8], off: u16) -> Option<u32> {
    let o = off as usize;
    Some(u32::from_le_bytes(cfg.get(o..o + 4)?.try_into().ok()?))
}

/// Vendor and device id, as `1af4:1041`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PciId {
    /// Vendor id.
    pub vendor: u16,
    /// Device id.
    pub device: u16,
}

impl PciId {
    /// The ids in the first bytes of `cfg`; `None` when fewer than 4 bytes are given.
    pub fn from_config(cfg: &[u8]) -> Option<PciId> {
        Some(PciId { vendor: read_u16(cfg, VENDOR_ID)?, device: read_u16(cfg, DEVICE_ID)? })
    }
}

impl fmt::Display for PciId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:04x}", self.vendor, self.device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg_with(list: &[(u8, u8, u8)]) -> [u8; 256] {
        let mut c = [0u8; 256];
        c[STATUS as usize] = STATUS_CAP_LIST as u8;
        c[CAPABILITIES_POINTER as usize] = list.first().map_or(0, |e| e.0);
        for &(at, id, next) in list {
            c[at as usize] = id;
            c[at as usize + 1] = next;
        }
        c
    }

    #[test]
    fn walks_and_masks_reserved_bits() {
        let mut c = cfg_with(&[(0x40, CAP_ID_PM, 0x4b), (0x48, CAP_ID_VENDOR, 0x00)]);
        c[CAPABILITIES_POINTER as usize] = 0x43;
        let caps = capabilities(&c).unwrap();
        assert_eq!(caps, [Capability { id: CAP_ID_PM, offset: 0x40 }, Capability { id: CAP_ID_VENDOR, offset: 0x48 }]);
    }

    #[test]
    fn no_list_flag_means_no_capabilities() {
        let mut c = cfg_with(&[(0x40, CAP_ID_PM, 0)]);
        c[STATUS as usize] = 0;
        assert!(capabilities(&c).unwrap().is_empty());
        assert!(capabilities(&[]).unwrap().is_empty());
    }

    #[test]
    fn loops_and_bad_pointers_are_errors() {
        let c = cfg_with(&[(0x40, CAP_ID_PM, 0x50), (0x50, CAP_ID_VENDOR, 0x40)]);
        assert_eq!(capabilities(&c), Err(CapListError::Loop));
        let c = cfg_with(&[(0x40, CAP_ID_PM, 0x20)]);
        assert_eq!(capabilities(&c), Err(CapListError::BadPointer { ptr: 0x20, after: 1 }));
        // A list cut short by the bytes given.
        let c = cfg_with(&[(0x40, CAP_ID_PM, 0xf0)]);
        assert_eq!(capabilities(&c[..0x80]), Err(CapListError::BadPointer { ptr: 0xf0, after: 1 }));
    }

    #[test]
    fn ids() {
        let mut c = [0u8; 64];
        c[..4].copy_from_slice(&[0xf4, 0x1a, 0x41, 0x10]);
        assert_eq!(PciId::from_config(&c).unwrap().to_string(), "1af4:1041");
        assert_eq!(PciId::from_config(&c[..3]), None);
    }

    proptest::proptest! {
        /// Any bytes at all: the walk ends, with a list or an error, and never panics.
        #[test]
        fn any_config_space_walk_terminates(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            if let Ok(caps) = capabilities(&bytes) {
                proptest::prop_assert!(caps.len() <= CAP_MAX);
                for c in caps {
                    proptest::prop_assert!(c.offset >= CAP_MIN && c.offset % 4 == 0);
                }
            }
        }
    }
}
