# workerd config: the JS pass-through worker (passthrough.mjs) in front of the benchmark's
# nginx origin. See edgeguard.capnp for the socket and outbound settings (the same here).
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "passthrough", worker = .passthrough),
    (name = "loopback", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [
    (name = "http", address = "127.0.0.1:18781", service = "passthrough",
     http = (forwardedProtoHeader = "x-forwarded-proto")),
  ],
);

const passthrough :Workerd.Worker = (
  modules = [
    (name = "passthrough.mjs", esModule = embed "passthrough.mjs"),
  ],
  bindings = [
    (name = "ORIGIN", text = "http://127.0.0.1:18480"),
  ],
  compatibilityDate = "2025-09-01",
  globalOutbound = "loopback",
);
