//! x86_64 kernels: SSE4.2 `crc32` for CRC32C, and the transposed `pshufb` Toeplitz, 32
//! packets per pass with AVX2 (16 with SSSE3 for a short last chunk; `Impl::Sse42` hashes
//! Toeplitz in the parse pass instead, see `Sse42Kernel`).
//!
//! Toeplitz: the rows (each packet's hash input, zero-padded to 48 bytes) are transposed in
//! 16×16-byte blocks with an unpack network (8→16→32→64-bit interleaves), so vector `j` holds
//! input byte `j` of every packet. For each byte position, its two nibbles index 16-entry
//! tables (one per result byte plane) with `pshufb`; the four plane accumulators are finally
//! interleaved back into one 32-bit hash per packet. With AVX2 the two 128-bit lanes carry
//! packets 0–15 and 16–31 through the same in-lane network.
#![allow(unsafe_code)]

use super::{scalar::Pattern16, scalar::SCREEN_AT, Classified, ClassifyConfig, Kernel, Rows, CHUNK};
use core::arch::x86_64::*;

/// CRC32C of `b` with the SSE4.2 `crc32` instruction (`N` is a multiple of 4: hash inputs
/// are 0, 8, 12, 32 or 36 bytes long).
///
/// # Safety
/// The CPU must support SSE4.2.
#[inline]
#[target_feature(enable = "sse4.2")]
unsafe fn crc32c_hw<const N: usize>(b: &[u8; N]) -> u32 {
    let mut c = u64::from(!0u32);
    let mut words = b.chunks_exact(8);
    for w in &mut words {
        let mut x = [0u8; 8];
        x.copy_from_slice(w);
        c = _mm_crc32_u64(c, u64::from_le_bytes(x));
    }
    let mut c = c as u32;
    if let Some(w) = words.remainder().first_chunk::<4>() {
        c = _mm_crc32_u32(c, u32::from_le_bytes(*w));
    }
    !c
}

/// True when the 16 bytes of `h` from [`SCREEN_AT`] match `pat`: `ptest` of
/// `(w ^ want) & mask`, the pattern's two vectors kept in registers across the burst.
///
/// The bytes are read by an `asm!` block: with an intrinsic load LLVM sees that the header
/// fields read later overlap the vector and extracts them from it (`pextrw`, `pextrb`),
/// hoisted above the branch, so every frame paid for the fields of every shape (figures in
/// `benches/CLASSIFY_RESULTS.md`, round 5). The opaque read keeps the
/// fields as the plain memory reads they are. With AVX (`VEX`) the read is the memory operand
/// of the `vpxor` (3 instructions per pattern: `vpxor`, `vptest`, branch); the SSE form loads
/// with `movdqu` first (legacy `pxor` needs an aligned operand).
///
/// # Safety
/// The CPU must support SSE4.1, and AVX when `VEX`.
#[inline]
#[target_feature(enable = "sse4.1")]
unsafe fn matches16_sse41<const VEX: bool>(h: &[u8; 60], pat: &Pattern16) -> bool {
    const _: () = assert!(SCREEN_AT + 16 <= 60);
    // SAFETY: each pointer is to a 16-byte array; loadu has no alignment requirement.
    let (want, mask) =
        unsafe { (_mm_loadu_si128(pat.want.as_ptr().cast()), _mm_loadu_si128(pat.mask.as_ptr().cast())) };
    let diff: __m128i;
    // SAFETY: bytes `SCREEN_AT..SCREEN_AT + 16` of the 60-byte array `h` are readable (asserted
    // above); an unaligned 16-byte read touches no other memory, no stack and no flags; the
    // caller guarantees AVX for the VEX form.
    unsafe {
        if VEX {
            core::arch::asm!(
                "vpxor {d}, {want}, [{p} + {at}]",
                p = in(reg) h.as_ptr(),
                at = const SCREEN_AT,
                want = in(xmm_reg) want,
                d = lateout(xmm_reg) diff,
                options(pure, readonly, nostack, preserves_flags)
            )
        } else {
            let x: __m128i;
            core::arch::asm!(
                "movdqu {x}, [{p} + {at}]",
                p = in(reg) h.as_ptr(),
                at = const SCREEN_AT,
                x = out(xmm_reg) x,
                options(pure, readonly, nostack, preserves_flags)
            );
            diff = _mm_xor_si128(x, want);
        }
    };
    _mm_testz_si128(diff, mask) != 0
}

