//! Runs buildpack executables under bubblewrap with the paths they will have in the image:
//! the host's root read-only, the app at `/workspace`, layers at `/layers`, the buildpack
//! at `/cnb/buildpacks/…`, a private `/tmp`. Collects their stdout and stderr together.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

use super::BuildpackError;

/// Where buildpack output goes as it runs.
#[derive(Clone)]
pub enum OutputSink {
    /// repave's own stderr, so stdout stays clean for `--json`.
    Stderr,
    Writer(Arc<Mutex<dyn Write + Send>>),
}

impl OutputSink {
    fn write_line(&self, line: &[u8]) -> std::io::Result<()> {
        match self {
            OutputSink::Stderr => {
                let mut stderr = std::io::stderr().lock();
                stderr.write_all(line)?;
                stderr.flush()
            }
            OutputSink::Writer(writer) => {
                let mut writer = writer
                    .lock()
                    .map_err(|_| std::io::Error::other("output writer poisoned"))?;
                writer.write_all(line)?;
                writer.flush()
            }
        }
    }
}

/// How much of a step's output an error message repeats.
const OUTPUT_TAIL: usize = 16 * 1024;

/// Top-level host paths the sandbox provides itself.
const OWN_PATHS: &[&str] = &[
    "proc",
    "dev",
    "tmp",
    "workspace",
    "layers",
    "cnb",
    "platform",
];

pub(crate) struct Sandbox {
    args: Vec<std::ffi::OsString>,
    env: Vec<(String, String)>,
}

impl Sandbox {
    /// A sandbox that sees the host read-only, with `env` as its whole environment.
    pub(crate) fn new(env: Vec<(String, String)>) -> Result<Sandbox, BuildpackError> {
        // A pid namespace of its own: whatever a build step starts ends with it.
        let mut args: Vec<std::ffi::OsString> =
            ["--die-with-parent", "--new-session", "--unshare-pid"]
                .iter()
                .map(Into::into)
                .collect();
        let mut roots: Vec<PathBuf> = Vec::new();
        for entry in fs_err::read_dir("/")? {
            roots.push(entry?.path());
        }
        roots.sort();
        for path in roots {
            let name = path.file_name().map(|n| n.as_bytes()).unwrap_or_default();
            if OWN_PATHS.iter().any(|own| own.as_bytes() == name) {
                continue;
            }
            let meta = fs_err::symlink_metadata(&path)?;
            if meta.file_type().is_symlink() {
                args.push("--symlink".into());
                args.push(fs_err::read_link(&path)?.into_os_string());
            } else {
                args.push("--ro-bind".into());
                args.push(path.clone().into_os_string());
            }
            args.push(path.into_os_string());
        }
        for arg in ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"] {
            args.push(arg.into());
        }
        Ok(Sandbox { args, env })
    }

    pub(crate) fn bind(&mut self, source: &Path, target: &str, writable: bool) -> &mut Self {
        self.args
            .push(if writable { "--bind" } else { "--ro-bind" }.into());
        self.args.push(source.as_os_str().to_owned());
        self.args.push(target.into());
        self
    }

    /// The bwrap command that runs `argv` in `dir`, stdin closed.
    pub(crate) fn command(&self, bwrap: &Path, dir: &str, argv: &[&str]) -> Command {
        let mut command = Command::new(bwrap);
        command
            .args(&self.args)
            .arg("--chdir")
            .arg(dir)
            .arg("--")
            .args(argv)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        command
    }

    /// Runs `program` in `dir`; output goes to `sink` line by line as it comes, and its
    /// last part is returned.
    pub(crate) fn run(
        &self,
        dir: &str,
        program: &str,
        sink: Option<&OutputSink>,
    ) -> Result<(ExitStatus, String), BuildpackError> {
        let bwrap = find_bwrap()?;
        let mut command = self.command(&bwrap, dir, &[program]);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        tracing::debug!(program, dir, "running in bubblewrap");
        let mut child = command.spawn().map_err(|source| BuildpackError::Spawn {
            program: bwrap.display().to_string(),
            source,
        })?;

        let collected = Mutex::new(Vec::new());
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        std::thread::scope(|scope| {
            scope.spawn(|| forward(stdout, &collected, sink));
            scope.spawn(|| forward(stderr, &collected, sink));
        });
        let status = child.wait().map_err(|source| BuildpackError::Spawn {
            program: bwrap.display().to_string(),
            source,
        })?;

        let collected = collected.into_inner().unwrap_or_else(|e| e.into_inner());
        let start = collected.len().saturating_sub(OUTPUT_TAIL);
        let text = String::from_utf8_lossy(&collected[start..]).into_owned();
        Ok((status, text))
    }
}

fn forward(stream: impl Read, collected: &Mutex<Vec<u8>>, sink: Option<&OutputSink>) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if let Ok(mut all) = collected.lock() {
            all.extend_from_slice(&line);
        }
        if let Some(sink) = sink {
            // Output that cannot be shown is still kept for the error message.
            let _ = sink.write_line(&line);
        }
    }
}

pub(crate) fn find_bwrap() -> Result<PathBuf, BuildpackError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("bwrap"))
        .find(|candidate| candidate.is_file())
        .ok_or(BuildpackError::BwrapMissing)
}
