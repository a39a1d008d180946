//! TCP (RFC 9293) segment headers. Options are kept as raw bytes; no option is decoded.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::checksum;
use super::{be16, be32, need, put16, put32, Error, IpProtocol, RawOptions};

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ_NUM: Range<usize> = 4..8;
    pub const ACK_NUM: Range<usize> = 8..12;
    pub const OFF_FLAGS: Range<usize> = 12..14;
    pub const WINDOW: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
    pub const OPTIONS: usize = 20;
}

/// TCP control bits (the low 9 bits of the offset/flags word; bit 8 is the former NS, now AE
/// of accurate ECN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u16);

impl TcpFlags {
    /// FIN.
    pub const FIN: TcpFlags = TcpFlags(0x001);
    /// SYN.
    pub const SYN: TcpFlags = TcpFlags(0x002);
    /// RST.
    pub const RST: TcpFlags = TcpFlags(0x004);
    /// PSH.
    pub const PSH: TcpFlags = TcpFlags(0x008);
    /// ACK.
    pub const ACK: TcpFlags = TcpFlags(0x010);
    /// URG.
    pub const URG: TcpFlags = TcpFlags(0x020);
    /// ECE.
    pub const ECE: TcpFlags = TcpFlags(0x040);
    /// CWR.
    pub const CWR: TcpFlags = TcpFlags(0x080);
    /// AE (formerly NS).
    pub const AE: TcpFlags = TcpFlags(0x100);

    /// True when every flag of `other` is set.
    pub fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: Self) -> Self {
        TcpFlags(self.0 | rhs.0)
    }
}

