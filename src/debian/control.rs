//! Parsing of Debian control data (deb822): the paragraphs of Packages indexes, Release
//! files and a package's own `control` file. Field names compare case-insensitively;
//! continuation lines are joined with newlines, as dpkg keeps them.

/// One paragraph: fields in file order, each with its (possibly multi-line) value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Paragraph {
    pub fields: Vec<(String, String)>,
}

impl Paragraph {
    /// The value of `name`, compared case-insensitively.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Splits `text` into paragraphs. Comment lines (`#`) are skipped; a line that is neither a
/// field nor a continuation is reported with its 1-based line number.
pub fn parse(text: &str) -> Result<Vec<Paragraph>, (usize, String)> {
    let mut paragraphs = Vec::new();
    let mut current = Paragraph::default();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            if !current.fields.is_empty() {
                paragraphs.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            match current.fields.last_mut() {
                Some((_, value)) => {
                    value.push('\n');
                    value.push_str(line.trim_start());
                }
                None => return Err((number + 1, line.to_owned())),
            }
            continue;
        }
        match line.split_once(':') {
            Some((key, value)) if !key.is_empty() && !key.contains(' ') => {
                current
                    .fields
                    .push((key.to_owned(), value.trim().to_owned()));
            }
            _ => return Err((number + 1, line.to_owned())),
        }
    }
    if !current.fields.is_empty() {
        paragraphs.push(current);
    }
    Ok(paragraphs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_fields_and_continuations() {
        let text = "Package: a\nVersion: 1.0\nDescription: short\n line two\n .\n\n\
                    # comment\npackage: b\nDepends: c (>= 2), d | e\n";
        let paragraphs = parse(text).unwrap();
        assert_eq!(paragraphs.len(), 2);
        assert_eq!(paragraphs[0].get("version"), Some("1.0"));
        assert_eq!(paragraphs[0].get("Description"), Some("short\nline two\n."));
        assert_eq!(paragraphs[1].get("Package"), Some("b"));
        assert_eq!(paragraphs[1].get("Depends"), Some("c (>= 2), d | e"));
        assert_eq!(paragraphs[1].get("Missing"), None);
    }

    #[test]
    fn garbage_line_is_reported_with_its_number() {
        assert_eq!(
            parse("Package: a\nnot a field\n"),
            Err((2, "not a field".to_owned()))
        );
        assert_eq!(parse(" leading continuation\n").unwrap_err().0, 1);
    }
}
