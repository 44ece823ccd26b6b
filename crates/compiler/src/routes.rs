//! Route patterns: parsing (`:id`, `[id]`, `*`, `**`, `[...rest]`), parameter types, and the
//! checks that make matching unambiguous — equal-specificity overlaps and unreachable routes.

use std::collections::{BTreeMap, HashMap, HashSet};

use core::ops::Range;

use edgeguard_core::glob::Glob;
use edgeguard_core::routes::{ParamKind, Segment};

use crate::diagnostics::{Diagnostic, suggest};
use crate::model::{Map, S};
use crate::{Ctx, codes};

/// A parsed route pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub segments: Vec<Segment>,
    /// Canonical text (Next.js forms rewritten, e.g. `/api/quotes/:id`).
    pub canonical: String,
    pub span: Range<usize>,
}

const PARAM_TYPES: [&str; 3] = ["uuid", "int", "slug"];

/// Parse a pattern and its `params` types; regex sources are appended to `regexes`.
pub fn parse(ctx: &mut Ctx, path: &S<String>, params: Option<&Map<S<String>>>, regexes: &mut Vec<String>) -> Option<Pattern> {
    let text = path.get_ref();
    let span = path.span();
    let fail = |ctx: &mut Ctx, msg: String, help: &str| {
        ctx.push(Diagnostic::error(codes::PATTERN, span.clone(), msg).help(help.to_owned()));
        None
    };
    let Some(rest) = text.strip_prefix('/') else {
        return fail(ctx, format!("route path `{text}` must start with `/`"), "write the path as the browser requests it, e.g. \"/api/quotes/:id\"");
    };
    let raw: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let mut names: Vec<String> = Vec::new();
    let mut param_names: Vec<(String, usize)> = Vec::new();
    let mut segments = Vec::with_capacity(raw.len());
    let mut canonical = String::new();
    let last = raw.len().saturating_sub(1);
    for (i, seg) in raw.iter().enumerate() {
        let catch_all = *seg == "**"
            || (seg.starts_with("[...") && seg.ends_with(']'))
            || (seg.starts_with("[[...") && seg.ends_with("]]"));
        if catch_all {
            if i != last {
                return fail(ctx, format!("`{seg}` must be the last segment of `{text}`"), "`**` matches the rest of the path, so nothing can follow it");
            }
            segments.push(Segment::CatchAll);
            canonical.push_str("/**");
            continue;
        }
        let param = seg.strip_prefix(':').or_else(|| seg.strip_prefix('[').and_then(|s| s.strip_suffix(']')));
        if let Some(name) = param {
            let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return fail(ctx, format!("`{seg}` is not a valid parameter in `{text}`"), "parameter names are letters, digits and `_`, e.g. `:id`");
            }
            if names.iter().any(|n| n == name) {
                return fail(ctx, format!("parameter `{name}` appears twice in `{text}`"), "give each parameter its own name");
            }
            names.push(name.to_owned());
            param_names.push((name.to_owned(), segments.len()));
            segments.push(Segment::Param(ParamKind::Any));
            canonical.push_str("/:");
            canonical.push_str(name);
            continue;
        }
        if seg.contains("**") {
            return fail(ctx, format!("`**` must be a whole segment in `{text}`"), "use `*` to match inside one segment, `**` alone for the rest of the path");
        }
        if seg.contains('*') {
            if !static_text_ok(&seg.replace('*', "")) {
                return fail(ctx, format!("segment `{seg}` of `{text}` has characters a normalized path never contains"), STATIC_HELP);
            }
            segments.push(Segment::Glob(Glob::new(seg)));
        } else {
            if !static_text_ok(seg) {
                return fail(ctx, format!("segment `{seg}` of `{text}` has characters a normalized path never contains"), STATIC_HELP);
            }
            segments.push(Segment::Static((*seg).to_owned()));
        }
        canonical.push('/');
        canonical.push_str(seg);
    }
    if canonical.is_empty() {
        canonical.push('/');
    }
    let mut ok = true;
    for (name, ty) in params.into_iter().flatten() {
        let Some((_, index)) = param_names.iter().find(|(n, _)| n == name.get_ref()) else {
            let mut d = Diagnostic::error(codes::PARAM, name.span(), format!("`{}` is not a parameter of `{text}`", name.get_ref()));
            d = match suggest(name.get_ref(), names.iter().map(String::as_str)) {
                Some(best) => d.help(format!("did you mean `{best}`?")),
                None => d.help("declare it in the path as `:name` or `[name]`"),
            };
            ctx.push(d);
            ok = false;
            continue;
        };
        let Some(kind) = param_kind(ctx, ty, regexes) else {
            ok = false;
            continue;
        };
        if let Some(slot) = segments.get_mut(*index) {
            *slot = Segment::Param(kind);
        }
    }
    ok.then_some(Pattern { segments, canonical, span })
}

