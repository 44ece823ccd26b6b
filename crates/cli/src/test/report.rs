//! The results as text, GitHub annotations, SARIF and JUnit.

use std::fmt::Write as _;
use std::time::Duration;

use edgeguard_compiler::diagnostics::Diagnostic;

use crate::render;
use crate::sarif::{self, Finding, Level};

use super::cases::{Case, CaseFile};
use super::compare::json_opt;
use super::{Args, Outcome};

/// The `test-failed` rule's help.
const SARIF_HELP: &str = "the edge's decision for the case's request differs from its [case.expect]: fix the policy or the \
    expectation; the `edgeguard explain` command in the message shows the whole decision";

pub(super) struct Report<'a> {
    pub(super) args: &'a Args,
    pub(super) files: &'a [CaseFile],
    pub(super) outcomes: &'a [Outcome],
}

impl Report<'_> {
    fn case(&self, o: &Outcome) -> Option<(&CaseFile, &Case)> {
        let f = self.files.get(o.file)?;
        Some((f, f.cases.get(o.case)?))
    }

    /// Each failure as a readable diff (and, with --verbose, each pass as one line).
    pub(super) fn text(&self) -> String {
        let mut out = String::new();
        for o in self.outcomes {
            let Some((f, c)) = self.case(o) else { continue };
            let line = c.at_line;
            if o.passed() {
                if self.args.verbose {
                    let _ = writeln!(out, "ok   {}:{line}: {}", f.file, c.name);
                }
                continue;
            }
            let _ = writeln!(out, "FAIL {}:{line}: {}", f.file, c.name);
            for m in &o.mismatches {
                let _ = writeln!(out, "  {}\n    expected: {}\n    actual:   {}", m.field, m.expected, m.actual);
            }
            if let Some(earlier) = c.earlier_requests() {
                let _ = writeln!(out, "  after:    {earlier} (`before`), on the same rate limiter");
            }
            if let Some(e) = &o.explanation {
                let status = e.status.map_or_else(String::new, |s| format!(" {s}"));
                let _ = writeln!(
                    out,
                    "  decision: {}{status} {}, route {}, origin {}: {}",
                    e.action.code(),
                    e.reason.code(),
                    json_opt(e.route.as_deref()),
                    json_opt(e.origin.as_deref()),
                    e.detail
                );
            }
            let _ = writeln!(out, "  explain:  {}", self.explain_command(c));
            out.push('\n');
        }
        out
    }

    /// The `edgeguard explain` command that shows the case's whole decision. `explain` sends
    /// one request (repeated) on a fresh limiter, so for a case with `before` requests a shell
    /// comment says that it shows the case's own request without them.
    fn explain_command(&self, c: &Case) -> String {
        let s = &c.step;
        let mut cmd = format!("edgeguard explain {} --request {}", shell_quote(&self.args.policy.display().to_string()), shell_quote(&s.request_line));
        for (n, v) in &s.given_headers {
            let _ = write!(cmd, " -H {}", shell_quote(&format!("{n}: {v}")));
        }
        if let Some(ip) = s.client_ip {
            let _ = write!(cmd, " --client-ip {ip}");
        }
        // `explain --session` sends a valid Bearer session; an expired, forged or cookie one
        // is the case's own.
        if let Some(session) = s.session.as_ref().filter(|x| !x.forged && x.expires_in > 0 && x.cookie_chunks.is_none()) {
            let _ = write!(cmd, " --session {}", shell_quote(&session.claims.to_string()));
            if let Some(source) = &session.source {
                let _ = write!(cmd, " --session-source {}", shell_quote(source));
            }
        }
        let cf = &s.request.cf;
        if let Some(country) = &cf.country {
            let _ = write!(cmd, " --country {}", shell_quote(country));
        }
        if let Some(continent) = &cf.continent {
            let _ = write!(cmd, " --continent {}", shell_quote(continent));
        }
        if let Some(asn) = cf.asn {
            let _ = write!(cmd, " --asn {asn}");
        }
        if cf.verified_bot {
            cmd.push_str(" --verified-bot");
        }
        if let Some(category) = &cf.verified_bot_category {
            let _ = write!(cmd, " --verified-bot-category {}", shell_quote(category));
        }
        if let Some(env) = c.env.as_ref().or(self.args.env.as_ref()) {
            let _ = write!(cmd, " --env {}", shell_quote(env));
        }
        if s.repeat > 1 {
            let _ = write!(cmd, " --repeat {}", s.repeat);
        }
        if s.at > 0 {
            let _ = write!(cmd, " --at {}", s.at);
        }
        if let Some(earlier) = c.earlier_requests() {
            let _ = write!(cmd, "   # this request alone, without the {earlier}");
        }
        cmd
    }

    /// One-line (per field) summary of a failure, for annotations and SARIF.
    fn message(o: &Outcome, c: &Case) -> String {
        let fields: Vec<String> =
            o.mismatches.iter().map(|m| format!("{}: expected {}, actual {}", m.field, m.expected, m.actual)).collect();
        let after = c.earlier_requests().map_or_else(String::new, |e| format!(" after {e}"));
        format!("case `{}` failed{after}\n{}", c.name, fields.join("\n"))
    }

    /// GitHub Actions `::error` annotations on each failing case's `[[case]]` line.
    pub(super) fn github(&self) -> String {
        let mut out = String::new();
        for (fi, f) in self.files.iter().enumerate() {
            let diags: Vec<Diagnostic> = self
                .outcomes
                .iter()
                .filter(|o| o.file == fi && !o.passed())
                .filter_map(|o| {
                    let c = f.cases.get(o.case)?;
                    Some(Diagnostic::error("test-failed", c.span.clone(), Self::message(o, c)))
                })
                .collect();
            out.push_str(&render::github(&f.file, &f.source, &diags));
        }
        out
    }

    /// SARIF 2.1.0: one `test-failed` result per failing case.
    pub(super) fn sarif(&self) -> String {
        let findings: Vec<Finding> = self
            .outcomes
            .iter()
            .filter(|o| !o.passed())
            .filter_map(|o| {
                let (f, c) = self.case(o)?;
                let (line, column, end_line, end_column) = (c.at_line, c.at_column, c.end_line, c.end_column);
                Some(Finding {
                    rule_id: "test-failed".to_owned(),
                    rule_name: "A policy test case failed: the edge's decision differs from the case's expectations".to_owned(),
                    level: Level::Error,
                    message: format!("{}\nexplain: {}", Self::message(o, c), self.explain_command(c)),
                    file: f.file.clone(),
                    line,
                    column,
                    end_line,
                    end_column,
                    help: Some(SARIF_HELP.to_owned()),
                })
            })
            .collect();
        sarif::render(&findings)
    }

    /// JUnit XML: one testsuite per case file.
    pub(super) fn junit(&self, elapsed: Duration) -> String {
        let failures = self.outcomes.iter().filter(|o| !o.passed()).count();
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites name=\"edgeguard test\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{}\">",
            self.outcomes.len(),
            secs(elapsed)
        );
        for (fi, f) in self.files.iter().enumerate() {
            let mine: Vec<&Outcome> = self.outcomes.iter().filter(|o| o.file == fi).collect();
            let failed = mine.iter().filter(|o| !o.passed()).count();
            let time: Duration = mine.iter().map(|o| o.time).sum();
            let _ = writeln!(
                out,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" skipped=\"0\" time=\"{}\">",
                xml_attr(&f.file),
                mine.len(),
                secs(time)
            );
            for o in mine {
                let Some(c) = f.cases.get(o.case) else { continue };
                let line = c.at_line;
                let _ = write!(
                    out,
                    "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\" line=\"{line}\" time=\"{}\"",
                    xml_attr(&c.name),
                    xml_attr(&f.file),
                    xml_attr(&f.file),
                    secs(o.time)
                );
                if o.passed() {
                    out.push_str("/>\n");
                    continue;
                }
                let first = o.mismatches.first().map(|m| format!("{}: expected {}, actual {}", m.field, m.expected, m.actual));
                let mut body = String::new();
                for m in &o.mismatches {
                    let _ = writeln!(body, "{}\n  expected: {}\n  actual:   {}", m.field, m.expected, m.actual);
                }
                if let Some(earlier) = c.earlier_requests() {
                    let _ = writeln!(body, "after: {earlier} (`before`), on the same rate limiter");
                }
                let _ = writeln!(body, "explain: {}", self.explain_command(c));
                let _ = writeln!(
                    out,
                    ">\n      <failure type=\"test-failed\" message=\"{}\">{}</failure>\n    </testcase>",
                    xml_attr(&first.unwrap_or_default()),
                    xml_text(&body)
                );
            }
            out.push_str("  </testsuite>\n");
        }
        out.push_str("</testsuites>\n");
        out
    }
}

/// Seconds with millisecond precision, as JUnit's `time` attributes.
fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

/// A character XML 1.0 allows; others become U+FFFD.
fn xml_char(c: char) -> char {
    match c {
        '\t' | '\n' | '\r' => c,
        c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
        c => c,
    }
}

pub(super) fn xml_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(xml_char(c)),
        }
    }
    out
}

pub(super) fn xml_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(xml_char(c)),
        }
    }
    out
}

/// POSIX shell single-quoting, only when needed.
pub(super) fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b)) {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

