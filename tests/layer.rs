//! The deterministic layer pipeline through the library (`repave::layer`), each rule of
//! DESIGN.md's "Determinism rules" checked with a foreign reader where it matters: GNU tar
//! and Python's tarfile read the layers back.

mod common;

use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use repave::digest::Digest;
use repave::layer::batch::{write_layers, LayerInput};
use repave::layer::source::{collect, Collected, Rules};
use repave::layer::{write_layer, Entry, EntryKind, LayerBlob};

const EPOCH: u64 = repave::epoch::DEFAULT_EPOCH;

/// Writes `entries` as a layer file in `dir`.
fn layer(dir: &Path, entries: Vec<Entry>) -> (PathBuf, LayerBlob) {
    let file = dir.join("layer.tar.gz");
    let blob = write_layer(entries, EPOCH, &file).expect("write layer");
    (file, blob)
}

/// Collects `dir` under `workspace` with the default rules.
fn collect_app(dir: &Path) -> Collected {
    collect(dir, b"workspace", &Rules::default()).expect("collect")
}

fn names(members: &[TarMember]) -> Vec<String> {
    members
        .iter()
        .map(|m| String::from_utf8_lossy(&m.name).into_owned())
        .collect()
}

fn entry_paths(collected: &Collected) -> Vec<String> {
    collected
        .entries
        .iter()
        .map(|e| String::from_utf8_lossy(&e.path).into_owned())
        .collect()
}

fn member<'a>(members: &'a [TarMember], name: &str) -> &'a TarMember {
    members
        .iter()
        .find(|m| m.name == name.as_bytes())
        .unwrap_or_else(|| panic!("no member {name} in {:?}", names(members)))
}

/// The uncompressed tar stream of a layer file.
fn tar_bytes(file: &Path) -> Vec<u8> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(fs::File::open(file).expect("open layer"))
        .read_to_end(&mut tar)
        .expect("gunzip");
    tar
}

fn gnu_tar_text(file: &Path) -> Vec<String> {
    gnu_tar_list(file)
        .iter()
        .map(|line| String::from_utf8_lossy(line).into_owned())
        .collect()
}

