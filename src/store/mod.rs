//! Where images live: OCI image layouts ([`layout`]) and docker-archive tarballs
//! ([`archive`], output only so far). Commands read and write images through [`output`].

pub mod archive;
pub mod layout;
pub mod output;
