//! Property tests: `Lpm4`, `Lpm6` and `EmTable` against simple linear oracles, over random
//! sequences of adds (overlapping prefixes, /0, /32, /128, re-adds with a new next hop),
//! deletes (which must re-expose shorter prefixes) and inserts that hit the capacity limits;
//! and the tables `from_routes` builds from route lists with duplicates against the ones the
//! same routes added one by one give, before and after deletes.
use dataplane::lpm::{
    BulkImpl, EmConfig, EmError, EmKey, EmTable, Ipv4FiveTuple, Lpm4, Lpm4Config, Lpm4Error, Lpm6, Lpm6Config,
    Lpm6Error, Route4, Route6, MAX_NEXT_HOP, MISS,
};
use proptest::prelude::*;
use proptest::sample::Index;

#[derive(Debug, Clone)]
enum Op<A> {
    Add(A, u8, u32),
    /// Delete the route at this index (modulo the oracle's size), or a random one if empty.
    DelExisting(usize),
    Del(A, u8),
}

fn mask4(d: u8) -> u32 {
    if d == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(d))
    }
}

fn mask6(d: u8) -> u128 {
    if d == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(d))
    }
}

/// Linear longest-prefix oracle.
fn oracle<A: Copy + PartialEq + std::ops::BitAnd<Output = A>>(
    routes: &[(A, u8, u32)],
    addr: A,
    mask: fn(u8) -> A,
) -> Option<u32> {
    routes.iter().filter(|(p, d, _)| addr & mask(*d) == *p).max_by_key(|(_, d, _)| *d).map(|r| r.2)
}

/// IPv4 addresses clustered under a few /16s so prefixes overlap.
fn addr4() -> impl Strategy<Value = u32> {
    (prop_oneof![Just(0x0a00u32), Just(0x0a01), Just(0xc0a8), any::<u16>().prop_map(u32::from)], any::<u16>())
        .prop_map(|(hi, lo)| hi << 16 | u32::from(lo))
}

/// Mostly long prefixes (a short one rewrites up to 2^24 entries, slow in debug builds),
/// with /0, short ones and /32 present.
fn depth4() -> impl Strategy<Value = u8> {
    prop_oneof![1 => Just(0u8), 1 => 1u8..16, 6 => 16u8..=24, 6 => 25u8..=32, 2 => Just(32u8)]
}

fn ops4() -> impl Strategy<Value = Vec<Op<u32>>> {
    prop::collection::vec(
        prop_oneof![
            6 => (addr4(), depth4(), 0u32..=0xFF_FFFF).prop_map(|(a, d, h)| Op::Add(a, d, h)),
            3 => any::<usize>().prop_map(Op::DelExisting),
            1 => (addr4(), depth4()).prop_map(|(a, d)| Op::Del(a, d)),
        ],
        1..120,
    )
}

