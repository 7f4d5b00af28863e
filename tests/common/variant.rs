//! Copies of a fixture tree that differ in everything the determinism rules say must not
//! matter (file creation order, mtimes, group and other permission bits, the path), and
//! the matching variation of a command's environment (umask, time zone, locale, threads).

use std::fs::{self, File, FileTimes};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

/// How a copy and a run differ from another.
#[derive(Clone, Debug)]
pub struct Variant {
    /// Create siblings in reverse name order.
    pub reverse_order: bool,
    /// Seeds the per-file mtimes (each file gets its own pseudo-random time).
    pub mtime_seed: u64,
    /// XOR mask applied to the group and other permission bits of every file and directory.
    pub flip_bits: u32,
    pub umask: u32,
    pub tz: &'static str,
    pub locale: &'static str,
    pub threads: usize,
}

impl Variant {
    /// A plain copy in a plain environment.
    pub fn plain() -> Variant {
        Variant {
            reverse_order: false,
            mtime_seed: 1,
            flip_bits: 0,
            umask: 0o022,
            tz: "UTC",
            locale: "C",
            threads: 1,
        }
    }

    /// A copy and environment that differ from [`Variant::plain`] in every respect.
    pub fn twisted() -> Variant {
        Variant {
            reverse_order: true,
            mtime_seed: 0x9e37_79b9_7f4a_7c15,
            flip_bits: 0o077,
            umask: 0o077,
            tz: "Pacific/Chatham",
            locale: "de_DE.UTF-8",
            threads: 2,
        }
    }

    /// `command` run under this variant's umask, time zone, locale and thread count.
    pub fn wrap(&self, command: &Command) -> Command {
        let mut wrapped = Command::new("/bin/sh");
        wrapped
            .arg("-c")
            .arg(format!("umask {:03o} && exec \"$@\"", self.umask))
            .arg("sh")
            .arg(command.get_program())
            .args(command.get_args());
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => wrapped.env(key, value),
                None => wrapped.env_remove(key),
            };
        }
        if let Some(dir) = command.get_current_dir() {
            wrapped.current_dir(dir);
        }
        wrapped
            .env("TZ", self.tz)
            .env("LANG", self.locale)
            .env("LC_ALL", self.locale)
            .env("RAYON_NUM_THREADS", self.threads.to_string());
        wrapped
    }
}

/// Copies the tree at `src` to `dst` (which must not exist) as `variant` says. Symlinks are
/// copied as symlinks and hard links as hard links; modes keep the owner bits.
pub fn copy_variant(src: &Path, dst: &Path, variant: &Variant) {
    let mut rng = variant.mtime_seed | 1;
    let mut links = std::collections::HashMap::new();
    fs::create_dir(dst).unwrap_or_else(|e| panic!("cannot create {}: {e}", dst.display()));
    copy_dir(src, dst, variant, &mut rng, &mut links);
    set_mode_and_time(dst, &fs::metadata(src).expect("stat"), variant, &mut rng);
}

fn copy_dir(
    src: &Path,
    dst: &Path,
    variant: &Variant,
    rng: &mut u64,
    links: &mut std::collections::HashMap<(u64, u64), std::path::PathBuf>,
) {
    let mut names: Vec<_> = fs::read_dir(src)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", src.display()))
        .map(|entry| entry.expect("dir entry").file_name())
        .collect();
    names.sort();
    if variant.reverse_order {
        names.reverse();
    }
    for name in names {
        copy_one(&src.join(&name), &dst.join(&name), variant, rng, links);
    }
}

fn copy_one(
    from: &Path,
    to: &Path,
    variant: &Variant,
    rng: &mut u64,
    links: &mut std::collections::HashMap<(u64, u64), std::path::PathBuf>,
) {
    let meta = fs::symlink_metadata(from).expect("lstat");
    let kind = meta.file_type();
    if kind.is_symlink() {
        symlink(fs::read_link(from).expect("readlink"), to).expect("symlink");
        return;
    }
    if kind.is_dir() {
        fs::create_dir(to).expect("mkdir");
        copy_dir(from, to, variant, rng, links);
        set_mode_and_time(to, &meta, variant, rng);
        return;
    }
    assert!(
        kind.is_file(),
        "copy_variant copies files, directories and symlinks: {}",
        from.display()
    );
    if meta.nlink() > 1 {
        if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
            fs::hard_link(first, to).expect("hard link");
            return;
        }
        links.insert((meta.dev(), meta.ino()), to.to_path_buf());
    }
    fs::copy(from, to).expect("copy");
    set_mode_and_time(to, &meta, variant, rng);
}

fn set_mode_and_time(path: &Path, source: &fs::Metadata, variant: &Variant, rng: &mut u64) {
    let mode = (source.mode() & 0o7777) ^ variant.flip_bits;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
    // xorshift64: a different, repeatable time for every file, anywhere in 1990..2020.
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    let secs = 631_152_000 + *rng % 946_684_800;
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    let times = FileTimes::new().set_modified(time).set_accessed(time);
    let file = File::open(path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    file.set_times(times).expect("set mtime");
}
