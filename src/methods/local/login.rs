//! Built-in users behind [`LoginMethod`]: the login form's post checked against the
//! configured password hashes, with the per-user lockout and the password budget.

use super::{Gate, Local};
use crate::deny::Deny;
use crate::http::Outcome;
use crate::login::{Env, Here, LoginMethod, Request};
use crate::methods::form;
use crate::pages::login::{Notice, Offer, Way};
use crate::session::Flow;

impl LoginMethod for Local {
    fn type_name(&self) -> &'static str {
        "local"
    }

    fn uses_form(&self) -> bool {
        true
    }

    fn offer(&self) -> Option<Offer> {
        Some(Offer::of(Way::Form))
    }

    fn form_login(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        flow: Flow,
        delete_flow: Option<String>,
        username: String,
        password: String,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        let kit = here.kit;
        let stores = kit.stores(env.cache, env.rng, &env.fleet, Some(req.head))?;
        let client = kit.client(req.head);
        let gate = Gate {
            stores: &stores,
            client,
        };
        let now_ms = env.now_ms;
        let mut spend = || kit.spend_password(client, now_ms);
        let result = self.authenticate(
            here.name(),
            &username,
            &password,
            env.now,
            &gate,
            &mut spend,
        );
        match result {
            Ok(id) => form::succeeded(here, req, &flow, delete_flow, id, env),
            Err(failure) => form::failed(
                here,
                req,
                &flow,
                delete_flow,
                failure,
                Notice::BadCredentials,
                env,
            ),
        }
    }
}