/// The blob's digest and size are those of the file, its diff_id that of the tar inside.
fn assert_digests_match_bytes(file: &Path, blob: &LayerBlob) {
    let compressed = fs::read(file).expect("read layer");
    assert_eq!(Digest::of(&compressed), blob.digest);
    assert_eq!(compressed.len() as u64, blob.size);
    assert_eq!(Digest::of(&tar_bytes(file)), blob.diff_id);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// A change of any digest pinned below means the compression backend or level, or the
// tar encoding, changed: every image built before gets new digests. That must be a
// deliberate decision, noted in CHANGELOG.md, with the new values pinned here.

#[test]
fn golden_layer_from_entries_has_pinned_digests() {
    let temp = tempfile::tempdir().expect("temp dir");
    let entries = vec![
        Entry::file("app/hello.txt", "hello, world\n", 0o644),
        Entry::file("app/bin/run", "#!/bin/sh\nexec echo hi\n", 0o755),
        Entry::symlink("app/current", "bin/run"),
        Entry::file(format!("app/{}", "n".repeat(120)), "long\n", 0o644),
        Entry {
            path: b"tmp".to_vec(),
            kind: EntryKind::Directory,
            mode: 0o1777,
            uid: 0,
            gid: 0,
        },
    ];
    let (file, blob) = layer(temp.path(), entries);
    let long = format!("app/{}", "n".repeat(120));
    assert_eq!(
        gnu_tar_text(&file),
        [
            "drwxr-xr-x 0/0               0 1980-01-01 00:00 app/",
            "drwxr-xr-x 0/0               0 1980-01-01 00:00 app/bin/",
            "-rwxr-xr-x 0/0              23 1980-01-01 00:00 app/bin/run",
            "lrwxrwxrwx 0/0               0 1980-01-01 00:00 app/current -> bin/run",
            "-rw-r--r-- 0/0              13 1980-01-01 00:00 app/hello.txt",
            &format!("-rw-r--r-- 0/0               5 1980-01-01 00:00 {long}"),
            "drwxrwxrwt 0/0               0 1980-01-01 00:00 tmp/",
        ]
    );
    assert_eq!(
        blob.digest.to_string(),
        "sha256:1cc504440d2a9966df07de8012bfee4720877123fbf991e1e9d43a9b59bf6722"
    );
    assert_eq!(
        blob.diff_id.to_string(),
        "sha256:7f68c739d5702562b6c53b3b33c88473f65077f1653b27bc135e7ac338e3c343"
    );
    assert_digests_match_bytes(&file, &blob);
}

#[test]
fn golden_layer_from_a_directory_has_pinned_digests() {
    let temp = tempfile::tempdir().expect("temp dir");
    let app = temp.path().join("app");
    write_file(&app.join("main.py"), "print('hello')\n", 0o664);
    write_file(
        &app.join("bin/start"),
        "#!/bin/sh\nexec python3 main.py\n",
        0o775,
    );
    write_file(
        &app.join("static/site.css"),
        &"body { color: #333 }\n".repeat(300),
        0o600,
    );
    write_file(&app.join(".env"), "SECRET=1\n", 0o600);
    fs::hard_link(app.join("main.py"), app.join("static/main-copy.py")).expect("link");
    symlink("static/site.css", app.join("site.css")).expect("symlink");

    let collected = collect_app(&app);
    let (file, blob) = layer(temp.path(), collected.entries);
    assert_eq!(collected.excluded, [".env"]);
    assert_eq!(
        gnu_tar_text(&file),
        [
            "drwxr-xr-x 0/0               0 1980-01-01 00:00 workspace/",
            "drwxr-xr-x 0/0               0 1980-01-01 00:00 workspace/bin/",
            "-rwxr-xr-x 0/0              31 1980-01-01 00:00 workspace/bin/start",
            "-rw-r--r-- 0/0              15 1980-01-01 00:00 workspace/main.py",
            "lrwxrwxrwx 0/0               0 1980-01-01 00:00 workspace/site.css -> static/site.css",
            "drwxr-xr-x 0/0               0 1980-01-01 00:00 workspace/static/",
            "hrw-r--r-- 0/0               0 1980-01-01 00:00 workspace/static/main-copy.py link to workspace/main.py",
            "-rw-r--r-- 0/0            6300 1980-01-01 00:00 workspace/static/site.css",
        ]
    );
    assert_eq!(
        blob.digest.to_string(),
        "sha256:8e0bb6268a555f9df7bce333d73e8d06506ad8642e5d273932870422bdb1e420"
    );
    assert_eq!(
        blob.diff_id.to_string(),
        "sha256:7498f48382c262d72be1c0f37f8d25c90b703d3a349b58c3b9ecf3bfefbec91c"
    );
    assert_digests_match_bytes(&file, &blob);
}

#[test]
fn long_names_and_link_targets_use_pax_and_read_back_whole() {
    let temp = tempfile::tempdir().expect("temp dir");
    // Fits ustar only split into prefix and name; a 120-byte component cannot be split;
    // over 255 bytes fits nowhere in ustar.
    let split = format!("{}/{}", "d".repeat(90), "f".repeat(60));
    let component = format!("app/{}", "c".repeat(120));
    let huge = format!(
        "{}/{}/{}",
        "x".repeat(100),
        "y".repeat(100),
        "z".repeat(100)
    );
    let target = format!("../{}", "t".repeat(150));
    let entries = vec![
        Entry::file(split.clone(), "split", 0o644),
        Entry::file(component.clone(), "component", 0o644),
        Entry::file(huge.clone(), "huge", 0o644),
        Entry::symlink("app/far", target.clone()),
    ];
    let (file, _) = layer(temp.path(), entries);

    let members = python_tar_members(&file);
    assert_eq!(member(&members, &split).content, b"split");
    assert!(!member(&members, &split).pax.contains(&"path".to_owned()));
    for (name, content) in [(&component, "component"), (&huge, "huge")] {
        let found = member(&members, name);
        assert_eq!(found.content, content.as_bytes());
        assert_eq!(found.pax, ["path"], "{name}");
    }
    assert_eq!(member(&members, "app/far").linkname, target.as_bytes());

    let listing = gnu_tar_text(&file);
    for name in [&split, &component, &huge] {
        assert!(
            listing.iter().any(|l| l.ends_with(&format!(" {name}"))),
            "{name}: {listing:#?}"
        );
    }
    let far = format!(" app/far -> {target}");
    assert!(listing.iter().any(|l| l.ends_with(&far)), "{listing:#?}");
}

#[test]
fn unicode_and_non_utf8_names_keep_their_bytes() {
    let temp = tempfile::tempdir().expect("temp dir");
    let app = temp.path().join("app");
    let latin1 = b"caf\xe9-\xff.txt".as_slice();
    let unicode = "naïve-日本.txt";
    fs::create_dir(&app).expect("mkdir");
    fs::write(app.join(std::ffi::OsStr::from_bytes(latin1)), "latin1").expect("write");
    fs::write(app.join(unicode), "unicode").expect("write");

    let (file, _) = layer(temp.path(), collect_app(&app).entries);
    let mut latin1_path = b"workspace/".to_vec();
    latin1_path.extend_from_slice(latin1);
    let unicode_path = format!("workspace/{unicode}");

    let members = python_tar_members(&file);
    let raw = members
        .iter()
        .find(|m| m.name == latin1_path)
        .unwrap_or_else(|| panic!("no member with the raw name in {:?}", names(&members)));
    assert_eq!(raw.content, b"latin1");
    assert_eq!(raw.pax, ["hdrcharset", "path"]);
    let utf8 = member(&members, &unicode_path);
    assert_eq!(utf8.content, b"unicode");
    assert!(
        utf8.pax.is_empty(),
        "a short UTF-8 name fits ustar: {:?}",
        utf8.pax
    );
    assert!(contains(&tar_bytes(&file), b"hdrcharset=BINARY\n"));

    let listing = gnu_tar_list(&file);
    for name in [latin1_path.as_slice(), unicode_path.as_bytes()] {
        assert!(
            listing.iter().any(|line| line.ends_with(name)),
            "GNU tar lists {:?}",
            String::from_utf8_lossy(name)
        );
    }
}

#[test]
fn symlinks_are_stored_as_links_and_never_followed() {
    let temp = tempfile::tempdir().expect("temp dir");
    let outside = temp.path().join("outside");
    fs::create_dir(&outside).expect("mkdir");
    fs::write(outside.join("secret.txt"), "secret").expect("write");
    // Following the link would hit this FIFO: collect would refuse it or hang reading it.
    rustix::fs::mknodat(
        rustix::fs::CWD,
        outside.join("pipe"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from(0o644),
        0,
    )
    .expect("mkfifo");
    let app = temp.path().join("app");
    write_file(&app.join("index.html"), "hi", 0o644);
    symlink(&outside, app.join("absolute")).expect("symlink");
    symlink("../outside", app.join("relative")).expect("symlink");
    symlink("index.html", app.join("home.html")).expect("symlink");

    let collected = collect_app(&app);
    assert_eq!(
        entry_paths(&collected),
        [
            "workspace",
            "workspace/absolute",
            "workspace/home.html",
            "workspace/index.html",
            "workspace/relative"
        ]
    );
    let (file, _) = layer(temp.path(), collected.entries);
    let members = python_tar_members(&file);
    let absolute = member(&members, "workspace/absolute");
    assert_eq!(absolute.kind, "symlink");
    assert_eq!(absolute.linkname, outside.as_os_str().as_bytes());
    assert_eq!(
        member(&members, "workspace/relative").linkname,
        b"../outside"
    );
    assert_eq!(
        member(&members, "workspace/home.html").linkname,
        b"index.html"
    );
    assert!(!contains(&tar_bytes(&file), b"secret"));
}

#[test]
fn hard_links_are_one_file_and_link_entries_that_gnu_tar_extracts_as_links() {
    let temp = tempfile::tempdir().expect("temp dir");
    let app = temp.path().join("app");
    // The link made first sorts last: the content goes with the first path in order.
    write_file(&app.join("z/original.txt"), "shared content", 0o644);
    fs::create_dir(app.join("m")).expect("mkdir");
    fs::hard_link(app.join("z/original.txt"), app.join("a.txt")).expect("link");
    fs::hard_link(app.join("z/original.txt"), app.join("m/b.txt")).expect("link");

    let (file, _) = layer(temp.path(), collect_app(&app).entries);
    let members = python_tar_members(&file);
    let first = member(&members, "workspace/a.txt");
    assert_eq!(
        (first.kind.as_str(), first.content.as_slice()),
        ("file", b"shared content".as_slice())
    );
    for link in ["workspace/m/b.txt", "workspace/z/original.txt"] {
        let found = member(&members, link);
        assert_eq!(found.kind, "hardlink", "{link}");
        assert_eq!(found.linkname, b"workspace/a.txt");
        assert_eq!(found.size, 0);
    }
    let tar = tar_bytes(&file);
    let copies = tar.windows(14).filter(|w| w == b"shared content").count();
    assert_eq!(copies, 1, "the content is stored once");

    let out = temp.path().join("out");
    fs::create_dir(&out).expect("mkdir");
    gnu_tar_extract(&file, &out);
    let inode = |p: &str| fs::metadata(out.join(p)).expect("extracted").ino();
    assert_eq!(inode("workspace/a.txt"), inode("workspace/m/b.txt"));
    assert_eq!(inode("workspace/a.txt"), inode("workspace/z/original.txt"));
    assert_eq!(
        fs::metadata(out.join("workspace/a.txt"))
            .expect("stat")
            .nlink(),
        3
    );
}

#[test]
fn special_bits_are_dropped_for_app_content_and_kept_for_explicit_entries() {
    let temp = tempfile::tempdir().expect("temp dir");
    let app = temp.path().join("app");
    write_file(&app.join("setuid"), "x", 0o4755);
    write_file(&app.join("setgid"), "x", 0o2640);
    write_file(&app.join("group-exec"), "x", 0o654);
    write_file(&app.join("shared/file"), "x", 0o666);
    fs::set_permissions(app.join("shared"), fs::Permissions::from_mode(0o1777)).expect("chmod");
    let mut entries = collect_app(&app).entries;
    entries.push(Entry::file("usr/bin/passwd", "x", 0o4755));
    entries.push(Entry {
        path: b"tmp".to_vec(),
        kind: EntryKind::Directory,
        mode: 0o1777,
        uid: 0,
        gid: 0,
    });
    let (file, _) = layer(temp.path(), entries);

    let members = python_tar_members(&file);
    let mode = |name: &str| member(&members, name).mode;
    assert_eq!(mode("workspace/setuid"), 0o755);
    assert_eq!(mode("workspace/setgid"), 0o644);
    assert_eq!(
        mode("workspace/group-exec"),
        0o644,
        "only the owner's x bit counts"
    );
    assert_eq!(mode("workspace/shared"), 0o755);
    assert_eq!(mode("workspace/shared/file"), 0o644);
    assert_eq!(mode("usr/bin/passwd"), 0o4755);
    assert_eq!(mode("tmp"), 0o1777);
    let listing = gnu_tar_text(&file).join("\n");
    assert!(listing.contains("-rwsr-xr-x 0/0"), "{listing}");
    assert!(listing.contains("drwxrwxrwt 0/0"), "{listing}");
}

fn mknod(path: &Path, kind: rustix::fs::FileType, dev: rustix::fs::Dev) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        kind,
        rustix::fs::Mode::from(0o600),
        dev,
    )
    .unwrap_or_else(|e| {
        panic!(
            "cannot mknod {}: {e} (the tests run as root)",
            path.display()
        )
    });
}

