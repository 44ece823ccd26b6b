# workerd config for the fleet statistics' throughput cost (docs/benchmarks.md, "Fleet
# statistics"): two edges in front of the benchmark's nginx origin, the same engine, QuoteKit's
# policy with its [stats]/[slo.*] (build/edge, with the EdgeguardStats Durable Object bound,
# in memory) and without them (build/edge-nostats). Module paths are relative to this file.
#   node_modules/@cloudflare/workerd-linux-64/bin/workerd serve bench/worker/operate.capnp
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "stats", worker = .stats),
    (name = "nostats", worker = .nostats),
    (name = "loopback", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [
    (name = "stats", address = "127.0.0.1:18791", service = "stats", http = (forwardedProtoHeader = "x-forwarded-proto")),
    (name = "nostats", address = "127.0.0.1:18792", service = "nostats", http = (forwardedProtoHeader = "x-forwarded-proto")),
  ],
);

const stats :Workerd.Worker = (
  modules = [
    (name = "index.mjs", esModule = embed "../../build/edge/index.mjs"),
    (name = "shell.mjs", esModule = embed "../../build/edge/shell.mjs"),
    (name = "engine.js", esModule = embed "../../build/edge/engine.js"),
    (name = "engine_bg.wasm", wasm = embed "../../build/edge/engine_bg.wasm"),
    (name = "policy.egb", data = embed "../../build/edge/policy.egb"),
  ],
  bindings = [
    (name = "EDGE_ORIGINS", text = "*=http://127.0.0.1:18480"),
    (name = "EDGEGUARD_STATS", durableObjectNamespace = "EdgeguardStats"),
  ],
  durableObjectNamespaces = [
    (className = "EdgeguardStats", uniqueKey = "edgeguard-bench-stats"),
    (className = "EdgeguardLimiter", uniqueKey = "edgeguard-bench-limiter"),
  ],
  durableObjectStorage = (inMemory = void),
  compatibilityDate = "2025-09-01",
  globalOutbound = "loopback",
);

const nostats :Workerd.Worker = (
  modules = [
    (name = "index.mjs", esModule = embed "../../build/edge-nostats/index.mjs"),
    (name = "shell.mjs", esModule = embed "../../build/edge-nostats/shell.mjs"),
    (name = "engine.js", esModule = embed "../../build/edge-nostats/engine.js"),
    (name = "engine_bg.wasm", wasm = embed "../../build/edge-nostats/engine_bg.wasm"),
    (name = "policy.egb", data = embed "../../build/edge-nostats/policy.egb"),
  ],
  bindings = [
    (name = "EDGE_ORIGINS", text = "*=http://127.0.0.1:18480"),
  ],
  compatibilityDate = "2025-09-01",
  globalOutbound = "loopback",
);
