//! Retrieval quality on a BEIR-format folder (corpus.jsonl, queries.jsonl, qrels/test.tsv),
//! reported as nDCG@10 and Recall@100, the figures BEIR publishes.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use std::time::Instant;

use crate::chunk::{self, Chunk, ChunkOptions, Page, TokenCount};
use crate::embed::{self, Embed};
use crate::error::{DocsError, Result};
use crate::index::{ChunkIndex, SearchMode};

/// The scores `quire eval beir` prints, for one retrieval mode.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BeirScores {
    pub mode: SearchMode,
    #[serde(rename = "ndcg@10")]
    pub ndcg_at_10: f64,
    #[serde(rename = "recall@100")]
    pub recall_at_100: f64,
    pub queries: usize,
    pub documents: usize,
    /// Chunks indexed (documents longer than the chunk size are split).
    pub chunks: usize,
    /// Time to build the BM25 index, and to embed every chunk (0 without dense).
    pub index_ms: f64,
    pub embed_ms: f64,
    /// The index on disk, vectors included.
    pub index_bytes: u64,
    /// Query latency, embedding the query included.
    pub query_p50_ms: f64,
    pub query_p95_ms: f64,
}

/// How to run an evaluation.
pub struct BeirOptions<'a> {
    pub modes: Vec<SearchMode>,
    /// Needed for dense and hybrid.
    pub embedder: Option<&'a dyn Embed>,
    /// Split documents into chunks (a document ranks by its best chunk); `None` indexes
    /// each document whole.
    pub chunking: Option<(ChunkOptions, &'a dyn TokenCount)>,
    /// Called as chunks are embedded: (done, total).
    pub progress: Option<&'a mut dyn FnMut(usize, usize)>,
    /// Where corpus embeddings are cached between runs (keyed by the texts and the
    /// model's output), so a second evaluation does not embed the corpus again.
    pub cache_dir: Option<std::path::PathBuf>,
    /// Seal the index on disk with this key (to measure what encryption costs).
    pub index_key: Option<[u8; 32]>,
}

