use edgeguard_core::Reason;
use super::cases::{Lane, Matcher, REASONS, RateLimitExpect};
use super::parse::LineIndex;
use edgeguard_compiler::diagnostics;
use super::report::{shell_quote, xml_attr, xml_text};

use super::*;

fn errors(src: &str) -> Vec<String> {
    match parse(src) {
        Ok(cases) => panic!("parsed {} cases", cases.len()),
        Err(d) => d.iter().map(|d| format!("{} | {}", d.message, d.help.clone().unwrap_or_default())).collect(),
    }
}

const GOOD: &str = r#"
[defaults]
headers = { host = "example.com", "X-A" = "1" }
client_ip = "198.51.100.7"
env = "staging"

[[case]]
name = "one"
request = "GET /x"
headers = { "x-a" = "2", "content-length" = 10 }
repeat = 3
[case.expect]
status = "none"
route = "none"
rate_limit = { name = "api", remaining = 1 }
headers = { "X-Frame-Options" = "DENY" }
headers_match = { "content-security-policy" = "object-src 'none'" }
removes = ["X-Powered-By"]

[[case]]
request = "POST https://b.example/y"
env = "production"
lane = "canary"
at = 60
expect = { status = 404, reason = "blocked", action = "reject" }
"#;

#[test]
fn parses_cases_with_defaults() {
    let cases = parse(GOOD).unwrap();
    assert_eq!(cases.len(), 2);
    let a = &cases[0];
    assert_eq!(a.name, "one");
    assert_eq!(a.step.request.headers, vec![
        ("host".to_owned(), "example.com".to_owned()),
        ("content-length".to_owned(), "10".to_owned()),
        ("x-a".to_owned(), "2".to_owned()),
    ], "defaults first; a case's header replaces the default of the same name");
    assert_eq!((a.step.repeat, a.env.as_deref(), a.step.lane), (3, Some("staging"), Lane::Active));
    assert_eq!(a.step.client_ip, "198.51.100.7".parse().ok());
    assert_eq!(a.expect.status, Some(None));
    assert_eq!(a.expect.route, Some(None));
    assert_eq!(a.expect.headers, vec![("x-frame-options".to_owned(), "DENY".to_owned())]);
    assert_eq!(a.expect.removes, vec!["x-powered-by".to_owned()]);
    assert_eq!(a.expect.rate_limit, Some(Some(RateLimitExpect { name: Some("api".into()), remaining: Some(1), ..Default::default() })));
    assert_eq!(&GOOD[a.span.clone()], "[[case]]");
    let b = &cases[1];
    assert_eq!(b.name, "POST https://b.example/y", "the request line names an unnamed case");
    assert_eq!((b.env.as_deref(), b.step.lane, b.step.now), (Some("production"), Lane::Canary, 60_000_000_000));
    assert!(b.step.request.headers.iter().any(|(n, v)| n == "host" && v == "example.com"), "a default host wins over the URL's, as -H does");
}

#[test]
fn unknown_keys_suggest() {
    let e = errors("[[case]]\nrequest = \"GET https://a/\"\nstaus = 1\n[case.expect]\nstaus = 200\nheader = {}\n");
    assert_eq!(e.len(), 3, "{e:?}");
    assert_eq!(e[0], "unknown key `staus` in [[case]] | did you mean `status`? it goes in [case.expect]");
    assert_eq!(e[1], "unknown key `staus` in [case.expect] | did you mean `status`?");
    assert_eq!(e[2], "unknown key `header` in [case.expect] | did you mean `headers`?");
    let e = errors("[[cases]]\nrequest = \"GET https://a/\"\n");
    assert_eq!(e, vec!["unknown key `cases` in the case file | did you mean `case`?".to_owned()]);
    let e = errors("[[case]]\nrequest = \"GET https://a/\"\nstatus = 1\nexpect = { action = \"reject\" }\n");
    assert_eq!(e, vec!["unknown key `status` in [[case]] | `status` goes in [case.expect]".to_owned()]);
}

#[test]
fn bad_values_are_reported() {
    let e = errors(concat!(
        "[[case]]\nrequest = \"G(T https://a/\"\nexpect = { status = 200 }\n",
        "[[case]]\nrequest = \"GET /no-host\"\nexpect = { status = 200 }\n",
        "[[case]]\nrequest = \"GET https://a/\"\nclient_ip = \"nope\"\nrepeat = 0\nexpect = { status = 999, reason = \"blockd\", route = \"api\", headers_match = { a = \"(\" } }\n",
        "[[case]]\nname = \"x\"\nexpect = { status = 200 }\n",
        "[[case]]\nrequest = \"GET https://a/\"\n",
        "[[case]]\nrequest = \"GET https://a/\"\nexpect = {}\n",
    ));
    let all = e.join("\n");
    for needle in [
        "`G(T` is not an HTTP method",
        "`/no-host` has no host",
        "`client_ip` \"nope\" is not an IP address",
        "`repeat` must be between 1 and 1000000; got 0",
        "`status` must be between 100 and 599; got 999",
        "`reason` cannot be \"blockd\" | did you mean \"blocked\"?",
        "`route` \"api\" is not a route pattern",
        "`headers_match.a` is not a valid regular expression",
        "case `x` has no `request`",
        "has no expectations",
        "`expect` is empty",
    ] {
        assert!(all.contains(needle), "`{needle}` in:\n{all}");
    }
}