#[test]
fn a_fifo_is_refused_by_name_and_never_opened() {
    let temp = tempfile::tempdir().expect("temp dir");
    let app = temp.path().join("app");
    write_file(&app.join("main.py"), "x", 0o644);
    let fifo = app.join("logs/pipe");
    fs::create_dir_all(fifo.parent().expect("parent")).expect("mkdir");
    mknod(&fifo, rustix::fs::FileType::Fifo, 0);

    // Opening a FIFO for reading blocks until a writer comes: run the pipeline on a
    // thread so that a regression fails here instead of hanging the suite.
    let (sender, receiver) = mpsc::channel();
    let dir = app.clone();
    let work = temp.path().to_path_buf();
    std::thread::spawn(move || {
        let input = LayerInput::Dir {
            dir,
            prefix: "workspace".to_owned(),
            rules: Rules::default(),
        };
        let _ = sender.send(write_layers(vec![input], EPOCH, &work, None).map(|_| ()));
    });
    let result = match receiver.recv_timeout(Duration::from_secs(20)) {
        Ok(result) => result,
        Err(_) => {
            // Let the blocked reader go before failing.
            let _ = fs::OpenOptions::new().write(true).open(&fifo);
            panic!("collecting a directory with a FIFO opened it and blocked");
        }
    };
    let message = result.expect_err("a FIFO is refused").to_string();
    assert!(message.contains(&fifo.display().to_string()), "{message}");
    assert!(message.contains("FIFO"), "{message}");

    // No reader holds it open: a non-blocking writer finds nobody on the other end.
    let open = rustix::fs::open(
        &fifo,
        rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::NONBLOCK,
        rustix::fs::Mode::empty(),
    );
    assert_eq!(open.err(), Some(rustix::io::Errno::NXIO));
}

