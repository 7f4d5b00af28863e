//! Detect and build of every fixture app with the built-in buildpacks, under bubblewrap
//! with the host's npm, pip, Go and lighttpd; then each app's default process runs in a
//! sandbox laid out like the image (host root as the base) and must answer GET /.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use super::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// Every path under `dir` with its size, to prove the build left the fixture alone.
fn snapshot(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut all: Vec<(PathBuf, u64)> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            (e.path().to_path_buf(), e.metadata().unwrap().len())
        })
        .collect();
    all.sort();
    all
}

fn context(
    cache_dir: PathBuf,
    base_packages: Vec<(String, String)>,
    base_has_sh: bool,
) -> BuildContext {
    BuildContext {
        base_packages,
        base_has_sh,
        target_os: "linux".into(),
        target_arch: "amd64".into(),
        target_distro_name: "debian".into(),
        target_distro_version: "12".into(),
        cache_dir,
        rules: Default::default(),
        output: None,
    }
}

/// The packages of a Debian 12 python base that the Python buildpack reads.
fn python_base() -> Vec<(String, String)> {
    vec![
        ("libc6".into(), "2.36-9+deb12u10".into()),
        ("python3.11".into(), "3.11.2-6+deb12u6".into()),
        ("python3.11-minimal".into(), "3.11.2-6+deb12u6".into()),
    ]
}

/// The packages a buildpack reads from the base `detect` chose for an app.
fn base_for(base: Option<&str>) -> Vec<(String, String)> {
    let mut packages = vec![("libc6".to_owned(), "2.36-9+deb12u10".to_owned())];
    match base {
        Some("python") => return python_base(),
        Some("nodejs") => packages.push(("nodejs".into(), "18.20.4+dfsg-1~deb12u1".into())),
        Some("site") => packages.push(("lighttpd".into(), "1.4.69-1".into())),
        _ => {}
    }
    packages
}

struct Built {
    detection: Detection,
    output: BuildOutput,
    cache: tempfile::TempDir,
}

fn detect_and_build(name: &str, base_has_sh: bool) -> Result<Built, BuildpackError> {
    let cache = tempfile::tempdir().unwrap();
    let dir = builtin_dir_in(cache.path()).unwrap();
    let buildpacks = load(std::slice::from_ref(&dir)).unwrap();
    let order = load_order(&dir.join("order.toml"), &buildpacks).unwrap();
    let app = fixture(name);
    let before = snapshot(&app);

    let detection = detect(&app, &order, &buildpacks)?;
    let packages = base_for(detection.base.as_deref());
    let ctx = context(cache.path().join("cache"), packages, base_has_sh);
    let output = build(&app, &detection, &ctx);
    assert_eq!(
        snapshot(&app),
        before,
        "the build changed the fixture directory"
    );
    Ok(Built {
        detection,
        output: output?,
        cache,
    })
}

fn ids(built: &Built) -> Vec<&str> {
    built
        .detection
        .group
        .iter()
        .map(|b| b.id.as_str())
        .collect()
}

fn default_command(built: &Built) -> Vec<&str> {
    let process = built.output.default().expect("a default process");
    process.command.iter().map(String::as_str).collect()
}

fn layer<'a>(built: &'a Built, image_path: &str) -> &'a LaunchLayer {
    built
        .output
        .layers
        .iter()
        .find(|l| l.image_path == image_path)
        .unwrap_or_else(|| panic!("no layer {image_path} in {:?}", built.output.layers))
}

