//! `type: ldap`: the login form's user name and password checked against an LDAP directory.
//!
//! The engine speaks LDAPv3 itself ([`ber`]) and asks its host for a byte stream
//! ([`Step::Stream`](crate::http::Step::Stream)); it never opens anything. One login is a short
//! conversation on one connection, one request per round because a client must not send
//! anything after a bind until its response arrives (RFC 4511 §4.2.1):
//!
//! - search mode: bind as the service account, search `search_base` with `user_filter` for
//!   exactly one entry, bind as that entry's DN with the typed password, optionally bind as the
//!   service account again and search the groups, unbind;
//! - direct mode (`user_dn_template`): bind as the templated DN, read that entry, optionally
//!   search the groups, unbind.
//!
//! Every directory failure (wrong password, no such user, several users, server down, refused,
//! malformed, truncated or oversized replies) is one [`DirectoryFailure`]; the login page shows
//! one message for all of them and the log says which.

pub mod ber;

mod config;
mod login;

use serde_json::{Map, Value};

use crate::http::{Endpoint, Exchange, StreamEnd, StreamReply};
use crate::mapping::RawMapping;
use crate::methods::throttle::Throttle;

use self::ber::{BerError, Entry, Framed, Reply, Scope};
pub use self::config::RawLdap;

/// Bytes a whole conversation may read from the directory.
pub const MAX_CONVERSATION_BYTES: usize = 256 * 1024;

/// Group entries read at most (the search's size limit).
const MAX_GROUPS: u32 = 500;

/// A configured LDAP method.
pub struct Ldap {
    endpoint: Endpoint,
    service: Option<(String, String)>,
    lookup: Lookup,
    attributes: Vec<String>,
    login_attr: String,
    groups_attr: Option<String>,
    groups: Option<GroupSearch>,
    timeout_ms: u64,
    /// The form's throttling policy (the same one built-in users have).
    pub throttle: Throttle,
    /// Mapping defaults from `attributes`.
    pub default_mapping: RawMapping,
}

impl std::fmt::Debug for Ldap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The service password never reaches a log.
        write!(f, "Ldap({}:{})", self.endpoint.host, self.endpoint.port)
    }
}

enum Lookup {
    Search { base: String, filter: String },
    Direct { template: String },
}

struct GroupSearch {
    base: String,
    filter: String,
    name_attribute: String,
}

impl Ldap {
    /// The directory's address (for `sso-filter clusters` and the log).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The first round of a login. The caller has refused an empty password already (an empty
    /// simple bind is an anonymous bind, which succeeds).
    pub fn start(&self, username: &str, password: &str) -> (Exchange, Conversation) {
        let mut conv = Conversation {
            username: username.to_owned(),
            password: password.to_owned(),
            stage: Stage::Closing(Err(DirectoryFailure::Unavailable)),
            buffer: Vec::new(),
            next_id: 1,
            dn: None,
            entry: None,
            groups: Vec::new(),
        };
        let send = match (&self.lookup, &self.service) {
            (Lookup::Search { .. }, Some((dn, pw))) => {
                conv.send(Stage::ServiceBind, |id| ber::bind_request(id, dn, pw))
            }
            (Lookup::Search { .. }, None) => self.find_user(&mut conv),
            (Lookup::Direct { template }, _) => {
                let dn = template.replace("{user}", &ber::escape_dn_value(username));
                let out = conv.send(Stage::UserBind, |id| ber::bind_request(id, &dn, password));
                conv.dn = Some(dn);
                out
            }
        };
        (self.round(send, 1), conv)
    }