fn check4(t: &mut Lpm4, routes: &[(u32, u8, u32)], probes: &[u32]) -> Result<(), TestCaseError> {
    let mut addrs: Vec<u32> = probes.to_vec();
    for &(p, d, _) in routes {
        addrs.extend([p, p | !mask4(d), p.wrapping_sub(1), (p | !mask4(d)).wrapping_add(1)]);
    }
    let want: Vec<u32> = addrs.iter().map(|&a| oracle(routes, a, mask4).unwrap_or(MISS)).collect();
    for (&a, &w) in addrs.iter().zip(&want) {
        prop_assert_eq!(t.lookup(a).unwrap_or(MISS), w, "lookup {:#010x}", a);
    }
    let mut out = vec![0; addrs.len()];
    let hits = t.lookup_bulk(&addrs, &mut out);
    prop_assert_eq!(&out, &want);
    prop_assert_eq!(hits, want.iter().filter(|&&w| w != MISS).count());
    out.fill(0);
    t.lookup_bulk_scalar(&addrs, &mut out);
    prop_assert_eq!(&out, &want);
    // Four at a time (a four-packet step's lookup), the tail rotated in from the front.
    for (k, w) in want.chunks(4).enumerate() {
        let ips: [u32; 4] = std::array::from_fn(|j| addrs[(4 * k + j) % addrs.len()]);
        let got = t.lookup_x4(ips);
        prop_assert_eq!(&got[..w.len()], w, "lookup_x4 {:x?}", ips);
    }
    // Every burst implementation this CPU has (AVX2 is not the x86 default), then back.
    let default = t.bulk_impl();
    for imp in [BulkImpl::Scalar, BulkImpl::Avx2, BulkImpl::Neon] {
        if t.set_bulk_impl(imp) {
            out.fill(0);
            let hits = t.lookup_bulk(&addrs, &mut out);
            prop_assert_eq!(&out, &want, "{:?}", imp);
            prop_assert_eq!(hits, want.iter().filter(|&&w| w != MISS).count(), "{:?}", imp);
        }
    }
    prop_assert!(t.set_bulk_impl(default));
    prop_assert_eq!(t.len(), routes.len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn lpm4_matches_oracle(ops in ops4(), probes in prop::collection::vec(addr4(), 64)) {
        // Small limits so that both capacity errors happen too.
        let cfg = Lpm4Config { max_rules: 60, tbl8_groups: 12 };
        let mut t = Lpm4::new(cfg).unwrap();
        prop_assert_eq!(t.bulk_impl(), BulkImpl::detect());
        let mut routes: Vec<(u32, u8, u32)> = Vec::new();
        for op in ops {
            match op {
                Op::Add(a, d, h) => {
                    let p = a & mask4(d);
                    let pos = routes.iter().position(|r| r.0 == p && r.1 == d);
                    match t.add(a, d, h) {
                        Ok(()) => match pos {
                            Some(i) => routes[i].2 = h,
                            None => routes.push((p, d, h)),
                        },
                        Err(Lpm4Error::RulesFull(_)) => prop_assert!(pos.is_none() && routes.len() == 60),
                        Err(Lpm4Error::Tbl8Exhausted { in_use, total }) => {
                            prop_assert!(d > 24 && in_use == total && total == 12)
                        }
                        Err(e) => prop_assert!(false, "unexpected {}", e),
                    }
                }
                Op::DelExisting(i) if !routes.is_empty() => {
                    let (p, d, h) = routes.remove(i % routes.len());
                    prop_assert_eq!(t.delete(p, d), Ok(h));
                }
                Op::DelExisting(_) => {}
                Op::Del(a, d) => {
                    let p = a & mask4(d);
                    match routes.iter().position(|r| r.0 == p && r.1 == d) {
                        Some(i) => prop_assert_eq!(t.delete(a, d), Ok(routes.remove(i).2)),
                        None => prop_assert_eq!(t.delete(a, d), Err(Lpm4Error::NotFound { prefix: p, depth: d })),
                    }
                }
            }
        }
        check4(&mut t, &routes, &probes)?;
        // Deleting everything must return every group.
        for (p, d, h) in routes.drain(..) {
            prop_assert_eq!(t.delete(p, d), Ok(h));
        }
        prop_assert_eq!(t.tbl8_groups_in_use(), 0);
        check4(&mut t, &routes, &probes)?;
    }
}

/// IPv6 addresses under a few /32s, with random bits in a few chosen bytes so that /40–/64
/// prefixes overlap; the low 64 bits are mostly zero or random.
fn addr6() -> impl Strategy<Value = u128> {
    (
        prop_oneof![Just(0x2001_0db8u128), Just(0x2001_0db9), any::<u32>().prop_map(u128::from)],
        any::<u16>(),
        prop_oneof![Just(0u64), any::<u64>()],
    )
        .prop_map(|(hi, mid, lo)| hi << 96 | u128::from(mid & 0x0f0f) << 80 | u128::from(lo))
}

fn depth6() -> impl Strategy<Value = u8> {
    prop_oneof![1 => Just(0u8), 1 => 1u8..24, 4 => 24u8..=48, 4 => 49u8..=72, 2 => 73u8..=128, 2 => Just(128u8)]
}

fn ops6() -> impl Strategy<Value = Vec<Op<u128>>> {
    prop::collection::vec(
        prop_oneof![
            6 => (addr6(), depth6(), 0u32..=0xFF_FFFF).prop_map(|(a, d, h)| Op::Add(a, d, h)),
            3 => any::<usize>().prop_map(Op::DelExisting),
            1 => (addr6(), depth6()).prop_map(|(a, d)| Op::Del(a, d)),
        ],
        1..80,
    )
}

fn check6(t: &Lpm6, routes: &[(u128, u8, u32)], probes: &[u128]) -> Result<(), TestCaseError> {
    let mut addrs: Vec<u128> = probes.to_vec();
    for &(p, d, _) in routes {
        addrs.extend([p, p | !mask6(d), p.wrapping_sub(1), (p | !mask6(d)).wrapping_add(1)]);
    }
    let want: Vec<u32> = addrs.iter().map(|&a| oracle(routes, a, mask6).unwrap_or(MISS)).collect();
    let bytes: Vec<[u8; 16]> = addrs.iter().map(|a| a.to_be_bytes()).collect();
    for (b, &w) in bytes.iter().zip(&want) {
        prop_assert_eq!(t.lookup(b).unwrap_or(MISS), w, "lookup {:?}", std::net::Ipv6Addr::from(*b));
    }
    let mut out = vec![0; addrs.len()];
    let hits = t.lookup_bulk(&bytes, &mut out);
    prop_assert_eq!(&out, &want);
    prop_assert_eq!(hits, want.iter().filter(|&&w| w != MISS).count());
    prop_assert_eq!(t.len(), routes.len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn lpm6_matches_oracle(ops in ops6(), probes in prop::collection::vec(addr6(), 64)) {
        let mut t = Lpm6::new(Lpm6Config { max_rules: 40, tbl8_groups: 120 }).unwrap();
        let mut routes: Vec<(u128, u8, u32)> = Vec::new();
        for op in ops {
            match op {
                Op::Add(a, d, h) => {
                    let p = a & mask6(d);
                    let pos = routes.iter().position(|r| r.0 == p && r.1 == d);
                    match t.add(a.to_be_bytes(), d, h) {
                        Ok(()) => match pos {
                            Some(i) => routes[i].2 = h,
                            None => routes.push((p, d, h)),
                        },
                        Err(Lpm6Error::RulesFull(_)) => prop_assert!(pos.is_none() && routes.len() == 40),
                        Err(Lpm6Error::Tbl8Exhausted { in_use, total, needed }) => {
                            prop_assert!(d > 24 && total - in_use < needed)
                        }
                        Err(e) => prop_assert!(false, "unexpected {}", e),
                    }
                }
                Op::DelExisting(i) if !routes.is_empty() => {
                    let (p, d, h) = routes.remove(i % routes.len());
                    prop_assert_eq!(t.delete(p.to_be_bytes(), d), Ok(h));
                }
                Op::DelExisting(_) => {}
                Op::Del(a, d) => {
                    let p = a & mask6(d);
                    match routes.iter().position(|r| r.0 == p && r.1 == d) {
                        Some(i) => prop_assert_eq!(t.delete(a.to_be_bytes(), d), Ok(routes.remove(i).2)),
                        None => prop_assert!(t.delete(a.to_be_bytes(), d).is_err()),
                    }
                }
            }
        }
        check6(&t, &routes, &probes)?;
        for (p, d, h) in routes.drain(..) {
            prop_assert_eq!(t.delete(p.to_be_bytes(), d), Ok(h));
        }
        prop_assert_eq!(t.tbl8_groups_in_use(), 0);
        check6(&t, &routes, &probes)?;
    }

    #[test]
    fn em_matches_oracle(
        ops in prop::collection::vec((any::<bool>(), 0u32..300, any::<u32>()), 1..600),
    ) {
        let key = |i: u32| Ipv4FiveTuple { src_ip: i % 17, dst_ip: i / 17, src_port: 1, dst_port: (i % 5) as u16, proto: 17 };
        let mut t = EmTable::new(EmConfig { capacity: 200 }).unwrap();
        let mut model = std::collections::HashMap::new();
        for (ins, i, v) in ops {
            if ins {
                match t.insert(key(i), v) {
                    Ok(old) => prop_assert_eq!(old, model.insert(i, v)),
                    Err(EmError::Full(200)) => prop_assert!(model.len() == 200 && !model.contains_key(&i)),
                    Err(e) => prop_assert!(false, "unexpected {}", e),
                }
            } else {
                match model.remove(&i) {
                    Some(v) => prop_assert_eq!(t.delete(&key(i)), Ok(v)),
                    None => prop_assert_eq!(t.delete(&key(i)), Err(EmError::NotFound)),
                }
            }
        }
        let keys: Vec<_> = (0..300).map(key).collect();
        let hashes: Vec<u32> = keys.iter().map(|k| k.flow_hash()).collect();
        let mut out = vec![0; 300];
        let hits = t.lookup_bulk(&hashes, &keys, &mut out);
        prop_assert_eq!(hits, model.len());
        for i in 0..300u32 {
            let want = model.get(&i).copied();
            prop_assert_eq!(t.lookup(&key(i)), want);
            prop_assert_eq!(out[i as usize], want.unwrap_or(MISS));
        }
    }
}

/// A route list as a route file of random prefixes holds it: picks from a small pool of
/// prefixes, so the same prefix comes back with new next hops; `bad` makes one route
/// invalid (a prefix length or a next hop out of range) now and then.
fn route_list<A: Copy + std::fmt::Debug>(
    addr: impl Strategy<Value = A>,
    depth: impl Strategy<Value = u8>,
) -> impl Strategy<Value = Vec<(A, u8, u32)>> {
    (
        prop::collection::vec((addr, depth), 1..20),
        prop::collection::vec((any::<Index>(), 0u32..=MAX_NEXT_HOP), 1..60),
        prop::option::weighted(0.15, (any::<Index>(), any::<bool>())),
    )
        .prop_map(|(pool, picks, bad)| {
            let mut v: Vec<(A, u8, u32)> = picks
                .iter()
                .map(|(ix, h)| {
                    let (a, d) = pool[ix.index(pool.len())];
                    (a, d, *h)
                })
                .collect();
            if let Some((ix, depth)) = bad {
                let i = ix.index(v.len());
                if depth {
                    v[i].1 = 129;
                } else {
                    v[i].2 = MAX_NEXT_HOP + 1;
                }
            }
            v
        })
}

/// The routes of `list` that a table holds once they are all added: the last next hop of
/// each prefix.
fn last_wins<A: Copy + PartialEq + std::ops::BitAnd<Output = A>>(
    list: &[(A, u8, u32)],
    mask: fn(u8) -> A,
) -> Vec<(A, u8, u32)> {
    let mut routes: Vec<(A, u8, u32)> = Vec::new();
    for &(a, d, h) in list {
        let p = a & mask(d);
        match routes.iter_mut().find(|r| r.0 == p && r.1 == d) {
            Some(r) => r.2 = h,
            None => routes.push((p, d, h)),
        }
    }
    routes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn lpm4_from_routes_matches_adds(
        list in route_list(addr4(), depth4()),
        dels in prop::collection::vec(any::<Index>(), 0..30),
        probes in prop::collection::vec(addr4(), 64),
        (max_rules, tbl8_groups) in (8u32..24, 2u32..12),
    ) {
        // Small limits so that both capacity errors happen too.
        let cfg = Lpm4Config { max_rules, tbl8_groups };
        let list: Vec<(u32, u8, u32)> = list.into_iter().map(|(a, d, h)| (a, if d > 128 { 33 } else { d }, h)).collect();
        let routes: Vec<Route4> =
            list.iter().map(|&(a, depth, next_hop)| Route4 { prefix: a.into(), depth, next_hop }).collect();
        let mut inc = Lpm4::new(cfg).unwrap();
        let one_by_one = list.iter().enumerate().try_for_each(|(i, &(a, d, h))| inc.add(a, d, h).map_err(|e| (i, e)));
        match (one_by_one, Lpm4::from_routes(cfg, &routes)) {
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (Ok(()), Ok(mut t)) => {
                let mut model = last_wins(&list, mask4);
                check4(&mut t, &model, &probes)?;
                prop_assert_eq!(t.tbl8_groups_in_use(), inc.tbl8_groups_in_use());
                for &(p, d, h) in &model {
                    prop_assert_eq!(t.get(p, d), Some(h));
                }
                // Deletes on the built table behave as on the one built route by route.
                for ix in dels {
                    if model.is_empty() {
                        break;
                    }
                    let (p, d, h) = model.remove(ix.index(model.len()));
                    prop_assert_eq!(t.delete(p, d), Ok(h));
                    prop_assert_eq!(inc.delete(p, d), Ok(h));
                    prop_assert_eq!(t.tbl8_groups_in_use(), inc.tbl8_groups_in_use());
                }
                check4(&mut t, &model, &probes)?;
                for (p, d, h) in model.drain(..) {
                    prop_assert_eq!(t.delete(p, d), Ok(h));
                }
                prop_assert_eq!(t.tbl8_groups_in_use(), 0);
                check4(&mut t, &model, &probes)?;
            }
            (a, b) => prop_assert!(false, "one by one {:?}, from_routes {:?}", a, b.err()),
        }
    }

    #[test]
    fn lpm6_from_routes_matches_adds(
        list in route_list(addr6(), depth6()),
        dels in prop::collection::vec(any::<Index>(), 0..30),
        probes in prop::collection::vec(addr6(), 64),
        (max_rules, tbl8_groups) in (8u32..24, 8u32..60),
    ) {
        let cfg = Lpm6Config { max_rules, tbl8_groups };
        let routes: Vec<Route6> =
            list.iter().map(|&(a, depth, next_hop)| Route6 { prefix: a.into(), depth, next_hop }).collect();
        let mut inc = Lpm6::new(cfg).unwrap();
        let one_by_one = list
            .iter()
            .enumerate()
            .try_for_each(|(i, &(a, d, h))| inc.add(a.to_be_bytes(), d, h).map_err(|e| (i, e)));
        match (one_by_one, Lpm6::from_routes(cfg, &routes)) {
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (Ok(()), Ok(mut t)) => {
                let mut model = last_wins(&list, mask6);
                check6(&t, &model, &probes)?;
                prop_assert_eq!(t.tbl8_groups_in_use(), inc.tbl8_groups_in_use());
                for &(p, d, h) in &model {
                    prop_assert_eq!(t.get(p.to_be_bytes(), d), Some(h));
                }
                for ix in dels {
                    if model.is_empty() {
                        break;
                    }
                    let (p, d, h) = model.remove(ix.index(model.len()));
                    prop_assert_eq!(t.delete(p.to_be_bytes(), d), Ok(h));
                    prop_assert_eq!(inc.delete(p.to_be_bytes(), d), Ok(h));
                    prop_assert_eq!(t.tbl8_groups_in_use(), inc.tbl8_groups_in_use());
                }
                check6(&t, &model, &probes)?;
                for (p, d, h) in model.drain(..) {
                    prop_assert_eq!(t.delete(p.to_be_bytes(), d), Ok(h));
                }
                prop_assert_eq!(t.tbl8_groups_in_use(), 0);
                check6(&t, &model, &probes)?;
            }
            (a, b) => prop_assert!(false, "one by one {:?}, from_routes {:?}", a, b.err()),
        }
    }
}
