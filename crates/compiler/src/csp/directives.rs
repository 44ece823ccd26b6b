//! `[csp.directives]` entries: which names exist, what each takes, and the checks that turn a
//! written value into a directive of the plan (E030, E031, E034, W026; E033 for `report_to`).

use core::ops::Range;

use super::Directive;
use super::sources::{Problem, check_chars, check_keyword_value, check_source, strip_prefix_ci};
use crate::codes as code;
use crate::diagnostics::{Diagnostic, suggest};
use crate::{Ctx, model};

/// What a directive's value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A source list (fetch directives, base-uri, form-action, frame-ancestors, navigate-to).
    Sources,
    /// No value: `true` writes it, `false` omits it.
    Flag,
    /// `true` (all restrictions) or `allow-*` tokens.
    Sandbox,
    /// `true`, or policy names, `*`, `'none'`, `'allow-duplicates'`.
    TrustedTypes,
    /// `'script'`.
    RequireTrustedTypes,
    /// `'allow'` or `'block'`.
    Webrtc,
    /// URLs.
    ReportUri,
    /// One endpoint name.
    ReportTo,
}

const DIRECTIVES: &[(&str, Kind)] = &[
    ("default-src", Kind::Sources),
    ("script-src", Kind::Sources),
    ("script-src-elem", Kind::Sources),
    ("script-src-attr", Kind::Sources),
    ("style-src", Kind::Sources),
    ("style-src-elem", Kind::Sources),
    ("style-src-attr", Kind::Sources),
    ("img-src", Kind::Sources),
    ("font-src", Kind::Sources),
    ("connect-src", Kind::Sources),
    ("media-src", Kind::Sources),
    ("object-src", Kind::Sources),
    ("frame-src", Kind::Sources),
    ("child-src", Kind::Sources),
    ("worker-src", Kind::Sources),
    ("manifest-src", Kind::Sources),
    ("prefetch-src", Kind::Sources),
    ("fenced-frame-src", Kind::Sources),
    ("base-uri", Kind::Sources),
    ("form-action", Kind::Sources),
    ("frame-ancestors", Kind::Sources),
    ("navigate-to", Kind::Sources),
    ("sandbox", Kind::Sandbox),
    ("upgrade-insecure-requests", Kind::Flag),
    ("block-all-mixed-content", Kind::Flag),
    ("require-trusted-types-for", Kind::RequireTrustedTypes),
    ("trusted-types", Kind::TrustedTypes),
    ("report-uri", Kind::ReportUri),
    ("report-to", Kind::ReportTo),
    ("webrtc", Kind::Webrtc),
];

/// Directives browsers dropped, with what to use instead.
const REMOVED_DIRECTIVES: &[(&str, &str)] = &[
    ("reflected-xss", "reflected-xss was removed in CSP2; the helmet preset sends `X-XSS-Protection: 0`"),
    ("referrer", "referrer was removed in CSP2; set the `Referrer-Policy` header under [headers] instead"),
    ("disown-opener", "disown-opener was removed in CSP3; set `Cross-Origin-Opener-Policy` under [headers] instead"),
    ("plugin-types", "plugin-types was removed in CSP3; use `object-src = [\"'none'\"]`"),
    ("require-sri-for", "require-sri-for never shipped in browsers; remove it"),
];

const TRUSTED_TYPES_KEYWORDS: &[&str] = &["none", "allow-duplicates"];
const REQUIRE_TRUSTED_TYPES_KEYWORDS: &[&str] = &["script"];
const WEBRTC_KEYWORDS: &[&str] = &["allow", "block"];

const SANDBOX_TOKENS: &[&str] = &[
    "allow-downloads",
    "allow-forms",
    "allow-modals",
    "allow-orientation-lock",
    "allow-pointer-lock",
    "allow-popups",
    "allow-popups-to-escape-sandbox",
    "allow-presentation",
    "allow-same-origin",
    "allow-scripts",
    "allow-storage-access-by-user-activation",
    "allow-top-navigation",
    "allow-top-navigation-by-user-activation",
    "allow-top-navigation-to-custom-protocols",
];

