//! `type: local`: built-in users with salted PBKDF2 hashes, the form at `login_page`, and
//! failed-attempt throttling per user shared by every worker through the shared cache.

mod login;

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::ConfigError;
use crate::identity::Identity;
use crate::methods::form::{LoginFailure, MAX_CREDENTIAL_BYTES};
use crate::methods::throttle::{self, Throttle};
use crate::password::PasswordHash;
use crate::store::Stores;

/// The method as written in configuration.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLocal {
    users: Vec<RawUser>,
    #[serde(default = "default_max_failures")]
    max_failures: u32,
    #[serde(default = "default_lockout")]
    lockout_seconds: u64,
}

fn default_max_failures() -> u32 {
    5
}

fn default_lockout() -> u64 {
    300
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    login: String,
    password_hash: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    org: Option<String>,
}

struct User {
    hash: PasswordHash,
    profile: Identity,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "User({})", self.profile.login)
    }
}

/// Configured built-in users.
#[derive(Debug)]
pub struct Local {
    users: BTreeMap<String, User>,
    max_failures: u32,
    lockout: u64,
    dummy: PasswordHash,
}

impl Local {
    /// Parses the method's configuration; `at` is its JSON path.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the user and field.
    pub fn from_raw(raw: RawLocal, at: &str) -> Result<Self, ConfigError> {
        let mut users = BTreeMap::new();
        let mut max_iterations = 0;
        for (i, u) in raw.users.into_iter().enumerate() {
            let here = format!("{at}.users[{i}]");
            if u.login.is_empty()
                || u.login.len() > MAX_CREDENTIAL_BYTES
                || u.login.chars().any(char::is_control)
            {
                return Err(ConfigError {
                    path: format!("{here}.login"),
                    reason: "must be 1-256 printable characters".into(),
                });
            }
            let hash = PasswordHash::parse(&u.password_hash).map_err(|reason| ConfigError {
                path: format!("{here}.password_hash"),
                reason,
            })?;
            max_iterations = max_iterations.max(hash.iterations());
            let profile = Identity {
                login: u.login.clone(),
                name: u.name,
                email: u.email,
                phone: u.phone,
                roles: u.roles,
                groups: u.groups,
                org: u.org,
                ..Identity::default()
            };
            if users
                .insert(u.login.clone(), User { hash, profile })
                .is_some()
            {
                return Err(ConfigError {
                    path: format!("{here}.login"),
                    reason: format!("{:?} is listed twice", u.login),
                });
            }
        }
        if users.is_empty() {
            return Err(ConfigError {
                path: format!("{at}.users"),
                reason: "at least one user is required".into(),
            });
        }
        if raw.max_failures == 0 {
            return Err(ConfigError {
                path: format!("{at}.max_failures"),
                reason: "must be at least 1".into(),
            });
        }
        if raw.lockout_seconds == 0 || raw.lockout_seconds > 86_400 {
            return Err(ConfigError {
                path: format!("{at}.lockout_seconds"),
                reason: "must be between 1 and 86400".into(),
            });
        }
        Ok(Local {
            users,
            max_failures: raw.max_failures,
            lockout: raw.lockout_seconds,
            dummy: PasswordHash::dummy(max_iterations),
        })
    }

    /// Checks a user name and password, with throttling: after `max_failures` failures within
    /// `lockout_seconds`, every attempt for that user is refused until the window passes, even
    /// with the right password.
    ///
    /// # Errors
    ///
    /// [`LoginFailure`].
    pub fn authenticate(
        &self,
        method: &str,
        login: &str,
        password: &str,
        now: u64,
        gate: &Gate<'_, '_>,
        spend: &mut dyn FnMut() -> bool,
    ) -> Result<Identity, LoginFailure> {
        if login.is_empty()
            || password.is_empty()
            || login.len() > MAX_CREDENTIAL_BYTES
            || password.len() > MAX_CREDENTIAL_BYTES
        {
            return Err(LoginFailure::Invalid);
        }
        let throttle = Throttle {
            max_failures: self.max_failures,
            lockout: self.lockout,
        };
        let key = throttle::key(method, login, gate.client);
        let failures = throttle.check(gate.stores, &key, now)?;
        if !spend() {
            return Err(LoginFailure::Busy);
        }
        // Unknown users cost the same as known ones (no user enumeration by timing).
        let user = self.users.get(login);
        let ok = match user {
            Some(u) => u.hash.verify(password),
            None => {
                self.dummy.verify(password);
                false
            }
        };
        match (ok, user) {
            (true, Some(u)) => {
                throttle.clear(gate.stores, method, &key, failures, now);
                let mut id = u.profile.clone();
                id.method = method.to_owned();
                Ok(id)
            }
            _ => {
                throttle.fail(gate.stores, method, &key, now)?;
                Err(LoginFailure::Invalid)
            }
        }
    }
}

/// What a password check is counted against: the stores and the client's address.
pub struct Gate<'s, 'c> {
    /// The bounded stores (throttle counters).
    pub stores: &'s Stores<'c>,
    /// The client's address, when known.
    pub client: Option<std::net::IpAddr>,
}
