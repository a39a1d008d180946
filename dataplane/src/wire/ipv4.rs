//! IPv4 (RFC 791) headers with options.

use std::net::Ipv4Addr;

use super::checksum;
use super::{be16, need, put16, Error, IpProtocol, RawOptions};

mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
    pub const OPTIONS: usize = 20;
}

/// A view of an IPv4 packet.
///
/// [`new_checked`](Self::new_checked) guarantees `20 <= header_len <= total_len <=
/// buffer.len()`; [`payload`](Self::payload) is `buffer[header_len..total_len]` (link-layer
/// padding after `total_len` is excluded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Length of a header without options.
    pub const MIN_HEADER_LEN: usize = 20;

    /// Wraps `buffer` without checks; getters panic if it is shorter than 20 bytes and
    /// [`payload`](Self::payload) if the length fields exceed the buffer.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps `buffer` after checking the version and length fields against it.
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
    /// [`Error::Truncated`] when the buffer is shorter than 20 bytes, than the IHL or than the
    /// total length; [`Error::BadVersion`] when the version is not 4; [`Error::Malformed`] when
    /// IHL < 5 or total length < header length.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        need(len, Self::MIN_HEADER_LEN)?;
        if self.version() != 4 {
            return Err(Error::BadVersion);
        }
        let hl = self.header_len();
        if hl < Self::MIN_HEADER_LEN {
            return Err(Error::Malformed);
        }
        need(len, hl)?;
        let total = usize::from(self.total_len());
        if total < hl {
            return Err(Error::Malformed);
        }
        need(len, total)
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version (4).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL × 4), options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// Differentiated services code point (6 bits).
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    /// Explicit congestion notification (2 bits).
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    /// Total length (header and payload) in bytes.
    #[inline]
    pub fn total_len(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::LENGTH])
    }

    /// Identification.
    #[inline]
    pub fn ident(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::IDENT])
    }

    /// Don't fragment flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        be16(&self.buffer.as_ref()[field::FLG_OFF]) & 0x4000 != 0
    }

    /// More fragments flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        be16(&self.buffer.as_ref()[field::FLG_OFF]) & 0x2000 != 0
    }

    /// Fragment offset in 8-byte units.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::FLG_OFF]) & 0x1fff
    }

    /// True when this is a fragment (more-fragments set or a non-zero offset).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        be16(&self.buffer.as_ref()[field::FLG_OFF]) & 0x3fff != 0
    }

    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol of the payload.
    #[inline]
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }

    /// Header checksum as stored.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::SRC];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::DST];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// The option bytes (`header_len - 20` of them).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::OPTIONS..self.header_len()]
    }

    /// True when the header (options included) sums to `0xffff`.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::sum(&self.buffer.as_ref()[..self.header_len()]) == 0xffff
    }

    /// The payload: `buffer[header_len..total_len]`.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets version 4 and the header length in bytes (a multiple of 4, 20..=60; rounded down
    /// to a multiple of 4 otherwise).
    #[inline]
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((header_len / 4) as u8 & 0x0f);
    }

    /// Sets the DSCP (low 6 bits used).
    #[inline]
    pub fn set_dscp(&mut self, dscp: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0x03) | (dscp << 2);
    }

    /// Sets the ECN bits (low 2 bits used).
    #[inline]
    pub fn set_ecn(&mut self, ecn: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0xfc) | (ecn & 0x03);
    }

    /// Sets the total length.
    #[inline]
    pub fn set_total_len(&mut self, v: u16) {
        put16(&mut self.buffer.as_mut()[field::LENGTH], v);
    }

    /// Sets the identification.
    #[inline]
    pub fn set_ident(&mut self, v: u16) {
        put16(&mut self.buffer.as_mut()[field::IDENT], v);
    }

    /// Sets flags and fragment offset (in 8-byte units; low 13 bits used) in one go.
    #[inline]
    pub fn set_frag(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let v = (u16::from(dont_frag) << 14) | (u16::from(more_frags) << 13) | (offset & 0x1fff);
        put16(&mut self.buffer.as_mut()[field::FLG_OFF], v);
    }

    /// Sets the TTL (the checksum is not updated; see [`decrement_ttl`](Self::decrement_ttl)).
    #[inline]
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }

    /// Sets the protocol.
    #[inline]
    pub fn set_next_header(&mut self, v: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = v.into();
    }

    /// Sets the stored checksum.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        put16(&mut self.buffer.as_mut()[field::CHECKSUM], v);
    }

    /// Sets the source address (the checksum is not updated).
    #[inline]
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.octets());
    }

    /// Sets the destination address (the checksum is not updated).
    #[inline]
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.octets());
    }

    /// The option bytes, writable.
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[field::OPTIONS..hl]
    }

    /// Recomputes the header checksum over `header_len` bytes and stores it.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(&self.buffer.as_ref()[..self.header_len()]);
        self.set_checksum(c);
    }

    /// The forwarding step of RFC 1812 §5.3.1: decrements the TTL and updates the checksum
    /// incrementally (RFC 1624). Returns the new TTL, or `None` (nothing changed) when the TTL
    /// is 0 or 1 and the packet must not be forwarded.
    #[inline]
    pub fn decrement_ttl(&mut self) -> Option<u8> {
        let ttl = self.ttl();
        if ttl <= 1 {
            return None;
        }
        let proto = self.buffer.as_ref()[field::PROTOCOL];
        let old = u16::from_be_bytes([ttl, proto]);
        let new = u16::from_be_bytes([ttl - 1, proto]);
        let c = checksum::update_u16(self.checksum(), old, new);
        self.set_ttl(ttl - 1);
        self.set_checksum(c);
        Some(ttl - 1)
    }

    /// Rewrites the source address and updates the header checksum incrementally. Returns the
    /// old address (for updating an L4 checksum with
    /// [`checksum::update_ipv4_addr`](super::checksum::update_ipv4_addr)).
    #[inline]
    pub fn rewrite_src_addr(&mut self, a: Ipv4Addr) -> Ipv4Addr {
        let old = self.src_addr();
        let c = checksum::update_ipv4_addr(self.checksum(), &old, &a);
        self.set_src_addr(a);
        self.set_checksum(c);
        old
    }

    /// Rewrites the destination address and updates the header checksum incrementally.
    /// Returns the old address.
    #[inline]
    pub fn rewrite_dst_addr(&mut self, a: Ipv4Addr) -> Ipv4Addr {
        let old = self.dst_addr();
        let c = checksum::update_ipv4_addr(self.checksum(), &old, &a);
        self.set_dst_addr(a);
        self.set_checksum(c);
        old
    }

    /// The payload, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (hl, total) = (self.header_len(), usize::from(self.total_len()));
        &mut self.buffer.as_mut()[hl..total]
    }
}

