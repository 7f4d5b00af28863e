//! `launch.toml` as a buildpack writes it: the processes the image can run. Only
//! `[[processes]]` matter to repave; labels and slices are not supported.

use serde::{Deserialize, Serialize};

/// A process the image can run: the program and its arguments, run directly (no shell,
/// no launcher).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Process {
    pub r#type: String,
    pub command: Vec<String>,
    pub default: bool,
    /// The buildpack whose `launch.toml` declared it.
    pub buildpack_id: String,
}

#[derive(Deserialize)]
struct LaunchToml {
    #[serde(default)]
    processes: Vec<RawProcess>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawProcess {
    r#type: String,
    command: Vec<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    default: bool,
    #[serde(default)]
    working_dir: Option<String>,
}

/// Parses the text of the `launch.toml` that `buildpack_id` wrote; `args` are appended to
/// `command`.
// Limitation: a process `working-dir` other than /workspace is refused, since the image has
// one working directory for every process.
pub fn parse_launch(text: &str, buildpack_id: &str) -> Result<Vec<Process>, String> {
    let launch: LaunchToml = toml::from_str(text).map_err(|e| e.message().to_owned())?;
    let mut processes = Vec::new();
    for raw in launch.processes {
        let valid_type = !raw.r#type.is_empty()
            && raw
                .r#type
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid_type {
            return Err(format!(
                "process type `{}` is not letters, digits, `-`, `_` and `.`",
                raw.r#type
            ));
        }
        if raw.command.first().is_none_or(String::is_empty) {
            return Err(format!("process `{}` has an empty command", raw.r#type));
        }
        if let Some(dir) = raw.working_dir.filter(|d| d != "/workspace") {
            return Err(format!(
                "process `{}` has working-dir `{dir}`; processes run in /workspace",
                raw.r#type
            ));
        }
        let mut command = raw.command;
        command.extend(raw.args);
        processes.push(Process {
            r#type: raw.r#type,
            command,
            default: raw.default,
            buildpack_id: buildpack_id.to_owned(),
        });
    }
    Ok(processes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_processes_with_args_and_default() {
        let text = r#"
[[processes]]
type = "web"
command = ["/usr/bin/python3", "/workspace/app.py"]
args = ["--port", "8080"]
default = true

[[processes]]
type = "worker"
command = ["celery"]

[[labels]]
key = "ignored"
value = "yes"
"#;
        let processes = parse_launch(text, "x/py").unwrap();
        assert_eq!(
            processes,
            vec![
                Process {
                    r#type: "web".into(),
                    command: vec![
                        "/usr/bin/python3".into(),
                        "/workspace/app.py".into(),
                        "--port".into(),
                        "8080".into()
                    ],
                    default: true,
                    buildpack_id: "x/py".into(),
                },
                Process {
                    r#type: "worker".into(),
                    command: vec!["celery".into()],
                    default: false,
                    buildpack_id: "x/py".into(),
                },
            ]
        );
    }

    #[test]
    fn refuses_bad_processes() {
        let shell_string = "[[processes]]\ntype = \"web\"\ncommand = \"node app.js\"\n";
        assert!(
            parse_launch(shell_string, "x").is_err(),
            "API 0.9+ commands are arrays"
        );
        let empty = "[[processes]]\ntype = \"web\"\ncommand = []\n";
        assert!(parse_launch(empty, "x")
            .unwrap_err()
            .contains("empty command"));
        let bad_type = "[[processes]]\ntype = \"a b\"\ncommand = [\"x\"]\n";
        assert!(parse_launch(bad_type, "x")
            .unwrap_err()
            .contains("process type"));
        let elsewhere = "[[processes]]\ntype = \"w\"\ncommand = [\"x\"]\nworking-dir = \"/srv\"\n";
        assert!(parse_launch(elsewhere, "x")
            .unwrap_err()
            .contains("working-dir"));
        assert_eq!(parse_launch("", "x").unwrap(), vec![]);
    }
}