    /// The next round, or the end of the conversation.
    pub fn resume(&self, mut conv: Conversation, reply: StreamReply) -> Progress {
        if let Stage::Closing(result) = conv.stage {
            return Progress::Done(
                result.map(|()| conv.claims(&self.login_attr, self.groups_attr.as_deref())),
            );
        }
        if conv.buffer.len().saturating_add(reply.data.len()) > MAX_CONVERSATION_BYTES {
            return Progress::Done(Err(DirectoryFailure::Oversized));
        }
        conv.buffer.extend_from_slice(&reply.data);
        loop {
            match ber::take_message(&conv.buffer) {
                Err(BerError::Malformed) => {
                    return Progress::Done(Err(DirectoryFailure::Malformed))
                }
                Err(BerError::Oversized) => {
                    return Progress::Done(Err(DirectoryFailure::Oversized))
                }
                Ok(Framed::Need(n)) => {
                    if reply.end != StreamEnd::Open {
                        // Closed or failed part-way: a truncated reply or a server gone.
                        return Progress::Done(Err(if conv.buffer.is_empty() {
                            DirectoryFailure::Unavailable
                        } else {
                            DirectoryFailure::Truncated
                        }));
                    }
                    return Progress::Next(self.round(Vec::new(), n), Box::new(conv));
                }
                Ok(Framed::Message {
                    id,
                    reply: msg,
                    used,
                }) => {
                    conv.buffer.drain(..used.min(conv.buffer.len()));
                    match self.handle(&mut conv, id, msg) {
                        Handled::More => continue,
                        Handled::Send(bytes) => {
                            if !conv.buffer.is_empty() {
                                return Progress::Done(Err(DirectoryFailure::Malformed));
                            }
                            return Progress::Next(self.round(bytes, 1), Box::new(conv));
                        }
                        Handled::Finish(result) => {
                            let unbind = ber::unbind_request(conv.next_id);
                            conv.stage = Stage::Closing(result);
                            let mut x = self.round(unbind, 0);
                            x.close = true;
                            return Progress::Next(x, Box::new(conv));
                        }
                    }
                }
            }
        }
    }

    fn round(&self, send: Vec<u8>, read_at_least: usize) -> Exchange {
        Exchange {
            endpoint: self.endpoint.clone(),
            send,
            read_at_least,
            read_limit: MAX_CONVERSATION_BYTES,
            close: false,
            timeout_ms: self.timeout_ms,
        }
    }

    fn find_user(&self, conv: &mut Conversation) -> Vec<u8> {
        let Lookup::Search { base, filter } = &self.lookup else {
            return Vec::new();
        };
        let text = fill(filter, &ber::escape_filter_value(&conv.username), "");
        let Ok(compiled) = ber::compile_filter(&text) else {
            // Escaped values cannot break a filter that compiled at load; refuse if one does.
            return Vec::new();
        };
        let attrs = self.attribute_refs();
        let limit = self.time_limit();
        // Size limit 2: one entry is the user, two means the filter is ambiguous.
        conv.send(Stage::FindUser, |id| {
            ber::search_request(id, base, Scope::Subtree, 2, limit, &compiled, &attrs)
        })
    }

    fn read_entry(&self, conv: &mut Conversation, dn: &str) -> Vec<u8> {
        let attrs = self.attribute_refs();
        let limit = self.time_limit();
        let all = ber::compile_filter("(objectClass=*)").unwrap_or_default();
        conv.send(Stage::ReadEntry, |id| {
            ber::search_request(id, dn, Scope::Base, 1, limit, &all, &attrs)
        })
    }

    fn find_groups(&self, conv: &mut Conversation, g: &GroupSearch) -> Option<Vec<u8>> {
        let dn = conv.dn.clone().unwrap_or_default();
        let text = fill(
            &g.filter,
            &ber::escape_filter_value(&conv.username),
            &ber::escape_filter_value(&dn),
        );
        let compiled = ber::compile_filter(&text).ok()?;
        let limit = self.time_limit();
        let name = g.name_attribute.as_str();
        Some(conv.send(Stage::FindGroups, |id| {
            ber::search_request(
                id,
                &g.base,
                Scope::Subtree,
                MAX_GROUPS,
                limit,
                &compiled,
                &[name],
            )
        }))
    }