/// Files under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .filter(|e| {
            let bytes = std::fs::read(e.path()).unwrap();
            bytes.windows(needle.len()).any(|w| w == needle)
        })
        .map(|e| e.path().to_path_buf())
        .collect()
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the default process the way the image would: app and layers at their image
/// paths, read-only, the launch env on a plain PATH, PORT set; returns the body of GET /.
fn serve_and_get(built: &Built) -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = vec![
        ("PATH".to_owned(), "/usr/local/bin:/usr/bin:/bin".to_owned()),
        ("PORT".to_owned(), port.to_string()),
    ];
    let env = built.output.launch_env(&base);
    let mut sandbox = super::sandbox::Sandbox::new(env).unwrap();
    sandbox.bind(&built.output.app_dir, "/workspace", false);
    for layer in &built.output.layers {
        sandbox.bind(&layer.dir, &format!("/{}", layer.image_path), false);
    }
    let argv: Vec<&str> = built
        .output
        .default()
        .unwrap()
        .command
        .iter()
        .map(String::as_str)
        .collect();
    let bwrap = super::sandbox::find_bwrap().unwrap();
    let mut cmd = sandbox.command(&bwrap, "/workspace", &argv);
    let _running = Running(cmd.spawn().expect("bwrap runs"));

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            stream
                .write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
                .unwrap();
            let mut response = String::new();
            if stream.read_to_string(&mut response).is_ok() && !response.is_empty() {
                let (head, body) = response.split_once("\r\n\r\n").unwrap();
                assert!(
                    head.starts_with("HTTP/1.") && head.contains(" 200 "),
                    "{head}"
                );
                return body.to_owned();
            }
        }
        assert!(
            Instant::now() < deadline,
            "the app did not answer on port {port}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn node_fixture_installs_production_dependencies_into_a_layer() {
    let built = detect_and_build("node", false).unwrap();
    assert_eq!(ids(&built), ["repave/nodejs"]);
    assert_eq!(built.detection.base.as_deref(), Some("nodejs"));
    let modules = layer(&built, "layers/repave_nodejs/modules");
    assert!(modules
        .dir
        .join("node_modules/express/package.json")
        .is_file());
    assert!(
        !modules.dir.join("node_modules/left-pad").exists(),
        "dev dependencies stay out"
    );
    assert!(!modules.dir.join("node_modules/.package-lock.json").exists());
    let link = fs_err::read_link(built.output.app_dir.join("node_modules")).unwrap();
    assert_eq!(
        link,
        Path::new("/layers/repave_nodejs/modules/node_modules")
    );
    assert_eq!(
        default_command(&built),
        ["/usr/bin/node", "/workspace/server.js"]
    );
    assert!(built
        .output
        .launch_env(&[])
        .contains(&("NODE_ENV".to_owned(), "production".to_owned())));
    assert_eq!(serve_and_get(&built), "hello from node\n");
}

#[test]
fn python_flask_fixture_gets_wheels_for_the_image_interpreter() {
    let built = detect_and_build("python-flask", false).unwrap();
    assert_eq!(ids(&built), ["repave/python", "repave/procfile"]);
    assert_eq!(built.detection.base.as_deref(), Some("python"));
    let packages = layer(&built, "layers/repave_python/packages");
    let gunicorn = fs_err::read_to_string(packages.dir.join("bin/gunicorn")).unwrap();
    assert_eq!(gunicorn.lines().next(), Some("#!/usr/bin/python3"));
    assert!(packages.dir.join("flask/__init__.py").is_file());

    let pyc: Vec<_> = walkdir::WalkDir::new(&packages.dir)
        .into_iter()
        .map(|e| e.unwrap().path().to_path_buf())
        .filter(|p| p.extension().is_some_and(|e| e == "pyc") || p.ends_with("__pycache__"))
        .collect();
    assert!(pyc.is_empty(), "byte code in the layer: {pyc:?}");
    let dist_info = fs_err::read_dir(&packages.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("gunicorn-") && n.ends_with(".dist-info"))
        .unwrap();
    let record = fs_err::read_to_string(packages.dir.join(dist_info).join("RECORD")).unwrap();
    assert!(
        record
            .lines()
            .any(|l| l.starts_with("bin/gunicorn,sha256=")),
        "{record}"
    );
    assert!(!record.contains("../"), "{record}");

    // Nothing may name the host directories the build ran in.
    for host in [built.cache.path(), built.output.app_dir.as_path()] {
        let needle = host.to_string_lossy().into_owned();
        let hits = files_containing(&packages.dir, needle.as_bytes());
        assert!(hits.is_empty(), "{needle} appears in {hits:?}");
    }

    assert_eq!(default_command(&built), ["gunicorn", "app:app"]);
    let env = built
        .output
        .launch_env(&[("PATH".into(), "/usr/bin".into())]);
    assert!(env.contains(&(
        "PATH".to_owned(),
        "/layers/repave_python/packages/bin:/usr/bin".to_owned()
    )));
    assert!(env.contains(&(
        "PYTHONPATH".to_owned(),
        "/layers/repave_python/packages".to_owned()
    )));
    assert_eq!(serve_and_get(&built), "hello from flask\n");
}

#[test]
fn python_plain_fixture_needs_no_layer() {
    let built = detect_and_build("python-plain", false).unwrap();
    assert_eq!(ids(&built), ["repave/python"]);
    assert!(built.output.layers.is_empty(), "{:?}", built.output.layers);
    assert_eq!(
        default_command(&built),
        ["/usr/bin/python3", "/workspace/app.py"]
    );
    assert_eq!(serve_and_get(&built), "hello from python\n");
}