/// A view of a TCP segment.
///
/// [`new_checked`](Self::new_checked) guarantees `20 <= header_len <= buffer.len()`. TCP has
/// no length field: the payload runs to the end of the buffer, so pass the IP payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Length of a header without options.
    pub const MIN_HEADER_LEN: usize = 20;

    /// Wraps `buffer` without checks; getters panic if it is shorter than 20 bytes and
    /// [`options`](Self::options)/[`payload`](Self::payload) if the data offset exceeds it.
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Wraps `buffer` after checking the data offset against it.
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
    /// [`Error::Truncated`] when the buffer is shorter than 20 bytes or than the data offset;
    /// [`Error::Malformed`] when the data offset is below 5.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        need(len, Self::MIN_HEADER_LEN)?;
        let hl = self.header_len();
        if hl < Self::MIN_HEADER_LEN {
            return Err(Error::Malformed);
        }
        need(len, hl)
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::SRC_PORT])
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::DST_PORT])
    }

    /// Sequence number.
    #[inline]
    pub fn seq_number(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::SEQ_NUM])
    }

    /// Acknowledgment number.
    #[inline]
    pub fn ack_number(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::ACK_NUM])
    }

    /// Header length in bytes (data offset × 4), options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::OFF_FLAGS.start] >> 4) * 4
    }

    /// Control bits.
    #[inline]
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(be16(&self.buffer.as_ref()[field::OFF_FLAGS]) & 0x01ff)
    }

    /// Window.
    #[inline]
    pub fn window_len(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::WINDOW])
    }

    /// Checksum as stored.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// Urgent pointer.
    #[inline]
    pub fn urgent_at(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::URGENT])
    }

    /// The option bytes (`header_len - 20` of them, undecoded).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::OPTIONS..self.header_len()]
    }

    /// The payload: everything after the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// True when the whole buffer carries a correct checksum over the IPv4 pseudo-header.
    #[inline]
    pub fn verify_checksum_v4(&self, src: &Ipv4Addr, dst: &Ipv4Addr) -> bool {
        checksum::verify_l4_v4(src, dst, IpProtocol::Tcp, self.buffer.as_ref())
    }

    /// True when the whole buffer carries a correct checksum over the IPv6 pseudo-header.
    #[inline]
    pub fn verify_checksum_v6(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        checksum::verify_l4_v6(src, dst, IpProtocol::Tcp, self.buffer.as_ref())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// Sets the source port.
    #[inline]
    pub fn set_src_port(&mut self, v: u16) {
        put16(&mut self.buffer.as_mut()[field::SRC_PORT], v);
    }

    /// Sets the destination port.
    #[inline]
    pub fn set_dst_port(&mut self, v: u16) {
        put16(&mut self.buffer.as_mut()[field::DST_PORT], v);
    }

    /// Sets the sequence number.
    #[inline]
    pub fn set_seq_number(&mut self, v: u32) {
        put32(&mut self.buffer.as_mut()[field::SEQ_NUM], v);
    }

    /// Sets the acknowledgment number.
    #[inline]
    pub fn set_ack_number(&mut self, v: u32) {
        put32(&mut self.buffer.as_mut()[field::ACK_NUM], v);
    }

    /// Sets the header length in bytes (multiple of 4, 20..=60) and the flags together.
    #[inline]
    pub fn set_header_len_and_flags(&mut self, header_len: usize, flags: TcpFlags) {
        let v = (((header_len / 4) as u16 & 0x0f) << 12) | (flags.0 & 0x01ff);
        put16(&mut self.buffer.as_mut()[field::OFF_FLAGS], v);
    }

    /// Sets the window.
    #[inline]
    pub fn set_window_len(&mut self, v: u16) {
        put16(&mut self.buffer.as_mut()[field::WINDOW], v);
    }

    /// Sets the stored checksum.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        put16(&mut self.buffer.as_mut()[field::CHECKSUM], v);
    }

    /// Sets the urgent pointer.
    #[inline]
    pub fn set_urgent_at(&mut self, v: u16) {
        put16(&mut self.buffer.as_mut()[field::URGENT], v);
    }

    /// The option bytes, writable.
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[field::OPTIONS..hl]
    }

    /// The payload, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[hl..]
    }

    /// Computes the checksum over the IPv4 pseudo-header and the whole buffer; stores it.
    #[inline]
    pub fn fill_checksum_v4(&mut self, src: &Ipv4Addr, dst: &Ipv4Addr) {
        self.set_checksum(0);
        let c = checksum::l4_checksum_v4(src, dst, IpProtocol::Tcp, self.buffer.as_ref());
        self.set_checksum(c);
    }

    /// Computes the checksum over the IPv6 pseudo-header and the whole buffer; stores it.
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        self.set_checksum(0);
        let c = checksum::l4_checksum_v6(src, dst, IpProtocol::Tcp, self.buffer.as_ref());
        self.set_checksum(c);
    }
}

/// A TCP header as values (options raw).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq_number: u32,
    /// Acknowledgment number.
    pub ack_number: u32,
    /// Control bits.
    pub flags: TcpFlags,
    /// Window.
    pub window_len: u16,
    /// Urgent pointer.
    pub urgent_at: u16,
    /// Options (up to 40 bytes).
    pub options: RawOptions,
}

