//! Query rows attending over one KV head, straight from the f16 cache.
//!
//! The arithmetic is llama.cpp's CPU flash attention as the decoder has always done it
//! (scores summed over the head dimension in order, an online softmax with `expf`, the
//! weighted sum of V rounded to f16 after every step); the AVX2 + F16C path does exactly
//! the same operations eight lanes at a time, converting the cached halves as it reads
//! them instead of widening the whole cache to f32 on every call, and takes the softmax's
//! exponentials eight at a time with a port of glibc's `expf` that gives the same bits.
//!
//! The cache is kept in blocks of [`KB`] positions, and every query a call is given walks
//! the keys block by block, each query's running state carried from one block to the
//! next: a block's keys and values (8 KiB each for 64 dimensions) are read from memory
//! once and stay in L1 while every query of a prefill task — a group of rows times the
//! query heads that share this KV head — goes over them. Each query still meets its keys
//! one at a time in order, so the result is the same to the bit as one query at a time.

use half::f16;

/// Positions per cache block.
pub(super) const KB: usize = 64;

/// One KV head of the cache.
pub(super) struct HeadKv<'a> {
    /// Key blocks, `[block][n_kv][hd][KB]`: each block's keys transposed, dimension `d`
    /// of its positions side by side.
    pub k: &'a [f16],
    /// Value blocks, `[block][n_kv][KB][hd]`.
    pub v: &'a [f16],
    pub n_kv: usize,
    pub kvh: usize,
    pub hd: usize,
}

impl HeadKv<'_> {
    pub(super) fn k_block(&self, b: usize) -> &[f16] {
        &self.k[(b * self.n_kv + self.kvh) * self.hd * KB..][..self.hd * KB]
    }

    pub(super) fn v_block(&self, b: usize) -> &[f16] {
        &self.v[(b * self.n_kv + self.kvh) * KB * self.hd..][..KB * self.hd]
    }
}

/// One query's online softmax between key blocks: its running maximum and denominator,
/// and its sum of V so far.
struct Running<'a> {
    m: &'a mut f32,
    sum: &'a mut f32,
    acc: &'a mut [f32],
}

/// `qs`: `[nq][hd]`, each query already rounded to f16; query `i` attends over keys
/// `0..ns[i]` (at least one) and its result goes to `out[i * hd..][..hd]`.
pub(super) fn attend(kv: &HeadKv, qs: &[f32], ns: &[usize], scale: f32, out: &mut [f32]) {
    let hd = kv.hd;
    let nq = ns.len();
    debug_assert!(qs.len() == nq * hd && out.len() == nq * hd);
    let mut m = vec![f32::NEG_INFINITY; nq];
    let mut sum = vec![0f32; nq];
    // The running sums live in `out` until the end.
    out.iter_mut().for_each(|a| *a = 0.0);
    let simd = simd_heads(hd);
    let mut accs: Vec<&mut [f32]> = out.chunks_exact_mut(hd).collect();
    let mut scores = [[0f32; KB]; GROUP];
    let n_blocks = ns.iter().max().map_or(0, |&n| n.div_ceil(KB));
    let mut active = Vec::with_capacity(nq);
    for b in 0..n_blocks {
        let (kb, vb) = (kv.k_block(b), kv.v_block(b));
        active.clear();
        active.extend((0..nq).filter(|&i| ns[i] > b * KB));
        #[cfg(target_arch = "x86_64")]
        if simd {
            for g in active.chunks(GROUP) {
                let group = Group {
                    members: g,
                    first: b * KB,
                    ns,
                    qs,
                };
                // SAFETY: the CPU has AVX2, FMA and F16C (checked by `simd_heads`); slice
                // bounds are checked by the callee's indexing.
                unsafe {
                    x86::group(
                        kb,
                        vb,
                        hd,
                        &group,
                        scale,
                        &mut m,
                        &mut sum,
                        &mut accs,
                        &mut scores,
                    )
                };
            }
            continue;
        }
        let _ = simd;
        for &i in &active {
            let run = Running {
                m: &mut m[i],
                sum: &mut sum[i],
                acc: &mut *accs[i],
            };
            let len = (ns[i] - b * KB).min(KB);
            block(
                kb,
                vb,
                hd,
                &qs[i * hd..][..hd],
                len,
                scale,
                &mut scores[0],
                run,
            );
        }
    }
    for (acc, s) in accs.into_iter().zip(&sum) {
        let inv = 1.0 / s;
        acc.iter_mut().for_each(|a| *a *= inv);
    }
}

/// Queries whose sums of V the vector path advances together over a block's keys:
/// independent chains of f16 roundings for the core to overlap, and each value row read
/// once for all of them.
const GROUP: usize = 3;