fn kind_of(name: &str) -> Option<Kind> {
    DIRECTIVES.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

pub(super) enum Change {
    Set(Directive),
    Remove(String),
}

enum Checked {
    Set(Vec<String>),
    Remove,
    Invalid,
}

pub(super) fn validate_directives(ctx: &mut Ctx, map: &model::Map<model::S<model::DirectiveValue>>) -> Vec<Change> {
    let mut seen: Vec<String> = Vec::new();
    let mut changes = Vec::new();
    for (key, value) in map {
        let name = key.get_ref().to_ascii_lowercase();
        let Some(kind) = kind_of(&name) else {
            ctx.push(unknown_directive(key.get_ref(), key.span()));
            continue;
        };
        if seen.contains(&name) {
            ctx.push(
                Diagnostic::error(
                    code::UNKNOWN_DIRECTIVE,
                    key.span(),
                    format!("directive `{name}` is written twice (directive names are case-insensitive)"),
                )
                .help("keep one of them; browsers ignore every repeat of a directive"),
            );
            continue;
        }
        seen.push(name.clone());
        if kind == Kind::ReportUri || kind == Kind::ReportTo {
            ctx.push(
                Diagnostic::warning(
                    code::REPORT_DIRECTIVE,
                    key.span(),
                    format!("`{name}` written as a directive; prefer the `report_to` key"),
                )
                .help("set `report_to = \"/__edge/csp-report\"` under [csp]: edgeguard then adds report-uri, report-to and Reporting-Endpoints together"),
            );
        }
        let value_span = value.span();
        match check_directive(ctx, &name, kind, value.get_ref(), &value_span) {
            Checked::Set(sources) => changes.push(Change::Set(Directive { name, sources, span: Some(value_span) })),
            Checked::Remove => changes.push(Change::Remove(name)),
            Checked::Invalid => {}
        }
    }
    changes
}

fn unknown_directive(written: &str, span: Range<usize>) -> Diagnostic {
    let lower = written.to_ascii_lowercase();
    let d = Diagnostic::error(code::UNKNOWN_DIRECTIVE, span, format!("unknown CSP directive `{written}`"));
    if let Some((_, why)) = REMOVED_DIRECTIVES.iter().find(|(n, _)| *n == lower) {
        return d.help(*why);
    }
    match suggest(written, DIRECTIVES.iter().map(|(n, _)| *n)) {
        Some(s) => d.help(format!("did you mean `{s}`?")),
        None => d.help("CSP Level 3 directives include default-src, script-src, style-src, img-src, connect-src, object-src, base-uri, form-action, frame-ancestors"),
    }
}

fn check_directive(
    ctx: &mut Ctx,
    name: &str,
    kind: Kind,
    value: &model::DirectiveValue,
    span: &Range<usize>,
) -> Checked {
    let shape = |msg: String, help: String| Diagnostic::error(code::DIRECTIVE_SHAPE, span.clone(), msg).help(help);
    let sources = match value {
        model::DirectiveValue::Flag(false) => return Checked::Remove,
        model::DirectiveValue::Flag(true) => {
            return match kind {
                Kind::Flag | Kind::Sandbox | Kind::TrustedTypes => Checked::Set(Vec::new()),
                _ => {
                    ctx.push(shape(
                        format!("`{name}` needs a list of values, not `true`"),
                        format!("write e.g. `{name} = {}`", example(kind)),
                    ));
                    Checked::Invalid
                }
            };
        }
        model::DirectiveValue::Sources(list) => list,
    };
    if kind == Kind::Flag {
        ctx.push(shape(
            format!("`{name}` takes no value"),
            format!("write `{name} = true` (or `false` to leave it out)"),
        ));
        return Checked::Invalid;
    }
    let needs_one = matches!(kind, Kind::Webrtc | Kind::ReportTo);
    if sources.is_empty() && matches!(kind, Kind::Webrtc | Kind::ReportTo | Kind::RequireTrustedTypes | Kind::ReportUri)
    {
        ctx.push(shape(format!("`{name}` needs a value"), format!("write e.g. `{name} = {}`", example(kind))));
        return Checked::Invalid;
    }
    if needs_one && sources.len() > 1 {
        ctx.push(
            Diagnostic::error(code::BAD_SOURCE, span.clone(), format!("`{name}` takes exactly one value"))
                .help(format!("write e.g. `{name} = {}`", example(kind))),
        );
        return Checked::Invalid;
    }
    let mut kept = Vec::with_capacity(sources.len());
    for source in sources {
        match check_value(name, kind, source) {
            Ok(v) => kept.push(v),
            Err(p) => {
                ctx.push(Diagnostic::error(p.code, span.clone(), p.message).help(p.help));
                if let Some(v) = p.keep {
                    kept.push(v);
                }
            }
        }
    }
    Checked::Set(kept)
}

fn example(kind: Kind) -> &'static str {
    match kind {
        Kind::Sources => "[\"'self'\"]",
        Kind::Flag => "true",
        Kind::Sandbox => "[\"allow-scripts\"]",
        Kind::TrustedTypes => "[\"default\"]",
        Kind::RequireTrustedTypes => "[\"'script'\"]",
        Kind::Webrtc => "[\"'block'\"]",
        Kind::ReportUri => "[\"/__edge/csp-report\"]",
        Kind::ReportTo => "[\"csp-endpoint\"]",
    }
}

