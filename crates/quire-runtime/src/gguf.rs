//! Opening a GGUF file safely: header, metadata and tensor extents are checked up front,
//! so a corrupt or truncated download becomes a clear error rather than a panic mid-load.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Device;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Result, RuntimeError};

/// A validated GGUF file: its metadata and tensor directory, with tensor data left on disk.
pub struct GgufFile {
    path: PathBuf,
    content: Content,
    file_len: u64,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .finish()
    }
}

impl GgufFile {
    /// Reads and checks the header, metadata and tensor directory of `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => RuntimeError::ModelNotFound {
                path: path.to_path_buf(),
            },
            _ => RuntimeError::Io {
                path: path.to_path_buf(),
                source: e,
            },
        })?;
        if meta.is_dir() {
            return Err(RuntimeError::InvalidModel {
                path: path.to_path_buf(),
                reason: "it is a directory, not a .gguf file".into(),
            });
        }
        let file_len = meta.len();
        let file = File::open(path).map_err(|source| RuntimeError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut reader = BufReader::new(file);
        let mut magic = [0u8; 4];
        if reader.read_exact(&mut magic).is_err() || &magic != b"GGUF" {
            return Err(RuntimeError::InvalidModel {
                path: path.to_path_buf(),
                reason: "the file does not start with the GGUF magic bytes".into(),
            });
        }
        let mut reader = BufReader::new(reader.into_inner());
        reader
            .seek(SeekFrom::Start(0))
            .map_err(|source| RuntimeError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        let content = Content::read(&mut reader).map_err(|e| RuntimeError::InvalidModel {
            path: path.to_path_buf(),
            reason: describe_header_error(&e),
        })?;
        let file = Self {
            path: path.to_path_buf(),
            content,
            file_len,
        };
        file.check_tensor_extents()?;
        Ok(file)
    }

    fn check_tensor_extents(&self) -> Result<()> {
        let mut needed = self.content.tensor_data_offset;
        for (name, info) in &self.content.tensor_infos {
            let elems = info.shape.elem_count();
            let block = info.ggml_dtype.block_size();
            if elems % block != 0 {
                return Err(self.invalid(format!(
                    "tensor '{name}' has {elems} elements, not a multiple of its block size {block}"
                )));
            }
            let size = (elems / block) as u64 * info.ggml_dtype.type_size() as u64;
            let end = self
                .content
                .tensor_data_offset
                .checked_add(info.offset)
                .and_then(|v| v.checked_add(size))
                .ok_or_else(|| self.invalid(format!("tensor '{name}' has an impossible offset")))?;
            needed = needed.max(end);
        }
        if needed > self.file_len {
            return Err(RuntimeError::Truncated {
                path: self.path.clone(),
                expected: needed,
                actual: self.file_len,
            });
        }
        Ok(())
    }

    pub(crate) fn invalid(&self, reason: impl Into<String>) -> RuntimeError {
        RuntimeError::InvalidModel {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The value of `general.architecture`.
    pub fn architecture(&self) -> Result<&str> {
        self.str("general.architecture")
            .ok_or_else(|| self.invalid("metadata has no general.architecture"))
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(key)
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(Value::String(s)) => Some(s.as_str()),
            _ => None,
        }
    }

    /// An integer metadata value of any width and signedness.
    pub fn uint(&self, key: &str) -> Option<u64> {
        match self.get(key)? {
            Value::U8(v) => Some(*v as u64),
            Value::U16(v) => Some(*v as u64),
            Value::U32(v) => Some(*v as u64),
            Value::U64(v) => Some(*v),
            Value::I8(v) => u64::try_from(*v).ok(),
            Value::I16(v) => u64::try_from(*v).ok(),
            Value::I32(v) => u64::try_from(*v).ok(),
            Value::I64(v) => u64::try_from(*v).ok(),
            _ => None,
        }
    }

    pub fn float(&self, key: &str) -> Option<f64> {
        match self.get(key)? {
            Value::F32(v) => Some(*v as f64),
            Value::F64(v) => Some(*v),
            _ => self.uint(key).map(|v| v as f64),
        }
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// A required integer from the architecture's namespace, e.g. `llama.block_count`.
    pub fn arch_uint(&self, suffix: &str) -> Result<u64> {
        let arch = self.architecture()?;
        let key = format!("{arch}.{suffix}");
        self.uint(&key)
            .ok_or_else(|| self.invalid(format!("metadata has no {key}")))
    }

    pub fn arch_float(&self, suffix: &str) -> Option<f64> {
        let arch = self.architecture().ok()?;
        self.float(&format!("{arch}.{suffix}"))
    }

    pub fn string_array(&self, key: &str) -> Result<Vec<String>> {
        match self.get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(self.invalid(format!("{key} holds a non-string value"))),
                })
                .collect(),
            _ => Err(self.invalid(format!("metadata has no {key} array"))),
        }
    }

    pub fn int_array(&self, key: &str) -> Option<Vec<i64>> {
        match self.get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::I32(x) => Some(*x as i64),
                    Value::U32(x) => Some(*x as i64),
                    Value::I8(x) => Some(*x as i64),
                    Value::U8(x) => Some(*x as i64),
                    Value::I64(x) => Some(*x),
                    Value::U64(x) => i64::try_from(*x).ok(),
                    _ => None,
                })
                .collect(),
            _ => None,
        }
    }

    pub fn has_tensor(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    /// Reads one tensor's data from disk.
    pub fn tensor(&self, name: &str, device: &Device) -> Result<QTensor> {
        let file = File::open(&self.path).map_err(|source| RuntimeError::Io {
            path: self.path.clone(),
            source,
        })?;
        let mut reader = BufReader::new(file);
        self.content
            .tensor(&mut reader, name, device)
            .map_err(|e| self.invalid(format!("tensor '{name}': {}", error_text(&e))))
    }

    /// Facts about the model a person would want before choosing it.
    pub fn info(&self) -> Result<ModelInfo> {
        let architecture = self.architecture()?.to_string();
        let mut tensor_types: BTreeMap<String, usize> = BTreeMap::new();
        let mut parameters = 0u64;
        for info in self.content.tensor_infos.values() {
            parameters += info.shape.elem_count() as u64;
            *tensor_types.entry(dtype_name(info.ggml_dtype)).or_default() += 1;
        }
        let quantization = self
            .uint("general.file_type")
            .and_then(file_type_name)
            .map(str::to_string)
            .or_else(|| {
                // No declared file type: name it after the most common tensor type.
                tensor_types
                    .iter()
                    .max_by_key(|(_, n)| **n)
                    .map(|(t, _)| t.clone())
            })
            .unwrap_or_else(|| "unknown".into());
        let vocab_size = match self.get("tokenizer.ggml.tokens") {
            Some(Value::Array(v)) => Some(v.len()),
            _ => None,
        };
        Ok(ModelInfo {
            path: self.path.clone(),
            name: self.str("general.name").map(str::to_string),
            architecture,
            parameters,
            quantization,
            tensor_types,
            context_length: self.arch_uint("context_length").ok(),
            embedding_length: self.arch_uint("embedding_length").ok(),
            block_count: self.arch_uint("block_count").ok(),
            vocab_size,
            chat_template: self.str("tokenizer.chat_template").is_some(),
            size_bytes: self.file_len,
            sha256: None,
        })
    }
}