/// Embeds `texts`, reading and writing a cache file when `cache_dir` is set.
fn embed_cached(
    e: &dyn Embed,
    texts: &[String],
    cache_dir: Option<&Path>,
    progress: &mut Option<&mut dyn FnMut(usize, usize)>,
) -> Result<Vec<Vec<f32>>> {
    use sha2::{Digest, Sha256};
    let probe = e
        .embed(&["quire embedding cache probe"])
        .map_err(DocsError::Embed)?;
    let dim = probe.first().map_or(0, Vec::len);
    let mut h = Sha256::new();
    for x in probe.iter().flatten() {
        h.update(x.to_le_bytes());
    }
    for t in texts {
        h.update(t.as_bytes());
        h.update([0]);
    }
    let key: String = h
        .finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    let file = cache_dir.map(|d| d.join(format!("embeddings-{key}.f32")));
    if let Some(bytes) = file.as_ref().and_then(|f| std::fs::read(f).ok()) {
        if dim > 0 && bytes.len() == texts.len() * dim * 4 {
            let flat: Vec<f32> = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            return Ok(flat.chunks(dim).map(<[f32]>::to_vec).collect());
        }
    }
    let mut out = Vec::with_capacity(texts.len());
    for batch in texts.chunks(64) {
        let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
        out.extend(e.embed(&refs).map_err(DocsError::Embed)?);
        if let Some(p) = progress.as_mut() {
            p(out.len(), texts.len());
        }
    }
    if let (Some(f), Some(d)) = (&file, cache_dir) {
        let bytes: Vec<u8> = out.iter().flatten().flat_map(|x| x.to_le_bytes()).collect();
        // A cache that cannot be written only costs time next run.
        let tmp = f.with_extension("tmp");
        if std::fs::create_dir_all(d).is_ok() && std::fs::write(&tmp, bytes).is_ok() {
            let _ = std::fs::rename(&tmp, f);
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
struct CorpusLine {
    #[serde(rename = "_id")]
    id: String,
    #[serde(default)]
    title: String,
    text: String,
}

#[derive(Deserialize)]
struct QueryLine {
    #[serde(rename = "_id")]
    id: String,
    text: String,
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| DocsError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>> {
    read(path)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| DocsError::Format {
                path: path.to_path_buf(),
                reason: format!("line {}: {e}", i + 1),
            })
        })
        .collect()
}

/// Relevance judgements: query id → (document id → grade).
fn qrels(path: &Path) -> Result<HashMap<String, HashMap<String, u32>>> {
    let mut out: HashMap<String, HashMap<String, u32>> = HashMap::new();
    for (i, line) in read(path)?.lines().enumerate() {
        let cols: Vec<&str> = line.split('\t').collect();
        if i == 0 && cols.first() == Some(&"query-id") {
            continue;
        }
        if let [q, d, grade] = cols[..] {
            let grade: u32 = grade.trim().parse().map_err(|_| DocsError::Format {
                path: path.to_path_buf(),
                reason: format!("line {}: bad grade {grade:?}", i + 1),
            })?;
            out.entry(q.to_string())
                .or_default()
                .insert(d.to_string(), grade);
        }
    }
    Ok(out)
}

/// Evaluates each mode in `opts` on the BEIR folder `dir`, over one index.
pub fn evaluate(dir: &Path, mut opts: BeirOptions) -> Result<Vec<BeirScores>> {
    let corpus: Vec<CorpusLine> = jsonl(&dir.join("corpus.jsonl"))?;
    let queries: Vec<QueryLine> = jsonl(&dir.join("queries.jsonl"))?;
    let judged = qrels(&dir.join("qrels").join("test.tsv"))?;
    let dense = opts.modes.iter().any(|m| *m != SearchMode::Bm25);
    if dense && opts.embedder.is_none() {
        return Err(DocsError::NoEmbedder("dense"));
    }

    // Chunks first (and their vectors), then the index.
    let mut chunks: Vec<(usize, Chunk)> = Vec::new();
    for (i, d) in corpus.iter().enumerate() {
        let page = Page {
            number: 1,
            text: d.text.clone(),
        };
        match &opts.chunking {
            Some((c, counter)) => chunks.extend(
                chunk::split(&d.id, std::slice::from_ref(&page), *c, *counter)
                    .into_iter()
                    .map(|c| (i, c)),
            ),
            None => chunks.push((
                i,
                Chunk {
                    doc_id: d.id.clone(),
                    page: 1,
                    span: (0, d.text.chars().count()),
                    text: d.text.clone(),
                    heading: None,
                },
            )),
        }
    }
    let started = Instant::now();
    let vectors = match (dense, opts.embedder) {
        (true, Some(e)) => {
            let texts: Vec<String> = chunks
                .iter()
                .map(|(i, c)| {
                    embed::chunk_text(
                        Some(&corpus[*i].title)
                            .filter(|t| !t.is_empty())
                            .map(String::as_str),
                        &c.text,
                    )
                })
                .collect();
            let out = embed_cached(e, &texts, opts.cache_dir.as_deref(), &mut opts.progress)?;
            Some(out)
        }
        _ => None,
    };
    let embed_ms = started.elapsed().as_secs_f64() * 1000.0;

    let tmp = std::env::temp_dir().join(format!("quire-beir-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let result = (|| {
        let started = Instant::now();
        let mut index = ChunkIndex::open(&tmp, opts.index_key.as_ref())?;
        for (k, (i, c)) in chunks.iter().enumerate() {
            let d = &corpus[*i];
            let v = vectors.as_ref().map(|v| std::slice::from_ref(&v[k]));
            index.add(&d.id, &d.title, std::slice::from_ref(c), v)?;
        }
        index.commit()?;
        let index_ms = started.elapsed().as_secs_f64() * 1000.0;
        let index_bytes = index.disk_bytes();
        let mut out = Vec::new();
        for &mode in &opts.modes {
            // Chunks of one document may repeat: then ask for more, keep each one's best.
            let depth = if opts.chunking.is_some() { 400 } else { 100 };
            out.push(run_queries(
                &index,
                mode,
                opts.embedder,
                depth,
                &queries,
                &judged,
                |scores| BeirScores {
                    mode,
                    documents: corpus.len(),
                    chunks: chunks.len(),
                    index_ms,
                    embed_ms,
                    index_bytes,
                    ..scores
                },
            )?);
        }
        Ok(out)
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

fn run_queries(
    index: &ChunkIndex,
    mode: SearchMode,
    embedder: Option<&dyn Embed>,
    depth: usize,
    queries: &[QueryLine],
    judged: &HashMap<String, HashMap<String, u32>>,
    finish: impl FnOnce(BeirScores) -> BeirScores,
) -> Result<BeirScores> {
    let (mut ndcg, mut recall, mut n) = (0.0, 0.0, 0usize);
    let mut latencies = Vec::new();
    for q in queries.iter().filter(|q| judged.contains_key(&q.id)) {
        let rel = &judged[&q.id];
        let t = Instant::now();
        let hits = match mode {
            SearchMode::Bm25 => index.search(&q.text, depth)?,
            _ => {
                let e = embedder.ok_or(DocsError::NoEmbedder(mode.name()))?;
                let v = e
                    .embed(&[&q.text])
                    .map_err(DocsError::Embed)?
                    .pop()
                    .unwrap_or_default();
                if mode == SearchMode::Dense {
                    index.search_dense(&v, depth)?
                } else {
                    index.search_hybrid(&q.text, &v, depth)?
                }
            }
        };
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        let mut seen = std::collections::HashSet::new();
        let ranked: Vec<&str> = hits
            .iter()
            .map(|h| h.doc_id.as_str())
            .filter(|d| seen.insert(*d))
            .take(100)
            .collect();
        ndcg += ndcg_at(&ranked, rel, 10);
        let relevant = rel.values().filter(|&&g| g > 0).count();
        let found = ranked
            .iter()
            .filter(|d| rel.get(**d).is_some_and(|&g| g > 0))
            .count();
        recall += if relevant == 0 {
            0.0
        } else {
            found as f64 / relevant as f64
        };
        n += 1;
    }
    let n_f = n.max(1) as f64;
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        let at = ((latencies.len().max(1) - 1) as f64 * p).round() as usize;
        latencies.get(at).copied().unwrap_or(0.0)
    };
    Ok(finish(BeirScores {
        mode,
        ndcg_at_10: ndcg / n_f,
        recall_at_100: recall / n_f,
        queries: n,
        documents: 0,
        chunks: 0,
        index_ms: 0.0,
        embed_ms: 0.0,
        index_bytes: 0,
        query_p50_ms: pct(0.5),
        query_p95_ms: pct(0.95),
    }))
}

fn ndcg_at(ranked: &[&str], rel: &HashMap<String, u32>, k: usize) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, d)| rel.get(*d).copied().unwrap_or(0) as f64 / ((i + 2) as f64).log2())
        .sum();
    let mut ideal: Vec<u32> = rel.values().copied().collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, &g)| g as f64 / ((i + 2) as f64).log2())
        .sum();
    if idcg == 0.0 {
        0.0
    } else {
        dcg / idcg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndcg_of_perfect_and_reversed_rankings() {
        let rel: HashMap<String, u32> = [("a".to_string(), 2), ("b".to_string(), 1)].into();
        assert!((ndcg_at(&["a", "b", "c"], &rel, 10) - 1.0).abs() < 1e-12);
        // DCG 1/log2(3) + 2/log2(4); ideal 2 + 1/log2(3).
        let want = (1.0 / 3f64.log2() + 1.0) / (2.0 + 1.0 / 3f64.log2());
        assert!((ndcg_at(&["c", "b", "a"], &rel, 10) - want).abs() < 1e-12);
        assert_eq!(ndcg_at(&["x"], &rel, 10), 0.0);
    }
}