/// Transposes 16 rows of 16 bytes: `d[j]` byte `i` = `r[i]` byte `j`.
#[inline(always)]
fn transpose16(r: &[__m128i; 16]) -> [__m128i; 16] {
    // SAFETY: SSE2 is part of the x86_64 baseline; unpack intrinsics touch no memory.
    unsafe {
        let mut a = [_mm_setzero_si128(); 16];
        for i in 0..8 {
            a[i] = _mm_unpacklo_epi8(r[2 * i], r[2 * i + 1]);
            a[8 + i] = _mm_unpackhi_epi8(r[2 * i], r[2 * i + 1]);
        }
        let mut b = [_mm_setzero_si128(); 16];
        for h in 0..2 {
            for q in 0..4 {
                let (x, y) = (a[h * 8 + 2 * q], a[h * 8 + 2 * q + 1]);
                b[h * 8 + q] = _mm_unpacklo_epi16(x, y);
                b[h * 8 + 4 + q] = _mm_unpackhi_epi16(x, y);
            }
        }
        let mut c = [_mm_setzero_si128(); 16];
        for hg in 0..4 {
            for w in 0..2 {
                let (x, y) = (b[hg * 4 + 2 * w], b[hg * 4 + 2 * w + 1]);
                c[hg * 4 + w] = _mm_unpacklo_epi32(x, y);
                c[hg * 4 + 2 + w] = _mm_unpackhi_epi32(x, y);
            }
        }
        let mut d = [_mm_setzero_si128(); 16];
        for k in 0..8 {
            d[2 * k] = _mm_unpacklo_epi64(c[2 * k], c[2 * k + 1]);
            d[2 * k + 1] = _mm_unpackhi_epi64(c[2 * k], c[2 * k + 1]);
        }
        d
    }
}

/// Toeplitz over rows `base..base + 16`, input bytes `0..max_len`.
///
/// # Safety
/// The CPU must support SSSE3.
#[target_feature(enable = "ssse3")]
unsafe fn toeplitz16(cfg: &ClassifyConfig, rows: &Rows, base: usize, max_len: usize, out: &mut [u32; CHUNK]) {
    let planes = &cfg.rss.planes;
    let max_len = max_len.min(super::MAX_HASH_INPUT);
    let mask = _mm_set1_epi8(0x0f);
    let mut acc = [_mm_setzero_si128(); 4];
    let mut blk = 0;
    while blk * 16 < max_len {
        let mut r = [_mm_setzero_si128(); 16];
        for (i, v) in r.iter_mut().enumerate() {
            let src = &rows.row[(base + i) % CHUNK][blk * 16..blk * 16 + 16];
            // SAFETY: `src` is exactly 16 readable bytes; loadu has no alignment requirement.
            *v = unsafe { _mm_loadu_si128(src.as_ptr().cast()) };
        }
        let cols = transpose16(&r);
        for (j, &v) in cols.iter().enumerate() {
            let p = blk * 16 + j;
            if p >= max_len {
                break;
            }
            let hi = _mm_and_si128(_mm_srli_epi16(v, 4), mask);
            let lo = _mm_and_si128(v, mask);
            for (k, a) in acc.iter_mut().enumerate() {
                // SAFETY: each plane is a 16-byte array; p < MAX_HASH_INPUT so 2p + 1 < 72.
                let (th, tl) = unsafe {
                    (
                        _mm_loadu_si128(planes[2 * p][k].as_ptr().cast()),
                        _mm_loadu_si128(planes[2 * p + 1][k].as_ptr().cast()),
                    )
                };
                *a = _mm_xor_si128(*a, _mm_xor_si128(_mm_shuffle_epi8(th, hi), _mm_shuffle_epi8(tl, lo)));
            }
        }
        blk += 1;
    }
    let x01l = _mm_unpacklo_epi8(acc[0], acc[1]);
    let x01h = _mm_unpackhi_epi8(acc[0], acc[1]);
    let x23l = _mm_unpacklo_epi8(acc[2], acc[3]);
    let x23h = _mm_unpackhi_epi8(acc[2], acc[3]);
    let o = [
        _mm_unpacklo_epi16(x01l, x23l),
        _mm_unpackhi_epi16(x01l, x23l),
        _mm_unpacklo_epi16(x01h, x23h),
        _mm_unpackhi_epi16(x01h, x23h),
    ];
    for (g, v) in o.iter().enumerate() {
        let dst = &mut out[(base + 4 * g) % CHUNK..][..4];
        // SAFETY: `dst` is 4 writable u32 = 16 bytes; storeu has no alignment requirement.
        unsafe { _mm_storeu_si128(dst.as_mut_ptr().cast(), *v) };
    }
}

