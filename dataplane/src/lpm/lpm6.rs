//! IPv6 longest-prefix match: a multibit trie with a 24-bit first level (`tbl24`, 2^24
//! entries) and then 8-bit strides (tbl8 groups of 256 entries, up to 13 levels), the
//! layout of DPDK's `rte_lpm6`.
//!
//! A route is expanded over the entries it covers at the level where its length ends
//! (depth ≤ 24: level 0; otherwise level `ceil((depth - 24) / 8)`); the levels above it
//! point down with "extended" entries, creating groups as needed. An entry is 4 bytes
//! (valid bit, extended bit, 24-bit next hop or group index); the depth of the route that
//! wrote it lives in a parallel byte array that only `add`/`delete` read. Deletes re-expose
//! the next shorter covering route (found in the rules map) and fold back groups whose
//! 256 entries became equal.
use super::{mask6, FastMap, HugeTable, Plain, MAX_NEXT_HOP, MISS};
use std::net::Ipv6Addr;

const VALID: u32 = 1 << 24;
const EXT: u32 = 1 << 25;
const NH_MASK: u32 = 0x00FF_FFFF;
const TBL24_LEN: usize = 1 << 24;
const GROUP: usize = 256;
/// Most tbl8 groups an [`Lpm6`] can have (group indices are 24-bit).
pub const MAX_TBL8_GROUPS: u32 = 1 << 24;

/// Capacity of an [`Lpm6`], fixed at construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lpm6Config {
    /// Most routes the table holds.
    pub max_rules: u32,
    /// Number of 256-entry tbl8 groups (1.25 KiB each). A route of depth `d > 24` needs up
    /// to `ceil((d - 24) / 8)` groups of its own, fewer when it shares its leading bits.
    pub tbl8_groups: u32,
}

impl Default for Lpm6Config {
    /// 65 536 rules and 4096 tbl8 groups (85 MiB of tables).
    fn default() -> Self {
        Lpm6Config { max_rules: 1 << 16, tbl8_groups: 1 << 12 }
    }
}

/// Why an [`Lpm6`] operation failed. The table is unchanged after any error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Lpm6Error {
    /// Prefix length above 128.
    #[error("prefix length {0} > 128")]
    InvalidDepth(u8),
    /// Next hop does not fit in 24 bits.
    #[error("next hop {0} > {max} (next hops are 24-bit)", max = MAX_NEXT_HOP)]
    NextHopTooLarge(u32),
    /// The rules table is full.
    #[error("rules table full ({0} rules); raise Lpm6Config::max_rules")]
    RulesFull(u32),
    /// Not enough free tbl8 groups for the route.
    #[error(
        "tbl8 groups exhausted ({in_use} in use of {total}, route needs {needed} more); \
         raise Lpm6Config::tbl8_groups"
    )]
    Tbl8Exhausted {
        /// Groups in use.
        in_use: u32,
        /// Groups configured.
        total: u32,
        /// Groups the route needed.
        needed: u32,
    },
    /// Delete of a route that is not in the table.
    #[error("no route {}/{depth}", Ipv6Addr::from(*prefix))]
    NotFound {
        /// The prefix (masked to its length), network byte order.
        prefix: [u8; 16],
        /// The prefix length.
        depth: u8,
    },
    /// A configuration value out of range.
    #[error("invalid Lpm6Config: {0}")]
    Config(&'static str),
    /// The tables' memory could not be mapped (the OS error number; `ENOMEM` when the
    /// address space or the overcommit limit is exhausted). Lower the tbl8 group count or
    /// free memory.
    #[error("cannot map {bytes} bytes for the Lpm6 tables (os error {errno})")]
    Memory {
        /// Size of the mapping that failed.
        bytes: usize,
        /// The OS error number.
        errno: i32,
    },
}

