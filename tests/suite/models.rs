//! Loaded reference models, shared across tests (loading costs more than most tests).

use std::sync::{Mutex, MutexGuard, OnceLock};

use quire_runtime::{Attention, LoadOptions, Model};
use quire_tests::{model_path, QWEN, SMOL};

fn slot(name: &str, attention: Attention) -> &'static Mutex<Model> {
    type Slot = OnceLock<Mutex<Model>>;
    static SMOL_MODEL: Slot = OnceLock::new();
    static QWEN_MODEL: Slot = OnceLock::new();
    static SMOL_LLAMA_CPP: Slot = OnceLock::new();
    static QWEN_LLAMA_CPP: Slot = OnceLock::new();
    let cell = match (name, attention) {
        (SMOL, Attention::Fast) => &SMOL_MODEL,
        (QWEN, Attention::Fast) => &QWEN_MODEL,
        (SMOL, Attention::LlamaCpp) => &SMOL_LLAMA_CPP,
        (QWEN, Attention::LlamaCpp) => &QWEN_LLAMA_CPP,
        (other, _) => panic!("unknown model {other}"),
    };
    cell.get_or_init(|| {
        let opts = LoadOptions {
            context_size: Some(2048),
            attention,
        };
        Mutex::new(Model::load(&model_path(name), &opts).expect("reference model loads"))
    })
}

/// Exclusive use of a loaded reference model, as Quire runs it.
pub fn model(name: &str) -> MutexGuard<'static, Model> {
    model_with(name, Attention::Fast)
}

/// Exclusive use of a loaded reference model with the given attention arithmetic.
pub fn model_with(name: &str, attention: Attention) -> MutexGuard<'static, Model> {
    slot(name, attention)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}
