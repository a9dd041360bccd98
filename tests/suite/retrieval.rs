//! Chunking, the on-disk chunk index, and retrieval quality (BM25, dense, hybrid) on BEIR
//! SciFact.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use quire_docs::{
    chunk, note, ChunkIndex, ChunkOptions, DocsError, IngestEvent, Library, LibraryOptions,
    PdfMode, SearchMode, WordEstimate,
};
use quire_engine::library::MiniLm;
use quire_runtime::Embedder;
use quire_tests::{embed_model_dir, quire, shared_dir, TempDir};

/// `quire eval beir DIR --mode MODE --json`, parsed.
fn eval_beir(data: &Path, beir: &Path, mode: &str) -> serde_json::Value {
    let out = quire()
        .arg("--data-dir")
        .arg(data)
        .args(["eval", "beir"])
        .arg(beir)
        .args(["--mode", mode, "--json"])
        .output()
        .expect("run quire");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn scifact_bm25_reaches_published_quality() {
    let data = TempDir::new("beir-data");
    let v = eval_beir(data.path(), &shared_dir().join("eval/scifact"), "bm25");
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
        let mut index = ChunkIndex::open(dir.path(), Some(&[9u8; 32])).expect("open");
        for (i, f) in files.iter().enumerate() {
            let n = note::read(f).expect("read note");
            let chunks = chunk::split(&format!("note-{i}"), &n.pages, opts, &WordEstimate);
            assert!(!chunks.is_empty());
            index
                .add(&f.display().to_string(), &n.title, &chunks, None)
                .expect("add");
        }
        index.commit().expect("commit");
    }
    // Reopened from disk: the same chunks, and hits point at their exact text.
    let mut index = ChunkIndex::open(dir.path(), Some(&[9u8; 32])).expect("reopen");
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

/// A small BEIR folder cut from SciFact: the first `queries` test queries, the documents
/// they judge relevant, and the first `others` other documents as distractors.
fn scifact_sample(to: &Path, queries: usize, others: usize) {
    let src = shared_dir().join("eval/scifact");
    let qrels = std::fs::read_to_string(src.join("qrels/test.tsv")).expect("qrels");
    let mut by_query: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut order = Vec::new();
    for line in qrels.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if !by_query.contains_key(cols[0]) {
            order.push(cols[0].to_string());
        }
        by_query
            .entry(cols[0].to_string())
            .or_default()
            .push(cols[1].to_string());
    }
    let kept: Vec<&String> = order.iter().take(queries).collect();
    let relevant: BTreeSet<&String> = kept.iter().flat_map(|q| &by_query[*q]).collect();
    std::fs::create_dir_all(to.join("qrels")).expect("mkdir");
    let mut q_out = String::from("query-id\tcorpus-id\tscore\n");
    for q in &kept {
        for d in &by_query[*q] {
            q_out.push_str(&format!("{q}\t{d}\t1\n"));
        }
    }
    std::fs::write(to.join("qrels/test.tsv"), q_out).expect("write");
    let corpus = std::fs::read_to_string(src.join("corpus.jsonl")).expect("corpus");
    let mut c_out = String::new();
    let mut distractors = 0;
    for line in corpus.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        let id = v["_id"].as_str().expect("id").to_string();
        if relevant.contains(&id) || distractors < others {
            distractors += (!relevant.contains(&id)) as usize;
            c_out.push_str(line);
            c_out.push('\n');
        }
    }
    std::fs::write(to.join("corpus.jsonl"), c_out).expect("write");
    let queries_src = std::fs::read_to_string(src.join("queries.jsonl")).expect("queries");
    let q_lines: String = queries_src
        .lines()
        .filter(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            kept.iter().any(|q| Some(q.as_str()) == v["_id"].as_str())
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(to.join("queries.jsonl"), q_lines).expect("write");
}

