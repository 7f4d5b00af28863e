//! The dependency closure of a base: from the listed packages through Pre-Depends and
//! Depends, taking each package's newest version across the suites (apt's candidate),
//! the first satisfiable alternative (one already chosen wins), providers of virtual
//! packages, and dropping excluded packages without following them.
//! Limitation: no backtracking; Conflicts and Breaks are not checked.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use tracing::debug;

use super::index::{Package, Relation};
use super::DebianError;

/// All candidate packages of one architecture, newest version per name.
pub struct Universe {
    architecture: String,
    candidates: HashMap<String, Package>,
    /// Virtual (or real) name to the candidates that provide it, by priority then name.
    providers: HashMap<String, Vec<String>>,
}

impl Universe {
    /// Builds the universe from every package of every index; for each name the newest
    /// version wins. Packages of other architectures are ignored.
    pub fn new(architecture: &str, packages: impl IntoIterator<Item = Package>) -> Universe {
        let mut candidates: HashMap<String, Package> = HashMap::new();
        for package in packages {
            if package.architecture != architecture && package.architecture != "all" {
                continue;
            }
            match candidates.get(&package.name) {
                Some(existing) if existing.version >= package.version => {}
                _ => {
                    candidates.insert(package.name.clone(), package);
                }
            }
        }
        let mut providers: HashMap<String, Vec<String>> = HashMap::new();
        for package in candidates.values() {
            for provided in &package.provides {
                providers
                    .entry(provided.name.clone())
                    .or_default()
                    .push(package.name.clone());
            }
        }
        // apt's preference among providers: higher priority first, then by name.
        for names in providers.values_mut() {
            names.sort_by_key(|name| (candidates[name].priority, name.clone()));
            names.dedup();
        }
        Universe {
            architecture: architecture.to_owned(),
            candidates,
            providers,
        }
    }

    pub fn get(&self, name: &str) -> Option<&Package> {
        self.candidates.get(name)
    }

    /// Whether `package` (a candidate) satisfies `relation`, directly or by Provides.
    fn satisfies(&self, package: &Package, relation: &Relation) -> bool {
        let arch_ok = match relation.arch.as_deref() {
            None | Some("native") => true,
            Some("any") => {
                package.multi_arch.as_deref() == Some("allowed")
                    || package.architecture == "all"
                    || package.name != relation.name
            }
            Some(arch) => arch == self.architecture,
        };
        if !arch_ok {
            return false;
        }
        if package.name == relation.name && relation.accepts(&package.version) {
            return true;
        }
        package.provides.iter().any(|provided| {
            provided.name == relation.name
                && match (&relation.constraint, &provided.constraint) {
                    (None, _) => true,
                    (Some(_), Some((_, version))) => relation.accepts(version),
                    (Some(_), None) => false,
                }
        })
    }

    /// The candidates that could satisfy `relation`: the real package first, then the
    /// providers by priority and name.
    fn satisfiers(&self, relation: &Relation) -> Vec<&Package> {
        let mut names: Vec<&str> = vec![relation.name.as_str()];
        if let Some(providers) = self.providers.get(&relation.name) {
            names.extend(providers.iter().map(String::as_str));
        }
        let mut seen = BTreeSet::new();
        names
            .into_iter()
            .filter(|name| seen.insert(*name))
            .filter_map(|name| self.candidates.get(name))
            .filter(|package| self.satisfies(package, relation))
            .collect()
    }
}

