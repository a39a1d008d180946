#![allow(unsafe_code)]

use super::*;
use crate::buf::PacketBuf;
use crate::burst::Burst;

fn pool(n: u32) -> Mempool {
    let mut c = MempoolConfig::new("t", n);
    c.backing = MemBacking::Normal;
    c.cache_size = 8;
    Mempool::new(c).unwrap()
}

#[test]
fn alloc_until_exhausted_then_recover() {
    let p = pool(40);
    let mut held = vec![];
    loop {
        match p.alloc() {
            Ok(m) => held.push(m),
            Err(MempoolError::Exhausted) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(held.len(), 40);
    assert_eq!(p.in_use(), 40);
    held.clear();
    assert_eq!(p.in_use(), 0);
    assert_eq!(p.available(), 40);
}

#[test]
fn alloc_bulk_all_or_nothing() {
    let p = pool(20);
    let mut b: Burst<Mbuf, 32> = Burst::new();
    p.alloc_bulk(&mut b, 16).unwrap();
    assert!(matches!(p.alloc_bulk(&mut b, 8), Err(MempoolError::Exhausted)));
    assert_eq!(b.len(), 16, "a failed bulk alloc leaves nothing behind");
    assert_eq!(p.in_use(), 16);
    Mbuf::free_bulk(&mut b);
    assert!(b.is_empty());
    assert_eq!(p.in_use(), 0);
    assert_eq!(p.available(), 20);
}

#[test]
fn headroom_and_buffer_ops() {
    let p = pool(4);
    let mut m = p.alloc().unwrap();
    assert_eq!(m.headroom(), DEFAULT_HEADROOM as usize);
    assert_eq!(m.len(), 0);
    assert_eq!(m.tailroom(), 2048 - 64 - 256);
    m.append(100).unwrap().copy_from_slice(&[7; 100]);
    m.prepend(14).unwrap().copy_from_slice(&[1; 14]);
    assert_eq!(m.len(), 114);
    assert_eq!(m.data()[13], 1);
    assert_eq!(m.data()[14], 7);
    assert!(m.adj(14));
    assert!(m.trim(50));
    assert_eq!(m.len(), 50);
    assert!(!m.adj(51));
    assert!(m.prepend(4096).is_none());
    assert!(m.append(4096).is_none());
    assert!(!m.set_len(5000));
    let mut meta = m.meta();
    meta.port = 3;
    meta.hash = 0xdead;
    m.set_meta(meta);
    assert_eq!((m.port(), m.hash()), (3, 0xdead));
}

#[test]
fn fresh_mbuf_has_reset_metadata() {
    let p = pool(1);
    let mut m = p.alloc().unwrap();
    m.set_port(9);
    m.append(10);
    drop(m);
    let m = p.alloc().unwrap();
    assert_eq!(m.len(), 0);
    assert_eq!(m.port(), u16::MAX);
    assert_eq!(m.headroom(), DEFAULT_HEADROOM as usize);
}

#[test]
fn chunk_offsets_round_trip() {
    let p = pool(8);
    let mut m = p.alloc().unwrap();
    m.append(60).unwrap()[0] = 0x42;
    let off = p.chunk_offset(&m).unwrap();
    assert_eq!(off % 2048, 0);
    let data = p.data_offset(&m).unwrap();
    assert_eq!(data, off + 64 + 256);
    let raw = m.into_raw_chunk();
    assert_eq!(raw - p.region().base() as usize, off as usize);
    // SAFETY: we own the chunk (into_raw_chunk above).
    let m2 = unsafe { p.mbuf_from_offset(data, 60) }.unwrap();
    assert_eq!(m2.data()[0], 0x42);
    assert_eq!(m2.len(), 60);
    // Out of range addresses are refused.
    // SAFETY: these return None without touching memory.
    assert!(unsafe { p.mbuf_from_offset(p.region().len() as u64 + 64, 10) }.is_none());
    // SAFETY: refused before touching memory.
    assert!(unsafe { p.mbuf_from_offset(off + 8, 10) }.is_none());
    // SAFETY: refused before touching memory.
    assert!(unsafe { p.mbuf_from_offset(off + 2000, 100) }.is_none());
}

#[test]
fn bad_configs_are_errors() {
    for f in [
        |c: &mut MempoolConfig| c.size = 0,
        |c: &mut MempoolConfig| c.chunk_size = 3000,
        |c: &mut MempoolConfig| c.chunk_size = 512,
        |c: &mut MempoolConfig| c.headroom = 64,
        |c: &mut MempoolConfig| c.cache_size = 5000,
        |c: &mut MempoolConfig| {
            c.chunk_size = 1024;
            c.headroom = 1000
        },
    ] {
        let mut c = MempoolConfig::new("bad", 8);
        f(&mut c);
        assert!(matches!(Mempool::new(c), Err(MempoolError::Config(_))));
    }
}

#[test]
fn cross_thread_free_and_stats() {
    let p = pool(256);
    let mut b: Burst<Mbuf, 64> = Burst::new();
    p.alloc_bulk(&mut b, 64).unwrap();
    let h = std::thread::spawn(move || {
        let mut b = b;
        Mbuf::free_bulk(&mut b);
    });
    h.join().unwrap();
    assert_eq!(p.in_use(), 0);
    let st = p.stats();
    assert_eq!(st.in_ring + st.caches.iter().map(|c| c.1).sum::<usize>(), 256);
}

#[test]
fn pool_dropped_with_mbufs_out_keeps_them_valid() {
    let p = pool(4);
    let mut m = p.alloc().unwrap();
    drop(p);
    m.append(10).unwrap().fill(1);
    assert_eq!(m.data(), &[1; 10]);
    drop(m);
}

#[test]
fn many_threads_no_loss() {
    let p = pool(1024);
    let hs: Vec<_> = (0..4)
        .map(|_| {
            let p = p.clone();
            std::thread::spawn(move || {
                let mut b: Burst<Mbuf, 64> = Burst::new();
                for i in 0..if cfg!(miri) { 20 } else { 20_000 } {
                    let n = i % 64 + 1;
                    if p.alloc_bulk(&mut b, n).is_ok() {
                        for m in b.iter_mut() {
                            m.append(1).unwrap()[0] = 1;
                        }
                        Mbuf::free_bulk(&mut b);
                    }
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(p.in_use(), 0);
    assert_eq!(p.available(), 1024);
}
