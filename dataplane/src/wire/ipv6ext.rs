//! IPv6 extension headers (RFC 8200 §4) and a bounded walker over a chain of them.
//!
//! Hop-by-hop options, routing and destination options share one layout ([`Ipv6ExtHeader`]:
//! next header, length in 8-octet units not counting the first, then data); the fragment
//! header has a fixed 8-byte layout ([`Ipv6FragmentHeader`]). [`walk_ext_headers`] follows the
//! chain from the fixed header to the upper-layer protocol.

use super::{be16, be32, need, put16, put32, Error, IpProtocol};

/// Most extension headers [`walk_ext_headers`] steps over before giving up with
/// [`Error::TooManyHeaders`]. RFC 8200 §4.1 recommends at most one of each kind (two for
/// destination options), so 8 leaves room without letting a crafted chain cost much.
pub const MAX_EXT_HEADERS: usize = 8;

mod field {
    use core::ops::Range;
    pub const NXT_HDR: usize = 0;
    pub const LENGTH: usize = 1;
    pub const DATA_START: usize = 2;
    // Fragment header.
    pub const FRAG_OFF_M: Range<usize> = 2..4;
    pub const FRAG_IDENT: Range<usize> = 4..8;
}

/// A view of a hop-by-hop, routing or destination options header.
///
/// [`new_checked`](Self::new_checked) guarantees the whole header
/// (`(length + 1) * 8` bytes, at least 8) is in the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv6ExtHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6ExtHeader<T> {
    /// Wraps `buffer` without checks; getters panic if it is shorter than 2 bytes (8 for the
    /// routing getters) and [`data`](Self::data) if it is shorter than the header length.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6ExtHeader { buffer }
    }

    /// Wraps `buffer` after checking the whole header is in it.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than the header length.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let h = Self::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    /// Checks what [`new_checked`](Self::new_checked) checks.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than the header length.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        need(len, 8)?;
        need(len, self.header_len())
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The header after this one.
    #[inline]
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::NXT_HDR])
    }

    /// The raw length field (8-octet units, not counting the first 8 octets).
    #[inline]
    pub fn length_field(&self) -> u8 {
        self.buffer.as_ref()[field::LENGTH]
    }

    /// Header length in bytes: `(length + 1) * 8`.
    #[inline]
    pub fn header_len(&self) -> usize {
        (usize::from(self.length_field()) + 1) * 8
    }

    /// The bytes after the next-header and length fields: options (TLV-encoded) for
    /// hop-by-hop and destination options, type-specific data for routing headers.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA_START..self.header_len()]
    }

    /// For a routing header: the routing type.
    #[inline]
    pub fn routing_type(&self) -> u8 {
        self.buffer.as_ref()[2]
    }

    /// For a routing header: segments left.
    #[inline]
    pub fn segments_left(&self) -> u8 {
        self.buffer.as_ref()[3]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6ExtHeader<T> {
    /// Sets the next header.
    #[inline]
    pub fn set_next_header(&mut self, v: IpProtocol) {
        self.buffer.as_mut()[field::NXT_HDR] = v.into();
    }

    /// Sets the raw length field.
    #[inline]
    pub fn set_length_field(&mut self, v: u8) {
        self.buffer.as_mut()[field::LENGTH] = v;
    }

    /// For a routing header: sets segments left.
    #[inline]
    pub fn set_segments_left(&mut self, v: u8) {
        self.buffer.as_mut()[3] = v;
    }

    /// The data bytes, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[field::DATA_START..end]
    }
}

/// A hop-by-hop, routing or destination options header as values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6ExtHeaderRepr<'a> {
    /// The header after this one.
    pub next_header: IpProtocol,
    /// The bytes after next-header and length: `6 + 8k` bytes, `k <= 255`.
    pub data: &'a [u8],
}

impl<'a> Ipv6ExtHeaderRepr<'a> {
    /// Reads a checked header, borrowing its data.
    ///
    /// # Errors
    /// As [`Ipv6ExtHeader::check_len`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(h: &Ipv6ExtHeader<&'a T>) -> Result<Self, Error> {
        h.check_len()?;
        let buf: &'a T = h.buffer;
        Ok(Ipv6ExtHeaderRepr { next_header: h.next_header(), data: &buf.as_ref()[field::DATA_START..h.header_len()] })
    }

    /// Bytes [`emit`](Self::emit) writes: `2 + data.len()`.
    pub fn buffer_len(&self) -> usize {
        2 + self.data.len()
    }

    /// Writes the header.
    ///
    /// # Errors
    /// [`Error::Malformed`] when `2 + data.len()` is not a multiple of 8;
    /// [`Error::ValueTooLarge`] when it exceeds 2048; [`Error::Truncated`] when the buffer is
    /// shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, h: &mut Ipv6ExtHeader<T>) -> Result<(), Error> {
        let len = self.buffer_len();
        if len % 8 != 0 {
            return Err(Error::Malformed);
        }
        let units = u8::try_from(len / 8 - 1).map_err(|_| Error::ValueTooLarge)?;
        need(h.buffer.as_ref().len(), len)?;
        h.set_next_header(self.next_header);
        h.set_length_field(units);
        h.data_mut().copy_from_slice(self.data);
        Ok(())
    }
}

