//! Runs an unpacked image's process with bubblewrap, as the image's user, and talks to it
//! over HTTP on a free loopback port.
//!
//! bwrap is started as the image's uid and gid (not as root), so that inside its user
//! namespace root-owned files show as the overflow user and stay read-only, as they would
//! in a container; started as root with `--uid`, bwrap would map the image user onto root.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{require_tool, Bundle};

/// How long [`RunningApp::get`] waits for the app to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// An image's process running under bubblewrap; killed when dropped.
pub struct RunningApp {
    child: Child,
    pub port: u16,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
}

/// Starts the bundle's process (`process.args`, env, user, cwd from its config.json) in
/// its rootfs, with `PORT` set to a free loopback port. The network is the host's, so the
/// app is reachable on 127.0.0.1:PORT.
pub fn run_image(bundle: &Bundle) -> RunningApp {
    run_image_with_env(bundle, &[])
}

/// Like [`run_image`], with extra `KEY=value` variables set after the image's own.
pub fn run_image_with_env(bundle: &Bundle, extra_env: &[(&str, &str)]) -> RunningApp {
    let bwrap = require_tool("bwrap", "bubblewrap");
    let (uid, gid) = (bundle.uid(), bundle.gid());
    let args = bundle.args();
    assert!(
        !args.is_empty(),
        "the image has no entrypoint or command: {}",
        bundle.config
    );
    prepare_rootfs(&bundle.rootfs, uid);

    let port = free_port();
    let log_dir = tempfile::tempdir().expect("log dir");
    let log = log_dir.path().join("app.log");
    let log_file = std::fs::File::create(&log).expect("log file");
    // As runc does for stdio, the process's stdout and stderr belong to its user, so an
    // app that reopens `/dev/stderr` (lighttpd's errorlog) can.
    std::os::unix::fs::fchown(&log_file, Some(uid), Some(gid)).expect("chown log file");

    let mut command = Command::new(bwrap);
    command
        .arg("--bind")
        .arg(&bundle.rootfs)
        .arg("/")
        .args(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"])
        .args([
            "--unshare-pid",
            "--unshare-ipc",
            "--die-with-parent",
            "--clearenv",
        ])
        .args(["--chdir", &bundle.cwd()]);
    if uid != 0 {
        command
            .arg("--unshare-user")
            .args(["--uid", &uid.to_string(), "--gid", &gid.to_string()]);
        command.uid(uid).gid(gid);
    }
    let port_text = port.to_string();
    let variables = bundle
        .env()
        .into_iter()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .chain(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        )
        .chain([("PORT".to_owned(), port_text)]);
    for (key, value) in variables {
        command.args(["--setenv", &key, &value]);
    }
    command.arg("--").args(&args);
    command
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("log file"))
        .stderr(log_file);
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start bwrap: {e}"));
    RunningApp {
        child,
        port,
        log,
        _log_dir: log_dir,
    }
}

impl RunningApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// What the app printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GETs `path`, retrying until the app answers (at most 30 s); returns status and body.
    /// Panics with the app's output when it exits or never answers.
    pub fn get(&mut self, path: &str) -> (u16, String) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .proxy(None)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        let url = self.url(path);
        let start = Instant::now();
        loop {
            match agent.get(&url).call() {
                Ok(mut response) => {
                    let body = response.body_mut().read_to_string().expect("utf-8 body");
                    return (response.status().as_u16(), body);
                }
                Err(err) => {
                    if let Some(status) = self.child.try_wait().expect("wait for bwrap") {
                        panic!(
                            "the app exited ({status}) before answering {url}:\n{}",
                            self.log()
                        );
                    }
                    if start.elapsed() > READY_TIMEOUT {
                        panic!(
                            "the app did not answer {url} within {READY_TIMEOUT:?} ({err}):\n{}",
                            self.log()
                        );
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
}

impl Drop for RunningApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local addr").port()
}

/// Makes the rootfs usable by bwrap running as `uid`: mount points for /proc, /dev and
/// /tmp exist (as a container runtime would create them), and every directory above the
/// rootfs can be traversed by that user.
fn prepare_rootfs(rootfs: &Path, uid: u32) {
    for mount_point in ["proc", "dev", "tmp"] {
        let path = rootfs.join(mount_point);
        if std::fs::symlink_metadata(&path).is_err() {
            std::fs::create_dir(&path)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        }
    }
    if uid == 0 {
        return;
    }
    let mut dir = Some(rootfs);
    while let Some(current) = dir {
        let mode = std::fs::metadata(current)
            .expect("stat bundle path")
            .permissions()
            .mode();
        if mode & 0o001 == 0 {
            let temp = std::env::temp_dir();
            assert!(
                current.starts_with(&temp) && current != temp,
                "uid {uid} cannot reach the rootfs: `{}` is not searchable by others; unpack under {}",
                current.display(),
                temp.display()
            );
            std::fs::set_permissions(current, std::fs::Permissions::from_mode(mode | 0o011))
                .expect("chmod");
        }
        dir = current.parent();
    }
}
