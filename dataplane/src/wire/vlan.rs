//! 802.1Q VLAN tags and 802.1ad QinQ stacks.
//!
//! On the wire a tag is the TPID (which sits where the EtherType would be: 0x8100, 0x88a8 or
//! 0x9100) followed by the 16-bit TCI. The view here, [`VlanHeader`], starts after the TPID:
//! the TCI, then the EtherType of what follows (another TPID for a stacked tag), then the
//! payload, so that it chains from [`EthernetFrame::payload`](super::EthernetFrame::payload)
//! the same way an IP header does.

use super::{be16, need, put16, Error, EtherType};

/// Most VLAN tags [`walk_vlan_tags`] skips before giving up with [`Error::TooManyHeaders`].
pub const MAX_VLAN_TAGS: usize = 4;

mod field {
    use core::ops::{Range, RangeFrom};
    pub const TCI: Range<usize> = 0..2;
    pub const ETHERTYPE: Range<usize> = 2..4;
    pub const PAYLOAD: RangeFrom<usize> = 4..;
}

/// A view of a VLAN tag after its TPID: TCI (PCP, DEI, VID) and the inner EtherType.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VlanHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VlanHeader<T> {
    /// Length of the TCI plus inner EtherType.
    pub const HEADER_LEN: usize = 4;

    /// Wraps `buffer` without checks; getters panic if it is shorter than 4 bytes.
    pub const fn new_unchecked(buffer: T) -> Self {
        VlanHeader { buffer }
    }

    /// Wraps `buffer` after checking it holds a whole tag.
    ///
    /// # Errors
    /// [`Error::Truncated`] when shorter than 4 bytes.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let v = Self::new_unchecked(buffer);
        v.check_len()?;
        Ok(v)
    }

    /// Checks what [`new_checked`](Self::new_checked) checks.
    ///
    /// # Errors
    /// [`Error::Truncated`] when shorter than 4 bytes.
    pub fn check_len(&self) -> Result<(), Error> {
        need(self.buffer.as_ref().len(), Self::HEADER_LEN)
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole 16-bit tag control information.
    #[inline]
    pub fn tci(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::TCI])
    }

    /// Priority code point (3 bits).
    #[inline]
    pub fn pcp(&self) -> u8 {
        (self.tci() >> 13) as u8
    }

    /// Drop eligible indicator.
    #[inline]
    pub fn dei(&self) -> bool {
        self.tci() & 0x1000 != 0
    }

    /// VLAN identifier (12 bits).
    #[inline]
    pub fn vid(&self) -> u16 {
        self.tci() & 0x0fff
    }

    /// EtherType of what follows the tag (a TPID when another tag follows).
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(be16(&self.buffer.as_ref()[field::ETHERTYPE]))
    }

    /// The bytes after the tag.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VlanHeader<T> {
    /// Sets the whole TCI.
    #[inline]
    pub fn set_tci(&mut self, tci: u16) {
        put16(&mut self.buffer.as_mut()[field::TCI], tci);
    }

    /// Sets the priority code point (low 3 bits of `pcp` are used).
    #[inline]
    pub fn set_pcp(&mut self, pcp: u8) {
        self.set_tci((self.tci() & 0x1fff) | (u16::from(pcp & 7) << 13));
    }

    /// Sets the drop eligible indicator.
    #[inline]
    pub fn set_dei(&mut self, dei: bool) {
        self.set_tci((self.tci() & !0x1000) | (u16::from(dei) << 12));
    }

    /// Sets the VLAN identifier (low 12 bits of `vid` are used).
    #[inline]
    pub fn set_vid(&mut self, vid: u16) {
        self.set_tci((self.tci() & 0xf000) | (vid & 0x0fff));
    }

    /// Sets the inner EtherType.
    #[inline]
    pub fn set_ethertype(&mut self, ethertype: EtherType) {
        put16(&mut self.buffer.as_mut()[field::ETHERTYPE], ethertype.into());
    }

    /// The bytes after the tag, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