/// A view of an IPv6 fragment header (8 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv6FragmentHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6FragmentHeader<T> {
    /// Length of the fragment header.
    pub const HEADER_LEN: usize = 8;

    /// Wraps `buffer` without checks; getters panic if it is shorter than 8 bytes.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6FragmentHeader { buffer }
    }

    /// Wraps `buffer` after checking it holds 8 bytes.
    ///
    /// # Errors
    /// [`Error::Truncated`] when shorter than 8 bytes.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let h = Self::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    /// Checks what [`new_checked`](Self::new_checked) checks.
    ///
    /// # Errors
    /// [`Error::Truncated`] when shorter than 8 bytes.
    pub fn check_len(&self) -> Result<(), Error> {
        need(self.buffer.as_ref().len(), Self::HEADER_LEN)
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The header of the fragmentable part.
    #[inline]
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::NXT_HDR])
    }

    /// Fragment offset in 8-byte units.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::FRAG_OFF_M]) >> 3
    }

    /// More fragments flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        be16(&self.buffer.as_ref()[field::FRAG_OFF_M]) & 1 != 0
    }

    /// Identification.
    #[inline]
    pub fn ident(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::FRAG_IDENT])
    }

    /// The bytes after the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[Self::HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6FragmentHeader<T> {
    /// Sets the next header.
    #[inline]
    pub fn set_next_header(&mut self, v: IpProtocol) {
        self.buffer.as_mut()[field::NXT_HDR] = v.into();
    }

    /// Sets offset (8-byte units; low 13 bits used) and more-fragments together; clears the
    /// reserved bits.
    #[inline]
    pub fn set_frag(&mut self, offset: u16, more_frags: bool) {
        self.buffer.as_mut()[field::LENGTH] = 0;
        put16(&mut self.buffer.as_mut()[field::FRAG_OFF_M], (offset << 3) | u16::from(more_frags));
    }

    /// Sets the identification.
    #[inline]
    pub fn set_ident(&mut self, v: u32) {
        put32(&mut self.buffer.as_mut()[field::FRAG_IDENT], v);
    }

    /// The bytes after the header, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[Self::HEADER_LEN..]
    }
}

/// An IPv6 fragment header as values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6FragmentRepr {
    /// The header of the fragmentable part.
    pub next_header: IpProtocol,
    /// Fragment offset in 8-byte units (0..=8191).
    pub frag_offset: u16,
    /// More fragments.
    pub more_frags: bool,
    /// Identification.
    pub ident: u32,
}

impl Ipv6FragmentRepr {
    /// Reads a checked header.
    ///
    /// # Errors
    /// [`Error::Truncated`] when shorter than 8 bytes.
    pub fn parse<T: AsRef<[u8]>>(h: &Ipv6FragmentHeader<T>) -> Result<Self, Error> {
        h.check_len()?;
        Ok(Ipv6FragmentRepr {
            next_header: h.next_header(),
            frag_offset: h.frag_offset(),
            more_frags: h.more_frags(),
            ident: h.ident(),
        })
    }

    /// Bytes [`emit`](Self::emit) writes: 8.
    pub const fn buffer_len(&self) -> usize {
        8
    }

    /// Writes the header.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than 8 bytes;
    /// [`Error::ValueTooLarge`] when the offset exceeds 8191.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, h: &mut Ipv6FragmentHeader<T>) -> Result<(), Error> {
        h.check_len()?;
        if self.frag_offset > 0x1fff {
            return Err(Error::ValueTooLarge);
        }
        h.set_next_header(self.next_header);
        h.set_frag(self.frag_offset, self.more_frags);
        h.set_ident(self.ident);
        Ok(())
    }
}

/// Where the extension-header chain of an IPv6 packet ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Upper {
    /// The upper-layer protocol (or the first header the walker does not step over: ESP,
    /// no-next-header, an unknown value).
    pub next_header: IpProtocol,
    /// Offset of that header from the start of the IPv6 payload (the end of the chain).
    pub offset: usize,
    /// Number of extension headers stepped over.
    pub ext_headers: usize,
    /// The fragment header, if one was seen. When its `frag_offset` is non-zero the walk
    /// stopped right after it: the bytes at `offset` are the middle of the fragmentable part,
    /// not an upper-layer header.
    pub fragment: Option<Ipv6FragmentRepr>,
}

