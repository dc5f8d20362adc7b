//! What the engine waits for between two inputs. Hosts keep a [`Pending`] against the request
//! (or the callout token) and hand it back with the next input; a response that does not fit
//! the state is an error by construction.

use crate::http::RequestHead;

/// A named wait state.
#[derive(Debug)]
pub enum Pending {
    /// The built-in login form was posted; waiting for its body.
    ExpectLoginForm(ExpectLoginForm),
}

/// What the login-form post needs once its body arrives.
#[derive(Debug)]
pub struct ExpectLoginForm {
    /// The request head (cookies, accept headers) of the post.
    pub head: RequestHead,
}