/// IPv6 longest-prefix-match table. See the [module docs](self).
///
/// # Examples
/// ```
/// use dataplane::lpm::{Lpm6, Lpm6Config};
/// use std::net::Ipv6Addr;
/// let mut t = Lpm6::new(Lpm6Config { max_rules: 16, tbl8_groups: 16 }).unwrap();
/// let p: Ipv6Addr = "2001:db8::".parse().unwrap();
/// t.add(p.octets(), 32, 4).unwrap();
/// let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
/// assert_eq!(t.lookup(&a.octets()), Some(4));
/// ```
pub struct Lpm6 {
    /// tbl24 (first 2^24 entries) followed by the tbl8 groups.
    ent: HugeTable<u32>,
    /// Depth of the route that wrote each entry (control path only).
    dep: HugeTable<u8>,
    free_groups: Vec<u32>,
    rules: FastMap<(u128, u8), u32>,
    depth_count: [u32; 129],
    config: Lpm6Config,
    /// Entries visited by `set`: the tests bound the work of `from_routes` with it.
    #[cfg(test)]
    work: u64,
}

impl std::fmt::Debug for Lpm6 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lpm6")
            .field("config", &self.config)
            .field("rules", &self.rules.len())
            .field("tbl8_groups_in_use", &self.tbl8_groups_in_use())
            .finish()
    }
}

/// Byte `k` (0 = most significant) of an address.
#[inline(always)]
fn byte(a: u128, k: usize) -> usize {
    ((a >> (120 - 8 * k)) & 0xff) as usize
}

/// The trie level where a route of `depth` is expanded.
#[inline]
fn level_of(depth: u8) -> usize {
    if depth <= 24 {
        0
    } else {
        (usize::from(depth) - 24).div_ceil(8)
    }
}

/// Index in `ent` of entry `byte` of group `g`.
#[inline(always)]
fn gidx(g: u32, byte: usize) -> usize {
    TBL24_LEN + (g as usize) * GROUP + byte
}

/// One of the tables, mapped once (see [`HugeTable`]).
fn table<T: Plain>(len: usize, value: T) -> Result<HugeTable<T>, Lpm6Error> {
    HugeTable::filled(len, value).map_err(|e| Lpm6Error::Memory {
        bytes: len.saturating_mul(std::mem::size_of::<T>()),
        errno: e.raw_os_error().unwrap_or(libc::ENOMEM),
    })
}

impl Lpm6 {
    /// Allocates an empty table (80 MiB for tbl24 and its depths, plus 1.25 KiB per group).
    ///
    /// # Errors
    /// [`Lpm6Error::Config`] if `max_rules` is 0 or `tbl8_groups` exceeds
    /// [`MAX_TBL8_GROUPS`].
    /// [`Lpm6Error::Memory`] if the tables cannot be mapped.
    pub fn new(config: Lpm6Config) -> Result<Self, Lpm6Error> {
        if config.max_rules == 0 {
            return Err(Lpm6Error::Config("max_rules must be at least 1"));
        }
        if config.tbl8_groups > MAX_TBL8_GROUPS {
            return Err(Lpm6Error::Config("tbl8_groups above MAX_TBL8_GROUPS (2^24)"));
        }
        let n = TBL24_LEN + config.tbl8_groups as usize * GROUP;
        let mut rules = FastMap::default();
        rules.reserve((config.max_rules as usize).min(1 << 16));
        Ok(Lpm6 {
            ent: table(n, 0)?,
            dep: table(n, 0)?,
            free_groups: (0..config.tbl8_groups).rev().collect(),
            rules,
            depth_count: [0; 129],
            config,
            #[cfg(test)]
            work: 0,
        })
    }