impl Ipv6Upper {
    /// True when the bytes at [`offset`](Self::offset) start the upper-layer header: no
    /// fragment header, or the first fragment.
    pub fn has_upper_header(&self) -> bool {
        self.fragment.map_or(true, |f| f.frag_offset == 0)
    }
}

/// Walks the extension headers at the start of an IPv6 payload, starting from the fixed
/// header's next-header value `first`, and returns the upper-layer protocol and its offset.
///
/// Steps over hop-by-hop (only allowed first), routing, fragment, destination options and
/// authentication (AH, whose length is in 4-octet units) headers; anything else ends the
/// walk. A non-first fragment also ends it (see [`Ipv6Upper::fragment`]). At most
/// [`MAX_EXT_HEADERS`] headers are stepped over.
///
/// # Errors
/// [`Error::Truncated`] when a header runs past `payload`; [`Error::Malformed`] when
/// hop-by-hop options are not the first header; [`Error::TooManyHeaders`] beyond the bound.
pub fn walk_ext_headers(first: IpProtocol, payload: &[u8]) -> Result<Ipv6Upper, Error> {
    let mut up = Ipv6Upper { next_header: first, offset: 0, ext_headers: 0, fragment: None };
    loop {
        let rest = payload.get(up.offset..).ok_or(Error::Truncated)?;
        let len = match up.next_header {
            IpProtocol::HopByHop | IpProtocol::Ipv6Route | IpProtocol::Ipv6Opts => {
                if up.next_header == IpProtocol::HopByHop && up.ext_headers != 0 {
                    return Err(Error::Malformed);
                }
                bound(&up)?;
                let h = Ipv6ExtHeader::new_checked(rest)?;
                up.next_header = h.next_header();
                h.header_len()
            }
            IpProtocol::Ah => {
                bound(&up)?;
                need(rest.len(), 2)?;
                let len = (usize::from(rest[1]) + 2) * 4;
                need(rest.len(), len)?;
                up.next_header = IpProtocol::from(rest[0]);
                len
            }
            IpProtocol::Ipv6Frag => {
                bound(&up)?;
                let f = Ipv6FragmentRepr::parse(&Ipv6FragmentHeader::new_checked(rest)?)?;
                up.next_header = f.next_header;
                up.fragment = Some(f);
                if f.frag_offset != 0 {
                    up.offset += 8;
                    up.ext_headers += 1;
                    return Ok(up);
                }
                8
            }
            _ => return Ok(up),
        };
        up.offset += len;
        up.ext_headers += 1;
    }
}

