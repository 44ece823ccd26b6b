# workerd config: the diagnostic headers-only worker (headers-only.mjs) in front of the
# benchmark's nginx origin. See edgeguard.capnp for the socket and outbound settings.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "headers", worker = .headers),
    (name = "loopback", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [
    (name = "http", address = "127.0.0.1:18784", service = "headers",
     http = (forwardedProtoHeader = "x-forwarded-proto")),
  ],
);

const headers :Workerd.Worker = (
  modules = [
    (name = "headers-only.mjs", esModule = embed "headers-only.mjs"),
    (name = "quotekit-headers.mjs", esModule = embed "quotekit-headers.mjs"),
  ],
  bindings = [
    (name = "ORIGIN", text = "http://127.0.0.1:18480"),
  ],
  compatibilityDate = "2025-09-01",
  globalOutbound = "loopback",
);
