//! Environment files of buildpack layers (`env/`, `env.launch/`, `env.build/`) as the
//! Buildpack API defines them: the file name is the variable, its suffix the action
//! (`.override`, `.default`, `.prepend`, `.append`, none = override), `.delim` the separator.
//! [`apply_env`] turns the operations and a base environment into the final variables.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::BuildpackError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvAction {
    Override,
    Default,
    Prepend,
    Append,
}

/// One change to one variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvOp {
    pub name: String,
    pub action: EnvAction,
    pub value: String,
    /// Put between the value and what is already there for prepend and append; without one
    /// the two are joined directly.
    pub delim: Option<String>,
}

impl EnvOp {
    /// Prepends `dir` to a `:`-separated path variable.
    pub fn prepend_path(name: &str, dir: String) -> EnvOp {
        EnvOp {
            name: name.to_owned(),
            action: EnvAction::Prepend,
            value: dir,
            delim: Some(":".to_owned()),
        }
    }
}

/// Reads the env files of `dir` (sorted by file name); a missing directory has none.
/// Subdirectories (process-specific env) are skipped.
// Limitation: process-specific `env.launch/<process>/` files are ignored: the image has
// one environment for all its processes.
pub fn read_env_dir(dir: &Path) -> Result<Vec<EnvOp>, BuildpackError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files: Vec<(String, std::path::PathBuf)> = Vec::new();
    for entry in fs_err::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let name = String::from_utf8_lossy(entry.file_name().as_bytes()).into_owned();
        files.push((name, entry.path()));
    }
    files.sort();

    let mut delims: BTreeMap<String, String> = BTreeMap::new();
    let mut ops = Vec::new();
    for (file, path) in &files {
        let value = fs_err::read_to_string(path)?;
        let (name, action) = match file.rsplit_once('.') {
            Some((name, "delim")) => {
                delims.insert(name.to_owned(), value);
                continue;
            }
            Some((name, "override")) => (name, EnvAction::Override),
            Some((name, "default")) => (name, EnvAction::Default),
            Some((name, "prepend")) => (name, EnvAction::Prepend),
            Some((name, "append")) => (name, EnvAction::Append),
            _ => (file.as_str(), EnvAction::Override),
        };
        if name.is_empty() || name.contains('=') {
            return Err(BuildpackError::Toml {
                path: path.clone(),
                message: "not an environment variable name".to_owned(),
            });
        }
        ops.push(EnvOp {
            name: name.to_owned(),
            action,
            value,
            delim: None,
        });
    }
    for op in &mut ops {
        op.delim = delims.get(&op.name).cloned();
    }
    Ok(ops)
}

/// Applies `ops` in order to `base` and returns the variables sorted by name.
pub fn apply_env(base: &[(String, String)], ops: &[EnvOp]) -> Vec<(String, String)> {
    let mut vars: BTreeMap<String, String> = base.iter().cloned().collect();
    for op in ops {
        let delim = op.delim.as_deref().unwrap_or("");
        let current = vars.get(&op.name).filter(|v| !v.is_empty());
        let value = match (op.action, current) {
            (EnvAction::Override, _) | (_, None) => op.value.clone(),
            (EnvAction::Default, Some(current)) => current.clone(),
            (EnvAction::Prepend, Some(current)) => format!("{}{delim}{current}", op.value),
            (EnvAction::Append, Some(current)) => format!("{current}{delim}{}", op.value),
        };
        vars.insert(op.name.clone(), value);
    }
    vars.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, value: &str) {
        fs_err::write(dir.join(name), value).unwrap();
    }

    #[test]
    fn reads_suffixes_and_delims() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "PYTHONPATH.prepend", "/layers/p");
        write(dir.path(), "PYTHONPATH.delim", ":");
        write(dir.path(), "NODE_ENV.default", "production");
        write(dir.path(), "PLAIN", "x");
        write(dir.path(), "FLAGS.append", "-v");
        fs_err::create_dir(dir.path().join("web")).unwrap();

        let ops = read_env_dir(dir.path()).unwrap();
        let by_name = |n: &str| ops.iter().find(|o| o.name == n).unwrap().clone();
        assert_eq!(
            ops.len(),
            4,
            "the delim file and the process dir are no operations"
        );
        assert_eq!(by_name("PYTHONPATH").action, EnvAction::Prepend);
        assert_eq!(by_name("PYTHONPATH").delim.as_deref(), Some(":"));
        assert_eq!(by_name("NODE_ENV").action, EnvAction::Default);
        assert_eq!(by_name("PLAIN").action, EnvAction::Override);
        assert_eq!(by_name("FLAGS").delim, None);
    }

    #[test]
    fn applies_actions_to_a_base_environment() {
        let base = vec![
            ("PATH".to_owned(), "/usr/bin:/bin".to_owned()),
            ("NODE_ENV".to_owned(), "development".to_owned()),
            ("FLAGS".to_owned(), "-a".to_owned()),
        ];
        let op = |name: &str, action, value: &str, delim: Option<&str>| EnvOp {
            name: name.to_owned(),
            action,
            value: value.to_owned(),
            delim: delim.map(str::to_owned),
        };
        let ops = vec![
            EnvOp::prepend_path("PATH", "/layers/a/bin".to_owned()),
            op("NODE_ENV", EnvAction::Default, "production", None),
            op("PORT", EnvAction::Default, "8080", None),
            op("FLAGS", EnvAction::Append, "-b", None),
            op("PYTHONPATH", EnvAction::Prepend, "/layers/p", Some(":")),
            op("MODE", EnvAction::Override, "one", None),
            op("MODE", EnvAction::Override, "two", None),
        ];
        let env = apply_env(&base, &ops);
        let get = |n: &str| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("PATH"), Some("/layers/a/bin:/usr/bin:/bin"));
        assert_eq!(
            get("NODE_ENV"),
            Some("development"),
            "default keeps a set value"
        );
        assert_eq!(get("PORT"), Some("8080"));
        assert_eq!(get("FLAGS"), Some("-a-b"), "no delim joins directly");
        assert_eq!(
            get("PYTHONPATH"),
            Some("/layers/p"),
            "prepend to nothing is the value"
        );
        assert_eq!(get("MODE"), Some("two"), "later operations win");
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }
}
