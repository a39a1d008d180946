//! Build script for `dpdk-sys`.
//!
//! 1. Finds the system DPDK (>= 22.11) with pkg-config. When it is missing (including when
//!    cross-compiling without a target DPDK): with the `link` feature (which `dataplane/dpdk`
//!    turns on) the build fails with a message naming the Debian package; without it the
//!    script prints a cargo warning and the crate compiles empty (no `dpdk_found` cfg), so
//!    `cargo build --workspace` works where DPDK is not installed.
//! 2. Compiles `csrc/dpdk_shim.c` with the flags `pkg-config --cflags libdpdk` gives
//!    (they carry `-include rte_config.h` and the `-march` DPDK was built for).
//! 3. Runs bindgen over `csrc/wrapper.h` with allowlists (`rte_.*`, `RTE_.*`,
//!    `dpdk_shim_.*`).
//! 4. Emits the DPDK libraries as ordinary `rustc-link-lib`s (see the crate docs,
//!    "Linking and PMD registration", for why no `--no-as-needed` is needed on Debian).

use std::env;
use std::path::PathBuf;
use std::process::Command;

const MIN_VERSION: &str = "22.11";

fn fail(msg: &str) -> ! {
    // Cargo shows a failed build script's stderr; print once and exit (no panic noise).
    eprintln!("\nerror: dpdk-sys: {msg}\n");
    std::process::exit(1);
}

