//! Native poll-mode drivers for PCI network devices on vfio-pci: no DPDK, no kernel driver.
//!
//! # Layers
//! - [`DeviceAccess`]: everything a driver does to its device — config space, BAR
//!   registers, DMA memory — behind one small trait. [`vfio::VfioDevice`] implements it for
//!   a real device (one VFIO container per process, shared by every device); the unit
//!   tests implement it with a simulated device model (a `Vec`-backed config space and BAR
//!   behind a register model, and an IOMMU model over process memory), so the ring logic
//!   runs in plain `cargo test` on any machine.
//! - [`dma`]: DMA areas of our own (descriptor rings) and the mempool's region mapped once
//!   per container (IOVA = region offset + IOVA base), so descriptors point straight into
//!   pool chunks: no copy on receive or transmit.
//! - [`barrier`]: `dma_wmb`/`dma_rmb`/`dma_mb`/`io_wmb`, with the ordering argument for
//!   x86_64 and aarch64.
//! - `hold.rs`: the device state a port shares with its queues (`DeviceHold`), which
//!   quiesces the device before the buffers lent to it are freed (see *Lifetime* below);
//!   per-descriptor mbuf slots; the receive-refill allocation.
//! - One folder per device family, holding only its registers, descriptor formats and
//!   bring-up: [`virtio`] (virtio-net, modern virtio 1.x) and [`igb`] (Intel 82576/I350: the
//!   PF for whole-device passthrough and the SR-IOV VF). Each reuses everything above: it
//!   implements `Quiesce` (its reset), keeps its register layout in a `DeviceHold`, and has a
//!   [`PciPort`] variant and an id match in [`open_device`].
//!
//! # Opening a port
//! [`open`] takes a PCI address bound to vfio-pci, reads the vendor and device ids and picks
//! the driver ([`SUPPORTED`] lists them); [`open_device`] does the same over any
//! [`DeviceAccess`]. Both give a [`PciPort`], a [`Port`] with [`Mbuf`] buffers, so every
//! mode of the VNF runs on it unchanged.
//!
//! ```no_run
//! use dataplane::mbuf::{Mempool, MempoolConfig};
//! use dataplane::port::pci::{self, PciPortConfig};
//! use dataplane::port::Port;
//! let pool = Mempool::new(MempoolConfig::new("pool", 8192))?;
//! let mut port = pci::open(0, "0000:03:00.0".parse()?, &PciPortConfig { queues: 2, ..Default::default() }, &pool)?;
//! println!("{} {} {:?}", port.info().driver, port.mac(), port.link());
//! let rx = port.rx_queue(0)?;
//! let tx = port.tx_queue(0)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Lifetime and teardown
//! A port's queues are handed to workers and may outlive the port, or the other way round.
//! Buffers lent to the device (posted receive buffers, transmits not yet completed) must
//! not return to the pool while the device may still DMA into them, so a queue that drops
//! *parks* its ring with the device state shared by the port and its queues. When the last
//! of them drops, the device is reset (and bus mastering turned off), and only then are the
//! parked rings freed: every mbuf returns to the pool and every descriptor ring is unmapped.
//! The device stays bound to vfio-pci, reset, so the kernel driver can take it back.
//!
//! [`Port`]: super::Port
//! [`Mbuf`]: crate::mbuf::Mbuf

pub mod barrier;
pub mod dma;
pub(crate) mod hold;
pub mod igb;
#[cfg(test)]
pub(crate) mod sim;
pub mod vfio;
pub mod virtio;

use super::{BoxRx, BoxTx, LinkStatus, MacAddr, Port, PortError, PortInfo, PortStats};
use crate::mbuf::{Mbuf, Mempool};
use ::vfio::pci::{self as cfg, Capability, PciId};
use dma::{DmaArea, PoolDma};
use std::sync::Arc;

pub use self::vfio::VfioDevice;
/// A PCI address (`DDDD:BB:DD.F`), as [`open`] takes it.
pub use ::vfio::PciAddr;

/// The devices the native drivers handle, for error messages and documentation.
pub const SUPPORTED: &str = "virtio-net 1af4:1041 (modern), and 1af4:1000 (transitional) when it has the modern \
                             interface; Intel igb PF 8086:10c9 (82576) and 8086:1521 (I350); Intel igbvf 8086:10ca \
                             (82576 VF) and 8086:1520 (I350 VF)";