const BEFORE: &str = r#"
[defaults]
headers = { host = "example.com", "x-a" = "1" }
client_ip = "198.51.100.7"
at = 10
lane = "canary"

[[case]]
request = "POST /send"
client_ip = "203.0.113.9"
at = 70
before = [
  { request = "POST /send", repeat = 4 },
  { request = "GET https://b.example/", headers = { "X-A" = "2" }, client_ip = "2001:db8::1", at = 60, lane = "active" },
]
expect = { status = 429 }

[[case]]
request = "GET /x"
expect = { status = 200 }
[[case.before]]
request = "GET /y"
[[case.before]]
request = "GET /z"
repeat = 2
"#;

#[test]
fn before_requests_take_the_defaults_not_the_case() {
    let cases = parse(BEFORE).unwrap();
    let [a, b] = &cases[..] else { panic!("{} cases", cases.len()) };
    assert_eq!(a.before.len(), 2);
    let (first, second) = (&a.before[0], &a.before[1]);
    assert_eq!(first.request_line, "POST /send");
    assert_eq!((first.repeat, first.at, first.now, first.lane), (4, 10, 10_000_000_000, Lane::Canary), "[defaults] at and lane");
    assert_eq!(first.client_ip, "198.51.100.7".parse().ok(), "[defaults] client_ip, not the case's");
    assert_eq!(first.request.headers, vec![("host".to_owned(), "example.com".to_owned()), ("x-a".to_owned(), "1".to_owned())]);
    assert_eq!((second.repeat, second.at, second.lane), (1, 60, Lane::Active));
    assert_eq!(second.client_ip, "2001:db8::1".parse().ok());
    assert_eq!(second.request.headers, vec![("host".to_owned(), "example.com".to_owned()), ("X-A".to_owned(), "2".to_owned())]);
    assert_eq!((a.step.at, a.step.client_ip, a.earlier()), (70, "203.0.113.9".parse().ok(), 5));
    assert_eq!(a.earlier_requests().as_deref(), Some("5 earlier requests"));
    let lines: Vec<&str> = b.before.iter().map(|s| s.request_line.as_str()).collect();
    assert_eq!(lines, ["GET /y", "GET /z"], "[[case.before]] tables, in order");
    assert_eq!((b.earlier(), &BEFORE[b.span.clone()]), (3, "[[case]]"));
    let plain = parse(GOOD).unwrap();
    assert!(plain.iter().all(|c| c.before.is_empty() && c.earlier_requests().is_none()));
}

#[test]
fn before_errors() {
    let e = errors(concat!(
        "[[case]]\nrequest = \"GET https://a/\"\nexpect = { status = 200 }\n",
        "before = [{ request = \"GET https://a/\", expect = { status = 200 } }, { request = \"GET https://a/\", reqest = \"x\", status = 1, env = \"x\" }]\n",
        "[[case]]\nrequest = \"GET https://a/\"\nat = 5\nexpect = { status = 200 }\n",
        "before = [{ request = \"GET https://a/\", at = 3 }, { request = \"GET https://a/\", at = 2 }, { request = \"GET https://a/\", at = 6 }]\n",
        "[[case]]\nrequest = \"GET https://a/\"\nexpect = { status = 200 }\nbefore = [{ repeat = 0 }, { headers = {} }, \"GET /\", { request = \"G(T /\" }]\n",
        "[[case]]\nrequest = \"GET https://a/\"\nexpect = { status = 200 }\nbefore = { request = \"GET https://a/\" }\n",
        "[defaults]\nbefore = []\n",
    ));
    let want = [
        "`expect` in a `before` request | a before request has no expect: make it a case of its own, or put the expectation on the case",
        "unknown key `reqest` in a `before` request | did you mean `request`?",
        "unknown key `status` in a `before` request | a before request has no expect: make it a case of its own, or put the expectation on the case",
        "`env` in a `before` request | a before request runs in its case's environment: set `env` on the case",
        "this `before` request is at 2 s, before the one above it (at 3 s) | before requests are sent in order, and time does not go backwards: order them by `at`",
        "this `before` request is at 6 s, after its case (at 5 s) | before requests are sent first, and time does not go backwards: give it an `at` no later than the case's",
        "`repeat` must be between 1 and 1000000; got 0 | ",
        "a `before` request has no `request` | add request = \"GET https://example.com/path\"",
        "a `before` request must be a table, not a string | write each one as { request = \"GET https://example.com/\" }",
        "`G(T` is not an HTTP method | a method is a token such as GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS",
        "`before` is a single table; it is a list of requests | write before = [{ request = \"GET https://example.com/\" }] or [[case.before]] (two brackets)",
        "unknown key `before` in [defaults] | `before` goes in each [[case]]",
    ];
    assert_eq!(e, want.map(str::to_owned), "every problem, in the order of the file");
}