    fn attribute_refs(&self) -> Vec<&str> {
        self.attributes.iter().map(String::as_str).collect()
    }

    fn time_limit(&self) -> u32 {
        u32::try_from(self.timeout_ms.div_ceil(1000)).unwrap_or(60)
    }

    /// After the user's own entry is known: the group search (binding as the service account
    /// first when there is one), or the end.
    fn after_user(&self, conv: &mut Conversation) -> Handled {
        let Some(g) = &self.groups else {
            return Handled::Finish(Ok(()));
        };
        if let Some((dn, pw)) = &self.service {
            return Handled::Send(
                conv.send(Stage::ServiceRebind, |id| ber::bind_request(id, dn, pw)),
            );
        }
        self.search_groups(conv, g)
    }

    /// Acts on one reply: checks it answers the request in flight, then hands it to the step
    /// of the conversation it belongs to. A reply the stage does not expect is malformed.
    fn handle(&self, conv: &mut Conversation, id: u32, msg: Reply) -> Handled {
        let expected = conv.next_id.saturating_sub(1);
        if id != expected {
            // Message 0 is an unsolicited notice (RFC 4511 §4.4): the server is closing.
            return Handled::Finish(Err(if id == 0 {
                DirectoryFailure::Unavailable
            } else {
                DirectoryFailure::Malformed
            }));
        }
        match (&conv.stage, msg) {
            (Stage::ServiceBind, Reply::Bind(r)) => self.service_bound(conv, r.code),
            (Stage::FindUser | Stage::ReadEntry | Stage::FindGroups, Reply::Reference) => {
                Handled::More
            }
            (Stage::FindUser | Stage::ReadEntry, Reply::Entry(e)) => {
                if conv.entry.is_some() {
                    return Handled::Finish(Err(DirectoryFailure::Ambiguous));
                }
                conv.entry = Some(e);
                Handled::More
            }
            (Stage::FindUser, Reply::Done(r)) => user_found(conv, r.code),
            (Stage::UserBind, Reply::Bind(r)) => self.user_bound(conv, r.code),
            (Stage::ReadEntry, Reply::Done(r)) => match (r.code, conv.entry.is_some()) {
                (0, true) => self.after_user(conv),
                (0 | 32, false) => Handled::Finish(Err(DirectoryFailure::NoSuchUser)),
                (code, _) => Handled::Finish(Err(DirectoryFailure::Refused(code))),
            },
            (Stage::ServiceRebind, Reply::Bind(r)) => {
                if r.code != 0 {
                    return Handled::Finish(Err(DirectoryFailure::Refused(r.code)));
                }
                let Some(g) = &self.groups else {
                    return Handled::Finish(Ok(()));
                };
                self.search_groups(conv, g)
            }
            (Stage::FindGroups, Reply::Entry(e)) => {
                self.group_found(conv, &e);
                Handled::More
            }
            (Stage::FindGroups, Reply::Done(r)) => match r.code {
                0 => Handled::Finish(Ok(())),
                4 => {
                    log::warn!("sso-filter: ldap group search hit its size limit; groups cut");
                    Handled::Finish(Ok(()))
                }
                code => Handled::Finish(Err(DirectoryFailure::Refused(code))),
            },
            _ => Handled::Finish(Err(DirectoryFailure::Malformed)),
        }
    }

    /// The service account's bind answered (search mode): search for the user, or stop when
    /// the directory refused the service account (an operator's mistake, logged as such).
    fn service_bound(&self, conv: &mut Conversation, code: u32) -> Handled {
        if code != 0 {
            log::error!(
                "sso-filter: ldap service bind refused code={code} (check bind_dn and bind_password)"
            );
            return Handled::Finish(Err(DirectoryFailure::Refused(code)));
        }
        let bytes = self.find_user(conv);
        if bytes.is_empty() {
            return Handled::Finish(Err(DirectoryFailure::Malformed));
        }
        Handled::Send(bytes)
    }

