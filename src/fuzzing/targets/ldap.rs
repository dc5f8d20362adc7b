//! LDAP: BER from the directory (`ldap_ber`). Properties: framing never claims more bytes than
//! it was given and is stable alone and with trailing bytes; a conversation fed the input ends
//! in claims only for the user who logged in.

use serde_json::json;

use super::split_answers;
use crate::fuzzing::reached;

/// LDAP BER from the directory. Properties: a message never claims more bytes than it was
/// given; the same bytes parse the same with anything after them (framing is stable), and alone;
/// a conversation fed these bytes ends in claims only for the user who logged in.
pub fn ldap_ber(data: &[u8]) {
    use crate::methods::ldap::ber::{take_message, Framed};
    let mut rest = data;
    let mut guard = 0;
    while let Ok(Framed::Message { used, reply, id }) = take_message(rest) {
        reached("ldap_ber.message");
        assert!(used > 0 && used <= rest.len());
        let alone = take_message(&rest[..used]);
        assert_eq!(
            alone,
            Ok(Framed::Message {
                id,
                reply: reply.clone(),
                used
            })
        );
        let mut longer = rest[..used].to_vec();
        longer.extend_from_slice(b"\x30\x00trailing");
        assert_eq!(
            take_message(&longer),
            Ok(Framed::Message { id, reply, used })
        );
        rest = &rest[used..];
        guard += 1;
        if guard > 1000 {
            break;
        }
    }
    if let Ok(Framed::Need(n)) = take_message(rest) {
        assert!(n > 0);
    }
    // A whole conversation fed from the input.
    let raw: crate::methods::ldap::RawLdap = serde_json::from_value(json!({
        "host": "dir.test", "port": 3389,
        "bind_dn": "cn=svc,dc=example,dc=org", "bind_password": "svc-pw",
        "search_base": "ou=people,dc=example,dc=org",
        "user_filter": "(&(objectClass=inetOrgPerson)(uid={user}))"
    }))
    .expect("ldap raw");
    let ldap = crate::methods::ldap::Ldap::from_raw(raw, "methods.ldap").expect("ldap");
    let (_, conv) = ldap.start("alice", "pw");
    let mut conv = Box::new(conv);
    for chunk in split_answers(data).into_iter().take(8) {
        let reply = crate::http::StreamReply {
            data: chunk.to_vec(),
            end: crate::http::StreamEnd::Open,
        };
        match ldap.resume(*conv, reply) {
            crate::methods::ldap::Progress::Next(_, c) => {
                reached("ldap_ber.next_round");
                conv = c;
            }
            crate::methods::ldap::Progress::Done(Ok(claims)) => {
                assert!(!claims.is_empty());
                return;
            }
            crate::methods::ldap::Progress::Done(Err(_)) => return,
        }
    }
}