/// An IPv4 header as values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Protocol of the payload.
    pub next_header: IpProtocol,
    /// Payload length in bytes (total length minus header length).
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// DSCP (6 bits).
    pub dscp: u8,
    /// ECN (2 bits).
    pub ecn: u8,
    /// Identification.
    pub ident: u16,
    /// Don't fragment.
    pub dont_frag: bool,
    /// More fragments.
    pub more_frags: bool,
    /// Fragment offset in 8-byte units.
    pub frag_offset: u16,
    /// Options (up to 40 bytes).
    pub options: RawOptions,
}

impl Ipv4Repr {
    /// Reads a checked packet. The checksum is not verified (see
    /// [`Ipv4Packet::verify_checksum`]).
    ///
    /// # Errors
    /// As [`Ipv4Packet::check_len`].
    pub fn parse<T: AsRef<[u8]>>(p: &Ipv4Packet<T>) -> Result<Self, Error> {
        p.check_len()?;
        Ok(Ipv4Repr {
            src_addr: p.src_addr(),
            dst_addr: p.dst_addr(),
            next_header: p.next_header(),
            payload_len: usize::from(p.total_len()) - p.header_len(),
            ttl: p.ttl(),
            dscp: p.dscp(),
            ecn: p.ecn(),
            ident: p.ident(),
            dont_frag: p.dont_frag(),
            more_frags: p.more_frags(),
            frag_offset: p.frag_offset(),
            // At most 40 bytes: IHL is 4 bits.
            options: RawOptions::new(p.options())?,
        })
    }

