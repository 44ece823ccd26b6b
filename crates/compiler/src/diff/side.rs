//! One bundle prepared for comparison: its header sets parsed once, its routes indexed by
//! pattern, and the rule that takes over a route that only the other bundle has.

use std::collections::HashMap;

use edgeguard_core::Bundle;
use edgeguard_core::bundle::{HeaderSet, Route};
use edgeguard_core::routes::{Match, Matcher, ParamCheck, ParamKind, Segment};

use super::cidr::canonical_cidrs;
use super::headers::HeaderView;
use super::limits::session_view;
use super::rules::RuleView;

pub(super) struct Side<'b> {
    pub(super) bundle: &'b Bundle,
    /// One parsed view per header set.
    headers: Vec<HeaderView>,
    /// Each route's segments, read back from the matcher trie (it holds the parameter types).
    pub(super) segments: Vec<Vec<Segment>>,
    /// Route pattern → index.
    pub(super) index: HashMap<&'b str, usize>,
    pub(super) used_limits: Vec<bool>,
    pub(super) used_keys: Vec<bool>,
    /// For a header-set index out of range (never in a bundle that loaded).
    no_headers: HeaderView,
}

impl<'b> Side<'b> {
    pub(super) fn new(bundle: &'b Bundle) -> Side<'b> {
        let mut used_limits = vec![false; bundle.limits.len()];
        let mut used_keys = vec![false; bundle.api_keys.len()];
        for r in bundle.routes.iter().chain(core::iter::once(&bundle.defaults)) {
            if let Some(slot) = r.limit.and_then(|l| used_limits.get_mut(usize::from(l))) {
                *slot = true;
            }
            if let Some(slot) = r.api_key.and_then(|k| used_keys.get_mut(usize::from(k))) {
                *slot = true;
            }
        }
        // Header sets differ per route (cache, overrides) but mostly share one CSP: parse each
        // distinct CSP once.
        let mut csps = HashMap::new();
        Side {
            bundle,
            headers: bundle.header_sets.iter().map(|set| HeaderView::new(set, &mut csps)).collect(),
            segments: route_segments(&bundle.matcher, bundle.routes.len()),
            index: bundle.routes.iter().enumerate().filter_map(|(i, r)| r.pattern.as_deref().map(|p| (p, i))).collect(),
            used_limits,
            used_keys,
            no_headers: HeaderView::new(&HeaderSet { set: Vec::new(), default: Vec::new(), remove: Vec::new(), hsts: None, cache: None, strict: None }, &mut csps),
        }
    }

    pub(super) fn rule<'a>(&'a self, route: &'a Route, label: &str, segments: Option<&Vec<Segment>>) -> RuleView<'a> {
        let b = self.bundle;
        let params = match segments {
            Some(segs) => {
                let names = label.split('/').filter_map(|s| s.strip_prefix(':'));
                let kinds = segs.iter().filter_map(|s| match s {
                    Segment::Param(kind) => Some(param_text(*kind, &b.matcher.regexes)),
                    _ => None,
                });
                names.zip(kinds).map(|(n, k)| (n.to_owned(), k)).collect()
            }
            None => Vec::new(),
        };
        RuleView {
            label: label.to_owned(),
            methods: route.methods,
            block: route.block,
            require_headers: route.require_headers.iter().map(String::as_str).collect(),
            require_cookie: route.require_cookie.as_ref().map(|g| g.source()),
            require_session: route.require_session.as_ref().map(|r| session_view(b, r)),
            ip_allow: canonical_cidrs(&route.ip_allow),
            ip_deny: canonical_cidrs(&route.ip_deny),
            api_key: route.api_key.and_then(|k| b.api_keys.get(usize::from(k))),
            max_body: route.max_body,
            limit: route.limit.and_then(|l| b.limits.get(usize::from(l))),
            origin: route.origin.and_then(|o| b.origins.get(usize::from(o))).map(|o| o.name.as_str()),
            server_actions: route.server_actions,
            edge_cache: route.edge_cache,
            params,
            headers: self.headers.get(usize::from(route.headers)).unwrap_or(&self.no_headers),
        }
    }

    /// The rule that handles a route's paths in this bundle when the route is not here: the
    /// most specific route matching a sample path of the pattern, else `[defaults]`.
    pub(super) fn fallback<'a>(&'a self, segments: Option<&Vec<Segment>>, defaults: &RuleView<'a>) -> (String, RuleView<'a>) {
        let sample = segments.map(|s| sample_path(s)).unwrap_or_default();
        let refs: Vec<&str> = sample.iter().map(String::as_str).collect();
        let found = match self.bundle.matcher.find(&refs, &AnyRegex) {
            Match::Route(i) | Match::ParamMismatch(i) => Some(i as usize),
            Match::None => None,
        };
        let route = found.and_then(|i| self.bundle.routes.get(i).map(|r| (i, r)));
        match route {
            Some((i, r)) => {
                let label = r.pattern.clone().unwrap_or_default();
                let view = self.rule(r, &label, self.segments.get(i));
                (label, view)
            }
            None => ("[defaults]".to_owned(), defaults.clone()),
        }
    }
}

