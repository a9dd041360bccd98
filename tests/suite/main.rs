//! Quire's integration suite: one binary, one module per area.

mod models;
mod reference;