#[test]
fn go_fixture_builds_a_static_binary() {
    let built = detect_and_build("go", false).unwrap();
    assert_eq!(ids(&built), ["repave/go"]);
    assert_eq!(built.detection.base.as_deref(), Some("static"));
    let app = layer(&built, "layers/repave_go/app");
    let binary = app.dir.join("bin/hello");
    let bytes = fs_err::read(&binary).unwrap();
    assert!(bytes.starts_with(b"\x7fELF"));
    assert!(
        !bytes.windows(7).any(|w| w == b".interp"),
        "a static binary has no interpreter"
    );
    assert_eq!(default_command(&built), ["/layers/repave_go/app/bin/hello"]);
    // The build cache is kept for the next build, and is not a launch layer.
    assert!(built
        .cache
        .path()
        .join("cache/layers/repave_go/cache")
        .is_dir());
    assert_eq!(built.output.layers.len(), 1);
    assert_eq!(serve_and_get(&built), "hello from go\n");
}

#[test]
fn static_fixture_is_served_by_lighttpd_on_port() {
    let built = detect_and_build("static", false).unwrap();
    assert_eq!(ids(&built), ["repave/static-site"]);
    assert_eq!(built.detection.base.as_deref(), Some("site"));
    let config = layer(&built, "layers/repave_static-site/config");
    let conf = fs_err::read_to_string(config.dir.join("lighttpd.conf")).unwrap();
    assert!(conf.contains("server.port = env.PORT"));
    assert!(conf.contains("\"/workspace/public\""));
    assert!(conf.contains("mimetype.assign"));
    assert!(!conf.contains("pid-file"));
    let body = serve_and_get(&built);
    assert_eq!(
        body,
        fs_err::read_to_string(fixture("static/public/index.html")).unwrap()
    );
}

#[test]
fn procfile_fixture_overrides_the_language_web_process() {
    let built = detect_and_build("procfile", false).unwrap();
    assert_eq!(ids(&built), ["repave/python", "repave/procfile"]);
    assert_eq!(
        default_command(&built),
        ["python3", "app.py", "--greeting", "hello from the procfile"]
    );
    let once = built
        .output
        .processes
        .iter()
        .find(|p| p.r#type == "once")
        .unwrap();
    assert_eq!(once.command, ["python3", "-c", "print('one-off task')"]);
    assert!(!once.default);
    assert_eq!(built.output.processes.len(), 2, "python's web was replaced");
    assert_eq!(serve_and_get(&built), "hello from the procfile\n");
}

/// A copy of a fixture with another Procfile.
fn with_procfile(fixture_name: &str, procfile: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    fs_err::create_dir(&app).unwrap();
    for entry in fs_err::read_dir(fixture(fixture_name)).unwrap() {
        let entry = entry.unwrap();
        fs_err::copy(entry.path(), app.join(entry.file_name())).unwrap();
    }
    fs_err::write(app.join("Procfile"), procfile).unwrap();
    (dir, app)
}

fn build_dir(app: &Path, base_has_sh: bool) -> Result<BuildOutput, BuildpackError> {
    let cache = tempfile::tempdir().unwrap();
    let dir = builtin_dir_in(cache.path()).unwrap();
    let buildpacks = load(std::slice::from_ref(&dir)).unwrap();
    let order = load_order(&dir.join("order.toml"), &buildpacks).unwrap();
    let detection = detect(app, &order, &buildpacks)?;
    let ctx = context(cache.path().join("cache"), vec![], base_has_sh);
    build(app, &detection, &ctx)
}

#[test]
fn procfile_command_needing_a_shell_fails_without_sh_and_runs_under_sh_with_it() {
    let (_dir, app) = with_procfile("python-plain", "web: python3 app.py | tee /tmp/log\n");
    let err = build_dir(&app, false).unwrap_err().to_string();
    assert!(err.contains("repave/procfile"), "{err}");
    assert!(err.contains("needs a shell"), "{err}");
    assert!(err.contains("`|`"), "{err}");

    let built = build_dir(&app, true).unwrap();
    let web = built.default().unwrap();
    assert_eq!(
        web.command,
        ["/bin/sh", "-c", "python3 app.py | tee /tmp/log"]
    );
}

#[test]
fn detect_explains_why_nothing_applies() {
    let dir = tempfile::tempdir().unwrap();
    fs_err::write(dir.path().join("README"), "nothing to build").unwrap();
    let err = build_dir(dir.path(), false).unwrap_err().to_string();
    assert!(err.contains("no buildpack group applies"), "{err}");
    assert!(
        err.contains("repave/nodejs: fail: no package.json"),
        "{err}"
    );
}

#[test]
fn sdist_only_requirement_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    // An sdist-only project on PyPI: pip cannot use it as a wheel.
    fs_err::write(dir.path().join("requirements.txt"), "pycparser==2.14\n").unwrap();
    fs_err::write(dir.path().join("app.py"), "print('hi')\n").unwrap();
    let cache = tempfile::tempdir().unwrap();
    let bpdir = builtin_dir_in(cache.path()).unwrap();
    let buildpacks = load(std::slice::from_ref(&bpdir)).unwrap();
    let order = load_order(&bpdir.join("order.toml"), &buildpacks).unwrap();
    let detection = detect(dir.path(), &order, &buildpacks).unwrap();
    let ctx = context(cache.path().join("cache"), python_base(), false);
    let err = build(dir.path(), &detection, &ctx).unwrap_err().to_string();
    assert!(
        err.contains("build of buildpack `repave/python` failed"),
        "{err}"
    );
    assert!(err.contains("only a source distribution"), "{err}");
    assert!(err.contains("`pycparser==2.14`"), "{err}");
}

