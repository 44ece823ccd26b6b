//! CSP violation reports: both formats browsers send, validated and cut to what may be kept
//! (no query strings, credentials or fragments in URLs).

use serde::Serialize;
use serde_json::{Map, Value};

use super::truncate;
use crate::vocab::ReportFormat;

/// Largest CSP report body the intake takes unless the policy says otherwise.
pub const DEFAULT_MAX_REPORT_BYTES: u32 = 64 * 1024;
/// Most reports in one `application/reports+json` body.
pub const MAX_REPORTS_PER_BODY: usize = 100;
/// Longest URL kept from a report (after the query and fragment are cut off).
const MAX_URL_BYTES: usize = 512;

/// One CSP violation, from either format, with URLs cut to scheme, host and path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub document_uri: String,
    pub effective_directive: String,
    /// A URL, or a keyword such as `inline` or `eval`.
    pub blocked_uri: String,
    /// `enforce` or `report`.
    pub disposition: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u64>,
    /// The first characters of the blocked inline script or style (at most 40).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<String>,
}

/// What one report body holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reports {
    pub violations: Vec<Violation>,
    /// Reports of other types in a `reports+json` body (deprecation, intervention…): ignored.
    pub ignored: u32,
}

/// Validate a report body. `Err` is the sentence for the 400 problem body.
pub fn parse_reports(format: ReportFormat, body: &[u8]) -> Result<Reports, &'static str> {
    let value: Value = serde_json::from_slice(body).map_err(|_| "the report body is not JSON")?;
    let mut out = Reports::default();
    match format {
        ReportFormat::CspReport => {
            let report = value.get("csp-report").and_then(Value::as_object).ok_or("an application/csp-report body is an object with a `csp-report` object")?;
            out.violations.push(legacy_violation(report)?);
        }
        ReportFormat::ReportsJson => {
            let list = value.as_array().ok_or("an application/reports+json body is an array of reports")?;
            if list.is_empty() {
                return Err("the report list is empty");
            }
            if list.len() > MAX_REPORTS_PER_BODY {
                return Err("too many reports in one body (at most 100)");
            }
            for item in list {
                let report = item.as_object().ok_or("each report is an object")?;
                let kind = report.get("type").and_then(Value::as_str).ok_or("each report has a `type` string")?;
                let body = report.get("body").and_then(Value::as_object).ok_or("each report has a `body` object")?;
                if kind == "csp-violation" {
                    out.violations.push(reporting_violation(body, report.get("url"))?);
                } else {
                    out.ignored = out.ignored.saturating_add(1);
                }
            }
        }
    }
    Ok(out)
}

/// `report-uri` keys (CSP2): `document-uri`, `violated-directive`, `effective-directive`, …
fn legacy_violation(r: &Map<String, Value>) -> Result<Violation, &'static str> {
    let document = text(r, "document-uri")?.ok_or("the report has no `document-uri`")?;
    // `violated-directive` was the whole directive ("script-src 'self'") in old browsers.
    let directive = match text(r, "effective-directive")? {
        Some(d) => d,
        None => text(r, "violated-directive")?.and_then(|v| v.split_whitespace().next().map(str::to_owned)).ok_or("the report names no directive")?,
    };
    violation(
        document,
        directive,
        text(r, "blocked-uri")?,
        text(r, "disposition")?,
        text(r, "source-file")?,
        [number(r, "line-number"), number(r, "column-number"), number(r, "status-code")],
        text(r, "script-sample")?,
    )
}

