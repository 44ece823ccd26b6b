//! `edgeguard import next`: routes read from a Next.js tree (fixtures/nextjs-app, shaped like
//! QuoteKit's, and small trees written here), merged into a policy without losing a comment
//! or a hand-written key; importing twice changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use predicates::prelude::*;
use tempfile::TempDir;

fn edgeguard() -> Command {
    assert_cmd::cargo::cargo_bin_cmd!("edgeguard")
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures").join(rel)
}

struct Dir(TempDir);

impl Dir {
    fn new() -> Dir {
        Dir(tempfile::tempdir().unwrap())
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.0.path().join(name)).unwrap()
    }
}

fn import(dir: &Path, app: &Path, policy: &str, extra: &[&str]) -> Output {
    edgeguard().current_dir(dir).args(["import", "next"]).arg(app).args(["--policy", policy]).args(extra).output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The `[[routes]]` block whose path is `path`, up to the next table header.
fn route_block(policy: &str, path: &str) -> String {
    let at = policy.find(&format!("[[routes]]\npath = \"{path}\"\n")).unwrap_or_else(|| panic!("no route {path} in:\n{policy}"));
    let rest = &policy[at + "[[routes]]".len()..];
    let end = rest.find("\n[").unwrap_or(rest.len());
    let block = &rest[..end];
    // Drop the comment lines that belong to the next table.
    block.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).collect::<Vec<_>>().join("\n")
}

fn check_compiles(dir: &Path, policy: &str) {
    edgeguard().current_dir(dir).args(["check", policy]).assert().code(0);
}

// ------------------------------------------------------------------- the QuoteKit-shaped fixture