/// What `quire model info` reports.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    pub path: PathBuf,
    pub name: Option<String>,
    pub architecture: String,
    pub parameters: u64,
    pub quantization: String,
    pub tensor_types: BTreeMap<String, usize>,
    pub context_length: Option<u64>,
    pub embedding_length: Option<u64>,
    pub block_count: Option<u64>,
    pub vocab_size: Option<usize>,
    pub chat_template: bool,
    pub size_bytes: u64,
    pub sha256: Option<String>,
}

/// The sha256 of a file, streamed so large models do not need memory.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|source| RuntimeError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|source| RuntimeError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// A candle error's message without the backtrace candle may append to it.
pub(crate) fn error_text(e: &candle_core::Error) -> String {
    e.to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn describe_header_error(e: &candle_core::Error) -> String {
    let text = error_text(e);
    if text.contains("failed to fill whole buffer") || text.contains("remaining") {
        format!("the header ends early; the file is truncated or damaged ({text})")
    } else {
        format!("damaged header or metadata ({text})")
    }
}

pub(crate) fn dtype_name(t: GgmlDType) -> String {
    format!("{t:?}").to_uppercase()
}

/// llama.cpp's `general.file_type` codes (enum llama_ftype).
fn file_type_name(code: u64) -> Option<&'static str> {
    Some(match code {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        25 => "IQ4_NL",
        30 => "IQ4_XS",
        32 => "BF16",
        _ => return None,
    })
}
