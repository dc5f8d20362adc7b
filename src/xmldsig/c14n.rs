//! Exclusive XML Canonicalization 1.0 without comments
//! (<https://www.w3.org/TR/xml-exc-c14n/>), over a subtree of a parsed document, optionally
//! leaving out one descendant subtree (the enveloped-signature transform).
//!
//! The rules applied, from the two specifications:
//! - Canonical XML 1.0 §2.2 (character escaping): text escapes `&`, `<`, `>` and CR; attribute
//!   values escape `&`, `<`, `"`, TAB, LF and CR; empty elements become start-end pairs;
//!   attributes are sorted by namespace URI then local name, namespace declarations by prefix;
//!   comments are left out; processing instructions are kept.
//! - Exclusive c14n §3: a namespace declaration is output on an element when the element
//!   *visibly utilizes* the prefix (its own prefix, or an attribute's) or the prefix is in the
//!   `InclusiveNamespaces PrefixList`, and the nearest output ancestor did not already output
//!   the same binding. `xml:` attributes are not inherited.
//!
//! Element and attribute prefixes are read from the source text, so a document that binds two
//! prefixes to one URI canonicalises as it was written.

use std::collections::BTreeMap;

use roxmltree::{Node, NodeId};

/// The XML namespace (never declared in output).
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
/// The deepest element nesting canonicalised.
const MAX_DEPTH: usize = 256;

/// Namespace bindings by prefix (`""` for the default namespace): the declarations one element
/// outputs, and those its nearest output ancestor already output.
type Bindings = BTreeMap<String, String>;

/// Why a subtree could not be canonicalised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum C14nError {
    /// The nesting is deeper than `MAX_DEPTH` (256).
    TooDeep,
    /// A prefix is used that no in-scope declaration binds (the parser should refuse this).
    UnboundPrefix,
    /// The node is not an element.
    NotAnElement,
    /// A processing instruction named `xml` (any case) inside the document, which XML 1.0 §2.6
    /// reserves and roxmltree lets through: its canonical form would read back as an XML
    /// declaration, so the octets would describe another document (found by the xml_c14n
    /// fuzz target).
    ReservedTarget,
}

/// Canonicalises `apex` and its descendants, leaving out the subtree rooted at `exclude`.
/// `inclusive` is the `InclusiveNamespaces PrefixList` (`#default` for the default namespace).
///
/// # Errors
///
/// [`C14nError`] for documents too deep or malformed.
pub fn exclusive(
    apex: Node<'_, '_>,
    exclude: Option<NodeId>,
    inclusive: &[String],
) -> Result<Vec<u8>, C14nError> {
    if !apex.is_element() {
        return Err(C14nError::NotAnElement);
    }
    let mut out = Vec::new();
    let rendered = BTreeMap::new();
    element(apex, exclude, inclusive, &rendered, 0, &mut out)?;
    Ok(out)
}

/// The prefix of a qualified name as written (`None` for no prefix).
fn prefix_of(qname: &str) -> Option<&str> {
    qname.split_once(':').map(|(p, _)| p)
}

/// The element's qualified name as written in the source.
fn element_qname<'i>(node: Node<'_, 'i>) -> &'i str {
    let text = node.document().input_text();
    let start = node.range().start.saturating_add(1);
    let rest = text.get(start..).unwrap_or("");
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '/' || c == '>')
        .unwrap_or(rest.len());
    rest.get(..end).unwrap_or("")
}

fn attribute_qname<'i>(node: Node<'_, 'i>, attr: &roxmltree::Attribute<'_, 'i>) -> &'i str {
    node.document()
        .input_text()
        .get(attr.range_qname())
        .unwrap_or("")
}

/// The URI a prefix is bound to on `node` (`""` for an unbound default namespace).
fn in_scope(node: Node<'_, '_>, prefix: Option<&str>) -> Option<String> {
    match prefix {
        None => Some(node.default_namespace().unwrap_or("").to_owned()),
        Some("xml") => Some(XML_NS.to_owned()),
        Some(p) => node.lookup_namespace_uri(Some(p)).map(str::to_owned),
    }
}

/// Outputs one element, its namespace declarations, attributes and children (Canonical XML
/// §2 with the exclusive rules of exc-c14n §3). `rendered` holds the bindings the nearest
/// output ancestor already output.
fn element(
    node: Node<'_, '_>,
    exclude: Option<NodeId>,
    inclusive: &[String],
    rendered: &Bindings,
    depth: usize,
    out: &mut Vec<u8>,
) -> Result<(), C14nError> {
    if depth > MAX_DEPTH {
        return Err(C14nError::TooDeep);
    }
    let qname = element_qname(node);
    let (decls, now_rendered) = declarations(node, qname, inclusive, rendered)?;
    start_tag(node, qname, &decls, out);
    for child in node.children() {
        if Some(child.id()) == exclude {
            continue;
        }
        if child.is_element() {
            element(child, exclude, inclusive, &now_rendered, depth + 1, out)?;
        } else if child.is_text() {
            escape_text(child.text().unwrap_or(""), out);
        } else if let Some(pi) = child.pi() {
            processing_instruction(pi, out)?;
        }
    }
    out.extend_from_slice(b"</");
    out.extend_from_slice(qname.as_bytes());
    out.push(b'>');
    Ok(())
}

