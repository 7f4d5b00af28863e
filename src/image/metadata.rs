//! The labels that make an image explain itself: the Cloud Native Buildpacks labels that
//! `pack` and `crane` read (`io.buildpacks.lifecycle.metadata`,
//! `io.buildpacks.build.metadata`) and repave's own base record, which holds what a rebase
//! needs without the old base at hand.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

pub const LABEL_LIFECYCLE: &str = "io.buildpacks.lifecycle.metadata";
pub const LABEL_BUILD: &str = "io.buildpacks.build.metadata";
pub const LABEL_BASE: &str = "io.repave.base";
pub const LABEL_BASE_NAME: &str = "io.repave.base.name";
pub const LABEL_DISTRO_NAME: &str = "io.buildpacks.base.distro.name";
pub const LABEL_DISTRO_VERSION: &str = "io.buildpacks.base.distro.version";

/// `io.buildpacks.lifecycle.metadata`, the subset lifecycle's rebaser reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LifecycleMetadata {
    pub app: Vec<LayerSha>,
    pub buildpacks: Vec<BuildpackLayers>,
    #[serde(rename = "runImage")]
    pub run_image: RunImage,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerSha {
    pub sha: Digest,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildpackLayers {
    pub key: String,
    pub version: String,
    pub layers: BTreeMap<String, LayerMetadata>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerMetadata {
    pub sha: Digest,
    pub launch: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunImage {
    #[serde(rename = "topLayer")]
    pub top_layer: Digest,
    pub reference: String,
}

/// `io.buildpacks.build.metadata`: which buildpacks ran and which processes exist.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildMetadata {
    pub buildpacks: Vec<BuildpackRef>,
    pub processes: Vec<ProcessMetadata>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildpackRef {
    pub id: String,
    pub version: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessMetadata {
    #[serde(rename = "type")]
    pub kind: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub direct: bool,
    #[serde(rename = "buildpackID")]
    pub buildpack_id: String,
    #[serde(default)]
    pub default: bool,
}

/// repave's record of the base an image was built on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BaseRecord {
    /// The base's name: its definition's name or its repository, never a file path.
    pub name: String,
    /// The base's manifest digest.
    pub digest: Digest,
    /// How many of the image's layers are the base's.
    pub layers: usize,
    /// diff_id of the base's top layer.
    #[serde(rename = "topLayer")]
    pub top_layer: Digest,
    /// How many history entries came from the base.
    pub history: usize,
    /// The base's environment, so a rebase can tell base-owned variables from the app's.
    pub env: Vec<String>,
    /// Keys of the labels that came from the base.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Packages of a package base, as `name=version`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
}