    /// Builds a table holding `routes` (later duplicates replace earlier next hops).
    ///
    /// As [`Lpm4::from_routes`](super::Lpm4::from_routes): the result, and any error, are
    /// those of adding the routes one by one in order, but the routes are checked and
    /// deduplicated first and then written once each from the shortest to the longest, so
    /// that no route meets an extended entry below it (one by one, a short route added
    /// after longer ones rewrites every group under its span, and again for each duplicate).
    ///
    /// # Errors
    /// The index of the first route that could not be added, and why: the error adding
    /// the routes one by one would have given.
    pub fn from_routes(config: Lpm6Config, routes: &[super::Route6]) -> Result<Self, (usize, Lpm6Error)> {
        let mut t = Lpm6::new(config).map_err(|e| (0, e))?;
        // Pass 1, in input order: the checks of `add`, the rules map, and the groups the
        // routes create. A group at level l ≥ 1 hangs below the entry named by the first
        // 24 + 8 (l - 1) bits of the address; a group's existence implies its parents'.
        let mut nodes: FastMap<(u128, u8), ()> = FastMap::default();
        let mut groups = 0u32;
        for (i, r) in routes.iter().enumerate() {
            let depth = r.depth;
            if depth > 128 {
                return Err((i, Lpm6Error::InvalidDepth(depth)));
            }
            if r.next_hop > MAX_NEXT_HOP {
                return Err((i, Lpm6Error::NextHopTooLarge(r.next_hop)));
            }
            let ip = u128::from(r.prefix) & mask6(depth);
            let len = t.rules.len();
            match t.rules.entry((ip, depth)) {
                std::collections::hash_map::Entry::Occupied(mut o) => {
                    // Its groups exist already.
                    *o.get_mut() = r.next_hop;
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    if len >= config.max_rules as usize {
                        return Err((i, Lpm6Error::RulesFull(config.max_rules)));
                    }
                    let level = level_of(depth);
                    let node = |l: usize| (ip & mask6((24 + 8 * (l - 1)) as u8), l as u8);
                    let first_new = (1..=level).find(|&l| !nodes.contains_key(&node(l)));
                    if let Some(first) = first_new {
                        let needed = (level - first + 1) as u32;
                        if needed > config.tbl8_groups - groups {
                            return Err((
                                i,
                                Lpm6Error::Tbl8Exhausted { in_use: groups, total: config.tbl8_groups, needed },
                            ));
                        }
                        for l in first..=level {
                            nodes.insert(node(l), ());
                        }
                        groups += needed;
                    }
                    v.insert(r.next_hop);
                }
            }
        }
        drop(nodes);
        // Pass 2: each distinct route written once, shortest first.
        let mut sorted: Vec<(u8, u128, u32)> = t.rules.iter().map(|(&(ip, d), &nh)| (d, ip, nh)).collect();
        sorted.sort_unstable();
        for &(d, ip, nh) in &sorted {
            t.depth_count[d as usize] += 1;
            if !t.write(ip, d, nh) {
                // Pass 1 counted the groups; a missing one would be a bug, reported as the
                // error it would be rather than as a panic.
                debug_assert!(false, "tbl8 groups counted in pass 1");
                let total = config.tbl8_groups;
                let e = Lpm6Error::Tbl8Exhausted { in_use: total, total, needed: 1 };
                return Err((routes.len().saturating_sub(1), e));
            }
        }
        Ok(t)
    }

