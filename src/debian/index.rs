//! A suite's binary packages as read from its Packages indexes, and the relation syntax of
//! their Depends, Pre-Depends and Provides fields (`a (>= 1) | b:any, c`).

use std::cmp::Ordering;

use debversion::Version;

use super::control::Paragraph;
use super::sources::Archive;

/// One binary package of an index.
#[derive(Clone, Debug)]
pub struct Package {
    pub name: String,
    pub version: Version,
    /// The version exactly as the index writes it.
    pub version_text: String,
    pub architecture: String,
    pub multi_arch: Option<String>,
    /// `Priority:` as a rank, 0 for `required` up to 4 for `extra` or none.
    pub priority: u8,
    /// Pre-Depends then Depends: each inner list is one group of alternatives.
    pub depends: Vec<Vec<Relation>>,
    pub provides: Vec<Relation>,
    pub archive: Archive,
    pub filename: String,
    pub size: u64,
    pub sha256: String,
}

/// Relation operators, with dpkg's obsolete `<` and `>` read as `<=` and `>=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Earlier,
    EarlierEqual,
    Equal,
    LaterEqual,
    Later,
}

/// One package reference of a relation field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relation {
    pub name: String,
    /// The architecture qualifier after `:` (`any`, `native` or an architecture).
    pub arch: Option<String>,
    pub constraint: Option<(Op, Version)>,
}

impl Relation {
    /// Whether `version` meets this relation's constraint (always, when it has none).
    pub fn accepts(&self, version: &Version) -> bool {
        match &self.constraint {
            None => true,
            Some((op, wanted)) => {
                let ord = version.cmp(wanted);
                match op {
                    Op::Earlier => ord == Ordering::Less,
                    Op::EarlierEqual => ord != Ordering::Greater,
                    Op::Equal => ord == Ordering::Equal,
                    Op::LaterEqual => ord != Ordering::Less,
                    Op::Later => ord == Ordering::Greater,
                }
            }
        }
    }
}

impl std::fmt::Display for Relation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if let Some(arch) = &self.arch {
            write!(f, ":{arch}")?;
        }
        if let Some((op, version)) = &self.constraint {
            let op = match op {
                Op::Earlier => "<<",
                Op::EarlierEqual => "<=",
                Op::Equal => "=",
                Op::LaterEqual => ">=",
                Op::Later => ">>",
            };
            write!(f, " ({op} {version})")?;
        }
        Ok(())
    }
}

/// Parses a relation field into groups of alternatives. Architecture restrictions
/// (`[amd64]`) and build profiles (`<nocheck>`) only occur in source packages and are
/// dropped.
pub fn parse_relations(field: &str) -> Result<Vec<Vec<Relation>>, String> {
    let mut groups = Vec::new();
    for group in field.split(',') {
        if group.trim().is_empty() {
            continue;
        }
        let alternatives = group
            .split('|')
            .map(parse_relation)
            .collect::<Result<Vec<_>, _>>()?;
        groups.push(alternatives);
    }
    Ok(groups)
}

fn parse_relation(text: &str) -> Result<Relation, String> {
    let text = text.split('[').next().unwrap_or("");
    let after_constraint = text.find(')').map_or(0, |close| close + 1);
    let text = match text[after_constraint..].find('<') {
        Some(profile) => &text[..after_constraint + profile],
        None => text,
    };
    let (name_part, constraint) = match text.split_once('(') {
        Some((name, rest)) => {
            let inner = rest
                .split_once(')')
                .map(|(inner, _)| inner)
                .ok_or_else(|| format!("unclosed `(` in `{}`", text.trim()))?
                .trim();
            let split = inner
                .find(|c: char| !matches!(c, '<' | '>' | '='))
                .unwrap_or(inner.len());
            let op = match &inner[..split] {
                "<<" => Op::Earlier,
                "<=" | "<" => Op::EarlierEqual,
                "=" => Op::Equal,
                ">=" | ">" => Op::LaterEqual,
                ">>" => Op::Later,
                other => return Err(format!("unknown operator `{other}` in `{}`", text.trim())),
            };
            let version: Version = inner[split..]
                .trim()
                .parse()
                .map_err(|e| format!("bad version in `{}`: {e}", text.trim()))?;
            (name, Some((op, version)))
        }
        None => (text, None),
    };
    let name_part = name_part.trim();
    if name_part.is_empty() || name_part.contains(char::is_whitespace) {
        return Err(format!("bad package name in `{}`", text.trim()));
    }
    let (name, arch) = match name_part.split_once(':') {
        Some((name, arch)) => (name, Some(arch.to_owned())),
        None => (name_part, None),
    };
    Ok(Relation {
        name: name.to_owned(),
        arch,
        constraint,
    })
}

