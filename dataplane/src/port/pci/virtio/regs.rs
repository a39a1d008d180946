//! virtio 1.x constants: PCI ids and capabilities, the common configuration layout, device
//! status, feature bits, the split virtqueue format and virtio-net's structures.
//!
//! Names follow the virtio specification (v1.2, sections 2, 4.1 and 5.1); all multi-byte
//! fields are little-endian.

/// Red Hat / virtio PCI vendor id.
pub const VENDOR: u16 = 0x1af4;
/// Modern (virtio 1.x only) virtio-net: 0x1040 + device type 1.
pub const DEVICE_NET_MODERN: u16 = 0x1041;
/// Transitional virtio-net (legacy and modern interfaces); its subsystem id is 1 (net).
pub const DEVICE_NET_TRANSITIONAL: u16 = 0x1000;
/// virtio device type of a network card (the subsystem id of a transitional device).
pub const TYPE_NET: u16 = 1;

/// `virtio_pci_cap.cfg_type`: common configuration.
pub const CAP_COMMON_CFG: u8 = 1;
/// `virtio_pci_cap.cfg_type`: notifications.
pub const CAP_NOTIFY_CFG: u8 = 2;
/// `virtio_pci_cap.cfg_type`: ISR status.
pub const CAP_ISR_CFG: u8 = 3;
/// `virtio_pci_cap.cfg_type`: device-specific configuration.
pub const CAP_DEVICE_CFG: u8 = 4;
/// `virtio_pci_cap.cfg_type`: PCI configuration access.
pub const CAP_PCI_CFG: u8 = 5;

/// `struct virtio_pci_cap` field offsets (from the capability's start).
pub mod cap {
    /// u8: length of this capability structure.
    pub const LEN: u16 = 2;
    /// u8: the structure's type (`CAP_*_CFG`).
    pub const CFG_TYPE: u16 = 3;
    /// u8: which BAR holds it.
    pub const BAR: u16 = 4;
    /// le32: offset within the BAR.
    pub const OFFSET: u16 = 8;
    /// le32: length of the structure.
    pub const LENGTH: u16 = 12;
    /// le32 (notify capability only): multiplier for `queue_notify_off`.
    pub const NOTIFY_OFF_MULTIPLIER: u16 = 16;
    /// Size of `struct virtio_pci_cap`.
    pub const SIZE: u8 = 16;
    /// Size of `struct virtio_pci_notify_cap`.
    pub const NOTIFY_SIZE: u8 = 20;
}

/// `struct virtio_pci_common_cfg` offsets.
pub mod common {
    /// le32: selects which 32 feature bits `DEVICE_FEATURE` shows.
    pub const DEVICE_FEATURE_SELECT: u32 = 0x00;
    /// le32 (RO): 32 bits of the device's features.
    pub const DEVICE_FEATURE: u32 = 0x04;
    /// le32: selects which 32 feature bits `DRIVER_FEATURE` sets.
    pub const DRIVER_FEATURE_SELECT: u32 = 0x08;
    /// le32: 32 bits of the driver's features.
    pub const DRIVER_FEATURE: u32 = 0x0c;
    /// le16: MSI-X vector for configuration changes.
    pub const MSIX_CONFIG: u32 = 0x10;
    /// le16 (RO): number of virtqueues.
    pub const NUM_QUEUES: u32 = 0x12;
    /// u8: device status.
    pub const DEVICE_STATUS: u32 = 0x14;
    /// u8 (RO): configuration atomicity value.
    pub const CONFIG_GENERATION: u32 = 0x15;
    /// le16: selects the virtqueue the `QUEUE_*` fields refer to.
    pub const QUEUE_SELECT: u32 = 0x16;
    /// le16: queue size (reads the maximum after a reset; 0: queue unavailable).
    pub const QUEUE_SIZE: u32 = 0x18;
    /// le16: MSI-X vector of the queue.
    pub const QUEUE_MSIX_VECTOR: u32 = 0x1a;
    /// le16: 1 enables the queue.
    pub const QUEUE_ENABLE: u32 = 0x1c;
    /// le16 (RO): the queue's notification offset, in units of the notify multiplier.
    pub const QUEUE_NOTIFY_OFF: u32 = 0x1e;
    /// le64: descriptor table IOVA.
    pub const QUEUE_DESC: u32 = 0x20;
    /// le64: driver (available) ring IOVA.
    pub const QUEUE_DRIVER: u32 = 0x28;
    /// le64: device (used) ring IOVA.
    pub const QUEUE_DEVICE: u32 = 0x30;
    /// Length of the structure up to and including `QUEUE_DEVICE` (virtio 1.0).
    pub const MIN_LEN: u32 = 0x38;
}

