//! `repave base outdated` and `repave base lock --update` through the real binary against
//! the machine's Debian mirror. Every lock is written at test time, so none can go stale:
//! a fresh lock is current, and a copy with one version edited back is not.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use common::*;
use serde_json::Value;

/// tzdata and netbase, with debconf (only tzdata's maintainer scripts use it) left out.
const DEFINITION: &str = r#"suite = "bookworm"
components = ["main"]
architecture = "amd64"
packages = ["tzdata", "netbase"]
exclude = ["debconf"]
"#;

const OLD_TZDATA: &str = "2020a-0+deb12u1";

struct Locked {
    _temp: tempfile::TempDir,
    dir: PathBuf,
    definition: PathBuf,
    lock: PathBuf,
}

/// Writes the definition into a temp dir and locks it now.
fn fresh_lock() -> Locked {
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = temp.path().to_path_buf();
    let definition = dir.join("tz.toml");
    fs::write(&definition, DEFINITION).expect("write definition");
    let lock = dir.join("tz.lock");
    run_ok(
        repave()
            .args(["base", "lock"])
            .arg(&definition)
            .arg("--output")
            .arg(&lock),
    );
    Locked {
        _temp: temp,
        dir,
        definition,
        lock,
    }
}

/// `(version, archive)` of `name` in a lock.
fn locked(lock: &Path, name: &str) -> (String, String) {
    let value: toml::Value =
        toml::from_str(&fs::read_to_string(lock).expect("read lock")).expect("the lock is TOML");
    let package = value["package"]
        .as_array()
        .expect("[[package]] tables")
        .iter()
        .find(|p| p["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("`{name}` is not locked in {}", lock.display()));
    let field = |key: &str| package[key].as_str().expect("string field").to_owned();
    (field("version"), field("archive"))
}

/// A copy of `lock` at `to` with `name`'s `key` line set to `value`.
fn edit_copy(lock: &Path, to: &Path, name: &str, key: &str, value: &str) {
    let text = fs::read_to_string(lock).expect("read lock");
    let mut in_package = false;
    let mut edited = false;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            if line.starts_with("name = ") {
                in_package = line == format!("name = \"{name}\"");
            }
            if in_package && line.starts_with(&format!("{key} = ")) {
                edited = true;
                in_package = false;
                return format!("{key} = \"{value}\"");
            }
            line.to_owned()
        })
        .collect();
    assert!(edited, "no `{key}` of `{name}` in:\n{text}");
    fs::write(to, lines.join("\n") + "\n").expect("write edited lock");
}

fn outdated(lock: &Path, json: bool) -> Output {
    let mut command = repave();
    command.args(["base", "outdated"]).arg(lock);
    if json {
        command.arg("--json");
    }
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_exit(output: &Output, code: i32, what: &str) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "{what} should exit {code}:\n{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

fn update(definition: &Path, lock: &Path) -> Output {
    run_ok(
        repave()
            .args(["base", "lock"])
            .arg(definition)
            .arg("--update")
            .arg(lock),
    )
}

#[test]
fn a_fresh_lock_is_current() {
    let base = fresh_lock();
    let output = outdated(&base.lock, false);
    assert_exit(&output, 0, "base outdated on a fresh lock");
    assert!(output.stdout.is_empty(), "{}", text(&output.stdout));
    assert!(text(&output.stderr).contains("current"));

    let output = outdated(&base.lock, true);
    assert_exit(&output, 0, "base outdated --json on a fresh lock");
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    assert_eq!(report["current"], true);
    assert_eq!(report["packages"], Value::Array(vec![]));
}

#[test]
fn an_older_locked_version_exits_10_naming_the_package() {
    let base = fresh_lock();
    let (available, archive) = locked(&base.lock, "tzdata");
    let old = base.dir.join("old.lock");
    edit_copy(&base.lock, &old, "tzdata", "version", OLD_TZDATA);

    let output = outdated(&old, false);
    assert_exit(&output, 10, "base outdated on an edited lock");
    let stdout = text(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("tzdata "))
        .unwrap_or_else(|| panic!("tzdata is not listed:\n{stdout}"));
    assert!(
        line.contains(OLD_TZDATA) && line.contains(&available) && line.contains(&archive),
        "{line}"
    );
    assert_eq!(line.contains("[security]"), archive == "security", "{line}");
    assert_eq!(
        stdout.lines().count(),
        1,
        "only tzdata is behind:\n{stdout}"
    );

    let output = outdated(&old, true);
    assert_exit(&output, 10, "base outdated --json on an edited lock");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}):\n{}",
            text(&output.stdout)
        )
    });
    assert_eq!(report["current"], false);
    assert_eq!(report["lock"], old.display().to_string());
    assert_eq!(
        report["packages"],
        serde_json::json!([{
            "name": "tzdata",
            "locked": OLD_TZDATA,
            "available": available,
            "archive": archive,
            "security": archive == "security",
        }])
    );
}

