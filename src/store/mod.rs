//! Where images live: OCI image layouts ([`layout`]) and docker-archive tarballs
//! ([`archive`]). Commands read and write images through [`output`].

pub mod archive;
pub mod layout;
pub mod output;
