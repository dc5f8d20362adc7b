//! The engine's side of the fleet store (`store/fleet.rs`): every step the engine hands a host
//! passes here, and, when the input's store operations left intents, is held back until etcd
//! has agreed with them. The refusals it can put in the step's place are mapped to responses
//! by the one refusal map (`deny.rs`), for the request the intents belong to.

use super::{Env, Filter};
use crate::counter::Counter;
use crate::deny::Deny;
use crate::http::{CalloutResponse, Outcome, RequestHead, Step};
use crate::store::fleet::{self, Conversation, Next};
use crate::store::Stores;
use crate::wait::CalloutWait;

impl Filter {
    /// Flushes what the input left for the fleet store, holding `outcome` back meanwhile.
    pub(super) fn flush_fleet(&self, outcome: Outcome, env: &mut Env<'_>) -> Outcome {
        let (intents, head) = env.fleet.take();
        let Some(store) = self.config.store.etcd() else {
            return outcome;
        };
        if intents.is_empty() {
            return outcome;
        }
        let writes = intents.iter().filter(|i| i.writes()).count();
        if writes > 0 && !self.fleet_budget.take(store, writes, env.now_ms) {
            log::warn!("sso-filter: fleet store write budget spent: request refused");
            return self
                .fleet_refusal(Deny::Unavailable("fleet_store_busy"), head)
                .count(Counter::Fleet("busy"));
        }
        let next = fleet::begin(store, intents, outcome, head, env.cache, env.rng, env.now);
        self.fleet_step(next, env)
    }

    /// Carries on with etcd's answer.
    pub(super) fn resume_fleet(
        &self,
        conversation: Conversation,
        answer: CalloutResponse,
        env: &mut Env<'_>,
    ) -> Outcome {
        let Some(store) = self.config.store.etcd() else {
            // A filter's configuration never changes under a wait.
            return self.fleet_refusal(Deny::Unavailable("fleet_store"), None);
        };
        let next = fleet::resume(store, conversation, answer, env.cache, env.now);
        self.fleet_step(next, env)
    }

    fn fleet_step(&self, next: Next, env: &mut Env<'_>) -> Outcome {
        match next {
            Next::Call(callout, conversation) => self.name_clusters(Outcome::new(Step::Callout(
                callout,
                CalloutWait::engine(conversation),
            ))),
            Next::Release(outcome) => outcome,
            Next::Refuse(deny, head) => {
                let event = if matches!(deny, Deny::Throttled { .. }) {
                    "throttled"
                } else {
                    "replay"
                };
                self.fleet_refusal(deny, head).count(Counter::Fleet(event))
            }
            Next::LoggedOut { item, head, .. } => {
                log::info!("sso-filter: fleet store: session logged out on another replica");
                // Remembered here too, so this replica answers the next request on its own;
                // then the request is handled again, now without a session.
                let keep_until = env
                    .now
                    .saturating_add(self.config.cookies.ttl)
                    .saturating_add(60);
                let recorded = Stores::open(env.cache, env.rng, &self.config.limits)
                    .and_then(|st| st.log_out(&item, env.now, keep_until, env.now));
                if recorded.is_err() {
                    // The session path reads an unusable store as logged out (fail closed).
                    log::warn!("sso-filter: could not record a fleet logout locally");
                }
                let again = self.request(&head, env);
                self.finish(again, env).count(Counter::Fleet("logged_out"))
            }
            Next::Unavailable(why, head) => {
                log::error!(
                    "sso-filter: fleet store unavailable: {}",
                    crate::deny::sanitize(&why)
                );
                self.fleet_refusal(Deny::Unavailable("fleet_store"), head)
                    .count(Counter::Fleet("unavailable"))
            }
            Next::ServedWithoutStore(why, outcome) => {
                log::warn!(
                    "sso-filter: fleet store unavailable, session served on this replica's \
                     logout list only (on_store_error: insecure_serve_sessions): {}",
                    crate::deny::sanitize(&why)
                );
                outcome.count(Counter::Fleet("served_without_store"))
            }
        }
    }

    /// A refusal in place of a held step, answered for the request the intents belong to.
    fn fleet_refusal(&self, deny: Deny, head: Option<RequestHead>) -> Outcome {
        let head = head.unwrap_or_default();
        let ctx = self.ctx_for(&head);
        let outcome = self.deny(&ctx, deny, Vec::new());
        self.name_clusters(outcome)
    }
}
