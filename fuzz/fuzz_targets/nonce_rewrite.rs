//! The strict-CSP nonce rewriter (`edgeguard_core::csp::NonceRewriter`, lol_html as workerd's
//! `HTMLRewriter` runs it) on arbitrary bytes fed in chunks split where the fuzzer says.
//!
//! Input: one header byte `h`, then `h % 8` split offsets (u16 LE each), then the page. Offsets
//! are taken modulo the page length (scaled over it for pages longer than 64 KiB). With bit 7 of
//! `h` set the first 4 KiB also go in one byte at a time. Seeds start with `0` (no splits), so
//! they stay readable HTML.
//!
//! Checks:
//! - never a panic; rewriting succeeds or fails with one of lol_html's two refusals only: the
//!   memory limit, or strict mode's parsing ambiguity (`<select><xmp><script>`: lol_html cannot
//!   tell whether the browser would run that script, so it stops rather than guess; workerd runs
//!   lol_html in strict mode too). Never a content-handler error;
//! - the output does not depend on chunking (the same bytes as `rewrite` of the whole page, the
//!   same number of elements marked), and on a refusal both runs stop at the same place (one
//!   output is a prefix of the other);
//! - the output is well-formed: parsed again, it has exactly the input's matching elements in
//!   order, each marked one carrying our nonce (an origin-sent nonce never survives), and
//!   rewriting it with another nonce marks as many. Elements `csp::rewrite_keeps_meaning` rules
//!   out (`<script a/=b>`) are left unmarked and unchanged;
//! - when the page holds no `nonce` (any case), nothing else changed: outside the marked start
//!   tags the output is the input byte for byte; a marked start tag is the input's tag plus
//!   ` nonce="…"` before its `>` (or ` />`), lol_html having rewritten the whitespace and `/`
//!   between attributes to single spaces and dropped the `=` of an empty unquoted last value
//!   (docs/security.md); rewriting the output again with another nonce changes only the nonce
//!   values.
#![no_main]

use std::cell::RefCell;
use std::ops::Range;
use std::rc::Rc;

use edgeguard_core::csp::{NONCE_ATTRIBUTE, NONCE_SELECTORS, NonceRewriter, rewrite, rewrite_keeps_meaning};
use libfuzzer_sys::fuzz_target;
use lol_html::errors::RewritingError;
use lol_html::{HtmlRewriter, Settings, element};

/// "N0nce" and "Second!" in base64: deterministic, and shaped like the edge's nonces.
const NONCE: &str = "TjBuY2U=";
const NONCE2: &str = "U2Vjb25kIQ==";

/// One run of the rewriter: what it wrote, how many elements it marked, how it ended.
struct Run {
    out: Vec<u8>,
    marked: usize,
    result: Result<(), RewritingError>,
}

fn run(chunks: &[&[u8]], nonce: &str) -> Run {
    let mut out = Vec::new();
    let mut marked = 0;
    let mut result = Ok(());
    {
        let mut r = NonceRewriter::new(nonce, |c: &[u8]| out.extend_from_slice(c));
        for chunk in chunks {
            if let Err(e) = r.write(chunk) {
                result = Err(e);
                break;
            }
        }
        if result.is_ok() {
            match r.finish() {
                Ok(n) => marked = n,
                Err(e) => result = Err(e),
            }
        }
    }
    Run { out, marked, result }
}

/// A refusal lol_html may answer with; anything else is a bug.
fn check_refusal(e: &RewritingError) {
    match e {
        RewritingError::MemoryLimitExceeded(_) | RewritingError::ParsingAmbiguity(_) => {}
        other => panic!("rewriting failed with something other than a refusal: {other:?}"),
    }
}

fn is_ambiguity<T>(r: &Result<T, RewritingError>) -> bool {
    matches!(r, Err(RewritingError::ParsingAmbiguity(_)))
}

/// An element the selectors match.
#[derive(Clone)]
struct Found {
    /// Where its start tag is.
    at: Range<usize>,
    /// Its `nonce` attribute.
    nonce: Option<String>,
    /// Whether the rewriter gives it the nonce (`csp::rewrite_keeps_meaning`).
    markable: bool,
}

