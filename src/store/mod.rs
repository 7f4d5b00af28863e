//! Where images live: OCI image layouts ([`layout`]), docker-archive tarballs
//! ([`archive`]) and distribution registries ([`registry`]). Commands read and write
//! images through [`output`].

pub mod archive;
pub mod layout;
pub mod output;
pub mod registry;
