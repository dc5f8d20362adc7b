//! What the engine waits for between two inputs. Hosts keep a [`Pending`] against the request
//! (or the callout token) and hand it back with the next input; a response that does not fit
//! the state is an error by construction.

use crate::http::RequestHead;

/// A named wait state.
#[derive(Debug)]
pub enum Pending {
    /// The built-in login form was posted; waiting for its body.
    ExpectLoginForm(ExpectLoginForm),
    /// An OAuth2 / OIDC login waits for an IdP answer.
    Redirect(Box<crate::engine::redirect_flow::RedirectWait>),
    /// An app-token provider login (WeCom, DingTalk, ...) waits for an answer.
    Cn(Box<crate::engine::cn_flow::CnWait>),
    /// An in-app page posted a code; waiting for the body.
    ExpectCode(crate::engine::cn_flow::ExpectCode),
    /// An LDAP login waits for the directory's next reply.
    Directory(Box<ExpectDirectory>),
}

/// What an LDAP login carries between rounds with the directory.
#[derive(Debug)]
pub struct ExpectDirectory {
    /// The request head of the form post.
    pub head: RequestHead,
    /// The login flow the form was rendered for.
    pub flow: crate::session::Flow,
    /// The `Set-Cookie` that deletes the flow cookie.
    pub delete_flow: String,
    /// The method's name.
    pub method: String,
    /// The user's failures counted before this attempt (to clear after a success).
    pub failures: u32,
    /// The conversation so far.
    pub conversation: crate::methods::ldap::Conversation,
}

/// What the login-form post needs once its body arrives.
#[derive(Debug)]
pub struct ExpectLoginForm {
    /// The request head (cookies, accept headers) of the post.
    pub head: RequestHead,
}
