//! The one image reference parser, for the transport prefixes users know from skopeo:
//! `oci:DIR[:TAG|@DIGEST]`, `docker-archive:FILE[:NAME]` and
//! `docker://HOST/REPO[:TAG][@DIGEST]`.

use std::fmt;
use std::path::PathBuf;

use crate::digest::Digest;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    /// An OCI image layout directory, with a tag (`org.opencontainers.image.ref.name`) or
    /// a manifest digest.
    Oci {
        dir: PathBuf,
        tag: Option<String>,
        digest: Option<Digest>,
    },
    /// A tarball in the format `docker save` writes.
    DockerArchive { file: PathBuf, name: Option<String> },
    /// An image in an OCI distribution registry.
    Registry {
        host: String,
        repository: String,
        tag: Option<String>,
        digest: Option<Digest>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("`{0}` has no transport: write `oci:DIR[:TAG]`, `docker-archive:FILE` or `docker://HOST/REPO[:TAG]`")]
    NoTransport(String),
    #[error("`{0}` has an unknown transport: use `oci:`, `docker-archive:` or `docker://`")]
    UnknownTransport(String),
    #[error("`{reference}` is not a valid reference: {reason}")]
    Invalid { reference: String, reason: String },
}

impl Reference {
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        let invalid = |reason: &str| ReferenceError::Invalid {
            reference: input.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(rest) = input.strip_prefix("oci:") {
            let (rest, digest) = split_digest(rest).map_err(|e| invalid(&e))?;
            // As skopeo reads it: the directory ends at the first `:`.
            let (dir, tag) = match rest.split_once(':') {
                Some((_, tag)) if !is_tag(tag) => {
                    return Err(invalid(&format!(
                        "`{tag}` is not a valid tag: use letters, digits, `_`, `.` and `-`, at most 128, not starting with `.` or `-`"
                    )))
                }
                Some(_) if digest.is_some() => {
                    return Err(invalid("give a tag or a digest, not both"))
                }
                Some((dir, tag)) => (dir, Some(tag.to_owned())),
                None => (rest, None),
            };
            if dir.is_empty() {
                return Err(invalid("the directory is empty"));
            }
            Ok(Reference::Oci {
                dir: PathBuf::from(dir),
                tag,
                digest,
            })
        } else if let Some(rest) = input.strip_prefix("docker-archive:") {
            let (file, name) = match rest.split_once(':') {
                Some((file, name)) if !name.is_empty() => (file, Some(name.to_owned())),
                _ => (rest, None),
            };
            if file.is_empty() {
                return Err(invalid("the file name is empty"));
            }
            Ok(Reference::DockerArchive {
                file: PathBuf::from(file),
                name,
            })
        } else if let Some(rest) = input.strip_prefix("docker://") {
            let (rest, digest) = split_digest(rest).map_err(|e| invalid(&e))?;
            let (host, path) = rest
                .split_once('/')
                .ok_or_else(|| invalid("expected HOST/REPOSITORY"))?;
            let (repository, tag) = match path.rsplit_once(':') {
                Some((repo, tag)) if is_tag(tag) => (repo, Some(tag.to_owned())),
                _ => (path, None),
            };
            let repo_ok = !repository.is_empty()
                && repository.split('/').all(|part| {
                    !part.is_empty()
                        && part.bytes().all(|b| {
                            b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                        })
                });
            if host.is_empty() || !repo_ok {
                return Err(invalid(
                    "expected HOST/REPOSITORY with a lowercase repository name",
                ));
            }
            Ok(Reference::Registry {
                host: host.to_owned(),
                repository: repository.to_owned(),
                tag,
                digest,
            })
        } else if input.contains("://")
            || input.split_once(':').is_some_and(|(t, _)| !t.contains('/'))
        {
            Err(ReferenceError::UnknownTransport(input.to_owned()))
        } else {
            Err(ReferenceError::NoTransport(input.to_owned()))
        }
    }
}

fn split_digest(rest: &str) -> Result<(&str, Option<Digest>), String> {
    match rest.rsplit_once('@') {
        Some((head, digest)) if digest.starts_with("sha256:") || digest.contains(':') => {
            let digest = digest.parse::<Digest>().map_err(|e| e.to_string())?;
            Ok((head, Some(digest)))
        }
        _ => Ok((rest, None)),
    }
}

/// A tag as the distribution spec allows: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
fn is_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(b))
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Oci { dir, tag, digest } => {
                write!(f, "oci:{}", dir.display())?;
                if let Some(tag) = tag {
                    write!(f, ":{tag}")?;
                }
                if let Some(digest) = digest {
                    write!(f, "@{digest}")?;
                }
                Ok(())
            }
            Reference::DockerArchive { file, name } => {
                write!(f, "docker-archive:{}", file.display())?;
                match name {
                    Some(name) => write!(f, ":{name}"),
                    None => Ok(()),
                }
            }
            Reference::Registry {
                host,
                repository,
                tag,
                digest,
            } => {
                write!(f, "docker://{host}/{repository}")?;
                if let Some(tag) = tag {
                    write!(f, ":{tag}")?;
                }
                if let Some(digest) = digest {
                    write!(f, "@{digest}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_with_tag_and_digest() {
        let r = Reference::parse("oci:./out:v1").unwrap();
        assert_eq!(
            r,
            Reference::Oci {
                dir: "./out".into(),
                tag: Some("v1".into()),
                digest: None
            }
        );
        let d = Digest::of(b"m");
        let r = Reference::parse(&format!("oci:/tmp/x@{d}")).unwrap();
        assert_eq!(
            r,
            Reference::Oci {
                dir: "/tmp/x".into(),
                tag: None,
                digest: Some(d)
            }
        );
        assert_eq!(
            Reference::parse("oci:dir").unwrap(),
            Reference::Oci {
                dir: "dir".into(),
                tag: None,
                digest: None
            }
        );
    }

    #[test]
    fn registry_with_port_and_tag() {
        let r = Reference::parse("docker://127.0.0.1:5000/team/app:1.2").unwrap();
        assert_eq!(
            r,
            Reference::Registry {
                host: "127.0.0.1:5000".into(),
                repository: "team/app".into(),
                tag: Some("1.2".into()),
                digest: None
            }
        );
        assert_eq!(r.to_string(), "docker://127.0.0.1:5000/team/app:1.2");
    }

    #[test]
    fn bad_references_say_what_to_write() {
        let err = Reference::parse("./dir").unwrap_err().to_string();
        assert!(err.contains("oci:DIR"), "{err}");
        assert!(Reference::parse("ftp://x/y").is_err());
        assert!(Reference::parse("docker://host/UPPER").is_err());
        assert!(Reference::parse("oci:x@sha256:zz").is_err());
        assert!(Reference::parse("oci:bt:Bad Tag!").is_err());
        assert!(Reference::parse("oci:bt:").is_err());
    }
}