#[test]
fn devices_are_refused_by_name() {
    for (kind, dev, word) in [
        (
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::makedev(1, 3),
            "character device",
        ),
        (
            rustix::fs::FileType::BlockDevice,
            rustix::fs::makedev(7, 0),
            "block device",
        ),
    ] {
        let temp = tempfile::tempdir().expect("temp dir");
        let app = temp.path().join("app");
        write_file(&app.join("main.py"), "x", 0o644);
        let node = app.join("node");
        mknod(&node, kind, dev);
        let message = collect(&app, b"workspace", &Rules::default())
            .expect_err("a device is refused")
            .to_string();
        assert!(message.contains(&node.display().to_string()), "{message}");
        assert!(message.contains(word), "{message}");
    }
}

#[test]
fn sockets_are_skipped_and_reported() {
    let temp = tempfile::tempdir().expect("temp dir");
    let app = temp.path().join("app");
    write_file(&app.join("main.py"), "x", 0o644);
    let _listener = std::os::unix::net::UnixListener::bind(app.join("app.sock")).expect("bind");

    let collected = collect_app(&app);
    assert_eq!(collected.skipped, ["app.sock"]);
    assert_eq!(entry_paths(&collected), ["workspace", "workspace/main.py"]);
}

#[test]
fn default_exclusions_leave_out_vcs_data_dotenv_files_and_private_keys() {
    let temp = tempfile::tempdir().expect("temp dir");
    let app = temp.path().join("app");
    for path in [
        ".git/HEAD",
        ".git/objects/ab/cdef",
        ".env",
        ".env.local",
        ".env.example",
        "id_rsa",
        "id_rsa.pub",
        "keys/id_ed25519",
        "keys/id_ed25519.pub",
        "sub/.env",
        "app.py",
    ] {
        write_file(&app.join(path), "x", 0o644);
    }

    let collected = collect_app(&app);
    assert_eq!(
        collected.excluded,
        [
            ".env",
            ".env.local",
            ".git",
            "id_rsa",
            "keys/id_ed25519",
            "sub/.env"
        ]
    );
    let (file, _) = layer(temp.path(), collected.entries);
    assert_eq!(
        names(&python_tar_members(&file)),
        [
            "workspace",
            "workspace/.env.example",
            "workspace/app.py",
            "workspace/id_rsa.pub",
            "workspace/keys",
            "workspace/keys/id_ed25519.pub",
            "workspace/sub",
        ]
    );
}

