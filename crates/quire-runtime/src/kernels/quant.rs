//! Activation quantization eight lanes at a time (AVX2), with exactly the scalar path's
//! arithmetic: the largest magnitude is a maximum (exact in any order), each value is
//! multiplied by the same f32 scale and rounded half to even by the same rounding, so the
//! blocks are bit-identical to [`super::q8_block`] and [`super::q8k_block`]'s (tested, NaN
//! and infinities included).
//! The scalar loops were a few percent of prefill: `f32::max` keeps the compiler from
//! reordering the maximum, and the rounding went one element at a time.

use std::arch::x86_64::*;

use super::{Q8K, QK8, QK_K};

/// `|x|` for eight lanes.
#[inline(always)]
unsafe fn abs8(x: __m256) -> __m256 {
    _mm256_andnot_ps(_mm256_set1_ps(-0.0), x)
}

/// The largest of eight lanes.
#[inline(always)]
pub(crate) unsafe fn hmax8(m: __m256) -> f32 {
    let m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
    let m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)))
}

/// Four vectors of i32 (values −128..=127), 32 values in order, as bytes.
#[inline(always)]
unsafe fn pack32(q: &[__m256i; 4], out: *mut i8) {
    let a = _mm256_packs_epi32(q[0], q[1]);
    let b = _mm256_packs_epi32(q[2], q[3]);
    // The packs interleave 128-bit lanes; put the 4-byte groups back in order.
    let p = _mm256_permutevar8x32_epi32(
        _mm256_packs_epi16(a, b),
        _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7),
    );
    _mm256_storeu_si256(out as *mut __m256i, p);
}

/// The sum of eight i32 lanes.
#[inline(always)]
unsafe fn hsum_i32(v: __m256i) -> i32 {
    let mut lanes = [0i32; 8];
    _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, v);
    lanes.iter().sum()
}

#[inline(always)]
unsafe fn round8(x: __m256) -> __m256 {
    _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(x)
}

/// [`super::q8_block`]: one block of 32 to Q8 (`d`, the quants, their sum).
///
/// # Safety
/// The CPU must have AVX2; `block` must hold at least 32 values.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn q8_block(block: &[f32]) -> (f32, [i8; QK8], i32) {
    assert!(block.len() >= QK8);
    let p = block.as_ptr();
    let mut v = [_mm256_setzero_ps(); 4];
    for (k, v) in v.iter_mut().enumerate() {
        *v = _mm256_loadu_ps(p.add(8 * k));
    }
    // From zero, the new value first: `maxps` then skips a NaN as `f32::max` does.
    let mut m = _mm256_setzero_ps();
    for x in &v {
        m = _mm256_max_ps(abs8(*x), m);
    }
    let amax = hmax8(m);
    let d = amax / 127.0;
    let id = _mm256_set1_ps(if amax != 0.0 { 127.0 / amax } else { 0.0 });
    let mut q = [_mm256_setzero_si256(); 4];
    for (q, x) in q.iter_mut().zip(&v) {
        let r = round8(_mm256_mul_ps(*x, id));
        // A NaN converts to 0, as Rust's `as` does.
        let r = _mm256_andnot_ps(_mm256_cmp_ps::<_CMP_UNORD_Q>(r, r), r);
        *q = _mm256_cvtps_epi32(r);
    }
    let s = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
    let mut qs = [0i8; QK8];
    pack32(&q, qs.as_mut_ptr());
    (d, qs, hsum_i32(s))
}

