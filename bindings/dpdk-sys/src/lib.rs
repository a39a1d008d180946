//! `dpdk-sys`: raw FFI bindings to the system DPDK (>= 22.11; Debian bookworm ships 22.11).
//!
//! This crate is the unsafe boundary only: bindgen output, a small C shim for DPDK's
//! `static inline` fast path, and three helpers ([`eal_init`], [`rte_errno`],
//! [`strerror`]). The safe backend lives in `dataplane` behind its `dpdk` feature.
//!
//! # What is bound
//! bindgen runs at build time over `csrc/wrapper.h`: EAL (`rte_eal.h`, `rte_lcore.h`,
//! `rte_launch.h`), `rte_errno.h`, `rte_cycles.h`, mempool/mbuf (`rte_mempool.h`,
//! `rte_mbuf.h`, `rte_mbuf_ptype.h`), ethdev (`rte_ethdev.h`: xstats, link, RSS, stats),
//! `rte_ring.h`, `rte_lpm.h`, `rte_lpm6.h`, `rte_hash.h`, `rte_jhash.h`, `rte_hash_crc.h`.
//! Allowlists: functions `rte_.*` and `dpdk_shim_.*`, types `rte_.*`, constants `RTE_.*`,
//! `RING_F_.*`, `SOCKET_ID_ANY`, `E_RTE_.*`. C enums become plain integer constants with
//! their C names (`RTE_ETH_MQ_RX_RSS`), never Rust enums (an unknown value would be UB).
//! Flag macros written with `RTE_BIT64(n)` are evaluated through clang
//! (`clang_macro_fallback`), and the 64-bit families (`RTE_ETH_RSS_*`,
//! `RTE_ETH_{RX,TX}_OFFLOAD_*`, `RTE_MBUF_F_*`) are all typed `u64`, so they OR straight
//! into `rss_hf`, `offloads` and `ol_flags`. [`RTE_ETH_RSS_L3_SRC_ONLY`] (bit 63) is
//! defined by hand because bindgen drops it.
//! Two protocol-header structs pulled in through `rte_flow.h` are opaque because Rust
//! cannot express them (`rte_l2tpv2_combined_msg_hdr`: packed containing aligned;
//! `rte_gtp_psc_generic_hdr`: packed bitfields). `rte_mbuf` is bound field by field,
//! bitfields included, and bindgen's layout assertions check it at compile time.
//!
//! # The `static inline` fast path: a hand-written C shim
//! `rte_eth_rx_burst`, `rte_pktmbuf_alloc`, the ring and LPM lookups and friends are
//! `static inline` in the headers, so there is no symbol to link against. They are
//! reached through `csrc/dpdk_shim.c`, compiled with the `cc` crate and the exact cflags
//! of `pkg-config --cflags libdpdk` (`-include rte_config.h -march=corei7` on Debian
//! amd64), each `dpdk_shim_X` calling one DPDK function. We chose a hand-written shim
//! over bindgen's `wrap_static_fns` because:
//! - `wrap_static_fns` is behind bindgen's `experimental` feature and would wrap every
//!   allowlisted inline function (hundreds), most of them never used;
//! - some entry points are not functions: `rte_errno` is a thread-local macro,
//!   `rte_lpm_lookup_bulk` and `rte_pktmbuf_mtod` are macros, and `rte_lpm_lookupx4`
//!   takes an `xmm_t` (`__m128i` / `int32x4_t`) by value, which has no stable Rust FFI
//!   type: the shim gives it a `uint32_t[4]` interface that is the same on x86_64 and
//!   aarch64;
//! - the names are ours and stable (`dpdk_shim_rx_burst`), so the safe layer does not
//!   change when DPDK moves a function between inline and exported.
//!
//! The cost is one non-inlined call per *burst* (not per packet) for rx/tx/ring/LPM bulk.
//! Per-packet mbuf field reads should use the `#[inline]` Rust accessors in [`mbuf`],
//! which read the bindgen struct directly (checked against the shim in the tests).
//!
//! Not inline in 22.11, so bound directly by bindgen: `rte_pktmbuf_free_bulk`,
//! `rte_lpm6_lookup`, `rte_lpm6_lookup_bulk_func`, `rte_get_tsc_hz`, `rte_socket_id`,
//! `rte_pktmbuf_pool_create`, `rte_ring_create`, all of ethdev's control path.
//!
//! # Linking and PMD registration
//! The libraries from `pkg-config --libs libdpdk` are linked as ordinary dylibs
//! (`librte_eal.so`, `librte_ethdev.so`, ...). Poll-mode drivers register themselves from
//! ELF constructors, so a PMD library that no symbol references would be dropped by the
//! linker's `--as-needed` (rustc passes it). We do not fight that at link time: the
//! Debian build of EAL is configured with `RTE_EAL_PMD_PATH` = [`PMD_DIR`]
//! (`/usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0`) and, when EAL itself is a shared
//! library, `rte_eal_init` `dlopen`s every driver in that directory (buses, mempool
//! drivers, net PMDs: null, ring, af_packet, af_xdp, tap, virtio, ixgbe, i40e, ice, mlx5,
//! ...). This also works for every downstream binary, which `cargo:rustc-link-arg`
//! (not propagated to dependents) would not. To load drivers from elsewhere, pass EAL's
//! `-d <dir-or-.so>`. The tests check that the listed PMDs are loaded after init.
//!
//! # Availability
//! When pkg-config does not find libdpdk >= 22.11 (e.g. when cross-compiling for aarch64
//! without an arm64 DPDK), the build script
//! - with the `link` feature (turned on by `dataplane`'s `dpdk` feature): fails with a
//!   message naming `libdpdk-dev`;
//! - without it: prints a cargo warning and this crate compiles empty (everything here is
//!   behind the `dpdk_found` cfg the build script sets), so `cargo build --workspace`
//!   works on machines without DPDK.
//!
//! `dataplane`'s `dpdk` feature is off by default for the same reason.
#![cfg(dpdk_found)]
#![warn(missing_docs)]