/// Resolves the closure of `roots`, never choosing or following a package of `exclude`.
/// Returns the chosen packages sorted by name.
pub fn resolve(
    universe: &Universe,
    roots: &[String],
    exclude: &[String],
) -> Result<Vec<Package>, DebianError> {
    let excluded: BTreeSet<&str> = exclude.iter().map(String::as_str).collect();
    let mut chosen: BTreeMap<String, &Package> = BTreeMap::new();
    let mut queue = VecDeque::new();

    for root in roots {
        if excluded.contains(root.as_str()) {
            return Err(DebianError::Resolve(format!(
                "`{root}` is both listed in `packages` and in `exclude`: remove it from one"
            )));
        }
        let package = universe.get(root).ok_or_else(|| {
            DebianError::Resolve(format!(
                "package `{root}` is not in the suite for architecture `{}`: check its name \
                 (virtual packages cannot be listed directly; name a real one)",
                universe.architecture
            ))
        })?;
        if chosen.insert(root.clone(), package).is_none() {
            queue.push_back(package);
        }
    }

    while let Some(package) = queue.pop_front() {
        for group in &package.depends {
            let already = group.iter().any(|relation| {
                chosen
                    .values()
                    .any(|candidate| universe.satisfies(candidate, relation))
            });
            if already {
                continue;
            }
            match pick(universe, group, &excluded) {
                Pick::Chosen(next) => {
                    debug!(package = %package.name, dependency = %group_text(group), chosen = %next.name, "resolved");
                    chosen.insert(next.name.clone(), next);
                    queue.push_back(next);
                }
                Pick::Excluded(name) => {
                    debug!(package = %package.name, dependency = %group_text(group), excluded = name, "dropped");
                }
                Pick::Unsatisfiable => {
                    return Err(DebianError::Resolve(format!(
                        "`{}` {} depends on `{}`, which no package of the suite satisfies: \
                         exclude it or check the suite and components",
                        package.name,
                        package.version,
                        group_text(group)
                    )))
                }
            }
        }
    }
    Ok(chosen.into_values().cloned().collect())
}

