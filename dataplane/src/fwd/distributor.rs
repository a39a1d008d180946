//! The pipeline's rx stage: packets spread over worker rings by flow hash.

use crate::buf::PacketBuf;
use crate::burst::Burst;
use crate::stage::{Forward, Tx};

/// The pipeline rx stage: spreads packets over worker rings by the flow hash the classifier
/// left in their metadata (RSS Toeplitz by default), keeping each flow on one worker (so its
/// order is kept). Ring `k` is tx port `first_ring + k`.
#[derive(Debug, Clone)]
pub struct Distributor {
    first_ring: u16,
    rings: u16,
}

impl Distributor {
    /// Spreads over `rings` ring ports numbered from `first_ring`.
    pub fn new(first_ring: u16, rings: u16) -> Self {
        Distributor { first_ring, rings: rings.max(1) }
    }
}

impl<B: PacketBuf> Forward<B> for Distributor {
    fn classify_level(&self) -> crate::classify::Level {
        crate::classify::Level::Full
    }
    #[inline]
    fn forward(&mut self, _rx_port: u16, pkts: &mut Burst<B>, tx: &mut Tx<B>) {
        let n = pkts.len();
        // The classifier's flow hash (Level::Full), or the NIC's RSS hash for a queue that
        // fills it.
        pkts.drain_front(n, |m| {
            let k = ((m.hash() as u64 * self.rings as u64) >> 32) as u16;
            tx.send(self.first_ring + k, m);
        });
    }
}