const STATIC_HELP: &str = "write the path in normalized form: no spaces, `%`-escapes only for reserved characters (upper-case hex), no `\\`, `?` or `#`";

/// A static segment must already be in the form the engine normalizes request paths to.
fn static_text_ok(seg: &str) -> bool {
    if seg.is_empty() {
        return true;
    }
    let path = format!("/{seg}");
    edgeguard_core::sanitize::normalize_path(&path).is_ok_and(|n| n == path) && seg != "." && seg != ".."
}

fn param_kind(ctx: &mut Ctx, ty: &S<String>, regexes: &mut Vec<String>) -> Option<ParamKind> {
    let text = ty.get_ref();
    match text.as_str() {
        "uuid" => Some(ParamKind::Uuid),
        "int" => Some(ParamKind::Int),
        "slug" => Some(ParamKind::Slug),
        _ => {
            if let Some(re) = text.strip_prefix("re:") {
                let anchored = format!("^(?:{re})$");
                if let Err(e) = regex_lite::Regex::new(&anchored) {
                    ctx.push(
                        Diagnostic::error(codes::REGEX, ty.span(), format!("the regex `{re}` does not compile: {e}"))
                            .help("the regex must match one whole path segment; it is anchored for you"),
                    );
                    return None;
                }
                let index = match regexes.iter().position(|r| *r == anchored) {
                    Some(i) => i,
                    None => {
                        regexes.push(anchored);
                        regexes.len().saturating_sub(1)
                    }
                };
                return u16::try_from(index).ok().map(ParamKind::Regex);
            }
            let mut d = Diagnostic::error(codes::PARAM, ty.span(), format!("`{text}` is not a parameter type"));
            d = match suggest(text, PARAM_TYPES) {
                Some(best) => d.help(format!("did you mean \"{best}\"? types: uuid, int, slug, \"re:<regex>\"")),
                None => d.help("types: uuid, int, slug, \"re:<regex>\""),
            };
            ctx.push(d);
            None
        }
    }
}

/// Specificity class of a segment: lower is more specific.
fn class(seg: &Segment) -> u8 {
    match seg {
        Segment::Static(_) => 0,
        Segment::Param(ParamKind::Any) => 2,
        Segment::Param(_) => 1,
        Segment::Glob(_) => 3,
        Segment::CatchAll => 4,
    }
}

/// Group key: equal keys have equal specificity and identical static text.
fn shape_key(segments: &[Segment]) -> String {
    let mut key = String::new();
    for seg in segments {
        match seg {
            Segment::Static(s) => {
                key.push_str("s:");
                key.push_str(s);
            }
            other => key.push_str(&format!("c{}", class(other))),
        }
        key.push('/');
    }
    key
}

/// Values that tell typed parameters apart when deciding whether two may match one segment.
const SAMPLES: [&str; 12] = [
    "0", "7", "42", "abc", "a-b", "ABC", "x_y", "a.b", "~", "123e4567-e89b-12d3-a456-426614174000", "123E4567-E89B-12D3-A456-426614174000", "quote-42",
];

fn kinds_overlap(a: ParamKind, b: ParamKind, regexes: &[regex_lite::Regex]) -> bool {
    if a == b {
        return true;
    }
    use edgeguard_core::routes::ParamCheck;
    struct R<'a>(&'a [regex_lite::Regex]);
    impl ParamCheck for R<'_> {
        fn regex_matches(&self, index: u16, value: &str) -> bool {
            self.0.get(usize::from(index)).is_some_and(|r| r.is_match(value))
        }
    }
    let r = R(regexes);
    SAMPLES.iter().any(|s| {
        edgeguard_core::routes::param_matches(a, s, &r) && edgeguard_core::routes::param_matches(b, s, &r)
    })
}

/// Whether two globs could both match some segment: their literal prefixes and suffixes must
/// be compatible (conservative for globs with several `*`).
fn globs_overlap(a: &Glob, b: &Glob) -> bool {
    let (pa, pb) = (a.parts.first().map_or("", String::as_str), b.parts.first().map_or("", String::as_str));
    let (sa, sb) = (a.parts.last().map_or("", String::as_str), b.parts.last().map_or("", String::as_str));
    (pa.starts_with(pb) || pb.starts_with(pa)) && (sa.ends_with(sb) || sb.ends_with(sa))
}

