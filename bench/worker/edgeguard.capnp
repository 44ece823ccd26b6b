# workerd config: edgeguard (build/edge, written by `edgeguard build fixtures/quotekit.toml`) in front of the
# benchmark's nginx origin. Serve it with
#   node_modules/@cloudflare/workerd-linux-64/bin/workerd serve bench/worker/edgeguard.capnp
# scripts/bench-worker.sh does that for you (after building the worker). Module paths are
# relative to this file.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "edge", worker = .edge),
    # workerd's default outbound ("internet") refuses private and loopback addresses; the
    # origin is nginx on 127.0.0.1.
    (name = "loopback", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [
    # Cloudflare terminates TLS in front of a worker; here the load generator sends
    # `x-forwarded-proto: https`, so the worker sees https:// URLs (no http → https redirect)
    # without paying for TLS on loopback.
    (name = "http", address = "127.0.0.1:18783", service = "edge",
     http = (forwardedProtoHeader = "x-forwarded-proto")),
  ],
);

const edge :Workerd.Worker = (
  modules = [
    (name = "index.mjs", esModule = embed "../../build/edge/index.mjs"),
    (name = "shell.mjs", esModule = embed "../../build/edge/shell.mjs"),
    (name = "engine.js", esModule = embed "../../build/edge/engine.js"),
    (name = "engine_bg.wasm", wasm = embed "../../build/edge/engine_bg.wasm"),
    (name = "policy.egb", data = embed "../../build/edge/policy.egb"),
  ],
  bindings = [
    (name = "EDGE_ORIGINS", text = "*=http://127.0.0.1:18480"),
  ],
  compatibilityDate = "2025-09-01",
  globalOutbound = "loopback",
);
