//! The native command line: check a configuration, print the Envoy clusters it needs, and hash
//! passwords for built-in users.

use std::io::Read;
use std::process::ExitCode;

use sso_filter::password::{PasswordHash, DEFAULT_ITERATIONS};
use sso_filter::random::SystemRandom;
use sso_filter::Config;

const USAGE: &str = "usage:
  sso-filter validate CONFIG.json        check a configuration (exit 1 with the JSON path on error)
  sso-filter clusters CONFIG.json        print the Envoy clusters its outbound endpoints need
  sso-filter hash-password [PASSWORD] [--iterations N]
                                         print a password_hash for a built-in user
                                         (reads the password from stdin when not given)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("validate") => validate(args.get(1)),
        Some("clusters") => clusters(args.get(1)),
        Some("hash-password") => hash_password(args.get(1..).unwrap_or_default()),
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn load(path: Option<&String>) -> Result<Config, ExitCode> {
    let Some(path) = path else {
        eprintln!("{USAGE}");
        return Err(ExitCode::from(2));
    };
    let text = std::fs::read(path).map_err(|e| {
        eprintln!("{path}: {e}");
        ExitCode::from(1)
    })?;
    Config::from_json(&text).map_err(|e| {
        eprintln!("{path}: {e}");
        ExitCode::from(1)
    })
}

fn validate(path: Option<&String>) -> ExitCode {
    match load(path) {
        Ok(config) => {
            println!("{}", config.summary());
            for warning in config.warnings() {
                eprintln!("warning: {warning}");
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn clusters(path: Option<&String>) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let urls = config.outbound_urls();
    if urls.is_empty() {
        println!("# no outbound endpoints: this configuration needs no extra clusters");
        return ExitCode::SUCCESS;
    }
    println!("clusters:");
    let mut seen = Vec::new();
    for (method, url) in urls {
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(443);
        let name = config.cluster_names.name(&url);
        // Endpoints on one host share one cluster.
        if seen.contains(&name) {
            continue;
        }
        seen.push(name.clone());
        println!("# used by method {method}: {url}");
        println!("- name: {name}\n  type: STRICT_DNS\n  connect_timeout: 5s\n  load_assignment:\n    cluster_name: {name}\n    endpoints:\n    - lb_endpoints:\n      - endpoint:\n          address:\n            socket_address: {{ address: {host}, port_value: {port} }}");
        if url.scheme() == "https" {
            // Without a validation context Envoy would accept any certificate: the callouts
            // carry client secrets and codes, so the printed cluster verifies the chain against
            // the system's CAs and the name against the certificate.
            let san = if url
                .host()
                .is_some_and(|h| !matches!(h, url::Host::Domain(_)))
            {
                "IP_ADDRESS"
            } else {
                "DNS"
            };
            // SNI names a host (RFC 6066 §3): none for an address.
            let sni = if san == "DNS" {
                format!("\n      sni: {host}")
            } else {
                String::new()
            };
            println!("  transport_socket:\n    name: envoy.transport_sockets.tls\n    typed_config:\n      \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext{sni}\n      common_tls_context:\n        validation_context:\n          # the system's CA bundle; a private CA (etcd's, say) goes here instead\n          trusted_ca: {{ filename: /etc/ssl/certs/ca-certificates.crt }}\n          match_typed_subject_alt_names:\n          - san_type: {san}\n            matcher: {{ exact: \"{host}\" }}");
        }
    }
    ExitCode::SUCCESS
}

fn hash_password(args: &[String]) -> ExitCode {
    let mut iterations = DEFAULT_ITERATIONS;
    let mut password = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--iterations" {
            match it.next().and_then(|n| n.parse().ok()) {
                Some(n) => iterations = n,
                None => {
                    eprintln!("--iterations takes a number");
                    return ExitCode::from(2);
                }
            }
        } else {
            password = Some(a.clone());
        }
    }
    let password = match password {
        Some(p) => p,
        None => {
            let mut s = String::new();
            if std::io::stdin().read_to_string(&mut s).is_err() {
                eprintln!("could not read the password from stdin");
                return ExitCode::from(1);
            }
            s.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    if password.is_empty() {
        eprintln!("empty password");
        return ExitCode::from(1);
    }
    match PasswordHash::create(&password, iterations, &mut SystemRandom) {
        Ok(hash) => match PasswordHash::parse(&hash.to_string()) {
            Ok(_) => {
                println!("{hash}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        },
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}