    /// The user's own bind answered: with success, read the entry (direct mode) or go on to
    /// the groups; otherwise the failure, told apart for the log.
    fn user_bound(&self, conv: &mut Conversation, code: u32) -> Handled {
        match code {
            0 if conv.entry.is_none() => {
                let dn = conv.dn.clone().unwrap_or_default();
                Handled::Send(self.read_entry(conv, &dn))
            }
            0 => self.after_user(conv),
            // invalidCredentials covers a wrong password and, in a direct bind, an unknown
            // DN; noSuchObject is what some servers say for the latter.
            49 => Handled::Finish(Err(DirectoryFailure::InvalidCredentials)),
            32 => Handled::Finish(Err(DirectoryFailure::NoSuchUser)),
            code => Handled::Finish(Err(DirectoryFailure::Refused(code))),
        }
    }

    /// The group search request, or the end when its filter does not compile: the one step
    /// both [`Ldap::after_user`] and the service rebind lead to.
    fn search_groups(&self, conv: &mut Conversation, g: &GroupSearch) -> Handled {
        match self.find_groups(conv, g) {
            Some(bytes) => Handled::Send(bytes),
            None => Handled::Finish(Err(DirectoryFailure::Malformed)),
        }
    }

    /// Keeps the name of one group entry: its `name_attribute`, else its first RDN's value;
    /// at most [`MAX_GROUPS`] of them.
    fn group_found(&self, conv: &mut Conversation, e: &Entry) {
        let name = self
            .groups
            .as_ref()
            .map_or("cn", |g| g.name_attribute.as_str());
        let value = e
            .attributes
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.first().cloned())
            .or_else(|| first_rdn_value(&e.dn));
        if let Some(v) = value {
            if conv.groups.len() < MAX_GROUPS as usize {
                conv.groups.push(v);
            }
        }
    }
}

/// The user search is done (search mode): bind as the one entry found with the typed password;
/// no entry is an unknown user and more than one an ambiguous filter.
fn user_found(conv: &mut Conversation, code: u32) -> Handled {
    match (code, conv.entry.as_ref()) {
        (0, Some(e)) => {
            let dn = e.dn.clone();
            let pw = conv.password.clone();
            let bytes = conv.send(Stage::UserBind, |id| ber::bind_request(id, &dn, &pw));
            conv.dn = Some(dn);
            Handled::Send(bytes)
        }
        (0, None) => Handled::Finish(Err(DirectoryFailure::NoSuchUser)),
        // sizeLimitExceeded: more than one entry matched.
        (4, _) => Handled::Finish(Err(DirectoryFailure::Ambiguous)),
        (code, _) => Handled::Finish(Err(DirectoryFailure::Refused(code))),
    }
}

/// What comes after a round.
#[derive(Debug)]
pub enum Progress {
    /// Another round: carry out this exchange, resume with this conversation.
    Next(Exchange, Box<Conversation>),
    /// The conversation is over: the user's claims, or why not.
    Done(Result<Map<String, Value>, DirectoryFailure>),
}

/// Why an LDAP login failed. The login page shows one message for all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirectoryFailure {
    /// Several entries matched the user filter.
    Ambiguous,
    /// The user's bind was refused (wrong password; unknown DN in a direct bind).
    InvalidCredentials,
    /// The directory sent bytes that are not the LDAP it should.
    Malformed,
    /// No entry matched.
    NoSuchUser,
    /// A reply larger than the caps.
    Oversized,
    /// The directory refused an operation with this result code.
    Refused(u32),
    /// The reply stopped part-way.
    Truncated,
    /// The directory could not be reached, closed the connection, or did not answer in time.
    Unavailable,
}