/// Toeplitz over all 32 rows, input bytes `0..max_len`.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
unsafe fn toeplitz32(cfg: &ClassifyConfig, rows: &Rows, max_len: usize, out: &mut [u32; CHUNK]) {
    let planes = &cfg.rss.planes;
    let max_len = max_len.min(super::MAX_HASH_INPUT);
    let mask = _mm256_set1_epi8(0x0f);
    let mut acc = [_mm256_setzero_si256(); 4];
    let mut blk = 0;
    while blk * 16 < max_len {
        let mut r = [_mm256_setzero_si256(); 16];
        for (i, v) in r.iter_mut().enumerate() {
            let lo = &rows.row[i][blk * 16..blk * 16 + 16];
            let hi = &rows.row[i + 16][blk * 16..blk * 16 + 16];
            // SAFETY: `lo` and `hi` are exactly 16 readable bytes each; loadu is unaligned.
            *v = unsafe {
                _mm256_inserti128_si256::<1>(
                    _mm256_castsi128_si256(_mm_loadu_si128(lo.as_ptr().cast())),
                    _mm_loadu_si128(hi.as_ptr().cast()),
                )
            };
        }
        // The in-lane transpose network, as in `transpose16`, on both lanes at once.
        let mut a = [_mm256_setzero_si256(); 16];
        for i in 0..8 {
            a[i] = _mm256_unpacklo_epi8(r[2 * i], r[2 * i + 1]);
            a[8 + i] = _mm256_unpackhi_epi8(r[2 * i], r[2 * i + 1]);
        }
        let mut b = [_mm256_setzero_si256(); 16];
        for h in 0..2 {
            for q in 0..4 {
                let (x, y) = (a[h * 8 + 2 * q], a[h * 8 + 2 * q + 1]);
                b[h * 8 + q] = _mm256_unpacklo_epi16(x, y);
                b[h * 8 + 4 + q] = _mm256_unpackhi_epi16(x, y);
            }
        }
        let mut c = [_mm256_setzero_si256(); 16];
        for hg in 0..4 {
            for w in 0..2 {
                let (x, y) = (b[hg * 4 + 2 * w], b[hg * 4 + 2 * w + 1]);
                c[hg * 4 + w] = _mm256_unpacklo_epi32(x, y);
                c[hg * 4 + 2 + w] = _mm256_unpackhi_epi32(x, y);
            }
        }
        for j in 0..16 {
            let p = blk * 16 + j;
            if p >= max_len {
                break;
            }
            let k = j / 2;
            let v = if j % 2 == 0 {
                _mm256_unpacklo_epi64(c[2 * k], c[2 * k + 1])
            } else {
                _mm256_unpackhi_epi64(c[2 * k], c[2 * k + 1])
            };
            let hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), mask);
            let lo = _mm256_and_si256(v, mask);
            for (kk, a) in acc.iter_mut().enumerate() {
                // SAFETY: each plane is a 16-byte array; p < MAX_HASH_INPUT so 2p + 1 < 72.
                let (th, tl) = unsafe {
                    (
                        _mm256_broadcastsi128_si256(_mm_loadu_si128(planes[2 * p][kk].as_ptr().cast())),
                        _mm256_broadcastsi128_si256(_mm_loadu_si128(planes[2 * p + 1][kk].as_ptr().cast())),
                    )
                };
                *a = _mm256_xor_si256(*a, _mm256_xor_si256(_mm256_shuffle_epi8(th, hi), _mm256_shuffle_epi8(tl, lo)));
            }
        }
        blk += 1;
    }
    let x01l = _mm256_unpacklo_epi8(acc[0], acc[1]);
    let x01h = _mm256_unpackhi_epi8(acc[0], acc[1]);
    let x23l = _mm256_unpacklo_epi8(acc[2], acc[3]);
    let x23h = _mm256_unpackhi_epi8(acc[2], acc[3]);
    let o = [
        _mm256_unpacklo_epi16(x01l, x23l),
        _mm256_unpackhi_epi16(x01l, x23l),
        _mm256_unpacklo_epi16(x01h, x23h),
        _mm256_unpackhi_epi16(x01h, x23h),
    ];
    for (g, v) in o.iter().enumerate() {
        let (lo, hi) = out.split_at_mut(16);
        // SAFETY: each destination is 4 writable u32 = 16 bytes; storeu is unaligned.
        unsafe {
            _mm_storeu_si128(lo[4 * g..4 * g + 4].as_mut_ptr().cast(), _mm256_castsi256_si128(*v));
            _mm_storeu_si128(hi[4 * g..4 * g + 4].as_mut_ptr().cast(), _mm256_extracti128_si256::<1>(*v));
        }
    }
}