#[inline]
fn bound(up: &Ipv6Upper) -> Result<(), Error> {
    if up.ext_headers >= MAX_EXT_HEADERS {
        Err(Error::TooManyHeaders)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::check_truncations;
    use proptest::prelude::*;

    /// An IPv6 payload: hop-by-hop, routing, fragment (first), destination options, then UDP.
    #[rustfmt::skip]
    const CHAIN: [u8; 48] = [
        // Hop-by-hop options, 8 bytes.
        0x2b, 0x00,                         // next: routing, length 0
        0x05, 0x02, 0x00, 0x00,             // router alert option (MLD)
        0x01, 0x00,                         // PadN, 0 bytes
        // Routing header, 24 bytes: type 4 (SRH-like), 1 segment.
        0x2c, 0x02,                         // next: fragment, length 2
        0x04, 0x01,                         // routing type 4, segments left 1
        0x00, 0x00, 0x00, 0x00,             // type-specific
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x03, // a segment
        // Fragment header, 8 bytes: offset 0, M=1.
        0x3c, 0x00,                         // next: destination options, reserved
        0x00, 0x01,                         // offset 0, M
        0xde, 0xad, 0xbe, 0xef,             // identification
        // Destination options, 8 bytes.
        0x11, 0x00,                         // next: UDP, length 0
        0x01, 0x04, 0x00, 0x00, 0x00, 0x00, // PadN, 4 bytes
    ];

    #[test]
    fn walk_chain() {
        let up = walk_ext_headers(IpProtocol::HopByHop, &CHAIN).unwrap();
        assert_eq!(up.next_header, IpProtocol::Udp);
        assert_eq!(up.offset, 48);
        assert_eq!(up.ext_headers, 4);
        let f = up.fragment.unwrap();
        assert_eq!((f.frag_offset, f.more_frags, f.ident), (0, true, 0xdead_beef));
        assert!(up.has_upper_header());
    }

    #[test]
    fn views() {
        let hbh = Ipv6ExtHeader::new_checked(&CHAIN[..]).unwrap();
        assert_eq!((hbh.next_header(), hbh.header_len()), (IpProtocol::Ipv6Route, 8));
        assert_eq!(hbh.data(), &CHAIN[2..8]);
        let rt = Ipv6ExtHeader::new_checked(&CHAIN[8..]).unwrap();
        assert_eq!((rt.header_len(), rt.routing_type(), rt.segments_left()), (24, 4, 1));
        let fr = Ipv6FragmentHeader::new_checked(&CHAIN[32..]).unwrap();
        assert_eq!(fr.next_header(), IpProtocol::Ipv6Opts);
        assert_eq!(fr.payload(), &CHAIN[40..]);
    }

    #[test]
    fn no_ext_headers() {
        let up = walk_ext_headers(IpProtocol::Tcp, &[]).unwrap();
        assert_eq!((up.next_header, up.offset, up.ext_headers, up.fragment), (IpProtocol::Tcp, 0, 0, None));
    }

    #[test]
    fn non_first_fragment_stops() {
        let mut b = CHAIN;
        b[34..36].copy_from_slice(&((100u16 << 3) | 1).to_be_bytes());
        let up = walk_ext_headers(IpProtocol::HopByHop, &b).unwrap();
        assert_eq!(up.offset, 40);
        assert_eq!(up.next_header, IpProtocol::Ipv6Opts);
        assert!(!up.has_upper_header());
        // Even with nothing after it.
        let up = walk_ext_headers(IpProtocol::HopByHop, &b[..40]).unwrap();
        assert_eq!(up.offset, 40);
    }

    #[test]
    fn truncations_error() {
        check_truncations(&CHAIN, 48, |b| walk_ext_headers(IpProtocol::HopByHop, b));
    }

    #[test]
    fn hop_by_hop_must_be_first() {
        let mut b = CHAIN;
        b[40] = 0; // destination options say hop-by-hop follows
        let mut b = b.to_vec();
        b.extend_from_slice(&[0x11, 0, 1, 4, 0, 0, 0, 0]);
        assert_eq!(walk_ext_headers(IpProtocol::HopByHop, &b), Err(Error::Malformed));
    }

    #[test]
    fn bounded() {
        // A long chain of minimal destination options headers.
        let mut b = Vec::new();
        for _ in 0..=MAX_EXT_HEADERS {
            b.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
        }
        assert_eq!(walk_ext_headers(IpProtocol::Ipv6Opts, &b), Err(Error::TooManyHeaders));
        let ok = &b[..8 * (MAX_EXT_HEADERS - 1)];
        let mut ok = ok.to_vec();
        ok.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]);
        let up = walk_ext_headers(IpProtocol::Ipv6Opts, &ok).unwrap();
        assert_eq!((up.next_header, up.ext_headers), (IpProtocol::Udp, MAX_EXT_HEADERS));
    }

    #[test]
    fn ah_length_units() {
        // AH with payload length 4 → (4 + 2) * 4 = 24 bytes.
        let mut b = vec![6u8, 4];
        b.resize(24, 0);
        let up = walk_ext_headers(IpProtocol::Ah, &b).unwrap();
        assert_eq!((up.next_header, up.offset), (IpProtocol::Tcp, 24));
        assert_eq!(walk_ext_headers(IpProtocol::Ah, &b[..23]), Err(Error::Truncated));
    }

    #[test]
    fn repr_round_trips() {
        let h = Ipv6ExtHeader::new_checked(&CHAIN[8..32]).unwrap();
        let r = Ipv6ExtHeaderRepr::parse(&h).unwrap();
        assert_eq!(r.buffer_len(), 24);
        let mut out = [0u8; 24];
        r.emit(&mut Ipv6ExtHeader::new_unchecked(&mut out[..])).unwrap();
        assert_eq!(out, CHAIN[8..32]);
        let odd = Ipv6ExtHeaderRepr { data: &[0; 7], ..r };
        assert_eq!(odd.emit(&mut Ipv6ExtHeader::new_unchecked(&mut out[..])), Err(Error::Malformed));

        let f = Ipv6FragmentRepr::parse(&Ipv6FragmentHeader::new_checked(&CHAIN[32..40]).unwrap()).unwrap();
        let mut out = [0xffu8; 8];
        f.emit(&mut Ipv6FragmentHeader::new_unchecked(&mut out[..])).unwrap();
        assert_eq!(out, CHAIN[32..40]);
    }

    proptest! {
        #[test]
        fn walk_random_never_panics(first in any::<u8>(), data in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(up) = walk_ext_headers(IpProtocol::from(first), &data) {
                prop_assert!(up.offset <= data.len());
                prop_assert!(up.ext_headers <= MAX_EXT_HEADERS);
            }
        }

        #[test]
        fn views_random_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(h) = Ipv6ExtHeader::new_checked(&data[..]) {
                let _ = (h.data(), h.routing_type(), h.segments_left(), h.next_header());
            }
            if let Ok(f) = Ipv6FragmentHeader::new_checked(&data[..]) {
                let _ = (f.payload(), f.frag_offset(), f.ident());
            }
        }
    }
}