/// The namespace declarations `node` outputs (prefix -> URI, `""` for the default), and the
/// bindings in force for its children once they are output. Kept apart from the writing
/// because it is where the exclusive rules live (exc-c14n §3): the prefixes the element
/// visibly utilizes, then the `InclusiveNamespaces PrefixList`, each output only when the
/// nearest output ancestor did not output the same binding.
fn declarations(
    node: Node<'_, '_>,
    qname: &str,
    inclusive: &[String],
    rendered: &Bindings,
) -> Result<(Bindings, Bindings), C14nError> {
    // Prefixes this element visibly utilizes: its own, then its attributes'.
    let mut wanted: Vec<Option<&str>> = vec![prefix_of(qname)];
    for a in node.attributes() {
        if let Some(p) = prefix_of(attribute_qname(node, &a)) {
            wanted.push(Some(p));
        }
    }
    let mut decls = Bindings::new();
    let mut now_rendered = rendered.clone();
    let mut declare = |key: String, uri: String| {
        let before = rendered.get(&key).map_or("", String::as_str);
        if before != uri {
            decls.insert(key.clone(), uri.clone());
            now_rendered.insert(key, uri);
        }
    };
    for p in &wanted {
        if *p == Some("xml") || *p == Some("xmlns") {
            continue;
        }
        let uri = in_scope(node, *p).ok_or(C14nError::UnboundPrefix)?;
        // `xmlns:p=""` binds nothing in XML Namespaces 1.0 (only 1.1 allows undeclaring a
        // prefix), and roxmltree lets it through: a used prefix bound to no namespace would be
        // written without a declaration, so the octets would not parse (found by the xml_c14n
        // fuzz target).
        if p.is_some() && uri.is_empty() {
            return Err(C14nError::UnboundPrefix);
        }
        declare(p.unwrap_or("").to_owned(), uri);
    }
    for p in inclusive {
        let prefix = if p == "#default" {
            None
        } else {
            Some(p.as_str())
        };
        // Inclusive prefixes follow Canonical XML: output when in scope and not already
        // output with the same value by an output ancestor.
        let Some(uri) = in_scope(node, prefix) else {
            continue;
        };
        if prefix.is_some() && uri.is_empty() {
            continue;
        }
        declare(prefix.unwrap_or("").to_owned(), uri);
    }
    Ok((decls, now_rendered))
}

/// Writes `<qname`, the declarations sorted by prefix, the attributes sorted by namespace URI
/// then local name (Canonical XML §2.2), and `>`. Attribute names are written with the prefix
/// of the source text, so two prefixes bound to one URI stay as written.
fn start_tag(node: Node<'_, '_>, qname: &str, decls: &Bindings, out: &mut Vec<u8>) {
    out.push(b'<');
    out.extend_from_slice(qname.as_bytes());
    for (prefix, uri) in decls {
        if prefix.is_empty() {
            out.extend_from_slice(b" xmlns=\"");
        } else {
            out.extend_from_slice(b" xmlns:");
            out.extend_from_slice(prefix.as_bytes());
            out.extend_from_slice(b"=\"");
        }
        escape_attr(uri, out);
        out.push(b'"');
    }
    let mut sorted: Vec<(&str, &str, &str, &str)> = node
        .attributes()
        .map(|a| {
            (
                a.namespace().unwrap_or(""),
                a.name(),
                attribute_qname(node, &a),
                a.value(),
            )
        })
        .collect();
    sorted.sort_by(|x, y| (x.0, x.1).cmp(&(y.0, y.1)));
    for (_, _, q, value) in sorted {
        out.push(b' ');
        out.extend_from_slice(q.as_bytes());
        out.extend_from_slice(b"=\"");
        escape_attr(value, out);
        out.push(b'"');
    }
    out.push(b'>');
}

/// Writes a processing instruction as `<?target value?>`, refusing the reserved `xml` target
/// (see [`C14nError::ReservedTarget`]).
fn processing_instruction(pi: roxmltree::PI<'_>, out: &mut Vec<u8>) -> Result<(), C14nError> {
    if pi.target.eq_ignore_ascii_case("xml") {
        return Err(C14nError::ReservedTarget);
    }
    out.extend_from_slice(b"<?");
    out.extend_from_slice(pi.target.as_bytes());
    if let Some(v) = pi.value.filter(|v| !v.is_empty()) {
        out.push(b' ');
        out.extend_from_slice(v.as_bytes());
    }
    out.extend_from_slice(b"?>");
    Ok(())
}

fn escape_text(text: &str, out: &mut Vec<u8>) {
    for c in text.chars() {
        match c {
            '&' => out.extend_from_slice(b"&amp;"),
            '<' => out.extend_from_slice(b"&lt;"),
            '>' => out.extend_from_slice(b"&gt;"),
            '\r' => out.extend_from_slice(b"&#xD;"),
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

fn escape_attr(text: &str, out: &mut Vec<u8>) {
    for c in text.chars() {
        match c {
            '&' => out.extend_from_slice(b"&amp;"),
            '<' => out.extend_from_slice(b"&lt;"),
            '"' => out.extend_from_slice(b"&quot;"),
            '\t' => out.extend_from_slice(b"&#x9;"),
            '\n' => out.extend_from_slice(b"&#xA;"),
            '\r' => out.extend_from_slice(b"&#xD;"),
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests;
