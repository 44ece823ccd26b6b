//! Diagnostics in the output formats of `check`: text (codespan-reporting), JSON ([`Located`]
//! objects), GitHub Actions workflow commands and SARIF 2.1.0 ([`crate::sarif`]).

use core::ops::Range;
use std::io::IsTerminal;

use codespan_reporting::diagnostic::{Diagnostic as Report, Label, Severity as ReportSeverity};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::termcolor::{ColorChoice, StandardStream};
use codespan_reporting::term::{self, Config};
use edgeguard_compiler::diagnostics::{Diagnostic, Located, Severity};

use crate::Failure;
use crate::sarif;

/// Error and warning counts of one compilation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub errors: usize,
    pub warnings: usize,
}

impl Counts {
    pub fn of(diags: &[Diagnostic]) -> Counts {
        let errors = diags.iter().filter(|d| d.is_error()).count();
        Counts { errors, warnings: diags.len().saturating_sub(errors) }
    }

    /// Whether these findings fail the command (exit 1).
    pub fn fail(self, deny_warnings: bool) -> bool {
        self.errors > 0 || (deny_warnings && self.warnings > 0)
    }
}

/// `quotekit.toml: 0 errors, 3 warnings`, plus a note when warnings are denied.
pub fn summary(file: &str, counts: Counts, deny_warnings: bool) -> String {
    let plural = |n: usize, word: &str| if n == 1 { format!("{n} {word}") } else { format!("{n} {word}s") };
    let denied = if deny_warnings && counts.warnings > 0 { " (denied by --deny-warnings)" } else { "" };
    format!("{file}: {}, {}{denied}\n", plural(counts.errors, "error"), plural(counts.warnings, "warning"))
}

