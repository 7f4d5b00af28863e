//! Registry credentials and auth challenges: user and password from the docker and podman
//! auth files, `WWW-Authenticate` parsing, and the bearer-token fetch. Secrets stay in
//! [`Credentials`], whose `Debug` hides them, and are never logged.

use std::fmt;
use std::path::PathBuf;

use base64::Engine as _;
use serde::Deserialize;
use tracing::debug;

use super::RegistryError;

/// A user name and password for one registry.
#[derive(Clone)]
pub struct Credentials {
    user: String,
    password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}, <hidden>)", self.user)
    }
}

impl Credentials {
    /// The value of a basic `Authorization` header.
    pub fn basic_header(&self) -> String {
        let pair = format!("{}:{}", self.user, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

/// An auth file as docker and podman write it; only `auths` is read.
#[derive(Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
}

/// The auth files looked at, in the order podman reads them.
fn auth_files() -> Vec<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let mut files = Vec::new();
    if let Some(file) = var("REGISTRY_AUTH_FILE") {
        files.push(PathBuf::from(file));
    }
    if let Some(dir) = var("XDG_RUNTIME_DIR") {
        files.push(PathBuf::from(dir).join("containers").join("auth.json"));
    }
    if let Some(dir) = var("DOCKER_CONFIG") {
        files.push(PathBuf::from(dir).join("config.json"));
    }
    if let Some(home) = var("HOME") {
        files.push(PathBuf::from(home).join(".docker").join("config.json"));
    }
    files
}

/// The credentials for `host` from the first auth file that has an entry for it.
// Limitation: credential helpers (`credHelpers`, `credsStore`) and identity tokens are not
// used; only the `auth` field of an `auths` entry is.
pub fn credentials_for(host: &str) -> Result<Option<Credentials>, RegistryError> {
    if let Some((user, password)) = super::settings().creds {
        debug!(host, "credentials from --creds");
        return Ok(Some(Credentials { user, password }));
    }
    for path in auth_files() {
        if !path.is_file() {
            continue;
        }
        let bad = |reason: String| RegistryError::AuthFile {
            path: path.clone(),
            reason,
        };
        let file: AuthFile =
            serde_json::from_slice(&fs_err::read(&path)?).map_err(|e| bad(e.to_string()))?;
        let entry = file.auths.iter().find(|(key, _)| entry_host(key) == host);
        let Some(encoded) = entry.and_then(|(_, entry)| entry.auth.as_deref()) else {
            continue;
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| {
                bad(format!(
                    "the `auth` of `{host}` is not base64 of USER:PASSWORD"
                ))
            })?;
        let (user, password) = decoded.split_once(':').ok_or_else(|| {
            bad(format!(
                "the `auth` of `{host}` is not base64 of USER:PASSWORD"
            ))
        })?;
        debug!(host, file = %path.display(), "credentials from auth file");
        return Ok(Some(Credentials {
            user: user.to_owned(),
            password: password.to_owned(),
        }));
    }
    Ok(None)
}

/// The host an `auths` key names: keys may carry a scheme and a path (`https://HOST/v1/`).
fn entry_host(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

/// What a `WWW-Authenticate` header asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `Basic realm="..."` or `Bearer realm="...",service="...",scope="..."`.
pub fn parse_challenge(header: &str) -> Challenge {
    let (scheme, params) = header.trim().split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Challenge::Basic;
    }
    let mut realm = String::new();
    let mut service = None;
    let mut scope = None;
    for (key, value) in split_params(params) {
        match key.to_ascii_lowercase().as_str() {
            "realm" => realm = value,
            "service" => service = Some(value),
            "scope" => scope = Some(value),
            _ => {}
        }
    }
    Challenge::Bearer {
        realm,
        service,
        scope,
    }
}

/// `key="value"` pairs separated by commas; commas inside quotes (as in scopes) are kept.
fn split_params(params: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = params.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_owned();
        let after = after.trim_start();
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.split_once('"') {
                Some((value, next)) => (value.to_owned(), next),
                None => (quoted.to_owned(), ""),
            },
            None => match after.split_once(',') {
                Some((value, next)) => (value.trim().to_owned(), next),
                None => (after.trim().to_owned(), ""),
            },
        };
        pairs.push((key, value));
        rest = next.trim_start().trim_start_matches(',');
    }
    pairs
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

/// Asks the token server at `realm` for a token covering `scopes`, with basic credentials
/// when there are any.
pub fn fetch_token(
    agent: &ureq::Agent,
    realm: &str,
    service: Option<&str>,
    scopes: &[&str],
    credentials: Option<&Credentials>,
) -> Result<String, RegistryError> {
    // Credentials go to the realm only over HTTPS, or plain HTTP where the registry itself
    // would be spoken to that way.
    let realm_host = realm
        .strip_prefix("http://")
        .map(|rest| rest.split('/').next().unwrap_or(rest));
    if let Some(host) = realm_host.filter(|h| !super::client::plain_http_allowed(h)) {
        return Err(RegistryError::InsecureRealm {
            realm: realm.to_owned(),
            host: host.to_owned(),
        });
    }
    let mut request = agent.get(realm);
    if let Some(service) = service {
        request = request.query("service", service);
    }
    for scope in scopes {
        request = request.query("scope", *scope);
    }
    if let Some(credentials) = credentials {
        request = request.header("authorization", credentials.basic_header());
    }
    let mut response = request.call().map_err(|source| RegistryError::Http {
        url: realm.to_owned(),
        error: Box::new(source),
    })?;
    if !response.status().is_success() {
        return Err(RegistryError::TokenRefused {
            realm: realm.to_owned(),
            status: response.status().as_u16(),
        });
    }
    let bytes = response
        .body_mut()
        .read_to_vec()
        .map_err(|source| RegistryError::Http {
            url: realm.to_owned(),
            error: Box::new(source),
        })?;
    let answer: TokenAnswer =
        serde_json::from_slice(&bytes).map_err(|_| RegistryError::TokenRefused {
            realm: realm.to_owned(),
            status: response.status().as_u16(),
        })?;
    answer
        .token
        .or(answer.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| RegistryError::TokenRefused {
            realm: realm.to_owned(),
            status: response.status().as_u16(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenge_keeps_commas_inside_the_scope() {
        let challenge = parse_challenge(
            r#"Bearer realm="https://auth.test/token",service="reg",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            challenge,
            Challenge::Bearer {
                realm: "https://auth.test/token".into(),
                service: Some("reg".into()),
                scope: Some("repository:a/b:pull,push".into()),
            }
        );
        assert_eq!(parse_challenge(r#"Basic realm="x""#), Challenge::Basic);
    }

    #[test]
    fn auth_keys_with_scheme_and_path_name_their_host() {
        assert_eq!(entry_host("https://reg.test:5000/v1/"), "reg.test:5000");
        assert_eq!(entry_host("reg.test"), "reg.test");
    }

    #[test]
    fn debug_hides_the_password() {
        let credentials = Credentials {
            user: "u".into(),
            password: "secret".into(),
        };
        assert!(!format!("{credentials:?}").contains("secret"));
        assert_eq!(credentials.basic_header(), "Basic dTpzZWNyZXQ=");
    }
}
