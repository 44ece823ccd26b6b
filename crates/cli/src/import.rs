//! `edgeguard import next`: read a Next.js app's routes and bring a policy's `[[routes]]` up to
//! date with them, keeping every hand-written setting and comment (`toml_edit`).
//!
//! What is read:
//! - App Router route handlers, `app/**/route.{ts,js,tsx,jsx,mjs}` (also under `src/`): the
//!   folder path is the route (route groups `(group)` dropped, `[id]` → `:id`, `[...rest]` and
//!   `[[...rest]]` → `**`; `@slot`, `_private` and intercepting `(.)x` folders are not routes),
//!   and the file's exported handlers are its methods (`export async function GET`,
//!   `export const POST =`, `export { handler as PATCH }`, `export const { GET, POST } = …`).
//! - Pages Router API routes, `pages/api/**`: their methods cannot be read (one handler takes
//!   every method), so they are imported without `methods`.
//! - Pages, public files and metadata files (favicon, robots, sitemap, …): only to tell whether
//!   a policy route still matches something the app serves (`doctor --app`).
//!
//! What changes in the policy:
//! - An app route that today falls to a catch-all (`**`) route or to `[defaults]` gets its own
//!   `[[routes]]` entry with its methods. Routes do not inherit from one another, so the new
//!   entry copies every key of the rule that matched it before (cookie, limits, cache, …):
//!   the request keeps every check it had and only loses the methods the handler does not serve.
//!   A route matched by a blocked rule, a `*` glob or a `:param` route is left alone.
//! - A route whose pattern the app has, with a `methods` list that no longer matches the
//!   handlers, gets its `methods` rewritten. HEAD (served from GET by Next.js) and OPTIONS
//!   (answered by Next.js) are kept or left out as the policy had them.
//! - Nothing is removed: policy routes the app no longer has are reported only.
//!
//! Importing twice changes nothing the second time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use edgeguard_core::Bundle;
use edgeguard_core::bundle::method;
use edgeguard_core::glob::Glob;
use edgeguard_core::routes::{Match, ParamCheck};

use crate::render::{self, Counts, Stream};
use crate::{CmdResult, Failure, Status, output, policy};

/// Import routes from an application into a policy.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub source: Source,
}

#[derive(Debug, clap::Subcommand)]
pub enum Source {
    /// Import a Next.js app's routes: App Router route handlers (app/**/route.ts) and pages/api/**.
    Next(NextArgs),
}

/// Bring a policy's routes up to date with a Next.js app.
#[derive(Debug, clap::Args)]
#[command(after_help = "Missing routes are added with the methods their handlers export and the \
    settings of the rule that matched them before; routes whose handlers changed get new methods. \
    Comments and hand-written keys are kept; nothing is removed. The result is compiled before it \
    is written: a result with errors is not written (exit 1). A summary of the changes goes to \
    stderr.\n\n\
    Examples:\n  \
    edgeguard import next . --policy policy.toml            # print the updated policy\n  \
    edgeguard import next . --policy policy.toml --write    # update policy.toml in place\n  \
    edgeguard import next ../app --policy policy.toml -o new.toml")]
pub struct NextArgs {
    /// The app's root directory (holding app/, src/app/, pages/ or src/pages/).
    #[arg(value_name = "APP_DIR")]
    pub app_dir: PathBuf,
    /// The policy to update.
    #[arg(long, value_name = "POLICY")]
    pub policy: PathBuf,
    /// Write the updated policy here instead of stdout.
    #[arg(short, long, value_name = "OUT", conflicts_with = "write")]
    pub output: Option<PathBuf>,
    /// Update POLICY in place (atomically).
    #[arg(long)]
    pub write: bool,
    /// Compile for this environment (overrides `app.environment`) when deciding which rule
    /// matches a route today.
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
}

pub fn run(args: &Args) -> CmdResult {
    match &args.source {
        Source::Next(next) => run_next(next),
    }
}

fn run_next(args: &NextArgs) -> CmdResult {
    let scan = scan(&args.app_dir)?;
    let compiled = policy::load(&args.policy, args.env.as_deref())?;
    let counts = Counts::of(&compiled.output.diagnostics);
    if counts.errors > 0 {
        let errors: Vec<_> = compiled.output.diagnostics.iter().filter(|d| d.is_error()).cloned().collect();
        render::text(Stream::Stderr, &compiled.file, &compiled.source, &errors)?;
        output::eprint(&render::summary(&compiled.file, counts, false));
        return Ok(Status::Failed);
    }
    let Some(bundle) = compiled.output.bundle.as_ref() else {
        return Err(Failure::failed(format!("`{}` compiled without errors but no bundle was produced (a bug in edgeguard)", compiled.file)));
    };
    let routes = policy_routes(&compiled.source);
    let analysis = analyse(&scan, &routes, bundle)?;
    let (text, report) = apply(&compiled.source, &scan, &routes, &analysis)?;

    let changed = text != compiled.source;
    if changed {
        // What is written must compile: a new route can collide with one written by hand.
        #[allow(clippy::needless_update, reason = "Options may grow fields; they keep their defaults")]
        let options = edgeguard_compiler::Options { env: args.env.clone(), ..edgeguard_compiler::Options::default() };
        let out = edgeguard_compiler::compile(&text, &options);
        if out.has_errors() {
            let errors: Vec<_> = out.diagnostics.iter().filter(|d| d.is_error()).cloned().collect();
            output::eprint(&report);
            output::eprint("error: the updated policy does not compile; nothing was written:\n");
            render::text(Stream::Stderr, "(updated policy)", &text, &errors)?;
            return Ok(Status::Failed);
        }
    }
    output::eprint(&report);
    if args.write {
        if changed {
            output::write_atomically(&args.policy, text.as_bytes())?;
            output::eprint(&format!("wrote {}\n", args.policy.display()));
        } else {
            output::eprint(&format!("{} is up to date; not rewritten\n", args.policy.display()));
        }
    } else if let Some(out) = &args.output {
        output::write_atomically(out, text.as_bytes())?;
        output::eprint(&format!("wrote {}\n", out.display()));
    } else {
        output::print(&text)?;
    }
    Ok(Status::Success)
}