    /// The configuration the table was built with.
    pub fn config(&self) -> Lpm6Config {
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

    /// Bytes held by the table: entries, depths, free list and rules map.
    pub fn memory_bytes(&self) -> usize {
        let rule_entry = std::mem::size_of::<((u128, u8), u32)>() + 1;
        std::mem::size_of_val(&*self.ent)
            + std::mem::size_of_val(&*self.dep)
            + self.free_groups.capacity() * 4
            + self.rules.capacity() * rule_entry
    }

    /// The next hop of the route `prefix/depth` if it is in the table (exact match).
    pub fn get(&self, prefix: [u8; 16], depth: u8) -> Option<u32> {
        if depth > 128 {
            return None;
        }
        let ip = u128::from_be_bytes(prefix) & mask6(depth);
        self.rules.get(&(ip, depth)).copied()
    }

    /// Adds the route `prefix/depth → next_hop` (`prefix` in network byte order, host
    /// bits ignored), or changes its next hop if it is already there.
    ///
    /// # Errors
    /// Bad depth or next hop, a full rules table, or too few free tbl8 groups; the table
    /// is unchanged.
    pub fn add(&mut self, prefix: [u8; 16], depth: u8, next_hop: u32) -> Result<(), Lpm6Error> {
        if depth > 128 {
            return Err(Lpm6Error::InvalidDepth(depth));
        }
        if next_hop > MAX_NEXT_HOP {
            return Err(Lpm6Error::NextHopTooLarge(next_hop));
        }
        let ip = u128::from_be_bytes(prefix) & mask6(depth);
        let exists = self.rules.contains_key(&(ip, depth));
        if !exists && self.rules.len() >= self.config.max_rules as usize {
            return Err(Lpm6Error::RulesFull(self.config.max_rules));
        }
        let level = level_of(depth);
        // Count the groups this route must create before touching anything.
        let mut loc = (ip >> 104) as usize;
        let mut needed = 0;
        for l in 1..=level {
            let e = self.ent[loc];
            if e & EXT == 0 {
                needed = level - l + 1;
                break;
            }
            loc = gidx(e & NH_MASK, byte(ip, 2 + l));
        }
        if needed > self.free_groups.len() {
            return Err(Lpm6Error::Tbl8Exhausted {
                in_use: self.tbl8_groups_in_use(),
                total: self.config.tbl8_groups,
                needed: needed as u32,
            });
        }
        // Every failure is checked above: from here on the add cannot fail.
        self.rules.insert((ip, depth), next_hop);
        if !exists {
            self.depth_count[depth as usize] += 1;
        }
        let written = self.write(ip, depth, next_hop);
        debug_assert!(written, "groups counted above");
        Ok(())
    }

    /// Writes the route `ip/depth → next_hop` (`ip` masked) into the entries it covers
    /// that hold no route or one no longer than it, creating the groups on its path that
    /// do not exist yet. The rules map is not touched. Returns false if a group is needed
    /// and none is free (the caller checks first: the groups taken so far stay in place).
    fn write(&mut self, ip: u128, depth: u8, next_hop: u32) -> bool {
        let level = level_of(depth);
        let mut loc = (ip >> 104) as usize;
        for l in 1..=level {
            let e = self.ent[loc];
            let g = if e & EXT != 0 {
                e & NH_MASK
            } else {
                let Some(g) = self.free_groups.pop() else {
                    return false;
                };
                let base = gidx(g, 0);
                let d = self.dep[loc];
                self.ent[base..base + GROUP].fill(e);
                self.dep[base..base + GROUP].fill(d);
                self.ent[loc] = g | VALID | EXT;
                self.dep[loc] = 0;
                g
            };
            loc = gidx(g, byte(ip, 2 + l));
        }
        let span_bits = 24 + 8 * level - usize::from(depth);
        for j in loc..loc + (1usize << span_bits) {
            self.set(j, depth, next_hop);
        }
        true
    }

    /// Writes route (`nh`, `d`) into entry `loc` and, through extended entries, into every
    /// entry below it that is empty or holds a route no longer than `d`.
    fn set(&mut self, loc: usize, d: u8, nh: u32) {
        #[cfg(test)]
        {
            self.work += 1;
        }
        let e = self.ent[loc];
        if e & EXT != 0 {
            let base = gidx(e & NH_MASK, 0);
            for c in base..base + GROUP {
                self.set(c, d, nh);
            }
        } else if e & VALID == 0 || self.dep[loc] <= d {
            self.ent[loc] = nh | VALID;
            self.dep[loc] = d;
        }
    }

    /// Replaces, at and below `loc`, the entries written by the route of depth `d` with
    /// `(repl, repl_depth)`, folding groups that become uniform. `level` is `loc`'s level.
    fn unset(&mut self, loc: usize, level: usize, d: u8, repl: u32, repl_depth: u8) {
        let e = self.ent[loc];
        if e & EXT != 0 {
            let base = gidx(e & NH_MASK, 0);
            for c in base..base + GROUP {
                self.unset(c, level + 1, d, repl, repl_depth);
            }
            self.try_fold(loc, level + 1);
        } else if e & VALID != 0 && self.dep[loc] == d {
            self.ent[loc] = repl;
            self.dep[loc] = repl_depth;
        }
    }

    /// If the group that extended entry `parent` points to (at trie level `level`) has 256
    /// equal plain entries from a route that ends above that level, puts that entry back
    /// into `parent` and frees the group. Returns whether it did.
    fn try_fold(&mut self, parent: usize, level: usize) -> bool {
        let e = self.ent[parent];
        if e & EXT == 0 {
            return false;
        }
        let g = e & NH_MASK;
        let base = gidx(g, 0);
        let (first, fd) = (self.ent[base], self.dep[base]);
        if first & EXT != 0 || (first & VALID != 0 && usize::from(fd) > 24 + 8 * (level - 1)) {
            return false;
        }
        let same = self.ent[base..base + GROUP].iter().all(|&x| x == first)
            && self.dep[base..base + GROUP].iter().all(|&x| x == fd);
        if same {
            self.ent[parent] = first;
            self.dep[parent] = fd;
            self.free_groups.push(g);
        }
        same
    }

    /// Deletes the route `prefix/depth`; addresses it covered fall back to the next
    /// shorter covering route, if any. Returns the deleted route's next hop.
    ///
    /// # Errors
    /// [`Lpm6Error::NotFound`] (or [`Lpm6Error::InvalidDepth`]); the table is unchanged.
    pub fn delete(&mut self, prefix: [u8; 16], depth: u8) -> Result<u32, Lpm6Error> {
        if depth > 128 {
            return Err(Lpm6Error::InvalidDepth(depth));
        }
        let ip = u128::from_be_bytes(prefix) & mask6(depth);
        let Some(old) = self.rules.remove(&(ip, depth)) else {
            return Err(Lpm6Error::NotFound { prefix: ip.to_be_bytes(), depth });
        };
        self.depth_count[depth as usize] -= 1;
        let (repl, repl_depth) = self.cover(ip, depth);
        let level = level_of(depth);
        let mut path = [0usize; 14];
        path[0] = (ip >> 104) as usize;
        for l in 1..=level {
            let e = self.ent[path[l - 1]];
            debug_assert!(e & EXT != 0, "the levels above a route are extended");
            if e & EXT == 0 {
                return Ok(old);
            }
            path[l] = gidx(e & NH_MASK, byte(ip, 2 + l));
        }
        let span_bits = 24 + 8 * level - usize::from(depth);
        for j in path[level]..path[level] + (1usize << span_bits) {
            self.unset(j, level, depth, repl, repl_depth);
        }
        for l in (1..=level).rev() {
            if !self.try_fold(path[l - 1], l) {
                break;
            }
        }
        Ok(old)
    }

    /// The longest route strictly shorter than `depth` covering `ip`, as (entry, depth).
    fn cover(&self, ip: u128, depth: u8) -> (u32, u8) {
        for d in (0..depth).rev() {
            if self.depth_count[d as usize] == 0 {
                continue;
            }
            if let Some(&nh) = self.rules.get(&(ip & mask6(d), d)) {
                return (nh | VALID, d);
            }
        }
        (0, 0)
    }

    /// The next hop for `addr` (network byte order), or `None` if no route covers it.
    #[inline]
    pub fn lookup(&self, addr: &[u8; 16]) -> Option<u32> {
        let e = self.lookup_raw(addr);
        if e & VALID != 0 {
            Some(e & NH_MASK)
        } else {
            None
        }
    }

    #[inline(always)]
    fn lookup_raw(&self, a: &[u8; 16]) -> u32 {
        let i = (a[0] as usize) << 16 | (a[1] as usize) << 8 | a[2] as usize;
        let mut e = self.ent.get(i).copied().unwrap_or(0);
        let mut k = 3;
        while e & EXT != 0 && k < 16 {
            e = self.ent.get(gidx(e & NH_MASK, a[k] as usize)).copied().unwrap_or(0);
            k += 1;
        }
        e
    }

    /// Looks up a burst: `next_hops[i]` gets the next hop of `addrs[i]`, or [`MISS`].
    /// Handles `min(addrs.len(), next_hops.len())` addresses and returns how many hit.
    ///
    /// Walks up to 32 addresses down the trie level by level, prefetching every address's
    /// entry of the next level before reading any of them, so the cache misses of the
    /// burst overlap instead of forming one chain per address.
    pub fn lookup_bulk(&self, addrs: &[[u8; 16]], next_hops: &mut [u32]) -> usize {
        const W: usize = 32;
        let n = addrs.len().min(next_hops.len());
        let base = self.ent.as_ptr();
        let mut hits = 0;
        let mut start = 0;
        while start < n {
            let m = (n - start).min(W);
            let a = &addrs[start..start + m];
            let mut idx = [0usize; W];
            let mut e = [0u32; W];
            for i in 0..m {
                idx[i] = (a[i][0] as usize) << 16 | (a[i][1] as usize) << 8 | a[i][2] as usize;
                crate::arch::prefetch(base.wrapping_add(idx[i]));
            }
            for i in 0..m {
                e[i] = self.ent.get(idx[i]).copied().unwrap_or(0);
            }
            let mut k = 3;
            while k < 16 {
                let mut any = false;
                for i in 0..m {
                    if e[i] & EXT != 0 {
                        idx[i] = gidx(e[i] & NH_MASK, a[i][k] as usize);
                        crate::arch::prefetch(base.wrapping_add(idx[i]));
                        any = true;
                    }
                }
                if !any {
                    break;
                }
                for i in 0..m {
                    if e[i] & EXT != 0 {
                        e[i] = self.ent.get(idx[i]).copied().unwrap_or(0);
                    }
                }
                k += 1;
            }
            for i in 0..m {
                let hit = e[i] & VALID != 0;
                hits += hit as usize;
                next_hops[start + i] = if hit { e[i] & NH_MASK } else { MISS };
            }
            start += m;
        }
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> [u8; 16] {
        s.parse::<Ipv6Addr>().unwrap().octets()
    }

    fn small() -> Lpm6 {
        Lpm6::new(Lpm6Config { max_rules: 64, tbl8_groups: 64 }).unwrap()
    }

    #[test]
    fn nested_routes_and_deletes() {
        let mut t = small();
        t.add(a("::"), 0, 1).unwrap();
        t.add(a("2001:db8::"), 32, 2).unwrap();
        t.add(a("2001:db8:1::"), 48, 3).unwrap();
        t.add(a("2001:db8:1::1"), 128, 4).unwrap();
        assert_eq!(t.lookup(&a("2001:db8:1::1")), Some(4));
        assert_eq!(t.lookup(&a("2001:db8:1::2")), Some(3));
        assert_eq!(t.lookup(&a("2001:db8:2::2")), Some(2));
        assert_eq!(t.lookup(&a("3000::")), Some(1));
        assert_eq!(t.delete(a("2001:db8:1::"), 48), Ok(3));
        assert_eq!(t.lookup(&a("2001:db8:1::2")), Some(2));
        assert_eq!(t.lookup(&a("2001:db8:1::1")), Some(4));
        assert_eq!(t.delete(a("2001:db8:1::1"), 128), Ok(4));
        assert_eq!(t.lookup(&a("2001:db8:1::1")), Some(2));
        assert_eq!(t.tbl8_groups_in_use(), 1, "only the /32's level-1 group is left");
        t.delete(a("2001:db8::"), 32).unwrap();
        assert_eq!(t.tbl8_groups_in_use(), 0, "all groups folded back");
        t.delete(a("::"), 0).unwrap();
        assert_eq!(t.lookup(&a("2001:db8:1::1")), None);
        assert!(t.is_empty());
    }

    /// `deep` routes of /40 to /128 under 2001:db8::/32, then 2001:db8::/32 and 2001::/16
    /// added `dups` times each with a new next hop.
    fn deep_then_short(deep: u32, dups: u32) -> Vec<super::super::Route6> {
        let r = |p: u128, depth: u8, next_hop: u32| super::super::Route6 {
            prefix: Ipv6Addr::from(p & mask6(depth)),
            depth,
            next_hop,
        };
        let base = u128::from_be_bytes(a("2001:db8::"));
        let mut v: Vec<_> = (0..deep)
            .map(|k| {
                let k128 = u128::from(k);
                // Distinct in bytes 4 and 5 (bits 88..104) and spread over the low bits too.
                let p = base | k128 << 88 | k128.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                r(p, [40, 48, 56, 64, 96, 127, 128][k as usize % 7], k)
            })
            .collect();
        for k in 0..dups {
            v.push(r(base, 32, 1000 + k));
            v.push(r(base, 16, 2000 + k));
        }
        v
    }

    #[test]
    fn from_routes_writes_each_distinct_route_once() {
        let (deep, dups) = (40, 30);
        let routes = deep_then_short(deep, dups);
        let cfg = Lpm6Config { max_rules: 256, tbl8_groups: 1024 };
        let t = Lpm6::from_routes(cfg, &routes).unwrap();
        // One visit per entry of each distinct route's span at its level: no route meets
        // a group below it, and duplicates cost nothing.
        let span = |d: u8| 1u64 << (24 + 8 * level_of(d) - usize::from(d));
        let once: u64 = routes[..deep as usize].iter().map(|r| span(r.depth)).sum::<u64>() + span(32) + span(16);
        assert_eq!(t.work, once);
        let mut inc = Lpm6::new(cfg).unwrap();
        for r in &routes {
            inc.add(r.prefix.octets(), r.depth, r.next_hop).unwrap();
        }
        assert!(inc.work > 20 * once, "one by one: {} entries, bulk {once}", inc.work);
        assert_eq!(t.tbl8_groups_in_use(), inc.tbl8_groups_in_use());
        assert_eq!(t.len(), inc.len());
        for r in &routes[..deep as usize] {
            let p = u128::from(r.prefix);
            let last = p | !mask6(r.depth);
            for x in [p, last, p.wrapping_sub(1), last.wrapping_add(1), p ^ 1 << 100, p ^ 1 << 120] {
                assert_eq!(t.lookup(&x.to_be_bytes()), inc.lookup(&x.to_be_bytes()), "{}", Ipv6Addr::from(x));
            }
        }
        assert_eq!(t.lookup(&a("2001:db8:ffff::1")), Some(1000 + dups - 1), "last duplicate wins");
        assert_eq!(t.lookup(&a("2001:ffff::1")), Some(2000 + dups - 1));
    }

    #[test]
    fn from_routes_errors_are_those_of_adds_in_order() {
        let routes = deep_then_short(14, 2);
        // The error, if any, of adding `routes` one by one under `cfg`.
        let one_by_one = |cfg: Lpm6Config| -> Result<(), (usize, Lpm6Error)> {
            let mut t = Lpm6::new(cfg).unwrap();
            for (i, r) in routes.iter().enumerate() {
                t.add(r.prefix.octets(), r.depth, r.next_hop).map_err(|e| (i, e))?;
            }
            Ok(())
        };
        let mut errors = 0;
        for groups in 0..60 {
            for max_rules in [15, 16, 64] {
                let cfg = Lpm6Config { max_rules, tbl8_groups: groups };
                let got = Lpm6::from_routes(cfg, &routes).map(|t| assert_eq!(t.len(), 16));
                errors += got.is_err() as u32;
                assert_eq!(got, one_by_one(cfg), "{cfg:?}");
            }
        }
        assert!(errors > 100, "{errors}");
        let mut bad = routes.clone();
        bad[3].depth = 129;
        assert_eq!(Lpm6::from_routes(Lpm6Config::default(), &bad).unwrap_err(), (3, Lpm6Error::InvalidDepth(129)));
    }

    #[test]
    fn readd_and_errors() {
        let mut t = Lpm6::new(Lpm6Config { max_rules: 2, tbl8_groups: 2 }).unwrap();
        t.add(a("2001:db8::"), 40, 1).unwrap();
        t.add(a("2001:db8::"), 40, 2).unwrap();
        assert_eq!(t.lookup(&a("2001:db8::5")), Some(2));
        let e = t.add(a("2001:db8::1"), 128, 3).unwrap_err();
        assert!(matches!(e, Lpm6Error::Tbl8Exhausted { needed: 11, .. }), "{e}");
        assert!(e.to_string().contains("raise Lpm6Config::tbl8_groups"));
        assert_eq!(t.len(), 1);
        assert_eq!(t.tbl8_groups_in_use(), 2);
        t.add(a("1::"), 16, 3).unwrap();
        assert_eq!(t.add(a("2::"), 16, 3), Err(Lpm6Error::RulesFull(2)));
        assert_eq!(t.add(a("2::"), 129, 3), Err(Lpm6Error::InvalidDepth(129)));
        assert!(t.delete(a("2::"), 16).is_err());
        let mut out = [0; 3];
        let hits = t.lookup_bulk(&[a("2001:db8::5"), a("1::1"), a("9::")], &mut out);
        assert_eq!((hits, out), (2, [2, 3, MISS]));
    }
}
