# workerd config: the idiomatic-JS QuoteKit policy (baseline-policy.mjs) in front of the
# benchmark's nginx origin. See edgeguard.capnp for the socket and outbound settings.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "baseline", worker = .baseline),
    (name = "loopback", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [
    (name = "http", address = "127.0.0.1:18782", service = "baseline",
     http = (forwardedProtoHeader = "x-forwarded-proto")),
  ],
);

const baseline :Workerd.Worker = (
  modules = [
    (name = "baseline-policy.mjs", esModule = embed "baseline-policy.mjs"),
    (name = "quotekit-headers.mjs", esModule = embed "quotekit-headers.mjs"),
  ],
  bindings = [
    (name = "ORIGIN", text = "http://127.0.0.1:18480"),
  ],
  compatibilityDate = "2025-09-01",
  globalOutbound = "loopback",
);