/// Reporting API keys (CSP3): `documentURL`, `effectiveDirective`, `blockedURL`, …
fn reporting_violation(b: &Map<String, Value>, url: Option<&Value>) -> Result<Violation, &'static str> {
    let document = match text(b, "documentURL")? {
        Some(d) => d,
        None => url.and_then(Value::as_str).map(str::to_owned).ok_or("the report has no `documentURL`")?,
    };
    let directive = text(b, "effectiveDirective")?.ok_or("the report has no `effectiveDirective`")?;
    violation(
        document,
        directive,
        text(b, "blockedURL")?,
        text(b, "disposition")?,
        text(b, "sourceFile")?,
        [number(b, "lineNumber"), number(b, "columnNumber"), number(b, "statusCode")],
        text(b, "sample")?,
    )
}

fn violation(
    document: String,
    directive: String,
    blocked: Option<String>,
    disposition: Option<String>,
    source: Option<String>,
    [line, column, status_code]: [Option<u64>; 3],
    sample: Option<String>,
) -> Result<Violation, &'static str> {
    let directive = directive.trim().to_ascii_lowercase();
    if directive.is_empty() || directive.len() > 64 || !directive.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
        return Err("the directive is not a CSP directive name");
    }
    let disposition = match disposition.as_deref() {
        None | Some("enforce") => "enforce",
        Some("report") => "report",
        Some(_) => return Err("`disposition` is neither \"enforce\" nor \"report\""),
    };
    Ok(Violation {
        document_uri: strip_url(&document),
        effective_directive: directive,
        blocked_uri: blocked.map(|b| strip_url(&b)).unwrap_or_default(),
        disposition: disposition.to_owned(),
        source_file: source.map(|s| strip_url(&s)).filter(|s| !s.is_empty()),
        line,
        column,
        status_code,
        sample: sample.map(|s| s.chars().take(40).collect()).filter(|s: &String| !s.is_empty()),
    })
}

/// A string field: absent or `null` is `None`; any other non-string is malformed.
fn text(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, &'static str> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err("a report field that should be a string is not"),
    }
}

/// A number field; anything else (browsers disagree on types here) is dropped.
fn number(obj: &Map<String, Value>, key: &str) -> Option<u64> {
    obj.get(key).and_then(Value::as_u64)
}

/// A URL cut to scheme, host and path (no credentials, query or fragment), at most 512 bytes.
/// Keywords (`inline`, `eval`, `data`) pass through.
pub fn strip_url(raw: &str) -> String {
    let cut = raw.split(['?', '#']).next().unwrap_or_default();
    let cut = match cut.find("://") {
        Some(at) => {
            let (scheme, rest) = cut.split_at(at.saturating_add(3));
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            let host = authority.rsplit('@').next().unwrap_or(authority);
            format!("{scheme}{host}{path}")
        }
        None => cut.to_owned(),
    };
    truncate(&cut, MAX_URL_BYTES).to_owned()
}