    /// Bytes [`emit`](Self::emit) writes: the header, 20 plus the options.
    pub fn buffer_len(&self) -> usize {
        20 + self.options.len()
    }

    /// Writes the header (options included, checksum filled); the payload is left alone.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than [`buffer_len`](Self::buffer_len);
    /// [`Error::ValueTooLarge`] when the total length exceeds 65535, the DSCP 63, the ECN 3 or
    /// the fragment offset 8191.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Ipv4Packet<T>) -> Result<(), Error> {
        let hl = self.buffer_len();
        need(p.buffer.as_ref().len(), hl)?;
        let total = u16::try_from(hl + self.payload_len).map_err(|_| Error::ValueTooLarge)?;
        if self.dscp > 63 || self.ecn > 3 || self.frag_offset > 0x1fff {
            return Err(Error::ValueTooLarge);
        }
        p.set_version_and_header_len(hl);
        p.buffer.as_mut()[field::DSCP_ECN] = (self.dscp << 2) | self.ecn;
        p.set_total_len(total);
        p.set_ident(self.ident);
        p.set_frag(self.dont_frag, self.more_frags, self.frag_offset);
        p.set_ttl(self.ttl);
        p.set_next_header(self.next_header);
        p.set_src_addr(self.src_addr);
        p.set_dst_addr(self.dst_addr);
        p.buffer.as_mut()[field::OPTIONS..hl].copy_from_slice(self.options.as_bytes());
        p.fill_checksum();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::check_truncations;
    use proptest::prelude::*;

    #[rustfmt::skip]
    const WITH_OPTIONS: [u8; 32] = [
        0x46,                   // version 4, IHL 6 (24 bytes)
        0xb8,                   // DSCP 46 (EF), ECN 0
        0x00, 0x20,             // total length 32
        0x12, 0x34,             // identification
        0x40, 0x00,             // DF, offset 0
        0x40,                   // TTL 64
        0x11,                   // protocol UDP
        0x00, 0x00,             // checksum (filled in by the test)
        0xc0, 0x00, 0x02, 0x01, // src 192.0.2.1
        0xc6, 0x33, 0x64, 0x02, // dst 198.51.100.2
        0x94, 0x04, 0x00, 0x00, // option: router alert
        0x04, 0xd2, 0x16, 0x2e, // payload: UDP 1234 -> 5678
        0x00, 0x08, 0x00, 0x00, //          length 8, no checksum
    ];

    fn fixture() -> [u8; 32] {
        let mut b = WITH_OPTIONS;
        Ipv4Packet::new_unchecked(&mut b[..]).fill_checksum();
        b
    }

