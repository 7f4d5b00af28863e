//! Image assembly: OCI types ([`spec`]), stacking new layers on a base into a canonical
//! config and manifest ([`assemble`]), and the metadata labels that record the base and
//! the buildpacks ([`metadata`]).

pub mod assemble;
pub mod metadata;
pub mod spec;
