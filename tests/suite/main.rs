//! Quire's integration suite: one binary, one module per area.

mod answer;
mod cli;
mod embedding;
mod generation;
mod library;
mod model_files;
mod models;
mod pdf;
mod reference;
mod retrieval;
mod session;
mod store;