/// Up to [`GROUP`] queries (indices into `ns`, `qs`) at the block starting at key `first`.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct Group<'a> {
    members: &'a [usize],
    first: usize,
    ns: &'a [usize],
    qs: &'a [f32],
}

/// Whether the vector path takes heads of `hd` dimensions (its running sum is held in
/// registers).
fn simd_heads(hd: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        hd.is_multiple_of(32) && hd <= 256 && crate::kernels::simd_enabled()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = hd;
        false
    }
}

fn round16(x: f32) -> f32 {
    f16::from_f32(x).to_f32()
}

/// The reference: keys `0..len` of one block, one element at a time.
#[allow(clippy::too_many_arguments)]
fn block(
    kb: &[f16],
    vb: &[f16],
    hd: usize,
    q: &[f32],
    len: usize,
    scale: f32,
    scores: &mut [f32; KB],
    run: Running,
) {
    let sc = &mut scores[..len];
    sc.iter_mut().for_each(|s| *s = 0.0);
    for (d, &qd) in q.iter().enumerate() {
        sc.iter_mut()
            .zip(&kb[d * KB..][..len])
            .for_each(|(s, &kx)| *s += qd * kx.to_f32());
    }
    for (j, &dot) in sc.iter().enumerate() {
        let (ms, vs) = softmax_step(dot * scale, run.m);
        let vrow = &vb[j * hd..][..hd];
        if ms != 1.0 {
            run.acc.iter_mut().for_each(|a| *a = round16(*a * ms));
        }
        run.acc
            .iter_mut()
            .zip(vrow)
            .for_each(|(a, &x)| *a = round16(*a + x.to_f32() * vs));
        *run.sum = *run.sum * ms + vs;
    }
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
    use super::{Group, GROUP, KB};
    use half::f16;
    use std::arch::x86_64::*;

    #[inline(always)]
    unsafe fn load_half8(p: &[f16]) -> __m256 {
        debug_assert!(p.len() >= 8);
        _mm256_cvtph_ps(_mm_loadu_si128(p.as_ptr() as *const __m128i))
    }

    #[inline(always)]
    unsafe fn round16(x: __m256) -> __m256 {
        _mm256_cvtph_ps(_mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(x))
    }

    /// [`super::block`] for a group of queries, eight lanes at a time, for heads of a
    /// multiple of 32 dimensions.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn group(
        kb: &[f16],
        vb: &[f16],
        hd: usize,
        g: &Group,
        scale: f32,
        m: &mut [f32],
        sum: &mut [f32],
        accs: &mut [&mut [f32]],
        scores: &mut [[f32; KB]; GROUP],
    ) {
        let mm = g.members;
        let mut lens = [0usize; GROUP];
        for (len, &i) in lens.iter_mut().zip(mm) {
            *len = (g.ns[i] - g.first).min(KB);
        }
        let lanes = lens.iter().max().map_or(0, |l| l.div_ceil(8));
        let q = |slot: usize| &g.qs[mm[slot] * hd..][..hd];
        match mm.len() {
            3 => {
                let [a, b, c] = scores;
                dots::<3>(kb, [q(0), q(1), q(2)], lanes, [a, b, c]);
            }
            2 => {
                let [a, b, _] = scores;
                dots::<2>(kb, [q(0), q(1)], lanes, [a, b]);
            }
            _ => dots::<1>(kb, [q(0)], lanes, [&mut scores[0]]),
        }
        for (slot, &i) in mm.iter().enumerate() {
            factors(&mut scores[slot], lens[slot], scale, &mut m[i]);
        }
        // The softmax denominators, `s·ms + vs` per key: each query's is one long chain
        // of dependent additions, so the group's chains go side by side. With `ms` = 1
        // (most keys) the product is `s` itself and is skipped.
        let mut s = [0f32; GROUP];
        for (sl, &i) in s.iter_mut().zip(mm) {
            *sl = sum[i];
        }
        let joint = lens[..mm.len()].iter().copied().min().unwrap_or(0);
        for j in 0..joint {
            for (sl, sc) in s.iter_mut().zip(scores.iter()).take(mm.len()) {
                *sl = denominator_step(*sl, sc[j]);
            }
        }
        for ((sl, sc), &len) in s.iter_mut().zip(scores.iter()).zip(&lens).take(mm.len()) {
            for &e in &sc[joint..len] {
                *sl = denominator_step(*sl, e);
            }
        }
        for (sl, &i) in s.iter().zip(mm) {
            sum[i] = *sl;
        }
        let f = |slot: usize| &scores[slot][..lens[slot]];
        match mm.len() {
            3 => {
                let [a, b, c] = accs.get_disjoint_mut([mm[0], mm[1], mm[2]]).unwrap();
                weigh::<3>(vb, hd, [f(0), f(1), f(2)], [&mut **a, &mut **b, &mut **c]);
            }
            2 => {
                let [a, b] = accs.get_disjoint_mut([mm[0], mm[1]]).unwrap();
                weigh::<2>(vb, hd, [f(0), f(1)], [&mut **a, &mut **b]);
            }
            _ => weigh::<1>(vb, hd, [f(0)], [&mut *accs[mm[0]]]),
        }
    }

    /// `Q` queries' scores for the block's first `lanes` groups of eight keys: each
    /// summed over d in order (multiply, then add), as [`super::block`] does one at a
    /// time, with each group of keys converted once for all the queries. Lanes past a
    /// query's keys score positions it does not see (or not yet written) and are never
    /// read.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dots<const Q: usize>(
        kb: &[f16],
        qs: [&[f32]; Q],
        lanes: usize,
        mut out: [&mut [f32; KB]; Q],
    ) {
        // Two lane groups (16 keys) per pass: 2·Q sums in registers, with room for the
        // keys and a query's broadcast (four groups of three queries would spill).
        for l0 in (0..lanes).step_by(2) {
            let mut s = [[_mm256_setzero_ps(); 2]; Q];
            for d in 0..qs[0].len() {
                let row = &kb[d * KB + l0 * 8..][..16];
                let k = [load_half8(&row[0..]), load_half8(&row[8..])];
                for (sq, q) in s.iter_mut().zip(&qs) {
                    let qv = _mm256_set1_ps(*q.get_unchecked(d));
                    for (x, &kc) in sq.iter_mut().zip(&k) {
                        *x = _mm256_add_ps(*x, _mm256_mul_ps(qv, kc));
                    }
                }
            }
            for (sq, o) in s.iter().zip(out.iter_mut()) {
                for (c, x) in sq.iter().enumerate() {
                    _mm256_storeu_ps(o[(l0 + c) * 8..][..8].as_mut_ptr(), *x);
                }
            }
        }
    }

    /// The online softmax's factors for the block's first `len` keys, in place of their
    /// scores, carrying the running maximum `m`.
    ///
    /// The running maximum is a prefix maximum, so each key's `expf` argument is known up
    /// front (`m − s` when the key raises the maximum, else `s − m`, exactly as
    /// [`super::softmax_step`] forms them) and eight exponentials are taken together. A
    /// key that raised the maximum gets `−ms` (its `vs` is 1), any other `vs` (its `ms` is
    /// 1): exponentials are never negative, so the sign carries which ([`split`]).
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn factors(out: &mut [f32; KB], len: usize, scale: f32, m: &mut f32) {
        let lanes = len.div_ceil(8);
        let mut mx = *m;
        for x in out[..len].iter_mut() {
            let s = *x * scale;
            // Negative exactly when the key raises the maximum (m − s < 0, or −∞ for the
            // first key); else s − m negated, ≥ 0.
            *x = mx - s;
            if s > mx {
                mx = s;
            }
        }
        *m = mx;
        for c in out[..lanes * 8].chunks_exact_mut(8) {
            let v = _mm256_loadu_ps(c.as_ptr());
            _mm256_storeu_ps(c.as_mut_ptr(), signed_exp(v));
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

    /// A factor from [`factors`] as the softmax step's `(ms, vs)`.
    #[inline(always)]
    fn split(e: f32) -> (f32, f32) {
        if e.is_sign_negative() {
            (-e, 1.0)
        } else {
            (1.0, e)
        }
    }

    /// The softmax denominator's step `s·ms + vs` for a factor from [`factors`].
    #[inline(always)]
    fn denominator_step(s: f32, e: f32) -> f32 {
        if e.is_sign_negative() {
            s * -e + 1.0
        } else {
            // `s · 1 + vs`: the product is exact.
            s + e
        }
    }

    /// The weighted sums of V of `Q` queries over their factors' keys: together over the
    /// keys all of them see, then each alone over the rest.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn weigh<const Q: usize>(
        vb: &[f16],
        hd: usize,
        fac: [&[f32]; Q],
        mut acc: [&mut [f32]; Q],
    ) {
        let joint = fac.iter().map(|f| f.len()).min().unwrap_or(0);
        weigh_keys::<Q>(vb, hd, 0..joint, fac, &mut acc);
        if Q > 1 {
            for (f, a) in fac.iter().zip(acc.iter_mut()) {
                if f.len() > joint {
                    weigh_keys::<1>(vb, hd, joint..f.len(), [f], &mut [&mut **a]);
                }
            }
        }
    }

    /// Keys `keys` of the weighted sums, 32 dimensions at a time with every query's sum
    /// of them in registers (four registers each), each value row's part converted once
    /// for all the queries.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn weigh_keys<const Q: usize>(
        vb: &[f16],
        hd: usize,
        keys: std::ops::Range<usize>,
        fac: [&[f32]; Q],
        acc: &mut [&mut [f32]; Q],
    ) {
        if keys.is_empty() {
            return;
        }
        for p in (0..hd).step_by(32) {
            let mut a = [[_mm256_setzero_ps(); 4]; Q];
            for (aq, src) in a.iter_mut().zip(acc.iter()) {
                for (c, x) in aq.iter_mut().enumerate() {
                    *x = _mm256_loadu_ps(src[p + c * 8..][..8].as_ptr());
                }
            }
            for j in keys.clone() {
                let vrow = &vb[j * hd + p..][..32];
                let v = [
                    load_half8(&vrow[0..]),
                    load_half8(&vrow[8..]),
                    load_half8(&vrow[16..]),
                    load_half8(&vrow[24..]),
                ];
                for (aq, f) in a.iter_mut().zip(&fac) {
                    let (ms, vs) = split(f[j]);
                    if ms != 1.0 {
                        let msv = _mm256_set1_ps(ms);
                        for x in aq.iter_mut() {
                            *x = round16(_mm256_mul_ps(*x, msv));
                        }
                    }
                    let vsv = _mm256_set1_ps(vs);
                    for (x, &vc) in aq.iter_mut().zip(&v) {
                        *x = round16(_mm256_add_ps(*x, _mm256_mul_ps(vc, vsv)));
                    }
                }
            }
            for (aq, dst) in a.iter().zip(acc.iter_mut()) {
                for (c, x) in aq.iter().enumerate() {
                    _mm256_storeu_ps(dst[p + c * 8..][..8].as_mut_ptr(), *x);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One query over its keys in one pass, one element at a time: the arithmetic every
    /// path must reproduce.
    fn one_query(kv: &HeadKv, q: &[f32], n: usize, scale: f32) -> Vec<f32> {
        let hd = kv.hd;
        let key = |j: usize, d: usize| kv.k_block(j / KB)[d * KB + j % KB].to_f32();
        let val = |j: usize, d: usize| kv.v_block(j / KB)[(j % KB) * hd + d].to_f32();
        let mut acc = vec![0f32; hd];
        let (mut m, mut s_sum) = (f32::NEG_INFINITY, 0f32);
        for j in 0..n {
            let mut dot = 0f32;
            for (d, &qd) in q.iter().enumerate() {
                dot += qd * key(j, d);
            }
            let (ms, vs) = softmax_step(dot * scale, &mut m);
            for (d, a) in acc.iter_mut().enumerate() {
                if ms != 1.0 {
                    *a = round16(*a * ms);
                }
                *a = round16(*a + val(j, d) * vs);
            }
            s_sum = s_sum * ms + vs;
        }
        acc.iter().map(|a| a * (1.0 / s_sum)).collect()
    }

    #[test]
    fn every_path_matches_one_query_at_a_time_bit_for_bit() {
        let mut seed = 11u64;
        let mut rnd = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) as f32 / (1u64 << 31) as f32) * 4.0 - 2.0
        };
        let (n_kv, cap) = (3, 4 * KB);
        for hd in [24, 32, 64, 96, 128, 256] {
            let k: Vec<f16> = (0..cap * n_kv * hd).map(|_| f16::from_f32(rnd())).collect();
            let v: Vec<f16> = (0..cap * n_kv * hd).map(|_| f16::from_f32(rnd())).collect();
            // Key counts on both sides of lane and block edges, in one call, as a
            // prefill's causal rows and a decode's single row give them.
            let ns = [1, 7, 8, 9, 63, 64, 65, 130, 200, cap];
            let qs: Vec<f32> = (0..ns.len() * hd).map(|_| round16(rnd() * 3.0)).collect();
            for kvh in 0..n_kv {
                let kv = HeadKv {
                    k: &k,
                    v: &v,
                    n_kv,
                    kvh,
                    hd,
                };
                let mut out = vec![f32::NAN; ns.len() * hd];
                attend(&kv, &qs, &ns, 0.125, &mut out);
                let mut single = vec![0f32; hd];
                for (i, &n) in ns.iter().enumerate() {
                    let q = &qs[i * hd..][..hd];
                    let want = one_query(&kv, q, n, 0.125);
                    assert_eq!(&out[i * hd..][..hd], &want[..], "hd {hd}, n = {n}");
                    assert!(want.iter().all(|x| x.is_finite()));
                    attend(&kv, q, &[n], 0.125, &mut single);
                    assert_eq!(single, want, "alone: hd {hd}, n = {n}");
                }
            }
        }
    }
}