/// The diff_id of every layer the build produced (launch layers and the app), as the
/// exporter would write them.
fn layer_digests(output: &BuildOutput) -> Vec<(String, String)> {
    use crate::layer::source::{collect, Rules};
    let tmp = tempfile::tempdir().unwrap();
    let mut dirs: Vec<(String, PathBuf)> = output
        .layers
        .iter()
        .map(|l| (l.image_path.clone(), l.dir.clone()))
        .collect();
    dirs.push(("workspace".to_owned(), output.app_dir.clone()));
    dirs.into_iter()
        .map(|(prefix, dir)| {
            let collected = collect(&dir, prefix.as_bytes(), &Rules::default()).unwrap();
            let blob =
                crate::layer::write_layer(collected.entries, 315_532_801, &tmp.path().join("l"))
                    .unwrap();
            (prefix, blob.diff_id.to_string())
        })
        .collect()
}

#[test]
fn equal_inputs_give_equal_layers() {
    // Two independent builds (separate caches and scratch directories) of the same apps.
    for name in ["node", "python-flask"] {
        let first = detect_and_build(name, false).unwrap();
        let second = detect_and_build(name, false).unwrap();
        assert_eq!(
            layer_digests(&first.output),
            layer_digests(&second.output),
            "{name}"
        );
    }

    // A rebuild that reuses the Go build cache gives the same binary.
    let cache = tempfile::tempdir().unwrap();
    let dir = builtin_dir_in(cache.path()).unwrap();
    let buildpacks = load(std::slice::from_ref(&dir)).unwrap();
    let order = load_order(&dir.join("order.toml"), &buildpacks).unwrap();
    let detection = detect(&fixture("go"), &order, &buildpacks).unwrap();
    let ctx = context(cache.path().join("cache"), vec![], false);
    let cold = build(&fixture("go"), &detection, &ctx).unwrap();
    let warm = build(&fixture("go"), &detection, &ctx).unwrap();
    assert_eq!(layer_digests(&cold), layer_digests(&warm));
}

#[test]
fn procfile_alone_runs_on_the_static_base() {
    let dir = tempfile::tempdir().unwrap();
    fs_err::write(
        dir.path().join("Procfile"),
        "web: ./server --port-from-env\n",
    )
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let bpdir = builtin_dir_in(cache.path()).unwrap();
    let buildpacks = load(std::slice::from_ref(&bpdir)).unwrap();
    let order = load_order(&bpdir.join("order.toml"), &buildpacks).unwrap();
    let detection = detect(dir.path(), &order, &buildpacks).unwrap();
    assert_eq!(
        detection
            .group
            .iter()
            .map(|b| b.id.as_str())
            .collect::<Vec<_>>(),
        ["repave/procfile"]
    );
    assert_eq!(detection.base.as_deref(), Some("static"));
    let trace = format_trace(&detection.trace);
    assert!(
        trace.contains("repave/procfile: pass: found Procfile with processes: web"),
        "{trace}"
    );
}

