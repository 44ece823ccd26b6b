//! Content-Security-Policy serialization, shared by the compiler and the engine.

/// `name value value;name2 …` in the given order, as helmet writes it (no space after `;`).
pub fn render<S: AsRef<str>>(directives: &[(S, Vec<S>)]) -> String {
    let mut out = String::new();
    for (name, values) in directives {
        if !out.is_empty() {
            out.push(';');
        }
        out.push_str(name.as_ref());
        for v in values {
            out.push(' ');
            out.push_str(v.as_ref());
        }
    }
    out
}

/// Where a strict policy's nonce goes: `'nonce-{nonce}'` in the bundle and in `explain`, a fresh
/// value per response at the edge. Braces never occur in a compiled policy.
pub const NONCE_PLACEHOLDER: &str = "{nonce}";

/// Start tags that get `nonce="…"` in strict mode, as CSS selectors in the syntax both lol_html
/// and workerd's `HTMLRewriter` (lol_html inside the runtime) accept. `rel` is a token list
/// compared ASCII-case-insensitively, hence `~=` and `i`.
pub const NONCE_SELECTORS: [&str; 5] =
    ["script", "style", "link[rel~=\"stylesheet\" i]", "link[rel~=\"preload\" i]", "link[rel~=\"modulepreload\" i]"];

/// The nonce attribute's name. An origin-sent one is overwritten, never trusted.
pub const NONCE_ATTRIBUTE: &str = "nonce";

/// A strict policy with its nonce filled in.
pub fn with_nonce(value: &str, nonce: &str) -> String {
    value.replace(NONCE_PLACEHOLDER, nonce)
}

/// CSP3's `base64-value` (what follows `'nonce-` or `'sha256-`):
/// `1*( ALPHA / DIGIT / "+" / "/" / "-" / "_" ) *2"="`.
pub fn is_base64_value(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    let padding = s.len().saturating_sub(body.len());
    !body.is_empty() && padding <= 2 && body.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_'))
}

