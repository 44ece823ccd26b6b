// What `make dist` writes (build/release/), checked as a release manager would before
// publishing: every artifact present and named for this version, the checksums right, the CLI
// binary runs and writes a worker with exactly the released engine, the npm tarball carries the
// same engine and a LICENSE matching the manifests, and the release notes are this version's.
//
// `make release-test` runs it after `make dist`.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";

import { ROOT } from "../e2e/harness.mjs";

const OUT = path.join(ROOT, "build/release");
const CARGO = readFileSync(path.join(ROOT, "Cargo.toml"), "utf8");
const VERSION = CARGO.match(/\[workspace\.package\][^[]*?\nversion = "([^"]+)"/)[1];
const CLI = `edgeguard-${VERSION}-x86_64-unknown-linux-gnu`;
const tmp = mkdtempSync(path.join(tmpdir(), "edgeguard-release-"));
const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

after(() => rmSync(tmp, { recursive: true, force: true }));

test("every artifact, named for this version, with its checksum", () => {
  const files = readdirSync(OUT).sort();
  assert.deepEqual(files, [
    `CHANGELOG-${VERSION}.md`,
    "SHA256SUMS",
    `${CLI}.tar.gz`,
    `edgeguard-${VERSION}.tgz`,
    `edgeguard-engine-${VERSION}.wasm`,
    `edgeguard-engine-${VERSION}.wasm.sha256`,
  ].sort());
  const sums = readFileSync(path.join(OUT, "SHA256SUMS"), "utf8").trim().split("\n");
  assert.equal(sums.length, 4);
  for (const line of sums) {
    const [hash, name] = line.split(/\s+/);
    assert.equal(sha256(readFileSync(path.join(OUT, name))), hash, name);
  }
  const engine = readFileSync(path.join(OUT, `edgeguard-engine-${VERSION}.wasm`));
  assert.equal(readFileSync(path.join(OUT, `edgeguard-engine-${VERSION}.wasm.sha256`), "utf8"), `${sha256(engine)}  edgeguard-engine-${VERSION}.wasm\n`);
  // The engine declares the version it is (the custom section the CLI and doctor read).
  const section = WebAssembly.Module.customSections(new WebAssembly.Module(engine), "edgeguard-engine");
  assert.equal(Buffer.from(section[0]).subarray(4).toString(), VERSION);
});

test("the CLI binary runs and writes a worker with the released engine", () => {
  execFileSync("tar", ["-xzf", path.join(OUT, `${CLI}.tar.gz`), "-C", tmp]);
  assert.deepEqual(readdirSync(path.join(tmp, CLI)).sort(), ["LICENSE", "README.md", "edgeguard"]);
  const bin = path.join(tmp, CLI, "edgeguard");
  assert.equal(execFileSync(bin, ["--version"], { encoding: "utf8" }), `edgeguard ${VERSION}\n`);
  execFileSync(bin, ["build", path.join(ROOT, "fixtures/quotekit.toml"), "-o", path.join(tmp, "edge")], { stdio: "ignore" });
  assert.deepEqual(readFileSync(path.join(tmp, "edge/engine_bg.wasm")), readFileSync(path.join(OUT, `edgeguard-engine-${VERSION}.wasm`)));
  assert.equal(JSON.parse(readFileSync(path.join(tmp, "edge/edgeguard.json"), "utf8")).edgeguard, VERSION);
});

test("the npm tarball: this version, the released engine, the license", () => {
  execFileSync("tar", ["-xzf", path.join(OUT, `edgeguard-${VERSION}.tgz`), "-C", tmp]);
  const pkg = path.join(tmp, "package");
  const manifest = JSON.parse(readFileSync(path.join(pkg, "package.json"), "utf8"));
  assert.equal(manifest.name, "edgeguard");
  assert.equal(manifest.version, VERSION);
  assert.equal(manifest.bin.edgeguard, "bin/edgeguard.mjs");
  assert.deepEqual(manifest.dependencies ?? {}, {}, "installs offline: nothing to fetch");
  assert.deepEqual(readFileSync(path.join(pkg, "worker/engine_bg.wasm")), readFileSync(path.join(OUT, `edgeguard-engine-${VERSION}.wasm`)));
  assert.ok(existsSync(path.join(pkg, "lib/edgeguard.wasm")));
  // One license, the same everywhere: the manifests say Apache-2.0 and the file is its text.
  const license = readFileSync(path.join(ROOT, "LICENSE"), "utf8");
  assert.match(license, /Apache License\s+Version 2\.0, January 2004/);
  assert.equal(readFileSync(path.join(pkg, "LICENSE"), "utf8"), license);
  assert.equal(manifest.license, "Apache-2.0");
  assert.match(CARGO, /\nlicense = "Apache-2.0"\n/);
});

test("the release notes are this version's CHANGELOG entry", () => {
  const notes = readFileSync(path.join(OUT, `CHANGELOG-${VERSION}.md`), "utf8");
  assert.ok(notes.startsWith(`## [${VERSION}] - `), notes.slice(0, 80));
  assert.equal(notes.match(/^## \[/gm).length, 1, "only this version's entry");
  assert.ok(readFileSync(path.join(ROOT, "CHANGELOG.md"), "utf8").includes(notes.trim()));
});