/// Samples are judged by shape only: any regex parameter is taken to accept the sample.
struct AnyRegex;

impl ParamCheck for AnyRegex {
    fn regex_matches(&self, _: u16, _: &str) -> bool {
        true
    }
}

/// A path of the pattern's shape: one segment for `**`, a value of the parameter's type.
fn sample_path(segments: &[Segment]) -> Vec<String> {
    segments
        .iter()
        .map(|s| match s {
            Segment::Static(text) => text.clone(),
            Segment::Param(ParamKind::Uuid) => "00000000-0000-4000-8000-000000000000".to_owned(),
            Segment::Param(ParamKind::Int) => "1".to_owned(),
            Segment::Param(_) | Segment::CatchAll => "x".to_owned(),
            Segment::Glob(g) => g.parts.join("x"),
        })
        .collect()
}

/// Walk the trie once and record every route's segments (iteratively; each node visited once,
/// so even a corrupt bundle with a cycle ends).
fn route_segments(matcher: &Matcher, routes: usize) -> Vec<Vec<Segment>> {
    let mut out = vec![Vec::new(); routes];
    let mut visited = vec![false; matcher.nodes.len()];
    let mut stack: Vec<(u32, Vec<Segment>)> = vec![(0, Vec::new())];
    while let Some((id, path)) = stack.pop() {
        let Some(seen) = visited.get_mut(id as usize) else { continue };
        if *seen {
            continue;
        }
        *seen = true;
        let Some(node) = matcher.nodes.get(id as usize) else { continue };
        if let Some(slot) = node.terminal.and_then(|r| out.get_mut(r as usize)) {
            slot.clone_from(&path);
        }
        if let Some(slot) = node.catch_all.and_then(|r| out.get_mut(r as usize)) {
            let mut p = path.clone();
            p.push(Segment::CatchAll);
            *slot = p;
        }
        let with = |s: Segment| {
            let mut p = path.clone();
            p.push(s);
            p
        };
        for (text, child) in &node.statics {
            stack.push((*child, with(Segment::Static(text.clone()))));
        }
        for edge in &node.params {
            stack.push((edge.child, with(Segment::Param(edge.kind))));
        }
        for (glob, child) in &node.globs {
            stack.push((*child, with(Segment::Glob(glob.clone()))));
        }
    }
    out
}

fn param_text(kind: ParamKind, regexes: &[String]) -> String {
    match kind {
        ParamKind::Uuid => "uuid".to_owned(),
        ParamKind::Int => "int".to_owned(),
        ParamKind::Slug => "slug".to_owned(),
        ParamKind::Any => "any".to_owned(),
        ParamKind::Regex(i) => format!("re:{}", regexes.get(usize::from(i)).map_or("?", String::as_str)),
    }
}

