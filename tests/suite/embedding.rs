//! The sentence-embedding model on its real weights: unit vectors of the right width,
//! published reference values, sensible similarities, results independent of batching,
//! truncation at 256 tokens, and clear errors for missing or damaged files.

use std::path::Path;
use std::sync::OnceLock;

use quire_runtime::{Embedder, RuntimeError, EMBED_MODEL_DIR};
use quire_tests::{embed_model_dir, TempDir};

/// Loaded once and shared: embedding only reads the model.
fn embedder() -> &'static Embedder {
    static EMBEDDER: OnceLock<Embedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| Embedder::load(&embed_model_dir()).expect("embedding model loads"))
}

fn embed_one(text: &str) -> Vec<f32> {
    let mut vectors = embedder().embed(&[text]).expect("embed");
    assert_eq!(vectors.len(), 1);
    vectors.remove(0)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    dot(a, b) / (dot(a, a).sqrt() * dot(b, b).sqrt())
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn vectors_are_unit_length_and_384_wide() {
    let e = embedder();
    assert_eq!(e.dim(), 384);
    let long = "word ".repeat(2000);
    let texts = [
        "Hello, world.",
        "",
        "   \n\t",
        "Résumé: 😀🎉 医学研究 ✓",
        long.as_str(),
    ];
    let vectors = e.embed(&texts).expect("embed");
    assert_eq!(vectors.len(), texts.len());
    for (text, v) in texts.iter().zip(&vectors) {
        let head: String = text.chars().take(20).collect();
        assert_eq!(v.len(), 384, "{head:?}");
        assert!(v.iter().all(|x| x.is_finite()), "{head:?}");
        let norm = dot(v, v).sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{head:?}: norm {norm}");
    }
    assert!(e.embed(&[]).expect("no texts").is_empty());
}

/// The first six values of two sentence-transformers reference embeddings for
/// all-MiniLM-L6-v2, as published in an R sbert package's integration test; DJL's Spark
/// text-embedding demo (deepjavalibrary/djl-demo) prints the same leading 0.0676569, and a
/// float64 NumPy implementation of the model reproduces all twelve values to 2e-7.
#[test]
fn matches_published_reference_values() {
    let cases: [(&str, [f64; 6]); 2] = [
        (
            "This is an example sentence",
            [
                0.06765693, 0.06349593, 0.04871314, 0.07930495, 0.03744806, 0.00265273,
            ],
        ),
        (
            "",
            [
                -0.11883835,
                0.04829856,
                -0.00254805,
                -0.01101118,
                0.0519507,
                0.01029179,
            ],
        ),
    ];
    for (text, want) in cases {
        let got = embed_one(text);
        let diff = got
            .iter()
            .zip(want)
            .map(|(&g, w)| (f64::from(g) - w).abs())
            .fold(0.0, f64::max);
        assert!(diff < 2e-5, "{text:?}: {:?} vs {want:?}", &got[..6]);
    }
}

#[test]
fn related_sentences_are_closer_than_unrelated_ones() {
    let v = embedder()
        .embed(&[
            "The patient was given aspirin for chest pain.",
            "Acetylsalicylic acid was administered to treat angina.",
            "The stock market fell sharply on Tuesday.",
        ])
        .expect("embed");
    let related = cosine(&v[0], &v[1]);
    let unrelated = cosine(&v[0], &v[2]);
    // The float64 NumPy implementation gives about 0.47 and 0.02.
    assert!(
        related > unrelated + 0.2,
        "related {related}, unrelated {unrelated}"
    );
}

#[test]
fn batching_and_padding_do_not_change_vectors() {
    const PROSE: &str = "Quire reads the notes and papers on this computer, splits them into \
        passages, and finds the passages that answer a question. Nothing leaves the machine: \
        the models, the index and the answers all stay local. Long documents are cut into \
        chunks that keep their page and position, so that every answer can point back to the \
        exact place it came from, and a reader can check it.";
    let words: Vec<&str> = PROSE.split_whitespace().collect();
    // Twenty texts from empty to the whole paragraph, plus one cut at 256 tokens: more than
    // one batch, and short texts padded far beyond their length.
    let mut owned: Vec<String> = (0..20)
        .map(|i| words[..(i * 3).min(words.len())].join(" "))
        .collect();
    owned.push("the cat sat on the mat. ".repeat(60));
    let texts: Vec<&str> = owned.iter().map(String::as_str).collect();

    let together = embedder().embed(&texts).expect("embed");
    assert_eq!(together.len(), texts.len());
    for (&text, v) in texts.iter().zip(&together) {
        let diff = max_diff(v, &embed_one(text));
        assert!(diff < 1e-4, "{text:?}: differs by {diff} inside a batch");
    }

    // The order of the results follows the order of the texts, whatever it is.
    let reversed: Vec<&str> = texts.iter().rev().copied().collect();
    let back = embedder().embed(&reversed).expect("embed");
    for (v, w) in together.iter().zip(back.iter().rev()) {
        assert!(max_diff(v, w) < 1e-4);
    }
}

#[test]
fn long_texts_are_cut_at_256_tokens() {
    // "the cat sat on the mat. " is 7 tokens; [CLS] and [SEP] add 2.
    let similarity = |repeats: usize| {
        let base = "the cat sat on the mat. ".repeat(repeats);
        let a = format!("{base}The stock market fell sharply.");
        let b = format!("{base}A recipe for lemon cake.");
        let v = embedder().embed(&[a.as_str(), b.as_str()]).expect("embed");
        cosine(&v[0], &v[1])
    };
    // 25 repeats: the endings start at token 176, past the 128 that tokenizer.json itself
    // sets, and still count.
    let seen = similarity(25);
    assert!(
        seen < 0.95,
        "endings after token 176 were ignored: cosine {seen}"
    );
    // 60 repeats: the endings start at token 421 and are cut.
    let cut = similarity(60);
    assert!(
        cut > 0.9999,
        "text past 256 tokens changed the vector: cosine {cut}"
    );
}

/// The error of loading `dir`, which must name the fetch script; returns its message.
fn load_error(dir: &Path) -> String {
    let err = Embedder::load(dir).expect_err("must not load");
    let msg = err.to_string();
    assert!(matches!(err, RuntimeError::EmbedModel { .. }), "{msg}");
    assert!(msg.contains("scripts/fetch-models.sh"), "{msg}");
    msg
}

/// A model folder with the real config and tokenizer, and `weights` as its safetensors.
fn model_copy(weights: &[u8]) -> TempDir {
    let src = embed_model_dir();
    let dir = TempDir::new("embed");
    for file in ["config.json", "tokenizer.json"] {
        std::fs::copy(src.join(file), dir.path().join(file)).expect("copy");
    }
    std::fs::write(dir.path().join("model.safetensors"), weights).expect("write");
    dir
}

#[test]
fn missing_folder_or_file_is_named() {
    let dir = TempDir::new("embed-missing");
    let msg = load_error(&dir.path().join(EMBED_MODEL_DIR));
    assert!(
        msg.contains(EMBED_MODEL_DIR) && msg.contains("not found"),
        "{msg}"
    );

    let src = embed_model_dir();
    let files = ["config.json", "model.safetensors", "tokenizer.json"];
    for missing in files {
        let dir = TempDir::new("embed-partial");
        for file in files.iter().filter(|&&f| f != missing) {
            std::fs::copy(src.join(file), dir.path().join(file)).expect("copy");
        }
        let msg = load_error(dir.path());
        assert!(
            msg.contains(missing) && msg.contains("not found"),
            "{missing}: {msg}"
        );
    }
}

#[test]
fn truncated_weights_are_a_clear_error() {
    let weights = std::fs::read(embed_model_dir().join("model.safetensors")).expect("read");
    for cut in [0, 4, 1000, weights.len() / 2, weights.len() - 1] {
        let dir = model_copy(&weights[..cut]);
        let msg = load_error(dir.path());
        assert!(
            msg.contains("model.safetensors") && msg.contains("truncated"),
            "cut at {cut}: {msg}"
        );
    }
    // Cut inside the tensor data: both sizes are named.
    let cut = weights.len() - 1000;
    let dir = model_copy(&weights[..cut]);
    let msg = load_error(dir.path());
    let sizes = format!("need {} bytes but the file has {cut}", weights.len());
    assert!(msg.contains(sizes.as_str()), "{msg}");
}

#[test]
fn damaged_files_are_clear_errors() {
    let weights = std::fs::read(embed_model_dir().join("model.safetensors")).expect("read");

    let dir = model_copy(b"this is not a model at all, only some text");
    let msg = load_error(dir.path());
    assert!(
        msg.contains("model.safetensors") && msg.contains("not a safetensors file"),
        "{msg}"
    );

    let dir = model_copy(&weights);
    std::fs::write(dir.path().join("config.json"), r#"{"hidden_size": 384}"#).expect("write");
    let msg = load_error(dir.path());
    assert!(
        msg.contains("config.json") && msg.contains("not a valid BERT config"),
        "{msg}"
    );

    let dir = model_copy(&weights);
    std::fs::write(dir.path().join("tokenizer.json"), "not json").expect("write");
    let msg = load_error(dir.path());
    assert!(
        msg.contains("tokenizer.json") && msg.contains("not a valid tokenizer"),
        "{msg}"
    );

    // A config asking for a seventh layer the weights do not have.
    let dir = model_copy(&weights);
    let config_path = dir.path().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).expect("read"))
            .expect("config is JSON");
    config["num_hidden_layers"] = serde_json::Value::from(7_u64);
    std::fs::write(config_path, config.to_string()).expect("write");
    let msg = load_error(dir.path());
    assert!(
        msg.contains("model.safetensors") && msg.contains("do not match config.json"),
        "{msg}"
    );
}
