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
        let e = crate::kernels::vexp::expf8(neg);
        _mm256_or_ps(e, _mm256_and_ps(v, sign))
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