#[test]
fn fixture_app_into_quotekit_policy() {
    let dir = Dir::new();
    let original = std::fs::read_to_string(fixture("quotekit.toml")).unwrap();
    dir.write("policy.toml", &original);
    let out = import(dir.path(), &fixture("nextjs-app"), "policy.toml", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let updated = stdout(&out);
    assert_eq!(dir.read("policy.toml"), original, "without --write the policy is not touched");

    // Everything hand-written is still there, byte for byte: the new routes go between the last
    // route and the limits (whose section comment stays with them).
    let cut = original.find("\n# ── Limits").unwrap();
    assert!(updated.starts_with(&original[..cut]), "the text before the insertion point changed");
    assert!(updated.ends_with(&original[cut..]), "the text after the insertion point changed");
    assert!(updated.contains("# ── Imported from the Next.js app (edgeguard import next)"));

    // 50 routes fell to /api/** or /api/admin/**: each gets its handler's methods and every key
    // of the rule that matched it before, so nothing it was checked for is lost.
    let report = stderr(&out);
    assert!(report.starts_with("import: 50 route(s) added, 0 updated, 19 unchanged\n"), "{report}");
    assert_eq!(
        route_block(&updated, "/api/admin/users/:id/status"),
        "path = \"/api/admin/users/:id/status\"\nmethods = [\"GET\", \"HEAD\"]\nrequire_session = { source = \"supabase\", claims = { \"app_metadata.role\" = \"admin\" } }\nlimit = \"admin\"\ncache = \"no-store\""
    );
    assert!(updated.contains("# app/api/admin/users/[id]/status/route.ts (keys copied from /api/admin/**)\n[[routes]]\npath = \"/api/admin/users/:id/status\""));
    assert_eq!(route_block(&updated, "/api/analytics/upgrade-prompt"), "path = \"/api/analytics/upgrade-prompt\"\nmethods = [\"POST\"]\ncache = \"no-store\"");
    assert_eq!(route_block(&updated, "/api/payment-methods/:id"), "path = \"/api/payment-methods/:id\"\nmethods = [\"GET\", \"HEAD\"]\ncache = \"no-store\"");
    // Blocked rules stay in charge: no route that would be more specific than the block.
    assert!(!updated.contains("path = \"/api/debug-account\""));
    assert!(!updated.contains("path = \"/api/supabase/functions/:function\""));
    assert!(report.contains("note: /api/supabase/functions/:function (") && report.contains("is matched by the blocked route /api/supabase/functions/**; not added"), "{report}");
    // Routes the policy already had are untouched (their methods fit the handlers).
    assert_eq!(updated.matches("path = \"/api/quotes\"\n").count(), 1);
    assert_eq!(updated.matches("[[routes]]").count(), original.matches("[[routes]]").count() + 50);

    dir.write("updated.toml", &updated);
    let out = edgeguard().current_dir(dir.path()).args(["check", "updated.toml", "--format", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["errors"], 0);

    // The edge now answers 405 for a method the handler does not serve, and keeps the session rule.
    let explain = |method: &str, path: &str, admin: bool| {
        let mut cmd = edgeguard();
        cmd.current_dir(dir.path()).args(["explain", "updated.toml", "--request", &format!("{method} https://lawnquote.online{path}")]);
        if admin {
            cmd.args(["--session", r#"{"sub":"u-1","app_metadata":{"role":"admin"}}"#]);
        }
        let out = cmd.output().unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    assert_eq!(explain("DELETE", "/api/admin/users", true)["reason"], "method_not_allowed");
    assert_eq!(explain("GET", "/api/admin/users", false)["reason"], "session_missing");
    assert_eq!(explain("GET", "/api/admin/users", true)["reason"], "ok");
    assert_eq!(explain("GET", "/api/admin/users", true)["route"], "/api/admin/users");
}

#[test]
fn importing_twice_changes_nothing() {
    let dir = Dir::new();
    dir.write("policy.toml", &std::fs::read_to_string(fixture("quotekit.toml")).unwrap());
    let app = fixture("nextjs-app");
    let first = import(dir.path(), &app, "policy.toml", &["--write"]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert!(stderr(&first).contains("wrote policy.toml"));
    let once = dir.read("policy.toml");
    let second = import(dir.path(), &app, "policy.toml", &["--write"]);
    assert_eq!(second.status.code(), Some(0));
    assert!(stderr(&second).starts_with("import: 0 route(s) added, 0 updated, 69 unchanged\n"), "{}", stderr(&second));
    assert!(stderr(&second).contains("policy.toml is up to date; not rewritten"));
    assert_eq!(dir.read("policy.toml"), once);
    // Printing is idempotent too: the same text.
    assert_eq!(stdout(&import(dir.path(), &app, "policy.toml", &[])), once);
    check_compiles(dir.path(), "policy.toml");
}

#[test]
fn output_file_and_usage_errors() {
    let dir = Dir::new();
    dir.write("policy.toml", &std::fs::read_to_string(fixture("quotekit.toml")).unwrap());
    let app = fixture("nextjs-app");
    let out = import(dir.path(), &app, "policy.toml", &["-o", "new.toml"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).is_empty());
    assert!(dir.read("new.toml").contains("path = \"/api/admin/users\""));
    check_compiles(dir.path(), "new.toml");

    assert_eq!(import(dir.path(), &app, "policy.toml", &["-o", "x.toml", "--write"]).status.code(), Some(2));
    assert_eq!(import(dir.path(), Path::new("no-such-dir"), "policy.toml", &[]).status.code(), Some(2));
    dir.write("empty-app/README.md", "not an app");
    let out = import(dir.path(), &dir.path().join("empty-app"), "policy.toml", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("has no app/, src/app/, pages/ or src/pages/"));
    assert_eq!(import(dir.path(), &app, "nope.toml", &[]).status.code(), Some(2));
    edgeguard().current_dir(dir.path()).args(["import", "rails", "."]).assert().code(2);
    // A policy with errors is not edited.
    dir.write("broken.toml", "version = 2\n");
    edgeguard()
        .current_dir(dir.path())
        .args(["import", "next"])
        .arg(&app)
        .args(["--policy", "broken.toml", "--write"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("E006"));
    assert_eq!(dir.read("broken.toml"), "version = 2\n");
}

// ----------------------------------------------------------------------- a tree of every shape

const POLICY: &str = r#"# A hand-written policy.
version = 1

[app]
name = "shop"

[defaults]
limit = "api"

# Items: ids are UUIDs.
[[routes]]
path = "/api/items/:itemId"
methods = ["GET"]        # read-only until the editor ships
params = { itemId = "uuid" }
limit = "items"          # its own budget

[[routes]]
path = "/api/health"
methods = ["GET", "HEAD"]
limit = "none"

# Everything else under /api: the session cookie and no caching.
[[routes]]
path = "/api/**"
require_cookie = "session"
cache = "no-store"

[[routes]]
path = "/api/internal/**"
block = 404

[limits.api]
rate = "100/1m"

[limits.items]
rate = "30/1m"

[origins.app]
url = "https://shop.fly.dev"

[deploy]
active = "app"
"#;

/// A Next.js tree with route groups, catch-alls, slots, private and intercepting folders,
/// pages/api and every export style.
fn shapes_app(dir: &Dir) -> PathBuf {
    dir.write("app/app/(marketing)/api/newsletter/route.ts", "export async function POST(req: Request) {}\n");
    dir.write("app/app/api/files/[...path]/route.ts", "export const GET = async () => new Response('');\n");
    dir.write("app/app/api/docs/[[...slug]]/route.js", "export function GET() {}\n");
    dir.write("app/app/api/auth/[...nextauth]/route.ts", "import NextAuth from 'next-auth';\nconst handler = NextAuth({});\nexport { handler as GET, handler as POST };\n");
    dir.write("app/app/api/items/[itemId]/route.ts", "export async function GET() {}\nexport const PATCH = async () => {};\nexport const DELETE = async () => {};\n");
    dir.write("app/app/api/health/route.ts", "export function GET() {}\nexport function HEAD() {}\n");
    dir.write("app/app/api/orders/[orderId]/lines/[lineId]/route.tsx", "// export async function DELETE() {}\nexport async function GET() {}\n");
    dir.write("app/app/api/internal/reindex/route.ts", "export async function POST() {}\n");
    dir.write("app/app/@modal/api/secret/route.ts", "export async function GET() {}\n");
    dir.write("app/app/_lib/route.ts", "export async function GET() {}\n");
    dir.write("app/app/(.)photo/route.ts", "export async function GET() {}\n");
    dir.write("app/app/api/empty/route.ts", "export const dynamic = 'force-dynamic';\n");
    dir.write("app/app/feed.xml/route.mjs", "export const { GET } = { GET: () => new Response('') };\n");
    dir.write("app/app/(shop)/cart/page.tsx", "export default function Cart() { return null }\n");
    dir.write("app/pages/api/legacy/[id].ts", "export default function handler(req, res) { res.end() }\n");
    dir.path().join("app")
}

#[test]
fn route_shapes_and_hand_written_keys() {
    let dir = Dir::new();
    dir.write("policy.toml", POLICY);
    let app = shapes_app(&dir);
    let out = import(dir.path(), &app, "policy.toml", &["--write"]);
    let report = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{report}");
    let policy = dir.read("policy.toml");
    check_compiles(dir.path(), "policy.toml");

    // Route groups dropped; the catch-all's keys copied.
    assert_eq!(route_block(&policy, "/api/newsletter"), "path = \"/api/newsletter\"\nmethods = [\"POST\"]\nrequire_cookie = \"session\"\ncache = \"no-store\"");
    // [...rest] and [[...rest]] are `**`.
    assert_eq!(route_block(&policy, "/api/files/**"), "path = \"/api/files/**\"\nmethods = [\"GET\", \"HEAD\"]\nrequire_cookie = \"session\"\ncache = \"no-store\"");
    assert_eq!(route_block(&policy, "/api/docs/**"), "path = \"/api/docs/**\"\nmethods = [\"GET\", \"HEAD\"]\nrequire_cookie = \"session\"\ncache = \"no-store\"");
    // `export { handler as GET, handler as POST }`.
    assert_eq!(route_block(&policy, "/api/auth/**"), "path = \"/api/auth/**\"\nmethods = [\"GET\", \"HEAD\", \"POST\"]\nrequire_cookie = \"session\"\ncache = \"no-store\"");
    // Parameters become `:name`; a commented-out handler does not count.
    assert_eq!(route_block(&policy, "/api/orders/:orderId/lines/:lineId"), "path = \"/api/orders/:orderId/lines/:lineId\"\nmethods = [\"GET\", \"HEAD\"]\nrequire_cookie = \"session\"\ncache = \"no-store\"");
    // Outside any route: only [defaults] applied, so only path and methods.
    assert_eq!(route_block(&policy, "/feed.xml"), "path = \"/feed.xml\"\nmethods = [\"GET\", \"HEAD\"]");
    // pages/api: methods unknown, so none written (noted), the rule's keys copied.
    assert_eq!(route_block(&policy, "/api/legacy/:id"), "path = \"/api/legacy/:id\"\nrequire_cookie = \"session\"\ncache = \"no-store\"");
    assert!(policy.contains("# pages/api/legacy/[id].ts (keys copied from /api/**)\n# methods unknown: add `methods` by hand\n[[routes]]"), "{policy}");
    assert!(report.contains("methods unknown (a Pages Router API route is one handler for every method)"), "{report}");

    // Slots, private and intercepting folders are not routes; a blocked rule stays in charge;
    // a route file without handlers is skipped with a note.
    for absent in ["/api/secret", "/_lib", "/photo", "/api/internal/reindex", "/api/empty"] {
        assert!(!policy.contains(&format!("path = \"{absent}\"")), "{absent} imported:\n{policy}");
    }
    assert!(report.contains("exports no HTTP method handler"), "{report}");
    assert!(report.contains("is matched by the blocked route /api/internal/**"), "{report}");

    // The existing route: methods updated to what the handlers export, every other key, the
    // comments (before the table and after values) and the formatting kept.
    assert!(
        policy.contains("# Items: ids are UUIDs.\n[[routes]]\npath = \"/api/items/:itemId\"\nmethods = [\"GET\", \"PATCH\", \"DELETE\"]        # read-only until the editor ships\nparams = { itemId = \"uuid\" }\nlimit = \"items\"          # its own budget\n"),
        "{policy}"
    );
    assert!(report.contains("~ /api/items/:itemId  methods GET → GET, PATCH, DELETE"), "{report}");
    // /api/health exports GET and HEAD, as listed: untouched.
    assert!(policy.contains("path = \"/api/health\"\nmethods = [\"GET\", \"HEAD\"]\nlimit = \"none\"\n"));
    assert!(policy.starts_with("# A hand-written policy.\nversion = 1\n"));
    assert!(policy.contains("# Everything else under /api: the session cookie and no caching.\n[[routes]]\npath = \"/api/**\""));

    // Twice: nothing more.
    let again = import(dir.path(), &app, "policy.toml", &["--write"]);
    assert!(stderr(&again).starts_with("import: 0 route(s) added, 0 updated,"), "{}", stderr(&again));
    assert_eq!(dir.read("policy.toml"), policy);

    // doctor agrees: nothing left to report about the app's routes but the notes.
    let out = edgeguard().current_dir(dir.path()).args(["doctor", "policy.toml", "--app", "app", "--format", "json", "--deny-warnings"]).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{json:#}");
    assert!(json["findings"].as_array().unwrap().iter().all(|f| f["id"] == "D043"), "{json:#}");
}

#[test]
fn src_dir_and_a_policy_without_routes() {
    let dir = Dir::new();
    dir.write("app/src/app/api/ping/route.ts", "export async function GET() {}\n");
    dir.write("app/src/app/api/items/[id]/route.ts", "export async function DELETE() {}\n");
    dir.write("policy.toml", "version = 1\n\n[origins.app]\nurl = \"https://x.fly.dev\"\n\n[deploy]\nactive = \"app\"\n");
    let out = import(dir.path(), &dir.path().join("app"), "policy.toml", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let policy = stdout(&out);
    assert!(policy.starts_with("version = 1\n\n[origins.app]\nurl = \"https://x.fly.dev\"\n\n[deploy]\nactive = \"app\"\n"), "{policy}");
    assert_eq!(route_block(&policy, "/api/ping"), "path = \"/api/ping\"\nmethods = [\"GET\", \"HEAD\"]");
    assert_eq!(route_block(&policy, "/api/items/:id"), "path = \"/api/items/:id\"\nmethods = [\"DELETE\"]");
    assert!(policy.ends_with("methods = [\"GET\", \"HEAD\"]\n"), "ends with a newline, like the policy did:\n{policy}");
    dir.write("new.toml", &policy);
    check_compiles(dir.path(), "new.toml");
}

#[test]
fn catch_all_parameter_types_follow_the_new_route() {
    let dir = Dir::new();
    dir.write("app/app/api/shops/[shop]/orders/route.ts", "export async function GET() {}\n");
    dir.write(
        "policy.toml",
        "version = 1\n\n[[routes]]\npath = \"/api/shops/:id/**\"\nparams = { id = \"slug\" }\nlimit = \"none\"\n\n[origins.app]\nurl = \"https://x.fly.dev\"\n\n[deploy]\nactive = \"app\"\n",
    );
    let out = import(dir.path(), &dir.path().join("app"), "policy.toml", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let policy = stdout(&out);
    assert_eq!(
        route_block(&policy, "/api/shops/:shop/orders"),
        "path = \"/api/shops/:shop/orders\"\nmethods = [\"GET\", \"HEAD\"]\nparams = { shop = \"slug\" }\nlimit = \"none\""
    );
    dir.write("new.toml", &policy);
    check_compiles(dir.path(), "new.toml");
}
