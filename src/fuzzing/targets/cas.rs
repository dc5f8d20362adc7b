//! CAS: validation answers, logout requests and service tickets (`cas_xml`). Properties:
//! success only with one non-empty `cas:user` and no `authenticationFailure`; a logout
//! request's session index is a valid ticket; a ticket passes only in `ST-` form, at most 256
//! safe characters.

use super::text;
use crate::fuzzing::reached;

/// CAS validation answers, logout requests and tickets. Properties: success only with one
/// non-empty `cas:user` and no `authenticationFailure` element anywhere; a logout request's
/// session index is a valid ticket; a ticket passes only in `ST-`/`PT-` form, 32-256 safe
/// characters.
pub fn cas_xml(data: &[u8]) {
    use crate::methods::cas::{check_ticket, parse_logout_request, parse_validation};
    let input = text(data);
    if let Ok(v) = parse_validation(&input) {
        reached("cas_xml.success");
        assert!(
            !v.user.is_empty() && v.user.trim() == v.user,
            "user {:?}",
            v.user
        );
        if let Ok(doc) = roxmltree::Document::parse(&input) {
            assert!(
                !doc.descendants()
                    .any(|n| n.tag_name().name() == "authenticationFailure"
                        && n.tag_name().namespace() == Some("http://www.yale.edu/tp/cas")),
                "success despite an authenticationFailure"
            );
        }
    }
    if let Some(t) = parse_logout_request(&input) {
        assert!(check_ticket(&t).is_ok());
    }
    if check_ticket(&input).is_ok() {
        // CAS 3.0 §3.1.1: services must take tickets of up to 32 characters and should take up
        // to 256; there is no minimum beyond the prefix (security.md H1's "32-256" reads the
        // spec's "at least up to 32" as a minimum; see docs/security-tests.md).
        assert!(input.starts_with("ST-") && input.len() > 3, "{input}");
        assert!(input.len() <= 256, "ticket length {}", input.len());
        assert!(input
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)));
    }
}
