//! IPv4 longest-prefix match, DIR-24-8 (the algorithm of DPDK's `rte_lpm`).
//!
//! `tbl24` has one 4-byte entry per /24 (2^24 entries, 64 MiB); a route of depth ≤ 24 is
//! expanded over the `2^(24-depth)` entries it covers. A /24 that holds a longer route
//! points instead to a *tbl8 group* of 256 entries, one per last byte. A lookup is one
//! load, or two for addresses under a route longer than /24.
//!
//! Entry layout (4 bytes, as `rte_lpm`): every entry the lookup reads is already its
//! answer, so a burst lookup is `rte_lpm_lookup_bulk`'s loop (load the tbl24 entry; if it
//! points to a group, load the tbl8 entry; store it) with nothing to convert:
//!
//! | bits | route entry | group pointer (tbl24 only) | empty |
//! | --- | --- | --- | --- |
//! | 31 | 0 | 0 | 1 |
//! | 30 | 0 | 1 ("extended") | 1 |
//! | 24–29 | 0 | 0 | all ones |
//! | 0–23 | next hop | group index | all ones |
//!
//! A route entry is its next hop and the empty entry is all ones, which is [`MISS`];
//! `e as i32 >= 1 << 30` tests "extended".
//!
//! The depth of the route that wrote each entry, which only `add` and `delete` need,
//! lives in parallel byte arrays (one byte per tbl24 entry, 16 MiB, and 256 per group),
//! as in [`super::Lpm6`]: keeping it out of the entries means the lookup never has to mask
//! it off, which matters when the lookups wait on DRAM (every instruction that waits on a
//! load holds a scheduler slot that another key's load could use).
//!
//! Beside the tables, a rules map (prefix, depth) → next hop, as `rte_lpm` keeps, lets a
//! delete re-expose the next shorter covering route, and a group whose 256 entries become
//! equal (same next hop and same depth) is folded back into its tbl24 entry and returned
//! to the free list.
//!
//! All four arrays are allocated once, at construction, each in its own 2 MiB-aligned
//! mapping advised for transparent huge pages (`HugeTable` in `lpm/mod.rs`), so that random
//! lookups over the 64 MiB tbl24 need one TLB entry per 2 MiB rather than one per 4 KiB.
use super::{mask4, BulkImpl, FastMap, HugeTable, Plain, MAX_NEXT_HOP, MISS};
use std::net::Ipv4Addr;

/// The entry of an address no route covers: all ones (equal to [`MISS`]).
pub(crate) const EMPTY: u32 = u32::MAX;
/// Set (with bit 31 clear) in a tbl24 entry that points to a tbl8 group.
pub(crate) const EXT: u32 = 1 << 30;
pub(crate) const NH_MASK: u32 = 0x00FF_FFFF;
/// Depth code of an empty entry in the depth arrays; a route of depth `d` writes `d + 1`.
const NO_ROUTE: u8 = 0;
const TBL24_LEN: usize = 1 << 24;
/// Entries per tbl8 group.
const GROUP: usize = 256;
/// The AVX2 gather takes signed 32-bit indices: keep every tbl8 index below 2^31.
pub const MAX_TBL8_GROUPS: u32 = 1 << 22;

/// Capacity of an [`Lpm4`], fixed at construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lpm4Config {
    /// Most routes the table holds.
    pub max_rules: u32,
    /// Number of 256-entry tbl8 groups (1 KiB of entries plus 256 depth bytes each): one
    /// is needed per /24 that holds a route longer than /24. At most [`MAX_TBL8_GROUPS`].
    pub tbl8_groups: u32,
}

impl Default for Lpm4Config {
    /// 65 536 rules and 4096 tbl8 groups (85 MiB of tables: 68 MiB of entries, 17 MiB of
    /// depth bytes).
    fn default() -> Self {
        Lpm4Config { max_rules: 1 << 16, tbl8_groups: 1 << 12 }
    }
}

/// Why an [`Lpm4`] operation failed. The table is unchanged after any error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Lpm4Error {
    /// Prefix length above 32.
    #[error("prefix length {0} > 32")]
    InvalidDepth(u8),
    /// Next hop does not fit in 24 bits.
    #[error("next hop {0} > {max} (next hops are 24-bit)", max = MAX_NEXT_HOP)]
    NextHopTooLarge(u32),
    /// The rules table is full.
    #[error("rules table full ({0} rules); raise Lpm4Config::max_rules")]
    RulesFull(u32),
    /// No tbl8 group is free for a route longer than /24.
    #[error("tbl8 groups exhausted ({in_use} in use of {total}); raise Lpm4Config::tbl8_groups")]
    Tbl8Exhausted {
        /// Groups in use.
        in_use: u32,
        /// Groups configured.
        total: u32,
    },
    /// Delete of a route that is not in the table.
    #[error("no route {}/{depth}", Ipv4Addr::from(*prefix))]
    NotFound {
        /// The prefix (masked to its length).
        prefix: u32,
        /// The prefix length.
        depth: u8,
    },
    /// A configuration value out of range.
    #[error("invalid Lpm4Config: {0}")]
    Config(&'static str),
    /// The tables' memory could not be mapped (the OS error number; `ENOMEM` when the
    /// address space or the overcommit limit is exhausted). Lower the tbl8 group count or
    /// free memory.
    #[error("cannot map {bytes} bytes for the Lpm4 tables (os error {errno})")]
    Memory {
        /// Size of the mapping that failed.
        bytes: usize,
        /// The OS error number.
        errno: i32,
    },
}