/// Where text diagnostics go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Render every diagnostic with codespan-reporting, in color when the stream is a terminal
/// (termcolor's `Auto` then also honors `NO_COLOR` and `TERM=dumb`).
pub fn text(stream: Stream, file: &str, source: &str, diags: &[Diagnostic]) -> Result<(), Failure> {
    let color = |is_tty: bool| if is_tty { ColorChoice::Auto } else { ColorChoice::Never };
    let out = match stream {
        Stream::Stdout => StandardStream::stdout(color(std::io::stdout().is_terminal())),
        Stream::Stderr => StandardStream::stderr(color(std::io::stderr().is_terminal())),
    };
    let mut lock = out.lock();
    let files = SimpleFile::new(file, source);
    let config = Config::default();
    for d in diags {
        match term::emit_to_write_style(&mut lock, &config, &files, &report(d, source)) {
            Ok(()) => {}
            Err(codespan_reporting::files::Error::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(Failure::usage(format!("cannot render diagnostics: {e}"))),
        }
    }
    Ok(())
}

/// The uncolored text rendering, as [`text`] prints it to a pipe.
#[cfg(test)]
pub fn text_string(file: &str, source: &str, diags: &[Diagnostic]) -> String {
    let files = SimpleFile::new(file, source);
    let config = Config::default();
    diags
        .iter()
        .map(|d| term::emit_into_string(&config, &files, &report(d, source)).unwrap_or_default())
        .collect()
}

/// One diagnostic as a codespan report: the code, the message, the primary span, each related
/// span as a secondary label, and the help line as a note.
fn report(d: &Diagnostic, source: &str) -> Report<()> {
    let severity = match d.severity {
        Severity::Error => ReportSeverity::Error,
        Severity::Warning => ReportSeverity::Warning,
    };
    let mut labels = vec![Label::primary((), clamp(&d.span, source))];
    labels.extend(d.related.iter().map(|(span, msg)| Label::secondary((), clamp(span, source)).with_message(msg.clone())));
    Report::new(severity)
        .with_code(d.code)
        .with_message(d.message.clone())
        .with_labels(labels)
        .with_notes(d.help.iter().map(|h| format!("help: {h}")).collect())
}

/// A span the renderer can use: inside the source and on character boundaries.
fn clamp(span: &Range<usize>, source: &str) -> Range<usize> {
    let floor = |mut i: usize| {
        i = i.min(source.len());
        while i > 0 && !source.is_char_boundary(i) {
            i = i.saturating_sub(1);
        }
        i
    };
    let start = floor(span.start);
    start..floor(span.end).max(start)
}

/// `check --format json`: one object with the counts and every diagnostic located, keys in the
/// order `file, ok, errors, warnings, diagnostics` (a `serde_json::Value` would sort them).
pub fn json(file: &str, source: &str, diags: &[Diagnostic], deny_warnings: bool) -> Result<String, Failure> {
    let counts = Counts::of(diags);
    let located: Vec<Located> = diags.iter().map(|d| d.locate(file, source)).collect();
    let list = serde_json::to_string_pretty(&located)
        .map_err(|e| Failure::failed(format!("cannot serialize diagnostics: {e}")))?;
    Ok(format!(
        "{{\n  \"file\": {},\n  \"ok\": {},\n  \"errors\": {},\n  \"warnings\": {},\n  \"diagnostics\": {}\n}}\n",
        serde_json::Value::from(file),
        !counts.fail(deny_warnings),
        counts.errors,
        counts.warnings,
        list.replace('\n', "\n  "),
    ))
}

/// `check --format github`: one workflow command per diagnostic, e.g.
/// `::error file=policy.toml,line=3,col=1,endLine=3,endColumn=9,title=E001::message (help)`.
pub fn github(file: &str, source: &str, diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diags {
        let l = d.locate(file, source);
        let command = match l.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut message = l.message.clone();
        if let Some(help) = &l.help {
            message.push_str(&format!(" ({help})"));
        }
        out.push_str(&format!(
            "::{command} file={},line={},col={},endLine={},endColumn={},title={}::{}\n",
            escape_property(&l.file),
            l.line,
            l.column,
            l.end_line,
            l.end_column,
            escape_property(l.code),
            escape_data(&message),
        ));
    }
    out
}

/// `check --format sarif`: a SARIF 2.1.0 log with one result per diagnostic. The rule id is the
/// diagnostic code and its short description the message of its first occurrence.
pub fn sarif(file: &str, source: &str, diags: &[Diagnostic]) -> String {
    let uri = artifact_uri(file);
    let findings: Vec<sarif::Finding> = diags
        .iter()
        .map(|d| {
            let l = d.locate(file, source);
            sarif::Finding {
                rule_id: l.code.to_owned(),
                rule_name: l.message.clone(),
                level: match l.severity {
                    Severity::Error => sarif::Level::Error,
                    Severity::Warning => sarif::Level::Warning,
                },
                message: l.message,
                file: uri.clone(),
                line: l.line,
                column: l.column,
                end_line: l.end_line,
                end_column: l.end_column,
                help: l.help,
            }
        })
        .collect();
    let mut log = sarif::render(&findings);
    log.push('\n');
    log
}

/// A file path as a SARIF `artifactLocation.uri` (an RFC 3986 URI reference): `/` separators,
/// percent-encoding where a URI needs it, `file:///` before a Windows drive letter, and `./`
/// before a first segment with a `:` (which would read as a scheme).
fn artifact_uri(path: &str) -> String {
    let path = path.replace('\\', "/");
    let mut chars = path.chars();
    let drive = matches!(
        (chars.next(), chars.next(), chars.next()),
        (Some(c), Some(':'), Some('/')) if c.is_ascii_alphabetic()
    );
    let mut out = String::with_capacity(path.len());
    if drive {
        out.push_str("file:///");
    } else if path.split('/').next().is_some_and(|first| first.contains(':')) {
        out.push_str("./");
    }
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Workflow-command message escaping (as `@actions/core` does it).
fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Workflow-command property escaping: message escaping plus `:` and `,`.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "version = 1\n[https]\nredirekt = true\n";

    fn diags() -> Vec<Diagnostic> {
        vec![
            Diagnostic::error("E002", 20..28, "unknown key `redirekt` in [https]").help("did you mean `redirect`?"),
            Diagnostic::warning("W001", 0..7, "50% of\nthe lines").related(12..19, "this table"),
        ]
    }

    #[test]
    fn counts_and_summary() {
        let c = Counts::of(&diags());
        assert_eq!(c, Counts { errors: 1, warnings: 1 });
        assert!(c.fail(false));
        assert!(!Counts { errors: 0, warnings: 2 }.fail(false));
        assert!(Counts { errors: 0, warnings: 2 }.fail(true));
        assert_eq!(summary("p.toml", c, false), "p.toml: 1 error, 1 warning\n");
        assert_eq!(
            summary("p.toml", Counts { errors: 0, warnings: 3 }, true),
            "p.toml: 0 errors, 3 warnings (denied by --deny-warnings)\n"
        );
    }

    #[test]
    fn text_has_location_code_labels_and_help() {
        let text = text_string("p.toml", SRC, &diags());
        assert!(text.contains("error[E002]: unknown key `redirekt` in [https]"), "{text}");
        assert!(text.contains("p.toml:3:1"), "{text}");
        assert!(text.contains("= help: did you mean `redirect`?"), "{text}");
        assert!(text.contains("warning[W001]"), "{text}");
        assert!(text.contains("this table"), "{text}");
    }

    #[test]
    fn spans_outside_the_source_are_clamped() {
        let d = [Diagnostic::error("E001", 500..900, "past the end")];
        assert!(text_string("p.toml", SRC, &d).contains("past the end"));
        assert_eq!(clamp(&(1..3), "é"), 0..2);
        let (start, end) = (5, 2);
        assert_eq!(clamp(&(start..end), "abcdef"), 5..5, "an end before the start is an empty span");
    }

    #[test]
    fn github_commands_escape() {
        let out = github("dir,a:b.toml", SRC, &diags());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "::error file=dir%2Ca%3Ab.toml,line=3,col=1,endLine=3,endColumn=9,title=E002::unknown key `redirekt` in [https] (did you mean `redirect`?)"
        );
        assert_eq!(lines[1], "::warning file=dir%2Ca%3Ab.toml,line=1,col=1,endLine=1,endColumn=8,title=W001::50%25 of%0Athe lines");
        assert_eq!(escape_data("a\r\nb%"), "a%0D%0Ab%25");
        assert_eq!(escape_property("a:b,c%"), "a%3Ab%2Cc%25");
    }

    #[test]
    fn sarif_log() {
        let text = sarif("dir/p q.toml", SRC, &diags());
        assert!(text.ends_with("}\n"));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["version"], "2.1.0");
        let run = &v["runs"][0];
        assert_eq!(run["tool"]["driver"]["name"], "edgeguard");
        assert_eq!(run["tool"]["driver"]["rules"][0]["id"], "E002");
        assert_eq!(run["tool"]["driver"]["rules"][0]["shortDescription"]["text"], "unknown key `redirekt` in [https]");
        assert_eq!(run["tool"]["driver"]["rules"][1]["id"], "W001");
        let results = run["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(results[0]["ruleId"], "E002");
        assert_eq!(results[0]["level"], "error");
        assert_eq!(results[1]["level"], "warning");
        assert_eq!(results[1]["ruleIndex"], 1);
        let loc = &results[0]["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], "dir/p%20q.toml");
        assert_eq!(loc["region"]["startLine"], 3);
        assert_eq!(loc["region"]["startColumn"], 1);
        assert_eq!(loc["region"]["endLine"], 3);
        assert_eq!(loc["region"]["endColumn"], 9);
        assert!(results[0]["message"]["text"].as_str().unwrap().contains("did you mean `redirect`?"));
        let empty: serde_json::Value = serde_json::from_str(&sarif("p.toml", SRC, &[])).unwrap();
        assert_eq!(empty["runs"][0]["results"], serde_json::json!([]));
    }

    #[test]
    fn artifact_uris() {
        assert_eq!(artifact_uri("fixtures/quotekit.toml"), "fixtures/quotekit.toml");
        assert_eq!(artifact_uri("/tmp/a b#c%.toml"), "/tmp/a%20b%23c%25.toml");
        assert_eq!(artifact_uri("C:\\work\\policy.toml"), "file:///C:/work/policy.toml");
        assert_eq!(artifact_uri("a:b.toml"), "./a:b.toml");
        assert_eq!(artifact_uri("poli\u{e7}y.toml"), "poli%C3%A7y.toml");
    }

    #[test]
    fn json_shape() {
        let text = json("p\"q.toml", SRC, &diags(), false).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["file"], "p\"q.toml");
        assert_eq!(v["ok"], false);
        assert_eq!(v["errors"], 1);
        assert_eq!(v["warnings"], 1);
        assert_eq!(v["diagnostics"][0]["line"], 3);
        assert_eq!(v["diagnostics"][0]["code"], "E002");
        assert_eq!(v["diagnostics"][0]["severity"], "error");
        assert_eq!(v["diagnostics"][1]["message"], "50% of\nthe lines");
        assert_eq!(v["diagnostics"][1]["related"][0]["line"], 2);
        let at = |key: &str| text.find(&format!("\n  \"{key}\": ")).unwrap();
        assert!(at("file") < at("ok") && at("ok") < at("errors") && at("errors") < at("warnings") && at("warnings") < at("diagnostics"));
        assert!(text.ends_with("\n  ]\n}\n"), "{text}");

        let empty = json("p.toml", SRC, &[], true).unwrap();
        assert_eq!(empty, "{\n  \"file\": \"p.toml\",\n  \"ok\": true,\n  \"errors\": 0,\n  \"warnings\": 0,\n  \"diagnostics\": []\n}\n");
    }
}
