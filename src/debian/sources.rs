//! Which mirror serves which archive: read from the machine's apt sources (deb822
//! `*.sources` and one-line `sources.list` / `*.list`), with `ARCHIVE=URL` overrides from
//! the caller winning. Locks name archives (`main`, `security`), never hosts.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tracing::debug;

use super::{control, DebianError};

/// The two Debian archives a base draws from: `main` serves the suite and its `-updates`,
/// `security` serves `<suite>-security`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Archive {
    Main,
    Security,
}

impl fmt::Display for Archive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Archive::Main => "main",
            Archive::Security => "security",
        })
    }
}

impl FromStr for Archive {
    type Err = DebianError;

    fn from_str(s: &str) -> Result<Archive, DebianError> {
        match s {
            "main" => Ok(Archive::Main),
            "security" => Ok(Archive::Security),
            other => Err(DebianError::Mirror(format!(
                "unknown archive `{other}`: use `main=URL` or `security=URL`"
            ))),
        }
    }
}

/// One `deb` source: a URI and the suites it serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub uri: String,
    pub suites: Vec<String>,
}

/// Parsed apt sources plus the caller's overrides.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourcesConfig {
    pub sources: Vec<Source>,
    pub overrides: BTreeMap<Archive, String>,
}

impl SourcesConfig {
    /// Reads `<apt_dir>/sources.list` and `<apt_dir>/sources.list.d/*.{list,sources}`
    /// (`apt_dir` is `/etc/apt` on a real machine). Missing files are fine.
    pub fn from_apt_dir(apt_dir: &Path) -> Result<SourcesConfig, DebianError> {
        let mut files = vec![apt_dir.join("sources.list")];
        let dir = apt_dir.join("sources.list.d");
        if dir.is_dir() {
            let mut listed: Vec<PathBuf> = fs_err::read_dir(&dir)?
                .map(|entry| entry.map(|e| e.path()))
                .collect::<Result<_, _>>()?;
            listed.sort();
            files.extend(listed);
        }

        let mut config = SourcesConfig::default();
        for file in files {
            let parse: fn(&str) -> Result<Vec<Source>, String> =
                match file.extension().and_then(|e| e.to_str()) {
                    Some("list") => parse_one_line,
                    Some("sources") => parse_deb822,
                    _ => continue,
                };
            if !file.is_file() {
                continue;
            }
            let text = fs_err::read_to_string(&file)?;
            let sources = parse(&text).map_err(|message| DebianError::Sources {
                path: file.clone(),
                message,
            })?;
            debug!(path = %file.display(), count = sources.len(), "read apt sources");
            config.sources.extend(sources);
        }
        Ok(config)
    }

    /// Adds an override given as `ARCHIVE=URL` (e.g. `security=http://host/debian-security`).
    pub fn add_override(&mut self, spec: &str) -> Result<(), DebianError> {
        let (archive, url) = spec.split_once('=').ok_or_else(|| {
            DebianError::Mirror(format!(
                "mirror `{spec}` is not of the form ARCHIVE=URL: use e.g. `main=URL`"
            ))
        })?;
        self.overrides
            .insert(archive.parse()?, url.trim_end_matches('/').to_owned());
        Ok(())
    }

    /// The base URL serving `archive` for `suite` (the main suite's name, e.g. `bookworm`).
    pub fn mirror(&self, archive: Archive, suite: &str) -> Result<String, DebianError> {
        if let Some(url) = self.overrides.get(&archive) {
            return Ok(url.clone());
        }
        let serves = |wanted: &dyn Fn(&str) -> bool| {
            self.sources
                .iter()
                .find(|source| source.suites.iter().any(|s| wanted(s)))
                .map(|source| source.uri.trim_end_matches('/').to_owned())
        };
        let found = match archive {
            Archive::Main => serves(&|s| s == suite).or_else(|| {
                let updates = format!("{suite}-updates");
                serves(&|s| s == updates)
            }),
            Archive::Security => {
                let security = format!("{suite}-security");
                serves(&|s| s == security).or_else(|| serves(&|s| s.ends_with("-security")))
            }
        };
        found.ok_or_else(|| {
            DebianError::Mirror(format!(
                "no apt source serves the `{archive}` archive for `{suite}`: add one to the \
                 apt sources or pass `--mirror {archive}=URL`"
            ))
        })
    }
}

/// Parses deb822 `.sources` text: `Types`, `URIs`, `Suites`; `Enabled: no` is skipped.
fn parse_deb822(text: &str) -> Result<Vec<Source>, String> {
    let paragraphs =
        control::parse(text).map_err(|(line, text)| format!("line {line}: `{text}`"))?;
    let mut sources = Vec::new();
    for paragraph in paragraphs {
        let words = |name: &str| -> Vec<String> {
            paragraph
                .get(name)
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        };
        if !words("Types").iter().any(|t| t == "deb") {
            continue;
        }
        if paragraph
            .get("Enabled")
            .is_some_and(|v| v.eq_ignore_ascii_case("no"))
        {
            continue;
        }
        let suites = words("Suites");
        let uris = words("URIs");
        if uris.is_empty() || suites.is_empty() {
            return Err("a `deb` paragraph lacks `URIs` or `Suites`".to_owned());
        }
        for uri in uris {
            sources.push(Source {
                uri,
                suites: suites.clone(),
            });
        }
    }
    Ok(sources)
}

