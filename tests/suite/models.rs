//! Loaded reference models, shared across tests (loading costs more than most tests).

use std::sync::{Mutex, MutexGuard, OnceLock};

use quire_runtime::{LoadOptions, Model};
use quire_tests::{model_path, QWEN, SMOL};

fn slot(name: &str) -> &'static Mutex<Model> {
    static SMOL_MODEL: OnceLock<Mutex<Model>> = OnceLock::new();
    static QWEN_MODEL: OnceLock<Mutex<Model>> = OnceLock::new();
    let cell = match name {
        SMOL => &SMOL_MODEL,
        QWEN => &QWEN_MODEL,
        other => panic!("unknown model {other}"),
    };
    cell.get_or_init(|| {
        let opts = LoadOptions {
            context_size: Some(2048),
        };
        Mutex::new(Model::load(&model_path(name), &opts).expect("reference model loads"))
    })
}

/// Exclusive use of a loaded reference model.
pub fn model(name: &str) -> MutexGuard<'static, Model> {
    slot(name).lock().unwrap_or_else(|p| p.into_inner())
}
