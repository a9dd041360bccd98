//! Damaged, missing and foreign model files: each gives an error naming the file and the
//! problem, never a panic.

use std::io::Write;

use quire_runtime::{LoadOptions, Model, RuntimeError};
use quire_tests::{model_path, TempDir, SMOL};

fn load(path: &std::path::Path) -> RuntimeError {
    Model::load(path, &LoadOptions::default()).expect_err("must not load")
}

#[test]
fn missing_file() {
    let dir = TempDir::new("missing");
    let path = dir.path().join("nope.gguf");
    let err = load(&path);
    assert!(matches!(err, RuntimeError::ModelNotFound { .. }), "{err}");
    assert!(err.to_string().contains("nope.gguf"));
}

#[test]
fn truncated_file() {
    let dir = TempDir::new("trunc");
    let src = std::fs::read(model_path(SMOL)).expect("read");
    for cut in [src.len() - 1, src.len() / 2, 4096] {
        let path = dir.path().join(format!("cut-{cut}.gguf"));
        std::fs::write(&path, &src[..cut]).expect("write");
        let err = load(&path);
        assert!(
            matches!(
                err,
                RuntimeError::Truncated { .. } | RuntimeError::InvalidModel { .. }
            ),
            "{cut}: {err}"
        );
        assert!(err.to_string().contains(&format!("cut-{cut}.gguf")));
    }
    // Cut inside the tensor data: named as truncated, with both sizes.
    let path = dir.path().join("cut-data.gguf");
    std::fs::write(&path, &src[..src.len() - 1000]).expect("write");
    match load(&path) {
        RuntimeError::Truncated {
            expected, actual, ..
        } => {
            assert_eq!(
                (expected, actual),
                (src.len() as u64, src.len() as u64 - 1000)
            )
        }
        other => panic!("expected Truncated, got {other}"),
    }
}

#[test]
fn corrupt_files() {
    let dir = TempDir::new("corrupt");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("text", b"this is not a model at all".to_vec()),
        ("pdf", b"%PDF-1.7\n%garbage".to_vec()),
        ("bad-counts", {
            // GGUF v3 magic, then absurd tensor and metadata counts.
            let mut v = b"GGUF".to_vec();
            v.extend(3u32.to_le_bytes());
            v.extend(u64::MAX.to_le_bytes());
            v.extend(u64::MAX.to_le_bytes());
            v
        }),
        ("garbled-header", {
            let mut v = std::fs::read(model_path(SMOL)).expect("read")[..1 << 20].to_vec();
            for b in v[24..4096].iter_mut() {
                *b = b.wrapping_mul(31).wrapping_add(7);
            }
            v
        }),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(format!("{name}.gguf"));
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(&bytes))
            .expect("write");
        let err = load(&path);
        assert!(
            matches!(
                err,
                RuntimeError::InvalidModel { .. } | RuntimeError::Truncated { .. }
            ),
            "{name}: {err}"
        );
        assert!(
            err.to_string().contains(&format!("{name}.gguf")),
            "{name}: {err}"
        );
    }
}

#[test]
fn directory_instead_of_file() {
    let dir = TempDir::new("dir");
    let err = load(dir.path());
    assert!(matches!(err, RuntimeError::InvalidModel { .. }), "{err}");
}

#[test]
fn unsupported_architecture() {
    use candle_core::quantized::gguf_file::{self, Value};
    use candle_core::quantized::{GgmlDType, QTensor};
    use candle_core::{Device, Tensor};
    let dir = TempDir::new("arch");
    let path = dir.path().join("mamba.gguf");
    let t = QTensor::quantize(
        &Tensor::zeros((4, 32), candle_core::DType::F32, &Device::Cpu).expect("t"),
        GgmlDType::F32,
    )
    .expect("q");
    let arch = Value::String("mamba".into());
    let mut f = std::fs::File::create(&path).expect("create");
    gguf_file::write(
        &mut f,
        &[("general.architecture", &arch)],
        &[("x.weight", &t)],
    )
    .expect("write gguf");
    drop(f);
    match load(&path) {
        RuntimeError::UnsupportedArchitecture { architecture, .. } => {
            assert_eq!(architecture, "mamba")
        }
        other => panic!("expected UnsupportedArchitecture, got {other}"),
    }
}