/// 128 random bits as the nonce: standard base64, 24 characters (CSP's `base64-value`).
pub fn nonce_from(random: [u8; 16]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(24);
    for chunk in random.chunks(3) {
        let b = [chunk.first().copied().unwrap_or(0), chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextets = [(n >> 18) & 63, (n >> 12) & 63, (n >> 6) & 63, n & 63];
        let keep = chunk.len().saturating_add(1);
        for (i, s) in sextets.iter().enumerate() {
            if i < keep {
                out.push(char::from(ALPHABET.get(*s as usize).copied().unwrap_or(b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// What strict mode does with one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrictAction {
    /// Not HTML, or a body the edge cannot rewrite: the policy's CSP as compiled (`set`).
    Legacy,
    /// Put a fresh nonce on the body's scripts and styles and send the strict policy with it.
    Rewrite,
    /// `HEAD`: the strict policy with a fresh nonce, as a `GET` would carry; there is no body.
    HeaderOnly,
    /// `304`: no CSP at all, so the browser keeps the policy it cached with the page — the one
    /// whose nonce matches the cached body.
    KeepCached,
}

/// Content codings the Workers runtime decodes on the way in and re-encodes on the way out, so
/// the rewriter sees plain HTML. Anything else (`deflate`, stacked codings) passes through
/// untouched with the legacy policy: rewriting bytes the edge cannot read would corrupt them.
pub const READABLE_CODINGS: [&str; 4] = ["", "identity", "gzip", "br"];

/// Strict mode's choice for a response, from its status, headers and the request method.
/// `206` is a byte range of a page: a nonce inserted there would shift every later range, so
/// ranges keep the legacy policy.
pub fn strict_action(status: u16, content_type: &str, content_encoding: &str, head: bool) -> StrictAction {
    if status == 304 {
        return StrictAction::KeepCached;
    }
    let essence = content_type.split(';').next().unwrap_or("").trim();
    let html = essence.eq_ignore_ascii_case("text/html") || essence.eq_ignore_ascii_case("application/xhtml+xml");
    if !html || matches!(status, 204..=206) || !(100..=599).contains(&status) {
        return StrictAction::Legacy;
    }
    let coding = content_encoding.trim();
    if !READABLE_CODINGS.iter().any(|c| c.eq_ignore_ascii_case(coding)) {
        return StrictAction::Legacy;
    }
    if head { StrictAction::HeaderOnly } else { StrictAction::Rewrite }
}

/// Whether a start tag with these attribute names can be given the nonce. A tag the rewriter
/// changes is written out again from its attributes with one space between them, and one kind
/// of tag reads differently then: an attribute without a value, a `/`, then an attribute whose
/// name starts with `=` (`<script a/=b>`, attributes `a` and `=b`) comes out as
/// `<script a =b nonce="…">`, where browsers read `a="b"`; with a quote (`a/='…`) the value runs
/// on past the tag into the following markup, and another marked tag's nonce can end up on this
/// one. Such a name comes only from malformed markup, so a tag with one is left as it is,
/// without the nonce: the browser blocks that script. The worker's `HTMLRewriter` handler
/// (crates/worker/js/shell.mjs) applies the same rule.
pub fn rewrite_keeps_meaning<S: AsRef<str>>(attribute_names: impl IntoIterator<Item = S>) -> bool {
    !attribute_names.into_iter().any(|n| n.as_ref().starts_with('='))
}

#[cfg(feature = "html")]
pub use rewrite::NonceRewriter;

/// The nonce rewriter on lol_html, the same HTML rewriter workerd's `HTMLRewriter` embeds, with
/// the same selectors: the reference the CLI, the tests and the fuzzer run, byte for byte what
/// the edge sends (tests/e2e compare the two).
#[cfg(feature = "html")]
mod rewrite {
    use std::cell::Cell;
    use std::rc::Rc;

    use lol_html::{HtmlRewriter, MemorySettings, Settings, element};

    /// Most bytes one unfinished tag may hold while streaming; a page past it is cut off
    /// rather than sent with unmarked scripts.
    pub const MAX_BUFFERED_BYTES: usize = 8 << 20;

    /// Where rewritten bytes go.
    type Sink<'a> = Box<dyn FnMut(&[u8]) + 'a>;

    /// Streams HTML through, putting `nonce` on every [`super::NONCE_SELECTORS`] element.
    pub struct NonceRewriter<'a> {
        inner: HtmlRewriter<'a, Sink<'a>>,
        /// Elements given the nonce so far (handler hits).
        marked: Rc<Cell<usize>>,
    }

    impl<'a> NonceRewriter<'a> {
        pub fn new(nonce: &str, sink: impl FnMut(&[u8]) + 'a) -> Self {
            let marked = Rc::new(Cell::new(0usize));
            // Where the last counted start tag began: one element can match several selectors.
            let last = Rc::new(Cell::new(None::<usize>));
            let handlers = super::NONCE_SELECTORS
                .iter()
                .map(|selector| {
                    let nonce = nonce.to_owned();
                    let (marked, last) = (Rc::clone(&marked), Rc::clone(&last));
                    element!(selector, move |el| {
                        if !super::rewrite_keeps_meaning(el.attributes().iter().map(|a| a.name())) {
                            return Ok(());
                        }
                        el.set_attribute(super::NONCE_ATTRIBUTE, &nonce)?;
                        let at = el.source_location().bytes().start;
                        if last.replace(Some(at)) != Some(at) {
                            marked.set(marked.get().saturating_add(1));
                        }
                        Ok(())
                    })
                })
                .collect();
            let settings = Settings {
                element_content_handlers: handlers,
                memory_settings: MemorySettings { max_allowed_memory_usage: MAX_BUFFERED_BYTES, ..MemorySettings::default() },
                ..Settings::new()
            };
            let sink: Sink<'a> = Box::new(sink);
            NonceRewriter { inner: HtmlRewriter::new(settings, sink), marked }
        }

        pub fn write(&mut self, chunk: &[u8]) -> Result<(), lol_html::errors::RewritingError> {
            self.inner.write(chunk)
        }

        pub fn end(self) -> Result<(), lol_html::errors::RewritingError> {
            self.finish().map(|_| ())
        }

        /// Elements given the nonce so far. Each matched start tag counts once, even when it
        /// matches several selectors (`<link rel="preload stylesheet">`).
        pub fn marked(&self) -> usize {
            self.marked.get()
        }

        /// [`Self::end`], then how many elements were given the nonce in the whole document.
        pub fn finish(self) -> Result<usize, lol_html::errors::RewritingError> {
            let marked = Rc::clone(&self.marked);
            self.inner.end()?;
            Ok(marked.get())
        }
    }

    /// A whole document at once.
    pub fn rewrite(html: &[u8], nonce: &str) -> Result<Vec<u8>, lol_html::errors::RewritingError> {
        let mut out = Vec::with_capacity(html.len().saturating_add(256));
        let mut r = NonceRewriter::new(nonce, |c: &[u8]| out.extend_from_slice(c));
        r.write(html)?;
        r.end()?;
        Ok(out)
    }
}

#[cfg(feature = "html")]
pub use rewrite::rewrite;

#[cfg(test)]
mod strict_tests {
    // On wasm32 the same tests run under wasm-bindgen-test (scripts/test-core-wasm.sh).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;
    use super::*;

    #[test]
    fn nonce_is_24_base64_chars() {
        assert_eq!(nonce_from([0; 16]), "AAAAAAAAAAAAAAAAAAAAAA==");
        assert_eq!(nonce_from([255; 16]), "/////////////////////w==");
        let n = nonce_from(*b"edgeguard-nonce!");
        assert_eq!(n, "ZWRnZWd1YXJkLW5vbmNlIQ==");
        assert_eq!(with_nonce("script-src 'nonce-{nonce}';style-src 'nonce-{nonce}'", &n), format!("script-src 'nonce-{n}';style-src 'nonce-{n}'"));
    }

    #[test]
    fn strict_applies_to_readable_html_only() {
        use StrictAction::*;
        assert_eq!(strict_action(200, "text/html; charset=utf-8", "", false), Rewrite);
        assert_eq!(strict_action(404, "TEXT/HTML", "gzip", false), Rewrite);
        assert_eq!(strict_action(200, "application/xhtml+xml", "br", false), Rewrite);
        assert_eq!(strict_action(200, "text/html", "", true), HeaderOnly);
        assert_eq!(strict_action(304, "", "", false), KeepCached);
        assert_eq!(strict_action(206, "text/html", "", false), Legacy);
        assert_eq!(strict_action(200, "text/html", "deflate", false), Legacy);
        assert_eq!(strict_action(200, "text/html", "gzip, br", false), Legacy);
        assert_eq!(strict_action(200, "application/json", "", false), Legacy);
        assert_eq!(strict_action(200, "text/htmlx", "", false), Legacy);
        assert_eq!(strict_action(204, "text/html", "", false), Legacy);
    }

    #[cfg(feature = "html")]
    #[test]
    fn rewriter_marks_what_browsers_would_run() {
        let page = br#"<!doctype html><script nonce="evil">a</script><link rel="StyleSheet" href=x><link rel="preload" as=script href=y><link rel=icon href=z><link rel="modulepreload" href=m><style>b</style><!-- <script>c</script> --><template><script>t</script></template><noscript><script>n</script></noscript><svg><script>s</script></svg><div title="<script>x</script>"></div><script src=q></script>"#;
        let out = String::from_utf8(rewrite(page, "N").unwrap()).unwrap();
        assert_eq!(
            out,
            r#"<!doctype html><script nonce="N">a</script><link rel="StyleSheet" href=x nonce="N"><link rel="preload" as=script href=y nonce="N"><link rel=icon href=z><link rel="modulepreload" href=m nonce="N"><style nonce="N">b</style><!-- <script>c</script> --><template><script nonce="N">t</script></template><noscript><script>n</script></noscript><svg><script nonce="N">s</script></svg><div title="<script>x</script>"></div><script src=q nonce="N"></script>"#
        );
    }

    #[cfg(feature = "html")]
    #[test]
    fn rewriter_output_does_not_depend_on_chunking() {
        let page = b"<html><head><script>self.__next_f.push([1,\"a\"])</script><link rel=stylesheet href=/a.css></head><body><p>hi</p><script src=/b.js async></script></body></html>";
        let whole = rewrite(page, "N").unwrap();
        for split in 1..page.len() {
            let mut out = Vec::new();
            let mut r = NonceRewriter::new("N", |c: &[u8]| out.extend_from_slice(c));
            let (a, b) = page.split_at(split);
            r.write(a).unwrap();
            r.write(b).unwrap();
            r.end().unwrap();
            assert_eq!(out, whole, "split at {split}");
        }
    }

    #[cfg(feature = "html")]
    #[test]
    fn rewriter_writes_marked_tags_out_again_from_their_attributes() {
        // Found by the nonce_rewrite fuzz target (`<script/a=>`): lol_html writes a start tag it
        // changed out again from its attributes, so the whitespace and `/` between them become
        // single spaces and an empty unquoted last value loses its `=`. A browser reads the same
        // attributes; the bytes are pinned because the edge's HTMLRewriter writes them too and
        // tests/e2e compare the two. Unmarked tags (the `<p>`) keep every byte.
        let page = b"<script/a=></script><script\tsrc=a\n  async  ></script><link rel=stylesheet href='x' /><p   class=x ></p><STYLE\nmedia=all/>s</STYLE>";
        let out = String::from_utf8(rewrite(page, "N").unwrap()).unwrap();
        assert_eq!(
            out,
            r#"<script a nonce="N"></script><script src=a async nonce="N"></script><link rel=stylesheet href='x' nonce="N" /><p   class=x ></p><STYLE media=all/ nonce="N">s</STYLE>"#
        );
    }

    #[cfg(feature = "html")]
    #[test]
    fn rewriter_leaves_tags_that_would_read_differently_unmarked() {
        // Found by the nonce_rewrite fuzz target (minimized): written out again with spaces,
        // `sr/="a.jt` would become `sr ="a.jt nonce="N"`, `sr` taking the nonce into its value.
        let out = rewrite(br#"<script sr/="a.jt>";</script>"#, "N").unwrap();
        assert_eq!(out, br#"<script sr/="a.jt>";</script>"#);
        // With a single quote the value would run past the tag, up to the next `'` — here into
        // the next marked tag, whose nonce (and a src from the text before it) would land on
        // the first script.
        let page = br#"<script defer/='x>a()</script><p>hi</p><script data-t='y src=//evil.example/x.js' src=/ok.js></script>"#;
        let out = String::from_utf8(rewrite(page, "N").unwrap()).unwrap();
        assert_eq!(
            out,
            r#"<script defer/='x>a()</script><p>hi</p><script data-t='y src=//evil.example/x.js' src=/ok.js nonce="N"></script>"#
        );
        // Not counted; the rule is by name alone (`a="x" =c` would read the same, but is left
        // too); `=` inside values is fine.
        let mut r = NonceRewriter::new("N", |_: &[u8]| {});
        r.write(br#"<script a/=b></script><script a="x" =c></script><style/=x></style><script a="=b"></script><link rel=stylesheet href=a/=b>"#).unwrap();
        assert_eq!(r.finish().unwrap(), 2);
        assert!(rewrite_keeps_meaning(["src", "a=b"]));
        assert!(!rewrite_keeps_meaning(["src", "=b"]));
    }

    #[cfg(feature = "html")]
    #[test]
    fn rewriter_refuses_markup_it_cannot_parse_for_sure() {
        // Strict mode, as workerd runs lol_html: a browser may or may not run this script
        // (it depends on where the <select> is), so the rewriter stops instead of guessing.
        let err = rewrite(b"<select><xmp><script>x</script></select>", "N").unwrap_err();
        assert!(matches!(err, lol_html::errors::RewritingError::ParsingAmbiguity(_)), "{err:?}");
    }

    #[cfg(feature = "html")]
    #[test]
    fn rewriter_counts_each_marked_element_once() {
        let count = |page: &[u8]| {
            let mut r = NonceRewriter::new("N", |_: &[u8]| {});
            r.write(page).unwrap();
            r.finish().unwrap()
        };
        // Two selectors match this one element.
        assert_eq!(count(br#"<link rel="preload stylesheet" href=a><link rel="Preload  ModulePreload" href=b>"#), 2);
        assert_eq!(count(b"<p>no scripts</p><!-- <script></script> --><noscript><style></style></noscript>"), 0);
        assert_eq!(count(b"<script></script><script src=a></script><style></style><svg><script></script></svg>"), 4);
        let mut r = NonceRewriter::new("N", |_: &[u8]| {});
        r.write(b"<script>").unwrap();
        assert_eq!(r.marked(), 1);
    }
}
