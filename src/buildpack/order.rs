//! Detection: `order.toml` groups are tried in order, each member's `bin/detect` runs on the
//! app (read-only, under bubblewrap), and the first group whose required members all pass
//! wins, without the optional members that did not. The trace says what each step found.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::sandbox::Sandbox;
use super::{Buildpack, BuildpackError};

/// Groups of buildpacks to try, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    pub groups: Vec<Group>,
    /// Where the order came from, for messages.
    pub origin: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Group {
    #[serde(rename = "group")]
    pub members: Vec<GroupMember>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct GroupMember {
    pub id: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub optional: bool,
}

#[derive(Deserialize)]
struct OrderToml {
    order: Vec<Group>,
}

impl Order {
    /// One group of all `buildpacks`, none optional: what `--buildpack DIR` flags ask for.
    pub fn single_group(buildpacks: &[Buildpack]) -> Order {
        Order {
            groups: vec![Group {
                members: buildpacks
                    .iter()
                    .map(|bp| GroupMember {
                        id: bp.id.clone(),
                        version: Some(bp.version.clone()),
                        optional: false,
                    })
                    .collect(),
            }],
            origin: PathBuf::from("--buildpack"),
        }
    }
}

/// One run of a buildpack's detect step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetectStep {
    /// Index of the group in the order, from 0.
    pub group: usize,
    pub id: String,
    pub optional: bool,
    pub passed: bool,
    /// What the detect step printed, trimmed.
    pub output: String,
}

/// The group chosen for an app.
#[derive(Clone, Debug)]
pub struct Detection {
    pub group: Vec<Buildpack>,
    /// The first base a member of the group names, if any does.
    pub base: Option<String>,
    pub trace: Vec<DetectStep>,
}

/// Reads an `order.toml` and checks that it names only buildpacks in `buildpacks`.
pub fn load_order(path: &Path, buildpacks: &[Buildpack]) -> Result<Order, BuildpackError> {
    let text = fs_err::read_to_string(path)?;
    let parsed: OrderToml = toml::from_str(&text).map_err(|e| BuildpackError::Toml {
        path: path.to_path_buf(),
        message: e.message().to_owned(),
    })?;
    let order = Order {
        groups: parsed.order,
        origin: path.to_path_buf(),
    };
    for member in order.groups.iter().flat_map(|g| &g.members) {
        find(&order, member, buildpacks)?;
    }
    Ok(order)
}

fn find<'a>(
    order: &Order,
    member: &GroupMember,
    buildpacks: &'a [Buildpack],
) -> Result<&'a Buildpack, BuildpackError> {
    buildpacks
        .iter()
        .find(|bp| bp.id == member.id && member.version.as_ref().is_none_or(|v| *v == bp.version))
        .ok_or_else(|| BuildpackError::UnknownBuildpack {
            id: match &member.version {
                Some(version) => format!("{}@{version}", member.id),
                None => member.id.clone(),
            },
            order: order.origin.clone(),
        })
}

/// Chooses the group of `order` that applies to `app`.
pub fn detect(
    app: &Path,
    order: &Order,
    buildpacks: &[Buildpack],
) -> Result<Detection, BuildpackError> {
    let app = fs_err::canonicalize(app)?;
    select(order, buildpacks, |bp| run_detect(&app, bp)).map_err(|e| match e {
        BuildpackError::NoGroup { trace, .. } => BuildpackError::NoGroup { app, trace },
        e => e,
    })
}

/// The selection rules, apart from running anything: `passes` answers for one buildpack.
fn select(
    order: &Order,
    buildpacks: &[Buildpack],
    mut passes: impl FnMut(&Buildpack) -> Result<(bool, String), BuildpackError>,
) -> Result<Detection, BuildpackError> {
    let mut results: HashMap<String, (bool, String)> = HashMap::new();
    let mut trace = Vec::new();
    for (index, group) in order.groups.iter().enumerate() {
        let mut chosen = Vec::new();
        let mut failed = false;
        for member in &group.members {
            let bp = find(order, member, buildpacks)?;
            let (passed, output) = match results.get(&bp.id) {
                Some(known) => known.clone(),
                None => {
                    let result = passes(bp)?;
                    results.insert(bp.id.clone(), result.clone());
                    result
                }
            };
            tracing::debug!(group = index, id = %bp.id, passed, "detect");
            trace.push(DetectStep {
                group: index,
                id: bp.id.clone(),
                optional: member.optional,
                passed,
                output,
            });
            if passed {
                chosen.push(bp.clone());
            } else if !member.optional {
                failed = true;
                break;
            }
        }
        if !failed && !chosen.is_empty() {
            let base = chosen.iter().find_map(|bp| bp.base.clone());
            return Ok(Detection {
                group: chosen,
                base,
                trace,
            });
        }
    }
    Err(BuildpackError::NoGroup {
        app: PathBuf::new(),
        trace: format_trace(&trace),
    })
}

/// The trace as lines a user reads: `group N: id (optional) passed|skipped: output`.
pub fn format_trace(trace: &[DetectStep]) -> String {
    let mut out = String::new();
    for step in trace {
        let optional = if step.optional { " (optional)" } else { "" };
        let verdict = if step.passed { "pass" } else { "fail" };
        let output = step.output.replace('\n', "; ");
        out.push_str(&format!(
            "  group {}: {}{optional}: {verdict}: {output}\n",
            step.group + 1,
            step.id
        ));
    }
    out
}

