//! `project.toml`, the project descriptor `pack` reads: its include/exclude lists (gitignore
//! syntax) decide which files of the app go into the image. Both the 0.1 (`[build]`) and
//! the 0.2 (`[io.buildpacks]`) layouts are read.

use std::path::Path;

use serde::Deserialize;

use crate::layer::source::Rules;

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("cannot read `{}`: {source}", .path.display())]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("`{}` is not valid project.toml: {message}", .path.display())]
    Parse {
        path: std::path::PathBuf,
        message: String,
    },
}

#[derive(Debug, Default, Deserialize)]
struct Descriptor {
    #[serde(default)]
    build: Lists,
    #[serde(default)]
    io: Io,
}

#[derive(Debug, Default, Deserialize)]
struct Io {
    #[serde(default)]
    buildpacks: Lists,
}

#[derive(Debug, Default, Deserialize)]
struct Lists {
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
}

/// The app layer's rules for `app_dir`: the defaults plus `project.toml`'s lists.
pub fn app_rules(app_dir: &Path) -> Result<Rules, ProjectError> {
    let path = app_dir.join("project.toml");
    let mut rules = Rules {
        origin: path.clone(),
        ..Rules::default()
    };
    if !path.is_file() {
        return Ok(rules);
    }
    let text = std::fs::read_to_string(&path).map_err(|source| ProjectError::Read {
        path: path.clone(),
        source,
    })?;
    let descriptor: Descriptor = toml::from_str(&text).map_err(|e| ProjectError::Parse {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let mut lists = descriptor.io.buildpacks;
    lists.include.extend(descriptor.build.include);
    lists.exclude.extend(descriptor.build.exclude);
    if !lists.include.is_empty() && !lists.exclude.is_empty() {
        return Err(ProjectError::Parse {
            path,
            message: "give either `include` or `exclude`, not both (as pack requires)".to_owned(),
        });
    }
    rules.include = lists.include;
    rules.exclude = lists.exclude;
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_descriptor_versions_and_refuses_both_lists() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("project.toml"),
            "[_]\nschema-version = \"0.2\"\n[io.buildpacks]\nexclude = [\"*.log\"]\n",
        )
        .unwrap();
        assert_eq!(app_rules(dir.path()).unwrap().exclude, ["*.log"]);

        std::fs::write(
            dir.path().join("project.toml"),
            "[build]\ninclude = [\"src/\"]\n",
        )
        .unwrap();
        assert_eq!(app_rules(dir.path()).unwrap().include, ["src/"]);

        std::fs::write(
            dir.path().join("project.toml"),
            "[build]\ninclude = [\"a\"]\nexclude = [\"b\"]\n",
        )
        .unwrap();
        let err = app_rules(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("project.toml") && err.contains("not both"),
            "{err}"
        );
    }
}
