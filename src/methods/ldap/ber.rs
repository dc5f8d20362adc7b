//! The slice of LDAPv3 (RFC 4511) the login needs, in BER with definite lengths: bind, search
//! (request, entries, done), unbind; and RFC 4515 string filters compiled to their BER form.
//!
//! Why a small codec of our own rather than a crate: the ASN.1 crates kept up to date (`rasn`,
//! `der`, `asn1-rs`) either carry a derive framework much larger than these six messages (wasm
//! size matters for both builds) or parse DER only, which refuses valid BER that directories
//! send (long-form lengths where short would do, for one). What LDAP servers send is a small,
//! fixed shape; this codec reads exactly that shape, with a size cap on every message, and
//! refuses everything else (indefinite lengths, lengths past the cap, truncated values).

/// The largest LDAP message accepted from the directory.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// Why bytes from the directory were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BerError {
    /// Not the shape an LDAP message has (wrong tag, bad length, trailing bytes, bad UTF-8).
    Malformed,
    /// A message larger than [`MAX_MESSAGE`].
    Oversized,
}

/// A message the directory sent, reduced to what the login reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `BindResponse`.
    Bind(LdapResult),
    /// `SearchResultEntry`.
    Entry(Entry),
    /// `SearchResultDone`.
    Done(LdapResult),
    /// `SearchResultReference` (a referral the login does not follow).
    Reference,
    /// Any other operation (an unsolicited notice of disconnection, for one).
    Other(u32),
}

/// `LDAPResult`: the code and the server's diagnostic text (for the log only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LdapResult {
    /// `resultCode` (0 success, 49 invalidCredentials, ...).
    pub code: u32,
    /// `diagnosticMessage`.
    pub message: String,
}

/// A search result entry: its DN and attributes (names as the server wrote them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// `objectName`.
    pub dn: String,
    /// `(type, values)` pairs.
    pub attributes: Vec<(String, Vec<String>)>,
}

/// A complete message taken from the front of a buffer, or how many more bytes it needs.
#[derive(Debug, PartialEq, Eq)]
pub enum Framed {
    /// A message: its id, what it is, and how many bytes of the buffer it used.
    Message {
        /// `messageID`.
        id: u32,
        /// The operation.
        reply: Reply,
        /// Bytes consumed.
        used: usize,
    },
    /// At least this many more bytes are needed before a message is complete.
    Need(usize),
}

// ---- Encoding ------------------------------------------------------------------------------

/// `BindRequest` (simple authentication), LDAP version 3.
pub fn bind_request(id: u32, dn: &str, password: &str) -> Vec<u8> {
    let mut body = integer(3);
    body.extend(tlv(0x04, dn.as_bytes()));
    body.extend(tlv(0x80, password.as_bytes()));
    message(id, &tlv(0x60, &body))
}

/// `UnbindRequest`.
pub fn unbind_request(id: u32) -> Vec<u8> {
    message(id, &tlv(0x42, &[]))
}

/// Search scopes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The base object only.
    Base,
    /// The whole subtree under the base.
    Subtree,
}

/// `SearchRequest` with `derefAliases: never`, `typesOnly: false`.
pub fn search_request(
    id: u32,
    base: &str,
    scope: Scope,
    size_limit: u32,
    time_limit_s: u32,
    filter: &[u8],
    attributes: &[&str],
) -> Vec<u8> {
    let mut body = tlv(0x04, base.as_bytes());
    body.extend(tlv(
        0x0a,
        &[match scope {
            Scope::Base => 0,
            Scope::Subtree => 2,
        }],
    ));
    body.extend(tlv(0x0a, &[0]));
    body.extend(integer(size_limit));
    body.extend(integer(time_limit_s));
    body.extend(tlv(0x01, &[0]));
    body.extend_from_slice(filter);
    let mut attrs = Vec::new();
    for a in attributes {
        attrs.extend(tlv(0x04, a.as_bytes()));
    }
    body.extend(tlv(0x30, &attrs));
    message(id, &tlv(0x63, &body))
}

fn message(id: u32, op: &[u8]) -> Vec<u8> {
    let mut body = integer(id);
    body.extend_from_slice(op);
    tlv(0x30, &body)
}