// ---------------------------------------------------------------------------------- patterns

/// One segment of a route pattern, as the policy language reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Static(String),
    Param(String),
    /// A segment with `*` inside it.
    Glob(String),
    /// `**`: the rest of the path, zero or more segments (last only).
    CatchAll,
}

/// Parse a policy route path the way the compiler does (Next.js forms accepted).
pub fn parse_pattern(path: &str) -> Option<Vec<Seg>> {
    let rest = path.strip_prefix('/')?;
    let mut segs = Vec::new();
    for seg in rest.split('/').filter(|s| !s.is_empty()) {
        let catch_all = seg == "**"
            || (seg.starts_with("[...") && seg.ends_with(']'))
            || (seg.starts_with("[[...") && seg.ends_with("]]"));
        if catch_all {
            segs.push(Seg::CatchAll);
        } else if let Some(name) = seg.strip_prefix(':').or_else(|| seg.strip_prefix('[').and_then(|s| s.strip_suffix(']'))) {
            segs.push(Seg::Param(name.to_owned()));
        } else if seg.contains('*') {
            segs.push(Seg::Glob(seg.to_owned()));
        } else {
            segs.push(Seg::Static(seg.to_owned()));
        }
    }
    Some(segs)
}

/// Canonical text, as the compiler writes it (`/api/quotes/:id`, `/docs/**`, `/`).
pub fn canonical(segs: &[Seg]) -> String {
    let mut out = String::new();
    for s in segs {
        out.push('/');
        match s {
            Seg::Static(t) | Seg::Glob(t) => out.push_str(t),
            Seg::Param(n) => {
                out.push(':');
                out.push_str(n);
            }
            Seg::CatchAll => out.push_str("**"),
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Same shape: equal statics and globs, parameters in the same places (names may differ).
pub fn same_shape(a: &[Seg], b: &[Seg]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Seg::Static(s), Seg::Static(t)) | (Seg::Glob(s), Seg::Glob(t)) => s == t,
            (Seg::Param(_), Seg::Param(_)) | (Seg::CatchAll, Seg::CatchAll) => true,
            _ => false,
        })
}

/// Whether some path could match both patterns.
pub fn intersects(a: &[Seg], b: &[Seg]) -> bool {
    match (a.split_first(), b.split_first()) {
        (None, None) => true,
        (Some((Seg::CatchAll, _)), _) | (_, Some((Seg::CatchAll, _))) => true,
        (None, Some(_)) | (Some(_), None) => false,
        (Some((x, ra)), Some((y, rb))) => {
            let here = match (x, y) {
                (Seg::Static(s), Seg::Static(t)) => s == t,
                (Seg::Static(s), Seg::Glob(g)) | (Seg::Glob(g), Seg::Static(s)) => Glob::new(g).matches(s),
                _ => true,
            };
            here && intersects(ra, rb)
        }
    }
}

/// Whether the pattern is exact: no `*` glob and no `**` (parameters allowed).
pub fn is_exact(segs: &[Seg]) -> bool {
    segs.iter().all(|s| matches!(s, Seg::Static(_) | Seg::Param(_)))
}

/// A path a request to this app route could have: parameters get a UUID-shaped value (it is
/// also a valid slug and passes untyped parameters), a trailing `**` one extra segment.
fn sample_path(segs: &[Seg]) -> Vec<String> {
    segs.iter()
        .map(|s| match s {
            Seg::Static(t) | Seg::Glob(t) => t.clone(),
            Seg::Param(_) => "00000000-0000-4000-8000-000000000000".to_owned(),
            Seg::CatchAll => "sample".to_owned(),
        })
        .collect()
}

/// `re:` parameter regexes of a bundle, compiled as the engine compiles them.
pub struct Regexes(Vec<regex_lite::Regex>);

