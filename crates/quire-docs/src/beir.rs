//! Retrieval quality on a BEIR-format folder (corpus.jsonl, queries.jsonl, qrels/test.tsv),
//! reported as nDCG@10 and Recall@100, the figures BEIR publishes.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::chunk::Chunk;
use crate::error::{DocsError, Result};
use crate::index::ChunkIndex;

/// The scores `quire eval beir` prints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BeirScores {
    #[serde(rename = "ndcg@10")]
    pub ndcg_at_10: f64,
    #[serde(rename = "recall@100")]
    pub recall_at_100: f64,
    pub queries: usize,
    pub documents: usize,
    /// Time to index the corpus.
    pub index_ms: f64,
    /// Query latency (top 100), median and 95th percentile.
    pub query_p50_ms: f64,
    pub query_p95_ms: f64,
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

/// Indexes the corpus (one chunk per document) and scores BM25 retrieval on the test split.
pub fn evaluate(dir: &Path) -> Result<BeirScores> {
    let corpus: Vec<CorpusLine> = jsonl(&dir.join("corpus.jsonl"))?;
    let queries: Vec<QueryLine> = jsonl(&dir.join("queries.jsonl"))?;
    let judged = qrels(&dir.join("qrels").join("test.tsv"))?;

    let started = std::time::Instant::now();
    let mut index = ChunkIndex::in_memory()?;
    for d in &corpus {
        let chunk = Chunk {
            doc_id: d.id.clone(),
            page: 1,
            span: (0, d.text.chars().count()),
            text: d.text.clone(),
            heading: None,
        };
        index.add(&d.id, &d.title, std::slice::from_ref(&chunk))?;
    }
    index.commit()?;
    let index_ms = started.elapsed().as_secs_f64() * 1000.0;

    let (mut ndcg, mut recall, mut n) = (0.0, 0.0, 0usize);
    let mut latencies = Vec::new();
    for q in queries.iter().filter(|q| judged.contains_key(&q.id)) {
        let rel = &judged[&q.id];
        let t = std::time::Instant::now();
        let hits = index.search(&q.text, 100)?;
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        let ranked: Vec<&str> = hits.iter().map(|h| h.doc_id.as_str()).collect();
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
    Ok(BeirScores {
        ndcg_at_10: ndcg / n_f,
        recall_at_100: recall / n_f,
        queries: n,
        documents: corpus.len(),
        index_ms,
        query_p50_ms: pct(0.5),
        query_p95_ms: pct(0.95),
    })
}

/// nDCG with linear gains and log2 discounts, as pytrec_eval (used by BEIR) computes it.
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