#[test]
fn pyproject_dependencies_are_installed_without_the_project() {
    let dir = tempfile::tempdir().unwrap();
    fs_err::write(
        dir.path().join("pyproject.toml"),
        "[project]\nname = \"demo\"\nversion = \"1.0\"\ndependencies = [\"itsdangerous==2.2.0\"]\n",
    )
    .unwrap();
    fs_err::write(dir.path().join("main.py"), "import itsdangerous\n").unwrap();
    let cache = tempfile::tempdir().unwrap();
    let bpdir = builtin_dir_in(cache.path()).unwrap();
    let buildpacks = load(std::slice::from_ref(&bpdir)).unwrap();
    let order = load_order(&bpdir.join("order.toml"), &buildpacks).unwrap();
    let detection = detect(dir.path(), &order, &buildpacks).unwrap();
    let ctx = context(cache.path().join("cache"), python_base(), false);
    let output = build(dir.path(), &detection, &ctx).unwrap();
    let packages = &output.layers[0];
    assert_eq!(packages.image_path, "layers/repave_python/packages");
    assert!(packages.dir.join("itsdangerous/__init__.py").is_file());
    let names: Vec<String> = fs_err::read_dir(&packages.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.starts_with("demo")), "{names:?}");
    assert_eq!(
        output.default().unwrap().command,
        ["/usr/bin/python3", "/workspace/main.py"]
    );
}

/// Detects and builds an app made of `files` on a base with `packages`.
fn build_files(
    files: &[(&str, &str)],
    packages: Vec<(String, String)>,
) -> Result<BuildOutput, BuildpackError> {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(path, text).unwrap();
    }
    let cache = tempfile::tempdir().unwrap();
    let bpdir = builtin_dir_in(cache.path()).unwrap();
    let buildpacks = load(std::slice::from_ref(&bpdir)).unwrap();
    let order = load_order(&bpdir.join("order.toml"), &buildpacks).unwrap();
    let detection = detect(dir.path(), &order, &buildpacks)?;
    build(
        dir.path(),
        &detection,
        &context(cache.path().join("cache"), packages, false),
    )
}

#[test]
fn a_runtime_missing_from_a_known_base_fails_the_build() {
    let static_base = base_for(Some("static"));
    let node = [("package.json", "{\"name\": \"x\"}"), ("server.js", "1\n")];
    let err = build_files(&node, static_base.clone())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("the base has no Node.js (package nodejs)"),
        "{err}"
    );
    // No requirements to install: the interpreter must still be there.
    let python = [("app.py", "print('hi')\n")];
    let err = build_files(&python, static_base.clone())
        .unwrap_err()
        .to_string();
    assert!(err.contains("the base has no Python"), "{err}");
    let site = [("index.html", "<p>hi</p>\n")];
    let err = build_files(&site, static_base).unwrap_err().to_string();
    assert!(err.contains("the base has no lighttpd"), "{err}");

    // An image whose packages are unknown is not checked.
    assert!(build_files(&node, vec![]).is_ok());
    assert!(build_files(&site, vec![]).is_ok());
}

#[test]
fn malformed_package_json_fails_with_the_parser_message() {
    let files = [
        ("package.json", "{\"name\": \"x\",}\n"),
        ("server.js", "1\n"),
    ];
    let err = build_files(&files, base_for(Some("nodejs")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`package.json` is not valid JSON: "), "{err}");
    assert!(err.contains("position"), "{err}");
    assert!(!err.contains("    at "), "no stack trace: {err}");
}

#[test]
fn unknown_python_requirement_shows_pip_error_not_sdist_advice() {
    let files = [
        ("requirements.txt", "repave-no-such-project-7f3a==1.0\n"),
        ("app.py", "print('hi')\n"),
    ];
    let err = build_files(&files, python_base()).unwrap_err().to_string();
    assert!(
        err.contains("No matching distribution found for repave-no-such-project-7f3a==1.0"),
        "{err}"
    );
    assert!(
        err.contains("check the requirement's name and version"),
        "{err}"
    );
    assert!(!err.contains("source distribution"), "{err}");
}

#[test]
fn go_main_package_under_cmd_and_newer_go_directive_are_explained() {
    let main = "package main\n\nfunc main() {}\n";
    let files = [
        ("go.mod", "module example.com/svc\n\ngo 1.19\n"),
        ("cmd/server/main.go", main),
        ("cmd/worker/main.go", main),
        ("internal/db/db.go", "package db\n"),
    ];
    let err = build_files(&files, vec![]).unwrap_err().to_string();
    assert!(
        err.contains("only the root's main package is built"),
        "{err}"
    );
    assert!(err.contains("cmd/server cmd/worker:"), "{err}");
    assert!(!err.contains("internal/db"), "{err}");

    let files = [
        ("go.mod", "module example.com/svc\n\ngo 1.99.1\n"),
        ("main.go", main),
    ];
    let err = build_files(&files, vec![]).unwrap_err().to_string();
    assert!(err.contains("go.mod asks for Go 1.99.1"), "{err}");
    assert!(err.contains("the build has Go 1."), "{err}");
}