impl Regexes {
    pub fn of(bundle: &Bundle) -> Result<Regexes, Failure> {
        let list = bundle
            .matcher
            .regexes
            .iter()
            .map(|src| regex_lite::Regex::new(src).map_err(|e| Failure::failed(format!("a parameter regex of the compiled policy does not compile: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Regexes(list))
    }
}

impl ParamCheck for Regexes {
    fn regex_matches(&self, index: u16, value: &str) -> bool {
        self.0.get(usize::from(index)).is_some_and(|re| re.is_match(value))
    }
}

/// The method mask as a list in the canonical order (GET, HEAD, POST, …).
pub fn method_names(mask: u16) -> Vec<&'static str> {
    method::ALL.iter().filter(|(_, b)| mask & b != 0).map(|(n, _)| *n).collect()
}

/// `GET, HEAD` for messages.
pub fn methods_text(mask: u16) -> String {
    let names = method_names(mask);
    if names.is_empty() { "no method".to_owned() } else { names.join(", ") }
}

// ---------------------------------------------------------------------------------- scanning

/// The methods an app route serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Methods {
    /// Exported handlers (method bits).
    Known(u16),
    /// Not readable from the source; the reason, for the report.
    Unknown(String),
}

/// One route the app serves with its own code.
#[derive(Debug, Clone)]
pub struct AppRoute {
    pub segs: Vec<Seg>,
    pub pattern: String,
    /// The file, as a path under the app directory the user gave (`APP_DIR/app/x/route.ts`).
    pub file: PathBuf,
    /// The file relative to the app directory (`app/x/route.ts`), for comments in the policy.
    pub rel: String,
    /// 1-based line of the first exported handler (1 when none).
    pub line: usize,
    pub methods: Methods,
}

/// What a scan of an app found.
#[derive(Debug, Default)]
pub struct AppScan {
    /// Route handlers and pages/api routes, sorted by pattern.
    pub routes: Vec<AppRoute>,
    /// Everything else the app serves: pages, public files, metadata files.
    pub served: Vec<Vec<Seg>>,
    /// Things worth telling the user: (file, line, message).
    pub notes: Vec<(PathBuf, usize, String)>,
}

const HANDLER_EXTS: [&str; 5] = ["ts", "js", "tsx", "jsx", "mjs"];
const PAGE_EXTS: [&str; 6] = ["ts", "js", "tsx", "jsx", "md", "mdx"];
const SKIP_DIRS: [&str; 4] = ["node_modules", ".next", ".git", ".vercel"];
const MAX_DEPTH: usize = 48;
const MAX_SOURCE: u64 = 1 << 20;

/// Read an app directory. A directory with none of app/, src/app/, pages/, src/pages/ is a
/// usage error.
pub fn scan(dir: &Path) -> Result<AppScan, Failure> {
    if !dir.is_dir() {
        return Err(Failure::usage(format!("`{}` is not a directory", dir.display())));
    }
    let mut out = AppScan::default();
    let mut found = false;
    for base in [dir.to_path_buf(), dir.join("src")] {
        let app = base.join("app");
        if app.is_dir() {
            found = true;
            walk_app(dir, &app, &mut Vec::new(), 0, &mut out)?;
        }
        let pages = base.join("pages");
        if pages.is_dir() {
            found = true;
            walk_pages(dir, &pages, &mut Vec::new(), 0, &mut out)?;
        }
    }
    let public = dir.join("public");
    if public.is_dir() {
        walk_public(&public, &mut Vec::new(), 0, &mut out)?;
    }
    if !found {
        return Err(Failure::usage(format!(
            "`{}` has no app/, src/app/, pages/ or src/pages/ directory: give the Next.js app's root",
            dir.display()
        )));
    }
    out.routes.sort_by(|a, b| a.pattern.cmp(&b.pattern).then_with(|| a.file.cmp(&b.file)));
    // Two files for one pattern (Next.js refuses to build that): keep the first, say so.
    let mut kept: Vec<AppRoute> = Vec::with_capacity(out.routes.len());
    for r in std::mem::take(&mut out.routes) {
        match kept.iter().find(|k| same_shape(&k.segs, &r.segs)) {
            Some(k) => out.notes.push((r.file.clone(), 1, format!("`{}` is also served by {}; only that one is used", r.pattern, k.file.display()))),
            None => kept.push(r),
        }
    }
    out.routes = kept;
    Ok(out)
}

fn entries(dir: &Path) -> Result<Vec<(String, PathBuf, std::fs::FileType)>, Failure> {
    let read = std::fs::read_dir(dir).map_err(|e| Failure::usage(format!("cannot read `{}`: {e}", dir.display())))?;
    let mut list = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| Failure::usage(format!("cannot read `{}`: {e}", dir.display())))?;
        let Ok(kind) = entry.file_type() else { continue };
        list.push((entry.file_name().to_string_lossy().into_owned(), entry.path(), kind));
    }
    list.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(list)
}

/// What a folder name of the App Router contributes to the URL.
enum Folder {
    /// A route group `(name)`: nothing.
    Group,
    /// `@slot`, `_private`, `(.)intercepted`: not part of routing; skipped with everything in it.
    Skip,
    Seg(Seg),
}

fn folder(name: &str) -> Folder {
    if name.starts_with("(.") || name.starts_with('@') || name.starts_with('_') {
        return Folder::Skip;
    }
    if name.starts_with('(') && name.ends_with(')') {
        return Folder::Group;
    }
    Folder::Seg(segment(name))
}

/// A file or folder name as a pattern segment.
fn segment(name: &str) -> Seg {
    if (name.starts_with("[[...") && name.ends_with("]]")) || (name.starts_with("[...") && name.ends_with(']')) {
        return Seg::CatchAll;
    }
    if let Some(inner) = name.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        return Seg::Param(param_name(inner));
    }
    // `%5F` is how a folder asks for a literal leading underscore.
    let text = match name.get(..3) {
        Some(p) if p.eq_ignore_ascii_case("%5f") => format!("_{}", name.get(3..).unwrap_or_default()),
        _ => name.to_owned(),
    };
    Seg::Static(encode_segment(&text))
}

/// Policy parameter names are letters, digits and `_`, not starting with a digit.
fn param_name(raw: &str) -> String {
    let mut name: String = raw.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if !name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') {
        name.insert(0, '_');
    }
    name
}