/// IPv4 longest-prefix-match table (DIR-24-8). See the [module docs](self).
///
/// # Examples
/// ```
/// use dataplane::lpm::{Lpm4, Lpm4Config};
/// let mut t = Lpm4::new(Lpm4Config::default()).unwrap();
/// t.add(u32::from_be_bytes([10, 0, 0, 0]), 8, 1).unwrap();
/// t.add(u32::from_be_bytes([10, 1, 2, 0]), 25, 2).unwrap();
/// assert_eq!(t.lookup(u32::from_be_bytes([10, 1, 2, 3])), Some(2));
/// assert_eq!(t.lookup(u32::from_be_bytes([10, 1, 2, 200])), Some(1));
/// t.delete(u32::from_be_bytes([10, 1, 2, 0]), 25).unwrap();
/// assert_eq!(t.lookup(u32::from_be_bytes([10, 1, 2, 3])), Some(1));
/// assert_eq!(t.lookup(u32::from_be_bytes([11, 0, 0, 1])), None);
/// ```
pub struct Lpm4 {
    /// `TBL24_LEN` entries (see [`Lpm4::t24`]).
    tbl24: HugeTable<u32>,
    tbl8: HugeTable<u32>,
    /// Depth code (`NO_ROUTE`, or depth + 1) of the route behind each non-extended tbl24
    /// entry; read and written only by add and delete.
    depth24: HugeTable<u8>,
    /// Depth code of each tbl8 entry, as `depth24`.
    depth8: HugeTable<u8>,
    free_groups: Vec<u32>,
    rules: FastMap<(u32, u8), u32>,
    depth_count: [u32; 33],
    config: Lpm4Config,
    bulk: BulkImpl,
    /// Entries visited by `write`: the tbl24 entries of a route ≤ /24 and 256 per group
    /// under them, 256 per group taken, the entries of a longer route in an existing group.
    /// The tests bound the work of `from_routes` with it.
    #[cfg(test)]
    work: u64,
}

impl std::fmt::Debug for Lpm4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lpm4")
            .field("config", &self.config)
            .field("rules", &self.rules.len())
            .field("tbl8_groups_in_use", &self.tbl8_groups_in_use())
            .field("bulk", &self.bulk)
            .finish()
    }
}

/// True if `e` is a tbl24 entry pointing to a tbl8 group (bit 31 clear, bit 30 set).
#[inline(always)]
pub(crate) fn is_ext(e: u32) -> bool {
    e as i32 >= EXT as i32
}

/// [`is_ext`] written as a mask and compare of the two flag bits: the same truth table, but
/// the form the burst loop measured fastest with (see [`Lpm4::lookup_bulk_scalar`]).
#[inline(always)]
fn is_ext_masked(e: u32) -> bool {
    e & 0xC000_0000 == EXT
}

/// The tbl8 index for `ip` under the extended tbl24 entry `e`.
#[inline(always)]
fn group_index(e: u32, ip: u32) -> usize {
    ((e & NH_MASK) as usize) << 8 | (ip & 0xff) as usize
}

/// The depth code a route of depth `d` stores in the depth arrays (`NO_ROUTE` is 0).
#[inline(always)]
fn code(d: u8) -> u8 {
    d + 1
}

/// One of the tables, mapped once (see [`HugeTable`]).
fn table<T: Plain>(len: usize, value: T) -> Result<HugeTable<T>, Lpm4Error> {
    HugeTable::filled(len, value).map_err(|e| Lpm4Error::Memory {
        bytes: len.saturating_mul(std::mem::size_of::<T>()),
        errno: e.raw_os_error().unwrap_or(libc::ENOMEM),
    })
}

impl Lpm4 {
    /// Allocates an empty table once: 64 MiB of tbl24 entries and 16 MiB of their depth
    /// bytes, plus 1 KiB of entries and 256 depth bytes per tbl8 group.
    ///
    /// # Errors
    /// [`Lpm4Error::Config`] if `max_rules` is 0 or `tbl8_groups` exceeds
    /// [`MAX_TBL8_GROUPS`].
    /// [`Lpm4Error::Memory`] if the tables cannot be mapped.
    pub fn new(config: Lpm4Config) -> Result<Self, Lpm4Error> {
        if config.max_rules == 0 {
            return Err(Lpm4Error::Config("max_rules must be at least 1"));
        }
        if config.tbl8_groups > MAX_TBL8_GROUPS {
            return Err(Lpm4Error::Config("tbl8_groups above MAX_TBL8_GROUPS (2^22)"));
        }
        let ngroups = config.tbl8_groups as usize;
        let mut rules = FastMap::default();
        // The map grows with the routes; a million routes take about 24 MiB.
        rules.reserve((config.max_rules as usize).min(1 << 16));
        Ok(Lpm4 {
            tbl24: table(TBL24_LEN, EMPTY)?,
            // Zero, not EMPTY: a group is written in full when it is taken, so its initial
            // contents never matter, and zero pages are committed only when first written.
            tbl8: table(ngroups.max(1) * GROUP, 0)?,
            depth24: table(TBL24_LEN, NO_ROUTE)?,
            depth8: table(ngroups.max(1) * GROUP, NO_ROUTE)?,
            free_groups: (0..config.tbl8_groups).rev().collect(),
            rules,
            depth_count: [0; 33],
            config,
            bulk: BulkImpl::detect(),
            #[cfg(test)]
            work: 0,
        })
    }

