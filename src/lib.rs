//! repave builds minimal, reproducible OCI images from application source and repaves
//! them onto patched bases. The library holds the pipeline; `main.rs` is a thin CLI.

pub mod buildpack;
pub mod digest;
pub mod epoch;
pub mod json;
pub mod layer;
