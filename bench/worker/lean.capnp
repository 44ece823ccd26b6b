# workerd config: the lean hand-written QuoteKit worker (lean.mjs) in front of the
# benchmark's nginx origin. See edgeguard.capnp for the socket and outbound settings.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "lean", worker = .lean),
    (name = "loopback", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [
    (name = "http", address = "127.0.0.1:18788", service = "lean",
     http = (forwardedProtoHeader = "x-forwarded-proto")),
  ],
);

const lean :Workerd.Worker = (
  modules = [
    (name = "lean.mjs", esModule = embed "lean.mjs"),
    (name = "quotekit-headers.mjs", esModule = embed "quotekit-headers.mjs"),
  ],
  bindings = [
    (name = "ORIGIN", text = "http://127.0.0.1:18480"),
  ],
  compatibilityDate = "2025-09-01",
  globalOutbound = "loopback",
);