/// A VLAN tag (after its TPID) as values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VlanRepr {
    /// Priority code point, 0..=7.
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN identifier, 0..=4095.
    pub vid: u16,
    /// EtherType of what follows.
    pub ethertype: EtherType,
}

impl VlanRepr {
    /// Reads a checked tag.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the view is shorter than 4 bytes.
    pub fn parse<T: AsRef<[u8]>>(tag: &VlanHeader<T>) -> Result<Self, Error> {
        tag.check_len()?;
        Ok(VlanRepr { pcp: tag.pcp(), dei: tag.dei(), vid: tag.vid(), ethertype: tag.ethertype() })
    }

    /// Bytes [`emit`](Self::emit) writes: 4.
    pub const fn buffer_len(&self) -> usize {
        4
    }

    /// Writes the tag.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than 4 bytes;
    /// [`Error::ValueTooLarge`] when `pcp > 7` or `vid > 4095`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, tag: &mut VlanHeader<T>) -> Result<(), Error> {
        tag.check_len()?;
        if self.pcp > 7 || self.vid > 0x0fff {
            return Err(Error::ValueTooLarge);
        }
        tag.set_tci((u16::from(self.pcp) << 13) | (u16::from(self.dei) << 12) | self.vid);
        tag.set_ethertype(self.ethertype);
        Ok(())
    }
}

/// The layer-2 summary of a frame: the EtherType after any VLAN tags and where L3 starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct L2Info {
    /// EtherType of the L3 payload (never a VLAN TPID).
    pub ethertype: u16,
    /// Offset of the L3 header from the start of the frame (14 + 4 per tag).
    pub l3_offset: usize,
    /// Number of VLAN tags, outermost first in `tci`.
    pub tags: usize,
    /// The tags' TCIs; entries at `tags..` are zero.
    pub tci: [u16; MAX_VLAN_TAGS],
}

impl L2Info {
    /// The EtherType of the L3 payload.
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(self.ethertype)
    }

    /// VID of the outermost tag (the S-tag of a QinQ frame), if any.
    pub fn outer_vid(&self) -> Option<u16> {
        (self.tags > 0).then_some(self.tci[0] & 0x0fff)
    }

    /// VID of the innermost tag (the C-tag of a QinQ frame), if any.
    pub fn inner_vid(&self) -> Option<u16> {
        self.tags.checked_sub(1).and_then(|i| self.tci.get(i)).map(|t| t & 0x0fff)
    }
}

