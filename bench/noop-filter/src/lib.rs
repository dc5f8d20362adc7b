//! The no-op proxy-wasm filter of `make bench` (configuration F), and the probes (G) that price
//! each host call a filter makes in Envoy's V8, so each choice on sso-filter's session path
//! rests on a figure from the same run.
//!
//! The plugin configuration (a JSON object) picks what the filter does on request headers:
//!
//! | `probe` | what it does per request |
//! |---|---|
//! | absent, `"noop"` | nothing: the floor every Wasm filter pays |
//! | `"read_map"` | reads the whole request header map (one `get_header_map_pairs`) |
//! | `"read_one"` | reads one header, `cookie` (one `get_header_map_value`) |
//! | `"set"` | sets `n` headers one call each (`set_header_map_value` x n) |
//! | `"remove"` | removes `n` headers one call each (`remove_header_map_value` x n) |
//! | `"replace_map"` | reads the whole map, adds `n` headers, writes it back in one call (`set_header_map_pairs`) |
//! | `"clock"` | reads the clock (`get_current_time_nanoseconds`) |
//! | `"property"` | reads the peer address (`get_property(source.address)`) |
//! | `"host_floor"` | what sso-filter's session path asks of the host: reads the whole map and the clock, sets `n` headers |
//!
//! Its price is the probe's CPU per request minus F's, in the same run.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { probe: Probe::Noop }) });
}}

/// What the filter does on each request's headers.
#[derive(Clone, Copy)]
enum Probe {
    Noop,
    ReadMap,
    ReadOne,
    Set(usize),
    Remove(usize),
    ReplaceMap(usize),
    Clock,
    Property,
    HostFloor(usize),
}

/// Header names the probes write: fixed, so no allocation is priced but the host call's.
const NAMES: [&str; 8] = [
    "x-probe-0", "x-probe-1", "x-probe-2", "x-probe-3", "x-probe-4", "x-probe-5", "x-probe-6",
    "x-probe-7",
];

struct Root {
    probe: Probe,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _: usize) -> bool {
        let Some(raw) = self.get_plugin_configuration() else {
            return true;
        };
        let text = String::from_utf8_lossy(&raw);
        let field = |key: &str| -> Option<String> {
            // A tiny reader for {"probe": "...", "n": N}: the bench writes exactly that.
            let at = text.find(&format!("\"{key}\""))?;
            let rest = text.get(at + key.len() + 2..)?;
            let rest = rest.trim_start().strip_prefix(':')?.trim_start();
            let end = rest.find([',', '}']).unwrap_or(rest.len());
            Some(rest.get(..end)?.trim().trim_matches('"').to_owned())
        };
        let n = field("n").and_then(|v| v.parse().ok()).unwrap_or(1).min(NAMES.len());
        self.probe = match field("probe").as_deref() {
            None | Some("noop") => Probe::Noop,
            Some("read_map") => Probe::ReadMap,
            Some("read_one") => Probe::ReadOne,
            Some("set") => Probe::Set(n),
            Some("remove") => Probe::Remove(n),
            Some("replace_map") => Probe::ReplaceMap(n),
            Some("clock") => Probe::Clock,
            Some("property") => Probe::Property,
            Some("host_floor") => Probe::HostFloor(n),
            Some(_) => return false,
        };
        true
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http { probe: self.probe }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Http {
    probe: Probe,
}

impl Context for Http {}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        match self.probe {
            Probe::Noop => {}
            Probe::ReadMap => {
                std::hint::black_box(self.get_http_request_headers());
            }
            Probe::ReadOne => {
                std::hint::black_box(self.get_http_request_header("cookie"));
            }
            Probe::Set(n) => {
                for name in NAMES.iter().take(n) {
                    self.set_http_request_header(name, Some("v"));
                }
            }
            Probe::Remove(n) => {
                for name in NAMES.iter().take(n) {
                    self.set_http_request_header(name, None);
                }
            }
            Probe::ReplaceMap(n) => {
                let mut map = self.get_http_request_headers();
                for name in NAMES.iter().take(n) {
                    map.push(((*name).to_owned(), "v".to_owned()));
                }
                let pairs: Vec<(&str, &str)> =
                    map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                self.set_http_request_headers(pairs);
            }
            Probe::Clock => {
                std::hint::black_box(self.get_current_time());
            }
            Probe::Property => {
                std::hint::black_box(self.get_property(vec!["source", "address"]));
            }
            Probe::HostFloor(n) => {
                std::hint::black_box(self.get_http_request_headers_bytes());
                std::hint::black_box(self.get_current_time());
                for name in NAMES.iter().take(n) {
                    self.set_http_request_header(name, Some("v"));
                }
            }
        }
        Action::Continue
    }
}
