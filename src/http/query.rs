//! Query strings and form bodies (`application/x-www-form-urlencoded`): parsed into ordered
//! pairs where a security-relevant parameter must appear once, and stripped of the filter's own
//! parameters before the request goes upstream.

use std::fmt;

/// The parsed query string of a request target: ordered (name, value) pairs, percent-decoded.
#[derive(Clone, Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses an `application/x-www-form-urlencoded` string (query or form body).
    pub fn parse(raw: &str) -> Self {
        Query {
            pairs: url::form_urlencoded::parse(raw.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    /// The value of a parameter that appears exactly once.
    ///
    /// # Errors
    ///
    /// [`Duplicate`] when it appears more than once: a security-relevant parameter given twice
    /// is ambiguous (one component may read the first, another the last).
    pub fn single(&self, name: &str) -> Result<Option<&str>, Duplicate> {
        let mut found = None;
        for (k, v) in &self.pairs {
            if k == name {
                if found.is_some() {
                    return Err(Duplicate(name.to_owned()));
                }
                found = Some(v.as_str());
            }
        }
        Ok(found)
    }

    /// Whether the parameter is present at all.
    pub fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == name)
    }
}

/// A parameter that must appear once appeared several times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duplicate(pub String);

impl fmt::Display for Duplicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "parameter {} repeated", self.0)
    }
}

/// Removes the named parameters from a raw query, keeping the rest byte for byte.
pub fn strip_query_params(raw_query: &str, names: &[&str]) -> String {
    raw_query
        .split('&')
        .filter(|part| {
            if part.is_empty() {
                return false;
            }
            let key = part.split('=').next().unwrap_or("");
            let decoded: String = url::form_urlencoded::parse(key.as_bytes())
                .map(|(k, _)| k.into_owned())
                .next()
                .unwrap_or_default();
            !names.contains(&decoded.as_str())
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_single_or_refused() {
        let q = Query::parse("a=1&b=2&a=3&c=%E5%BC%A0");
        assert_eq!(q.single("b"), Ok(Some("2")));
        assert_eq!(q.single("c"), Ok(Some("张")));
        assert!(q.single("a").is_err());
        assert_eq!(q.single("z"), Ok(None));
    }

    #[test]
    fn strips_named_params_only() {
        assert_eq!(
            strip_query_params(
                "activeAuth=jwt-param&x=1&jwtParam=abc&y=%20",
                &["activeAuth", "jwtParam"]
            ),
            "x=1&y=%20"
        );
        assert_eq!(strip_query_params("jwtParam=abc", &["jwtParam"]), "");
    }
}
