//! The `quire` binary end to end, on the real default model.

use quire_tests::{ids, model_path, reference_lines, TempDir, SMOL};

fn quire(args: &[&str]) -> (bool, String, String) {
    let dir = TempDir::new("cli");
    let out = quire_tests::quire()
        .args(["--data-dir", dir.path().to_str().expect("utf8")])
        .args(args)
        .env_remove("QUIRE_MODEL")
        .output()
        .expect("run quire");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn smol() -> String {
    model_path(SMOL).display().to_string()
}

#[test]
fn tokenize_prints_reference_ids() {
    let line = reference_lines("tokenizer.jsonl")
        .into_iter()
        .find(|l| l["model"] == SMOL && l["text"].as_str().is_some_and(|t| t.contains("<|im_")))
        .expect("a special-token look-alike line");
    let text = line["text"].as_str().expect("text");
    let model = smol();
    for (flag, key) in [(None, "ids"), (Some("--special"), "ids_parse_special")] {
        let mut args = vec!["tokenize", "--model", model.as_str()];
        args.extend(flag);
        args.extend(["--", text]);
        let (ok, stdout, stderr) = quire(&args);
        assert!(ok, "{stderr}");
        let got: Vec<u32> = serde_json::from_str(stdout.trim()).expect("JSON array");
        assert_eq!(got, ids(&line[key]), "{key}");
    }
}

#[test]
fn generate_json_reports_prompt_and_generated_ids() {
    // The fifth SmolLM2 prompt is one whose whole continuation matches llama.cpp.
    let line = reference_lines("greedy.jsonl")
        .into_iter()
        .filter(|l| l["model"] == SMOL)
        .nth(4)
        .expect("line");
    let prompt: Vec<String> = ids(&line["prompt_ids"])
        .iter()
        .map(u32::to_string)
        .collect();
    let want = ids(&line["greedy_ids"]);
    let n = want.len().min(8).to_string();
    let (ok, stdout, stderr) = quire(&[
        "generate",
        "--model",
        &smol(),
        "--prompt-ids",
        &prompt.join(","),
        "--max-tokens",
        &n,
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(ids(&v["prompt_ids"]).len(), prompt.len());
    let got = ids(&v["ids"]);
    assert_eq!(
        got[..],
        want[..got.len()],
        "greedy ids follow the reference"
    );
    assert!(v["text"].is_string());
}

#[test]
fn generate_chat_streams_text() {
    let (ok, stdout, stderr) = quire(&[
        "generate",
        "--model",
        &smol(),
        "--chat",
        "Say hello.",
        "--max-tokens",
        "12",
    ]);
    assert!(ok, "{stderr}");
    assert!(!stdout.trim().is_empty());
}

#[test]
fn model_info_json() {
    let (ok, stdout, stderr) = quire(&["model", "info", "--model", &smol(), "--json"]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(v["architecture"], "llama");
    assert_eq!(v["quantization"], "Q4_1");
    assert_eq!(v["context_length"], 8192);
    assert_eq!(v["chat_template"], true);
    assert_eq!(
        v["sha256"],
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    );
    let params = v["parameters"].as_u64().expect("count");
    assert!((130_000_000..140_000_000).contains(&params), "{params}");
}

#[test]
fn missing_model_names_the_install_command() {
    let (ok, _, stderr) = quire(&[
        "generate",
        "--model",
        "/nonexistent/model.gguf",
        "--prompt",
        "hi",
    ]);
    assert!(!ok);
    assert!(stderr.contains("scripts/fetch-models.sh"), "{stderr}");
    assert!(stderr.contains("/nonexistent/model.gguf"), "{stderr}");
}

#[test]
fn corrupt_model_is_a_clear_error() {
    let dir = TempDir::new("cli-corrupt");
    let path = dir.path().join("broken.gguf");
    std::fs::write(&path, b"GGUF\x03\x00\x00\x00garbage").expect("write");
    let (ok, _, stderr) = quire(&["model", "info", "--model", path.to_str().expect("utf8")]);
    assert!(!ok);
    assert!(
        stderr.contains("broken.gguf") && stderr.contains("not a valid GGUF"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn chat_answers_piped_questions() {
    use std::io::Write;
    let dir = TempDir::new("chat");
    let mut child = quire_tests::quire()
        .args([
            "--data-dir",
            dir.path().to_str().expect("utf8"),
            "chat",
            "--model",
            &smol(),
            "--max-tokens",
            "16",
            "--temperature",
            "0",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"Hi!\n/reset\nWhat is 2+2?\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().filter(|l| !l.trim().is_empty()).count() >= 2,
        "two answers: {text}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("history cleared"));
}

#[test]
fn bench_json_has_the_four_figures() {
    let (ok, stdout, stderr) = quire(&[
        "bench",
        "--model",
        &smol(),
        "--prompt-tokens",
        "32",
        "--gen-tokens",
        "8",
        "--ttft-tokens",
        "48",
        "--runs",
        "1",
        "--threads",
        "2",
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON");
    for key in [
        "prefill_tps",
        "decode_tps",
        "ttft_ms",
        "peak_rss_mb",
        "decode_at_depth_tps",
    ] {
        let x = v[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing: {v}"));
        assert!(x > 0.0 && x.is_finite(), "{key} = {x}");
    }
    assert_eq!(v["threads"], 2);
    assert_eq!(v["ttft_prompt_tokens"], 48);
}
