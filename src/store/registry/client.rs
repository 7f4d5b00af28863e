//! One registry host over HTTP: picks the scheme (HTTPS unless the host is loopback or
//! named in `REPAVE_INSECURE_REGISTRIES`), answers auth challenges once per request, and
//! retries connection errors and 5xx answers with backoff. It knows nothing of images.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use tracing::debug;
use ureq::http::{Method, Request, Response, StatusCode};
use ureq::{Body, SendBody};

use super::auth::{self, Challenge, Credentials};
use super::RegistryError;

/// Hosts (comma-separated, `HOST` or `HOST:PORT`) that are spoken to over plain HTTP.
// Limitation: there are no `--insecure-registry` and `--creds` flags yet; this variable and
// the auth files are the only ways to name insecure hosts and credentials.
pub const INSECURE_ENV: &str = "REPAVE_INSECURE_REGISTRIES";

const TRIES: u32 = 3;

/// What a request sends.
pub enum Payload<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// A file streamed from disk, `size` bytes long; it is opened again for each try.
    File(&'a Path, u64),
    /// A blob with no local bytes: nothing can be sent.
    Missing,
}

pub struct Client {
    agent: ureq::Agent,
    /// `https://HOST` or `http://HOST`.
    base: String,
    host: String,
    /// Token scopes asked for besides the one a challenge names.
    scopes: Vec<String>,
    credentials: Option<Credentials>,
    /// The `Authorization` value that last worked (a bearer token or basic credentials).
    authorization: Option<String>,
}

impl Client {
    /// A client for `host` that asks for `scopes` (`repository:NAME:pull,push`) when a
    /// token is needed.
    pub fn new(host: &str, scopes: Vec<String>) -> Result<Client, RegistryError> {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .user_agent(concat!("repave/", env!("CARGO_PKG_VERSION")))
            .build();
        let scheme = if plain_http_allowed(host) {
            "http"
        } else {
            "https"
        };
        debug!(host, scheme, "registry client");
        Ok(Client {
            agent: config.into(),
            base: format!("{scheme}://{host}"),
            host: host.to_owned(),
            scopes,
            credentials: auth::credentials_for(host)?,
            authorization: None,
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// The absolute URL of `path` (`/v2/...`), or `location` as a registry returned it.
    pub fn url(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_owned()
        } else {
            format!("{}{location}", self.base)
        }
    }

    /// Sends a request, answering one auth challenge and retrying connection errors and
    /// 5xx answers (`retry` false sends once: the caller retries a larger step itself).
    pub fn send(
        &mut self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        payload: &Payload<'_>,
        retry: bool,
    ) -> Result<Response<Body>, RegistryError> {
        let tries = if retry { TRIES } else { 1 };
        let mut challenged = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.send_once(method.clone(), url, headers, payload);
            match result {
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED && !challenged => {
                    challenged = true;
                    attempt -= 1;
                    let challenge = response
                        .headers()
                        .get("www-authenticate")
                        .and_then(|v| v.to_str().ok())
                        .map(auth::parse_challenge)
                        .ok_or_else(|| RegistryError::Unauthorized {
                            host: self.host.clone(),
                        })?;
                    self.answer(&challenge)?;
                }
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED => {
                    return Err(RegistryError::Unauthorized {
                        host: self.host.clone(),
                    })
                }
                Ok(response) if response.status().is_server_error() && attempt < tries => {
                    debug!(url, status = %response.status(), attempt, "server error: retrying");
                    backoff(attempt);
                }
                Ok(response) => return Ok(response),
                Err(error) if transient(&error) && attempt < tries => {
                    debug!(url, %error, attempt, "connection error: retrying");
                    backoff(attempt);
                }
                Err(source) => {
                    return Err(RegistryError::Http {
                        url: url.to_owned(),
                        error: Box::new(source),
                    })
                }
            }
        }
    }

    fn send_once(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        payload: &Payload<'_>,
    ) -> Result<Response<Body>, ureq::Error> {
        let mut request = Request::builder().method(method).uri(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(authorization) = &self.authorization {
            request = request.header("authorization", authorization.as_str());
        }
        match payload {
            Payload::Empty | Payload::Missing => self.agent.run(request.body(SendBody::none())?),
            Payload::Bytes(bytes) => self.agent.run(
                request
                    .header("content-length", bytes.len().to_string())
                    .body(*bytes)?,
            ),
            Payload::File(path, size) => {
                let file = std::io::BufReader::new(fs_err::File::open(path)?);
                self.agent.run(
                    request
                        .header("content-length", size.to_string())
                        .body(SendBody::from_owned_reader(file))?,
                )
            }
        }
    }

    /// Sets the `Authorization` value a challenge asks for.
    fn answer(&mut self, challenge: &Challenge) -> Result<(), RegistryError> {
        match challenge {
            Challenge::Basic => {
                let credentials =
                    self.credentials
                        .as_ref()
                        .ok_or_else(|| RegistryError::Unauthorized {
                            host: self.host.clone(),
                        })?;
                self.authorization = Some(credentials.basic_header());
            }
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let mut scopes: Vec<&str> = self.scopes.iter().map(String::as_str).collect();
                if let Some(scope) = scope {
                    if !scopes.contains(&scope.as_str()) {
                        scopes.push(scope);
                    }
                }
                let token = auth::fetch_token(
                    &self.agent,
                    realm,
                    service.as_deref(),
                    &scopes,
                    self.credentials.as_ref(),
                )?;
                self.authorization = Some(format!("Bearer {token}"));
            }
        }
        debug!(host = %self.host, "authenticated");
        Ok(())
    }
}

/// Loopback hosts and those named with `--insecure-registry` or in [`INSECURE_ENV`] are
/// spoken to over plain HTTP.
pub fn plain_http_allowed(host: &str) -> bool {
    let name = host_name(host);
    let loopback = name == "localhost"
        || name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    loopback
        || super::settings()
            .insecure
            .iter()
            .any(|entry| entry == host || entry == name)
        || std::env::var(INSECURE_ENV).is_ok_and(|list| {
            list.split(',')
                .map(str::trim)
                .any(|entry| !entry.is_empty() && (entry == host || entry == name))
        })
}

/// `host` without its port: `[::1]:5000` gives `[::1]`, `127.0.0.1:5000` gives `127.0.0.1`.
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(name, _)| &host[..=name.len()]);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

fn transient(error: &ureq::Error) -> bool {
    matches!(
        error,
        ureq::Error::Io(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::Timeout(_)
            | ureq::Error::Protocol(_)
    )
}

fn backoff(attempt: u32) {
    std::thread::sleep(Duration::from_millis(250 << attempt));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_get_plain_http() {
        assert!(plain_http_allowed("127.0.0.1:5000"));
        assert!(plain_http_allowed("127.8.0.1"));
        assert!(plain_http_allowed("localhost:5000"));
        assert!(plain_http_allowed("[::1]:5000"));
        assert!(!plain_http_allowed("registry.example:5000"));
        assert!(!plain_http_allowed("10.0.0.1:5000"));
    }

    #[test]
    fn insecure_registry_hosts_get_plain_http() {
        super::super::configure(super::super::Settings {
            creds: None,
            insecure: vec![
                "registry.internal:5000".to_owned(),
                "mirror.internal".to_owned(),
            ],
        });
        assert!(plain_http_allowed("registry.internal:5000"));
        assert!(plain_http_allowed("mirror.internal:443"));
        assert!(!plain_http_allowed("registry.internal:6000"));
        assert!(!plain_http_allowed("other.internal:5000"));
    }
}