/// A static segment in the normalized form the edge matches (percent-encoded where a URL
/// needs it; `*` and a leading `:` encoded so they are not read as pattern syntax).
fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, b) in text.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b"-._~!$&'()+,;=@".contains(&b) || (b == b':' && i > 0);
        if plain {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn split_ext(name: &str) -> (&str, &str) {
    name.rsplit_once('.').unwrap_or((name, ""))
}

fn walk_app(root: &Path, dir: &Path, segs: &mut Vec<Seg>, depth: usize, out: &mut AppScan) -> Result<(), Failure> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    for (name, path, kind) in entries(dir)? {
        if kind.is_dir() {
            if SKIP_DIRS.contains(&name.as_str()) {
                continue;
            }
            match folder(&name) {
                Folder::Skip => {}
                Folder::Group => walk_app(root, &path, segs, depth.saturating_add(1), out)?,
                Folder::Seg(seg) => {
                    segs.push(seg);
                    walk_app(root, &path, segs, depth.saturating_add(1), out)?;
                    segs.pop();
                }
            }
            continue;
        }
        if !(kind.is_file() || kind.is_symlink()) {
            continue;
        }
        let (stem, ext) = split_ext(&name);
        if stem == "route" && HANDLER_EXTS.contains(&ext) {
            let file = path.clone();
            let rel = relative(&file, root);
            let (methods, line) = match read_source(&path) {
                Ok(text) => exported_methods(&text),
                Err(e) => (Methods::Unknown(format!("cannot read it: {e}")), 1),
            };
            if let Methods::Known(0) = methods {
                out.notes.push((file, line, "exports no HTTP method handler (GET, POST, …): Next.js answers 405 to everything; not imported".to_owned()));
                continue;
            }
            out.routes.push(AppRoute { pattern: canonical(segs), segs: segs.clone(), file, rel, line, methods });
        } else if stem == "page" && PAGE_EXTS.contains(&ext) {
            out.served.push(segs.clone());
        } else if let Some(seg) = metadata_segment(stem, ext) {
            let mut p = segs.clone();
            p.push(seg);
            out.served.push(p);
        }
    }
    Ok(())
}

/// The URL segment of a metadata file (favicon, icons, robots, sitemap, manifest).
fn metadata_segment(stem: &str, ext: &str) -> Option<Seg> {
    let code = matches!(ext, "ts" | "js" | "tsx" | "jsx");
    match (stem, ext) {
        ("favicon", "ico") => Some(Seg::Static("favicon.ico".to_owned())),
        ("robots", "txt") => Some(Seg::Static("robots.txt".to_owned())),
        ("robots", _) if code => Some(Seg::Static("robots.txt".to_owned())),
        ("sitemap", "xml") => Some(Seg::Static("sitemap.xml".to_owned())),
        ("sitemap", _) if code => Some(Seg::Static("sitemap.xml".to_owned())),
        ("manifest", "json" | "webmanifest") => Some(Seg::Static(format!("manifest.{ext}"))),
        ("manifest", _) if code => Some(Seg::Static("manifest.webmanifest".to_owned())),
        _ => {
            let base = stem.trim_end_matches(|c: char| c.is_ascii_digit());
            matches!(base, "icon" | "apple-icon" | "opengraph-image" | "twitter-image").then(|| Seg::Glob(format!("{base}*")))
        }
    }
}

fn walk_pages(root: &Path, dir: &Path, segs: &mut Vec<Seg>, depth: usize, out: &mut AppScan) -> Result<(), Failure> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    let in_api = matches!(segs.first(), Some(Seg::Static(s)) if s == "api");
    for (name, path, kind) in entries(dir)? {
        if kind.is_dir() {
            if SKIP_DIRS.contains(&name.as_str()) {
                continue;
            }
            segs.push(segment(&name));
            walk_pages(root, &path, segs, depth.saturating_add(1), out)?;
            segs.pop();
            continue;
        }
        let (stem, ext) = split_ext(&name);
        if !PAGE_EXTS.contains(&ext) || name.ends_with(".d.ts") {
            continue;
        }
        if depth == 0 && matches!(stem, "_app" | "_document" | "_error" | "_middleware") {
            continue;
        }
        let mut p = segs.clone();
        if stem != "index" {
            p.push(segment(stem));
        }
        if in_api && HANDLER_EXTS.contains(&ext) {
            let file = path.clone();
            let rel = relative(&file, root);
            let methods = Methods::Unknown("a Pages Router API route is one handler for every method".to_owned());
            out.routes.push(AppRoute { pattern: canonical(&p), segs: p, file, rel, line: 1, methods });
        } else {
            out.served.push(p);
        }
    }
    Ok(())
}

fn walk_public(dir: &Path, segs: &mut Vec<Seg>, depth: usize, out: &mut AppScan) -> Result<(), Failure> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    for (name, path, kind) in entries(dir)? {
        segs.push(Seg::Static(encode_segment(&name)));
        if kind.is_dir() {
            walk_public(&path, segs, depth.saturating_add(1), out)?;
        } else {
            out.served.push(segs.clone());
        }
        segs.pop();
    }
    Ok(())
}

/// `path` under `root`, with `/` separators.
fn relative(path: &Path, root: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/")
}