    /// Builds a table holding `routes` (later duplicates replace earlier next hops).
    ///
    /// The result is the table that adding the routes one by one, in order, would give
    /// (same lookups, same rules, same number of tbl8 groups in use), and so is every error,
    /// but the work does not depend on the order of the routes or on their duplicates.
    /// Adding one by one costs each route ≤ /24 its whole span again, and 256 entries more
    /// for every group under it: a /8 rewrites 65 536 tbl24 entries each time it is added,
    /// plus the groups of all the longer routes below it, which made two million routes of
    /// random lengths take a minute. Here the routes are first checked and deduplicated in
    /// input order (keeping the last next hop of each prefix), then written once each from
    /// the shortest to the longest, so that no entry is written by a route shorter than
    /// the one already there and no route ≤ /24 ever meets a group. The work is at most the
    /// span of each distinct route ≤ /24 (at most 2^24 entries per prefix length), 256
    /// entries per group and a sort of the distinct routes.
    ///
    /// # Errors
    /// The index of the first route that could not be added, and why: the error adding
    /// the routes one by one would have given.
    pub fn from_routes(config: Lpm4Config, routes: &[super::Route4]) -> Result<Self, (usize, Lpm4Error)> {
        let mut t = Lpm4::new(config).map_err(|e| (0, e))?;
        // Pass 1, in input order: the checks of `add`, the rules map, and which /24s get a
        // group (one bit per /24: 2 MiB).
        let mut has_group = vec![0u64; TBL24_LEN / 64];
        let mut groups = 0u32;
        for (i, r) in routes.iter().enumerate() {
            let depth = r.depth;
            if depth > 32 {
                return Err((i, Lpm4Error::InvalidDepth(depth)));
            }
            if r.next_hop > MAX_NEXT_HOP {
                return Err((i, Lpm4Error::NextHopTooLarge(r.next_hop)));
            }
            let ip = u32::from(r.prefix) & mask4(depth);
            let len = t.rules.len();
            match t.rules.entry((ip, depth)) {
                std::collections::hash_map::Entry::Occupied(mut o) => {
                    // Its /24 already has its group, if it needs one.
                    *o.get_mut() = r.next_hop;
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    if len >= config.max_rules as usize {
                        return Err((i, Lpm4Error::RulesFull(config.max_rules)));
                    }
                    if depth > 24 {
                        let (w, bit) = ((ip >> 8) as usize / 64, 1u64 << ((ip >> 8) % 64));
                        if has_group[w] & bit == 0 {
                            if groups == config.tbl8_groups {
                                return Err((
                                    i,
                                    Lpm4Error::Tbl8Exhausted { in_use: groups, total: config.tbl8_groups },
                                ));
                            }
                            has_group[w] |= bit;
                            groups += 1;
                        }
                    }
                    v.insert(r.next_hop);
                }
            }
        }
        drop(has_group);
        // Pass 2: each distinct route written once, shortest first.
        let mut sorted: Vec<(u8, u32, u32)> = t.rules.iter().map(|(&(ip, d), &nh)| (d, ip, nh)).collect();
        sorted.sort_unstable();
        for &(d, ip, nh) in &sorted {
            t.depth_count[d as usize] += 1;
            if !t.write(ip, d, nh) {
                // Pass 1 counted the groups; a missing one would be a bug, reported as the
                // error it would be rather than as a panic.
                debug_assert!(false, "tbl8 groups counted in pass 1");
                let total = config.tbl8_groups;
                return Err((routes.len().saturating_sub(1), Lpm4Error::Tbl8Exhausted { in_use: total, total }));
            }
        }
        Ok(t)
    }

    /// tbl24 as an array, so that indexing it with `ip >> 8` needs no bounds check.
    #[inline(always)]
    fn t24(&self) -> &[u32; TBL24_LEN] {
        debug_assert_eq!(self.tbl24.len(), TBL24_LEN);
        // SAFETY: tbl24 is allocated with exactly TBL24_LEN entries in `new` and never
        // resized; an array reference to the same elements has the same layout.
        unsafe { &*(self.tbl24.as_ptr() as *const [u32; TBL24_LEN]) }
    }

    /// The configuration the table was built with.
    pub fn config(&self) -> Lpm4Config {
        self.config
    }

    /// Number of routes in the table.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True if the table holds no route.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Number of tbl8 groups in use.
    pub fn tbl8_groups_in_use(&self) -> u32 {
        self.config.tbl8_groups - self.free_groups.len() as u32
    }

    /// Bytes held by the table: tbl24 and tbl8 entries, their depth bytes, the free list
    /// and the rules map.
    pub fn memory_bytes(&self) -> usize {
        let rule_entry = std::mem::size_of::<((u32, u8), u32)>() + 1;
        std::mem::size_of_val(&*self.tbl24)
            + std::mem::size_of_val(&*self.tbl8)
            + self.depth24.len()
            + self.depth8.len()
            + self.free_groups.capacity() * 4
            + self.rules.capacity() * rule_entry
    }

    /// The burst-lookup implementation in use.
    pub fn bulk_impl(&self) -> BulkImpl {
        self.bulk
    }

    /// Chooses the burst-lookup implementation (for benchmarks and equivalence tests).
    /// Returns false, changing nothing, if this CPU cannot run `imp`.
    pub fn set_bulk_impl(&mut self, imp: BulkImpl) -> bool {
        if imp.is_supported() {
            self.bulk = imp;
        }
        self.bulk == imp
    }

