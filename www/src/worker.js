// The playground's Web Worker: loads edgeguard's wasm (crates/playground; its wasm-bindgen
// glue is bundled in by esbuild) and runs every compile and decision off the main thread, so
// typing never waits for the compiler: a keystroke on QuoteKit's policy recompiles in a few
// milliseconds, but a pasted 1 MB policy takes a few hundred.
import init, * as edgeguard from "../dist/pkg/edgeguard_playground.js";
import quotekit from "../../fixtures/quotekit.toml";

const EXPORTS = new Set(["check", "explain", "view", "simulate", "report_card", "import_headers", "bundle", "bundle_facts", "test_session", "version"]);

// `check` is a pure function of its arguments, and the page asks again for text it just had
// checked (its first lint, an environment edited back): the last answer is kept, with the time
// it took.
let lastCheck = { key: null, result: null, ms: 0 };

function checkKey(source, env) {
  return `${env}\u0000${source}`;
}

// The wasm compiles its functions on first use. Running the QuoteKit preset through the
// compiler and the engine once, while the page's main thread is still setting up the editor,
// takes that cost off the first keystroke; the page starts with this policy, so its check is
// kept too.
function warmUp() {
  const start = performance.now();
  const result = edgeguard.check(quotekit, "");
  lastCheck = { key: checkKey(quotekit, ""), result, ms: performance.now() - start };
  const request = JSON.stringify({ method: "GET", url: "https://lawnquote.online/api/quotes", client_ip: "198.51.100.7", repeat: 2 });
  edgeguard.view(quotekit, "", request, "");
}

// The page sends {type: "init", module} first: the wasm module boot.js compiled while the page
// was parsing (or no module: then it is fetched and compiled here).
let start;
const initialized = new Promise((resolve) => (start = resolve));

const ready = initialized
  .then((message) => {
    const source = message.module ?? new URL("./pkg/edgeguard_playground_bg.wasm", import.meta.url);
    return init({ module_or_path: source }).then(() => message);
  })
  .then(
    (message) => {
      // Times on the clock every context of the page shares (timeOrigin + now).
      const wasm = performance.getEntriesByType("resource").find((e) => e.name.endsWith(".wasm"));
      postMessage({
        type: "ready",
        version: edgeguard.version(),
        started: performance.timeOrigin,
        fetched: message.fetched ?? (wasm ? performance.timeOrigin + wasm.responseEnd : null),
        at: performance.timeOrigin + performance.now(),
      });
      // Runs before any request from the page is handled (they wait for this task to end).
      warmUp();
    },
    (e) => postMessage({ type: "fatal", error: `cannot load the compiler: ${e}` }),
  );

self.onmessage = async (event) => {
  if (event.data.type === "init") {
    start(event.data);
    return;
  }
  const { id, fn, args } = event.data;
  await ready;
  let result = null;
  let error = null;
  let ms = 0;
  let cached = false;
  try {
    if (!EXPORTS.has(fn)) throw new Error(`unknown function ${fn}`);
    if (fn === "check" && lastCheck.key === checkKey(...args)) {
      ({ result, ms } = lastCheck);
      cached = true;
    } else {
      // The time the page shows, and the browser test reads: the wasm call alone.
      const start = performance.now();
      result = edgeguard[fn](...args);
      ms = performance.now() - start;
      if (fn === "check") lastCheck = { key: checkKey(...args), result, ms };
    }
  } catch (e) {
    // The wasm never panics on input (clippy denies it): this is a bug, or out of memory.
    error = String(e && e.message ? e.message : e);
  }
  postMessage({ type: "result", id, result, error, ms, cached });
};