impl DirectoryFailure {
    /// The failure's name for logs and counters.
    pub fn reason(self) -> &'static str {
        match self {
            DirectoryFailure::Ambiguous => "ldap_ambiguous_user",
            DirectoryFailure::InvalidCredentials => "bad_credentials",
            DirectoryFailure::Malformed => "ldap_malformed",
            DirectoryFailure::NoSuchUser => "bad_credentials",
            DirectoryFailure::Oversized => "ldap_oversized",
            DirectoryFailure::Refused(_) => "ldap_refused",
            DirectoryFailure::Truncated => "ldap_truncated",
            DirectoryFailure::Unavailable => "ldap_unavailable",
        }
    }

    /// Whether the failure counts towards the user's throttle (a guess that was wrong, not a
    /// directory that failed).
    pub fn counts(self) -> bool {
        matches!(
            self,
            DirectoryFailure::InvalidCredentials | DirectoryFailure::NoSuchUser
        )
    }
}

/// A login's conversation with the directory, between rounds.
pub struct Conversation {
    username: String,
    password: String,
    stage: Stage,
    buffer: Vec<u8>,
    next_id: u32,
    dn: Option<String>,
    entry: Option<Entry>,
    groups: Vec<String>,
}

impl std::fmt::Debug for Conversation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        write!(f, "Conversation({:?})", self.stage)
    }
}

impl Conversation {
    /// The user name as typed.
    pub fn username(&self) -> &str {
        &self.username
    }

    fn send(&mut self, stage: Stage, build: impl FnOnce(u32) -> Vec<u8>) -> Vec<u8> {
        let id = self.next_id;
        self.next_id = self.next_id.saturating_add(1);
        self.stage = stage;
        build(id)
    }

    fn claims(self, login_attr: &str, groups_attr: Option<&str>) -> Map<String, Value> {
        let mut claims = Map::new();
        let entry = self.entry.unwrap_or_default();
        let dn = self.dn.unwrap_or(entry.dn);
        let mut groups = self.groups;
        for (name, values) in entry.attributes {
            if groups_attr.is_some_and(|g| g.eq_ignore_ascii_case(&name)) {
                groups.extend(values.iter().filter_map(|v| first_rdn_value(v)));
            }
            let value = match values.len() {
                0 => continue,
                1 => Value::String(values.into_iter().next().unwrap_or_default()),
                _ => Value::Array(values.into_iter().map(Value::String).collect()),
            };
            // The configured spelling, so mapping paths match whatever case the server used.
            let key = if name.eq_ignore_ascii_case(login_attr) {
                login_attr.to_owned()
            } else {
                name
            };
            claims.insert(key, value);
        }
        claims.insert("dn".into(), Value::String(dn));
        claims.insert(
            "groups".into(),
            Value::Array(groups.into_iter().map(Value::String).collect()),
        );
        claims
    }
}

#[derive(Debug)]
enum Stage {
    ServiceBind,
    FindUser,
    UserBind,
    ReadEntry,
    ServiceRebind,
    FindGroups,
    Closing(Result<(), DirectoryFailure>),
}

enum Handled {
    More,
    Send(Vec<u8>),
    Finish(Result<(), DirectoryFailure>),
}

/// `{user}` and `{dn}` filled with already escaped values.
fn fill(template: &str, user: &str, dn: &str) -> String {
    template.replace("{user}", user).replace("{dn}", dn)
}

/// The value of a DN's first RDN: `cn=admins,ou=groups,dc=example` → `admins`.
fn first_rdn_value(dn: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = dn.chars();
    // Skip the attribute type.
    for c in chars.by_ref() {
        if c == '=' {
            break;
        }
    }
    let mut escaped = false;
    for c in chars {
        match (escaped, c) {
            (false, '\\') => escaped = true,
            (false, ',' | '+') => break,
            (_, c) => {
                escaped = false;
                out.push(c);
            }
        }
    }
    let out = out.trim().to_owned();
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests;