    /// The next hop of the route `prefix/depth` if it is in the table (exact match).
    pub fn get(&self, prefix: u32, depth: u8) -> Option<u32> {
        if depth > 32 {
            return None;
        }
        self.rules.get(&(prefix & mask4(depth), depth)).copied()
    }

    /// Adds the route `prefix/depth → next_hop` (host bits of `prefix` are ignored), or
    /// changes its next hop if it is already there.
    ///
    /// # Errors
    /// Bad depth or next hop, a full rules table, or no free tbl8 group; the table is
    /// unchanged.
    pub fn add(&mut self, prefix: u32, depth: u8, next_hop: u32) -> Result<(), Lpm4Error> {
        if depth > 32 {
            return Err(Lpm4Error::InvalidDepth(depth));
        }
        if next_hop > MAX_NEXT_HOP {
            return Err(Lpm4Error::NextHopTooLarge(next_hop));
        }
        let ip = prefix & mask4(depth);
        let exists = self.rules.contains_key(&(ip, depth));
        if !exists && self.rules.len() >= self.config.max_rules as usize {
            return Err(Lpm4Error::RulesFull(self.config.max_rules));
        }
        // A route longer than /24 under a /24 without a group needs a free group (`write`
        // takes it).
        if depth > 24 && !is_ext(self.tbl24[(ip >> 8) as usize]) && self.free_groups.is_empty() {
            return Err(Lpm4Error::Tbl8Exhausted { in_use: self.tbl8_groups_in_use(), total: self.config.tbl8_groups });
        }
        // Every failure is checked above: from here on the add cannot fail.
        self.rules.insert((ip, depth), next_hop);
        if !exists {
            self.depth_count[depth as usize] += 1;
        }
        let written = self.write(ip, depth, next_hop);
        debug_assert!(written, "a free group was checked for above");
        Ok(())
    }

    /// Writes the route `ip/depth → next_hop` (`ip` masked) into the entries it covers
    /// that hold no route or one no longer than it, taking a free group if it is longer
    /// than /24 and its /24 has none. The rules map is not touched. Returns false, writing
    /// nothing, if that group is needed and none is free.
    fn write(&mut self, ip: u32, depth: u8, next_hop: u32) -> bool {
        // An entry may be overwritten by a route no shorter than the one that wrote it
        // (equal: the same route, getting a new next hop); empty entries have code 0.
        let c = code(depth);
        if depth <= 24 {
            let start = (ip >> 8) as usize;
            let n = 1usize << (24 - depth);
            #[cfg(test)]
            {
                self.work += n as u64;
            }
            for i in start..start + n {
                let e = self.tbl24[i];
                if !is_ext(e) {
                    if self.depth24[i] <= c {
                        self.tbl24[i] = next_hop;
                        self.depth24[i] = c;
                    }
                } else {
                    #[cfg(test)]
                    {
                        self.work += GROUP as u64;
                    }
                    let base = (e & NH_MASK) as usize * GROUP;
                    let ents = &mut self.tbl8[base..base + GROUP];
                    for (t, d) in ents.iter_mut().zip(&mut self.depth8[base..base + GROUP]) {
                        if *d <= c {
                            *t = next_hop;
                            *d = c;
                        }
                    }
                }
            }
        } else {
            let i = (ip >> 8) as usize;
            let lo = (ip & 0xff) as usize;
            let n = 1usize << (32 - depth);
            let e = self.tbl24[i];
            if !is_ext(e) {
                let Some(g) = self.free_groups.pop() else {
                    return false;
                };
                #[cfg(test)]
                {
                    self.work += GROUP as u64;
                }
                let base = g as usize * GROUP;
                // The group inherits the /24's current route (or emptiness).
                self.tbl8[base..base + GROUP].fill(e);
                self.depth8[base..base + GROUP].fill(self.depth24[i]);
                self.tbl8[base + lo..base + lo + n].fill(next_hop);
                self.depth8[base + lo..base + lo + n].fill(c);
                self.tbl24[i] = g | EXT;
                self.depth24[i] = NO_ROUTE;
            } else {
                #[cfg(test)]
                {
                    self.work += n as u64;
                }
                let base = (e & NH_MASK) as usize * GROUP;
                let ents = &mut self.tbl8[base + lo..base + lo + n];
                for (t, d) in ents.iter_mut().zip(&mut self.depth8[base + lo..base + lo + n]) {
                    if *d <= c {
                        *t = next_hop;
                        *d = c;
                    }
                }
            }
        }
        true
    }

    /// The longest route strictly shorter than `depth` that covers `ip`, as a table entry
    /// and its depth code (`(EMPTY, NO_ROUTE)` if none).
    fn cover_entry(&self, ip: u32, depth: u8) -> (u32, u8) {
        for d in (0..depth).rev() {
            if self.depth_count[d as usize] == 0 {
                continue;
            }
            if let Some(&nh) = self.rules.get(&(ip & mask4(d), d)) {
                return (nh, code(d));
            }
        }
        (EMPTY, NO_ROUTE)
    }