fn integer(value: u32) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    // Minimal two's complement: drop leading zero bytes while the next byte's top bit is clear.
    let mut start = 0;
    while start < 3
        && bytes.get(start) == Some(&0)
        && bytes.get(start + 1).is_some_and(|b| b & 0x80 == 0)
    {
        start += 1;
    }
    tlv(0x02, bytes.get(start..).unwrap_or(&[0]))
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u32).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = bytes.get(skip..).unwrap_or(&[]);
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

// ---- Decoding ------------------------------------------------------------------------------

/// Takes one complete `LDAPMessage` from the front of `buffer`.
///
/// # Errors
///
/// [`BerError`] when the bytes are not an LDAP message or it is larger than [`MAX_MESSAGE`].
pub fn take_message(buffer: &[u8]) -> Result<Framed, BerError> {
    let Some(header) = header(buffer)? else {
        // Tag and length not all here yet: a length needs at most 6 header bytes.
        return Ok(Framed::Need(2usize.saturating_sub(buffer.len()).max(1)));
    };
    if header.tag != 0x30 {
        return Err(BerError::Malformed);
    }
    if header.len > MAX_MESSAGE {
        return Err(BerError::Oversized);
    }
    let total = header.head + header.len;
    if buffer.len() < total {
        return Ok(Framed::Need(total - buffer.len()));
    }
    let body = buffer.get(header.head..total).ok_or(BerError::Malformed)?;
    let mut r = Reader(body);
    let id = r.integer(0x02)?;
    let (tag, op) = r.any()?;
    // Controls ([0]) may follow; the login reads none of them.
    let reply = match tag {
        0x61 => Reply::Bind(result(op)?),
        0x64 => Reply::Entry(entry(op)?),
        0x65 => Reply::Done(result(op)?),
        0x73 => Reply::Reference,
        other => Reply::Other(u32::from(other)),
    };
    Ok(Framed::Message {
        id,
        reply,
        used: total,
    })
}

struct Header {
    tag: u8,
    head: usize,
    len: usize,
}

/// The tag and length of the TLV at the front, or `None` when its header is incomplete.
fn header(buf: &[u8]) -> Result<Option<Header>, BerError> {
    let (Some(&tag), Some(&first)) = (buf.first(), buf.get(1)) else {
        return Ok(None);
    };
    // Multi-byte tags never occur in LDAP.
    if tag & 0x1f == 0x1f {
        return Err(BerError::Malformed);
    }
    if first < 0x80 {
        return Ok(Some(Header {
            tag,
            head: 2,
            len: usize::from(first),
        }));
    }
    let n = usize::from(first & 0x7f);
    // 0x80 is the indefinite form, which LDAP forbids (RFC 4511 §5.1); more than 4 length
    // bytes is past any cap.
    if n == 0 || n > 4 {
        return Err(if n == 0 {
            BerError::Malformed
        } else {
            BerError::Oversized
        });
    }
    let Some(bytes) = buf.get(2..2 + n) else {
        return Ok(None);
    };
    let len = bytes
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    Ok(Some(Header {
        tag,
        head: 2 + n,
        len,
    }))
}

/// A cursor over the content of one constructed value.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn any(&mut self) -> Result<(u8, &'a [u8]), BerError> {
        let h = header(self.0)?.ok_or(BerError::Malformed)?;
        let end = h.head.checked_add(h.len).ok_or(BerError::Malformed)?;
        let content = self.0.get(h.head..end).ok_or(BerError::Malformed)?;
        self.0 = self.0.get(end..).ok_or(BerError::Malformed)?;
        Ok((h.tag, content))
    }

    fn expect(&mut self, tag: u8) -> Result<&'a [u8], BerError> {
        match self.any()? {
            (t, content) if t == tag => Ok(content),
            _ => Err(BerError::Malformed),
        }
    }

    fn integer(&mut self, tag: u8) -> Result<u32, BerError> {
        let bytes = self.expect(tag)?;
        // Message ids and result codes are non-negative and fit in 31 bits.
        if bytes.is_empty() || bytes.len() > 5 || bytes.first().is_some_and(|b| b & 0x80 != 0) {
            return Err(BerError::Malformed);
        }
        let value = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        u32::try_from(value).map_err(|_| BerError::Malformed)
    }

    fn text(&mut self) -> Result<String, BerError> {
        let bytes = self.expect(0x04)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| BerError::Malformed)
    }
}