fn segments_overlap(a: &[Segment], b: &[Segment], regexes: &[regex_lite::Regex]) -> bool {
    a.iter().zip(b).all(|(x, y)| match (x, y) {
        (Segment::Param(p), Segment::Param(q)) => kinds_overlap(*p, *q, regexes),
        (Segment::Glob(g), Segment::Glob(h)) => globs_overlap(g, h),
        _ => true,
    })
}

/// Reject equal-specificity overlaps (naming both routes) and routes that can never be chosen.
/// `reserved` are paths the edge answers itself (health), with what answers them.
pub fn check_conflicts(ctx: &mut Ctx, patterns: &[&Pattern], regex_sources: &[String], reserved: &[(String, &str)]) {
    let regexes: Vec<regex_lite::Regex> = regex_sources.iter().filter_map(|s| regex_lite::Regex::new(s).ok()).collect();
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, p) in patterns.iter().enumerate() {
        groups.entry(shape_key(&p.segments)).or_default().push(i);
    }
    let mut reported: HashSet<(usize, usize)> = HashSet::new();
    for members in groups.values() {
        for (n, &i) in members.iter().enumerate() {
            for &j in members.iter().skip(n.saturating_add(1)) {
                let (Some(a), Some(b)) = (patterns.get(i), patterns.get(j)) else { continue };
                if segments_overlap(&a.segments, &b.segments, &regexes) && reported.insert((i, j)) {
                    let same = a.canonical == b.canonical;
                    let message = if same {
                        format!("route `{}` is defined twice", b.canonical)
                    } else {
                        format!("routes `{}` and `{}` have equal specificity and can match the same path", a.canonical, b.canonical)
                    };
                    ctx.push(
                        Diagnostic::error(codes::AMBIGUOUS, b.span.clone(), message)
                            .related(a.span.clone(), format!("`{}` is defined here", a.canonical))
                            .help(if same {
                                "merge the two routes into one".to_owned()
                            } else {
                                "make one more specific (a static segment, or a typed parameter that the other cannot match)".to_owned()
                            }),
                    );
                }
            }
        }
    }
    unreachable(ctx, patterns, reserved);
}

fn unreachable(ctx: &mut Ctx, patterns: &[&Pattern], reserved: &[(String, &str)]) {
    // A lone `*` segment matches exactly what an untyped `:param` matches, and the parameter
    // always wins: the glob route can never be chosen.
    let keys: HashMap<String, usize> = patterns.iter().enumerate().map(|(i, p)| (exact_key(&p.segments), i)).collect();
    for p in patterns {
        for (at, seg) in p.segments.iter().enumerate() {
            let Segment::Glob(g) = seg else { continue };
            if g.parts.iter().any(|part| !part.is_empty()) {
                continue;
            }
            let mut variant = p.segments.clone();
            if let Some(slot) = variant.get_mut(at) {
                *slot = Segment::Param(ParamKind::Any);
            }
            if let Some(winner) = keys.get(&exact_key(&variant)).and_then(|i| patterns.get(*i)) {
                ctx.push(
                    Diagnostic::error(codes::UNREACHABLE, p.span.clone(), format!("route `{}` is unreachable: `{}` matches every path it does and is more specific", p.canonical, winner.canonical))
                        .related(winner.span.clone(), "the more specific route")
                        .help("remove the route, or merge its rules into the other one"),
                );
            }
        }
    }
    for (path, what) in reserved {
        for p in patterns {
            let statics: Option<Vec<&str>> = p
                .segments
                .iter()
                .map(|s| match s {
                    Segment::Static(t) => Some(t.as_str()),
                    _ => None,
                })
                .collect();
            let Some(statics) = statics else { continue };
            let route_path = format!("/{}", statics.join("/"));
            if route_path == *path || (statics.is_empty() && path == "/") {
                ctx.push(
                    Diagnostic::error(codes::UNREACHABLE, p.span.clone(), format!("route `{}` is unreachable: {what} answers this path first", p.canonical))
                        .help("remove the route or move the edge's endpoint to another path"),
                );
            }
        }
    }
}

fn exact_key(segments: &[Segment]) -> String {
    let mut key = String::new();
    for s in segments {
        match s {
            Segment::Static(t) => key.push_str(&format!("s:{t}/")),
            Segment::Param(k) => key.push_str(&format!("p:{k:?}/")),
            Segment::Glob(g) => key.push_str(&format!("g:{}/", g.source())),
            Segment::CatchAll => key.push_str("**/"),
        }
    }
    key
}
