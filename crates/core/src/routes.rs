//! Route matching: a segment trie searched most-specific-first.
//!
//! At every level the search tries, in order: a static segment, typed `:param`s, untyped
//! `:param`s, `*` globs inside the segment, then `**` (zero or more remaining segments). The
//! first complete match in that order is the most specific route, so the cost grows with the
//! depth of the path, not with the number of routes.

use serde::{Deserialize, Serialize};

use crate::glob::Glob;

/// Built-in parameter types, or an index into the bundle's regex table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParamKind {
    Uuid,
    Int,
    Slug,
    Regex(u16),
    Any,
}

impl ParamKind {
    /// Lower sorts first: typed parameters are tried before untyped ones.
    pub fn rank(self) -> u8 {
        match self {
            ParamKind::Uuid => 0,
            ParamKind::Int => 1,
            ParamKind::Slug => 2,
            ParamKind::Regex(_) => 3,
            ParamKind::Any => 4,
        }
    }
}

/// One segment of a route pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Static(String),
    Param(ParamKind),
    Glob(Glob),
    CatchAll,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamEdge {
    pub kind: ParamKind,
    pub child: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Sorted by segment text for binary search.
    pub statics: Vec<(String, u32)>,
    /// Sorted by [`ParamKind::rank`].
    pub params: Vec<ParamEdge>,
    /// Sorted most literal text first.
    pub globs: Vec<(Glob, u32)>,
    /// Route whose pattern ends with `**` at this level.
    pub catch_all: Option<u32>,
    /// Route whose pattern ends exactly here.
    pub terminal: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matcher {
    pub nodes: Vec<Node>,
    /// Full-match regex sources for `re:` parameters, compiled when the engine loads.
    pub regexes: Vec<String>,
}

impl Default for Matcher {
    fn default() -> Self {
        Matcher { nodes: vec![Node::default()], regexes: Vec::new() }
    }
}

/// What the search found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    Route(u32),
    /// The path has the shape of this route but a typed parameter rejected its value, and no
    /// route more specific than a catch-all took it: answered 404 at the edge.
    ParamMismatch(u32),
    None,
}

/// Checks a segment against a parameter type. Regexes are compiled once per engine.
pub trait ParamCheck {
    fn regex_matches(&self, index: u16, value: &str) -> bool;
}

pub fn param_matches(kind: ParamKind, value: &str, regexes: &impl ParamCheck) -> bool {
    match kind {
        ParamKind::Any => true,
        ParamKind::Uuid => is_uuid(value),
        ParamKind::Int => !value.is_empty() && value.len() <= 20 && value.bytes().all(|b| b.is_ascii_digit()),
        ParamKind::Slug => is_slug(value),
        ParamKind::Regex(i) => regexes.regex_matches(i, value),
    }
}