/// Why a PCI device could not be opened or driven (control plane).
#[derive(Debug, thiserror::Error)]
pub enum PciError {
    /// A VFIO step failed (VFIO missing, group not viable, ioctl errors).
    #[error(transparent)]
    Vfio(#[from] ::vfio::device::VfioError),
    /// The device's IOMMU group is a no-IOMMU group: there is no IOVA to give the device.
    #[error(
        "IOMMU group {group} is in no-IOMMU mode: the native drivers program IOVAs and need an IOMMU (enable \
         intel_iommu=on / amd_iommu=on, or the SMMU on arm64; in a VM, a virtual IOMMU)"
    )]
    NoIommu {
        /// The group.
        group: u32,
    },
    /// Memory for DMA could not be allocated.
    #[error("cannot allocate {len} bytes for DMA: {source}")]
    Memory {
        /// Bytes asked for.
        len: usize,
        /// The OS error.
        source: std::io::Error,
    },
    /// The IOMMU refused to map (and pin) memory: usually the locked-memory limit.
    #[error(
        "mapping {len} bytes for DMA failed: {source}; VFIO pins DMA memory against RLIMIT_MEMLOCK: grant \
         CAP_IPC_LOCK, or raise the limit (ulimit -l, LimitMEMLOCK=, a container's memlock ulimit) to cover \
         the mempool"
    )]
    DmaLimit {
        /// Bytes asked for.
        len: usize,
        /// The VFIO error.
        source: ::vfio::device::VfioError,
    },
    /// No IOVA range left for a mapping.
    #[error("no IOVA range of {len} bytes left in the IOMMU's address space")]
    IovaExhausted {
        /// Bytes asked for.
        len: u64,
    },
    /// No native driver for this device. (The messages of this and the variants below leave
    /// the device out: [`PortError::Pci`] names it.)
    #[error("no native driver for PCI device {id} (supported: {SUPPORTED})")]
    Unsupported {
        /// The device.
        device: String,
        /// Its vendor and device id.
        id: PciId,
    },
    /// The device does not behave as its driver needs.
    #[error("{msg}")]
    Device {
        /// The device.
        device: String,
        /// What went wrong.
        msg: String,
    },
    /// The device did not finish something in time.
    #[error("timed out waiting for {what}")]
    Timeout {
        /// The device.
        device: String,
        /// What was awaited.
        what: &'static str,
    },
}

impl PciError {
    /// This error as a [`PortError`] of port `port`.
    pub fn into_port(self, port: &str) -> PortError {
        PortError::Pci { port: port.to_string(), source: Box::new(self) }
    }
}