enum Pick<'a> {
    Chosen(&'a Package),
    Excluded(&'a str),
    Unsatisfiable,
}

/// The first alternative that some candidate satisfies; an alternative that only
/// excluded packages satisfy drops the whole group, so exclusion never swaps in another.
fn pick<'a>(universe: &'a Universe, group: &'a [Relation], excluded: &BTreeSet<&str>) -> Pick<'a> {
    for relation in group {
        if excluded.contains(relation.name.as_str()) {
            return Pick::Excluded(&relation.name);
        }
        let satisfiers = universe.satisfiers(relation);
        if satisfiers.is_empty() {
            continue;
        }
        return match satisfiers
            .into_iter()
            .find(|p| !excluded.contains(p.name.as_str()))
        {
            Some(package) => Pick::Chosen(package),
            None => Pick::Excluded(&relation.name),
        };
    }
    Pick::Unsatisfiable
}

fn group_text(group: &[Relation]) -> String {
    group
        .iter()
        .map(Relation::to_string)
        .collect::<Vec<_>>()
        .join(" | ")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::control;
    use super::super::index::package_from;
    use super::super::sources::Archive;
    use super::*;

    /// A tiny index: each stanza gets Filename/Size/SHA256 filled in (and amd64 when it
    /// names no architecture); `Security: yes` puts it in the security archive.
    pub(crate) fn universe(text: &str) -> Universe {
        let packages = control::parse(text).unwrap().into_iter().map(|mut p| {
            if p.get("Architecture").is_none() {
                p.fields.push(("Architecture".into(), "amd64".into()));
            }
            p.fields.push(("Filename".into(), "pool/x.deb".into()));
            p.fields.push(("Size".into(), "1".into()));
            p.fields.push(("SHA256".into(), "00".into()));
            let archive = if p.get("Security").is_some() {
                Archive::Security
            } else {
                Archive::Main
            };
            package_from(&p, archive).unwrap()
        });
        Universe::new("amd64", packages)
    }

    fn names(packages: &[Package]) -> Vec<String> {
        packages
            .iter()
            .map(|p| format!("{}={}", p.name, p.version))
            .collect()
    }

    fn roots(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    const INDEX: &str = "\
Package: app\nVersion: 1\nDepends: libc6 (>= 2.36), mail | mta, awk\nPre-Depends: dpkg\n\n\
Package: libc6\nVersion: 2.36-9\n\n\
Package: libc6\nVersion: 2.36-9+deb12u10\nSecurity: yes\n\n\
Package: libc6\nVersion: 2.35\n\n\
Package: mail\nVersion: 1\nDepends: nothing-provides-this\n\n\
Package: postfix\nVersion: 3\nProvides: mta\n\n\
Package: exim\nVersion: 4\nProvides: mta\n\n\
Package: mawk\nVersion: 1.3\nProvides: awk\nMulti-Arch: foreign\nPriority: required\n\n\
Package: gawk\nVersion: 5\nProvides: awk\n\n\
Package: dpkg\nVersion: 1.21\nDepends: tar\nEssential: yes\n\n\
Package: tar\nVersion: 1.34\n\n\
Package: other\nVersion: 1\nArchitecture: arm64\n";

    #[test]
    fn newest_version_wins_and_virtual_packages_resolve() {
        let universe = universe(INDEX);
        let resolved = resolve(&universe, &roots(&["app"]), &roots(&["mail"])).unwrap();
        // `mail` is excluded, so its group is dropped rather than swapped for an mta.
        assert_eq!(
            names(&resolved),
            [
                "app=1",
                "dpkg=1.21",
                "libc6=2.36-9+deb12u10",
                "mawk=1.3",
                "tar=1.34"
            ]
        );
        let libc = resolved.iter().find(|p| p.name == "libc6").unwrap();
        assert_eq!(libc.archive, Archive::Security);
    }

    #[test]
    fn alternatives_prefer_what_is_already_chosen() {
        let universe = universe(INDEX);
        let resolved = resolve(
            &universe,
            &roots(&["exim", "gawk", "app"]),
            &roots(&["dpkg"]),
        )
        .unwrap();
        let names = names(&resolved);
        assert!(names.contains(&"exim=4".to_owned()), "{names:?}");
        assert!(!names.iter().any(|n| n.starts_with("postfix")), "{names:?}");
        assert!(!names.iter().any(|n| n.starts_with("mawk")), "{names:?}");
        // Excluded dpkg is not followed: tar is not pulled in.
        assert!(!names
            .iter()
            .any(|n| n.starts_with("tar") || n.starts_with("dpkg")));
    }

    #[test]
    fn errors_name_the_package_and_what_to_do() {
        let universe = universe(INDEX);
        let err = resolve(&universe, &roots(&["mail"]), &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`mail` 1 depends on `nothing-provides-this`"),
            "{err}"
        );
        let err = resolve(&universe, &roots(&["app"]), &roots(&["app"])).unwrap_err();
        assert!(err.to_string().contains("exclude"), "{err}");
        let err = resolve(&universe, &roots(&["other"]), &[]).unwrap_err();
        assert!(err.to_string().contains("not in the suite"), "{err}");
        let err = resolve(&universe, &roots(&["mta"]), &[]).unwrap_err();
        assert!(err.to_string().contains("virtual"), "{err}");
    }

    #[test]
    fn version_constraints_and_arch_qualifiers() {
        let universe = universe(
            "Package: a\nVersion: 1\nDepends: b (>= 2) | c, py:any, d:native\n\n\
             Package: b\nVersion: 1\n\nPackage: c\nVersion: 1\n\n\
             Package: py\nVersion: 3\nMulti-Arch: allowed\n\nPackage: d\nVersion: 1\n\n\
             Package: e\nVersion: 1\nDepends: d:any\n",
        );
        let resolved = resolve(&universe, &roots(&["a"]), &[]).unwrap();
        assert_eq!(names(&resolved), ["a=1", "c=1", "d=1", "py=3"]);
        // `d` is not Multi-Arch: allowed, so `d:any` cannot be met.
        assert!(resolve(&universe, &roots(&["e"]), &[]).is_err());
    }
}
