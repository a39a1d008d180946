//! Ethernet II frames (without the FCS) and MAC addresses.

use core::fmt;
use core::str::FromStr;

use super::{be16, need, open_enum, put16, Error};

open_enum! {
    /// EtherType (IEEE 802 numbers), the protocol of an Ethernet payload or a VLAN tag.
    pub enum EtherType(u16) {
        /// IPv4 (0x0800).
        Ipv4 = 0x0800,
        /// ARP (0x0806).
        Arp = 0x0806,
        /// 802.1Q customer VLAN tag (0x8100).
        Vlan = 0x8100,
        /// IPv6 (0x86dd).
        Ipv6 = 0x86dd,
        /// MPLS unicast (0x8847).
        Mpls = 0x8847,
        /// 802.1ad service VLAN tag, QinQ outer tag (0x88a8).
        QinQ = 0x88a8,
        /// LLDP (0x88cc).
        Lldp = 0x88cc,
        /// Pre-standard QinQ outer tag used by some vendors (0x9100).
        QinQ9100 = 0x9100,
    }
}

impl EtherType {
    /// True for the TPIDs that start a VLAN tag: 0x8100, 0x88a8 and 0x9100.
    #[inline]
    pub fn is_vlan_tpid(self) -> bool {
        matches!(self, EtherType::Vlan | EtherType::QinQ | EtherType::QinQ9100)
    }
}

/// A 48-bit Ethernet (MAC) address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct EthernetAddress(pub [u8; 6]);

/// Another name for [`EthernetAddress`].
pub type MacAddr = EthernetAddress;

impl EthernetAddress {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);

    /// The locally administered address `02:00:00:00:00:<n>`: what DPDK's l2fwd writes as the
    /// destination for tx port n, and the default MAC of the synthetic ports.
    pub const fn local(n: u8) -> Self {
        EthernetAddress([2, 0, 0, 0, 0, n])
    }

    /// The six bytes.
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// Builds an address from the first six bytes of `data`.
    ///
    /// # Panics
    /// When `data` is shorter than 6 bytes.
    pub fn from_bytes(data: &[u8]) -> Self {
        let mut a = [0u8; 6];
        a.copy_from_slice(&data[..6]);
        EthernetAddress(a)
    }

    /// The six bytes.
    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    /// True for ff:ff:ff:ff:ff:ff.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// True when the I/G bit is set (multicast and broadcast).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// True for an individual (unicast) address.
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// True when the U/L bit is set (locally administered).
    pub fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl From<[u8; 6]> for EthernetAddress {
    fn from(a: [u8; 6]) -> Self {
        EthernetAddress(a)
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

impl fmt::Debug for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The text is not a MAC address of the form `02:00:00:00:00:01` (six groups of two hex
/// digits separated by `:` or `-`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address (expected six hex pairs like 02:00:00:00:00:01)")]
pub struct AddrParseError;

impl FromStr for EthernetAddress {
    type Err = AddrParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        if b.len() != 17 {
            return Err(AddrParseError);
        }
        let sep = b[2];
        if sep != b':' && sep != b'-' {
            return Err(AddrParseError);
        }
        let hex = |c: u8| -> Result<u8, AddrParseError> {
            match c {
                b'0'..=b'9' => Ok(c - b'0'),
                b'a'..=b'f' => Ok(c - b'a' + 10),
                b'A'..=b'F' => Ok(c - b'A' + 10),
                _ => Err(AddrParseError),
            }
        };
        let mut out = [0u8; 6];
        for (i, o) in out.iter_mut().enumerate() {
            let at = i * 3;
            if i > 0 && b[at - 1] != sep {
                return Err(AddrParseError);
            }
            *o = hex(b[at])? << 4 | hex(b[at + 1])?;
        }
        Ok(EthernetAddress(out))
    }
}

mod field {
    use core::ops::{Range, RangeFrom};
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const PAYLOAD: RangeFrom<usize> = 14..;
}

/// A view of an Ethernet II frame: destination, source, EtherType, payload (no FCS).
///
/// A VLAN-tagged frame has a VLAN TPID as its EtherType and a
/// [`VlanHeader`](super::VlanHeader) at the start of its payload; see
/// [`walk_vlan_tags`](super::walk_vlan_tags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Length of the Ethernet II header.
    pub const HEADER_LEN: usize = 14;

    /// Wraps `buffer` without checks; getters panic if it is shorter than 14 bytes.
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wraps `buffer` after checking it holds a whole header.
    ///
    /// # Errors
    /// [`Error::Truncated`] when shorter than 14 bytes.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// Checks what [`new_checked`](Self::new_checked) checks.
    ///
    /// # Errors
    /// [`Error::Truncated`] when shorter than 14 bytes.
    pub fn check_len(&self) -> Result<(), Error> {
        need(self.buffer.as_ref().len(), Self::HEADER_LEN)
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::DST])
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::SRC])
    }

    /// EtherType (or a VLAN TPID).
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(be16(&self.buffer.as_ref()[field::ETHERTYPE]))
    }

    /// The bytes after the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&addr.0);
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&addr.0);
    }

    /// Sets the EtherType.
    #[inline]
    pub fn set_ethertype(&mut self, ethertype: EtherType) {
        put16(&mut self.buffer.as_mut()[field::ETHERTYPE], ethertype.into());
    }

    /// The bytes after the header, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