fn read_source(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > MAX_SOURCE {
        return Err(format!("it is over {MAX_SOURCE} bytes"));
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The methods a route handler module exports, and the line of the first one. Comments and
/// string contents are blanked first, so neither can fake an export.
pub fn exported_methods(source: &str) -> (Methods, usize) {
    const M: &str = "GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS";
    let code = blank_comments_and_strings(source);
    let mut mask = 0u16;
    let mut first: Option<usize> = None;
    let mut note = |at: usize, name: &str, mask: &mut u16| {
        *mask |= method::bit(name);
        first = Some(first.map_or(at, |f| f.min(at)));
    };
    let patterns = [
        format!(r"\bexport\s+(?:async\s+)?function\s*\*?\s*({M})\b"),
        format!(r"\bexport\s+(?:const|let|var)\s+({M})\b"),
    ];
    for p in &patterns {
        let Ok(re) = regex_lite::Regex::new(p) else { continue };
        for c in re.captures_iter(&code) {
            if let (Some(all), Some(name)) = (c.get(0), c.get(1)) {
                note(all.start(), name.as_str(), &mut mask);
            }
        }
    }
    // export { handler as GET, POST } [from "…"]
    if let Ok(re) = regex_lite::Regex::new(r"\bexport\s*(type\s*)?\{([^}]*)\}") {
        for c in re.captures_iter(&code) {
            let (Some(all), Some(list)) = (c.get(0), c.get(2)) else { continue };
            if c.get(1).is_some() {
                continue;
            }
            for item in list.as_str().split(',') {
                let item = item.trim().trim_start_matches("type ").trim();
                let exported = item.rsplit_once(" as ").map_or(item, |(_, b)| b).trim();
                if method::bit(exported) != 0 && M.split('|').any(|m| m == exported) {
                    note(all.start(), exported, &mut mask);
                }
            }
        }
    }
    // export const { GET, POST } = handlers;  (a name followed by `:` is renamed, not bound)
    if let Ok(re) = regex_lite::Regex::new(r"\bexport\s+(?:const|let|var)\s*\{") {
        for m in re.find_iter(&code) {
            let body = balanced_braces(&code, m.end());
            if let Ok(names) = regex_lite::Regex::new(&format!(r"\b({M})\b(\s*:)?")) {
                for c in names.captures_iter(body) {
                    if let (Some(name), None) = (c.get(1), c.get(2)) {
                        note(m.start(), name.as_str(), &mut mask);
                    }
                }
            }
        }
    }
    let line = first.map_or(1, |at| line_of(source, at));
    if let Ok(re) = regex_lite::Regex::new(r"\bexport\s*\*\s*(?:as\s+\w+\s*)?from\b")
        && let Some(m) = re.find(&code)
    {
        let at = if mask == 0 { line_of(source, m.start()) } else { line };
        return (Methods::Unknown("it re-exports another module (`export * from`), whose handlers are not read".to_owned()), at);
    }
    (Methods::Known(mask), line)
}

/// The text after an opening `{` up to its matching `}`.
fn balanced_braces(code: &str, start: usize) -> &str {
    let rest = code.get(start..).unwrap_or_default();
    let mut depth = 1usize;
    for (i, c) in rest.char_indices() {
        match c {
            '{' => depth = depth.saturating_add(1),
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return rest.get(..i).unwrap_or_default();
                }
            }
            _ => {}
        }
    }
    rest
}

/// JavaScript with comments and the insides of string and template literals replaced by
/// spaces (newlines kept, so offsets and lines stay where they were).
fn blank_comments_and_strings(src: &str) -> String {
    #[derive(Clone, Copy, PartialEq)]
    enum St {
        Code,
        Line,
        Block,
        Str(char),
    }
    let mut out = String::with_capacity(src.len());
    let mut st = St::Code;
    let mut chars = src.chars().peekable();
    let blank = |c: char, out: &mut String| {
        if c == '\n' {
            out.push('\n');
        } else {
            for _ in 0..c.len_utf8() {
                out.push(' ');
            }
        }
    };
    while let Some(c) = chars.next() {
        match st {
            St::Code => match c {
                '/' if chars.peek() == Some(&'/') => {
                    st = St::Line;
                    out.push(' ');
                }
                '/' if chars.peek() == Some(&'*') => {
                    st = St::Block;
                    out.push(' ');
                }
                '"' | '\'' | '`' => {
                    st = St::Str(c);
                    out.push(c);
                }
                _ => out.push(c),
            },
            St::Line => {
                if c == '\n' {
                    st = St::Code;
                }
                blank(c, &mut out);
            }
            St::Block => {
                if c == '*' && chars.peek() == Some(&'/') {
                    chars.next();
                    out.push_str("  ");
                    st = St::Code;
                } else {
                    blank(c, &mut out);
                }
            }
            St::Str(q) => {
                if c == '\\' {
                    blank(c, &mut out);
                    if let Some(n) = chars.next() {
                        blank(n, &mut out);
                    }
                } else if c == q {
                    out.push(c);
                    st = St::Code;
                } else if c == '\n' && q != '`' {
                    out.push('\n');
                    st = St::Code;
                } else {
                    blank(c, &mut out);
                }
            }
        }
    }
    out
}

/// 1-based line of a byte offset.
pub fn line_of(source: &str, offset: usize) -> usize {
    let end = offset.min(source.len());
    source.as_bytes().get(..end).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count()).saturating_add(1)
}

// ---------------------------------------------------------------------------- policy routes

/// A `[[routes]]` entry of the policy source (top level, not overlays).
#[derive(Debug, Clone)]
pub struct PolicyRoute {
    /// Position in the policy's `[[routes]]` array.
    pub index: usize,
    pub path: String,
    pub segs: Vec<Seg>,
    /// 1-based line of `path`.
    pub line: usize,
    /// The `methods` list as bits, and its line.
    pub methods: Option<(u16, usize)>,
    /// Has a `block` key (in any environment).
    pub blocked: bool,
}

/// The policy's top-level routes, in order (the same order `toml_edit` sees them).
pub fn policy_routes(source: &str) -> Vec<PolicyRoute> {
    let Ok(doc) = toml::de::DeTable::parse(source) else { return Vec::new() };
    let Some(routes) = doc.get_ref().get("routes").and_then(|v| v.get_ref().as_array()) else { return Vec::new() };
    let mut out = Vec::new();
    for (index, r) in routes.iter().enumerate() {
        let Some(t) = r.get_ref().as_table() else { continue };
        let Some(path) = t.get("path") else { continue };
        let Some(text) = path.get_ref().as_str() else { continue };
        let Some(segs) = parse_pattern(text) else { continue };
        let methods = t.get("methods").and_then(|m| {
            let list = m.get_ref().as_array()?;
            let mask = list.iter().filter_map(|v| v.get_ref().as_str()).fold(0u16, |acc, n| acc | method::bit(n));
            Some((mask, line_of(source, m.span().start)))
        });
        out.push(PolicyRoute {
            index,
            path: text.to_owned(),
            segs,
            line: line_of(source, path.span().start),
            methods,
            blocked: t.get("block").is_some(),
        });
    }
    out
}