fn is_uuid(v: &str) -> bool {
    v.len() == 36
        && v.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// Lowercase letters and digits in runs separated by single hyphens.
fn is_slug(v: &str) -> bool {
    !v.is_empty()
        && !v.starts_with('-')
        && !v.ends_with('-')
        && !v.contains("--")
        && v.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

enum Candidate {
    Node { node: u32, at: usize, mismatched: bool },
    CatchAll { route: u32, mismatched: bool },
}

impl Matcher {
    /// Add a route; the compiler has already rejected ambiguous or duplicate patterns.
    pub fn insert(&mut self, segments: &[Segment], route: u32) {
        let mut node = 0usize;
        for segment in segments {
            let next = u32::try_from(self.nodes.len()).unwrap_or(u32::MAX);
            let Some(current) = self.nodes.get_mut(node) else { return };
            let child = match segment {
                Segment::CatchAll => {
                    current.catch_all.get_or_insert(route);
                    return;
                }
                Segment::Static(text) => match current.statics.binary_search_by(|(s, _)| s.as_str().cmp(text)) {
                    Ok(i) => current.statics.get(i).map_or(next, |(_, c)| *c),
                    Err(i) => {
                        current.statics.insert(i, (text.clone(), next));
                        next
                    }
                },
                Segment::Param(kind) => match current.params.iter().find(|e| e.kind == *kind) {
                    Some(edge) => edge.child,
                    None => {
                        current.params.push(ParamEdge { kind: *kind, child: next });
                        current.params.sort_by_key(|e| e.kind.rank());
                        next
                    }
                },
                Segment::Glob(glob) => match current.globs.iter().find(|(g, _)| g == glob) {
                    Some((_, c)) => *c,
                    None => {
                        current.globs.push((glob.clone(), next));
                        current.globs.sort_by_key(|(g, _)| core::cmp::Reverse(g.literal_len()));
                        next
                    }
                },
            };
            if child == next {
                self.nodes.push(Node::default());
            }
            node = child as usize;
        }
        if let Some(current) = self.nodes.get_mut(node) {
            current.terminal.get_or_insert(route);
        }
    }

    /// Find the most specific route for normalized path segments.
    pub fn find(&self, segments: &[&str], regexes: &impl ParamCheck) -> Match {
        let mut stack: Vec<Candidate> = Vec::with_capacity(8);
        stack.push(Candidate::Node { node: 0, at: 0, mismatched: false });
        let mut near_miss: Option<u32> = None;
        while let Some(candidate) = stack.pop() {
            let (node_id, at, mismatched) = match candidate {
                Candidate::CatchAll { route, mismatched } => {
                    if mismatched {
                        near_miss.get_or_insert(route);
                        continue;
                    }
                    // A catch-all never beats a more specific route that only failed its types.
                    return near_miss.map_or(Match::Route(route), Match::ParamMismatch);
                }
                Candidate::Node { node, at, mismatched } => (node, at, mismatched),
            };
            let Some(node) = self.nodes.get(node_id as usize) else { continue };
            let Some(segment) = segments.get(at) else {
                if let Some(route) = node.terminal {
                    if !mismatched {
                        return Match::Route(route);
                    }
                    near_miss.get_or_insert(route);
                }
                if let Some(route) = node.catch_all {
                    stack.push(Candidate::CatchAll { route, mismatched });
                }
                continue;
            };
            let next = at.saturating_add(1);
            // Pushed in reverse priority so the most specific is popped first.
            if let Some(route) = node.catch_all {
                stack.push(Candidate::CatchAll { route, mismatched });
            }
            for (glob, child) in node.globs.iter().rev() {
                if glob.matches(segment) {
                    stack.push(Candidate::Node { node: *child, at: next, mismatched });
                }
            }
            for edge in node.params.iter().rev() {
                let ok = param_matches(edge.kind, segment, regexes);
                stack.push(Candidate::Node { node: edge.child, at: next, mismatched: mismatched || !ok });
            }
            if let Ok(i) = node.statics.binary_search_by(|(s, _)| s.as_str().cmp(segment))
                && let Some((_, child)) = node.statics.get(i) {
                    stack.push(Candidate::Node { node: *child, at: next, mismatched });
                }
        }
        near_miss.map_or(Match::None, Match::ParamMismatch)
    }

    /// Every index must be in range; run when a bundle is loaded.
    pub fn check(&self, routes: usize) -> Result<(), String> {
        let nodes = self.nodes.len();
        if nodes == 0 {
            return Err("matcher has no root".into());
        }
        let route_ok = |r: &Option<u32>| r.is_none_or(|r| (r as usize) < routes);
        for node in &self.nodes {
            let children = node
                .statics
                .iter()
                .map(|(_, c)| *c)
                .chain(node.params.iter().map(|e| e.child))
                .chain(node.globs.iter().map(|(_, c)| *c));
            for child in children {
                if child as usize >= nodes {
                    return Err("matcher child index out of range".into());
                }
            }
            if !route_ok(&node.catch_all) || !route_ok(&node.terminal) {
                return Err("matcher route index out of range".into());
            }
            for edge in &node.params {
                if let ParamKind::Regex(i) = edge.kind
                    && usize::from(i) >= self.regexes.len() {
                        return Err("matcher regex index out of range".into());
                    }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    // On wasm32 the same tests run under wasm-bindgen-test (scripts/test-core-wasm.sh).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;
    use super::*;

    struct NoRegex;
    impl ParamCheck for NoRegex {
        fn regex_matches(&self, _: u16, _: &str) -> bool {
            false
        }
    }

    fn seg(p: &str) -> Vec<Segment> {
        p.split('/')
            .filter(|s| !s.is_empty())
            .map(|s| match s {
                "**" => Segment::CatchAll,
                ":uuid" => Segment::Param(ParamKind::Uuid),
                ":int" => Segment::Param(ParamKind::Int),
                ":any" => Segment::Param(ParamKind::Any),
                s if s.contains('*') => Segment::Glob(Glob::new(s)),
                s => Segment::Static(s.to_owned()),
            })
            .collect()
    }

    fn matcher(patterns: &[&str]) -> Matcher {
        let mut m = Matcher::default();
        for (i, p) in patterns.iter().enumerate() {
            m.insert(&seg(p), i as u32);
        }
        m
    }

    fn find(m: &Matcher, path: &str) -> Match {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        m.find(&segments, &NoRegex)
    }

    #[test]
    fn most_specific_wins() {
        let m = matcher(&["/api/**", "/api/:any", "/api/:int", "/api/me", "/api/debug-*", "/"]);
        assert_eq!(find(&m, "/api/me"), Match::Route(3));
        assert_eq!(find(&m, "/api/42"), Match::Route(2));
        assert_eq!(find(&m, "/api/debug-x"), Match::Route(1), "untyped param beats glob");
        assert_eq!(find(&m, "/api/a/b"), Match::Route(0));
        assert_eq!(find(&m, "/api"), Match::Route(0), "** matches zero segments");
        assert_eq!(find(&m, "/"), Match::Route(5));
        assert_eq!(find(&m, "/other"), Match::None);
    }

    #[test]
    fn glob_beats_catch_all() {
        let m = matcher(&["/api/**", "/api/debug-*"]);
        assert_eq!(find(&m, "/api/debug-oauth"), Match::Route(1));
        assert_eq!(find(&m, "/api/debug-oauth/x"), Match::Route(0));
    }

    #[test]
    fn backtracks_out_of_a_dead_static_branch() {
        let m = matcher(&["/a/b/c", "/a/:any/d"]);
        assert_eq!(find(&m, "/a/b/d"), Match::Route(1));
    }

    #[test]
    fn typed_param_mismatch_is_reported_over_catch_all() {
        let m = matcher(&["/api/**", "/api/quotes/:uuid/pdf"]);
        let id = "123e4567-e89b-12d3-a456-426614174000";
        assert_eq!(find(&m, &format!("/api/quotes/{id}/pdf")), Match::Route(1));
        assert_eq!(find(&m, "/api/quotes/nope/pdf"), Match::ParamMismatch(1));
        assert_eq!(find(&m, "/api/quotes/nope/other"), Match::Route(0));
    }

    #[test]
    fn untyped_sibling_takes_what_the_typed_one_refuses() {
        let m = matcher(&["/u/:int", "/u/:any"]);
        assert_eq!(find(&m, "/u/7"), Match::Route(0));
        assert_eq!(find(&m, "/u/seven"), Match::Route(1));
    }

    #[test]
    fn builtin_types() {
        assert!(is_uuid("123E4567-e89b-12d3-a456-426614174000"));
        assert!(!is_uuid("123e4567e89b12d3a456426614174000"));
        assert!(is_slug("lawn-care-2"));
        assert!(!is_slug("Lawn"));
        assert!(!is_slug("a--b"));
        assert!(param_matches(ParamKind::Int, "0042", &NoRegex));
        assert!(!param_matches(ParamKind::Int, "-1", &NoRegex));
    }
}