/// Access to one PCI device: config space, BAR registers, DMA memory. Implemented for a
/// real device by [`VfioDevice`] and by the simulated devices of the unit tests.
///
/// Register accessors take a BAR number (0–5) and a byte offset, naturally aligned. On a
/// BAR that was not mapped, or out of its range, reads return all ones (what PCI returns
/// for a missing device) and writes do nothing: a driver validates its offsets against
/// [`DeviceAccess::map_bar`]'s length when it sets up.
pub trait DeviceAccess: Send + Sync + std::fmt::Debug + 'static {
    /// The device's name for messages (its PCI address).
    fn name(&self) -> &str;
    /// Reads config space at `offset`.
    ///
    /// # Errors
    /// Past the end of config space, or the access failed.
    fn config_read(&self, offset: u16, buf: &mut [u8]) -> Result<(), PciError>;
    /// Writes config space at `offset`.
    ///
    /// # Errors
    /// Past the end of config space, or the access failed.
    fn config_write(&self, offset: u16, buf: &[u8]) -> Result<(), PciError>;
    /// Makes BAR `bar` accessible (maps it); returns its length. Mapping a BAR twice is
    /// harmless.
    ///
    /// # Errors
    /// The BAR does not exist or cannot be mapped (an I/O-port BAR, for instance).
    fn map_bar(&mut self, bar: u8) -> Result<u64, PciError>;
    /// Reads an 8-bit register.
    fn read8(&self, bar: u8, off: u32) -> u8;
    /// Reads a 16-bit register.
    fn read16(&self, bar: u8, off: u32) -> u16;
    /// Reads a 32-bit register.
    fn read32(&self, bar: u8, off: u32) -> u32;
    /// Writes an 8-bit register.
    fn write8(&self, bar: u8, off: u32, v: u8);
    /// Writes a 16-bit register.
    fn write16(&self, bar: u8, off: u32, v: u16);
    /// Writes a 32-bit register.
    fn write32(&self, bar: u8, off: u32, v: u32);
    /// Allocates zeroed memory of at least `len` bytes that the device can reach, mapped at
    /// a fresh IOVA (descriptor rings).
    ///
    /// # Errors
    /// [`PciError::Memory`], [`PciError::DmaLimit`], [`PciError::IovaExhausted`],
    /// [`PciError::Vfio`].
    fn alloc_dma(&self, len: usize) -> Result<DmaArea, PciError>;
    /// Maps `pool`'s region for the device, once per IOMMU address space: a second call
    /// for the same pool (from any device of the process) returns the same mapping.
    ///
    /// # Errors
    /// As [`DeviceAccess::alloc_dma`].
    fn map_pool(&self, pool: &Mempool) -> Result<Arc<PoolDma>, PciError>;

    /// Reads the config byte at `offset`.
    ///
    /// # Errors
    /// As [`DeviceAccess::config_read`].
    fn config_u8(&self, offset: u16) -> Result<u8, PciError> {
        let mut b = [0u8; 1];
        self.config_read(offset, &mut b)?;
        Ok(b[0])
    }

    /// Reads the little-endian config word at `offset`.
    ///
    /// # Errors
    /// As [`DeviceAccess::config_read`].
    fn config_u16(&self, offset: u16) -> Result<u16, PciError> {
        let mut b = [0u8; 2];
        self.config_read(offset, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    /// Reads the little-endian config dword at `offset`.
    ///
    /// # Errors
    /// As [`DeviceAccess::config_read`].
    fn config_u32(&self, offset: u16) -> Result<u32, PciError> {
        let mut b = [0u8; 4];
        self.config_read(offset, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// The standard config space (256 bytes).
    ///
    /// # Errors
    /// As [`DeviceAccess::config_read`].
    fn config_header(&self) -> Result<[u8; cfg::CONFIG_SPACE_SIZE], PciError> {
        let mut b = [0u8; cfg::CONFIG_SPACE_SIZE];
        self.config_read(0, &mut b)?;
        Ok(b)
    }

    /// The capability list.
    ///
    /// # Errors
    /// As [`DeviceAccess::config_read`]; [`PciError::Device`] for a malformed list.
    fn capabilities(&self) -> Result<Vec<Capability>, PciError> {
        cfg::capabilities(&self.config_header()?)
            .map_err(|e| PciError::Device { device: self.name().to_string(), msg: format!("config space: {e}") })
    }

    /// Turns bus mastering (DMA) and memory decoding on, with legacy INTx interrupts off
    /// (the drivers poll; an INTx nobody handles can get a shared interrupt line disabled
    /// by the kernel), or bus mastering off.
    ///
    /// # Errors
    /// As [`DeviceAccess::config_read`] and [`DeviceAccess::config_write`].
    fn set_bus_master(&self, on: bool) -> Result<(), PciError> {
        let old = self.config_u16(cfg::COMMAND)?;
        let new = if on {
            old | cfg::COMMAND_BUS_MASTER | cfg::COMMAND_MEMORY | cfg::COMMAND_INTX_DISABLE
        } else {
            old & !cfg::COMMAND_BUS_MASTER
        };
        if new != old {
            self.config_write(cfg::COMMAND, &new.to_le_bytes())?;
        }
        Ok(())
    }
}

/// Configuration of a native PCI port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PciPortConfig {
    /// Queue pairs (receive and transmit queues, equal in number).
    pub queues: u16,
    /// Receive ring entries (a power of two; lowered to what the device offers).
    pub rx_ring: u16,
    /// Transmit ring entries (a power of two; lowered to what the device offers).
    pub tx_ring: u16,
}

impl Default for PciPortConfig {
    /// One queue pair, rings of 1024: DPDK's l2fwd and our DPDK ports use as many, so the
    /// native drivers and DPDK's PMDs hold the same backlog on the same device (a ring
    /// size is not a driver cost to compare). Drivers lower it to the device's limit
    /// (QEMU's virtio-net offers 256 by default).
    fn default() -> Self {
        PciPortConfig { queues: 1, rx_ring: 1024, tx_ring: 1024 }
    }
}

/// A native PCI port, whichever driver runs it.
#[derive(Debug)]
pub enum PciPort<D: DeviceAccess = VfioDevice> {
    /// virtio-net (modern).
    VirtioNet(virtio::VirtioNetPort<D>),
    /// Intel 82576/I350, PF or VF.
    Igb(igb::IgbPort<D>),
}

/// A locally administered MAC derived from the device name, for a device that has none of
/// its own (virtio-net without `VIRTIO_NET_F_MAC`, a VF its PF assigned no address).
pub(crate) fn fallback_mac(name: &str) -> MacAddr {
    // FNV-1a over the name.
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    let b = h.to_le_bytes();
    MacAddr([0x02, b[0], b[1], b[2], b[3], b[4]])
}

/// Which native driver handles a device, from the start of its config space (at least the
/// 64-byte header, as `/sys/bus/pci/devices/*/config` gives it): `"virtio-net"`, `"igb"`,
/// `"igbvf"`, or `None` for a device no native driver supports (see [`SUPPORTED`]).
pub fn driver_for(hdr: &[u8]) -> Option<&'static str> {
    if virtio::is_virtio_net(hdr) {
        return Some("virtio-net");
    }
    igb::kind_of(hdr).map(|k| if k == igb::Kind::Pf { "igb" } else { "igbvf" })
}

/// Opens the device at `addr` (bound to vfio-pci) as port `id`, with the driver its vendor
/// and device id call for, its buffers from `pool`.
///
/// # Errors
/// [`PortError::Pci`]: VFIO errors (not bound to vfio-pci, group not viable, no IOMMU), an
/// unsupported device ([`PciError::Unsupported`] names what is supported), or the driver's
/// own errors (see [`virtio::VirtioNetPort::open_device`], [`igb::IgbPort::open_device`]).
pub fn open(id: u16, addr: PciAddr, cfg: &PciPortConfig, pool: &Mempool) -> Result<PciPort, PortError> {
    let name = addr.to_string();
    let dev = VfioDevice::open(addr).map_err(|e| e.into_port(&name))?;
    open_device(id, dev, cfg, pool)
}

/// As [`open`], over any [`DeviceAccess`].
///
/// # Errors
/// As [`open`].
pub fn open_device<D: DeviceAccess>(
    id: u16,
    dev: D,
    cfg: &PciPortConfig,
    pool: &Mempool,
) -> Result<PciPort<D>, PortError> {
    let name = dev.name().to_string();
    let hdr = dev.config_header().map_err(|e| e.into_port(&name))?;
    match driver_for(&hdr) {
        Some("virtio-net") => Ok(PciPort::VirtioNet(virtio::VirtioNetPort::open_device(id, dev, cfg, pool)?)),
        Some("igb" | "igbvf") => Ok(PciPort::Igb(igb::IgbPort::open_device(id, dev, cfg, pool)?)),
        _ => {
            let id = PciId::from_config(&hdr).unwrap_or(PciId { vendor: 0xffff, device: 0xffff });
            Err(PciError::Unsupported { device: name.clone(), id }.into_port(&name))
        }
    }
}

impl<D: DeviceAccess> Port for PciPort<D> {
    type Buf = Mbuf;

    fn info(&self) -> PortInfo {
        match self {
            PciPort::VirtioNet(p) => p.info(),
            PciPort::Igb(p) => p.info(),
        }
    }

    fn mac(&self) -> MacAddr {
        match self {
            PciPort::VirtioNet(p) => p.mac(),
            PciPort::Igb(p) => p.mac(),
        }
    }

    fn link(&self) -> LinkStatus {
        match self {
            PciPort::VirtioNet(p) => p.link(),
            PciPort::Igb(p) => p.link(),
        }
    }

    fn stats(&self) -> PortStats {
        match self {
            PciPort::VirtioNet(p) => p.stats(),
            PciPort::Igb(p) => p.stats(),
        }
    }

    fn set_promiscuous(&mut self, on: bool) -> Result<(), PortError> {
        match self {
            PciPort::VirtioNet(p) => p.set_promiscuous(on),
            PciPort::Igb(p) => p.set_promiscuous(on),
        }
    }

    fn rx_queue(&mut self, q: u16) -> Result<BoxRx<Mbuf>, PortError> {
        match self {
            PciPort::VirtioNet(p) => p.rx_queue(q),
            PciPort::Igb(p) => p.rx_queue(q),
        }
    }

    fn tx_queue(&mut self, q: u16) -> Result<BoxTx<Mbuf>, PortError> {
        match self {
            PciPort::VirtioNet(p) => p.tx_queue(q),
            PciPort::Igb(p) => p.tx_queue(q),
        }
    }
}
