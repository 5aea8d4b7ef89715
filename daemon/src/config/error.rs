//! Configuration errors that name the file, line, column and key.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, when the problem has a place.
    pub line: Option<usize>,
    /// 1-based column, when the problem has a place.
    pub column: Option<usize>,
    /// Dotted key (`mapping.uid_min`), when the problem belongs to one.
    pub key: Option<String>,
    /// What is wrong and what is expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        f.write_str(": ")?;
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects errors while a file is validated, turning byte spans into lines and columns.
pub(crate) struct Reporter<'a> {
    file: &'a Path,
    text: &'a str,
    pub(crate) errors: Vec<ConfigError>,
    /// Put before every key reported (`provider.` while a provider's own sections are checked).
    pub(crate) key_prefix: &'static str,
}

impl<'a> Reporter<'a> {
    pub(crate) fn new(file: &'a Path, text: &'a str) -> Self {
        Self {
            file,
            text,
            errors: Vec::new(),
            key_prefix: "",
        }
    }

    /// An error at `span` (a byte range of the file) about `key`.
    pub(crate) fn at(&mut self, span: Option<Range<usize>>, key: &str, message: impl Into<String>) {
        let (line, column) = match span {
            Some(s) => {
                let (l, c) = line_col(self.text, s.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line,
            column,
            key: Some(format!("{}{key}", self.key_prefix)),
            message: message.into(),
        });
    }

    /// An error from the TOML parser or the schema (unknown key, wrong type).
    pub(crate) fn toml_error(&mut self, e: &toml::de::Error) {
        let (line, column, key) = match e.span() {
            Some(s) => {
                let (l, c) = line_col(self.text, s.start);
                (Some(l), Some(c), key_at(self.text, s.start))
            }
            None => (None, None, None),
        };
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line,
            column,
            key,
            message: e.message().trim().to_string(),
        });
    }

    pub(crate) fn finish(mut self) -> Result<(), ConfigErrors> {
        if self.errors.is_empty() {
            return Ok(());
        }
        self.errors
            .sort_by_key(|e| (e.line.unwrap_or(usize::MAX), e.column.unwrap_or(0)));
        Err(ConfigErrors(self.errors))
    }
}

/// 1-based line and column (in characters) of byte offset `pos`.
pub(crate) fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(text.len());
    let before = text.get(..pos).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before
        .get(line_start..)
        .map_or(1, |s| s.chars().count() + 1);
    (line, column)
}

/// The dotted key whose line holds `pos` (`section.key`), found from the text so an error
/// reported on a value can name its key.
fn key_at(text: &str, pos: usize) -> Option<String> {
    let pos = pos.min(text.len());
    let line_start = text.get(..pos)?.rfind('\n').map_or(0, |i| i + 1);
    let line_end = text.get(pos..)?.find('\n').map_or(text.len(), |i| pos + i);
    let line = text.get(line_start..line_end)?.trim();
    let section = text
        .get(..line_start)?
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && !l.starts_with("[["))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    if line.starts_with('[') {
        return Some(
            line.trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_string(),
        );
    }
    let own = line.split('=').next()?.trim().trim_matches('"');
    // A line inside a list written over several lines belongs to the key that opens the list.
    let opener = if line.contains('=') {
        None
    } else {
        text.get(..line_start)?
            .lines()
            .rev()
            .map(str::trim)
            .take_while(|l| !l.starts_with('['))
            .find(|l| l.contains('='))
            .filter(|l| l.matches('[').count() > l.matches(']').count())
            .and_then(|l| l.split('=').next())
            .map(|k| k.trim().trim_matches('"'))
    };
    let key = opener.unwrap_or(own);
    if key.is_empty() {
        return section;
    }
    Some(match section {
        Some(s) => format!("{s}.{key}"),
        None => key.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Offsets become 1-based lines and columns.
    #[test]
    fn positions() {
        let t = "a = 1\n[x]\nbb = 2\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, t.find("bb").unwrap()), (3, 1));
        assert_eq!(line_col(t, t.find('2').unwrap()), (3, 6));
        assert_eq!(key_at(t, t.find('2').unwrap()).as_deref(), Some("x.bb"));
        assert_eq!(key_at(t, 4).as_deref(), Some("a"));
    }
}