/// An Ethernet II header as values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EthernetRepr {
    /// Source address.
    pub src_addr: EthernetAddress,
    /// Destination address.
    pub dst_addr: EthernetAddress,
    /// EtherType.
    pub ethertype: EtherType,
}

impl EthernetRepr {
    /// Reads the header of a checked frame.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the frame is shorter than its header.
    pub fn parse<T: AsRef<[u8]>>(frame: &EthernetFrame<T>) -> Result<Self, Error> {
        frame.check_len()?;
        Ok(EthernetRepr { src_addr: frame.src_addr(), dst_addr: frame.dst_addr(), ethertype: frame.ethertype() })
    }

    /// Bytes [`emit`](Self::emit) writes: 14.
    pub const fn buffer_len(&self) -> usize {
        14
    }

    /// Writes the header (the payload is left alone).
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than 14 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut EthernetFrame<T>) -> Result<(), Error> {
        frame.check_len()?;
        frame.set_src_addr(self.src_addr);
        frame.set_dst_addr(self.dst_addr);
        frame.set_ethertype(self.ethertype);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::check_truncations;

    #[rustfmt::skip]
    pub(crate) const FRAME: [u8; 18] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // dst 02:00:00:00:00:02
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // src 02:00:00:00:00:01
        0x08, 0x06,                         // EtherType ARP
        0xaa, 0xbb, 0xcc, 0xdd,             // payload
    ];

    #[test]
    fn parse_fixture() {
        let f = EthernetFrame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(f.dst_addr(), EthernetAddress([2, 0, 0, 0, 0, 2]));
        assert_eq!(f.src_addr(), "02:00:00:00:00:01".parse().unwrap());
        assert_eq!(f.ethertype(), EtherType::Arp);
        assert_eq!(f.payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);
    }

    #[test]
    fn round_trip() {
        let f = EthernetFrame::new_checked(&FRAME[..]).unwrap();
        let repr = EthernetRepr::parse(&f).unwrap();
        let mut out = FRAME;
        out[..14].fill(0);
        repr.emit(&mut EthernetFrame::new_unchecked(&mut out[..])).unwrap();
        assert_eq!(out, FRAME);
        let mut short = [0u8; 13];
        assert_eq!(repr.emit(&mut EthernetFrame::new_unchecked(&mut short[..])), Err(Error::Truncated));
    }

    #[test]
    fn truncations() {
        check_truncations(&FRAME, 14, |b| EthernetFrame::new_checked(b).map(|_| ()));
    }

    #[test]
    fn ethertype_open() {
        assert_eq!(EtherType::from(0x88b5), EtherType::Unknown(0x88b5));
        assert_eq!(u16::from(EtherType::QinQ9100), 0x9100);
        assert!(EtherType::from(0x88a8).is_vlan_tpid());
        assert!(!EtherType::Ipv4.is_vlan_tpid());
    }

    #[test]
    fn mac_display_and_parse() {
        let a = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
        assert_eq!(a.to_string(), "02:00:00:00:00:01");
        assert_eq!("02:00:00:00:00:01".parse::<MacAddr>(), Ok(a));
        assert_eq!("02-00-00-00-00-01".parse::<MacAddr>(), Ok(a));
        assert_eq!("AA:bb:CC:dd:EE:ff".parse::<MacAddr>().unwrap().0, [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]);
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:01:",
            "02:00:00:00:00:0g",
            "02:00-00:00:00:01",
            "0200:00:00:00:001",
            "02:00:00:00:00:1",
            " 2:00:00:00:00:01",
            "02:00:00:00:00:01 ",
            "+2:00:00:00:00:01",
            "é2:00:00:00:00:0",
        ] {
            assert_eq!(bad.parse::<MacAddr>(), Err(AddrParseError), "{bad:?}");
        }
        assert!(EthernetAddress::BROADCAST.is_broadcast());
        assert!(EthernetAddress::BROADCAST.is_multicast());
        assert!(a.is_unicast() && a.is_local());
    }

    proptest::proptest! {
        #[test]
        fn mac_text_round_trip(b in proptest::prelude::any::<[u8; 6]>()) {
            let a = EthernetAddress(b);
            proptest::prop_assert_eq!(a.to_string().parse::<MacAddr>(), Ok(a));
        }

        #[test]
        fn mac_parse_never_panics(s in "\\PC{0,20}") {
            let _ = s.parse::<MacAddr>();
        }
    }
}
