#!/usr/bin/env node
// The `edgeguard` command of the npm package: the same CLI as the native binary (the Rust
// crates/cli compiled to wasm32-wasip1, the engine inside it), run by Node's WASI. Same
// commands, output, formats and exit codes; files are read and written as the native binary
// would, relative to the current directory.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

// Node 20–22 call WASI experimental on every run; the warning is not the user's business.
const emitWarning = process.emitWarning;
process.emitWarning = (warning, ...rest) => {
  if (String(warning?.message ?? warning).includes("WASI")) return;
  emitWarning.call(process, warning, ...rest);
};
const { WASI } = await import("node:wasi");

const wasm = readFileSync(fileURLToPath(new URL("../lib/edgeguard.wasm", import.meta.url)));
const wasi = new WASI({
  version: "preview1",
  args: ["edgeguard", ...process.argv.slice(2)],
  // PWD: the CLI makes it its working directory, so relative paths resolve as natively.
  env: { ...process.env, PWD: process.cwd() },
  preopens: { "/": "/" },
  returnOnExit: true,
});
const instance = await WebAssembly.instantiate(await WebAssembly.compile(wasm), wasi.getImportObject());
process.exitCode = wasi.start(instance);
