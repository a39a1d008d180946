//! Fuzz `dataplane::classify`: no input may panic, and every available implementation must
//! give exactly the scalar result.
//!
//! Input: one flags byte (bit 0: hash the inner VXLAN key, bit 1: CRC32C instead of
//! Toeplitz), then one frame. The burst classified is that frame and seven truncations of it,
//! so short and cut-off headers are always exercised next to the whole frame.
#![no_main]

use dataplane::classify::{classify_slices_with, Classified, ClassifyConfig, Impl};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, frame)) = data.split_first() else {
        return;
    };
    let cfg = if flags & 2 != 0 {
        ClassifyConfig::crc32c()
    } else {
        ClassifyConfig::default()
    }
    .with_hash_inner(flags & 1 != 0);
    let mut frames = [frame; 8];
    for (k, f) in frames.iter_mut().enumerate().skip(1) {
        *f = &frame[..frame.len() * k / 8];
    }
    let mut want = [Classified::default(); 8];
    assert_eq!(
        classify_slices_with(Impl::Scalar, &frames, &cfg, &mut want),
        Ok(8)
    );
    for (c, f) in want.iter().zip(&frames) {
        // The header lengths never point past the frame.
        assert!(c.l4_offset() + c.l4_len as usize <= f.len());
    }
    for imp in Impl::ALL
        .into_iter()
        .filter(|i| i.is_available() && *i != Impl::Scalar)
    {
        let mut got = [Classified::default(); 8];
        assert_eq!(classify_slices_with(imp, &frames, &cfg, &mut got), Ok(8));
        assert_eq!(got, want, "{imp:?} differs from scalar");
    }
});