use std::ffi::{c_char, c_int, CStr, CString};

/// The bindgen output (see the crate docs for what it covers).
#[allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    missing_docs,
    missing_debug_implementations,
    unsafe_op_in_unsafe_fn,
    clippy::all,
    clippy::pedantic,
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc,
    rustdoc::all
)]
mod bindings {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}
pub use bindings::*;

pub mod ethdev;
pub mod mbuf;

/// `RTE_BIT64(63)`: hash on the L3 source address only. Defined by hand: bindgen's macro
/// evaluation works in `i64` and drops this one value (it is the only `RTE_ETH_RSS_*`
/// flag with bit 63 set).
pub const RTE_ETH_RSS_L3_SRC_ONLY: u64 = 1 << 63;

/// The DPDK version pkg-config reported at build time (e.g. `"22.11.11"`).
pub const DPDK_VERSION: &str = env!("DPDK_SYS_VERSION");

/// The directory EAL loads its drivers (PMDs) from at `rte_eal_init`
/// (`RTE_EAL_PMD_PATH` of the installed DPDK).
pub const PMD_DIR: &str = c_path_str(RTE_EAL_PMD_PATH);

/// `RTE_EAL_PMD_PATH` comes from bindgen as a NUL-terminated byte string.
const fn c_path_str(bytes: &'static [u8]) -> &'static str {
    match bytes {
        [path @ .., 0] => match std::str::from_utf8(path) {
            Ok(s) => s,
            Err(_) => panic!("RTE_EAL_PMD_PATH is not UTF-8"),
        },
        _ => panic!("RTE_EAL_PMD_PATH is not NUL-terminated"),
    }
}

/// Linux `EINVAL`, returned by [`eal_init`] for an argument with an interior NUL byte.
const EINVAL: i32 = 22;

/// Initialises the EAL with `args` as its `argv` (`args[0]` is the program name, as in C;
/// EAL skips it).
///
/// Returns `Ok(n)` with the number of arguments EAL consumed (as `rte_eal_init` does),
/// or `Err(errno)` with the positive `rte_errno` value (`EALREADY` when EAL was already
/// initialised in this process: EAL can be initialised once per process; `EINVAL` for
/// an empty `args`, an argument containing a NUL byte, or a bad EAL option; see
/// [`strerror`]).
///
/// # Memory
/// EAL keeps pointers into `argv` after it returns (getopt permutes the array and
/// some option values are kept by pointer), so the strings and the pointer array are
/// deliberately leaked: a few hundred bytes, once per process.
///
/// # Errors
/// `Err(errno)` as described above.
pub fn eal_init(args: &[&str]) -> Result<i32, i32> {
    if args.is_empty() {
        // EAL reads argv[0] unconditionally.
        return Err(EINVAL);
    }
    let mut owned = Vec::with_capacity(args.len());
    for a in args {
        match CString::new(*a) {
            Ok(c) => owned.push(c),
            Err(_) => return Err(EINVAL),
        }
    }
    let argc = c_int::try_from(owned.len()).map_err(|_| EINVAL)?;
    // Leak on purpose (see `# Memory`): strings first, then the NULL-terminated array.
    let mut argv: Vec<*mut c_char> = owned.into_iter().map(CString::into_raw).collect();
    argv.push(std::ptr::null_mut());
    let argv: &'static mut [*mut c_char] = argv.leak();
    // SAFETY: argv holds argc valid NUL-terminated strings followed by NULL, and both the
    // strings and the array live for the rest of the process (leaked above).
    let ret = unsafe { rte_eal_init(argc, argv.as_mut_ptr()) };
    if ret < 0 {
        Err(rte_errno())
    } else {
        Ok(ret)
    }
}

/// The calling thread's `rte_errno` (DPDK's per-lcore thread-local error number).
#[inline]
pub fn rte_errno() -> i32 {
    // SAFETY: reads a thread-local int; no preconditions.
    unsafe { dpdk_shim_errno() }
}

/// Human-readable text for an errno or DPDK error number (`rte_strerror`), copied into
/// an owned `String` (control path only).
pub fn strerror(errnum: i32) -> String {
    // SAFETY: rte_strerror accepts any value and returns a pointer to a NUL-terminated
    // string (libc's table or a per-thread buffer) valid until the next call on this
    // thread; it is copied out before returning.
    unsafe {
        let p = rte_strerror(errnum);
        if p.is_null() {
            return format!("error {errnum}");
        }
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pmd_dir_is_a_path() {
        assert!(PMD_DIR.starts_with('/'), "{PMD_DIR}");
        assert!(!PMD_DIR.ends_with('\0'));
    }

    #[test]
    fn strerror_knows_errno_and_dpdk_codes() {
        assert_eq!(strerror(EINVAL), "Invalid argument");
        let t = strerror(E_RTE_NO_CONFIG as i32);
        assert!(t.contains("config"), "{t}");
    }

    #[test]
    fn errno_roundtrip_on_this_thread() {
        // SAFETY: writes the calling thread's thread-local.
        unsafe { dpdk_shim_set_errno(1234) };
        assert_eq!(rte_errno(), 1234);
        let other = std::thread::spawn(rte_errno).join().unwrap();
        assert_eq!(other, 0, "rte_errno is per thread");
    }

    #[test]
    fn eal_init_rejects_nul_without_touching_eal() {
        assert_eq!(eal_init(&["prog", "bad\0arg"]), Err(EINVAL));
        assert_eq!(eal_init(&[]), Err(EINVAL));
    }

    #[test]
    fn bit64_flag_macros_are_u64_with_c_values() {
        // RTE_ETH_RSS_* are RTE_BIT64(RTE_ETH_FLOW_*): check against the enum values.
        assert_eq!(RTE_ETH_RSS_IPV4, 1u64 << RTE_ETH_FLOW_IPV4);
        assert_eq!(RTE_ETH_RSS_NONFRAG_IPV6_TCP, 1u64 << RTE_ETH_FLOW_NONFRAG_IPV6_TCP);
        assert_eq!(RTE_ETH_RX_OFFLOAD_RSS_HASH, 1u64 << 19);
        assert_eq!(RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE, 1u64 << 16);
        assert_eq!(RTE_MBUF_F_RX_RSS_HASH, 1u64 << 1);
        assert_eq!(RTE_ETH_RSS_L3_DST_ONLY, 1u64 << 62);
        assert_eq!(RTE_ETH_RSS_L3_SRC_ONLY, RTE_ETH_RSS_L3_DST_ONLY << 1);
    }

    #[test]
    fn struct_sizes_match_dpdk_abi() {
        // rte_mbuf is two cache lines on 64-bit (RTE_MBUF_F_... layout is ABI).
        assert_eq!(std::mem::size_of::<rte_mbuf>(), 128);
        assert_eq!(std::mem::align_of::<rte_mbuf>(), 64);
        assert_eq!(std::mem::size_of::<rte_eth_xstat_name>(), 64);
    }
}