// ---------------------------------------------------------------------------------- analysis

/// How the policy treats one app route today.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coverage {
    /// A policy route has this route's pattern.
    Exact { route: usize, sync: MethodSync },
    /// Matched by a rule written to match it: a glob, a `:param` route, a blocked rule, or a
    /// route of an environment overlay. Left alone.
    Covered { pattern: String, blocked: bool },
    /// Falls to a catch-all route (its index) or, with `None`, to `[defaults]`.
    Uncovered { by: Option<usize> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodSync {
    InSync,
    /// The policy route has no `methods` (it takes `[defaults]`'), or the handler's are unknown.
    NotCompared,
    Changed { from: u16, to: u16 },
}

/// Methods Next.js serves without an export: HEAD from GET, OPTIONS always.
fn implied(exported: u16) -> u16 {
    (if exported & method::GET != 0 { method::HEAD } else { 0 }) | method::OPTIONS
}

/// What a new route allows: the exported methods, and HEAD when GET is exported.
pub fn new_route_methods(exported: u16) -> u16 {
    exported | (if exported & method::GET != 0 { method::HEAD } else { 0 })
}

/// Whether a route's `methods` still fits the handlers; if not, what it should become (the
/// policy's own choice on HEAD and OPTIONS is kept).
pub fn sync_methods(exported: u16, policy: u16) -> MethodSync {
    let allowed = exported | implied(exported);
    if policy & exported == exported && policy & !allowed == 0 {
        MethodSync::InSync
    } else {
        MethodSync::Changed { from: policy, to: exported | (policy & implied(exported)) }
    }
}

pub struct Analysis {
    /// One per `AppScan::routes` entry.
    pub coverage: Vec<Coverage>,
    /// Indices of exact policy routes nothing in the app matches.
    pub stale: Vec<usize>,
}

/// Compare the app with the policy's routes, using the compiled matcher for what a request
/// gets today.
pub fn analyse(scan: &AppScan, routes: &[PolicyRoute], bundle: &Bundle) -> Result<Analysis, Failure> {
    let regexes = Regexes::of(bundle)?;
    let mut coverage = Vec::with_capacity(scan.routes.len());
    for app in &scan.routes {
        if let Some(i) = routes.iter().position(|r| same_shape(&r.segs, &app.segs)) {
            let sync = match (&app.methods, routes.get(i).and_then(|r| r.methods)) {
                (Methods::Known(exported), Some((policy, _))) => sync_methods(*exported, policy),
                _ => MethodSync::NotCompared,
            };
            coverage.push(Coverage::Exact { route: i, sync });
            continue;
        }
        let sample = sample_path(&app.segs);
        let segments: Vec<&str> = sample.iter().map(String::as_str).collect();
        let found = match bundle.matcher.find(&segments, &regexes) {
            Match::Route(i) | Match::ParamMismatch(i) => bundle.routes.get(i as usize).and_then(|r| r.pattern.clone()),
            Match::None => None,
        };
        let c = match found {
            None => Coverage::Uncovered { by: None },
            Some(pattern) => {
                let source = routes.iter().position(|r| canonical(&r.segs) == pattern);
                match source.and_then(|i| routes.get(i).map(|r| (i, r))) {
                    Some((_, r)) if r.blocked => Coverage::Covered { pattern, blocked: true },
                    Some((i, r)) if matches!(r.segs.last(), Some(Seg::CatchAll)) => Coverage::Uncovered { by: Some(i) },
                    _ => Coverage::Covered { pattern, blocked: false },
                }
            }
        };
        coverage.push(c);
    }
    let stale = routes
        .iter()
        .enumerate()
        .filter(|(_, r)| is_exact(&r.segs))
        .filter(|(_, r)| !scan.routes.iter().map(|a| &a.segs).chain(scan.served.iter()).any(|s| intersects(s, &r.segs)))
        .map(|(i, _)| i)
        .collect();
    Ok(Analysis { coverage, stale })
}

// ------------------------------------------------------------------------------------ editing

/// The updated policy text and a report of what changed.
fn apply(source: &str, scan: &AppScan, routes: &[PolicyRoute], analysis: &Analysis) -> Result<(String, String), Failure> {
    use toml_edit::{DocumentMut, Item, Table, Value};

    let mut doc: DocumentMut = source.parse().map_err(|e| Failure::failed(format!("cannot edit the policy: {e}")))?;
    let mut report = String::new();
    let mut added = 0usize;
    let mut updated = 0usize;
    let mut notes: Vec<String> = Vec::new();

    // Copies of the rules that new routes replace, taken before anything is edited.
    let originals: Vec<Option<Table>> = match doc.get("routes") {
        Some(Item::ArrayOfTables(a)) => a.iter().map(|t| Some(t.clone())).collect(),
        Some(_) => return Err(Failure::failed("`routes` is written as an inline array; `import` edits [[routes]] tables")),
        None => Vec::new(),
    };

    let mut new_tables: Vec<Table> = Vec::new();
    for (app, cov) in scan.routes.iter().zip(&analysis.coverage) {
        match cov {
            Coverage::Exact { route, sync: MethodSync::Changed { from, to } } => {
                let Some(Item::ArrayOfTables(list)) = doc.get_mut("routes") else { continue };
                let Some(table) = routes.get(*route).and_then(|r| list.get_mut(r.index)) else { continue };
                if let Some(Item::Value(Value::Array(a))) = table.get_mut("methods") {
                    a.clear();
                    for m in method_names(*to) {
                        a.push(m);
                    }
                    updated = updated.saturating_add(1);
                    let _ = writeln!(report, "  ~ {}  methods {} → {}  ({})", app.pattern, methods_text(*from), methods_text(*to), app.file.display());
                }
            }
            Coverage::Exact { .. } => {}
            Coverage::Covered { pattern, blocked } => {
                if *blocked {
                    notes.push(format!("{} ({}) is matched by the blocked route {pattern}; not added", app.pattern, app.file.display()));
                }
            }
            Coverage::Uncovered { by } => {
                new_tables.push(new_route_table(app, *by, routes, &originals, &mut report, &mut notes));
                added = added.saturating_add(1);
            }
        }
    }
    if let Some(first) = new_tables.first_mut() {
        let prefix = first.decor().prefix().and_then(|p| p.as_str()).unwrap_or_default().to_owned();
        first.decor_mut().set_prefix(format!(
            "\n# ── Imported from the Next.js app (edgeguard import next) ─────────────────────────────\n\
             # Each route below fell to a catch-all or [defaults]. It keeps the keys of the rule that\n\
             # matched it before and allows only the methods its handler exports.\n{prefix}"
        ));
        if !matches!(doc.get("routes"), Some(Item::ArrayOfTables(_))) {
            doc.insert("routes", Item::ArrayOfTables(toml_edit::ArrayOfTables::new()));
            // After every table written so far: new tables go where the last one was.
            if let Some(t) = new_tables.first_mut() {
                t.set_position(Some(isize::MAX));
            }
        }
        if let Some(Item::ArrayOfTables(list)) = doc.get_mut("routes") {
            for t in new_tables {
                list.push(t);
            }
        }
    }
    for i in &analysis.stale {
        if let Some(r) = routes.get(*i) {
            notes.push(format!("policy route {} (line {}) matches nothing the app serves; kept", r.path, r.line));
        }
    }
    for (file, line, msg) in &scan.notes {
        notes.push(format!("{}:{line}: {msg}", file.display()));
    }
    let mut head = format!("import: {added} route(s) added, {updated} updated, {} unchanged\n", scan.routes.len().saturating_sub(added).saturating_sub(updated));
    head.push_str(&report);
    for n in &notes {
        let _ = writeln!(head, "  note: {n}");
    }
    let mut text = if added == 0 && updated == 0 { source.to_owned() } else { doc.to_string() };
    if source.ends_with('\n') && !text.ends_with('\n') {
        text.push('\n');
    }
    Ok((text, head))
}

/// A new `[[routes]]` table for an app route that fell to the policy route `by` (or to
/// `[defaults]`): its path, the methods its handler exports, and the keys of the rule that matched
/// it before, under a comment naming its file. Says what it added in `report` and `notes`.
fn new_route_table(app: &AppRoute, by: Option<usize>, routes: &[PolicyRoute], originals: &[Option<toml_edit::Table>], report: &mut String, notes: &mut Vec<String>) -> toml_edit::Table {
    use toml_edit::{Item, Table, Value};

        let mut t = Table::new();
        t.insert("path", toml_edit::value(app.pattern.clone()));
        let methods = match &app.methods {
            Methods::Known(m) => Some(new_route_methods(*m)),
            Methods::Unknown(why) => {
                notes.push(format!("{} ({}): methods unknown ({why}); imported without `methods`", app.pattern, app.file.display()));
                None
            }
        };
        if let Some(m) = methods {
            t.insert("methods", Item::Value(Value::Array(method_names(m).into_iter().collect())));
        }
        let from = by.and_then(|i| routes.get(i).and_then(|r| originals.get(r.index)).cloned().flatten().map(|t| (i, t)));
        let mut comment = format!("# {}", app.rel);
        if let Some((i, covering)) = &from {
            let covering_segs = routes.get(*i).map(|r| r.segs.clone()).unwrap_or_default();
            let _ = write!(comment, " (keys copied from {})", routes.get(*i).map_or("", |r| r.path.as_str()));
            for (key, item) in covering.iter() {
                match key {
                    "path" | "methods" => {}
                    "params" => {
                        if let Some(p) = mapped_params(item, &covering_segs, &app.segs) {
                            t.insert("params", Item::Value(Value::InlineTable(p)));
                        }
                    }
                    _ => {
                        if let Some(v) = plain_value(item) {
                            t.insert(key, Item::Value(v));
                        }
                    }
                }
            }
            if methods.is_none()
                && let Some(m) = covering.get("methods").and_then(plain_value)
            {
                t.insert("methods", Item::Value(m));
            }
        }
        if methods.is_none() {
            comment.push_str("\n# methods unknown: add `methods` by hand");
        }
        t.decor_mut().set_prefix(format!("\n{comment}\n"));
        let _ = writeln!(
            report,
            "  + {}  {}  ({}; was {})",
            app.pattern,
            methods.map_or_else(|| "methods unknown".to_owned(), methods_text),
            app.file.display(),
            from.as_ref().and_then(|(i, _)| routes.get(*i)).map_or("[defaults]", |r| r.path.as_str()),
        );
    t
}

/// A copy of a route key's value without its comments and spacing; sub-tables become inline
/// tables (a copied `[routes.headers]` table would otherwise be printed where the original was).
fn plain_value(item: &toml_edit::Item) -> Option<toml_edit::Value> {
    let mut v = match item {
        toml_edit::Item::Value(v) => v.clone(),
        toml_edit::Item::Table(t) => toml_edit::Value::InlineTable(t.clone().into_inline_table()),
        _ => return None,
    };
    v.decor_mut().clear();
    Some(v)
}

/// The catch-all's `params` types carried over to the new route's parameters in the same
/// positions (a parameter that became a static segment needs none).
fn mapped_params(item: &toml_edit::Item, from: &[Seg], to: &[Seg]) -> Option<toml_edit::InlineTable> {
    let types: BTreeMap<String, String> = match item {
        toml_edit::Item::Value(toml_edit::Value::InlineTable(t)) => t.iter().filter_map(|(k, v)| Some((k.to_owned(), v.as_str()?.to_owned()))).collect(),
        toml_edit::Item::Table(t) => t.iter().filter_map(|(k, v)| Some((k.to_owned(), v.as_str()?.to_owned()))).collect(),
        _ => return None,
    };
    let mut out = toml_edit::InlineTable::new();
    for (a, b) in from.iter().zip(to) {
        if let (Seg::Param(old), Seg::Param(new)) = (a, b)
            && let Some(ty) = types.get(old)
        {
            out.insert(new, ty.as_str().into());
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn methods(src: &str) -> Methods {
        exported_methods(src).0
    }

    #[test]
    fn export_forms() {
        use method::*;
        assert_eq!(methods("export async function GET(req) {}\nexport function POST() {}"), Methods::Known(GET | POST));
        assert_eq!(methods("export const PATCH = async () => {};\nexport let DELETE = h"), Methods::Known(PATCH | DELETE));
        assert_eq!(methods("const h = () => 1;\nexport { h as GET, h as HEAD, other }"), Methods::Known(GET | HEAD));
        assert_eq!(methods("export { GET, POST } from './shared'"), Methods::Known(GET | POST));
        assert_eq!(methods("export const { GET, POST } = handlers"), Methods::Known(GET | POST));
        assert_eq!(methods("export const { handlers: { GET, POST }, auth } = NextAuth(c)"), Methods::Known(GET | POST));
        assert_eq!(methods("export const { GET: get } = x"), Methods::Known(0));
        assert_eq!(methods("export type { GET } from './t'"), Methods::Known(0));
        assert_eq!(methods("// export function GET() {}\n/* export const POST = 1 */\nconst s = 'export function PUT'"), Methods::Known(0));
        assert_eq!(methods("export function GETTER() {}\nexport const dynamic = 'force-dynamic'"), Methods::Known(0));
        assert!(matches!(methods("export * from './handlers'"), Methods::Unknown(_)));
    }

    #[test]
    fn first_export_line() {
        let (_, line) = exported_methods("import x from 'y';\n\n// GET below\nexport async function GET() {}\n");
        assert_eq!(line, 4);
    }

    #[test]
    fn folders() {
        assert!(matches!(folder("(marketing)"), Folder::Group));
        assert!(matches!(folder("@modal"), Folder::Skip));
        assert!(matches!(folder("_lib"), Folder::Skip));
        assert!(matches!(folder("(.)photo"), Folder::Skip));
        assert!(matches!(folder("(..)(..)photo"), Folder::Skip));
        assert!(matches!(folder("[id]"), Folder::Seg(Seg::Param(n)) if n == "id"));
        assert!(matches!(folder("[post-id]"), Folder::Seg(Seg::Param(n)) if n == "post_id"));
        assert!(matches!(folder("[...slug]"), Folder::Seg(Seg::CatchAll)));
        assert!(matches!(folder("[[...slug]]"), Folder::Seg(Seg::CatchAll)));
        assert!(matches!(folder("%5Finternal"), Folder::Seg(Seg::Static(s)) if s == "_internal"));
        assert!(matches!(folder("a b*"), Folder::Seg(Seg::Static(s)) if s == "a%20b%2A"));
    }

    #[test]
    fn patterns() {
        let p = |s: &str| parse_pattern(s).unwrap();
        assert_eq!(canonical(&p("/api/quotes/[id]/pdf")), "/api/quotes/:id/pdf");
        assert_eq!(canonical(&p("/docs/[[...rest]]")), "/docs/**");
        assert_eq!(canonical(&p("/")), "/");
        assert!(same_shape(&p("/a/:id"), &p("/a/:other")));
        assert!(!same_shape(&p("/a/:id"), &p("/a/b")));
        assert!(intersects(&p("/api/**"), &p("/api/x/y")));
        assert!(intersects(&p("/api/debug-*"), &p("/api/debug-x")));
        assert!(intersects(&p("/a/:id"), &p("/a/b")));
        assert!(!intersects(&p("/a/b"), &p("/a/c")));
        assert!(!intersects(&p("/a"), &p("/a/b")));
        assert!(intersects(&p("/a/**"), &p("/a")));
    }

    #[test]
    fn method_sync() {
        use method::*;
        assert_eq!(sync_methods(GET, GET | HEAD), MethodSync::InSync);
        assert_eq!(sync_methods(GET | POST, GET | POST), MethodSync::InSync);
        assert_eq!(sync_methods(GET, GET | HEAD | OPTIONS), MethodSync::InSync);
        assert_eq!(sync_methods(GET, GET | POST), MethodSync::Changed { from: GET | POST, to: GET });
        assert_eq!(sync_methods(GET | DELETE, GET | HEAD), MethodSync::Changed { from: GET | HEAD, to: GET | HEAD | DELETE });
        assert_eq!(sync_methods(POST, GET | HEAD | POST), MethodSync::Changed { from: GET | HEAD | POST, to: POST });
        assert_eq!(new_route_methods(GET | POST), GET | HEAD | POST);
    }

    #[test]
    fn blanking_keeps_offsets() {
        let src = "a // é\n\"x\\\"y\" `t\nu` /* c\n*/ b";
        let out = blank_comments_and_strings(src);
        assert_eq!(out.len(), src.len());
        assert_eq!(out.matches('\n').count(), src.matches('\n').count());
        assert!(out.ends_with(" b"));
    }
}