#[cfg(test)]
mod tests {
    // On wasm32 the same tests run under wasm-bindgen-test (scripts/test-core-wasm.sh).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(ReportFormat::from_content_type("application/csp-report"), Some(ReportFormat::CspReport));
        assert_eq!(ReportFormat::from_content_type("Application/Reports+JSON; charset=utf-8"), Some(ReportFormat::ReportsJson));
        assert_eq!(ReportFormat::from_content_type("application/json"), None);
        assert_eq!(ReportFormat::from_content_type(""), None);
    }

    #[test]
    fn legacy_report() {
        let body = br#"{"csp-report":{"document-uri":"https://a.example/page?token=secret#x","referrer":"","violated-directive":"script-src-elem","effective-directive":"script-src-elem","original-policy":"default-src 'self'","disposition":"enforce","blocked-uri":"https://user:pw@evil.example/x.js?q=1","line-number":12,"column-number":"3","status-code":200,"script-sample":""}}"#;
        let r = parse_reports(ReportFormat::CspReport, body).unwrap();
        assert_eq!(r.violations.len(), 1);
        let v = &r.violations[0];
        assert_eq!(v.document_uri, "https://a.example/page");
        assert_eq!(v.blocked_uri, "https://evil.example/x.js");
        assert_eq!(v.effective_directive, "script-src-elem");
        assert_eq!((v.line, v.column, v.status_code), (Some(12), None, Some(200)));
        assert_eq!(v.sample, None);
        assert_eq!(v.disposition, "enforce");
        // Old browsers: only violated-directive, with its sources.
        let old = br#"{"csp-report":{"document-uri":"https://a.example/","violated-directive":"style-src 'self'","blocked-uri":"inline"}}"#;
        let v = &parse_reports(ReportFormat::CspReport, old).unwrap().violations[0];
        assert_eq!((v.effective_directive.as_str(), v.blocked_uri.as_str()), ("style-src", "inline"));
    }

    #[test]
    fn reporting_api_batch() {
        let body = br#"[
          {"type":"csp-violation","age":1,"url":"https://a.example/p","user_agent":"x","body":{"documentURL":"https://a.example/p?x=1","blockedURL":"eval","effectiveDirective":"script-src","originalPolicy":"x","disposition":"report","sample":"alert(1)","lineNumber":4}},
          {"type":"deprecation","url":"https://a.example/p","body":{"id":"x"}},
          {"type":"csp-violation","url":"https://a.example/q","body":{"effectiveDirective":"img-src","blockedURL":"http://img.example/a.png"}}
        ]"#;
        let r = parse_reports(ReportFormat::ReportsJson, body).unwrap();
        assert_eq!(r.ignored, 1);
        assert_eq!(r.violations.len(), 2);
        assert_eq!(r.violations[0].document_uri, "https://a.example/p");
        assert_eq!(r.violations[0].disposition, "report");
        assert_eq!(r.violations[0].sample.as_deref(), Some("alert(1)"));
        assert_eq!(r.violations[1].document_uri, "https://a.example/q", "the report's url stands in for documentURL");
    }

    #[test]
    fn malformed_reports_are_refused() {
        let cases: [(ReportFormat, &[u8]); 12] = [
            (ReportFormat::CspReport, b"not json"),
            (ReportFormat::CspReport, b"[]"),
            (ReportFormat::CspReport, br#"{"csp-report":"x"}"#),
            (ReportFormat::CspReport, br#"{"csp-report":{"effective-directive":"script-src"}}"#),
            (ReportFormat::CspReport, br#"{"csp-report":{"document-uri":"https://a/"}}"#),
            (ReportFormat::CspReport, br#"{"csp-report":{"document-uri":5,"effective-directive":"script-src"}}"#),
            (ReportFormat::CspReport, br#"{"csp-report":{"document-uri":"https://a/","effective-directive":"<script>"}}"#),
            (ReportFormat::CspReport, br#"{"csp-report":{"document-uri":"https://a/","effective-directive":"img-src","disposition":"maybe"}}"#),
            (ReportFormat::ReportsJson, br#"{"type":"csp-violation"}"#),
            (ReportFormat::ReportsJson, b"[]"),
            (ReportFormat::ReportsJson, br#"[{"type":"csp-violation"}]"#),
            (ReportFormat::ReportsJson, br#"[{"type":"csp-violation","body":{"documentURL":"https://a/"}}]"#),
        ];
        for (format, body) in cases {
            assert!(parse_reports(format, body).is_err(), "{}", String::from_utf8_lossy(body));
        }
        let many = format!("[{}]", vec![r#"{"type":"x","body":{}}"#; 101].join(","));
        assert!(parse_reports(ReportFormat::ReportsJson, many.as_bytes()).is_err());
    }

    #[test]
    fn urls_are_cut() {
        assert_eq!(strip_url("https://a.example:8443/p/q?x=1#f"), "https://a.example:8443/p/q");
        assert_eq!(strip_url("https://u:p@a.example"), "https://a.example");
        assert_eq!(strip_url("inline"), "inline");
        assert_eq!(strip_url(&format!("https://ab/{}", "é".repeat(400))).len(), 511, "cut on a character boundary");
    }
}