/// Walks the Ethernet header and any stack of VLAN tags (TPIDs 0x8100, 0x88a8, 0x9100 in any
/// order) and reports the L3 EtherType and offset.
///
/// # Errors
/// [`Error::Truncated`] when the frame ends inside the header or a tag;
/// [`Error::TooManyHeaders`] after [`MAX_VLAN_TAGS`] tags.
pub fn walk_vlan_tags(frame: &[u8]) -> Result<L2Info, Error> {
    need(frame.len(), 14)?;
    let mut info = L2Info { ethertype: be16(&frame[12..14]), l3_offset: 14, ..L2Info::default() };
    while EtherType::from(info.ethertype).is_vlan_tpid() {
        if info.tags == MAX_VLAN_TAGS {
            return Err(Error::TooManyHeaders);
        }
        let tag = frame.get(info.l3_offset..info.l3_offset + 4).ok_or(Error::Truncated)?;
        info.tci[info.tags] = be16(&tag[0..2]);
        info.ethertype = be16(&tag[2..4]);
        info.tags += 1;
        info.l3_offset += 4;
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::check_truncations;
    use crate::wire::EthernetFrame;

    #[rustfmt::skip]
    const QINQ: [u8; 26] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst broadcast
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // src
        0x88, 0xa8,                         // TPID 802.1ad (S-tag)
        0xa0, 0x64,                         // PCP 5, DEI 0, VID 100
        0x81, 0x00,                         // TPID 802.1Q (C-tag)
        0x30, 0xc8,                         // PCP 1, DEI 1, VID 200
        0x08, 0x00,                         // EtherType IPv4
        0x45, 0x00, 0x00, 0x14,             // start of an IPv4 header
    ];

    #[test]
    fn parse_qinq_views() {
        let eth = EthernetFrame::new_checked(&QINQ[..]).unwrap();
        assert_eq!(eth.ethertype(), EtherType::QinQ);
        let s = VlanHeader::new_checked(eth.payload()).unwrap();
        assert_eq!((s.pcp(), s.dei(), s.vid()), (5, false, 100));
        assert_eq!(s.ethertype(), EtherType::Vlan);
        let c = VlanHeader::new_checked(s.payload()).unwrap();
        assert_eq!((c.pcp(), c.dei(), c.vid()), (1, true, 200));
        assert_eq!(c.ethertype(), EtherType::Ipv4);
        assert_eq!(c.payload(), &QINQ[22..]);
    }

    #[test]
    fn walk_qinq() {
        let info = walk_vlan_tags(&QINQ).unwrap();
        assert_eq!(info.ethertype(), EtherType::Ipv4);
        assert_eq!(info.l3_offset, 22);
        assert_eq!(info.tags, 2);
        assert_eq!(info.outer_vid(), Some(100));
        assert_eq!(info.inner_vid(), Some(200));
    }

    #[test]
    fn walk_untagged_and_9100() {
        let mut f = QINQ;
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let info = walk_vlan_tags(&f).unwrap();
        assert_eq!((info.tags, info.l3_offset, info.outer_vid()), (0, 14, None));
        f[12..14].copy_from_slice(&[0x91, 0x00]);
        let info = walk_vlan_tags(&f).unwrap();
        assert_eq!((info.tags, info.l3_offset), (2, 22));
    }

    #[test]
    fn walk_bounded() {
        // Every tag says another tag follows.
        let mut f = vec![0u8; 14 + 4 * (MAX_VLAN_TAGS + 1)];
        f[12..14].copy_from_slice(&[0x81, 0x00]);
        for i in 0..=MAX_VLAN_TAGS {
            f[14 + 4 * i + 2..14 + 4 * i + 4].copy_from_slice(&[0x81, 0x00]);
        }
        assert_eq!(walk_vlan_tags(&f), Err(Error::TooManyHeaders));
    }

    #[test]
    fn walk_truncations() {
        // Anything up to the end of the C-tag is an error; after that the tags are complete.
        check_truncations(&QINQ, 22, walk_vlan_tags);
        check_truncations(&QINQ[14..], 4, |b| VlanHeader::new_checked(b).map(|_| ()));
    }

    #[test]
    fn repr_round_trip() {
        let tag = VlanHeader::new_checked(&QINQ[18..]).unwrap();
        let repr = VlanRepr::parse(&tag).unwrap();
        assert_eq!(repr, VlanRepr { pcp: 1, dei: true, vid: 200, ethertype: EtherType::Ipv4 });
        let mut out = [0u8; 4];
        repr.emit(&mut VlanHeader::new_unchecked(&mut out[..])).unwrap();
        assert_eq!(out, QINQ[18..22]);
        let bad = VlanRepr { vid: 4096, ..repr };
        assert_eq!(bad.emit(&mut VlanHeader::new_unchecked(&mut out[..])), Err(Error::ValueTooLarge));
    }

    #[test]
    fn setters() {
        let mut b = [0u8; 4];
        let mut t = VlanHeader::new_unchecked(&mut b[..]);
        t.set_vid(0xfff);
        t.set_pcp(7);
        t.set_dei(true);
        t.set_vid(42);
        assert_eq!((t.pcp(), t.dei(), t.vid()), (7, true, 42));
        t.set_dei(false);
        assert_eq!(t.tci(), 0xe000 | 42);
    }
}
