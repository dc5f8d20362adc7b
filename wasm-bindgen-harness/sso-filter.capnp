# sso-filter in workerd, Cloudflare's open-source Workers runtime (npm `workerd`), for local runs
# and the end-to-end suite (SSO_E2E_HOST=workerd). Not a production front: the network below
# reaches loopback addresses only.
#
#   npm run build                        # pkg/ (the .wasm and its JS glue)
#   SSO_CONFIG="$(cat filter.json)" ORIGIN=http://127.0.0.1:8081 \
#     npx workerd serve sso-filter.capnp [--socket-addr http=127.0.0.1:8080] \
#                                         [--socket-addr admin=127.0.0.1:9901]
#
# The modules are the files `wrangler deploy` uploads with wrangler.toml (no_bundle: the same
# files, byte for byte, under the same names; tests/e2e/test_workerd.py checks it), and the
# compatibility date is wrangler.toml's (checked there too).
#
# The tests import this file and replace only `loopback` (to trust their own CA for LDAP over
# TLS): see tests/e2e/harness.py, WorkerdWorker.

using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "sso-filter", worker = .worker),
    (name = "loopback", network = .loopback),
  ],
  sockets = .sockets,
);

# The protected listener, and the admin one (GET /ready, GET /stats; cloudflare.mjs `admin`).
# Both on loopback; `--socket-addr NAME=ADDR` moves them.
const sockets :List(Workerd.Socket) = [
  (name = "http", address = "127.0.0.1:8080", http = (), service = "sso-filter"),
  (name = "admin", address = "127.0.0.1:9901", http = (),
   service = (name = "sso-filter", entrypoint = "admin")),
];

const worker :Workerd.Worker = (
  # The first module is the main one. Names are the import specifiers as the modules resolve
  # them (worker.mjs imports ./handler.mjs and ./pkg/...), and the ones wrangler uploads.
  modules = [
    (name = "cloudflare.mjs", esModule = embed "dist/cloudflare.mjs"),
    (name = "worker.mjs", esModule = embed "dist/worker.mjs"),
    (name = "handler.mjs", esModule = embed "dist/handler.mjs"),
    (name = "pkg/sso_filter_edge.js", esModule = embed "dist/pkg/sso_filter_edge.js"),
    (name = "pkg/sso_filter_edge_bg.wasm", wasm = embed "dist/pkg/sso_filter_edge_bg.wasm"),
  ],
  compatibilityDate = "2024-09-23",

  # The two bindings of wrangler.toml, from the environment of `workerd serve`: SSO_CONFIG is
  # the filter JSON (a secret on Cloudflare), ORIGIN the upstream's base URL.
  bindings = [
    (name = "SSO_CONFIG", fromEnvironment = "SSO_CONFIG"),
    (name = "ORIGIN", fromEnvironment = "ORIGIN"),
  ],

  # fetch() (origin and IdPs) and connect() (LDAP) both go out through this service.
  globalOutbound = "loopback",
);

# Loopback only (127.0.0.0/8, ::1): the origin and the IdPs of a local run or of the tests.
# workerd's default "internet" service refuses local addresses (SSRF protection); this one
# allows nothing else. TLS (https:// callouts, ldaps) trusts the usual browser CAs.
const loopback :Workerd.Network = (
  allow = ["local"],
  tlsOptions = (trustBrowserCas = true),
);