fn rules_fixture(app: &Path) {
    for path in [
        "project.toml",
        "src/main.py",
        "src/cache/x.pyc",
        "docs/guide.md",
        "build/out.bin",
        "notes.log",
        "keep.log",
    ] {
        write_file(&app.join(path), "x", 0o644);
    }
    fs::create_dir_all(app.join("empty")).expect("mkdir");
}

#[test]
fn project_exclude_rules_use_gitignore_syntax() {
    let temp = tempfile::tempdir().expect("temp dir");
    let app = temp.path().join("app");
    rules_fixture(&app);
    let rules = Rules {
        include: Vec::new(),
        exclude: ["*.log", "!keep.log", "build/", "*.pyc"]
            .map(str::to_owned)
            .to_vec(),
        origin: PathBuf::from("project.toml"),
    };
    let collected = collect(&app, b"workspace", &rules).expect("collect");
    assert_eq!(
        collected.excluded,
        ["build", "notes.log", "src/cache/x.pyc"]
    );
    assert_eq!(
        entry_paths(&collected),
        [
            "workspace",
            "workspace/docs",
            "workspace/docs/guide.md",
            "workspace/empty",
            "workspace/keep.log",
            "workspace/project.toml",
            "workspace/src",
            "workspace/src/cache",
            "workspace/src/main.py",
        ]
    );
}