#[test]
fn a_before_error_points_at_its_line_and_column() {
    let src = "[[case]]\nrequest = \"GET https://a/\"\nat = 1\nexpect = { status = 200 }\n[[case.before]]\nrequest = \"GET https://a/\"\nat = 2\n";
    let Err(d) = parse(src) else { panic!("parsed") };
    assert_eq!(d.len(), 1);
    assert_eq!(diagnostics::line_col(src, d[0].span.start), (7, 6), "the entry's `at` value");
    let src = "[[case]]\nrequest = \"GET https://a/\"\nexpect = { status = 200 }\n[[case.before]]\nreqest = \"GET https://a/\"\n";
    let Err(d) = parse(src) else { panic!("parsed") };
    assert_eq!(d.len(), 1, "a misspelt key, and no second error for the missing request");
    assert_eq!(diagnostics::line_col(src, d[0].span.start), (5, 1));
}

#[test]
fn syntax_errors_and_empty_files() {
    assert!(errors("[[case]\n")[0].starts_with("TOML syntax:"));
    assert_eq!(errors("# nothing\n"), vec!["the file has no cases | add one: [[case]] with `request` and [case.expect]".to_owned()]);
    assert!(errors("[case]\nrequest = \"GET https://a/\"\n")[0].contains("[[case]]"));
}

#[test]
fn reasons_are_the_contracts() {
    let all = [
        Reason::Ok,
        Reason::HttpsRedirect,
        Reason::CanonicalHost,
        Reason::HostNotAllowed,
        Reason::BadRequest,
        Reason::UriTooLong,
        Reason::HeadersTooLarge,
        Reason::Health,
        Reason::Blocked,
        Reason::MethodNotAllowed,
        Reason::NotFound,
        Reason::Forbidden,
        Reason::MissingHeader,
        Reason::Unauthorized,
        Reason::LengthRequired,
        Reason::PayloadTooLarge,
        Reason::RateLimited,
        Reason::CspReport,
        Reason::Metrics,
        Reason::UnsupportedMediaType,
        Reason::Maintenance,
        Reason::SessionMissing,
        Reason::SessionInvalid,
        Reason::SessionExpired,
        Reason::SessionClaims,
        Reason::SessionUnavailable,
        Reason::Dashboard,
        Reason::BotDenied,
        Reason::GeoDenied,
        Reason::ShieldBlocked,
    ];
    assert_eq!(all.map(Reason::code).to_vec(), REASONS.to_vec());
}

#[test]
fn line_index_agrees_with_line_col() {
    let src = "a = 1\nbé = 2\n\n[[case]]\nx";
    let index = LineIndex::new(src);
    for offset in 0..=src.len() + 2 {
        if src.is_char_boundary(offset.min(src.len())) {
            assert_eq!(index.line_col(src, offset), diagnostics::line_col(src, offset), "offset {offset}");
        }
    }
}

#[test]
fn literal_patterns_match_as_the_regex_would() {
    let pattern = |source: &str| {
        let src = format!("[[case]]\nrequest = \"GET https://a/\"\nexpect = {{ headers_match = {{ x = \"{source}\" }} }}\n");
        parse(&src).unwrap().remove(0).expect.headers_match.remove(0).1
    };
    let literal = pattern("object-src 'none'");
    assert!(matches!(literal.matcher, Matcher::Literal));
    assert!(literal.is_match("default-src 'self'; object-src 'none'; base-uri 'self'"));
    assert!(!literal.is_match("object-src 'self'"));
    let regex = pattern("^max-age=\\\\d+");
    assert!(matches!(regex.matcher, Matcher::Regex(_)));
    assert!(regex.is_match("max-age=31536000; includeSubDomains"));
    assert!(!regex.is_match("x max-age=1"));
}

#[test]
fn escaping() {
    assert_eq!(xml_attr("a<b>&\"c'\n\u{1}"), "a&lt;b&gt;&amp;&quot;c&apos;&#10;\u{FFFD}");
    assert_eq!(xml_text("<x>\n&"), "&lt;x&gt;\n&amp;");
    assert_eq!(shell_quote("GET https://a/b?c=1"), "'GET https://a/b?c=1'");
    assert_eq!(shell_quote("it's"), "'it'\\''s'");
    assert_eq!(shell_quote("p.toml"), "p.toml");
}

#[test]
fn lanes_pick_the_expected_side_of_any_share() {
    for share in [1u32, 500, 9_999] {
        assert!(Lane::Canary.draw() % 10_000 < share);
        assert!(Lane::Active.draw() % 10_000 >= share);
    }
    assert!(Lane::Active.draw() % 10_000 < 10_000, "at 100 % every new client is a canary client");
}
