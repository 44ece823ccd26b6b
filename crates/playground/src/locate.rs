//! Line and column of diagnostics, as [`Diagnostic::locate`] computes them, in O(log n) per
//! position: a pasted megabyte with a few hundred diagnostics must not rescan the source for
//! each one.

use edgeguard_compiler::diagnostics::{Diagnostic, Located, LocatedNote};

pub struct Locator<'a> {
    source: &'a str,
    /// Byte offset where each line starts.
    starts: Vec<usize>,
}

impl<'a> Locator<'a> {
    pub fn new(source: &'a str) -> Locator<'a> {
        let mut starts = vec![0];
        starts.extend(source.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i.saturating_add(1)));
        Locator { source, starts }
    }

    /// 1-based line and column (in characters), exactly [`edgeguard_compiler::diagnostics::line_col`].
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.source.len());
        if !self.source.is_char_boundary(offset) {
            // line_col reads the whole source when the offset splits a character.
            offset = self.source.len();
        }
        let line = self.starts.partition_point(|s| *s <= offset).max(1);
        let start = self.starts.get(line.saturating_sub(1)).copied().unwrap_or(0);
        let column = self.source.get(start..offset).map_or(0, |s| s.chars().count()).saturating_add(1);
        (line, column)
    }

    pub fn locate(&self, d: &Diagnostic, file: &str) -> Located {
        let (line, column) = self.line_col(d.span.start);
        let (end_line, end_column) = self.line_col(d.span.end);
        Located {
            file: file.to_owned(),
            line,
            column,
            end_line,
            end_column,
            severity: d.severity,
            code: d.code,
            message: d.message.clone(),
            help: d.help.clone(),
            related: d
                .related
                .iter()
                .map(|(span, message)| {
                    let (line, column) = self.line_col(span.start);
                    LocatedNote { line, column, message: message.clone() }
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgeguard_compiler::diagnostics::line_col;

    #[test]
    fn same_as_the_compiler() {
        let sources = [
            "",
            "a",
            "a = 1\nbé = 2\n",
            "\n\n\nx",
            "é\r\nü\nlast line without newline",
            include_str!("../../../fixtures/quotekit.toml"),
        ];
        for source in sources {
            let locator = Locator::new(source);
            for offset in 0..=source.len().saturating_add(2) {
                assert_eq!(locator.line_col(offset), line_col(source, offset), "{source:?} at {offset}");
            }
        }
    }

    #[test]
    fn same_diagnostics_as_locate() {
        let source = include_str!("../../../fixtures/quotekit.toml");
        let out = edgeguard_compiler::compile(source, &edgeguard_compiler::Options::default());
        assert!(!out.diagnostics.is_empty());
        let locator = Locator::new(source);
        for d in &out.diagnostics {
            assert_eq!(locator.locate(d, "f"), d.locate("f", source));
        }
    }
}
