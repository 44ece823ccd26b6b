// Runs while the page is still parsing: starts the compiler's Web Worker and, in parallel,
// downloads and compiles its wasm (streaming compilation runs on the browser's background
// threads), then hands the compiled module to the worker. main.js picks the worker up — and
// any message that arrived before it listened — from `window.edgeguardBoot`.
(function () {
  var worker = new Worker(new URL("worker.js", document.baseURI), { type: "module" });
  var early = [];
  worker.onmessage = function (e) {
    early.push(e);
  };
  worker.onerror = function (e) {
    early.push(e);
  };
  var url = new URL("pkg/edgeguard_playground_bg.wasm", document.baseURI);
  var compiled = WebAssembly.compileStreaming ? WebAssembly.compileStreaming(fetch(url)) : Promise.reject(new Error("no streaming"));
  compiled.then(
    function (module) {
      worker.postMessage({ type: "init", module: module, fetched: performance.timeOrigin + performance.now() });
    },
    function () {
      // The worker fetches and compiles it itself.
      worker.postMessage({ type: "init" });
    },
  );
  window.edgeguardBoot = { worker: worker, early: early };
})();
