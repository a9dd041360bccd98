//! `expf` eight lanes at a time, giving glibc's bits: for llama.cpp's softmax and SwiGLU,
//! which take tens of millions of exponentials per prompt; and [`exp8`], a cheaper
//! single-precision exp for the softmax that need not follow glibc.

use std::arch::x86_64::*;

/// −0x1.9fe368p6: below it glibc's `expf` returns 0 without the polynomial.
const UNDERFLOW: f32 = f32::from_bits(0xc2cff1b4);

/// 0x1.62e42ep6: above it glibc's `expf` returns +∞.
const OVERFLOW: f32 = f32::from_bits(0x42b17218);

/// glibc's `expf` (Arm's optimized-routines algorithm) four lanes at a time: the same
/// double-precision operations in the same order and the same table, so the same bits
/// (checked against the libm call in the tests).
#[inline(always)]
pub(crate) unsafe fn expf4(x: __m128) -> __m128 {
    // tab[i] = bits(2^(i/32)) − (i << 47).
    static TAB: [u64; 32] = [
        0x3ff0000000000000,
        0x3fefd9b0d3158574,
        0x3fefb5586cf9890f,
        0x3fef9301d0125b51,
        0x3fef72b83c7d517b,
        0x3fef54873168b9aa,
        0x3fef387a6e756238,
        0x3fef1e9df51fdee1,
        0x3fef06fe0a31b715,
        0x3feef1a7373aa9cb,
        0x3feedea64c123422,
        0x3feece086061892d,
        0x3feebfdad5362a27,
        0x3feeb42b569d4f82,
        0x3feeab07dd485429,
        0x3feea47eb03a5585,
        0x3feea09e667f3bcd,
        0x3fee9f75e8ec5f74,
        0x3feea11473eb0187,
        0x3feea589994cce13,
        0x3feeace5422aa0db,
        0x3feeb737b0cdc5e5,
        0x3feec49182a3f090,
        0x3feed503b23e255d,
        0x3feee89f995ad3ad,
        0x3feeff76f2fb5e47,
        0x3fef199bdd85529c,
        0x3fef3720dcef9069,
        0x3fef5818dcfba487,
        0x3fef7c97337b9b5f,
        0x3fefa4afa2a490da,
        0x3fefd0765b6e4540,
    ];
    let c = |bits: u64| _mm256_set1_pd(f64::from_bits(bits));
    let xd = _mm256_cvtps_pd(x);
    // 32/ln 2, 1.5·2^52 (rounds to an integer in the low bits), the polynomial.
    let z = _mm256_mul_pd(c(0x40471547652b82fe), xd);
    let shifted = _mm256_add_pd(z, c(0x4338000000000000));
    let kd = _mm256_sub_pd(shifted, c(0x4338000000000000));
    let r = _mm256_sub_pd(z, kd);
    let ki = _mm256_castpd_si256(shifted);
    let idx = _mm256_and_si256(ki, _mm256_set1_epi64x(31));
    let t = _mm256_i64gather_epi64::<8>(TAB.as_ptr() as *const i64, idx);
    let s = _mm256_castsi256_pd(_mm256_add_epi64(t, _mm256_slli_epi64::<47>(ki)));
    let p = _mm256_fmadd_pd(c(0x3ebc6af84b912394), r, c(0x3f2ebfce50fac4f3));
    let r2 = _mm256_mul_pd(r, r);
    let y = _mm256_fmadd_pd(c(0x3f962e42ff0c52d6), r, _mm256_set1_pd(1.0));
    let y = _mm256_mul_pd(_mm256_fmadd_pd(p, r2, y), s);
    let out = _mm256_cvtpd_ps(y);
    // Below the underflow edge (and at −∞) the result is 0; above the overflow edge
    // (where the table's exponent would wrap) +∞.
    let under = _mm_cmp_ps::<_CMP_LT_OQ>(x, _mm_set1_ps(UNDERFLOW));
    let over = _mm_cmp_ps::<_CMP_GT_OQ>(x, _mm_set1_ps(OVERFLOW));
    _mm_blendv_ps(_mm_andnot_ps(under, out), _mm_set1_ps(f32::INFINITY), over)
}