fn check_value(name: &str, kind: Kind, s: &str) -> Result<String, Problem> {
    check_chars(name, s)?;
    match kind {
        Kind::Sources => check_source(name, s),
        Kind::Sandbox => {
            let lower = s.to_ascii_lowercase();
            if SANDBOX_TOKENS.contains(&lower.as_str()) {
                return Ok(lower);
            }
            let help = match suggest(s, SANDBOX_TOKENS.iter().copied()) {
                Some(t) => format!("did you mean `{t}`?"),
                None => "sandbox tokens are allow-forms, allow-scripts, allow-same-origin, allow-popups, …".to_owned(),
            };
            Err(Problem::bad(format!("`{s}` is not a sandbox token"), help))
        }
        Kind::TrustedTypes => check_keyword_value(name, s, TRUSTED_TYPES_KEYWORDS, |v| {
            v == "*" || v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-#=_/@.%".contains(&b))
        }),
        Kind::RequireTrustedTypes => check_keyword_value(name, s, REQUIRE_TRUSTED_TYPES_KEYWORDS, |_| false),
        Kind::Webrtc => check_keyword_value(name, s, WEBRTC_KEYWORDS, |_| false),
        Kind::ReportUri => {
            if s.contains(['\'', '"', '\\']) {
                return Err(Problem::bad(
                    format!("invalid report-uri `{s}`"),
                    "write a path such as \"/__edge/csp-report\" or an https:// URL",
                ));
            }
            let lower = s.to_ascii_lowercase();
            let ok = if let Some(rest) = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://")) {
                rest.split(['/', '?', '#']).next().is_some_and(|h| !h.is_empty())
            } else {
                s.starts_with('/') && !s.starts_with("//")
            };
            if ok {
                Ok(s.to_owned())
            } else {
                Err(Problem::bad(
                    format!("invalid report-uri `{s}`"),
                    "write a path such as \"/__edge/csp-report\" or an https:// URL",
                ))
            }
        }
        Kind::ReportTo => {
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.') {
                Ok(s.to_owned())
            } else {
                Err(Problem::bad(
                    format!("invalid report-to endpoint name `{s}`"),
                    "report-to takes an endpoint name such as \"csp-endpoint\"",
                ))
            }
        }
        Kind::Flag => Err(Problem::bad(format!("`{name}` takes no value"), format!("write `{name} = true`"))),
    }
}


pub(super) fn check_report_to(ctx: &mut Ctx, value: &model::S<String>) -> Option<String> {
    let s = value.get_ref();
    let problem = if s.is_empty() {
        Some("it is empty")
    } else if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("it contains whitespace or control characters")
    } else if s.contains([';', ',']) {
        Some("`;` and `,` would end the directive or the policy")
    } else if s.contains(['"', '\\']) {
        Some("`\"` and `\\` can't appear in the Reporting-Endpoints header")
    } else if !s.is_ascii() {
        Some("it contains non-ASCII characters")
    } else if s.starts_with("//") {
        Some("`//` starts a URL on another host without a scheme")
    } else if s.starts_with('/') {
        None
    } else if let Some(rest) = strip_prefix_ci(s, "https://") {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if host.is_empty() { Some("the URL has no host") } else { None }
    } else if strip_prefix_ci(s, "http://").is_some() {
        Some("reports over plain http can be read and forged in transit")
    } else {
        Some("it is neither an absolute path nor an https:// URL")
    };
    match problem {
        None => Some(s.clone()),
        Some(why) => {
            ctx.push(
                Diagnostic::error(code::REPORT_TO, value.span(), format!("invalid `report_to` `{s}`: {why}"))
                    .help("use a path on this site such as \"/__edge/csp-report\", or an https:// URL"),
            );
            None
        }
    }
}

