//! Chunking, the on-disk chunk index and BM25 retrieval quality on BEIR SciFact.

use std::process::Command;

use quire_docs::{chunk, note, ChunkIndex, ChunkOptions, WordEstimate};
use quire_tests::{quire_bin, shared_dir, TempDir};

#[test]
fn scifact_bm25_reaches_published_quality() {
    let dir = shared_dir().join("eval/scifact");
    let out = Command::new(quire_bin())
        .args([
            "eval",
            "beir",
            dir.to_str().expect("utf8"),
            "--mode",
            "bm25",
            "--json",
        ])
        .output()
        .expect("run quire");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let ndcg = v["ndcg@10"].as_f64().expect("ndcg@10");
    let recall = v["recall@100"].as_f64().expect("recall@100");
    eprintln!("SciFact BM25: nDCG@10 {ndcg:.4}, Recall@100 {recall:.4}");
    // BEIR's published BM25 is 0.665 nDCG@10.
    assert!(ndcg >= 0.66, "nDCG@10 {ndcg}");
    assert!(recall >= 0.85, "Recall@100 {recall}");
    assert_eq!(
        (v["queries"].as_u64(), v["documents"].as_u64()),
        (Some(300), Some(5183))
    );
}

#[test]
fn index_persists_deletes_by_document_and_keeps_spans() {
    let dir = TempDir::new("index");
    let notes = shared_dir().join("corpus/notes");
    let mut files: Vec<_> = std::fs::read_dir(&notes)
        .expect("notes")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let opts = ChunkOptions::default();
    {
        let mut index = ChunkIndex::open(dir.path()).expect("open");
        for (i, f) in files.iter().enumerate() {
            let n = note::read(f).expect("read note");
            let chunks = chunk::split(&format!("note-{i}"), &n.pages, opts, &WordEstimate);
            assert!(!chunks.is_empty());
            index
                .add(&f.display().to_string(), &n.title, &chunks)
                .expect("add");
        }
        index.commit().expect("commit");
    }
    // Reopened from disk: the same chunks, and hits point at their exact text.
    let mut index = ChunkIndex::open(dir.path()).expect("reopen");
    let total = index.num_chunks();
    assert!(total > 20, "{total}");
    let hits = index
        .search("leadership council agenda", 5)
        .expect("search");
    assert_eq!(hits.len(), 5);
    for h in &hits {
        let n = note::read(std::path::Path::new(&h.path)).expect("read");
        let page: Vec<char> = n.pages[0].text.chars().collect();
        assert_eq!(page[h.span.0..h.span.1].iter().collect::<String>(), h.text);
        assert_eq!(h.page, 1);
    }
    // Query syntax in a question is just text.
    index
        .search("what about (AND OR \"unbalanced: [x", 3)
        .expect("free text");
    // Removing one document removes exactly its chunks.
    let victim = hits[0].doc_id.clone();
    index.remove(&victim);
    index.commit().expect("commit");
    assert!(index.num_chunks() < total);
    let again = index
        .search("leadership council agenda", 50)
        .expect("search");
    assert!(again.iter().all(|h| h.doc_id != victim));
}