#[test]
fn project_include_rules_take_only_matching_paths() {
    let temp = tempfile::tempdir().expect("temp dir");
    let app = temp.path().join("app");
    rules_fixture(&app);
    let rules = Rules {
        include: ["src/", "*.toml", "*.md"].map(str::to_owned).to_vec(),
        exclude: vec!["*.pyc".to_owned()],
        origin: PathBuf::from("project.toml"),
    };
    let collected = collect(&app, b"workspace", &rules).expect("collect");
    assert_eq!(collected.excluded, ["src/cache/x.pyc"]);
    let (file, _) = layer(temp.path(), collected.entries);
    assert_eq!(
        names(&python_tar_members(&file)),
        [
            "workspace",
            "workspace/docs",
            "workspace/docs/guide.md",
            "workspace/project.toml",
            "workspace/src",
            "workspace/src/cache",
            "workspace/src/main.py",
        ]
    );
}

#[test]
fn a_bad_pattern_is_reported_with_its_file() {
    let temp = tempfile::tempdir().expect("temp dir");
    let rules = Rules {
        include: Vec::new(),
        exclude: vec!["src/[z-a]".to_owned()],
        origin: PathBuf::from("/srv/app/project.toml"),
    };
    let message = collect(temp.path(), b"workspace", &rules)
        .expect_err("a reversed range is refused")
        .to_string();
    assert!(message.contains("/srv/app/project.toml"), "{message}");
    assert!(message.contains("src/[z-a]"), "{message}");
}

