//! repave builds minimal, reproducible OCI images from application source and repaves
//! them onto patched bases. The library holds the pipeline; `main.rs` is a thin CLI.

pub mod bases;
pub mod buildpack;
pub mod commands;
pub mod debian;
pub mod digest;
pub mod epoch;
pub mod export;
pub mod image;
pub mod json;
pub mod layer;
pub mod project;
pub mod rebase;
pub mod reference;
pub mod store;