    /// Deletes the route `prefix/depth`; addresses it covered fall back to the next
    /// shorter covering route, if any. Returns the deleted route's next hop.
    ///
    /// # Errors
    /// [`Lpm4Error::NotFound`] (or [`Lpm4Error::InvalidDepth`]); the table is unchanged.
    pub fn delete(&mut self, prefix: u32, depth: u8) -> Result<u32, Lpm4Error> {
        if depth > 32 {
            return Err(Lpm4Error::InvalidDepth(depth));
        }
        let ip = prefix & mask4(depth);
        let Some(old) = self.rules.remove(&(ip, depth)) else {
            return Err(Lpm4Error::NotFound { prefix: ip, depth });
        };
        self.depth_count[depth as usize] -= 1;
        let (repl, repl_code) = self.cover_entry(ip, depth);
        // The entries this route wrote are those with its depth code.
        let c = code(depth);
        if depth <= 24 {
            let start = (ip >> 8) as usize;
            let n = 1usize << (24 - depth);
            for i in start..start + n {
                let e = self.tbl24[i];
                if !is_ext(e) {
                    if self.depth24[i] == c {
                        self.tbl24[i] = repl;
                        self.depth24[i] = repl_code;
                    }
                } else {
                    let base = (e & NH_MASK) as usize * GROUP;
                    let ents = &mut self.tbl8[base..base + GROUP];
                    for (t, d) in ents.iter_mut().zip(&mut self.depth8[base..base + GROUP]) {
                        if *d == c {
                            *t = repl;
                            *d = repl_code;
                        }
                    }
                }
            }
        } else {
            let i = (ip >> 8) as usize;
            let lo = (ip & 0xff) as usize;
            let n = 1usize << (32 - depth);
            let e = self.tbl24[i];
            debug_assert!(is_ext(e), "a route longer than /24 lives in a tbl8 group");
            if is_ext(e) {
                let g = e & NH_MASK;
                let base = g as usize * GROUP;
                let ents = &mut self.tbl8[base + lo..base + lo + n];
                for (t, d) in ents.iter_mut().zip(&mut self.depth8[base + lo..base + lo + n]) {
                    if *d == c {
                        *t = repl;
                        *d = repl_code;
                    }
                }
                // Fold the group back if all its entries now come from one route ≤ /24 (or
                // none): same next hop and same depth everywhere.
                let grp = &self.tbl8[base..base + GROUP];
                let dgrp = &self.depth8[base..base + GROUP];
                let (first, first_code) = (grp[0], dgrp[0]);
                if first_code <= code(24) && grp.iter().all(|&t| t == first) && dgrp.iter().all(|&d| d == first_code) {
                    self.tbl24[i] = first;
                    self.depth24[i] = first_code;
                    self.free_groups.push(g);
                }
            }
        }
        Ok(old)
    }

    /// Removes every route (keeps the allocation).
    pub fn clear(&mut self) {
        self.tbl24.fill(EMPTY);
        self.tbl8.fill(EMPTY);
        self.depth24.fill(NO_ROUTE);
        self.depth8.fill(NO_ROUTE);
        self.rules.clear();
        self.depth_count = [0; 33];
        self.free_groups.clear();
        self.free_groups.extend((0..self.config.tbl8_groups).rev());
    }

    /// The next hop for `ip` (host byte order), or `None` if no route covers it.
    #[inline(always)]
    pub fn lookup(&self, ip: u32) -> Option<u32> {
        let e = self.lookup_raw(ip);
        if e != EMPTY {
            Some(e)
        } else {
            None
        }
    }

    /// The resolved entry for `ip`: its next hop, or [`EMPTY`] (= [`MISS`]).
    #[inline(always)]
    fn lookup_raw(&self, ip: u32) -> u32 {
        let t24 = self.t24();
        // A branch, not a select: the CPU predicts "not extended" and goes on issuing the
        // loads of the following lookups, where a branch-free form makes every lookup wait
        // for its tbl24 load (figures: benches/LPM_RESULTS.md).
        let e = t24[(ip >> 8) as usize];
        if is_ext(e) {
            let i = group_index(e, ip);
            // Groups referenced from tbl24 are always allocated, so the index is in range.
            self.tbl8.get(i).copied().unwrap_or(EMPTY)
        } else {
            e
        }
    }

    /// Looks up a burst: `next_hops[i]` gets the next hop of `ips[i]`, or [`MISS`].
    /// Handles `min(ips.len(), next_hops.len())` addresses and returns how many hit.
    /// Uses the implementation of [`Lpm4::bulk_impl`] (AVX2 gathers, NEON or scalar).
    #[inline]
    pub fn lookup_bulk(&self, ips: &[u32], next_hops: &mut [u32]) -> usize {
        let n = ips.len().min(next_hops.len());
        let (ips, out) = (&ips[..n], &mut next_hops[..n]);
        match self.bulk {
            #[cfg(target_arch = "x86_64")]
            BulkImpl::Avx2 => {
                // SAFETY: `bulk` is Avx2 only if the CPU has AVX2 (checked by
                // set_bulk_impl()); the table invariants hold (every EXT entry names an
                // allocated group), and both slices have length n.
                unsafe { super::x86::lpm4_bulk_avx2(&self.tbl24[..], &self.tbl8, ips, out) }
            }
            #[cfg(target_arch = "aarch64")]
            BulkImpl::Neon => {
                // SAFETY: NEON is part of the aarch64 baseline.
                unsafe { super::neon::lpm4_bulk_neon(&self.tbl24[..], &self.tbl8, ips, out) }
            }
            _ => self.lookup_bulk_scalar(ips, out),
        }
    }