fn result(content: &[u8]) -> Result<LdapResult, BerError> {
    let mut r = Reader(content);
    let code = r.integer(0x0a)?;
    let _matched = r.text()?;
    let message = r.text()?;
    // A referral ([3]) or SASL credentials ([7]) may follow; not used.
    Ok(LdapResult { code, message })
}

fn entry(content: &[u8]) -> Result<Entry, BerError> {
    let mut r = Reader(content);
    let dn = r.text()?;
    let mut list = Reader(r.expect(0x30)?);
    let mut attributes = Vec::new();
    while !list.is_empty() {
        let mut pair = Reader(list.expect(0x30)?);
        let name = pair.text()?;
        let mut set = Reader(pair.expect(0x31)?);
        let mut values = Vec::new();
        while !set.is_empty() {
            // Binary values (jpegPhoto, ...) are not text; they are skipped, never guessed at.
            let bytes = set.expect(0x04)?;
            if let Ok(v) = std::str::from_utf8(bytes) {
                values.push(v.to_owned());
            }
        }
        attributes.push((name, values));
    }
    Ok(Entry { dn, attributes })
}

// ---- Filters (RFC 4515) --------------------------------------------------------------------

/// Escapes a value for an RFC 4515 string filter: `*`, `(`, `)`, `\` and NUL become `\XX`,
/// so a user name can only ever be one literal value.
pub fn escape_filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a value for an RFC 4514 DN attribute value (the DN template of a direct bind).
pub fn escape_dn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' | ' ' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            ' ' if i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// The deepest filter nesting accepted.
const MAX_FILTER_DEPTH: usize = 16;

/// Compiles an RFC 4515 string filter (`(&(objectClass=person)(uid=alice))`) to BER.
///
/// # Errors
///
/// A message saying what is wrong with the filter.
pub fn compile_filter(text: &str) -> Result<Vec<u8>, String> {
    let mut p = FilterParser {
        s: text.as_bytes(),
        at: 0,
    };
    let out = p.filter(0)?;
    if p.at != p.s.len() {
        return Err(format!("unexpected text after the filter at byte {}", p.at));
    }
    Ok(out)
}

struct FilterParser<'a> {
    s: &'a [u8],
    at: usize,
}

