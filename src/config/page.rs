//! What the sign-in pages show that configuration gives: text in both page languages (a
//! method's `label`, `login_page_title`) and the logo (`login_page_logo`), with the one CSP
//! source that allows exactly it.

use serde::Deserialize;
use serde_json::Value;

use super::ConfigError;
use crate::error::parse_at;
use crate::pages::lang::Text;
use crate::pages::login::{Brand, Logo};

/// The longest label or title, in characters.
const MAX_TEXT_CHARS: usize = 200;

/// The longest logo URL, in bytes.
const MAX_LOGO_BYTES: usize = 2048;

/// Text per language, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawText {
    en: String,
    zh: String,
}

/// A label or title: one string for both languages, or `{"en": ..., "zh": ...}`; each not
/// blank, at most [`MAX_TEXT_CHARS`] characters, without control characters.
pub(super) fn text(value: Value, at: &str) -> Result<Text, ConfigError> {
    let (en, zh) = match value {
        Value::String(s) => (s.clone(), s),
        Value::Object(_) => {
            let raw: RawText = parse_at(value, at)?;
            (raw.en, raw.zh)
        }
        _ => {
            return Err(ConfigError::at(
                at,
                "must be a string or {\"en\": ..., \"zh\": ...}",
            ))
        }
    };
    for (lang, t) in [("en", &en), ("zh", &zh)] {
        let problem = if t.trim().is_empty() {
            Some("must not be blank")
        } else if t.chars().count() > MAX_TEXT_CHARS {
            Some("must be at most 200 characters")
        } else if t.chars().any(char::is_control) {
            Some("must not contain control characters")
        } else {
            None
        };
        if let Some(problem) = problem {
            let at = if en == zh {
                at.to_owned()
            } else {
                format!("{at}.{lang}")
            };
            return Err(ConfigError::at(at, problem));
        }
    }
    Ok(Text::new(en, zh))
}

/// `login_page_title` and `login_page_logo`.
pub(super) fn brand(
    title: Option<Value>,
    logo: Option<String>,
    origin: &str,
) -> Result<Brand, ConfigError> {
    let title = title.map(|t| text(t, "login_page_title")).transpose()?;
    let logo = logo.map(|l| parse_logo(&l, origin)).transpose()?;
    Ok(Brand { title, logo })
}

/// An https URL (no user name, no fragment) or a path on `base_url`'s origin (the return-URL
/// rules: not `//`, not `/\`); its CSP source is its scheme, host, port and path, so the
/// pages may load that image and no other.
fn parse_logo(text: &str, origin: &str) -> Result<Logo, ConfigError> {
    let at = "login_page_logo";
    let err = |reason: &str| ConfigError::at(at, reason);
    if text.len() > MAX_LOGO_BYTES {
        return Err(err("must be at most 2048 bytes"));
    }
    let url = if text.starts_with('/') {
        if crate::redirect::safe_return(text, origin) != text {
            return Err(err(
                "a path on this site must start with one / and be a plain path",
            ));
        }
        url::Url::parse(origin)
            .and_then(|o| o.join(text))
            .map_err(|e| err(&format!("not a valid path: {e}")))?
    } else {
        let url = url::Url::parse(text)
            .map_err(|_| err("must be an https URL or a path on this site (/static/logo.png)"))?;
        if url.scheme() != "https" || url.host_str().is_none() {
            return Err(err(
                "must be an https URL or a path on this site (/static/logo.png)",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(err("must not carry a user name or password"));
        }
        url
    };
    if url.fragment().is_some() {
        return Err(err("must not have a fragment"));
    }
    // A CSP source has no query, and `;` and `,` end a directive and a policy: the path's
    // are written percent-encoded, which CSP matching decodes.
    let path = url.path().replace(';', "%3B").replace(',', "%2C");
    let source = format!("{}{path}", url.origin().ascii_serialization());
    let src = if text.starts_with('/') {
        text.to_owned()
    } else {
        url.to_string()
    };
    Ok(Logo::new(src, source))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ORIGIN: &str = "https://app.example.com";

    fn logo(text: &str) -> Result<String, String> {
        parse_logo(text, ORIGIN)
            .map(|l| {
                crate::pages::login::csp(&Brand {
                    title: None,
                    logo: Some(l),
                })
            })
            .map_err(|e| e.to_string())
    }

    #[test]
    fn texts_are_one_string_or_both_languages() {
        assert_eq!(text(json!("Acme"), "t").ok(), Some(Text::same("Acme")));
        assert_eq!(
            text(json!({"en": "Staff", "zh": "员工"}), "t").ok(),
            Some(Text::new("Staff", "员工"))
        );
        let bad = [
            (json!(""), "t: must not be blank"),
            (json!("  "), "t: must not be blank"),
            (json!({"en": "x", "zh": ""}), "t.zh: must not be blank"),
            (json!({"en": "x"}), "t: missing field `zh`"),
            (
                json!({"en": "x", "zh": "y", "fr": "z"}),
                "t.fr: unknown field",
            ),
            (json!(3), "t: must be a string or"),
            (json!("a\nb"), "t: must not contain control"),
            (json!("x".repeat(201)), "t: must be at most 200"),
        ];
        for (v, want) in bad {
            let got = text(v.clone(), "t").map(|_| ()).unwrap_err().to_string();
            assert!(got.starts_with(want), "{v}: {got}");
        }
    }

    #[test]
    fn logos_are_https_or_same_origin_and_the_csp_allows_exactly_them() {
        let cases = [
            (
                "https://cdn.example.com/brand/logo.png?v=3",
                "img-src https://cdn.example.com/brand/logo.png;",
            ),
            (
                "https://cdn.example.com:8443/l.svg",
                "img-src https://cdn.example.com:8443/l.svg;",
            ),
            (
                "/static/logo.png",
                "img-src https://app.example.com/static/logo.png;",
            ),
            (
                "/static/a;b,c.png?x=1",
                "img-src https://app.example.com/static/a%3Bb%2Cc.png;",
            ),
        ];
        for (input, want) in cases {
            let csp = logo(input).unwrap();
            assert!(csp.contains(want), "{input}: {csp}");
        }
    }

    #[test]
    fn other_logos_are_refused() {
        for bad in [
            "http://cdn.example.com/logo.png",
            "data:image/png;base64,AAAA",
            "javascript:alert(1)",
            "//evil.example/logo.png",
            "/\\evil.example/logo.png",
            "/%2F/evil.example",
            "/a/../logo.png",
            "static/logo.png",
            "https://user:pw@cdn.example.com/logo.png",
            "https://cdn.example.com/logo.png#x",
            "/logo.png#x",
            "/logo .png",
            "",
        ] {
            let got = logo(bad);
            assert!(got.is_err(), "{bad:?} accepted: {got:?}");
            assert!(got.unwrap_err().starts_with("login_page_logo: "), "{bad:?}");
        }
        assert!(logo(&format!("/{}", "a".repeat(2048))).is_err());
    }
}
