//! Exact-match flow table keyed by a 5-tuple (l3fwd's EM mode on DPDK's `rte_hash`).
//!
//! A bucketized cuckoo hash: buckets of 8 slots, each bucket a 16-byte line of 16-bit
//! signatures (0 = empty slot), with keys and values in parallel arrays indexed by slot.
//! A key lives in its primary bucket (`hash & mask`) or its alternative bucket
//! (`primary ^ f(signature)`, so either bucket gives the other). A lookup compares the
//! signatures of at most two buckets and then at most the keys whose signature matches.
//! An insert into two full buckets searches breadth-first for a short chain of moves to
//! an empty slot, then applies it from the empty end, so the table is consistent at every
//! step and a failed search changes nothing.
//!
//! The table does not hash keys on the burst path: the classifier computes one `u32` flow
//! hash per packet and [`EmTable::lookup_bulk`] takes those hashes beside the keys. The
//! table must therefore be built with the same hash function as the classifier
//! ([`EmTable::with_hasher`]); [`EmKey::flow_hash`] is the default.

use super::MISS;

/// A key of an [`EmTable`].
pub trait EmKey: Copy + Eq + Default + std::fmt::Debug {
    /// The default 32-bit flow hash of the key.
    fn flow_hash(&self) -> u32;
}

/// IPv4 5-tuple, addresses and ports in host byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Ipv4FiveTuple {
    /// Source address.
    pub src_ip: u32,
    /// Destination address.
    pub dst_ip: u32,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// IP protocol number.
    pub proto: u8,
}

/// IPv6 5-tuple, addresses in network byte order, ports in host byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Ipv6FiveTuple {
    /// Source address.
    pub src_ip: [u8; 16],
    /// Destination address.
    pub dst_ip: [u8; 16],
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// IP protocol number.
    pub proto: u8,
}

#[inline(always)]
fn mix64(mut x: u64) -> u64 {
    x ^= x >> 32;
    x = x.wrapping_mul(0xd6e8_feb8_6659_fd93);
    x ^= x >> 32;
    x = x.wrapping_mul(0xd6e8_feb8_6659_fd93);
    x ^ (x >> 32)
}

impl EmKey for Ipv4FiveTuple {
    fn flow_hash(&self) -> u32 {
        let a = u64::from(self.src_ip) << 32 | u64::from(self.dst_ip);
        let b = u64::from(self.src_port) << 24 | u64::from(self.dst_port) << 8 | u64::from(self.proto);
        mix64(a ^ mix64(b)) as u32
    }
}

impl EmKey for Ipv6FiveTuple {
    fn flow_hash(&self) -> u32 {
        let w = |b: &[u8; 16], i: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(x)
        };
        let b = u64::from(self.src_port) << 24 | u64::from(self.dst_port) << 8 | u64::from(self.proto);
        let mut h = mix64(b);
        for x in [w(&self.src_ip, 0), w(&self.src_ip, 8), w(&self.dst_ip, 0), w(&self.dst_ip, 8)] {
            h = mix64(h ^ x);
        }
        h as u32
    }
}

/// Capacity of an [`EmTable`], fixed at construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmConfig {
    /// Most flows the table holds (the table reserves about 10 % more slots so that the
    /// cuckoo insert finds room up to this count).
    pub capacity: u32,
}

impl Default for EmConfig {
    /// 65 536 flows.
    fn default() -> Self {
        EmConfig { capacity: 1 << 16 }
    }
}

/// Why an [`EmTable`] operation failed. The table is unchanged after any error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmError {
    /// The table holds `capacity` flows.
    #[error("flow table full ({0} flows); raise EmConfig::capacity")]
    Full(u32),
    /// Both candidate buckets and every short chain of moves from them are full.
    #[error(
        "no free slot reachable for this flow ({len} flows of {capacity}, buckets too \
         crowded); raise EmConfig::capacity"
    )]
    NoSlot {
        /// Flows in the table.
        len: u32,
        /// Configured capacity.
        capacity: u32,
    },
    /// Delete of a key that is not in the table.
    #[error("no such flow")]
    NotFound,
    /// A configuration value out of range.
    #[error("invalid EmConfig: {0}")]
    Config(&'static str),
}

const SLOTS: usize = 8;
/// Nodes a cuckoo-path search may visit.
const BFS_NODES: usize = 1024;

#[derive(Clone, Copy, Default)]
#[repr(C, align(16))]
struct Bucket {
    sig: [u16; SLOTS],
}

