//! The deterministic layer pipeline: entries ([`entry`]), how a directory becomes entries
//! ([`source`]), and how entries become a compressed, hashed tar blob ([`writer`]).

pub mod batch;
pub mod entry;
pub mod gzip;
pub mod source;
pub mod writer;

pub use entry::{Content, Entry, EntryKind};
pub use writer::{write_layer, LayerBlob, LayerError, MEDIA_TYPE_LAYER_GZIP};