#[test]
fn every_entry_gets_the_epoch_and_root_with_empty_names() {
    let temp = tempfile::tempdir().expect("temp dir");
    let app = temp.path().join("app");
    write_file(&app.join("a/b.txt"), "x", 0o644);
    write_file(&app.join("c.sh"), "x", 0o755);
    symlink("c.sh", app.join("d")).expect("symlink");
    let long = format!("{}.txt", "l".repeat(200));
    write_file(&app.join(&long), "x", 0o644);
    for path in ["a/b.txt", "c.sh", "a", &long] {
        std::os::unix::fs::chown(app.join(path), Some(1000), Some(1000)).expect("chown");
        let file = fs::File::open(app.join(path)).expect("open");
        file.set_modified(std::time::SystemTime::now())
            .expect("touch");
    }
    let epoch = 1_700_000_000;
    let file = temp.path().join("layer.tar.gz");
    write_layer(collect_app(&app).entries, epoch, &file).expect("write");

    let members = python_tar_members(&file);
    assert_eq!(members.len(), 6);
    for m in &members {
        let name = String::from_utf8_lossy(&m.name);
        assert_eq!((m.mtime, m.uid, m.gid), (epoch, 0, 0), "{name}");
        assert_eq!((m.uname.as_str(), m.gname.as_str()), ("", ""), "{name}");
        assert!(
            !m.pax.iter().any(|k| k.contains("time")),
            "{name}: {:?}",
            m.pax
        );
    }
    for line in gnu_tar_text(&file) {
        assert!(
            line.contains(" 0/0 ") && line.contains(" 2023-11-14 22:13 "),
            "{line}"
        );
    }
    // gzip header: mtime 0 and OS byte 255, whatever the host.
    let gz = fs::read(&file).expect("read layer");
    assert_eq!(&gz[4..8], &[0, 0, 0, 0]);
    assert_eq!(gz[9], 255);
}

#[test]
fn entries_are_sorted_with_each_parent_once() {
    let temp = tempfile::tempdir().expect("temp dir");
    let entries = vec![
        Entry::file("b/z", "z", 0o644),
        Entry::file("a/c/e", "e", 0o644),
        Entry::symlink("c", "a"),
        Entry::file("a-b", "ab", 0o644),
        Entry {
            path: b"a".to_vec(),
            kind: EntryKind::Directory,
            mode: 0o700,
            uid: 0,
            gid: 0,
        },
        Entry::file("a/c/d", "d", 0o644),
    ];
    let (file, _) = layer(temp.path(), entries);
    let members = python_tar_members(&file);
    assert_eq!(
        names(&members),
        ["a", "a-b", "a/c", "a/c/d", "a/c/e", "b", "b/z", "c"]
    );
    assert_eq!(
        member(&members, "a").mode,
        0o700,
        "an explicit parent is kept as given"
    );
    assert_eq!(member(&members, "a/c").mode, 0o755);

    let duplicate = vec![Entry::file("x", "1", 0o644), Entry::file("x", "2", 0o644)];
    let err = write_layer(duplicate, EPOCH, &temp.path().join("dup.tar.gz")).expect_err("dup");
    assert!(err.to_string().contains("`x`"), "{err}");
    let clash = vec![Entry::file("x", "1", 0o644), Entry::file("x/y", "2", 0o644)];
    let err = write_layer(clash, EPOCH, &temp.path().join("clash.tar.gz")).expect_err("clash");
    assert!(err.to_string().contains("`x`"), "{err}");
}

#[test]
fn a_file_that_changes_or_vanishes_fails_the_write_and_leaves_no_layer() {
    let temp = tempfile::tempdir().expect("temp dir");
    let app = temp.path().join("app");
    write_file(&app.join("a.txt"), "a", 0o644);
    write_file(&app.join("grows.log"), "12345", 0o644);
    write_file(&app.join("z.txt"), "z", 0o644);
    let entries = collect_app(&app).entries;
    let dest = temp.path().join("layer.tar.gz");

    // Written to after it was collected: the layer would be torn.
    fs::write(app.join("grows.log"), "1234567890").expect("write");
    let err = write_layer(entries.clone(), EPOCH, &dest).expect_err("changed size");
    assert!(
        err.to_string()
            .contains(&app.join("grows.log").display().to_string()),
        "{err}"
    );
    assert!(
        !dest.exists(),
        "no partial layer is left at {}",
        dest.display()
    );

    fs::write(app.join("grows.log"), "12345").expect("write");
    fs::remove_file(app.join("z.txt")).expect("remove");
    let err = write_layer(entries, EPOCH, &dest).expect_err("vanished");
    assert!(
        err.to_string()
            .contains(&app.join("z.txt").display().to_string()),
        "{err}"
    );
    assert!(
        !dest.exists(),
        "no partial layer is left at {}",
        dest.display()
    );
}