/// [`super::q8k_block`]: one block of 256 to Q8_K.
///
/// # Safety
/// The CPU must have AVX2; `block` must hold at least 256 values.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn q8k_block(block: &[f32]) -> Q8K {
    assert!(block.len() >= QK_K);
    let p = block.as_ptr();
    let mut m = _mm256_setzero_ps();
    for k in 0..QK_K / 8 {
        m = _mm256_max_ps(abs8(_mm256_loadu_ps(p.add(8 * k))), m);
    }
    let amax = hmax8(m);
    let mut out = Q8K::ZERO;
    if amax == 0.0 {
        return out;
    }
    // The first value of largest magnitude, signed, as the scalar scan keeps it (always
    // found: `amax` is one of the magnitudes).
    let am = _mm256_set1_ps(amax);
    let first = (0..QK_K / 8).find_map(|k| {
        let eq = _mm256_cmp_ps::<_CMP_EQ_OQ>(abs8(_mm256_loadu_ps(p.add(8 * k))), am);
        let mask = _mm256_movemask_ps(eq);
        (mask != 0).then(|| 8 * k + mask.trailing_zeros() as usize)
    });
    let iscale = -127.0 / block[first.unwrap_or(0)];
    let is = _mm256_set1_ps(iscale);
    let top = _mm256_set1_ps(127.0);
    for g in 0..QK_K / QK8 {
        let mut q = [_mm256_setzero_si256(); 4];
        for (k, q) in q.iter_mut().enumerate() {
            let x = _mm256_loadu_ps(p.add(QK8 * g + 8 * k));
            // `minps` returns its second operand for a NaN: 127, as `f32::min` does.
            *q = _mm256_cvtps_epi32(_mm256_min_ps(round8(_mm256_mul_ps(is, x)), top));
        }
        pack32(&q, out.qs.as_mut_ptr().add(QK8 * g));
        for h in 0..2 {
            out.bsums[2 * g + h] = hsum_i32(_mm256_add_epi32(q[2 * h], q[2 * h + 1])) as i16;
        }
    }
    out.d = 1.0 / iscale;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::tests::lcg;

    fn blocks(n: usize) -> Vec<Vec<f32>> {
        let mut seed = 17u64;
        let mut out: Vec<Vec<f32>> = (0..200)
            .map(|i| {
                let scale = [1e-6, 0.01, 1.0, 3.0, 1e4][i % 5];
                (0..n).map(|_| scale * lcg(&mut seed)).collect()
            })
            .collect();
        out.push(vec![0.0; n]);
        out.push(vec![-0.0; n]);
        // Halves that land on ties after scaling, and a largest magnitude held by both
        // signs (the first one decides the sign of Q8_K's scale).
        out.push((0..n).map(|i| (i % 7) as f32 * 0.5 - 1.5).collect());
        let mut both: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
        both[3] = -2.0;
        both[n - 2] = 2.0;
        out.push(both.clone());
        both[3] = 2.0;
        both[n - 2] = -2.0;
        out.push(both.clone());
        // What a broken layer could pass on.
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut b = both.clone();
            b[1] = bad;
            out.push(b);
        }
        out
    }

    #[test]
    fn vector_q8_blocks_match_the_scalar_path_bit_for_bit() {
        if !crate::kernels::simd_enabled() {
            return;
        }
        for b in blocks(QK8) {
            let want = super::super::q8_block(&b);
            // SAFETY: AVX2 checked above; the block holds 32 values.
            let got = unsafe { q8_block(&b) };
            assert_eq!(got.0.to_bits(), want.0.to_bits(), "{b:?}");
            assert_eq!(got.1, want.1, "{b:?}");
            assert_eq!(got.2, want.2, "{b:?}");
        }
    }

    #[test]
    fn vector_q8k_blocks_match_the_scalar_path_bit_for_bit() {
        if !crate::kernels::simd_enabled() {
            return;
        }
        for b in blocks(QK_K) {
            let want = super::super::q8k_block(&b);
            // SAFETY: AVX2 checked above; the block holds 256 values.
            let got = unsafe { q8k_block(&b) };
            assert_eq!(got.d.to_bits(), want.d.to_bits(), "{b:?}");
            assert_eq!(got.qs, want.qs, "{b:?}");
            assert_eq!(got.bsums, want.bsums, "{b:?}");
        }
    }
}