impl FilterParser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn eat(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at byte {}", c as char, self.at))
        }
    }

    fn filter(&mut self, depth: usize) -> Result<Vec<u8>, String> {
        if depth > MAX_FILTER_DEPTH {
            return Err("filter nested too deeply".into());
        }
        self.eat(b'(')?;
        let out = match self.peek() {
            Some(b'&') | Some(b'|') => {
                let tag = if self.peek() == Some(b'&') {
                    0xa0
                } else {
                    0xa1
                };
                self.at += 1;
                let mut items = Vec::new();
                while self.peek() == Some(b'(') {
                    items.extend(self.filter(depth + 1)?);
                }
                if items.is_empty() {
                    return Err("empty & or | filter".into());
                }
                tlv(tag, &items)
            }
            Some(b'!') => {
                self.at += 1;
                tlv(0xa2, &self.filter(depth + 1)?)
            }
            _ => self.item()?,
        };
        self.eat(b')')?;
        Ok(out)
    }

    /// One item of a filter (RFC 4515 `item`): `attr=value`, `attr>=value`, `attr<=value`,
    /// `attr~=value`, `attr=*` or a substring match, read then encoded.
    fn item(&mut self) -> Result<Vec<u8>, String> {
        let attr = self.attribute()?;
        let op = self.operator()?;
        let (parts, stars) = self.value()?;
        encode_item(&attr, op, &parts, stars)
    }

    /// The attribute description: letters, digits, `-`, `.` (OIDs) and `;` (options).
    fn attribute(&mut self) -> Result<Vec<u8>, String> {
        let start = self.at;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c == b';' {
                self.at += 1;
            } else {
                break;
            }
        }
        let attr = self.s.get(start..self.at).unwrap_or(&[]).to_vec();
        if attr.is_empty() {
            return Err(format!("expected an attribute at byte {start}"));
        }
        Ok(attr)
    }

    /// The operator after the attribute: `=`, or the first byte of `>=`, `<=`, `~=`. Extensible
    /// match (`:`) is refused, since no login filter needs it.
    fn operator(&mut self) -> Result<u8, String> {
        match (self.peek(), self.s.get(self.at + 1).copied()) {
            (Some(b'='), _) => {
                self.at += 1;
                Ok(b'=')
            }
            (Some(c @ (b'>' | b'<' | b'~')), Some(b'=')) => {
                self.at += 2;
                Ok(c)
            }
            (Some(b':'), _) => Err("extensible match filters are not supported".into()),
            _ => Err(format!("expected an operator at byte {}", self.at)),
        }
    }

    /// The value, up to the closing parenthesis, with `\XX` escapes decoded and split at each
    /// unescaped `*`; also how many `*` there were (an escaped `\2a` is a literal star).
    fn value(&mut self) -> Result<(Vec<Vec<u8>>, usize), String> {
        let mut parts: Vec<Vec<u8>> = vec![Vec::new()];
        let mut stars = 0usize;
        while let Some(c) = self.peek() {
            match c {
                b')' => break,
                b'(' => return Err(format!("unescaped '(' at byte {}", self.at)),
                b'*' => {
                    stars += 1;
                    parts.push(Vec::new());
                    self.at += 1;
                }
                b'\\' => {
                    let hex = self
                        .s
                        .get(self.at + 1..self.at + 3)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .ok_or_else(|| format!("bad escape at byte {}", self.at))?;
                    if let Some(last) = parts.last_mut() {
                        last.push(hex);
                    }
                    self.at += 3;
                }
                c => {
                    if let Some(last) = parts.last_mut() {
                        last.push(c);
                    }
                    self.at += 1;
                }
            }
        }
        Ok((parts, stars))
    }
}

