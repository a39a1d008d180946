//! EAL-backed tests of the bindings and the C shim.
//!
//! EAL can be initialised once per process, so this binary has a single `#[test]` that
//! initialises it (no hugepages, no PCI, a per-process `--file-prefix`, `net_null0` and
//! `net_ring0` vdevs)
//! and runs the sub-cases one after another on the same (main-lcore) thread.
//! `--in-memory` is not used: EAL 22.11 rejects it together with `--no-huge` ("--legacy-mem
//! is not compatible with --in-memory"; `--no-huge` implies legacy memory).
//! Needs root.
#![cfg(dpdk_found)]

use std::ffi::{c_void, CStr, CString};
use std::ptr;

use dpdk_sys::*;

const BURST: usize = 32;

fn eal_args(prefix: &str) -> Vec<String> {
    [
        "dpdk-sys-test",
        "-l",
        "0",
        "--no-huge",
        "--no-pci",
        "-m",
        "256",
        "--no-telemetry",
        "--file-prefix",
        prefix,
        "--log-level=notice",
        "--vdev=net_null0",
        "--vdev=net_ring0",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn err_text() -> String {
    let e = rte_errno();
    format!("rte_errno {e}: {}", strerror(e))
}

fn cstr(s: &str) -> CString {
    CString::new(s).expect("test names have no NUL")
}

#[test]
fn eal_suite() {
    let prefix = format!("dpdksys{}", std::process::id());
    let args = eal_args(&prefix);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    // The null PMD is not linked in: only EAL's plugin loading brings it in (see below).
    assert!(!is_loaded(&format!("{PMD_DIR}/librte_net_null.so")), "net_null loaded before EAL init");
    let consumed = eal_init(&argv).unwrap_or_else(|e| panic!("eal_init: {e} {}", strerror(e)));
    assert_eq!(consumed as usize, argv.len() - 1, "EAL consumes all but argv[0]");
    // A second init is refused, and says so through rte_errno.
    assert_eq!(eal_init(&argv), Err(EALREADY));

    pmds_are_loaded();
    lcore_and_cycles();
    let pool = mbuf_pool();
    mbuf_ops(pool);
    null_port(pool);
    ring_port_loopback(pool);
    ring_burst_and_bulk();
    lpm4();
    lpm6();
    hash_and_hash_functions();

    // SAFETY: every port and user of the pool was stopped/closed above.
    unsafe { rte_mempool_free(pool) };
    // SAFETY: EAL was initialised by this thread; nothing uses DPDK after this.
    assert_eq!(unsafe { rte_eal_cleanup() }, 0, "{}", err_text());
}

const EALREADY: i32 = libc::EALREADY;

/// The PMDs the project cares about are loaded into the process after `rte_eal_init`
/// (EAL dlopens `PMD_DIR`; see the crate docs), for each one the installed DPDK ships.
fn pmds_are_loaded() {
    let wanted = ["null", "ring", "af_packet", "af_xdp", "tap", "virtio", "ixgbe", "i40e", "ice", "mlx5"];
    let mut present = 0;
    for name in wanted {
        let path = format!("{PMD_DIR}/librte_net_{name}.so");
        if !std::path::Path::new(&path).exists() {
            eprintln!("note: {path} not installed; skipped");
            continue;
        }
        present += 1;
        assert!(is_loaded(&path), "PMD {name} ({path}) was not loaded by rte_eal_init");
    }
    // null and ring are used below; they must exist.
    assert!(present >= 2, "net_null and net_ring PMDs missing from {PMD_DIR}");
}

/// Whether the shared object at `path` is already loaded into this process.
fn is_loaded(path: &str) -> bool {
    let c = cstr(path);
    // SAFETY: RTLD_NOLOAD only queries the loader (never loads or runs constructors); a
    // non-null handle is released right away, restoring the reference count.
    unsafe {
        let h = libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD);
        if h.is_null() {
            return false;
        }
        libc::dlclose(h);
        true
    }
}

fn lcore_and_cycles() {
    // SAFETY: plain queries, EAL is initialised and this is the main lcore's thread.
    unsafe {
        assert_eq!(dpdk_shim_lcore_id(), 0, "main lcore is -l 0");
        assert_eq!(rte_get_main_lcore(), 0);
        assert!(rte_socket_id() < RTE_MAX_NUMA_NODES);
        let hz = rte_get_tsc_hz();
        assert!(hz > 1_000_000, "TSC at {hz} Hz");
        let a = dpdk_shim_rdtsc();
        let b = dpdk_shim_rdtsc_precise();
        let c = dpdk_shim_get_tsc_cycles();
        assert!(a <= b && b <= c, "{a} {b} {c}");
    }
}

fn mbuf_pool() -> *mut rte_mempool {
    let name = cstr("dpdksys_pool");
    // SAFETY: EAL is initialised; name is a valid C string for the call.
    let pool = unsafe {
        rte_pktmbuf_pool_create(name.as_ptr(), 8191, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE as u16, rte_socket_id() as i32)
    };
    assert!(!pool.is_null(), "rte_pktmbuf_pool_create: {}", err_text());
    // SAFETY: pool is a valid mempool.
    assert_eq!(unsafe { rte_mempool_avail_count(pool) }, 8191);
    pool
}

/// Rust accessors in `dpdk_sys::mbuf` agree with the C shim (which uses DPDK's macros).
fn assert_accessors_agree(m: *mut rte_mbuf) {
    // SAFETY: m is a valid mbuf owned by the caller.
    unsafe {
        assert_eq!(mbuf::mtod(&*m), dpdk_shim_pktmbuf_mtod(m).cast::<u8>());
        assert_eq!(mbuf::buf_addr(&*m), dpdk_shim_pktmbuf_buf_addr(m).cast::<u8>());
        assert_eq!(mbuf::buf_len(&*m), dpdk_shim_pktmbuf_buf_len(m));
        assert_eq!(mbuf::data_len(&*m), dpdk_shim_pktmbuf_data_len(m));
        assert_eq!(mbuf::pkt_len(&*m), dpdk_shim_pktmbuf_pkt_len(m));
        assert_eq!(mbuf::data_off(&*m), dpdk_shim_pktmbuf_data_off(m));
        assert_eq!(mbuf::port(&*m), dpdk_shim_pktmbuf_port(m));
        assert_eq!(mbuf::ol_flags(&*m), dpdk_shim_pktmbuf_ol_flags(m));
        assert_eq!(mbuf::packet_type(&*m), dpdk_shim_pktmbuf_packet_type(m));
        assert_eq!(mbuf::rss_hash(&*m), dpdk_shim_pktmbuf_rss_hash(m));
        assert_eq!(mbuf::headroom(&*m), dpdk_shim_pktmbuf_headroom(m));
        assert_eq!(mbuf::tailroom(&*m), dpdk_shim_pktmbuf_tailroom(m));
    }
}

fn mbuf_ops(pool: *mut rte_mempool) {
    // SAFETY: pool is valid; every mbuf is checked non-null before use and freed once.
    unsafe {
        let m = dpdk_shim_pktmbuf_alloc(pool);
        assert!(!m.is_null());
        assert_eq!(dpdk_shim_mbuf_refcnt_read(m), 1);
        let head = RTE_PKTMBUF_HEADROOM as u16;
        let room = RTE_MBUF_DEFAULT_BUF_SIZE as u16 - head;
        assert_eq!((mbuf::headroom(&*m), mbuf::data_len(&*m), mbuf::tailroom(&*m)), (head, 0, room));

        let p = dpdk_shim_pktmbuf_append(m, 100).cast::<u8>();
        assert_eq!(p, mbuf::mtod(&*m));
        ptr::write_bytes(p, 0xab, 100);
        let h = dpdk_shim_pktmbuf_prepend(m, 14).cast::<u8>();
        assert_eq!(h, p.sub(14));
        ptr::write_bytes(h, 0x11, 14);
        assert_eq!((mbuf::data_len(&*m), mbuf::pkt_len(&*m)), (114, 114));
        assert_eq!(mbuf::headroom(&*m), head - 14);
        assert_accessors_agree(m);

        // Out of room: NULL / -1 and the mbuf unchanged.
        assert!(dpdk_shim_pktmbuf_prepend(m, head).is_null());
        assert!(dpdk_shim_pktmbuf_append(m, room).is_null());
        assert!(dpdk_shim_pktmbuf_adj(m, 115).is_null());
        assert_eq!(dpdk_shim_pktmbuf_trim(m, 115), -1);
        assert_eq!(mbuf::data_len(&*m), 114);

        let after = dpdk_shim_pktmbuf_adj(m, 14).cast::<u8>();
        assert_eq!(after, p);
        assert_eq!(*after, 0xab);
        assert_eq!(dpdk_shim_pktmbuf_trim(m, 60), 0);
        assert_eq!((mbuf::data_len(&*m), mbuf::pkt_len(&*m)), (40, 40));
        assert_eq!(mbuf::tailroom(&*m), room - 40);
        dpdk_shim_pktmbuf_reset(m);
        assert_eq!((mbuf::data_len(&*m), mbuf::headroom(&*m)), (0, head));
        dpdk_shim_pktmbuf_free(m);
        dpdk_shim_pktmbuf_free(ptr::null_mut()); // NULL is allowed

        // Bulk alloc / free_bulk (exported in 22.11) give everything back.
        let mut ms = [ptr::null_mut::<rte_mbuf>(); BURST];
        assert_eq!(dpdk_shim_pktmbuf_alloc_bulk(pool, ms.as_mut_ptr(), BURST as u32), 0);
        assert!(ms.iter().all(|m| !m.is_null()));
        rte_pktmbuf_free_bulk(ms.as_mut_ptr(), BURST as u32);

        // Raw mempool get/put bulk.
        let mut objs = [ptr::null_mut::<c_void>(); 8];
        assert_eq!(dpdk_shim_mempool_get_bulk(pool, objs.as_mut_ptr(), 8), 0);
        dpdk_shim_mempool_put_bulk(pool, objs.as_ptr(), 8);
        // Objects may sit in the lcore cache, but none is lost.
        assert_eq!(rte_mempool_avail_count(pool), 8191);
    }
}

fn port_by_name(name: &str) -> u16 {
    let c = cstr(name);
    let mut port = u16::MAX;
    // SAFETY: valid C string and out pointer.
    let rc = unsafe { rte_eth_dev_get_port_by_name(c.as_ptr(), &mut port) };
    assert_eq!(rc, 0, "port {name} not found: {}", strerror(-rc));
    port
}

fn setup_port(port: u16, pool: *mut rte_mempool, conf: &rte_eth_conf) {
    // SAFETY: port exists; conf and pool are valid; NULL queue confs mean defaults.
    unsafe {
        let socket = rte_eth_dev_socket_id(port);
        let socket = if socket < 0 { SOCKET_ID_ANY } else { socket };
        assert_eq!(rte_eth_dev_configure(port, 1, 1, conf), 0, "{}", err_text());
        let rc = rte_eth_rx_queue_setup(port, 0, 512, socket as u32, ptr::null(), pool);
        assert_eq!(rc, 0, "rx_queue_setup {}", strerror(-rc));
        let rc = rte_eth_tx_queue_setup(port, 0, 512, socket as u32, ptr::null());
        assert_eq!(rc, 0, "tx_queue_setup {}", strerror(-rc));
        assert_eq!(rte_eth_dev_start(port), 0, "{}", err_text());
    }
}

fn stop_close(port: u16) {
    // SAFETY: port was started by setup_port.
    unsafe {
        assert_eq!(rte_eth_dev_stop(port), 0);
        assert_eq!(rte_eth_dev_close(port), 0);
    }
}

fn xstat_names(port: u16) -> Vec<String> {
    // SAFETY: a NULL/0 call returns the count; the buffer then has exactly that room.
    unsafe {
        let n = rte_eth_xstats_get_names(port, ptr::null_mut(), 0);
        assert!(n > 0, "xstats count {n}");
        let mut names = vec![rte_eth_xstat_name::default(); n as usize];
        let got = rte_eth_xstats_get_names(port, names.as_mut_ptr(), n as u32);
        assert_eq!(got, n);
        let mut vals = vec![rte_eth_xstat::default(); n as usize];
        assert_eq!(rte_eth_xstats_get(port, vals.as_mut_ptr(), n as u32), n);
        names.iter().map(|x| CStr::from_ptr(x.name.as_ptr()).to_string_lossy().into_owned()).collect()
    }
}

fn null_port(pool: *mut rte_mempool) {
    // SAFETY: plain query, EAL is initialised.
    let ports = unsafe { rte_eth_dev_count_avail() };
    assert!(ports >= 2, "net_null0 + net_ring0, got {ports}");
    let port = port_by_name("net_null0");

    // net_null advertises RSS: configure it, which checks that the 64-bit RSS flag
    // constants (function-like macros in C) came through with their values.
    let mut info = rte_eth_dev_info::default();
    // SAFETY: valid port and out pointer.
    assert_eq!(unsafe { rte_eth_dev_info_get(port, &mut info) }, 0);
    assert_eq!(info.flow_type_rss_offloads, RTE_ETH_RSS_PROTO_MASK);
    assert_eq!(info.reta_size, RTE_ETH_RSS_RETA_SIZE_128 as u16);
    let mut conf = rte_eth_conf::default();
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf = RTE_ETH_RSS_IP | RTE_ETH_RSS_NONFRAG_IPV4_UDP;
    setup_port(port, pool, &conf);
    let mut rss = rte_eth_rss_conf::default();
    // SAFETY: valid port; rss_key NULL means "do not copy the key".
    assert_eq!(unsafe { rte_eth_dev_rss_hash_conf_get(port, &mut rss) }, 0);
    assert_eq!(rss.rss_hf, RTE_ETH_RSS_IP | RTE_ETH_RSS_NONFRAG_IPV4_UDP);

    // SAFETY: the port is started with one rx and one tx queue; the mbuf array has room
    // for BURST pointers; received mbufs are handed to tx (which frees them) or freed.
    unsafe {
        let mut link = rte_eth_link::default();
        assert_eq!(rte_eth_link_get_nowait(port, &mut link), 0);
        assert_eq!(link.link_status(), RTE_ETH_LINK_UP as u16);

        let mut pkts = [ptr::null_mut::<rte_mbuf>(); BURST];
        let mut rx_total = 0u64;
        for _ in 0..4 {
            let n = dpdk_shim_rx_burst(port, 0, pkts.as_mut_ptr(), BURST as u16);
            assert_eq!(n as usize, BURST, "net_null fills every burst");
            for &m in &pkts[..n as usize] {
                assert_eq!(mbuf::data_len(&*m), 64, "net_null default packet size");
                assert_eq!(mbuf::port(&*m), port);
                assert_accessors_agree(m);
            }
            rx_total += u64::from(n);
            let sent = dpdk_shim_tx_burst(port, 0, pkts.as_mut_ptr(), n);
            assert_eq!(sent, n, "net_null takes every packet");
        }
        assert_eq!(rte_mempool_avail_count(pool), 8191, "tx freed every mbuf");

        let mut st = rte_eth_stats::default();
        assert_eq!(rte_eth_stats_get(port, &mut st), 0);
        assert_eq!(st.ipackets, rx_total);
        assert_eq!(st.opackets, rx_total);
        // net_null in 22.11 counts packets only; its byte counters stay 0.
        assert_eq!(st.imissed + st.ierrors + st.oerrors, 0);
    }

    let names = xstat_names(port);
    for want in ["rx_good_packets", "tx_good_packets", "rx_good_bytes", "rx_q0_packets"] {
        assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
    }
    stop_close(port);
}

/// `--vdev=net_ring0` loops tx back to rx through one rte_ring per queue.
fn ring_port_loopback(pool: *mut rte_mempool) {
    let port = port_by_name("net_ring0");
    setup_port(port, pool, &rte_eth_conf::default());
    // SAFETY: as in null_port; every mbuf sent is received back and freed once.
    unsafe {
        let mut out = [ptr::null_mut::<rte_mbuf>(); 8];
        assert_eq!(dpdk_shim_pktmbuf_alloc_bulk(pool, out.as_mut_ptr(), 8), 0);
        for (i, &m) in out.iter().enumerate() {
            let p = dpdk_shim_pktmbuf_append(m, 60).cast::<u8>();
            ptr::write_bytes(p, i as u8, 60);
        }
        assert_eq!(dpdk_shim_tx_burst(port, 0, out.as_mut_ptr(), 8), 8);
        let mut back = [ptr::null_mut::<rte_mbuf>(); BURST];
        let n = dpdk_shim_rx_burst(port, 0, back.as_mut_ptr(), BURST as u16);
        assert_eq!(n, 8);
        assert_eq!(&back[..8], &out[..], "same mbufs, same order");
        for (i, &m) in back[..8].iter().enumerate() {
            assert_eq!(mbuf::data_len(&*m), 60);
            assert_eq!(*mbuf::mtod(&*m).add(59), i as u8);
        }
        assert_eq!(dpdk_shim_rx_burst(port, 0, back.as_mut_ptr(), BURST as u16), 0);
        rte_pktmbuf_free_bulk(back.as_mut_ptr(), 8);
        let mut st = rte_eth_stats::default();
        assert_eq!(rte_eth_stats_get(port, &mut st), 0);
        assert_eq!((st.ipackets, st.opackets), (8, 8));

        // The Rust twins of rte_eth_tx_burst/rx_burst: same loopback, and installed rx/tx
        // callbacks run (they count what they see; the tx one passes at most 3 on).
        unsafe extern "C" fn rx_cb(_: u16, _: u16, _: *mut *mut rte_mbuf, n: u16, _: u16, c: *mut c_void) -> u16 {
            // SAFETY: c is a static AtomicU32, given at install time.
            unsafe { (*c.cast::<AtomicU32>()).fetch_add(u32::from(n), Ordering::Relaxed) };
            n
        }
        unsafe extern "C" fn tx_cb(_: u16, _: u16, _: *mut *mut rte_mbuf, n: u16, c: *mut c_void) -> u16 {
            // SAFETY: as in rx_cb.
            unsafe { (*c.cast::<AtomicU32>()).fetch_add(u32::from(n), Ordering::Relaxed) };
            n.min(3)
        }
        use std::sync::atomic::{AtomicU32, Ordering};
        static RX_SEEN: AtomicU32 = AtomicU32::new(0);
        static TX_SEEN: AtomicU32 = AtomicU32::new(0);
        assert_eq!(dpdk_shim_pktmbuf_alloc_bulk(pool, out.as_mut_ptr(), 8), 0);
        assert_eq!(ethdev::tx_burst(port, 0, out.as_mut_ptr(), 4), 4, "no callback yet");
        assert_eq!(ethdev::rx_burst(port, 0, back.as_mut_ptr(), BURST as u16), 4);
        assert_eq!(&back[..4], &out[..4], "same mbufs, same order");
        let rx = rte_eth_add_rx_callback(port, 0, Some(rx_cb), ptr::addr_of!(RX_SEEN).cast_mut().cast());
        let tx = rte_eth_add_tx_callback(port, 0, Some(tx_cb), ptr::addr_of!(TX_SEEN).cast_mut().cast());
        assert!(!rx.is_null() && !tx.is_null(), "{}", err_text());
        assert_eq!(ethdev::tx_burst(port, 0, out[4..].as_mut_ptr(), 4), 3, "the tx callback passed 3 of 4");
        assert_eq!(ethdev::rx_burst(port, 0, back[4..].as_mut_ptr(), BURST as u16 - 4), 3);
        assert_eq!(&back[4..7], &out[4..7]);
        assert_eq!((RX_SEEN.load(Ordering::Relaxed), TX_SEEN.load(Ordering::Relaxed)), (3, 4));
        assert_eq!(ethdev::rx_burst(port, 0, back.as_mut_ptr(), 0), 0);
        back[7] = out[7];
        rte_pktmbuf_free_bulk(back.as_mut_ptr(), 8);
        assert_eq!(rte_eth_remove_rx_callback(port, 0, rx), 0);
        assert_eq!(rte_eth_remove_tx_callback(port, 0, tx), 0);
    }
    stop_close(port);
}

fn fake_objs(range: std::ops::Range<usize>) -> Vec<*mut c_void> {
    range.map(|i| (i * 8 + 8) as *mut c_void).collect()
}

fn ring_burst_and_bulk() {
    type Enq = unsafe extern "C" fn(*mut rte_ring, *const *mut c_void, u32, *mut u32) -> u32;
    type Deq = unsafe extern "C" fn(*mut rte_ring, *mut *mut c_void, u32, *mut u32) -> u32;
    let variants: [(&str, u32, Enq, Enq, Deq, Deq); 3] = [
        (
            "spsc",
            RING_F_SP_ENQ | RING_F_SC_DEQ,
            dpdk_shim_ring_sp_enqueue_burst,
            dpdk_shim_ring_sp_enqueue_bulk,
            dpdk_shim_ring_sc_dequeue_burst,
            dpdk_shim_ring_sc_dequeue_bulk,
        ),
        (
            "mpmc",
            0,
            dpdk_shim_ring_mp_enqueue_burst,
            dpdk_shim_ring_mp_enqueue_bulk,
            dpdk_shim_ring_mc_dequeue_burst,
            dpdk_shim_ring_mc_dequeue_bulk,
        ),
        (
            "generic",
            RING_F_SP_ENQ,
            dpdk_shim_ring_enqueue_burst,
            dpdk_shim_ring_enqueue_bulk,
            dpdk_shim_ring_dequeue_burst,
            dpdk_shim_ring_dequeue_bulk,
        ),
    ];
    for (name, flags, enq_burst, enq_bulk, deq_burst, deq_bulk) in variants {
        let cname = cstr(&format!("dpdksys_ring_{name}"));
        // SAFETY: EAL is initialised; the ring is used by this thread only and freed at
        // the end; object tables have at least n entries for every call.
        unsafe {
            let r = rte_ring_create(cname.as_ptr(), 1024, SOCKET_ID_ANY, flags);
            assert!(!r.is_null(), "rte_ring_create {name}: {}", err_text());
            assert_eq!((*r).capacity, 1023, "rte_ring struct layout");
            let objs = fake_objs(0..1100);
            let mut free = u32::MAX;
            assert_eq!(enq_burst(r, objs.as_ptr(), 1000, &mut free), 1000);
            assert_eq!(free, 23);
            // bulk is all or nothing; burst takes what fits.
            assert_eq!(enq_bulk(r, objs[1000..].as_ptr(), 24, &mut free), 0);
            assert_eq!(free, 23);
            assert_eq!(enq_burst(r, objs[1000..].as_ptr(), 100, &mut free), 23);
            assert_eq!(free, 0);
            assert_eq!(dpdk_shim_ring_count(r), 1023);
            assert_eq!(dpdk_shim_ring_free_count(r), 0);

            let mut out = vec![ptr::null_mut::<c_void>(); 2048];
            let mut avail = u32::MAX;
            assert_eq!(deq_bulk(r, out.as_mut_ptr(), 1024, &mut avail), 0);
            assert_eq!(avail, 1023);
            assert_eq!(deq_bulk(r, out.as_mut_ptr(), 3, &mut avail), 3);
            assert_eq!(avail, 1020);
            assert_eq!(deq_burst(r, out[3..].as_mut_ptr(), 2000, &mut avail), 1020);
            assert_eq!(avail, 0);
            assert_eq!(&out[..1023], &objs[..1023], "FIFO order, nothing lost");
            assert_eq!(deq_burst(r, out.as_mut_ptr(), 32, ptr::null_mut()), 0);
            // NULL free_space/available pointers are allowed.
            assert_eq!(enq_bulk(r, objs.as_ptr(), 32, ptr::null_mut()), 32);
            assert_eq!(deq_bulk(r, out.as_mut_ptr(), 32, ptr::null_mut()), 32);
            rte_ring_free(r);
        }
    }
}

/// A linear-scan longest-prefix-match oracle.
fn lpm_oracle(routes: &[(u32, u8, u32)], ip: u32) -> Option<u32> {
    routes
        .iter()
        .filter(|(net, depth, _)| {
            let mask = if *depth == 0 { 0 } else { u32::MAX << (32 - depth) };
            ip & mask == *net & mask
        })
        .max_by_key(|(_, depth, _)| *depth)
        .map(|(_, _, hop)| *hop)
}

/// xorshift32: deterministic pseudo-random addresses without a dependency.
fn xorshift(state: &mut u32) -> u32 {
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    *state
}

fn lpm4() {
    let ip = |a: u8, b: u8, c: u8, d: u8| u32::from_be_bytes([a, b, c, d]);
    let routes = [
        (ip(10, 0, 0, 0), 8, 1),
        (ip(10, 1, 0, 0), 16, 2),
        (ip(10, 1, 2, 0), 24, 3),
        (ip(10, 1, 2, 128), 25, 4), // > 24: lives in a tbl8 group
        (ip(192, 168, 0, 0), 16, 5),
        (ip(192, 168, 7, 7), 32, 6),
    ];
    let name = cstr("dpdksys_lpm");
    let cfg = rte_lpm_config { max_rules: 1024, number_tbl8s: 256, flags: 0 };
    // SAFETY: EAL is initialised; all arrays passed have the length given; the LPM is
    // freed at the end.
    unsafe {
        let lpm = rte_lpm_create(name.as_ptr(), SOCKET_ID_ANY, &cfg);
        assert!(!lpm.is_null(), "rte_lpm_create: {}", err_text());
        for &(net, depth, hop) in &routes {
            assert_eq!(rte_lpm_add(lpm, net, depth, hop), 0);
        }
        let mut probes = vec![
            ip(10, 1, 2, 129),
            ip(10, 1, 2, 127),
            ip(10, 1, 3, 1),
            ip(10, 2, 0, 0),
            ip(11, 0, 0, 0),
            ip(192, 168, 7, 7),
            ip(192, 168, 7, 8),
            ip(0, 0, 0, 0),
        ];
        let mut s = 0x1234_5678;
        // Random addresses, half forced into 10/8 and 192.168/16 to hit routes.
        for i in 0..1000 {
            let r = xorshift(&mut s);
            probes.push(match i % 3 {
                0 => r,
                1 => (r & 0x00ff_ffff) | 0x0a00_0000,
                _ => (r & 0x0000_ffff) | 0xc0a8_0000,
            });
        }
        while probes.len() % 4 != 0 {
            probes.push(0);
        }
        let expect: Vec<Option<u32>> = probes.iter().map(|&a| lpm_oracle(&routes, a)).collect();
        assert_eq!(expect[0], Some(4));
        assert_eq!(expect[4], None);

        for (&a, &want) in probes.iter().zip(&expect) {
            let mut hop = u32::MAX;
            let rc = dpdk_shim_lpm_lookup(lpm, a, &mut hop);
            match want {
                Some(h) => assert_eq!((rc, hop), (0, h), "lookup {a:#x}"),
                None => assert_eq!(rc, -libc::ENOENT, "lookup {a:#x}"),
            }
        }

        let mut hops = vec![0u32; probes.len()];
        let rc = dpdk_shim_lpm_lookup_bulk(lpm, probes.as_ptr(), hops.as_mut_ptr(), probes.len() as u32);
        assert_eq!(rc, 0);
        for (i, &want) in expect.iter().enumerate() {
            let hit = hops[i] & RTE_LPM_LOOKUP_SUCCESS != 0;
            let got = hit.then_some(hops[i] & 0x00ff_ffff);
            assert_eq!(got, want, "lookup_bulk {:#x}", probes[i]);
        }

        const MISS: u32 = 0xdead;
        for (chunk, want) in probes.chunks_exact(4).zip(expect.chunks_exact(4)) {
            let ips: [u32; 4] = chunk.try_into().unwrap();
            let mut hop = [0u32; 4];
            dpdk_shim_lpm_lookupx4(lpm, ips.as_ptr(), hop.as_mut_ptr(), MISS);
            let want: Vec<u32> = want.iter().map(|w| w.unwrap_or(MISS)).collect();
            assert_eq!(&hop[..], &want[..], "lookupx4 {ips:x?}");
        }

        // Delete the /25 and the lookup falls back to the /24.
        assert_eq!(rte_lpm_delete(lpm, ip(10, 1, 2, 128), 25), 0);
        let mut hop = 0;
        assert_eq!(dpdk_shim_lpm_lookup(lpm, ip(10, 1, 2, 129), &mut hop), 0);
        assert_eq!(hop, 3);
        rte_lpm_free(lpm);
    }
}

fn lpm6() {
    let v6 = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap().octets();
    let routes = [("2001:db8::", 32, 1u32), ("2001:db8:1::", 48, 2), ("2001:db8:1:2::1", 128, 3)];
    let name = cstr("dpdksys_lpm6");
    let cfg = rte_lpm6_config { max_rules: 1024, number_tbl8s: 1 << 12, flags: 0 };
    // SAFETY: EAL is initialised; addresses are 16-byte arrays; arrays passed to the bulk
    // call have n entries; the LPM is freed at the end.
    unsafe {
        let lpm = rte_lpm6_create(name.as_ptr(), SOCKET_ID_ANY, &cfg);
        assert!(!lpm.is_null(), "rte_lpm6_create: {}", err_text());
        for (net, depth, hop) in routes {
            assert_eq!(rte_lpm6_add(lpm, v6(net).as_ptr(), depth, hop), 0);
        }
        let cases = [
            ("2001:db8:1:2::1", Some(3)),
            ("2001:db8:1:2::2", Some(2)),
            ("2001:db8:2::5", Some(1)),
            ("2001:db9::", None),
            ("::1", None),
        ];
        let mut ips: Vec<[u8; 16]> = Vec::new();
        for (a, want) in cases {
            let mut hop = u32::MAX;
            let rc = rte_lpm6_lookup(lpm, v6(a).as_ptr(), &mut hop);
            match want {
                Some(h) => assert_eq!((rc, hop), (0, h), "{a}"),
                None => assert_eq!(rc, -libc::ENOENT, "{a}"),
            }
            ips.push(v6(a));
        }
        let mut hops = vec![0i32; ips.len()];
        let rc = rte_lpm6_lookup_bulk_func(lpm, ips.as_mut_ptr(), hops.as_mut_ptr(), ips.len() as u32);
        assert_eq!(rc, 0);
        let want: Vec<i32> = cases.iter().map(|(_, w)| w.map_or(-1, |h| h as i32)).collect();
        assert_eq!(hops, want);
        rte_lpm6_free(lpm);
    }
}

fn hash_and_hash_functions() {
    // SAFETY: the hash functions read exactly `len` bytes from the given slices.
    unsafe {
        // rte_hash_crc is CRC32C without the final inversion: check against the standard
        // CRC-32C check value of "123456789".
        let crc = dpdk_shim_hash_crc(b"123456789".as_ptr().cast(), 9, 0xffff_ffff);
        assert_eq!(crc ^ 0xffff_ffff, 0xe306_9283);
        let a = dpdk_shim_jhash(b"abcd".as_ptr().cast(), 4, 0);
        let b = dpdk_shim_jhash(b"abce".as_ptr().cast(), 4, 0);
        assert_ne!(a, b);
        assert_eq!(a, dpdk_shim_jhash(b"abcd".as_ptr().cast(), 4, 0));
    }

    let name = cstr("dpdksys_hash");
    let params = rte_hash_parameters {
        name: name.as_ptr(),
        entries: 1024,
        key_len: 4,
        hash_func: Some(dpdk_shim_jhash),
        hash_func_init_val: 0,
        socket_id: SOCKET_ID_ANY,
        ..Default::default()
    };
    // SAFETY: params and its name outlive the create call; keys are 4-byte arrays as
    // key_len says; the table is freed at the end.
    unsafe {
        let h = rte_hash_create(&params);
        assert!(!h.is_null(), "rte_hash_create: {}", err_text());
        let mut pos = Vec::new();
        for k in 0u32..100 {
            let key = (k * 7919).to_ne_bytes();
            let p = rte_hash_add_key(h, key.as_ptr().cast());
            assert!(p >= 0, "add {k}: {p}");
            pos.push(p);
        }
        for k in 0u32..100 {
            let key = (k * 7919).to_ne_bytes();
            assert_eq!(rte_hash_lookup(h, key.as_ptr().cast()), pos[k as usize]);
        }
        let absent = 1u32.to_ne_bytes();
        assert_eq!(rte_hash_lookup(h, absent.as_ptr().cast()), -libc::ENOENT);
        assert_eq!(rte_hash_count(h), 100);
        rte_hash_free(h);
    }
}