pub(crate) struct Sse42Kernel;

impl Kernel for Sse42Kernel {
    // Since Toeplitz is hashed straight from the packet in the parse pass, the 16-packet SSSE3
    // pass (rows + transpose) no longer beats the table-driven scalar hash on the mix
    // (instruction counts: benches/CLASSIFY_RESULTS.md); only AVX2's 32-packet pass does.
    const BATCHED_TOEPLITZ: bool = false;

    #[inline(always)]
    unsafe fn crc32c<const N: usize>(b: &[u8; N]) -> u32 {
        // SAFETY: the caller guarantees SSE4.2.
        unsafe { crc32c_hw(b) }
    }

    const SCREEN: bool = true;

    #[inline(always)]
    unsafe fn matches16(h: &[u8; 60], pat: &Pattern16) -> bool {
        // SAFETY: the caller guarantees SSE4.2, which implies SSE4.1.
        unsafe { matches16_sse41::<false>(h, pat) }
    }

    #[inline(always)]
    unsafe fn hash(cfg: &ClassifyConfig, rows: &Rows, m: usize, max_len: usize, out: &mut [u32; CHUNK]) {
        // SAFETY: the caller guarantees SSSE3.
        unsafe { toeplitz16(cfg, rows, 0, max_len, out) };
        if m > 16 {
            // SAFETY: as above.
            unsafe { toeplitz16(cfg, rows, 16, max_len, out) };
        }
    }
}

pub(crate) struct Avx2Kernel;

impl Kernel for Avx2Kernel {
    const BATCHED_TOEPLITZ: bool = true;

    #[inline(always)]
    unsafe fn crc32c<const N: usize>(b: &[u8; N]) -> u32 {
        // SAFETY: the caller guarantees SSE4.2.
        unsafe { crc32c_hw(b) }
    }

    const SCREEN: bool = true;

    #[inline(always)]
    unsafe fn matches16(h: &[u8; 60], pat: &Pattern16) -> bool {
        // SAFETY: the caller guarantees AVX2 (so AVX) and SSE4.2 (so SSE4.1).
        unsafe { matches16_sse41::<true>(h, pat) }
    }

    #[inline(always)]
    unsafe fn hash(cfg: &ClassifyConfig, rows: &Rows, m: usize, max_len: usize, out: &mut [u32; CHUNK]) {
        if m <= 16 {
            // A short chunk does half the work in one SSSE3 pass.
            // SAFETY: the caller guarantees AVX2 (which implies SSSE3).
            unsafe { toeplitz16(cfg, rows, 0, max_len, out) }
        } else {
            // SAFETY: the caller guarantees AVX2.
            unsafe { toeplitz32(cfg, rows, max_len, out) }
        }
    }
}

/// # Safety
/// The CPU must support SSE4.2 and SSSE3.
#[target_feature(enable = "sse4.2,ssse3")]
pub(crate) unsafe fn run_sse42<T: super::Frame>(items: &[T], cfg: &ClassifyConfig, out: &mut [Classified]) {
    // SAFETY: the caller guarantees the kernel's features.
    unsafe { super::run::<T, Sse42Kernel>(items, cfg, out) }
}

/// # Safety
/// The CPU must support AVX2, SSE4.2 and MOVBE.
#[target_feature(enable = "avx2,sse4.2,movbe")]
pub(crate) unsafe fn run_avx2<T: super::Frame>(items: &[T], cfg: &ClassifyConfig, out: &mut [Classified]) {
    // SAFETY: the caller guarantees the kernel's features.
    unsafe { super::run::<T, Avx2Kernel>(items, cfg, out) }
}