/// Exact-match table from a key `K` to a `u32` value (an output port). See the
/// [module docs](self).
///
/// # Examples
/// ```
/// use dataplane::lpm::{EmConfig, EmKey, EmTable, Ipv4FiveTuple, MISS};
/// let mut t = EmTable::new(EmConfig { capacity: 1024 }).unwrap();
/// let k = Ipv4FiveTuple { src_ip: 1, dst_ip: 2, src_port: 3, dst_port: 4, proto: 17 };
/// t.insert(k, 7).unwrap();
/// assert_eq!(t.lookup(&k), Some(7));
/// let other = Ipv4FiveTuple { proto: 6, ..k };
/// let mut out = [0; 2];
/// t.lookup_bulk(&[k.flow_hash(), other.flow_hash()], &[k, other], &mut out);
/// assert_eq!(out, [7, MISS]);
/// ```
pub struct EmTable<K: EmKey> {
    buckets: Box<[Bucket]>,
    /// Key and value of each slot, side by side (one cache miss for both).
    keys: Box<[(K, u32)]>,
    mask: u32,
    len: u32,
    capacity: u32,
    hasher: fn(&K) -> u32,
    /// Scratch for the cuckoo-path search (allocated once).
    bfs: Vec<(u32, u32, u8)>,
}

impl<K: EmKey> std::fmt::Debug for EmTable<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmTable")
            .field("len", &self.len)
            .field("capacity", &self.capacity)
            .field("buckets", &self.buckets.len())
            .finish()
    }
}

#[inline(always)]
fn sig_of(hash: u32) -> u16 {
    let s = (hash >> 16) as u16;
    if s == 0 {
        1
    } else {
        s
    }
}

impl<K: EmKey> EmTable<K> {
    /// An empty table hashing keys with [`EmKey::flow_hash`].
    ///
    /// # Errors
    /// [`EmError::Config`] if the capacity is 0 or above 2^30.
    pub fn new(config: EmConfig) -> Result<Self, EmError> {
        Self::with_hasher(config, K::flow_hash)
    }

    /// An empty table hashing keys with `hasher`, which must be the function whose values
    /// are passed to [`EmTable::lookup_bulk`] and [`EmTable::lookup_with_hash`].
    ///
    /// # Errors
    /// [`EmError::Config`] if the capacity is 0 or above 2^30.
    pub fn with_hasher(config: EmConfig, hasher: fn(&K) -> u32) -> Result<Self, EmError> {
        if config.capacity == 0 || config.capacity > 1 << 30 {
            return Err(EmError::Config("capacity must be in 1..=2^30"));
        }
        let want = (u64::from(config.capacity) * 10 / 9).div_ceil(SLOTS as u64).max(2);
        let nb = want.next_power_of_two() as usize;
        Ok(EmTable {
            buckets: super::alloc_zeroed(nb),
            keys: super::alloc_zeroed(nb * SLOTS),
            mask: (nb - 1) as u32,
            len: 0,
            capacity: config.capacity,
            hasher,
            bfs: Vec::with_capacity(BFS_NODES),
        })
    }

