//! Loom model tests of the ring protocol: every interleaving of a few producers and consumers
//! on a tiny ring. Run with:
//! `RUSTFLAGS="--cfg loom" cargo test -p dataplane --test loom_ring --release`
#![cfg(loom)]

use dataplane::burst::Burst;
use dataplane::ring::{spsc, Ring};
use loom::sync::Arc;
use loom::thread;

/// Explores interleavings with a preemption bound: the MPMC ring's publish step spins until
/// earlier reservations are published, which an unbounded search cannot exhaust.
fn model<F: Fn() + Sync + Send + 'static>(f: F) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.max_branches = 100_000;
    b.check(f);
}

/// Two producers enqueue one value each into a ring of 2 while a consumer tries to take
/// them: after everyone is done, each value was taken exactly once.
#[test]
fn mpmc_two_producers_one_consumer() {
    model(|| {
        let r = Arc::new(Ring::<u32>::new(2).unwrap());
        let hs: Vec<_> = (0..2u32)
            .map(|i| {
                let r = r.clone();
                thread::spawn(move || assert!(r.enqueue(i + 1).is_ok()))
            })
            .collect();
        let mut got: Vec<u32> = (0..2).filter_map(|_| r.dequeue()).collect();
        for h in hs {
            h.join().unwrap();
        }
        while let Some(v) = r.dequeue() {
            got.push(v);
        }
        got.sort();
        assert_eq!(got, vec![1, 2]);
    });
}

/// One producer, two consumers racing on the consumer head: no value is taken twice.
#[test]
fn mpmc_one_producer_two_consumers() {
    model(|| {
        let r = Arc::new(Ring::<u32>::new(2).unwrap());
        assert_eq!(r.enqueue_slice(&[1, 2]), 2);
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let r = r.clone();
                thread::spawn(move || r.dequeue())
            })
            .collect();
        let mut got: Vec<u32> = hs.into_iter().filter_map(|h| h.join().unwrap()).collect();
        got.sort();
        assert_eq!(got, vec![1, 2]);
    });
}

/// Bulk is all or nothing while a consumer frees room concurrently.
#[test]
fn mpmc_bulk_all_or_nothing() {
    model(|| {
        let r = Arc::new(Ring::<u32>::new(2).unwrap());
        assert_eq!(r.enqueue_slice(&[7]), 1);
        let c = {
            let r = r.clone();
            thread::spawn(move || r.dequeue())
        };
        let n = r.enqueue_slice_bulk(&[8, 9]);
        assert!(n == 0 || n == 2);
        let first = c.join().unwrap();
        assert_eq!(first, Some(7));
        let mut rest = [0u32; 2];
        let m = r.dequeue_slice(&mut rest);
        assert_eq!(m, n);
    });
}

/// SPSC: values arrive in order, none lost, through a ring smaller than the stream; owned
/// values left in the ring are dropped once.
#[test]
fn spsc_in_order() {
    model(|| {
        let (p, c) = spsc::channel::<u32>(2).unwrap();
        let h = thread::spawn(move || {
            let mut b: Burst<u32, 4> = Burst::new();
            b.extend([1, 2, 3]);
            while !b.is_empty() {
                if p.enqueue_burst(&mut b) == 0 {
                    thread::yield_now();
                }
            }
        });
        let mut got = vec![];
        while got.len() < 3 {
            match c.dequeue() {
                Some(v) => got.push(v),
                None => thread::yield_now(),
            }
        }
        h.join().unwrap();
        assert_eq!(got, vec![1, 2, 3]);
    });
}