    /// Starts loading the tbl24 entries of `ips` into the cache, and returns at once.
    ///
    /// For software pipelining across bursts: a caller that has the next burst's addresses
    /// (e.g. the following rx burst, already classified) calls this on them before
    /// [`Lpm4::lookup_bulk`] on the current burst, so that when every key misses the cache
    /// (DRAM-bound tables) the next burst's misses overlap the current burst's work. It
    /// changes no result; a burst whose lines are already cached pays one prefetch
    /// instruction per address.
    #[inline]
    pub fn prefetch_bulk(&self, ips: &[u32]) {
        let t24 = self.t24();
        for &ip in ips {
            crate::arch::prefetch(&t24[(ip >> 8) as usize]);
        }
    }

    /// The portable burst lookup (same contract as [`Lpm4::lookup_bulk`]).
    ///
    /// Entries are already the answer, so the loop is `rte_lpm_lookup_bulk`'s: load the
    /// tbl24 entry; if it points to a group, load the tbl8 entry; store. One address per
    /// iteration, with "extended" tested as a mask and compare of the two flag bits: of the
    /// variants measured side by side on the same tables (unrolled, two-pass, prefetching,
    /// branch-free; figures in `benches/LPM_RESULTS.md`) it is the fastest while the keys'
    /// tbl24 lines stay in cache and close to the best when they do not. The hit count is taken from the output after the loop, so a
    /// caller that ignores it (as l3fwd does) does not pay for it.
    pub fn lookup_bulk_scalar(&self, ips: &[u32], next_hops: &mut [u32]) -> usize {
        let n = ips.len().min(next_hops.len());
        let (ips, out) = (&ips[..n], &mut next_hops[..n]);
        let t24 = self.t24();
        for (o, &ip) in out.iter_mut().zip(ips) {
            *o = self.resolve_in(t24, ip);
        }
        out.iter().filter(|&&h| h != MISS).count()
    }

    /// Four addresses at once, as `rte_lpm_lookupx4`: each one's next hop or [`MISS`]. The
    /// lookup of a four-packet step: four independent tbl24 loads, without the burst
    /// lookup's implementation dispatch and loop.
    #[inline(always)]
    pub fn lookup_x4(&self, ips: [u32; 4]) -> [u32; 4] {
        let t24 = self.t24();
        [
            self.resolve_in(t24, ips[0]),
            self.resolve_in(t24, ips[1]),
            self.resolve_in(t24, ips[2]),
            self.resolve_in(t24, ips[3]),
        ]
    }

    /// One address through `t24` (this table's [`Lpm4::t24`]): the tbl24 entry, or the tbl8
    /// entry it points to.
    #[inline(always)]
    fn resolve_in(&self, t24: &[u32; TBL24_LEN], ip: u32) -> u32 {
        let e = t24[(ip >> 8) as usize];
        if is_ext_masked(e) {
            self.tbl8.get(group_index(e, ip)).copied().unwrap_or(EMPTY)
        } else {
            e
        }
    }
}

