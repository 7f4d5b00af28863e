//! Base definitions: the TOML file naming a Debian suite, components, architecture, the
//! packages a base needs and those its closure may drop.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::DebianError;

/// A package base definition, e.g. `buildpacks/bases/python.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// The base's name; defaults to the file stem.
    #[serde(default)]
    pub name: String,
    /// The main suite (e.g. `bookworm`); its `-updates` and `-security` suites are read too.
    pub suite: String,
    #[serde(default = "default_components")]
    pub components: Vec<String>,
    pub architecture: String,
    pub packages: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
}

fn default_components() -> Vec<String> {
    vec!["main".to_owned()]
}

impl Definition {
    /// Reads and checks a definition; errors name the file.
    pub fn load(path: &Path) -> Result<Definition, DebianError> {
        let text = fs_err::read_to_string(path)?;
        Definition::parse(&text, path)
    }

    fn parse(text: &str, path: &Path) -> Result<Definition, DebianError> {
        let def_err = |message: String| DebianError::Definition {
            path: PathBuf::from(path),
            message,
        };
        let mut def: Definition = toml::from_str(text).map_err(|e| def_err(e.to_string()))?;
        if def.name.is_empty() {
            def.name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_owned();
        }
        let plain = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-' | '_'))
        };
        if !plain(&def.name) {
            return Err(def_err(format!(
                "name `{}` must be letters, digits, `.`, `+`, `-` or `_`: set `name`",
                def.name
            )));
        }
        if !plain(&def.suite) || def.suite.ends_with("-security") || def.suite.ends_with("-updates")
        {
            return Err(def_err(format!(
                "suite `{}` must be a main suite such as `bookworm` (its -updates and \
                 -security suites are read too)",
                def.suite
            )));
        }
        if def.packages.is_empty() {
            return Err(def_err(
                "`packages` is empty: list at least one package".to_owned(),
            ));
        }
        if def.components.is_empty() || !def.components.iter().all(|c| plain(c)) {
            return Err(def_err(
                "`components` must list components such as `main`".to_owned(),
            ));
        }
        if let Some(both) = def.packages.iter().find(|p| def.exclude.contains(p)) {
            return Err(def_err(format!(
                "`{both}` is both in `packages` and in `exclude`: remove it from one"
            )));
        }
        Ok(def)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_defaults_to_file_stem_and_components_to_main() {
        let def = Definition::parse(
            "suite = \"bookworm\"\narchitecture = \"amd64\"\npackages = [\"python3\"]\n\
             exclude = [\"perl\"]\n",
            Path::new("/x/bases/python.toml"),
        )
        .unwrap();
        assert_eq!(def.name, "python");
        assert_eq!(def.components, ["main"]);
        assert_eq!(def.exclude, ["perl"]);
    }

    #[test]
    fn errors_name_the_file() {
        let path = Path::new("/x/bases/bad.toml");
        for text in [
            "suite = \"bookworm\"\narchitecture = \"amd64\"\npackages = []\n",
            "suite = \"bookworm-security\"\narchitecture = \"amd64\"\npackages = [\"a\"]\n",
            "suite = \"bookworm\"\narchitecture = \"amd64\"\npackages = [\"a\"]\nexclude = [\"a\"]\n",
            "suite = \"bookworm\"\npackages = [\"a\"]\n",
            "suite = \"bookworm\"\narchitecture = \"amd64\"\npackages = [\"a\"]\nextra = 1\n",
        ] {
            let err = Definition::parse(text, path).unwrap_err().to_string();
            assert!(err.contains("/x/bases/bad.toml"), "{err}");
        }
    }
}
