//! The command-line surface: one file per subcommand, each wiring library pieces
//! together. Help text comes from the doc comments; `--json` puts exactly one JSON object
//! on stdout and everything a person reads on stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde::Serialize;

mod base;
mod build;
mod detect;
mod inspect;
mod lock;
mod rebase;

/// Build minimal, reproducible OCI images from source, and repave them onto patched bases.
#[derive(Debug, Parser)]
#[command(name = "repave", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Show decisions and cache hits (-v) or everything (-vv) on stderr.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only show warnings and errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Registry credentials, `USER:PASSWORD`, used instead of the docker/podman auth files.
    #[arg(
        long,
        global = true,
        value_name = "USER:PASSWORD",
        env = "REPAVE_CREDS",
        hide_env_values = true
    )]
    pub creds: Option<String>,
    /// Speak plain HTTP to this registry host (loopback hosts always are); repeatable.
    #[arg(long, global = true, value_name = "HOST")]
    pub insecure_registry: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    Build(build::Args),
    Lock(lock::Args),
    Detect(detect::Args),
    /// Lock and build package bases.
    #[command(subcommand)]
    Base(base::Command),
    Inspect(inspect::Args),
    Rebase(rebase::Args),
}

/// Options every command that downloads or caches shares.
#[derive(Debug, Clone, clap::Args)]
pub struct CacheArgs {
    /// Where downloaded packages, indexes and layers are cached.
    #[arg(long, env = "REPAVE_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

impl CacheArgs {
    pub fn dir(&self) -> anyhow::Result<PathBuf> {
        if let Some(dir) = &self.cache_dir {
            return Ok(dir.clone());
        }
        if let Some(xdg) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
            return Ok(PathBuf::from(xdg).join("repave"));
        }
        match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => Ok(PathBuf::from(home).join(".cache").join("repave")),
            None => {
                anyhow::bail!("no cache directory: set HOME, XDG_CACHE_HOME or pass --cache-dir")
            }
        }
    }
}

/// Work directories older than this are left over from interrupted runs (a build never
/// takes this long) and are removed when a later run starts.
const STALE_WORK: std::time::Duration = std::time::Duration::from_secs(12 * 3600);

/// Removes work directories that interrupted runs left in the cache (`work/`, `tmp/`).
pub fn sweep_stale_work(cache: &std::path::Path) {
    for folder in ["work", "tmp"] {
        let Ok(entries) = std::fs::read_dir(cache.join(folder)) else {
            continue;
        };
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > STALE_WORK));
            if old {
                tracing::debug!(path = %entry.path().display(), "removing a stale work directory");
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let creds = match &cli.creds {
        Some(value) => match value.split_once(':') {
            Some((user, password)) if !user.is_empty() => {
                Some((user.to_owned(), password.to_owned()))
            }
            // The value is a secret: the message does not repeat it.
            _ => anyhow::bail!("--creds must be USER:PASSWORD"),
        },
        None => None,
    };
    crate::store::registry::configure(crate::store::registry::Settings {
        creds,
        insecure: cli.insecure_registry.clone(),
    });
    match cli.command {
        Command::Build(args) => build::run(args),
        Command::Lock(args) => lock::run(args),
        Command::Detect(args) => detect::run(args),
        Command::Base(command) => base::run(command),
        Command::Inspect(args) => inspect::run(args),
        Command::Rebase(args) => rebase::run(args),
    }
}

pub fn init_logging(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let level = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_env("REPAVE_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("repave={level},warn")));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .without_time()
        .init();
}

/// Prints `value` as the one JSON object of a `--json` run.
fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    println!("{text}");
    Ok(())
}
