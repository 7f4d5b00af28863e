//! Procfile command splitting, as the built-in Procfile buildpack does it
//! (`buildpacks/procfile/lib/split.sh`, run with bash): quotes, escapes and the constructs
//! that need a shell.

use std::path::Path;
use std::process::Command;

#[derive(Debug, PartialEq, Eq)]
enum Split {
    Words(Vec<String>),
    NeedsShell(String),
    Invalid(String),
}

fn split(command: &str) -> Split {
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("buildpacks/procfile/lib/split.sh");
    let script = r#"set -u; source "$1"; status=0; split_words "$2" || status=$?
printf '%s\n%s%s\n' "$status" "$SHELL_NEEDED" "$SPLIT_ERROR"
if ((${#WORDS[@]})); then printf '%s\0' "${WORDS[@]}"; fi"#;
    let out = Command::new("bash")
        .args(["-c", script, "split"])
        .arg(&lib)
        .arg(command)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (status, rest) = text.split_once('\n').unwrap();
    let (detail, words) = rest.split_once('\n').unwrap();
    match status {
        "0" => Split::Words(words.split_terminator('\0').map(str::to_owned).collect()),
        "2" => Split::NeedsShell(detail.to_owned()),
        "3" => Split::Invalid(detail.to_owned()),
        other => panic!("unexpected status {other}"),
    }
}

fn words(list: &[&str]) -> Split {
    Split::Words(list.iter().map(|w| (*w).to_owned()).collect())
}

#[test]
fn splits_on_blanks() {
    assert_eq!(split("gunicorn app:app"), words(&["gunicorn", "app:app"]));
    assert_eq!(
        split("  node\tserver.js   --port=1  "),
        words(&["node", "server.js", "--port=1"])
    );
}

#[test]
fn honours_quotes_and_escapes() {
    assert_eq!(
        split(r#"python3 app.py --greeting 'hello world' "say \"hi\"""#),
        words(&[
            "python3",
            "app.py",
            "--greeting",
            "hello world",
            "say \"hi\""
        ])
    );
    assert_eq!(split(r"a\ b c\\d"), words(&["a b", r"c\d"]));
    assert_eq!(split("cmd '' \"\""), words(&["cmd", "", ""]));
    assert_eq!(
        split(r#"cmd '$HOME | x' "a'b""#),
        words(&["cmd", "$HOME | x", "a'b"])
    );
    assert_eq!(split(r#"cmd "a\b""#), words(&["cmd", r"a\b"]));
    assert_eq!(split("x a~b --k=v"), words(&["x", "a~b", "--k=v"]));
    assert_eq!(split("'FOO=1' cmd"), words(&["FOO=1", "cmd"]));
}

#[test]
fn detects_commands_that_need_a_shell() {
    for (command, found) in [
        ("gunicorn -b 0.0.0.0:$PORT app:app", "$"),
        ("a | b", "|"),
        ("a && b", "&"),
        ("a; b", ";"),
        ("a > log", ">"),
        ("a < in", "<"),
        ("echo `date`", "`"),
        ("ls *.py", "*"),
        ("ls file?", "?"),
        ("ls [ab]", "["),
        ("(cd x)", "("),
        ("cmd # comment", "#"),
        ("cd ~", "~"),
        ("FOO=1 cmd", "FOO="),
        (r#"echo "$HOME""#, "$"),
    ] {
        assert_eq!(
            split(command),
            Split::NeedsShell(found.to_owned()),
            "{command}"
        );
    }
}

#[test]
fn refuses_broken_quoting() {
    assert_eq!(
        split("cmd 'open"),
        Split::Invalid("unterminated ' quote".to_owned())
    );
    assert_eq!(
        split("cmd \"open"),
        Split::Invalid("unterminated \" quote".to_owned())
    );
    assert_eq!(
        split(r"cmd \"),
        Split::Invalid("trailing backslash".to_owned())
    );
}