/// Reads one Packages paragraph. Paragraphs without the fields a lock needs are refused.
pub fn package_from(paragraph: &Paragraph, archive: Archive) -> Result<Package, String> {
    let field = |name: &str| {
        paragraph
            .get(name)
            .ok_or_else(|| format!("a paragraph lacks `{name}`"))
    };
    let name = field("Package")?.to_owned();
    let with_name = |e: String| format!("package `{name}`: {e}");
    let version_text = field("Version")?.to_owned();
    let version: Version = version_text
        .parse()
        .map_err(|e| with_name(format!("bad version: {e}")))?;
    let mut depends = Vec::new();
    for key in ["Pre-Depends", "Depends"] {
        if let Some(value) = paragraph.get(key) {
            depends.extend(parse_relations(value).map_err(with_name)?);
        }
    }
    let provides = match paragraph.get("Provides") {
        Some(value) => parse_relations(value)
            .map_err(with_name)?
            .into_iter()
            .flatten()
            .collect(),
        None => Vec::new(),
    };
    Ok(Package {
        version,
        version_text,
        architecture: field("Architecture")?.to_owned(),
        multi_arch: paragraph.get("Multi-Arch").map(str::to_owned),
        priority: match paragraph.get("Priority") {
            Some("required") => 0,
            Some("important") => 1,
            Some("standard") => 2,
            Some("optional") => 3,
            _ => 4,
        },
        depends,
        provides,
        archive,
        filename: field("Filename")?.to_owned(),
        size: field("Size")?
            .parse()
            .map_err(|_| with_name("bad Size".to_owned()))?,
        sha256: field("SHA256")?.to_owned(),
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        text.parse().unwrap()
    }

    #[test]
    fn relations_with_alternatives_qualifiers_and_constraints() {
        let groups = parse_relations(
            "libc6 (>= 2.34), python3:any (>= 3.11~) | python3.11, a [amd64] <!nocheck>",
        )
        .unwrap();
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0][0].name, "libc6");
        assert_eq!(groups[0][0].constraint, Some((Op::LaterEqual, v("2.34"))));
        assert_eq!(groups[1][0].arch.as_deref(), Some("any"));
        assert_eq!(groups[1][1].name, "python3.11");
        assert_eq!(groups[2][0].to_string(), "a");
        assert!(parse_relations("a (~ 1)").is_err());
        assert!(parse_relations("a (>= 1").is_err());
    }

    #[test]
    fn constraints_use_debian_version_order() {
        let rel = &parse_relations("x (>= 1.0~rc1)").unwrap()[0][0];
        assert!(rel.accepts(&v("1.0")));
        assert!(rel.accepts(&v("1.0~rc1")));
        assert!(!rel.accepts(&v("1.0~beta")));
        assert!(
            rel.accepts(&v("1:0.1")),
            "an epoch outranks any upstream version"
        );
        let rel = &parse_relations("x (<< 2.36-9+deb12u1)").unwrap()[0][0];
        assert!(rel.accepts(&v("2.36-9")));
        assert!(!rel.accepts(&v("2.36-9+deb12u1")));
        assert!(!rel.accepts(&v("2.36-9+deb12u10")));
        assert!(v("2.36-9+deb12u10") > v("2.36-9+deb12u9"));
        assert!(v("1.2.3a") > v("1.2.3"));
        assert!(v("1.2.3") > v("1.2.3~"));
        let any = &parse_relations("x").unwrap()[0][0];
        assert!(any.accepts(&v("0")));
    }
}