/// [`expf4`] on eight lanes.
#[inline(always)]
pub(crate) unsafe fn expf8(x: __m256) -> __m256 {
    _mm256_set_m128(
        expf4(_mm256_extractf128_ps::<1>(x)),
        expf4(_mm256_castps256_ps128(x)),
    )
}

/// `exp(x)` for `x ≤ 0` in single precision, for softmaxes that need not follow glibc's bits (Cephes' `expf`: 2^n times a degree-7
/// polynomial on |r| ≤ ln 2 / 2), within 2 ulp; 0 below −87.3 (and for −∞).
#[inline(always)]
pub(crate) unsafe fn exp8(x: __m256) -> __m256 {
    let lo = _mm256_set1_ps(-87.3);
    let under = _mm256_cmp_ps::<_CMP_LT_OQ>(x, lo);
    let x = _mm256_max_ps(x, lo);
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
        x,
        _mm256_set1_ps(std::f32::consts::LOG2_E),
    ));
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), x);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
    let c = |v: f32| _mm256_set1_ps(v);
    let mut p = c(1.987_569_1e-4);
    p = _mm256_fmadd_ps(p, r, c(1.398_199_9e-3));
    p = _mm256_fmadd_ps(p, r, c(8.333_452e-3));
    p = _mm256_fmadd_ps(p, r, c(4.166_579_6e-2));
    p = _mm256_fmadd_ps(p, r, c(1.666_666_5e-1));
    p = _mm256_fmadd_ps(p, r, c(0.5));
    let p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, c(1.0)));
    let pow2 = _mm256_slli_epi32::<23>(_mm256_add_epi32(
        _mm256_cvtps_epi32(n),
        _mm256_set1_epi32(127),
    ));
    let y = _mm256_mul_ps(p, _mm256_castsi256_ps(pow2));
    _mm256_andnot_ps(under, y)
}