fn run_detect(app: &Path, bp: &Buildpack) -> Result<(bool, String), BuildpackError> {
    let scratch = tempfile::tempdir()?;
    let platform = scratch.path().join("platform");
    let plan = scratch.path().join("plan");
    fs_err::create_dir_all(platform.join("env"))?;
    fs_err::create_dir_all(&plan)?;

    let bp_dir = format!("/cnb/buildpacks/{}/{}", bp.layers_name(), bp.version);
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    env.extend([
        ("CNB_BUILDPACK_DIR".to_owned(), bp_dir.clone()),
        ("CNB_PLATFORM_DIR".to_owned(), "/platform".to_owned()),
        (
            "CNB_BUILD_PLAN_PATH".to_owned(),
            "/cnb/plan/plan.toml".to_owned(),
        ),
        ("CNB_TARGET_OS".to_owned(), "linux".to_owned()),
        ("CNB_TARGET_ARCH".to_owned(), host_arch().to_owned()),
    ]);
    let mut sandbox = Sandbox::new(env)?;
    sandbox
        .bind(app, "/workspace", false)
        .bind(&bp.dir, &bp_dir, false)
        .bind(&platform, "/platform", false)
        .bind(&plan, "/cnb/plan", true);
    let (status, output) = sandbox.run("/workspace", &format!("{bp_dir}/bin/detect"), None)?;
    let output = output.trim().to_owned();
    match status.code() {
        Some(0) => Ok((true, output)),
        Some(100) => Ok((false, output)),
        _ => Err(BuildpackError::Detect {
            id: bp.id.clone(),
            status: status.to_string(),
            output,
        }),
    }
}

/// The running machine's architecture in the names OCI and the Buildpack API use.
pub(crate) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bp(id: &str, base: Option<&str>) -> Buildpack {
        Buildpack {
            writes_app: true,
            id: id.to_owned(),
            version: "0.1.0".to_owned(),
            name: id.to_owned(),
            dir: PathBuf::from("/nonexistent"),
            base: base.map(str::to_owned),
            api: "0.10".to_owned(),
        }
    }

    fn order(text: &str) -> Order {
        let parsed: OrderToml = toml::from_str(text).unwrap();
        Order {
            groups: parsed.order,
            origin: PathBuf::from("order.toml"),
        }
    }

    const ORDER: &str = r#"
[[order]]
[[order.group]]
id = "x/go"
[[order.group]]
id = "x/procfile"
optional = true

[[order]]
[[order.group]]
id = "x/python"
[[order.group]]
id = "x/procfile"
optional = true

[[order]]
[[order.group]]
id = "x/procfile"
"#;

    fn all() -> Vec<Buildpack> {
        vec![
            bp("x/go", Some("static")),
            bp("x/python", Some("python")),
            bp("x/procfile", Some("static")),
        ]
    }

    fn ids(detection: &Detection) -> Vec<&str> {
        detection.group.iter().map(|b| b.id.as_str()).collect()
    }

    #[test]
    fn first_passing_group_wins_and_keeps_passing_optionals() {
        let passing = ["x/python", "x/procfile"];
        let d = select(&order(ORDER), &all(), |b| {
            Ok((passing.contains(&b.id.as_str()), format!("{} looked", b.id)))
        })
        .unwrap();
        assert_eq!(ids(&d), ["x/python", "x/procfile"]);
        assert_eq!(
            d.base.as_deref(),
            Some("python"),
            "the first base in the group"
        );
        // group 1 stopped at its failing required member; group 2 ran both.
        let steps: Vec<(usize, &str, bool)> = d
            .trace
            .iter()
            .map(|s| (s.group, s.id.as_str(), s.passed))
            .collect();
        assert_eq!(
            steps,
            [
                (0, "x/go", false),
                (1, "x/python", true),
                (1, "x/procfile", true)
            ]
        );
    }

    #[test]
    fn failing_optional_members_are_dropped() {
        let d = select(&order(ORDER), &all(), |b| {
            Ok((b.id == "x/go", String::new()))
        })
        .unwrap();
        assert_eq!(ids(&d), ["x/go"]);
        assert!(d.trace.iter().any(|s| s.id == "x/procfile" && !s.passed));
    }

    #[test]
    fn each_buildpack_detects_once() {
        let mut calls = Vec::new();
        let d = select(&order(ORDER), &all(), |b| {
            calls.push(b.id.clone());
            Ok((b.id == "x/procfile", String::new()))
        })
        .unwrap();
        assert_eq!(ids(&d), ["x/procfile"]);
        assert_eq!(calls, ["x/go", "x/python", "x/procfile"]);
    }

    #[test]
    fn no_group_reports_the_trace() {
        let err = select(&order(ORDER), &all(), |b| {
            Ok((false, format!("no {}", b.id)))
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("group 1: x/go: fail: no x/go"), "{err}");
        assert!(err.contains("group 3: x/procfile: fail"), "{err}");
    }

    #[test]
    fn unknown_ids_and_versions_are_refused() {
        let text = "[[order]]\n[[order.group]]\nid = \"x/go\"\nversion = \"9.9.9\"\n";
        let err = select(&order(text), &all(), |_| Ok((true, String::new()))).unwrap_err();
        assert!(err.to_string().contains("x/go@9.9.9"), "{err}");
    }
}
