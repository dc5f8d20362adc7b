//! What the methods' XML readers (CAS validation answers, SAML messages and metadata) share:
//! one strict parser setting and one reading of text-only elements, so both protocols refuse
//! the same shapes (security.md H3, I1, I7).

/// Parser options for an IdP's XML: DTDs (and with them entity declarations) refused
/// (security.md H3, I1), at most `nodes_limit` nodes.
pub fn options<'a>(nodes_limit: u32) -> roxmltree::ParsingOptions<'a> {
    roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit,
        ..roxmltree::ParsingOptions::default()
    }
}

/// The text of an element that holds text and nothing else: a comment, element or processing
/// instruction inside (comment injection, security.md I7) makes it unusable (`None`).
pub fn text_only(node: roxmltree::Node<'_, '_>) -> Option<String> {
    let mut text = String::new();
    for child in node.children() {
        if !child.is_text() {
            return None;
        }
        text.push_str(child.text().unwrap_or(""));
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_alone_is_read_and_anything_else_inside_refused() {
        let doc = roxmltree::Document::parse_with_options(
            "<r><a>x &amp; y</a><b>x<!--c-->y</b><c>x<d/></c><e/></r>",
            options(100),
        )
        .unwrap();
        let text = |name: &str| {
            let node = doc.descendants().find(|n| n.has_tag_name(name)).unwrap();
            text_only(node)
        };
        assert_eq!(text("a").as_deref(), Some("x & y"));
        assert_eq!(text("b"), None);
        assert_eq!(text("c"), None);
        assert_eq!(text("e").as_deref(), Some(""));
    }

    #[test]
    fn dtds_and_oversized_documents_are_refused() {
        let dtd = "<!DOCTYPE r [<!ENTITY e \"x\">]><r>&e;</r>";
        assert!(roxmltree::Document::parse_with_options(dtd, options(100)).is_err());
        assert!(
            roxmltree::Document::parse_with_options("<r><a/><a/><a/></r>", options(3)).is_err()
        );
    }
}