/// Runs the pkg-config binary the `pkg-config` crate would use, for the raw cflags
/// (the crate only exposes include paths and defines, not `-include`/`-march`).
fn raw_cflags() -> Vec<String> {
    let pkg_config = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_owned());
    let out = Command::new(&pkg_config)
        .args(["--cflags", "libdpdk"])
        .output()
        .unwrap_or_else(|e| fail(&format!("cannot run `{pkg_config} --cflags libdpdk`: {e}")));
    if !out.status.success() {
        fail(&format!("`{pkg_config} --cflags libdpdk` failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect()
}

/// 64-bit flag families: C gives them `RTE_BIT64(n)` / `1ULL << n`, but bindgen sizes each
/// constant by its value, so small ones would come out `u32` and could not be OR-ed into
/// the `u64` fields they belong to (`rss_hf`, `offloads`, `ol_flags`) without casts.
const U64_MACRO_PREFIXES: &[&str] = &["RTE_ETH_RSS_", "RTE_ETH_RX_OFFLOAD_", "RTE_ETH_TX_OFFLOAD_", "RTE_MBUF_F_"];

#[derive(Debug)]
struct MacroTypes;

impl bindgen::callbacks::ParseCallbacks for MacroTypes {
    fn int_macro(&self, name: &str, _value: i64) -> Option<bindgen::callbacks::IntKind> {
        let wide =
            U64_MACRO_PREFIXES.iter().any(|p| name.starts_with(p)) && !name.starts_with("RTE_ETH_RSS_RETA_SIZE_");
        wide.then_some(bindgen::callbacks::IntKind::U64)
    }
}

fn main() {
    println!("cargo:rerun-if-changed=csrc/wrapper.h");
    println!("cargo:rerun-if-changed=csrc/dpdk_shim.h");
    println!("cargo:rerun-if-changed=csrc/dpdk_shim.c");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG");
    for var in ["PKG_CONFIG_PATH", "PKG_CONFIG_LIBDIR", "PKG_CONFIG_SYSROOT_DIR", "PKG_CONFIG_ALLOW_CROSS"] {
        println!("cargo:rerun-if-env-changed={var}");
    }

    println!("cargo:rustc-check-cfg=cfg(dpdk_found)");
    let required = env::var_os("CARGO_FEATURE_LINK").is_some();

    let target = env::var("TARGET").unwrap_or_default();
    let host = env::var("HOST").unwrap_or_default();

    let lib =
        pkg_config::Config::new().atleast_version(MIN_VERSION).cargo_metadata(false).probe("libdpdk").unwrap_or_else(
            |e| {
                if !required {
                    let text = e.to_string();
                    let first = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default().to_owned();
                    println!(
                        "cargo:warning=dpdk-sys: DPDK >= {MIN_VERSION} not found via pkg-config ({first}); \
                         building an empty crate. Install libdpdk-dev, or enable the `link` feature \
                         (dataplane's `dpdk` feature does) to make this an error."
                    );
                    std::process::exit(0);
                }
                let cross = if target != host {
                    format!(
                        "\n  You are cross-compiling for {target} (host {host}): a DPDK built for \
                     {target} and a pkg-config set up for it (PKG_CONFIG_SYSROOT_DIR, \
                     PKG_CONFIG_PATH, PKG_CONFIG_ALLOW_CROSS=1) are needed. dpdk-sys is only \
                     built where libdpdk is found; the `dpdk` feature of `dataplane` is off by \
                     default for that reason."
                    )
                } else {
                    String::new()
                };
                fail(&format!(
                    "DPDK >= {MIN_VERSION} not found via pkg-config (libdpdk.pc).\n  \
                 On Debian/Ubuntu: `apt-get install libdpdk-dev` (and `dpdk` for the PMDs).\n  \
                 pkg-config said: {e}{cross}"
                ))
            },
        );
    println!("cargo:version={}", lib.version);
    println!("cargo:rustc-cfg=dpdk_found");

    let cflags = raw_cflags();
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));

    // --- C shim -------------------------------------------------------------------
    let mut cc = cc::Build::new();
    cc.file("csrc/dpdk_shim.c").include("csrc").opt_level(3).warnings(true).extra_warnings(true);
    for f in &cflags {
        cc.flag(f);
    }
    cc.compile("dpdk_shim");

    // --- bindgen --------------------------------------------------------------------
    // bindgen gives the target to clang for the main parse, but not to the translation unit
    // of `clang_macro_fallback` below; cross-compiling, that one would parse the target's
    // headers (arm64's rte_config.h and its intrinsics) as the host and lose every macro.
    let target_arg = (target != host).then(|| format!("--target={target}"));
    let bindings = bindgen::Builder::default()
        .header("csrc/wrapper.h")
        .clang_args(target_arg.iter())
        .clang_args(&cflags)
        .clang_arg("-Icsrc")
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .parse_callbacks(Box::new(MacroTypes))
        .allowlist_function("rte_.*")
        .allowlist_function("dpdk_shim_.*")
        .allowlist_type("rte_.*")
        .allowlist_var("RTE_.*")
        .allowlist_var("RING_F_.*")
        .allowlist_var("SOCKET_ID_ANY")
        .allowlist_var("LCORE_ID_ANY")
        // The ethdev fast-path table the inline rx/tx burst functions read (see `ethdev`).
        .allowlist_var("rte_eth_fp_ops")
        // Thread-locals (per_lcore_*) cannot be declared as plain statics: use the shim.
        .blocklist_item("per_lcore_.*")
        // static inline functions are not exported symbols; the shim wraps the ones we
        // need (bindgen skips them by default; make that explicit).
        .generate_inline_functions(false)
        // C enum constants are global in C and unique in DPDK: keep their C names and make
        // them plain integer constants (a Rust enum would be UB for unknown values).
        .default_enum_style(bindgen::EnumVariation::Consts)
        .prepend_enum_name(false)
        .derive_default(true)
        .derive_debug(true)
        .impl_debug(false)
        .layout_tests(true)
        .wrap_unsafe_ops(true)
        .generate_comments(true)
        // Many flag macros are function-like (`RTE_BIT64(n)`): cexpr cannot expand them,
        // clang can. Without this RTE_ETH_RSS_*, RTE_ETH_{RX,TX}_OFFLOAD_* are missing.
        .clang_macro_fallback()
        // Types bindgen cannot lay out faithfully are made opaque (right size and
        // alignment, no fields). Both are protocol headers (rte_l2tpv2.h, rte_gtp.h)
        // pulled in by rte_flow.h; nothing here reads them field by field.
        // - packed struct containing an aligned union: Rust rejects (E0588)
        .opaque_type("rte_l2tpv2_combined_msg_hdr")
        // - packed bitfield struct: bindgen emits no Debug for it, which breaks the
        //   derive on its containers
        .opaque_type("rte_gtp_psc_generic_hdr")
        .generate()
        .unwrap_or_else(|e| fail(&format!("bindgen over csrc/wrapper.h failed: {e}")));
    bindings
        .write_to_file(out_dir.join("bindings.rs"))
        .unwrap_or_else(|e| fail(&format!("cannot write bindings.rs: {e}")));

    // --- linking ----------------------------------------------------------------------
    for p in &lib.link_paths {
        println!("cargo:rustc-link-search=native={}", p.display());
    }
    for l in &lib.libs {
        println!("cargo:rustc-link-lib=dylib={l}");
    }

    // No PMD libraries here: EAL dlopens them from RTE_EAL_PMD_PATH at init (crate docs,
    // "Linking and PMD registration"); linking them would be dropped by --as-needed anyway.
    println!("cargo:rustc-env=DPDK_SYS_VERSION={}", lib.version);
}