/// Parses one-line `sources.list` text: `deb [options] URI SUITE [COMPONENT...]`.
fn parse_one_line(text: &str) -> Result<Vec<Source>, String> {
    let mut sources = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut words = line.split_whitespace();
        if words.next() != Some("deb") {
            continue;
        }
        let mut rest: Vec<&str> = words.collect();
        if rest.first().is_some_and(|w| w.starts_with('[')) {
            let close = rest
                .iter()
                .position(|w| w.ends_with(']'))
                .ok_or_else(|| format!("line {}: unclosed `[` options", number + 1))?;
            rest.drain(..=close);
        }
        match rest.as_slice() {
            [uri, suite, ..] => sources.push(Source {
                uri: (*uri).to_owned(),
                suites: vec![(*suite).to_owned()],
            }),
            _ => return Err(format!("line {}: expected `deb URI SUITE`", number + 1)),
        }
    }
    Ok(sources)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEB822: &str = "Types: deb\nURIs: http://mirror.test/debian\n\
        Suites: bookworm bookworm-updates\nComponents: main\n\n\
        Types: deb-src\nURIs: http://src.test/debian\nSuites: bookworm\n\n\
        Types: deb\nURIs: http://off.test/debian\nSuites: bookworm\nEnabled: no\n\n\
        Types: deb\nURIs: http://sec.test/debian-security/\nSuites: bookworm-security\n";

    #[test]
    fn deb822_maps_archives() {
        let config = SourcesConfig {
            sources: parse_deb822(DEB822).unwrap(),
            ..Default::default()
        };
        assert_eq!(config.sources.len(), 2);
        assert_eq!(
            config.mirror(Archive::Main, "bookworm").unwrap(),
            "http://mirror.test/debian"
        );
        assert_eq!(
            config.mirror(Archive::Security, "bookworm").unwrap(),
            "http://sec.test/debian-security"
        );
    }

    #[test]
    fn one_line_with_options_and_fallbacks() {
        let text =
            "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://m.test/debian trixie main\n\
                    deb-src http://m.test/debian trixie main\n\
                    deb http://s.test/debian-security bullseye-security main\n";
        let config = SourcesConfig {
            sources: parse_one_line(text).unwrap(),
            ..Default::default()
        };
        assert_eq!(config.sources.len(), 2);
        assert_eq!(
            config.mirror(Archive::Main, "trixie").unwrap(),
            "http://m.test/debian"
        );
        // No trixie-security listed: any -security source serves.
        assert_eq!(
            config.mirror(Archive::Security, "trixie").unwrap(),
            "http://s.test/debian-security"
        );
        assert!(config.mirror(Archive::Main, "bookworm").is_err());
    }

    #[test]
    fn missing_security_says_what_to_pass_and_overrides_win() {
        let mut config = SourcesConfig {
            sources: parse_one_line("deb http://m.test/debian bookworm main\n").unwrap(),
            ..Default::default()
        };
        let err = config
            .mirror(Archive::Security, "bookworm")
            .unwrap_err()
            .to_string();
        assert!(err.contains("--mirror security=URL"), "{err}");
        config.add_override("security=http://o.test/sec/").unwrap();
        config.add_override("main=http://o.test/main").unwrap();
        assert_eq!(
            config.mirror(Archive::Security, "bookworm").unwrap(),
            "http://o.test/sec"
        );
        assert_eq!(
            config.mirror(Archive::Main, "bookworm").unwrap(),
            "http://o.test/main"
        );
        assert!(config.add_override("nope").is_err());
        assert!(config.add_override("ports=http://x").is_err());
    }

    #[test]
    fn reads_an_apt_dir() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::create_dir(dir.path().join("sources.list.d")).unwrap();
        fs_err::write(dir.path().join("sources.list.d/a.sources"), DEB822).unwrap();
        fs_err::write(
            dir.path().join("sources.list.d/b.list.disabled"),
            "deb http://x.test/debian bookworm main\n",
        )
        .unwrap();
        let config = SourcesConfig::from_apt_dir(dir.path()).unwrap();
        assert_eq!(config.sources.len(), 2);
        fs_err::write(dir.path().join("sources.list"), "deb\n").unwrap();
        let err = SourcesConfig::from_apt_dir(dir.path()).unwrap_err();
        assert!(err.to_string().contains("sources.list"), "{err}");
    }
}
