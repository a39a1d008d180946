//! IPv6 (RFC 8200) fixed headers. Extension headers are in `ipv6ext`.

use std::net::Ipv6Addr;

use super::{be16, be32, need, put16, put32, Error, IpProtocol};

mod field {
    use core::ops::Range;
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
}

/// A view of an IPv6 packet.
///
/// [`new_checked`](Self::new_checked) guarantees `40 + payload_len <= buffer.len()`;
/// [`payload`](Self::payload) is `buffer[40..40 + payload_len]`, which starts with any
/// extension headers (walk them with [`walk_ext_headers`](super::walk_ext_headers)).
/// Jumbograms (payload length 0 with a jumbo option) are not supported: their payload reads
/// as empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Length of the fixed header.
    pub const HEADER_LEN: usize = 40;

    /// Wraps `buffer` without checks; getters panic if it is shorter than 40 bytes and
    /// [`payload`](Self::payload) if the payload length exceeds the buffer.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wraps `buffer` after checking the version and the payload length against it.
    ///
    /// # Errors
    /// See [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks what [`new_checked`](Self::new_checked) checks.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than 40 bytes plus the payload length;
    /// [`Error::BadVersion`] when the version is not 6.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        need(len, Self::HEADER_LEN)?;
        if self.version() != 6 {
            return Err(Error::BadVersion);
        }
        need(len, Self::HEADER_LEN + usize::from(self.payload_len()))
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    fn word0(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::VER_TC_FLOW])
    }

    /// Version (6).
    #[inline]
    pub fn version(&self) -> u8 {
        (self.word0() >> 28) as u8
    }

    /// Traffic class (DSCP << 2 | ECN).
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (self.word0() >> 20) as u8
    }

    /// Flow label (20 bits).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        self.word0() & 0x000f_ffff
    }

    /// Payload length in bytes (extension headers included).
    #[inline]
    pub fn payload_len(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::LENGTH])
    }

    /// The next header after the fixed header.
    #[inline]
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::NXT_HDR])
    }

    /// Hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        addr(&self.buffer.as_ref()[field::SRC])
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        addr(&self.buffer.as_ref()[field::DST])
    }

    /// The payload: `buffer[40..40 + payload_len]`.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[Self::HEADER_LEN..Self::HEADER_LEN + usize::from(self.payload_len())]
    }
}

fn addr(b: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    Ipv6Addr::from(a)
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    #[inline]
    fn set_word0(&mut self, v: u32) {
        put32(&mut self.buffer.as_mut()[field::VER_TC_FLOW], v);
    }

    /// Sets the version field to 6.
    #[inline]
    pub fn set_version(&mut self) {
        let w = self.word0();
        self.set_word0((w & 0x0fff_ffff) | 0x6000_0000);
    }

    /// Sets the traffic class.
    #[inline]
    pub fn set_traffic_class(&mut self, tc: u8) {
        let w = self.word0();
        self.set_word0((w & 0xf00f_ffff) | (u32::from(tc) << 20));
    }

    /// Sets the flow label (low 20 bits used).
    #[inline]
    pub fn set_flow_label(&mut self, fl: u32) {
        let w = self.word0();
        self.set_word0((w & 0xfff0_0000) | (fl & 0x000f_ffff));
    }

    /// Sets the payload length.
    #[inline]
    pub fn set_payload_len(&mut self, v: u16) {
        put16(&mut self.buffer.as_mut()[field::LENGTH], v);
    }

    /// Sets the next header.
    #[inline]
    pub fn set_next_header(&mut self, v: IpProtocol) {
        self.buffer.as_mut()[field::NXT_HDR] = v.into();
    }

    /// Sets the hop limit.
    #[inline]
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = v;
    }

    /// The forwarding step of RFC 8200 §3: decrements the hop limit (IPv6 has no header
    /// checksum to update). Returns the new hop limit, or `None` (nothing changed) when it is
    /// 0 or 1 and the packet must not be forwarded.
    #[inline]
    pub fn decrement_hop_limit(&mut self) -> Option<u8> {
        let h = self.hop_limit();
        if h <= 1 {
            return None;
        }
        self.set_hop_limit(h - 1);
        Some(h - 1)
    }

    /// Sets the source address (an L4 checksum is not updated; see
    /// [`checksum::update_ipv6_addr`](super::checksum::update_ipv6_addr)).
    #[inline]
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.octets());
    }

    /// Sets the destination address (an L4 checksum is not updated).
    #[inline]
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.octets());
    }

    /// The payload, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = Self::HEADER_LEN + usize::from(self.payload_len());
        &mut self.buffer.as_mut()[Self::HEADER_LEN..end]
    }
}

