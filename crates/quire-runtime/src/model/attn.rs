//! One query row attending over one KV head, straight from the f16 cache.
//!
//! The arithmetic is llama.cpp's CPU flash attention as the decoder has always done it
//! (scores summed over the head dimension in order, an online softmax with `expf`, the
//! weighted sum of V rounded to f16 after every step); the AVX2 + F16C path does exactly
//! the same operations eight lanes at a time, converting the cached halves as it reads
//! them instead of widening the whole cache to f32 on every call, and takes the softmax's
//! exponentials eight at a time with a port of glibc's `expf` that gives the same bits.

use half::f16;

/// One KV head of the cache.
pub(super) struct HeadKv<'a> {
    /// Keys transposed, `[hd][cap]`: row `d` holds dimension `d` of every position.
    pub k_t: &'a [f16],
    pub cap: usize,
    /// Values position-major, `[position][n_kv][hd]`.
    pub v: &'a [f16],
    pub n_kv: usize,
    pub kvh: usize,
    pub hd: usize,
}

/// `q` (already rounded to f16) attends over keys `0..n`; the result goes to `out`.
/// `scores` needs room for `n`, `acc` for `hd`.
pub(super) fn attend(
    kv: &HeadKv,
    q: &[f32],
    n: usize,
    scale: f32,
    scores: &mut [f32],
    acc: &mut [f32],
    out: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if kv.hd.is_multiple_of(8) && crate::kernels::simd_enabled() {
        // SAFETY: the CPU has AVX2, FMA and F16C (checked by `simd_enabled`); slice
        // bounds are checked by the callee's indexing.
        unsafe { x86::attend(kv, q, n, scale, scores, acc, out) };
        return;
    }
    portable(kv, q, n, scale, scores, acc, out);
}

fn round16(x: f32) -> f32 {
    f16::from_f32(x).to_f32()
}

/// The reference: one element at a time.
pub(super) fn portable(
    kv: &HeadKv,
    q: &[f32],
    n: usize,
    scale: f32,
    scores: &mut [f32],
    acc: &mut [f32],
    out: &mut [f32],
) {
    let sc = &mut scores[..n];
    sc.iter_mut().for_each(|s| *s = 0.0);
    for (d, &qd) in q.iter().enumerate() {
        let krow = &kv.k_t[d * kv.cap..][..n];
        sc.iter_mut()
            .zip(krow)
            .for_each(|(s, &kx)| *s += qd * kx.to_f32());
    }
    let s_sum = weigh_values(kv, sc, scale, acc);
    let inv = 1.0 / s_sum;
    out.iter_mut().zip(&*acc).for_each(|(d, a)| *d = a * inv);
}

/// The online softmax over `scores` and the f16 running sum of V into `acc`, one element
/// at a time; returns the softmax denominator.
fn weigh_values(kv: &HeadKv, scores: &[f32], scale: f32, acc: &mut [f32]) -> f32 {
    let hd = kv.hd;
    acc.iter_mut().for_each(|a| *a = 0.0);
    let mut m = f32::NEG_INFINITY;
    let mut s_sum = 0f32;
    for (j, &dot) in scores.iter().enumerate() {
        let (ms, vs) = softmax_step(dot * scale, &mut m);
        let vrow = &kv.v[(j * kv.n_kv + kv.kvh) * hd..][..hd];
        if ms != 1.0 {
            acc.iter_mut().for_each(|a| *a = round16(*a * ms));
        }
        acc.iter_mut()
            .zip(vrow)
            .for_each(|(a, &x)| *a = round16(*a + x.to_f32() * vs));
        s_sum = s_sum * ms + vs;
    }
    s_sum
}