    /// Number of flows in the table.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True if the table holds no flow.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The configured capacity.
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// Bytes held by the table.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.buckets)
            + std::mem::size_of_val(&*self.keys)
            + self.bfs.capacity() * std::mem::size_of::<(u32, u32, u8)>()
    }

    /// The hash the table uses for `key`.
    #[inline]
    pub fn hash(&self, key: &K) -> u32 {
        (self.hasher)(key)
    }

    #[inline(always)]
    fn alt(&self, bucket: u32, sig: u16) -> u32 {
        // Any function of the signature alone makes alt(alt(b)) == b; the `| 1` keeps the
        // two buckets distinct.
        (bucket ^ ((u32::from(sig).wrapping_mul(0x9e37_79b1) >> 7) | 1)) & self.mask
    }

    /// The slot holding `key`, if any.
    #[inline(always)]
    fn find(&self, hash: u32, key: &K) -> Option<usize> {
        let sig = sig_of(hash);
        let b1 = hash & self.mask;
        for b in [b1, self.alt(b1, sig)] {
            let bucket = &self.buckets[b as usize];
            for (i, &s) in bucket.sig.iter().enumerate() {
                let slot = b as usize * SLOTS + i;
                if s == sig && self.keys[slot].0 == *key {
                    return Some(slot);
                }
            }
        }
        None
    }

    /// The value for `key`.
    #[inline]
    pub fn lookup(&self, key: &K) -> Option<u32> {
        self.lookup_with_hash(self.hash(key), key)
    }

    /// The value for `key` whose hash (by this table's hasher) is `hash`.
    #[inline]
    pub fn lookup_with_hash(&self, hash: u32, key: &K) -> Option<u32> {
        self.find(hash, key).map(|s| self.keys[s].1)
    }

    /// Looks up a burst: `out[i]` gets the value of `keys[i]` (whose hash is `hashes[i]`),
    /// or [`MISS`]. Handles the shortest of the three lengths and returns how many hit.
    /// Prefetches every primary bucket of the burst before comparing.
    pub fn lookup_bulk(&self, hashes: &[u32], keys: &[K], out: &mut [u32]) -> usize {
        let n = hashes.len().min(keys.len()).min(out.len());
        // Stage 1: every primary bucket of the burst.
        for &h in &hashes[..n] {
            crate::arch::prefetch(&self.buckets[(h & self.mask) as usize]);
        }
        // Stage 2: with the buckets (mostly) in cache, prefetch the key slot whose
        // signature matches, or the alternative bucket if none does.
        for &h in &hashes[..n] {
            let sig = sig_of(h);
            let b1 = h & self.mask;
            match self.buckets[b1 as usize].sig.iter().position(|&s| s == sig) {
                Some(i) => crate::arch::prefetch(&self.keys[b1 as usize * SLOTS + i]),
                None => crate::arch::prefetch(&self.buckets[self.alt(b1, sig) as usize]),
            }
        }
        // Stage 3: compare.
        let mut hits = 0;
        for i in 0..n {
            match self.find(hashes[i], &keys[i]) {
                Some(s) => {
                    out[i] = self.keys[s].1;
                    hits += 1;
                }
                None => out[i] = MISS,
            }
        }
        hits
    }

    /// Inserts `key → value`, or replaces the value if `key` is present (returning the old
    /// value).
    ///
    /// # Errors
    /// [`EmError::Full`] at capacity, [`EmError::NoSlot`] if no chain of moves frees a
    /// slot; the table is unchanged.
    pub fn insert(&mut self, key: K, value: u32) -> Result<Option<u32>, EmError> {
        let hash = self.hash(&key);
        if let Some(s) = self.find(hash, &key) {
            return Ok(Some(std::mem::replace(&mut self.keys[s].1, value)));
        }
        if self.len >= self.capacity {
            return Err(EmError::Full(self.capacity));
        }
        let sig = sig_of(hash);
        let b1 = hash & self.mask;
        let b2 = self.alt(b1, sig);
        for b in [b1, b2] {
            if let Some(i) = self.empty_slot(b) {
                self.put(b, i, sig, key, value);
                return Ok(None);
            }
        }
        // Breadth-first search for a chain of moves ending at an empty slot. A node is
        // (bucket, parent node, slot in the parent bucket whose occupant moves here).
        let mut bfs = std::mem::take(&mut self.bfs);
        bfs.clear();
        bfs.push((b1, u32::MAX, 0));
        bfs.push((b2, u32::MAX, 0));
        let mut head = 0;
        let mut result = Err(EmError::NoSlot { len: self.len, capacity: self.capacity });
        'search: while head < bfs.len() {
            let (b, _, _) = bfs[head];
            for s in 0..SLOTS {
                if bfs.len() >= BFS_NODES {
                    break 'search;
                }
                let nb = self.alt(b, self.buckets[b as usize].sig[s]);
                bfs.push((nb, head as u32, s as u8));
                if let Some(free) = self.empty_slot(nb) {
                    if let Some(root) = self.apply_path(&bfs, bfs.len() - 1, free) {
                        self.put(root.0, root.1, sig, key, value);
                        result = Ok(None);
                    }
                    break 'search;
                }
            }
            head += 1;
        }
        self.bfs = bfs;
        result
    }

    /// Moves occupants along the path ending at node `last` (whose bucket has the empty
    /// slot `free`), from the empty end back to a root. Returns the root bucket and the
    /// slot it freed, or `None` if the path turned out stale (a bucket repeated on it);
    /// every move done keeps each key in one of its two buckets, so the table stays
    /// consistent either way.
    fn apply_path(&mut self, bfs: &[(u32, u32, u8)], last: usize, mut free: usize) -> Option<(u32, usize)> {
        let mut cur = last;
        loop {
            let (b, parent, s) = bfs[cur];
            if parent == u32::MAX {
                return Some((b, free));
            }
            let (pb, _, _) = bfs[parent as usize];
            let from = pb as usize * SLOTS + s as usize;
            let sig = self.buckets[pb as usize].sig[s as usize];
            if sig == 0 || self.alt(pb, sig) != b || self.buckets[b as usize].sig[free] != 0 {
                return None;
            }
            let to = b as usize * SLOTS + free;
            self.buckets[b as usize].sig[free] = sig;
            self.keys[to] = self.keys[from];
            self.buckets[pb as usize].sig[s as usize] = 0;
            free = s as usize;
            cur = parent as usize;
        }
    }

    fn empty_slot(&self, b: u32) -> Option<usize> {
        self.buckets[b as usize].sig.iter().position(|&s| s == 0)
    }

    fn put(&mut self, b: u32, i: usize, sig: u16, key: K, value: u32) {
        let slot = b as usize * SLOTS + i;
        self.buckets[b as usize].sig[i] = sig;
        self.keys[slot] = (key, value);
        self.len += 1;
    }

    /// Removes `key`, returning its value.
    ///
    /// # Errors
    /// [`EmError::NotFound`] if the key is absent.
    pub fn delete(&mut self, key: &K) -> Result<u32, EmError> {
        let hash = self.hash(key);
        let slot = self.find(hash, key).ok_or(EmError::NotFound)?;
        self.buckets[slot / SLOTS].sig[slot % SLOTS] = 0;
        let (_, v) = std::mem::take(&mut self.keys[slot]);
        self.len -= 1;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn key(i: u32) -> Ipv4FiveTuple {
        Ipv4FiveTuple { src_ip: i, dst_ip: !i, src_port: i as u16, dst_port: 80, proto: 6 }
    }

    #[test]
    fn fills_to_capacity_then_reports_full() {
        let cap = 5000;
        let mut t = EmTable::new(EmConfig { capacity: cap }).unwrap();
        for i in 0..cap {
            assert_eq!(t.insert(key(i), i), Ok(None), "insert {i}");
        }
        let e = t.insert(key(cap), 0).unwrap_err();
        assert_eq!(e, EmError::Full(cap));
        assert!(e.to_string().contains("raise EmConfig::capacity"));
        for i in 0..cap {
            assert_eq!(t.lookup(&key(i)), Some(i));
        }
        assert_eq!(t.lookup(&key(cap)), None);
        assert_eq!(t.insert(key(3), 33), Ok(Some(3)));
        assert_eq!(t.delete(&key(3)), Ok(33));
        assert_eq!(t.delete(&key(3)), Err(EmError::NotFound));
        assert_eq!(t.len(), cap as usize - 1);
    }

    #[test]
    fn bad_hasher_collisions_still_correct() {
        // Every key in the same primary bucket: the cuckoo path and NoSlot are exercised.
        let mut t =
            EmTable::<Ipv4FiveTuple>::with_hasher(EmConfig { capacity: 100 }, |k| (k.src_ip % 3) << 16).unwrap();
        let mut model = HashMap::new();
        for i in 0..100 {
            match t.insert(key(i), i) {
                Ok(_) => {
                    model.insert(i, i);
                }
                Err(e) => assert!(matches!(e, EmError::NoSlot { .. }), "{e}"),
            }
        }
        assert!(model.len() >= 16);
        assert_eq!(t.len(), model.len());
        for i in 0..100 {
            assert_eq!(t.lookup(&key(i)), model.get(&i).copied());
        }
    }

    #[test]
    fn ipv6_keys_and_bulk() {
        let mut t = EmTable::new(EmConfig { capacity: 64 }).unwrap();
        let k = |i: u8| Ipv6FiveTuple { src_ip: [i; 16], dst_ip: [!i; 16], src_port: 1, dst_port: 2, proto: 17 };
        for i in 0..50 {
            t.insert(k(i), u32::from(i)).unwrap();
        }
        let keys: Vec<_> = (0..60).map(k).collect();
        let hashes: Vec<u32> = keys.iter().map(|x| t.hash(x)).collect();
        let mut out = vec![0; 60];
        assert_eq!(t.lookup_bulk(&hashes, &keys, &mut out), 50);
        for i in 0..60u32 {
            assert_eq!(out[i as usize], if i < 50 { i } else { MISS });
        }
    }
}