/// Device status bits.
pub mod status {
    /// The guest found the device.
    pub const ACKNOWLEDGE: u8 = 1;
    /// The guest knows how to drive it.
    pub const DRIVER: u8 = 2;
    /// The driver is ready.
    pub const DRIVER_OK: u8 = 4;
    /// Feature negotiation is complete.
    pub const FEATURES_OK: u8 = 8;
    /// The device hit an error and needs a reset.
    pub const DEVICE_NEEDS_RESET: u8 = 64;
    /// The driver gave up on the device.
    pub const FAILED: u8 = 128;
}

/// Feature bits (bit numbers).
pub mod feature {
    /// virtio-net: the device has a MAC address in its configuration.
    pub const NET_MAC: u32 = 5;
    /// virtio-net: the driver can merge receive buffers (a frame may span several).
    pub const NET_MRG_RXBUF: u32 = 15;
    /// virtio-net: the configuration has a link status field.
    pub const NET_STATUS: u32 = 16;
    /// virtio-net: a control virtqueue exists.
    pub const NET_CTRL_VQ: u32 = 17;
    /// virtio-net: receive-mode control (promiscuous, all-multicast).
    pub const NET_CTRL_RX: u32 = 18;
    /// virtio-net: several queue pairs, selected through the control queue.
    pub const NET_MQ: u32 = 22;
    /// virtio-net: speed and duplex in the configuration.
    pub const NET_SPEED_DUPLEX: u32 = 63;
    /// The device conforms to virtio 1.x (non-legacy).
    pub const VERSION_1: u32 = 32;
    /// The device accesses memory through the platform's IOMMU (IOVAs, not physical
    /// addresses): mandatory behind VFIO.
    pub const ACCESS_PLATFORM: u32 = 33;
    /// Memory accesses are ordered as the platform orders DMA (a hardware device): the
    /// driver must use DMA barriers. Ours always are.
    pub const ORDER_PLATFORM: u32 = 36;

    /// The mask of one feature bit.
    pub const fn bit(n: u32) -> u64 {
        1 << n
    }
}

/// Split virtqueue layout.
pub mod ring {
    /// Size of one descriptor: le64 addr, le32 len, le16 flags, le16 next.
    pub const DESC_SIZE: usize = 16;
    /// Descriptor flag: the chain continues in `next`.
    pub const DESC_F_NEXT: u16 = 1;
    /// Descriptor flag: the device writes this buffer (else it reads it).
    pub const DESC_F_WRITE: u16 = 2;
    /// Available ring flag: do not interrupt when buffers are used (we poll).
    pub const AVAIL_F_NO_INTERRUPT: u16 = 1;
    /// Used ring flag: do not notify when buffers are made available.
    pub const USED_F_NO_NOTIFY: u16 = 1;
    /// Largest split queue.
    pub const MAX_SIZE: u16 = 32768;
}

/// virtio-net device configuration offsets (`struct virtio_net_config`).
pub mod netcfg {
    /// 6 bytes: MAC address (with `NET_MAC`).
    pub const MAC: u32 = 0;
    /// le16: link status (with `NET_STATUS`).
    pub const STATUS: u32 = 6;
    /// le16: queue pairs the device has (with `NET_MQ`).
    pub const MAX_VIRTQUEUE_PAIRS: u32 = 8;
    /// le32: link speed in Mbit/s, 0xffffffff unknown (with `NET_SPEED_DUPLEX`).
    pub const SPEED: u32 = 12;
    /// u8: 1 full duplex, 0 half, 0xff unknown (with `NET_SPEED_DUPLEX`).
    pub const DUPLEX: u32 = 16;
    /// `STATUS` bit: the link is up.
    pub const S_LINK_UP: u16 = 1;
}

/// virtio-net packet header (`struct virtio_net_hdr` with `num_buffers`, the only layout
/// with `VERSION_1`): 12 bytes before every frame, in both directions.
pub mod hdr {
    /// Its size.
    pub const LEN: usize = 12;
    /// le16: how many buffers the frame spans (with `NET_MRG_RXBUF`).
    pub const NUM_BUFFERS: usize = 10;
}

/// virtio-net control queue commands.
pub mod ctrl {
    /// Class: receive mode.
    pub const CLASS_RX: u8 = 0;
    /// `CLASS_RX` command: promiscuous on (1) or off (0).
    pub const RX_PROMISC: u8 = 0;
    /// Class: multiqueue.
    pub const CLASS_MQ: u8 = 4;
    /// `CLASS_MQ` command: le16 number of queue pairs to use.
    pub const MQ_VQ_PAIRS_SET: u8 = 0;
    /// Ack: done.
    pub const OK: u8 = 0;
    /// Ack: refused.
    pub const ERR: u8 = 1;
}