#[test]
fn a_vanished_package_is_reported_and_needs_a_relock() {
    let base = fresh_lock();
    let (netbase, _) = locked(&base.lock, "netbase");
    let gone = base.dir.join("gone.lock");
    edit_copy(&base.lock, &gone, "netbase", "name", "netbase-gone");

    let output = outdated(&gone, true);
    assert_exit(
        &output,
        10,
        "base outdated on a lock with a vanished package",
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    assert_eq!(
        report["vanished"],
        serde_json::json!([{ "name": "netbase-gone", "version": netbase }])
    );
    assert_eq!(report["relock_needed"], true);
    assert_eq!(
        report["added"],
        serde_json::json!([{ "name": "netbase", "version": netbase }])
    );
    assert_eq!(report["removed"][0]["name"], "netbase-gone");
}

#[test]
fn update_relocks_an_old_lock_and_reports_the_change() {
    let base = fresh_lock();
    let (available, _) = locked(&base.lock, "tzdata");
    let old = base.dir.join("old.lock");
    edit_copy(&base.lock, &old, "tzdata", "version", OLD_TZDATA);

    let output = update(&base.definition, &old);
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains(&format!("tzdata: {OLD_TZDATA} → {available}")),
        "{stdout}"
    );
    assert_eq!(locked(&old, "tzdata").0, available);
    assert_exit(&outdated(&old, false), 0, "base outdated after --update");
    let leftovers: Vec<_> = fs::read_dir(&base.dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(leftovers.len(), 3, "temp files left behind: {leftovers:?}");
}

#[test]
fn update_leaves_a_current_lock_byte_identical() {
    let base = fresh_lock();
    // An old mtime, so a rewrite within the same second still shows.
    let past = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    fs::File::options()
        .write(true)
        .open(&base.lock)
        .expect("open lock")
        .set_modified(past)
        .expect("set mtime");
    let before = fs::read(&base.lock).expect("read lock");
    let meta_before = fs::metadata(&base.lock).expect("stat lock");

    let output = update(&base.definition, &base.lock);
    assert!(output.stdout.is_empty(), "{}", text(&output.stdout));

    let meta_after = fs::metadata(&base.lock).expect("stat lock");
    assert_eq!(fs::read(&base.lock).expect("read lock"), before);
    assert_eq!(meta_after.modified().expect("mtime"), past);
    assert_eq!(meta_after.ino(), meta_before.ino(), "the lock was replaced");
}

#[test]
fn output_and_update_are_alternatives() {
    let base = fresh_lock();
    let lock_args = |extra: &[&str]| -> Output {
        let mut command: Command = repave();
        command
            .args(["base", "lock"])
            .arg(&base.definition)
            .args(extra);
        command.output().expect("start repave")
    };
    let neither = lock_args(&[]);
    assert_exit(&neither, 2, "base lock without --output or --update");
    let lock = base.lock.to_str().expect("UTF-8 path");
    let both = lock_args(&["--output", lock, "--update", lock]);
    assert_exit(&both, 2, "base lock with --output and --update");
    assert!(text(&both.stderr).contains("--update"));

    let missing = base.dir.join("missing.lock");
    let output = lock_args(&["--update", missing.to_str().expect("UTF-8 path")]);
    assert_exit(&output, 1, "base lock --update of a missing lock");
    assert!(text(&output.stderr).contains("missing.lock"));
    assert!(!missing.exists());
}