/// An IPv6 fixed header as values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Repr {
    /// Source address.
    pub src_addr: Ipv6Addr,
    /// Destination address.
    pub dst_addr: Ipv6Addr,
    /// The next header after the fixed header.
    pub next_header: IpProtocol,
    /// Payload length (extension headers included).
    pub payload_len: usize,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
}

impl Ipv6Repr {
    /// Reads a checked packet.
    ///
    /// # Errors
    /// As [`Ipv6Packet::check_len`].
    pub fn parse<T: AsRef<[u8]>>(p: &Ipv6Packet<T>) -> Result<Self, Error> {
        p.check_len()?;
        Ok(Ipv6Repr {
            src_addr: p.src_addr(),
            dst_addr: p.dst_addr(),
            next_header: p.next_header(),
            payload_len: usize::from(p.payload_len()),
            hop_limit: p.hop_limit(),
            traffic_class: p.traffic_class(),
            flow_label: p.flow_label(),
        })
    }

    /// Bytes [`emit`](Self::emit) writes: 40.
    pub const fn buffer_len(&self) -> usize {
        40
    }

    /// Writes the fixed header; the payload is left alone.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than 40 bytes;
    /// [`Error::ValueTooLarge`] when the payload length exceeds 65535 or the flow label 20
    /// bits.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Ipv6Packet<T>) -> Result<(), Error> {
        need(p.buffer.as_ref().len(), 40)?;
        let len = u16::try_from(self.payload_len).map_err(|_| Error::ValueTooLarge)?;
        if self.flow_label > 0x000f_ffff {
            return Err(Error::ValueTooLarge);
        }
        p.set_word0(0x6000_0000 | (u32::from(self.traffic_class) << 20) | self.flow_label);
        p.set_payload_len(len);
        p.set_next_header(self.next_header);
        p.set_hop_limit(self.hop_limit);
        p.set_src_addr(self.src_addr);
        p.set_dst_addr(self.dst_addr);
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::wire::testutil::check_truncations;
    use proptest::prelude::*;

    #[rustfmt::skip]
    pub(crate) const UDP6: [u8; 48] = [
        0x6b, 0x81, 0x23, 0x45, // version 6, traffic class 0xb8, flow label 0x12345
        0x00, 0x08,             // payload length 8
        0x11,                   // next header UDP
        0x40,                   // hop limit 64
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // src 2001:db8::1
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // dst 2001:db8::2
        0x04, 0xd2, 0x16, 0x2e, 0x00, 0x08, 0x00, 0x00, // UDP header (checksum not filled)
    ];

    #[test]
    fn parse_fixture() {
        let p = Ipv6Packet::new_checked(&UDP6[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0xb8);
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!(p.payload_len(), 8);
        assert_eq!(p.next_header(), IpProtocol::Udp);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src_addr(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.dst_addr(), "2001:db8::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.payload(), &UDP6[40..]);
    }

    #[test]
    fn round_trip() {
        let r = Ipv6Repr::parse(&Ipv6Packet::new_checked(&UDP6[..]).unwrap()).unwrap();
        let mut out = UDP6;
        out[..40].fill(0);
        r.emit(&mut Ipv6Packet::new_unchecked(&mut out[..])).unwrap();
        assert_eq!(out, UDP6);
        let bad = Ipv6Repr { flow_label: 1 << 20, ..r };
        assert_eq!(bad.emit(&mut Ipv6Packet::new_unchecked(&mut out[..])), Err(Error::ValueTooLarge));
    }

    #[test]
    fn truncations() {
        check_truncations(&UDP6, 48, |b| Ipv6Repr::parse(&Ipv6Packet::new_checked(b)?));
        let mut v4 = UDP6;
        v4[0] = 0x4b;
        assert_eq!(Ipv6Packet::new_checked(&v4[..]), Err(Error::BadVersion));
    }

    #[test]
    fn setters_and_hop_limit() {
        let mut b = UDP6;
        let mut p = Ipv6Packet::new_checked(&mut b[..]).unwrap();
        p.set_flow_label(0xfffff);
        p.set_traffic_class(0x01);
        assert_eq!((p.version(), p.traffic_class(), p.flow_label()), (6, 0x01, 0xfffff));
        assert_eq!(p.decrement_hop_limit(), Some(63));
        p.set_hop_limit(1);
        assert_eq!(p.decrement_hop_limit(), None);
        assert_eq!(p.hop_limit(), 1);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..100)) {
            if let Ok(p) = Ipv6Packet::new_checked(&data[..]) {
                prop_assert_eq!(p.payload().len(), usize::from(p.payload_len()));
                Ipv6Repr::parse(&p).unwrap();
            }
        }
    }
}
