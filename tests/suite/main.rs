//! Quire's integration suite: one binary, one module per area.

mod cli;
mod generation;
mod library;
mod model_files;
mod models;
mod reference;
mod retrieval;
