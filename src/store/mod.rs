//! Where images live. For now OCI image layouts ([`layout`]); every command that reads or
//! writes an image goes through [`Target`]-style helpers here.

pub mod layout;
pub mod output;