/// The elements the selectors match, read without changing anything. One element matching two
/// selectors is one entry.
fn locate(html: &[u8]) -> Result<Vec<Found>, RewritingError> {
    let found: Rc<RefCell<Vec<Found>>> = Rc::default();
    let handlers = NONCE_SELECTORS
        .iter()
        .map(|selector| {
            let found = Rc::clone(&found);
            element!(selector, move |el| {
                let at = el.source_location().bytes();
                let mut found = found.borrow_mut();
                if found.last().map(|f| f.at.start) != Some(at.start) {
                    let markable = rewrite_keeps_meaning(el.attributes().iter().map(|a| a.name()));
                    found.push(Found { at, nonce: el.get_attribute(NONCE_ATTRIBUTE), markable });
                }
                Ok(())
            })
        })
        .collect();
    let settings = Settings { element_content_handlers: handlers, ..Settings::new() };
    let mut r = HtmlRewriter::new(settings, |_: &[u8]| {});
    r.write(html)?;
    r.end()?;
    let found = found.borrow().clone();
    Ok(found)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn replace_all(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(i) = find(rest, from) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(to);
        rest = &rest[i + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

fn is_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

/// A start tag without what lol_html may rewrite when it writes a tag out again: HTML whitespace
/// and `/` between attributes, and the `=` of a last attribute with an empty unquoted value
/// (`<script a=>` comes out as `<script a nonce="…">`: the same attribute, empty either way).
fn squeeze(tag: &[u8]) -> Vec<u8> {
    let mut tag = tag.to_vec();
    if tag.last() == Some(&b'>') {
        let body = &tag[..tag.len() - 1];
        let trimmed = body.iter().rposition(|&b| !is_space(b)).map_or(0, |i| i + 1);
        if trimmed > 0 && body[trimmed - 1] == b'=' {
            tag.remove(trimmed - 1);
        }
    }
    tag.into_iter().filter(|&b| !is_space(b) && b != b'/').collect()
}

/// The tag name as written: after `<`, up to whitespace, `/` or `>`.
fn tag_name(tag: &[u8]) -> &[u8] {
    let rest = &tag[1..];
    let end = rest.iter().position(|&b| is_space(b) || b == b'/' || b == b'>').unwrap_or(rest.len());
    &rest[..end]
}

/// Input and output agree outside the marked start tags; each marked tag is the input's with
/// the nonce added (separators aside).
fn check_only_nonces_added(input: &[u8], output: &[u8], tags: &[Range<usize>]) {
    let needle = format!(" {NONCE_ATTRIBUTE}=\"{NONCE}\"");
    let needle = needle.as_bytes();
    let (mut i, mut o) = (0usize, 0usize);
    for tag in tags {
        assert!(tag.start >= i && tag.end > tag.start && tag.end <= input.len(), "tags out of order: {tags:?}");
        let before = &input[i..tag.start];
        assert!(output[o..].starts_with(before), "bytes before the tag at {} changed", tag.start);
        o += before.len();
        let rest = &output[o..];
        let k = find(rest, needle).unwrap_or_else(|| panic!("the tag at {} got no nonce", tag.start));
        let after = &rest[k + needle.len()..];
        let close: &[u8] = if after.starts_with(b">") {
            b">"
        } else if after.starts_with(b" />") {
            b" />"
        } else {
            panic!("the nonce is not the last attribute of the tag at {}", tag.start)
        };
        let original = &input[tag.clone()];
        let rewritten = [&rest[..k], close].concat();
        assert_eq!(original.first(), Some(&b'<'));
        assert_eq!(original.last(), Some(&b'>'));
        assert!(rewritten.starts_with(b"<") && rewritten[1..].starts_with(tag_name(original)), "tag name changed at {}", tag.start);
        assert_eq!(
            squeeze(&rewritten),
            squeeze(original),
            "the tag at {} changed beyond its separators:\n  in:  {}\n  out: {}",
            tag.start,
            String::from_utf8_lossy(original),
            String::from_utf8_lossy(&rewritten)
        );
        o += k + needle.len() + close.len();
        i = tag.end;
    }
    assert_eq!(&output[o..], &input[i..], "bytes after the last marked tag changed");
}

/// The page split at the header's offsets.
fn chunks(data: &[u8]) -> (Vec<&[u8]>, &[u8]) {
    let Some((&header, rest)) = data.split_first() else { return (Vec::new(), data) };
    let n = usize::from(header % 8);
    let (offsets, page) = rest.split_at(rest.len().min(2 * n));
    let len = page.len();
    let mut cuts: Vec<usize> = offsets
        .chunks_exact(2)
        .map(|b| {
            let off = usize::from(u16::from_le_bytes([b[0], b[1]]));
            if len <= usize::from(u16::MAX) { off % (len + 1) } else { off * len / usize::from(u16::MAX) }
        })
        .collect();
    if header & 0x80 != 0 {
        cuts.extend(1..len.min(4096));
    }
    cuts.sort_unstable();
    cuts.dedup();
    let mut parts = Vec::with_capacity(cuts.len() + 1);
    let mut at = 0;
    for cut in cuts {
        parts.push(&page[at..cut]);
        at = cut;
    }
    parts.push(&page[at..]);
    (parts, page)
}

fuzz_target!(|data: &[u8]| {
    let (parts, page) = chunks(data);
    let chunked = run(&parts, NONCE);
    let reference = rewrite(page, NONCE);
    if let Err(e) = &reference {
        check_refusal(e);
    }
    if let Err(e) = &chunked.result {
        check_refusal(e);
    }
    // The memory limit counts buffered bytes, which chunking changes; an ambiguity is in the
    // markup and must not depend on it.
    let out = match (reference, &chunked.result) {
        (Ok(out), Ok(())) => {
            assert!(out == chunked.out, "output depends on chunking ({} chunks)", parts.len());
            out
        }
        (Err(RewritingError::MemoryLimitExceeded(_)), _) | (_, Err(RewritingError::MemoryLimitExceeded(_))) => return,
        (Err(RewritingError::ParsingAmbiguity(_)), Err(RewritingError::ParsingAmbiguity(_))) => {
            // Both stopped at the same tag: what each sent before stopping is the same stream.
            let whole = run(&[page], NONCE);
            assert!(is_ambiguity(&whole.result), "rewrite() and one write() disagree: {:?}", whole.result);
            let (a, b) = (&whole.out, &chunked.out);
            assert!(a.starts_with(b) || b.starts_with(a), "refused runs sent different bytes");
            assert!(is_ambiguity(&locate(page)), "the rewriter refused a page the reader accepts");
            return;
        }
        (a, b) => panic!("whole and chunked runs disagree: {:?} vs {b:?} ({} chunks)", a.map(|_| ()), parts.len()),
    };
    let marked = chunked.marked;

    // Where the selectors match in the input: the marked elements, counted the same way.
    let tags = locate(page).unwrap_or_else(|e| panic!("the reader refused a page the rewriter accepted: {e:?}"));
    let markable = tags.iter().filter(|f| f.markable).count();
    assert_eq!(markable, marked, "handler hits and matched elements disagree");

    // Well-formed output: the same elements again, each marked one with our nonce and no other
    // (the unmarked ones are the input's tags, byte for byte: checked below).
    let again = locate(&out).unwrap_or_else(|e| panic!("the output does not parse: {e:?}"));
    assert_eq!(again.len(), tags.len(), "the output has a different number of matching elements");
    assert_eq!(again.iter().filter(|f| f.markable).count(), marked, "the output has a different number of marked elements");
    for (before, after) in tags.iter().zip(&again) {
        assert_eq!(before.markable, after.markable, "element at {} changed kind", after.at.start);
        if after.markable {
            assert_eq!(after.nonce.as_deref(), Some(NONCE), "element at {} of the output carries another nonce", after.at.start);
        }
    }
    let second = run(&[&out], NONCE2);
    assert!(second.result.is_ok(), "rewriting the output failed: {:?}", second.result);
    assert_eq!(second.marked, marked, "rewriting the output marked a different number of elements");

    let lower = page.to_ascii_lowercase();
    if find(&lower, b"nonce").is_none() {
        let ranges: Vec<Range<usize>> = tags.into_iter().filter(|f| f.markable).map(|f| f.at).collect();
        check_only_nonces_added(page, &out, &ranges);
        let expected = replace_all(
            &out,
            format!(" {NONCE_ATTRIBUTE}=\"{NONCE}\"").as_bytes(),
            format!(" {NONCE_ATTRIBUTE}=\"{NONCE2}\"").as_bytes(),
        );
        assert_eq!(second.out, expected, "rewriting the output changed more than the nonce values");
    }
});