/// The BER of one filter item (RFC 4511 §4.5.1 `Filter`): an attribute-value assertion for
/// equality and ordering, `present` for `attr=*`, `substrings` otherwise. `parts` are the value
/// split at its `stars` unescaped `*`.
fn encode_item(attr: &[u8], op: u8, parts: &[Vec<u8>], stars: usize) -> Result<Vec<u8>, String> {
    let ava = |tag: u8, value: &[u8]| {
        let mut body = tlv(0x04, attr);
        body.extend(tlv(0x04, value));
        tlv(tag, &body)
    };
    if op != b'=' {
        if stars > 0 {
            return Err("'*' is only allowed with '='".into());
        }
        let value = parts.concat();
        return Ok(match op {
            b'>' => ava(0xa5, &value),
            b'<' => ava(0xa6, &value),
            _ => ava(0xa8, &value),
        });
    }
    if stars == 0 {
        return Ok(ava(0xa3, &parts.concat()));
    }
    if stars == 1 && parts.iter().all(Vec::is_empty) {
        return Ok(tlv(0x87, attr));
    }
    let mut subs = Vec::new();
    let last = parts.len().saturating_sub(1);
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            continue;
        }
        let tag = if i == 0 {
            0x80
        } else if i == last {
            0x82
        } else {
            0x81
        };
        subs.extend(tlv(tag, part));
    }
    let mut body = tlv(0x04, attr);
    body.extend(tlv(0x30, &subs));
    Ok(tlv(0xa4, &body))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn bind_request_matches_the_rfc_shape() {
        // RFC 4511 §4.2 by hand: SEQUENCE { 1, [APPLICATION 0] { 3, "cn=admin", [0] "pw" } }.
        let b = bind_request(1, "cn=admin", "pw");
        assert_eq!(
            b,
            [
                0x30, 0x16, 0x02, 0x01, 0x01, 0x60, 0x11, 0x02, 0x01, 0x03, 0x04, 0x08, b'c', b'n',
                b'=', b'a', b'd', b'm', b'i', b'n', 0x80, 0x02, b'p', b'w'
            ]
        );
        assert_eq!(
            unbind_request(3),
            [0x30, 0x05, 0x02, 0x01, 0x03, 0x42, 0x00]
        );
        assert_eq!(integer(128), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(integer(0), [0x02, 0x01, 0x00]);
        let long = tlv(0x04, &[0u8; 300]);
        assert_eq!(long.get(..4).unwrap(), [0x04, 0x82, 0x01, 0x2c]);
    }

    #[test]
    fn bind_response_and_framing() {
        let msg = [
            0x30, 0x0c, 0x02, 0x01, 0x01, 0x61, 0x07, 0x0a, 0x01, 0x31, 0x04, 0x00, 0x04, 0x00,
        ];
        match take_message(&msg).unwrap() {
            Framed::Message { id, reply, used } => {
                assert_eq!((id, used), (1, 14));
                assert_eq!(
                    reply,
                    Reply::Bind(LdapResult {
                        code: 49,
                        message: String::new()
                    })
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(take_message(&msg[..5]).unwrap(), Framed::Need(9));
        assert_eq!(take_message(&msg[..1]).unwrap(), Framed::Need(1));
        assert_eq!(take_message(&[]).unwrap(), Framed::Need(2));
        // Indefinite length, a wrong outer tag, an oversized length.
        assert_eq!(take_message(&[0x30, 0x80]), Err(BerError::Malformed));
        assert_eq!(take_message(&[0x31, 0x00]), Err(BerError::Malformed));
        assert_eq!(
            take_message(&[0x30, 0x84, 0x7f, 0, 0, 0]),
            Err(BerError::Oversized)
        );
        // A length that runs past its container.
        let bad = [0x30, 0x05, 0x02, 0x09, 0x01, 0x61, 0x00];
        assert_eq!(take_message(&bad), Err(BerError::Malformed));
    }

    #[test]
    fn entry_with_multi_valued_and_utf8_attributes() {
        let mut attrs = Vec::new();
        for (name, values) in [("cn", vec!["张伟"]), ("memberOf", vec!["cn=a", "cn=b"])] {
            let mut set = Vec::new();
            for v in values {
                set.extend(tlv(0x04, v.as_bytes()));
            }
            let mut pair = tlv(0x04, name.as_bytes());
            pair.extend(tlv(0x31, &set));
            attrs.extend(tlv(0x30, &pair));
        }
        let mut body = tlv(0x04, b"uid=z,dc=x");
        body.extend(tlv(0x30, &attrs));
        let msg = message(2, &tlv(0x64, &body));
        let Framed::Message { reply, .. } = take_message(&msg).unwrap() else {
            panic!()
        };
        let Reply::Entry(e) = reply else { panic!() };
        assert_eq!(e.dn, "uid=z,dc=x");
        assert_eq!(e.attributes[0], ("cn".into(), vec!["张伟".into()]));
        assert_eq!(
            e.attributes[1].1,
            vec!["cn=a".to_owned(), "cn=b".to_owned()]
        );
        // Every truncation of it is "need more", never an error or a short parse.
        for cut in 0..msg.len() {
            assert!(matches!(
                take_message(&msg[..cut]).unwrap(),
                Framed::Need(_)
            ));
        }
    }

    #[test]
    fn filters_compile_and_values_are_escaped() {
        assert_eq!(
            compile_filter("(uid=a)").unwrap(),
            [0xa3, 0x08, 0x04, 0x03, b'u', b'i', b'd', 0x04, 0x01, b'a']
        );
        assert_eq!(
            compile_filter("(objectClass=*)").unwrap(),
            tlv(0x87, b"objectClass")
        );
        let f = compile_filter("(&(objectClass=person)(|(uid=a*b)(!(cn=x))))").unwrap();
        assert_eq!(f[0], 0xa0);
        assert!(compile_filter("(uid=a").is_err());
        assert!(compile_filter("(uid=a))").is_err());
        assert!(compile_filter("(uid:dn:=a)").is_err());
        let injected = format!("(uid={})", escape_filter_value("*)(uid=*"));
        assert_eq!(injected, "(uid=\\2a\\29\\28uid=\\2a)");
        let mut body = tlv(0x04, b"uid");
        body.extend(tlv(0x04, b"*)(uid=*"));
        assert_eq!(compile_filter(&injected).unwrap(), tlv(0xa3, &body));
        assert_eq!(escape_dn_value(" a,b=c "), "\\ a\\,b\\=c\\ ");
    }
}