/// Resolves one address from raw tables to its next hop or [`MISS`]; shared by the SIMD
/// files for their tails.
#[inline(always)]
pub(crate) fn resolve(tbl24: &[u32], tbl8: &[u32], ip: u32) -> u32 {
    let e = tbl24.get((ip >> 8) as usize).copied().unwrap_or(EMPTY);
    if is_ext(e) {
        tbl8.get(group_index(e, ip)).copied().unwrap_or(EMPTY)
    } else {
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(a: u8, b: u8, c: u8, d: u8) -> u32 {
        u32::from_be_bytes([a, b, c, d])
    }

    fn small() -> Lpm4 {
        Lpm4::new(Lpm4Config { max_rules: 64, tbl8_groups: 4 }).unwrap()
    }

    #[test]
    fn empty_misses() {
        let t = small();
        assert_eq!(t.lookup(0), None);
        assert_eq!(t.lookup(u32::MAX), None);
        let mut out = [0; 3];
        assert_eq!(t.lookup_bulk(&[1, 2, 3], &mut out), 0);
        assert_eq!(out, [MISS; 3]);
    }

    #[test]
    fn default_route_and_host_route() {
        let mut t = small();
        t.add(0, 0, 7).unwrap();
        t.add(ip(1, 2, 3, 4), 32, 9).unwrap();
        assert_eq!(t.lookup(ip(1, 2, 3, 4)), Some(9));
        assert_eq!(t.lookup(ip(1, 2, 3, 5)), Some(7));
        assert_eq!(t.lookup(u32::MAX), Some(7));
        assert_eq!(t.delete(0, 0), Ok(7));
        assert_eq!(t.lookup(ip(1, 2, 3, 5)), None);
        assert_eq!(t.lookup(ip(1, 2, 3, 4)), Some(9));
        assert_eq!(t.delete(ip(1, 2, 3, 4), 32), Ok(9));
        assert_eq!(t.tbl8_groups_in_use(), 0, "group folded back");
        assert!(t.is_empty());
    }

    #[test]
    fn delete_re_exposes_shorter_prefix() {
        let mut t = small();
        t.add(ip(10, 0, 0, 0), 8, 1).unwrap();
        t.add(ip(10, 1, 0, 0), 16, 2).unwrap();
        t.add(ip(10, 1, 1, 0), 24, 3).unwrap();
        t.add(ip(10, 1, 1, 128), 25, 4).unwrap();
        assert_eq!(t.lookup(ip(10, 1, 1, 200)), Some(4));
        t.delete(ip(10, 1, 1, 0), 24).unwrap();
        assert_eq!(t.lookup(ip(10, 1, 1, 1)), Some(2));
        assert_eq!(t.lookup(ip(10, 1, 1, 200)), Some(4));
        t.delete(ip(10, 1, 0, 0), 16).unwrap();
        assert_eq!(t.lookup(ip(10, 1, 1, 1)), Some(1));
        t.delete(ip(10, 1, 1, 128), 25).unwrap();
        assert_eq!(t.lookup(ip(10, 1, 1, 200)), Some(1));
        assert_eq!(t.tbl8_groups_in_use(), 0);
    }

    #[test]
    fn same_next_hop_at_different_depths_is_not_folded() {
        let mut t = small();
        t.add(ip(10, 1, 1, 0), 24, 5).unwrap();
        t.add(ip(10, 1, 1, 0), 25, 5).unwrap();
        t.add(ip(10, 1, 1, 128), 26, 7).unwrap();
        t.delete(ip(10, 1, 1, 128), 26).unwrap();
        // Every entry of the group now says 5, but the lower half is the /25's: no fold.
        assert_eq!(t.tbl8_groups_in_use(), 1);
        assert_eq!(t.lookup(ip(10, 1, 1, 200)), Some(5));
        t.delete(ip(10, 1, 1, 0), 24).unwrap();
        assert_eq!(t.lookup(ip(10, 1, 1, 1)), Some(5));
        assert_eq!(t.lookup(ip(10, 1, 1, 200)), None);
        t.delete(ip(10, 1, 1, 0), 25).unwrap();
        assert_eq!(t.lookup(ip(10, 1, 1, 1)), None);
        assert_eq!(t.tbl8_groups_in_use(), 0, "empty group folded back");
        assert!(t.is_empty());
    }

    #[test]
    fn memory_counts_depth_bytes() {
        let t = small();
        assert!(t.memory_bytes() >= (1 << 24) * 5 + 4 * 256 * 5);
    }

    #[test]
    fn readd_changes_next_hop() {
        let mut t = small();
        t.add(ip(10, 0, 0, 0), 8, 1).unwrap();
        t.add(ip(10, 9, 9, 9), 30, 5).unwrap();
        t.add(ip(10, 0, 0, 0), 8, 2).unwrap();
        t.add(ip(10, 9, 9, 9), 30, 6).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.lookup(ip(10, 200, 0, 1)), Some(2));
        assert_eq!(t.lookup(ip(10, 9, 9, 0)), Some(2), "group inherited the new /8 hop");
        assert_eq!(t.lookup(ip(10, 9, 9, 10)), Some(6));
    }

    #[test]
    fn errors_leave_table_unchanged() {
        let mut t = Lpm4::new(Lpm4Config { max_rules: 3, tbl8_groups: 1 }).unwrap();
        assert_eq!(t.add(0, 33, 1), Err(Lpm4Error::InvalidDepth(33)));
        assert_eq!(t.add(0, 8, 1 << 24), Err(Lpm4Error::NextHopTooLarge(1 << 24)));
        t.add(ip(1, 1, 1, 1), 32, 1).unwrap();
        let e = t.add(ip(2, 2, 2, 2), 32, 2).unwrap_err();
        assert_eq!(e, Lpm4Error::Tbl8Exhausted { in_use: 1, total: 1 });
        assert!(e.to_string().contains("raise Lpm4Config::tbl8_groups"), "{e}");
        assert_eq!(t.lookup(ip(2, 2, 2, 2)), None);
        assert_eq!(t.len(), 1);
        t.add(ip(1, 1, 1, 2), 32, 3).unwrap(); // same group: fine
        t.add(ip(3, 0, 0, 0), 8, 4).unwrap();
        let e = t.add(ip(4, 0, 0, 0), 8, 4).unwrap_err();
        assert_eq!(e, Lpm4Error::RulesFull(3));
        assert!(e.to_string().contains("raise Lpm4Config::max_rules"));
        assert_eq!(t.lookup(ip(4, 0, 0, 1)), None);
        t.add(ip(3, 0, 0, 0), 8, 5).unwrap(); // replacing at capacity is fine
        assert_eq!(t.delete(ip(9, 0, 0, 0), 8), Err(Lpm4Error::NotFound { prefix: ip(9, 0, 0, 0), depth: 8 }));
        assert!(Lpm4::new(Lpm4Config { max_rules: 0, tbl8_groups: 1 }).is_err());
    }

    #[test]
    fn host_bits_are_masked() {
        let mut t = small();
        t.add(ip(10, 1, 2, 3), 8, 1).unwrap();
        assert_eq!(t.get(ip(10, 0, 0, 0), 8), Some(1));
        assert_eq!(t.delete(ip(10, 9, 9, 9), 8), Ok(1));
    }

    /// Routes for the build tests: `deep` routes longer than /24 in distinct /24s of
    /// 10.0.0.0/8, then 10.0.0.0/8 added `dups` times and 10.1.0.0/16 `dups` times, each
    /// time with a new next hop (a route file of random prefixes of random lengths holds
    /// the few short prefixes there are many times over).
    fn deep_then_short(deep: u32, dups: u32) -> Vec<super::super::Route4> {
        let r = |p: u32, depth: u8, next_hop: u32| super::super::Route4 { prefix: Ipv4Addr::from(p), depth, next_hop };
        let mut v: Vec<_> = (0..deep).map(|k| r(ip(10, (k >> 8) as u8, k as u8, 0), 25 + (k % 8) as u8, k)).collect();
        for k in 0..dups {
            v.push(r(ip(10, 0, 0, 0), 8, 1000 + k));
            v.push(r(ip(10, 1, 0, 0), 16, 2000 + k));
        }
        v
    }

    #[test]
    fn from_routes_writes_each_distinct_route_once() {
        let (deep, dups) = (300, 40);
        let routes = deep_then_short(deep, dups);
        let cfg = Lpm4Config { max_rules: 1024, tbl8_groups: 512 };
        let t = Lpm4::from_routes(cfg, &routes).unwrap();
        // The /8's span, the /16's and one new group per deep route: no route ≤ /24 meets a
        // group, and duplicates cost nothing.
        let once = (1u64 << 16) + (1 << 8) + u64::from(deep) * GROUP as u64;
        assert_eq!(t.work, once);
        assert_eq!(t.tbl8_groups_in_use(), deep);
        assert_eq!(t.len(), deep as usize + 2);
        // Adding the same routes one by one rewrites the /8 and every group under it at
        // each duplicate: the bound above is what tells the two apart.
        let mut inc = Lpm4::new(cfg).unwrap();
        for r in &routes {
            inc.add(u32::from(r.prefix), r.depth, r.next_hop).unwrap();
        }
        assert!(inc.work > 20 * once, "one by one: {} entries, bulk {once}", inc.work);
        // Same answers: every deep route's first and last address, and around them.
        for r in &routes[..deep as usize] {
            let p = u32::from(r.prefix);
            let last = p | !mask4(r.depth);
            for a in [p, last, p.wrapping_sub(1), last.wrapping_add(1), p | 0xff, p & !0xff] {
                assert_eq!(t.lookup(a), inc.lookup(a), "{}", Ipv4Addr::from(a));
            }
        }
        assert_eq!(t.lookup(ip(10, 1, 200, 1)), Some(2000 + dups - 1), "last duplicate wins");
        assert_eq!(t.lookup(ip(10, 200, 0, 1)), Some(1000 + dups - 1));
    }

    #[test]
    fn from_routes_errors_are_those_of_adds_in_order() {
        let routes = deep_then_short(20, 3);
        let mut bad = routes.clone();
        bad[7].depth = 33;
        assert_eq!(Lpm4::from_routes(Lpm4Config::default(), &bad).unwrap_err(), (7, Lpm4Error::InvalidDepth(33)));
        bad[5].next_hop = MAX_NEXT_HOP + 1;
        assert_eq!(
            Lpm4::from_routes(Lpm4Config::default(), &bad).unwrap_err(),
            (5, Lpm4Error::NextHopTooLarge(MAX_NEXT_HOP + 1))
        );
        // 22 distinct routes, the last of them at index 21; duplicates do not count.
        let e = Lpm4::from_routes(Lpm4Config { max_rules: 21, tbl8_groups: 64 }, &routes).unwrap_err();
        assert_eq!(e, (21, Lpm4Error::RulesFull(21)));
        assert_eq!(Lpm4::from_routes(Lpm4Config { max_rules: 22, tbl8_groups: 64 }, &routes).unwrap().len(), 22);
        let e = Lpm4::from_routes(Lpm4Config { max_rules: 64, tbl8_groups: 12 }, &routes).unwrap_err();
        assert_eq!(e, (12, Lpm4Error::Tbl8Exhausted { in_use: 12, total: 12 }));
        // Deep routes sharing a /24 share its group.
        let mut shared = routes[..12].to_vec();
        shared.push(super::super::Route4 { prefix: Ipv4Addr::new(10, 0, 0, 128), depth: 26, next_hop: 9 });
        let t = Lpm4::from_routes(Lpm4Config { max_rules: 64, tbl8_groups: 12 }, &shared).unwrap();
        assert_eq!(t.tbl8_groups_in_use(), 12);
        assert_eq!(t.lookup(ip(10, 0, 0, 130)), Some(9));
    }

    #[test]
    fn bulk_impls_agree_with_single() {
        let mut t = Lpm4::new(Lpm4Config { max_rules: 4096, tbl8_groups: 512 }).unwrap();
        let mut x: u32 = 0x1234_5678;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for _ in 0..2000 {
            let p = next();
            // Mostly long prefixes: a short one rewrites millions of entries (slow in debug).
            let d = if next() % 16 == 0 { (next() % 16) as u8 } else { 16 + (next() % 17) as u8 };
            let _ = t.add(p, d, next() & NH_MASK);
        }
        let ips: Vec<u32> = (0..1003).map(|_| next()).collect();
        let want: Vec<u32> = ips.iter().map(|&a| t.lookup(a).unwrap_or(MISS)).collect();
        for imp in [BulkImpl::Scalar, BulkImpl::Avx2, BulkImpl::Neon] {
            if !t.set_bulk_impl(imp) {
                continue;
            }
            for len in (0..=64).chain([1003]) {
                let mut out = vec![0; len];
                // Prefetching the following addresses (pipelining across bursts) and these
                // ones changes no result.
                t.prefetch_bulk(&ips[len..(2 * len).min(ips.len())]);
                t.prefetch_bulk(&ips[..len]);
                let hits = t.lookup_bulk(&ips[..len], &mut out);
                assert_eq!(out, want[..len], "{imp:?} len {len}");
                assert_eq!(hits, want[..len].iter().filter(|&&h| h != MISS).count());
            }
        }
    }
}
