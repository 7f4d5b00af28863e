//! The servers the registry tests talk to: Debian's `docker-registry` on a loopback port
//! (anonymous, htpasswd or token auth), a token server that signs JWTs with a fresh key,
//! and a TCP proxy that cuts blob uploads mid-stream. Each stops when dropped or with the
//! test process.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::common::{require_tool, run_ok};

/// How the test registry authenticates clients.
pub enum Auth<'a> {
    Anonymous,
    /// htpasswd with one `user:password`.
    Basic(&'a str, &'a str),
    /// Bearer tokens from `realm`, signed by the key of the certificate `cert`.
    Token {
        realm: &'a str,
        cert: &'a Path,
    },
}

/// A `docker-registry` serving a temporary directory on 127.0.0.1; killed when dropped.
pub struct Registry {
    child: Child,
    pub host: String,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl Registry {
    pub fn start(auth: Auth<'_>) -> Registry {
        let binary = require_tool("docker-registry", "docker-registry");
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind a loopback port")
            .local_addr()
            .expect("local addr")
            .port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: repave-test\n",
            dir.path().join("storage").display()
        );
        match auth {
            Auth::Anonymous => {}
            Auth::Basic(user, password) => {
                let htpasswd = require_tool("htpasswd", "apache2-utils");
                let line = run_ok(Command::new(htpasswd).args(["-Bbn", user, password])).stdout;
                let file = dir.path().join("htpasswd");
                fs::write(&file, line).expect("write htpasswd");
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: repave-test\n    path: {}\n",
                    file.display()
                ));
            }
            Auth::Token { realm, cert } => config.push_str(&format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                cert.display()
            )),
        }
        let config_file = dir.path().join("config.yml");
        fs::write(&config_file, config).expect("write registry config");
        let log = dir.path().join("registry.log");
        let log_file = fs::File::create(&log).expect("log file");
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config_file)
            .stdout(log_file.try_clone().expect("clone log file"))
            .stderr(log_file)
            .stdin(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let registry = Registry {
            child,
            host: format!("127.0.0.1:{port}"),
            log,
            dir,
        };
        registry.wait_ready();
        registry
    }

    /// Waits until `/v2/` answers (200, or 401 with auth on).
    fn wait_ready(&self) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let url = format!("http://{}/v2/", self.host);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(response) = agent.get(&url).call() {
                if matches!(response.status().as_u16(), 200 | 401) {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("docker-registry did not answer on {url}:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).expect("read registry log")
    }

    /// Access-log lines of requests whose request line starts with `prefix`
    /// (`PUT /v2/team/app/blobs/uploads/`).
    pub fn requests(&self, prefix: &str) -> Vec<String> {
        let needle = format!("\"{prefix}");
        self.log()
            .lines()
            .filter(|line| line.contains(&needle))
            .map(str::to_owned)
            .collect()
    }

    /// The file the registry keeps blob `digest` (`sha256:…`) in.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    pub fn reference(&self, name: &str) -> String {
        format!("docker://{}/{name}", self.host)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub const TOKEN_SERVICE: &str = "repave-test-service";
pub const TOKEN_ISSUER: &str = "repave-test-issuer";

pub fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A token server on 127.0.0.1: it hands a JWT granting pull and push on `repository`,
/// signed with a fresh RSA key, to requests that bring basic `user:password`, and records
/// each request line. The key's self-signed certificate is what the registry trusts.
pub struct TokenServer {
    pub realm: String,
    pub cert: PathBuf,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl TokenServer {
    pub fn start(repository: &str, user: &str, password: &str) -> TokenServer {
        let openssl = require_tool("openssl", "openssl");
        let dir = tempfile::tempdir().expect("temp dir");
        let (key, cert) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
        run_ok(
            Command::new(&openssl)
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                ])
                .args(["-subj", "/CN=repave-test-token", "-keyout"])
                .arg(&key)
                .arg("-out")
                .arg(&cert),
        );
        let der = run_ok(
            Command::new(&openssl)
                .args(["x509", "-outform", "DER", "-in"])
                .arg(&cert),
        )
        .stdout;
        let header = serde_json::json!({
            "alg": "RS256",
            "typ": "JWT",
            "x5c": [base64::engine::general_purpose::STANDARD.encode(der)],
        });
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let claims = serde_json::json!({
            "iss": TOKEN_ISSUER,
            "sub": user,
            "aud": TOKEN_SERVICE,
            "exp": now + 3600,
            "nbf": now - 60,
            "iat": now - 60,
            "jti": "repave-test",
            "access": [{ "type": "repository", "name": repository, "actions": ["pull", "push"] }],
        });
        let signing_input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let input_file = dir.path().join("input");
        fs::write(&input_file, &signing_input).expect("write signing input");
        let signature = run_ok(
            Command::new(&openssl)
                .args(["dgst", "-sha256", "-sign"])
                .arg(&key)
                .arg(&input_file),
        )
        .stdout;
        let token = format!("{signing_input}.{}", b64url(&signature));

        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind token server");
        let realm = format!(
            "http://{}/token",
            listener.local_addr().expect("local addr")
        );
        let expected = format!(
            "authorization: basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
        .to_lowercase();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        // The thread ends with the test process.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match std::io::Read::read(&mut stream, &mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => break,
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let authorized = head.to_lowercase().lines().any(|l| l.trim() == expected);
                let request_line = head.lines().next().unwrap_or_default().to_owned();
                seen.lock().expect("lock").push(request_line);
                let (status, body) = if authorized {
                    ("200 OK", format!(r#"{{"token":"{token}"}}"#))
                } else {
                    ("401 Unauthorized", "{}".to_owned())
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = std::io::Write::write_all(&mut stream, answer.as_bytes());
            }
        });
        TokenServer {
            realm,
            cert,
            requests,
            _dir: dir,
        }
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("lock").clone()
    }
}

/// A TCP proxy to `upstream` on 127.0.0.1 that cuts connections in the middle of blob
/// uploads: once (`always` false) or every time.
pub struct CuttingProxy {
    pub host: String,
    cuts: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl CuttingProxy {
    /// Bytes of an upload that pass before the connection is cut.
    const PASSED: usize = 64 * 1024;

    pub fn start(upstream: &str, always: bool) -> CuttingProxy {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let host = listener.local_addr().expect("local addr").to_string();
        let cuts = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = cuts.clone();
        let upstream = upstream.to_owned();
        // The threads end with the test process.
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { continue };
                let Ok(mut server) = std::net::TcpStream::connect(&upstream) else {
                    continue;
                };
                let (mut client_back, mut server_back) = (
                    client.try_clone().expect("clone socket"),
                    server.try_clone().expect("clone socket"),
                );
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut server_back, &mut client_back);
                    let _ = client_back.shutdown(std::net::Shutdown::Both);
                });
                let counter = counter.clone();
                std::thread::spawn(move || {
                    let mut buffer = vec![0u8; 16 * 1024];
                    let mut uploading: Option<usize> = None;
                    loop {
                        let n = match std::io::Read::read(&mut client, &mut buffer) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let chunk = &buffer[..n];
                        let cutting = always || counter.load(Ordering::SeqCst) == 0;
                        if cutting
                            && uploading.is_none()
                            && contains(chunk, b"PUT /v2/")
                            && contains(chunk, b"/blobs/uploads/")
                        {
                            uploading = Some(0);
                        }
                        if let Some(sent) = uploading.as_mut() {
                            *sent += n;
                            if *sent > Self::PASSED {
                                counter.fetch_add(1, Ordering::SeqCst);
                                break;
                            }
                        }
                        if std::io::Write::write_all(&mut server, chunk).is_err() {
                            break;
                        }
                    }
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    let _ = server.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        CuttingProxy { host, cuts }
    }

    pub fn cuts(&self) -> usize {
        self.cuts.load(std::sync::atomic::Ordering::SeqCst)
    }
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