    #[test]
    fn parse_fixture() {
        let b = fixture();
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.dscp(), 46);
        assert_eq!(p.total_len(), 32);
        assert!(p.dont_frag() && !p.more_frags() && !p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.next_header(), IpProtocol::Udp);
        assert_eq!(p.src_addr(), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(198, 51, 100, 2));
        assert_eq!(p.options(), &[0x94, 0x04, 0, 0]);
        assert_eq!(p.payload(), &WITH_OPTIONS[24..]);
    }

    #[test]
    fn padding_after_total_len_excluded() {
        let mut b = fixture().to_vec();
        b.extend_from_slice(&[0; 14]); // Ethernet minimum-frame padding
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.payload().len(), 8);
    }

    #[test]
    fn round_trip() {
        let b = fixture();
        let r = Ipv4Repr::parse(&Ipv4Packet::new_checked(&b[..]).unwrap()).unwrap();
        assert_eq!(r.payload_len, 8);
        assert_eq!(r.buffer_len(), 24);
        let mut out = [0u8; 32];
        out[24..].copy_from_slice(&b[24..]);
        r.emit(&mut Ipv4Packet::new_unchecked(&mut out[..])).unwrap();
        assert_eq!(out, b);
    }

    #[test]
    fn emit_errors() {
        let b = fixture();
        let r = Ipv4Repr::parse(&Ipv4Packet::new_checked(&b[..]).unwrap()).unwrap();
        let mut out = [0u8; 23];
        assert_eq!(r.emit(&mut Ipv4Packet::new_unchecked(&mut out[..])), Err(Error::Truncated));
        let mut out = [0u8; 24];
        let big = Ipv4Repr { payload_len: 65535, ..r };
        assert_eq!(big.emit(&mut Ipv4Packet::new_unchecked(&mut out[..])), Err(Error::ValueTooLarge));
    }

    #[test]
    fn truncations() {
        let b = fixture();
        check_truncations(&b, 32, |x| Ipv4Repr::parse(&Ipv4Packet::new_checked(x)?));
    }

    #[test]
    fn structural_errors() {
        let b = fixture();
        let mut x = b;
        x[0] = 0x66;
        assert_eq!(Ipv4Packet::new_checked(&x[..]), Err(Error::BadVersion));
        let mut x = b;
        x[0] = 0x44;
        assert_eq!(Ipv4Packet::new_checked(&x[..]), Err(Error::Malformed));
        let mut x = b;
        x[0] = 0x4f; // 60-byte header in a 32-byte buffer
        assert_eq!(Ipv4Packet::new_checked(&x[..]), Err(Error::Truncated));
        let mut x = b;
        x[3] = 20; // total length shorter than the header
        assert_eq!(Ipv4Packet::new_checked(&x[..]), Err(Error::Malformed));
    }

    #[test]
    fn decrement_ttl_keeps_checksum_valid() {
        let mut b = fixture();
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        assert_eq!(p.decrement_ttl(), Some(63));
        assert!(p.verify_checksum());
        p.set_ttl(1);
        p.fill_checksum();
        assert_eq!(p.decrement_ttl(), None);
        assert_eq!(p.ttl(), 1);
        assert!(p.verify_checksum());
    }

    #[test]
    fn rewrite_addrs_keeps_checksum_valid() {
        let mut b = fixture();
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        assert_eq!(p.rewrite_src_addr(Ipv4Addr::new(203, 0, 113, 9)), Ipv4Addr::new(192, 0, 2, 1));
        p.rewrite_dst_addr(Ipv4Addr::new(10, 1, 2, 3));
        assert!(p.verify_checksum());
        let inc = p.checksum();
        p.fill_checksum();
        assert_eq!(p.checksum(), inc);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..100)) {
            if let Ok(p) = Ipv4Packet::new_checked(&data[..]) {
                let _ = (p.options(), p.payload(), p.verify_checksum());
                let r = Ipv4Repr::parse(&p).unwrap();
                prop_assert_eq!(r.buffer_len() + r.payload_len, usize::from(p.total_len()));
            }
        }

        #[test]
        fn decrement_ttl_matches_recompute(mut hdr in any::<[u8; 20]>(), ttl in 0u8..=255) {
            hdr[0] = 0x45;
            hdr[2] = 0; hdr[3] = 20;
            hdr[8] = ttl;
            let mut p = Ipv4Packet::new_checked(&mut hdr[..]).unwrap();
            p.fill_checksum();
            let r = p.decrement_ttl();
            prop_assert_eq!(r, if ttl > 1 { Some(ttl - 1) } else { None });
            let inc = p.checksum();
            p.fill_checksum();
            prop_assert_eq!(inc, p.checksum());
        }
    }
}
