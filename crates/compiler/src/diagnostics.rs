//! Diagnostics: every problem in a policy, with a stable code, a byte span and a help line.
//! Rendering to text lives in the CLI; JSON and editor integrations use [`Located`].

use core::ops::Range;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding. `code` is stable across releases (`E0xx` errors, `W0xx` warnings); the full
/// list is in docs/diagnostics.md.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: &'static str,
    pub message: String,
    #[serde(skip)]
    pub span: Range<usize>,
    pub help: Option<String>,
    /// Secondary locations (e.g. the other route of an ambiguous pair).
    #[serde(skip)]
    pub related: Vec<(Range<usize>, String)>,
}

impl Diagnostic {
    pub fn error(code: &'static str, span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Error, code, message: message.into(), span, help: None, related: Vec::new() }
    }

    pub fn warning(code: &'static str, span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, code, message: message.into(), span, help: None, related: Vec::new() }
    }

    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn related(mut self, span: Range<usize>, label: impl Into<String>) -> Diagnostic {
        self.related.push((span, label.into()));
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// A diagnostic with its position resolved against the source: what JSON output and the
/// playground show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Located {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    pub severity: Severity,
    pub code: &'static str,
    pub message: String,
    pub help: Option<String>,
    pub related: Vec<LocatedNote>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocatedNote {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line = before.bytes().filter(|b| *b == b'\n').count().saturating_add(1);
    let line_start = before.rfind('\n').map_or(0, |i| i.saturating_add(1));
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()).saturating_add(1);
    (line, column)
}

impl Diagnostic {
    pub fn locate(&self, file: &str, source: &str) -> Located {
        let (line, column) = line_col(source, self.span.start);
        let (end_line, end_column) = line_col(source, self.span.end);
        Located {
            file: file.to_owned(),
            line,
            column,
            end_line,
            end_column,
            severity: self.severity,
            code: self.code,
            message: self.message.clone(),
            help: self.help.clone(),
            related: self
                .related
                .iter()
                .map(|(span, message)| {
                    let (line, column) = line_col(source, span.start);
                    LocatedNote { line, column, message: message.clone() }
                })
                .collect(),
        }
    }
}

/// The closest known name, for "did you mean" hints.
pub fn suggest<'a>(unknown: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let unknown_lower = unknown.to_ascii_lowercase();
    known
        .into_iter()
        .map(|k| (strsim::damerau_levenshtein(&unknown_lower, &k.to_ascii_lowercase()), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let src = "a = 1\nbé = 2\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        assert_eq!(line_col(src, 9), (2, 3), "columns count characters, not bytes");
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("hsst", ["hsts", "redirect"]), Some("hsts"));
        assert_eq!(suggest("canonical-host", ["canonical_host", "hosts"]), Some("canonical_host"));
        assert_eq!(suggest("zzz", ["hsts", "redirect"]), None);
    }
}
