//! Query rows attending over one KV head, straight from the f16 cache, in one of two
//! arithmetics ([`Attention`]).
//!
//! The cache is kept in blocks of [`KB`] positions, and every query a call is given walks
//! the keys block by block, each query's running state carried from one block to the
//! next: a block's keys and values (8 KiB each for 64 dimensions) are read from memory
//! once and stay in L1 while every query of a prefill task — a group of rows times the
//! query heads that share this KV head — goes over them.

use half::f16;

mod fast;
mod ggml;

/// Positions per cache block.
pub(super) const KB: usize = 64;

/// How attention does its arithmetic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Attention {
    /// Flash attention in f32 with fused multiply-adds on register tiles (see `fast.rs`):
    /// closer to exact attention than llama.cpp's, and what Quire runs.
    #[default]
    Fast,
    /// llama.cpp's CPU flash attention step for step (see `ggml.rs`): the weighted sum of
    /// V rounded to f16 after every key, as ggml does. Slower (the rounding is most of
    /// attention's time); for checking greedy output against llama.cpp's, whose
    /// near ties it then follows.
    LlamaCpp,
}

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

impl<'a> HeadKv<'a> {
    pub(super) fn new(k: &'a [f16], v: &'a [f16], n_kv: usize, kvh: usize, hd: usize) -> Self {
        Self {
            k,
            v,
            n_kv,
            kvh,
            hd,
        }
    }

    pub(super) fn k_block(&self, b: usize) -> &[f16] {
        &self.k[(b * self.n_kv + self.kvh) * self.hd * KB..][..self.hd * KB]
    }

    pub(super) fn v_block(&self, b: usize) -> &[f16] {
        &self.v[(b * self.n_kv + self.kvh) * KB * self.hd..][..KB * self.hd]
    }

    /// Dimension `d` of position `j`'s key.
    #[cfg(test)]
    pub(super) fn key(&self, j: usize, d: usize) -> f16 {
        self.k_block(j / KB)[d * KB + j % KB]
    }

    /// Dimension `d` of position `j`'s value.
    #[cfg(test)]
    pub(super) fn value(&self, j: usize, d: usize) -> f16 {
        self.v_block(j / KB)[(j % KB) * self.hd + d]
    }
}

/// `qs`: `[nq][hd]`, each query already rounded to f16; query `i` attends over keys
/// `0..ns[i]` (at least one) and its result goes to `out[i * hd..][..hd]`.
pub(super) fn attend(
    kv: &HeadKv,
    qs: &[f32],
    ns: &[usize],
    scale: f32,
    out: &mut [f32],
    how: Attention,
) {
    match how {
        Attention::Fast => fast::attend(kv, qs, ns, scale, out),
        Attention::LlamaCpp => ggml::attend(kv, qs, ns, scale, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A seeded generator of values in [−2, 2).
    pub(super) struct Lcg(pub u64);

    impl Lcg {
        pub(super) fn next(&mut self) -> f32 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) as f32 / (1u64 << 31) as f32) * 4.0 - 2.0
        }
    }

    /// Random keys, then values, for `cap` positions of `n_kv` heads of `hd` dimensions.
    pub(super) fn cache(n_kv: usize, hd: usize, cap: usize, rnd: &mut Lcg) -> (Vec<f16>, Vec<f16>) {
        let k = (0..cap * n_kv * hd)
            .map(|_| f16::from_f32(rnd.next()))
            .collect();
        let v = (0..cap * n_kv * hd)
            .map(|_| f16::from_f32(rnd.next()))
            .collect();
        (k, v)
    }

    /// The fast arithmetic is the more accurate of the two: over prompts of hundreds of
    /// keys, its largest error against attention in f64 is far below llama.cpp's, whose
    /// f16 running sum loses bits at every key.
    #[test]
    fn fast_attention_is_closer_to_exact_than_llama_cpps() {
        let (n_kv, hd, cap) = (1, 64, 8 * KB);
        let (k, v) = cache(n_kv, hd, cap, &mut Lcg(3));
        let kv = HeadKv::new(&k, &v, n_kv, 0, hd);
        let ns = [100, 300, cap];
        let qs: Vec<f32> = (0..ns.len() * hd)
            .map(|i| f16::from_f32(((i * 7919) % 97) as f32 / 48.0 - 1.0).to_f32())
            .collect();
        let worst = |how| {
            let mut out = vec![0f32; ns.len() * hd];
            attend(&kv, &qs, &ns, 0.125, &mut out, how);
            let mut worst = 0f64;
            for (i, &n) in ns.iter().enumerate() {
                let want = fast::tests::exact(&kv, &qs[i * hd..][..hd], n, 0.125);
                for (g, w) in out[i * hd..][..hd].iter().zip(want) {
                    worst = worst.max((*g as f64 - w).abs());
                }
            }
            worst
        };
        let (f, g) = (worst(Attention::Fast), worst(Attention::LlamaCpp));
        eprintln!("largest error against f64: fast {f:.2e}, llama.cpp's {g:.2e}");
        assert!(f < 1e-6, "fast: {f}");
        assert!(f * 100.0 < g, "fast {f} against llama.cpp's {g}");
    }
}
