//! What the engine waits for between two inputs, typed by the input that ends the wait.
//!
//! A [`BodyWait`] can only be resumed by [`crate::Filter::on_body`], a [`CalloutWait`] only by
//! [`crate::Filter::on_callout_response`], a [`StreamWait`] only by
//! [`crate::Filter::on_stream_reply`]: a host cannot hand a callout answer to a request that
//! waits for its body, because the types do not let it. Hosts keep the wait against the
//! request (or the callout token) and give it back with the input.
//!
//! Inside, a wait names the method that made it and carries that method's own state, which
//! only that method reads back (see [`crate::login::LoginMethod`]'s `resume_*`).

use std::any::Any;
use std::fmt;

/// A configured method, as a wait or a login flow names it: its scope (the tenant code, `None`
/// for the global scope) and its name there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MethodRef {
    /// The tenant code of the scope, `None` for the global one.
    pub tenant: Option<String>,
    /// The method's name in that scope.
    pub name: String,
}

/// A method's own wait state: anything it can send between threads and print for a log.
pub trait WaitState: Any + Send + fmt::Debug {}
impl<T: Any + Send + fmt::Debug> WaitState for T {}

/// The method that waits (`None`: the engine itself, for the login form's post, whose method
/// is only known from the flow inside the body) and its state.
#[derive(Debug)]
pub struct Wait {
    method: Option<MethodRef>,
    state: Box<dyn WaitState>,
}

impl Wait {
    fn new(method: Option<MethodRef>, state: impl WaitState) -> Self {
        Wait {
            method,
            state: Box::new(state),
        }
    }

    /// The method to resume (`None`: the engine's own wait).
    pub fn method(&self) -> Option<&MethodRef> {
        self.method.as_ref()
    }

    /// The method and its state, for the method to read back.
    pub fn into_parts(self) -> (Option<MethodRef>, Box<dyn Any + Send>) {
        (self.method, self.state)
    }
}

macro_rules! typed_wait {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name(Wait);

        impl $name {
            /// A wait of `method` carrying its own `state`.
            pub fn new(method: MethodRef, state: impl WaitState) -> Self {
                $name(Wait::new(Some(method), state))
            }

            /// A wait of the engine itself.
            pub fn engine(state: impl WaitState) -> Self {
                $name(Wait::new(None, state))
            }

            /// The method and its state.
            pub fn into_inner(self) -> Wait {
                self.0
            }
        }
    };
}

typed_wait!(
    /// Waits for the request body.
    BodyWait
);
typed_wait!(
    /// Waits for a callout's answer.
    CalloutWait
);
typed_wait!(
    /// Waits for a byte-stream round's reply.
    StreamWait
);
typed_wait!(
    /// Waits for the answer to a callout a timer input made (no request behind it: an
    /// organisation sync), resumed by [`crate::Filter::on_timer_response`].
    TimerWait
);

/// Reads a method's wait state back as the type the method stored.
///
/// `None` when the state is of another type: a wait resumed by a method that did not make it,
/// which the method refuses (fail closed).
pub fn state_as<T: Any>(state: Box<dyn Any + Send>) -> Option<T> {
    state.downcast::<T>().ok().map(|b| *b)
}