/// The online softmax's step for score `s` with running maximum `m`: the factor for the
/// sum so far and the weight of this key.
#[inline(always)]
fn softmax_step(s: f32, m: &mut f32) -> (f32, f32) {
    if s > *m {
        let ms = (*m - s).exp();
        *m = s;
        (ms, 1.0)
    } else {
        (1.0, (s - *m).exp())
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::HeadKv;
    use std::arch::x86_64::*;

    /// Keys scored per block: eight registers of eight.
    const BLOCK: usize = 64;

    #[inline(always)]
    unsafe fn load_half8(p: &[half::f16]) -> __m256 {
        debug_assert!(p.len() >= 8);
        _mm256_cvtph_ps(_mm_loadu_si128(p.as_ptr() as *const __m128i))
    }

    #[inline(always)]
    unsafe fn round16(x: __m256) -> __m256 {
        _mm256_cvtph_ps(_mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(x))
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn attend(
        kv: &HeadKv,
        q: &[f32],
        n: usize,
        scale: f32,
        scores: &mut [f32],
        acc: &mut [f32],
        out: &mut [f32],
    ) {
        let hd = kv.hd;
        let sc = &mut scores[..n];
        // Scores: each summed over d in order (multiply, then add), 64 keys at a time.
        let mut j = 0;
        while j + 8 <= n {
            let lanes = ((n - j) / 8).min(BLOCK / 8);
            let mut s = [_mm256_setzero_ps(); BLOCK / 8];
            for (d, &qd) in q.iter().enumerate() {
                let qv = _mm256_set1_ps(qd);
                let row = &kv.k_t[d * kv.cap + j..];
                for (l, sl) in s.iter_mut().enumerate().take(lanes) {
                    *sl = _mm256_add_ps(*sl, _mm256_mul_ps(qv, load_half8(&row[l * 8..])));
                }
            }
            for (l, sl) in s.iter().enumerate().take(lanes) {
                _mm256_storeu_ps(sc[j + l * 8..][..8].as_mut_ptr(), *sl);
            }
            j += lanes * 8;
        }
        for (jj, s) in sc.iter_mut().enumerate().skip(j) {
            *s = 0.0;
            for (d, &qd) in q.iter().enumerate() {
                *s += qd * kv.k_t[d * kv.cap + jj].to_f32();
            }
        }
        // The online softmax and the f16 running sum of V.
        let acc = &mut acc[..hd];
        // Heads of 32, 64 and 128 dimensions keep the sum in registers; others go
        // element by element.
        let s_sum = match hd {
            32 | 64 | 128 => {
                softmax_factors(sc, scale);
                match hd {
                    32 => weigh_values::<4>(kv, sc, acc),
                    64 => weigh_values::<8>(kv, sc, acc),
                    _ => weigh_values::<16>(kv, sc, acc),
                }
            }
            _ => super::weigh_values(kv, sc, scale, acc),
        };
        let inv = 1.0 / s_sum;
        out.iter_mut().zip(&*acc).for_each(|(d, a)| *d = a * inv);
    }

    /// The online softmax's factors for every key at once, in place of its scores: the
    /// running maximum is a prefix maximum, so each key's `expf` argument is known up
    /// front (`m − s` when the key raises the maximum, else `s − m`, exactly as
    /// [`softmax_step`] forms them) and eight exponentials are taken together. A key that
    /// raised the maximum gets `−ms` (its `vs` is 1), any other `vs` (its `ms` is 1):
    /// exponentials are never negative, so the sign carries which.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn softmax_factors(scores: &mut [f32], scale: f32) {
        let mut m = f32::NEG_INFINITY;
        for x in scores.iter_mut() {
            let s = *x * scale;
            // Negative exactly when the key raises the maximum (m − s < 0, or −∞ for the
            // first key); else s − m negated, ≥ 0.
            *x = m - s;
            if s > m {
                m = s;
            }
        }
        let mut chunks = scores.chunks_exact_mut(8);
        for c in &mut chunks {
            let v = _mm256_loadu_ps(c.as_ptr());
            _mm256_storeu_ps(c.as_mut_ptr(), signed_exp(v));
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let mut buf = [0f32; 8];
            buf[..rest.len()].copy_from_slice(rest);
            let e = signed_exp(_mm256_loadu_ps(buf.as_ptr()));
            _mm256_storeu_ps(buf.as_mut_ptr(), e);
            rest.copy_from_slice(&buf[..rest.len()]);
        }
    }

    /// `expf(−|v|)`, carrying the sign of `v`.
    #[inline(always)]
    unsafe fn signed_exp(v: __m256) -> __m256 {
        let sign = _mm256_set1_ps(-0.0);
        let neg = _mm256_or_ps(v, sign);
        let e = _mm256_set_m128(
            expf4(_mm256_extractf128_ps::<1>(neg)),
            expf4(_mm256_castps256_ps128(neg)),
        );
        _mm256_or_ps(e, _mm256_and_ps(v, sign))
    }

    /// −0x1.9fe368p6: below it glibc's `expf` returns 0 without the polynomial.
    pub(super) const UNDERFLOW: f32 = f32::from_bits(0xc2cff1b4);

    /// glibc's `expf` (Arm's optimized-routines algorithm) four lanes at a time: the same
    /// double-precision operations in the same order and the same table, so the same bits
    /// (checked against the libm call in the tests).
    #[inline(always)]
    pub(super) unsafe fn expf4(x: __m128) -> __m128 {
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
        // Below the underflow edge (and at −∞) the result is 0.
        let under = _mm_cmp_ps::<_CMP_LT_OQ>(x, _mm_set1_ps(UNDERFLOW));
        _mm_andnot_ps(under, out)
    }

    /// The weighted sum of V for a head of `8 * C` dimensions, held in registers, from
    /// [`softmax_factors`]; returns the softmax denominator.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn weigh_values<const C: usize>(kv: &HeadKv, factors: &[f32], acc: &mut [f32]) -> f32 {
        let mut a = [_mm256_setzero_ps(); C];
        let mut s_sum = 0f32;
        for (j, &e) in factors.iter().enumerate() {
            let (ms, vs) = if e.is_sign_negative() {
                (-e, 1.0)
            } else {
                (1.0, e)
            };
            let vrow = &kv.v[(j * kv.n_kv + kv.kvh) * kv.hd..][..8 * C];
            if ms != 1.0 {
                let msv = _mm256_set1_ps(ms);
                for x in a.iter_mut() {
                    *x = round16(_mm256_mul_ps(*x, msv));
                }
            }
            let vsv = _mm256_set1_ps(vs);
            for (c, x) in a.iter_mut().enumerate() {
                let v = load_half8(&vrow[c * 8..]);
                *x = round16(_mm256_add_ps(*x, _mm256_mul_ps(v, vsv)));
            }
            s_sum = s_sum * ms + vs;
        }
        for (c, x) in a.iter().enumerate() {
            _mm256_storeu_ps(acc[c * 8..][..8].as_mut_ptr(), *x);
        }
        s_sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_arch = "x86_64")]
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
        let edge = x86::UNDERFLOW;
        xs.extend([
            edge,
            f32::from_bits(edge.to_bits() - 1),
            f32::from_bits(edge.to_bits() + 1),
        ]);
        xs.extend([0.0, -0.0, f32::NEG_INFINITY, -87.33655, -88.72284]);
        while !xs.len().is_multiple_of(8) {
            xs.push(-1.0);
        }
        for c in xs.chunks_exact(8) {
            let mut got = [0f32; 8];
            // SAFETY: AVX2, FMA and F16C are present (checked above).
            unsafe {
                use std::arch::x86_64::*;
                let v = x86::expf4(_mm_loadu_ps(c.as_ptr()));
                _mm_storeu_ps(got.as_mut_ptr(), v);
                let v = x86::expf4(_mm_loadu_ps(c[4..].as_ptr()));
                _mm_storeu_ps(got[4..].as_mut_ptr(), v);
            }
            for (x, g) in c.iter().zip(got) {
                assert_eq!(g.to_bits(), x.exp().to_bits(), "expf({x:e})");
            }
        }
    }

    #[test]
    fn the_simd_path_matches_the_reference_bit_for_bit() {
        let mut seed = 11u64;
        let mut rnd = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) as f32 / (1u64 << 31) as f32) * 4.0 - 2.0
        };
        let (n_kv, cap) = (3, 200);
        for (hd, n) in [
            (64, 1),
            (64, 7),
            (64, 8),
            (64, 63),
            (64, 64),
            (64, 65),
            (64, 130),
            (64, 200),
            (32, 77),
            (24, 9),
        ] {
            let k_t: Vec<f16> = (0..n_kv * hd * cap).map(|_| f16::from_f32(rnd())).collect();
            let v: Vec<f16> = (0..cap * n_kv * hd).map(|_| f16::from_f32(rnd())).collect();
            let q: Vec<f32> = (0..hd).map(|_| round16(rnd() * 3.0)).collect();
            for kvh in 0..n_kv {
                let kv = HeadKv {
                    k_t: &k_t[kvh * hd * cap..][..hd * cap],
                    cap,
                    v: &v,
                    n_kv,
                    kvh,
                    hd,
                };
                let (mut s1, mut a1, mut o1) = (vec![0.0; cap], vec![0.0; hd], vec![0.0; hd]);
                let (mut s2, mut a2, mut o2) = (vec![0.0; cap], vec![0.0; hd], vec![0.0; hd]);
                portable(&kv, &q, n, 0.125, &mut s1, &mut a1, &mut o1);
                attend(&kv, &q, n, 0.125, &mut s2, &mut a2, &mut o2);
                assert_eq!(o1, o2, "output, n = {n}");
                assert!(o1.iter().all(|x| x.is_finite()));
            }
        }
    }
}