/// SwiGLU in place, `g ← g / (1 + expf(−g)) · u`: the same operations as
/// [`super::swiglu1`], eight lanes at a time.
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn swiglu(g: &mut [f32], u: &[f32]) {
    assert_eq!(g.len(), u.len());
    let mut gc = g.chunks_exact_mut(8);
    let mut uc = u.chunks_exact(8);
    let one = _mm256_set1_ps(1.0);
    let sign = _mm256_set1_ps(-0.0);
    for (g8, u8) in (&mut gc).zip(&mut uc) {
        let x = _mm256_loadu_ps(g8.as_ptr());
        let e = expf8(_mm256_xor_ps(x, sign));
        let y = _mm256_mul_ps(
            _mm256_div_ps(x, _mm256_add_ps(one, e)),
            _mm256_loadu_ps(u8.as_ptr()),
        );
        _mm256_storeu_ps(g8.as_mut_ptr(), y);
    }
    for (g, &u) in gc.into_remainder().iter_mut().zip(uc.remainder()) {
        *g = super::swiglu1(*g, u);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vector_exp_is_within_two_ulp_of_libm() {
        if !crate::kernels::simd_enabled() {
            return;
        }
        let mut worst = 0f64;
        let mut x = -90f32;
        while x <= 0.0 {
            let lanes: [f32; 8] = std::array::from_fn(|i| x - i as f32 * 1e-3);
            let mut got = [0f32; 8];
            // SAFETY: AVX2, FMA and F16C checked above.
            unsafe {
                use std::arch::x86_64::*;
                _mm256_storeu_ps(got.as_mut_ptr(), exp8(_mm256_loadu_ps(lanes.as_ptr())));
            }
            for (&g, &l) in got.iter().zip(&lanes) {
                let want = (l as f64).exp();
                if l < -87.3 {
                    assert_eq!(g, 0.0, "exp({l})");
                } else if want > f32::MIN_POSITIVE as f64 {
                    let ulp = (want as f32).to_bits() as i64 - g.to_bits() as i64;
                    worst = worst.max(ulp.abs() as f64);
                }
            }
            x += 0.0137;
        }
        assert!(worst <= 2.0, "{worst} ulp");
        let mut neg_inf = [0f32; 8];
        // SAFETY: as above.
        unsafe {
            use std::arch::x86_64::*;
            let v = exp8(_mm256_set1_ps(f32::NEG_INFINITY));
            _mm256_storeu_ps(neg_inf.as_mut_ptr(), v);
        }
        assert_eq!(neg_inf, [0.0; 8]);
    }

    #[test]
    fn the_vector_expf_is_libms_bit_for_bit() {
        if !crate::kernels::simd_enabled() {
            return;
        }
        // Every float in [−2, 0] in steps of 97 ulps, a spread over the whole range the
        // softmax uses, the underflow edge, zero and −∞.
        let mut xs: Vec<f32> = Vec::new();
        let mut b = 0x8000_0000u32;
        while f32::from_bits(b) >= -2.0 {
            xs.push(f32::from_bits(b));
            b += 97;
        }
        let mut seed = 7u64;
        for _ in 0..200_000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (seed >> 40) as f32 / (1u64 << 24) as f32;
            xs.push(-u * u * 120.0);
        }
        let edge = UNDERFLOW;
        xs.extend([
            edge,
            f32::from_bits(edge.to_bits() - 1),
            f32::from_bits(edge.to_bits() + 1),
        ]);
        xs.extend([0.0, -0.0, f32::NEG_INFINITY, -87.33655, -88.72284]);
        // The overflow edge and beyond (SwiGLU takes expf(−g) of any gate value): glibc
        // gives +∞ above it.
        let over = OVERFLOW;
        xs.extend([
            over,
            f32::from_bits(over.to_bits() - 1),
            f32::from_bits(over.to_bits() + 1),
            100.0,
            700.0,
            1e4,
            3e38,
            f32::INFINITY,
        ]);
        while !xs.len().is_multiple_of(8) {
            xs.push(-1.0);
        }
        for c in xs.chunks_exact(8) {
            let mut got = [0f32; 8];
            // SAFETY: AVX2, FMA and F16C are present (checked above).
            unsafe {
                use std::arch::x86_64::*;
                let v = expf4(_mm_loadu_ps(c.as_ptr()));
                _mm_storeu_ps(got.as_mut_ptr(), v);
                let v = expf4(_mm_loadu_ps(c[4..].as_ptr()));
                _mm_storeu_ps(got[4..].as_mut_ptr(), v);
            }
            for (x, g) in c.iter().zip(got) {
                assert_eq!(g.to_bits(), x.exp().to_bits(), "expf({x:e})");
            }
        }
    }

    #[test]
    fn swiglu_matches_element_by_element() {
        if !crate::kernels::simd_enabled() {
            return;
        }
        let mut seed = 3u64;
        let mut rnd = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) as f32 / (1u64 << 31) as f32 - 0.5) * 40.0
        };
        let mut g: Vec<f32> = (0..1003).map(|_| rnd()).collect();
        // Gates far out on both sides, where expf(−g) overflows or underflows.
        g[..6].copy_from_slice(&[-1e4, -500.0, -89.0, 89.0, 500.0, 1e4]);
        let u: Vec<f32> = (0..1003).map(|_| rnd()).collect();
        let want: Vec<f32> = g
            .iter()
            .zip(&u)
            .map(|(&g, &u)| crate::kernels::swiglu1(g, u))
            .collect();
        let mut got = g.clone();
        // SAFETY: checked above.
        unsafe { swiglu(&mut got, &u) };
        for (a, b) in got.iter().zip(&want) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
    }
}
