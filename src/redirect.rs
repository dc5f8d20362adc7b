//! Return URLs: where the browser goes after login or logout. Only ever same-origin
//! (security.md D1, D5, D7): anything doubtful becomes `/`.

/// The longest return URL kept.
pub const MAX_RETURN_URL: usize = 2048;

/// Validates a return URL against the filter's own origin (`https://app.example.com`).
/// Returns the path (and query) to redirect to, or `/` when the input is not safe.
pub fn safe_return(candidate: &str, origin: &str) -> String {
    same_origin_path(candidate, origin).unwrap_or_else(|| "/".to_owned())
}

fn same_origin_path(candidate: &str, origin: &str) -> Option<String> {
    if candidate.is_empty() || candidate.len() > MAX_RETURN_URL {
        return None;
    }
    // Control characters and whitespace anywhere: browsers strip tabs and newlines from URLs,
    // which turns `/\t/evil.com` into `//evil.com` (oauth2-proxy CVE-2020-11053).
    if candidate
        .chars()
        .any(|c| c.is_control() || c.is_whitespace())
        || candidate.contains('\\')
    {
        return None;
    }
    let path = if candidate.starts_with('/') {
        candidate
    } else {
        // An absolute URL must carry exactly our origin, then a path.
        let rest = candidate.strip_prefix(origin)?;
        if rest.is_empty() {
            "/"
        } else if rest.starts_with('/') {
            rest
        } else {
            return None;
        }
    };
    // `//evil.com` and `/\evil.com` are protocol-relative; `/%2F/evil.com` and friends decode to
    // them in some frameworks. Refuse any encoded slash or backslash at the front.
    let lowered = path.to_ascii_lowercase();
    if path.starts_with("//")
        || lowered.starts_with("/%2f")
        || lowered.starts_with("/%5c")
        || lowered.starts_with("/%09")
        || path.contains("/../")
        || path.contains("/./")
    {
        return None;
    }
    Some(path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "https://app.example.com";

    #[test]
    fn open_redirect_payloads_fall_back_to_root() {
        let bad = [
            "//evil.com",
            "///evil.com",
            "/\\evil.com",
            "\\\\evil.com",
            "https://evil.com",
            "http://app.example.com/x",
            "https://app.example.com.evil.com/",
            "https://app.example.com@evil.com/",
            "https:evil.com",
            "javascript:alert(1)",
            "data:text/html,x",
            "/%2F/evil.com",
            "/%2f%2fevil.com",
            "/%5Cevil.com",
            "/\t/evil.com",
            "/\n/evil.com",
            "/\r\nSet-Cookie:x=1",
            "/./../../\\evil.com",
            "evil.com",
            "",
        ];
        for b in bad {
            assert_eq!(safe_return(b, ORIGIN), "/", "{b:?}");
        }
        assert_eq!(safe_return(&format!("/{}", "a".repeat(3000)), ORIGIN), "/");
    }

    #[test]
    fn same_origin_targets_survive() {
        assert_eq!(
            safe_return("/apps/1?x=1#/dash", ORIGIN),
            "/apps/1?x=1#/dash"
        );
        assert_eq!(
            safe_return("https://app.example.com/a?b=c", ORIGIN),
            "/a?b=c"
        );
        assert_eq!(safe_return("https://app.example.com", ORIGIN), "/");
    }
}
