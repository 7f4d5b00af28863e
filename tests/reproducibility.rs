//! Same inputs, same digests: layers written from copies of a tree that differ in file
//! creation order, mtimes, group/other bits and path, under another umask, time zone,
//! locale and rayon thread count, have equal digests. Each variant runs in a child process
//! (this test binary again) so that its environment is really its own.

mod common;

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use common::*;
use repave::layer::batch::{write_layers, LayerInput};
use repave::layer::source::Rules;
use repave::layer::Entry;

const EPOCH: u64 = repave::epoch::DEFAULT_EPOCH;

/// A tree with something of every kind the rules treat specially.
fn reproducibility_fixture(root: &Path) {
    write_file(&root.join("app.py"), "print('hi')\n", 0o644);
    write_file(&root.join("bin/start"), "#!/bin/sh\n", 0o755);
    write_file(&root.join(".git/HEAD"), "ref: refs/heads/main\n", 0o644);
    write_file(
        &root.join(format!("deep/{}", "n".repeat(180))),
        "long",
        0o644,
    );
    fs::write(
        root.join(std::ffi::OsStr::from_bytes(b"bin/\xfe\xff")),
        "raw",
    )
    .expect("write");
    fs::hard_link(root.join("app.py"), root.join("bin/app-link.py")).expect("link");
    symlink("../app.py", root.join("bin/app")).expect("symlink");
    fs::create_dir_all(root.join("empty/dir")).expect("mkdir");
    // Large enough for many deflate blocks.
    let mut state = 7u32;
    let data: Vec<u8> = (0..1 << 20)
        .map(|i| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            if i % 3 == 0 {
                b'a'
            } else {
                (state >> 24) as u8
            }
        })
        .collect();
    fs::write(root.join("data.bin"), data).expect("write");
}

const CHILD_DIR: &str = "REPAVE_TEST_LAYER_DIR";
const CHILD_OUT: &str = "REPAVE_TEST_LAYER_OUT";

/// When this process is a child started by [`digests_in_child`], writes the layers of
/// the directory it was given, records their digests and rayon's thread count, and
/// returns true.
fn act_as_child() -> bool {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return false;
    };
    let mut lines = vec![format!("threads={}", rayon::current_num_threads())];
    lines.extend(fixture_layer_digests(Path::new(&dir)));
    fs::write(
        std::env::var_os(CHILD_OUT).expect("output path"),
        lines.join("\n"),
    )
    .expect("write digests");
    true
}

/// Writes three layers in parallel from `dir` (two directory layers, one of entries) and
/// returns `digest diff_id size` of each.
fn fixture_layer_digests(dir: &Path) -> Vec<String> {
    let dir = dir.to_path_buf();
    let work = tempfile::tempdir().expect("work dir");
    let inputs = vec![
        LayerInput::Dir {
            dir: dir.clone(),
            prefix: "workspace".to_owned(),
            rules: Rules::default(),
        },
        LayerInput::Dir {
            dir: dir.join("bin"),
            prefix: "layers/bin".to_owned(),
            rules: Rules::default(),
        },
        LayerInput::Entries(vec![Entry::file("etc/app.conf", "port=8080\n", 0o644)]),
    ];
    let written = write_layers(inputs, EPOCH, work.path(), None).expect("write layers");
    written
        .iter()
        .map(|layer| {
            format!(
                "{} {} {}",
                layer.blob.digest, layer.blob.diff_id, layer.blob.size
            )
        })
        .collect()
}

/// Runs the test `test_name` of this binary again, in a child process under `variant`'s
/// umask, time zone, locale and thread count, to write the layers of `dir`.
fn digests_in_child(test_name: &str, dir: &Path, variant: &Variant) -> (String, Vec<String>) {
    let out = tempfile::NamedTempFile::new().expect("output file");
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command
        .args(["--exact", test_name, "--nocapture", "--test-threads", "1"])
        .env(CHILD_DIR, dir)
        .env(CHILD_OUT, out.path());
    run_ok(&mut variant.wrap(&command));
    let text = fs::read_to_string(out.path()).expect("the child wrote its digests");
    let mut lines = text.lines().map(str::to_owned);
    let threads = lines.next().unwrap_or_default();
    (threads, lines.collect())
}

#[test]
fn thread_count_does_not_change_digests() {
    if act_as_child() {
        return;
    }
    let temp = tempfile::tempdir().expect("temp dir");
    reproducibility_fixture(temp.path());
    let mut one = Variant::plain();
    one.threads = 1;
    let mut two = Variant::plain();
    two.threads = 2;
    let (threads_one, digests_one) =
        digests_in_child("thread_count_does_not_change_digests", temp.path(), &one);
    let (threads_two, digests_two) =
        digests_in_child("thread_count_does_not_change_digests", temp.path(), &two);
    assert_eq!(
        (threads_one.as_str(), threads_two.as_str()),
        ("threads=1", "threads=2")
    );
    assert_eq!(digests_one, fixture_layer_digests(temp.path()));
    assert_eq!(digests_one, digests_two);
}

#[test]
fn copies_that_differ_on_disk_give_the_same_digests() {
    if act_as_child() {
        return;
    }
    let temp = tempfile::tempdir().expect("temp dir");
    let fixture = temp.path().join("fixture");
    fs::create_dir(&fixture).expect("mkdir");
    reproducibility_fixture(&fixture);
    let plain_copy = temp.path().join("plain");
    let twisted_copy = temp.path().join("elsewhere/twisted");
    fs::create_dir(temp.path().join("elsewhere")).expect("mkdir");
    copy_variant(&fixture, &plain_copy, &Variant::plain());
    copy_variant(&fixture, &twisted_copy, &Variant::twisted());

    let name = "copies_that_differ_on_disk_give_the_same_digests";
    let (_, plain) = digests_in_child(name, &plain_copy, &Variant::plain());
    let (_, twisted) = digests_in_child(name, &twisted_copy, &Variant::twisted());
    assert_eq!(plain, fixture_layer_digests(&fixture));
    assert_eq!(plain, twisted);
}