#[test]
fn dense_and_hybrid_rank_well_on_a_scifact_sample() {
    let dir = TempDir::new("beir-sample");
    scifact_sample(&dir.path().join("beir"), 80, 300);
    let v = eval_beir(&dir.path().join("data"), &dir.path().join("beir"), "all");
    let scores: BTreeMap<String, (f64, f64)> = v
        .as_array()
        .expect("one entry per mode")
        .iter()
        .map(|s| {
            (
                s["mode"].as_str().expect("mode").to_string(),
                (
                    s["ndcg@10"].as_f64().expect("ndcg"),
                    s["recall@100"].as_f64().expect("recall"),
                ),
            )
        })
        .collect();
    eprintln!("SciFact sample: {scores:?}");
    assert_eq!(scores.len(), 3);
    // MiniLM is a real retriever here, not noise, and fusion does not lose to BM25.
    assert!(scores["dense"].0 > 0.6, "{scores:?}");
    assert!(scores["hybrid"].0 >= scores["bm25"].0, "{scores:?}");
    assert!(scores["hybrid"].1 >= scores["bm25"].1, "{scores:?}");
}

#[test]
fn dense_search_finds_meaning_without_shared_words() {
    let dir = TempDir::new("dense");
    let notes = dir.path().join("notes");
    std::fs::create_dir_all(&notes).expect("mkdir");
    for (name, text) in [
        (
            "cardiology.md",
            "# Cardiology clinic\nThe patient was given acetylsalicylic acid to treat angina.",
        ),
        (
            "budget.md",
            "# Budget\nThe finance committee approved the quarterly spending plan.",
        ),
        (
            "garden.md",
            "# Garden\nTomatoes need full sun and regular watering.",
        ),
    ] {
        std::fs::write(notes.join(name), text).expect("write");
    }
    let index = dir.path().join("index");
    let opts = || LibraryOptions::new(ChunkOptions::default(), PdfMode::InProcess);
    let none = |_: &IngestEvent| {};

    // Without the embedding model: BM25 only, and dense search says what is missing.
    let mut lib = Library::open(&index, opts()).expect("open");
    lib.ingest(
        std::slice::from_ref(&notes),
        &WordEstimate,
        &mut none.clone(),
    )
    .expect("ingest");
    assert!(lib.documents().all(|d| !d.embedded));
    let err = lib
        .search("aspirin chest pain", 3, SearchMode::Dense)
        .expect_err("no embedder");
    assert!(matches!(err, DocsError::NoEmbedder(_)), "{err}");
    assert!(err.to_string().contains("fetch-models.sh"));
    drop(lib);

    // With it: the next ingest embeds the documents it had indexed without vectors.
    let embedder = Arc::new(MiniLm(Embedder::load(&embed_model_dir()).expect("load")));
    let mut lib = Library::open(&index, opts()).expect("reopen");
    lib.set_embedder(embedder);
    let report = lib
        .ingest(
            std::slice::from_ref(&notes),
            &WordEstimate,
            &mut none.clone(),
        )
        .expect("ingest");
    assert_eq!((report.updated, report.unchanged), (3, 0), "{report:?}");
    assert!(lib.documents().all(|d| d.embedded));

    // No word in common with the cardiology note: BM25 cannot find it, dense can.
    let query = "aspirin for chest pain";
    let bm25 = lib.search(query, 3, SearchMode::Bm25).expect("bm25");
    assert!(
        bm25.iter().all(|h| !h.path.ends_with("cardiology.md")),
        "{bm25:?}"
    );
    for mode in [SearchMode::Dense, SearchMode::Hybrid] {
        let hits = lib.search(query, 3, mode).expect("search");
        assert!(
            hits.first()
                .is_some_and(|h| h.path.ends_with("cardiology.md")),
            "{mode:?}: {hits:?}"
        );
    }
    // Hybrid keeps exact-term matches on top too.
    let hits = lib
        .search("quarterly spending", 3, SearchMode::Hybrid)
        .expect("search");
    assert!(hits[0].path.ends_with("budget.md"), "{hits:?}");
}