impl TcpRepr {
    /// Reads a checked segment header. The checksum is not verified.
    ///
    /// # Errors
    /// As [`TcpPacket::check_len`].
    pub fn parse<T: AsRef<[u8]>>(p: &TcpPacket<T>) -> Result<Self, Error> {
        p.check_len()?;
        Ok(TcpRepr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            seq_number: p.seq_number(),
            ack_number: p.ack_number(),
            flags: p.flags(),
            window_len: p.window_len(),
            urgent_at: p.urgent_at(),
            // At most 40 bytes: the data offset is 4 bits.
            options: RawOptions::new(p.options())?,
        })
    }

    /// Bytes [`emit`](Self::emit) writes: 20 plus the options.
    pub fn buffer_len(&self) -> usize {
        20 + self.options.len()
    }

    /// Writes the header with a zero checksum; write the payload into the view, then call
    /// [`TcpPacket::fill_checksum_v4`] or [`TcpPacket::fill_checksum_v6`].
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than [`buffer_len`](Self::buffer_len);
    /// [`Error::ValueTooLarge`] when the flags use bits above the 9 defined ones.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut TcpPacket<T>) -> Result<(), Error> {
        let hl = self.buffer_len();
        need(p.buffer.as_ref().len(), hl)?;
        if self.flags.0 > 0x01ff {
            return Err(Error::ValueTooLarge);
        }
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_seq_number(self.seq_number);
        p.set_ack_number(self.ack_number);
        p.set_header_len_and_flags(hl, self.flags);
        p.set_window_len(self.window_len);
        p.set_checksum(0);
        p.set_urgent_at(self.urgent_at);
        p.buffer.as_mut()[field::OPTIONS..hl].copy_from_slice(self.options.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::check_truncations;
    use proptest::prelude::*;

    #[rustfmt::skip]
    const SYN: [u8; 32] = [
        0xc0, 0x01,             // src port 49153
        0x00, 0x50,             // dst port 80
        0x00, 0x00, 0x10, 0x00, // seq 4096
        0x00, 0x00, 0x00, 0x00, // ack 0
        0x80, 0x02,             // data offset 8 (32 bytes), SYN
        0xff, 0xff,             // window
        0x00, 0x00,             // checksum (filled by the tests)
        0x00, 0x00,             // urgent pointer
        0x02, 0x04, 0x05, 0xb4, // MSS 1460
        0x01, 0x03, 0x03, 0x07, // NOP, window scale 7
        0x04, 0x02, 0x00, 0x00, // SACK permitted, EOL padding
    ];

    #[test]
    fn parse_fixture() {
        let p = TcpPacket::new_checked(&SYN[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (49153, 80));
        assert_eq!((p.seq_number(), p.ack_number()), (4096, 0));
        assert_eq!(p.header_len(), 32);
        assert_eq!(p.flags(), TcpFlags::SYN);
        assert!(!p.flags().contains(TcpFlags::SYN | TcpFlags::ACK));
        assert_eq!(p.window_len(), 0xffff);
        assert_eq!(p.options(), &SYN[20..]);
        assert!(p.payload().is_empty());
    }

    #[test]
    fn round_trip_and_checksum() {
        let p = TcpPacket::new_checked(&SYN[..]).unwrap();
        let r = TcpRepr::parse(&p).unwrap();
        let mut out = [0xffu8; 36];
        out[32..].copy_from_slice(b"data");
        let mut q = TcpPacket::new_unchecked(&mut out[..]);
        r.emit(&mut q).unwrap();
        assert_eq!(q.payload(), b"data");
        let (s, d) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2));
        q.fill_checksum_v4(&s, &d);
        assert!(q.verify_checksum_v4(&s, &d));
        q.set_checksum(0);
        assert_eq!(&out[..32], &SYN[..]);
        let mut short = [0u8; 31];
        assert_eq!(r.emit(&mut TcpPacket::new_unchecked(&mut short[..])), Err(Error::Truncated));
    }

    #[test]
    fn truncations() {
        check_truncations(&SYN, 32, |b| TcpRepr::parse(&TcpPacket::new_checked(b)?));
        let mut b = SYN;
        b[12] = 0x40;
        assert_eq!(TcpPacket::new_checked(&b[..]), Err(Error::Malformed));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(p) = TcpPacket::new_checked(&data[..]) {
                let r = TcpRepr::parse(&p).unwrap();
                prop_assert_eq!(r.buffer_len(), p.header_len());
                let mut out = vec![0u8; r.buffer_len()];
                r.emit(&mut TcpPacket::new_unchecked(&mut out[..])).unwrap();
                // Everything but the checksum and the reserved bits survives.
                prop_assert_eq!(&out[..12], &data[..12]);
                prop_assert_eq!(&out[14..16], &data[14..16]);
                prop_assert_eq!(&out[18..], &data[18..p.header_len()]);
            }
        }
    }
}
