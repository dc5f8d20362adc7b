//! The timer input: hosts call [`Filter::on_timer`] on their own clock (Envoy's root-context
//! tick, about every second per worker; the edge worker's interval or scheduled handler), and
//! send the callouts it returns outside any request, handing each answer to
//! [`Filter::on_timer_response`]. Methods do their background work here (the organisation
//! sync of DingTalk, WeCom and Feishu); a tick with nothing due costs an atomic read per
//! method that has such work.

use super::{Env, Filter};
use crate::http::{Background, CalloutResponse};
use crate::wait::TimerWait;

impl Filter {
    /// The host's timer fired: every method's background work that is due.
    pub fn on_timer(&self, env: &mut Env<'_>) -> Background {
        let mut out = Background::default();
        let scopes = std::iter::once(&self.config.global).chain(self.config.tenants.values());
        for scope in scopes {
            for method in scope.methods.values() {
                let (here, imp) = self.login_in(scope, method);
                out.extend(imp.on_timer(&here, env));
            }
        }
        self.name_background(out)
    }

    /// The answer to a callout a timer input (or an earlier answer) asked for.
    pub fn on_timer_response(
        &self,
        wait: TimerWait,
        response: CalloutResponse,
        env: &mut Env<'_>,
    ) -> Background {
        let out = match wait.into_inner().into_parts() {
            (Some(method), state) => match self.here(&method) {
                Some((here, imp)) => imp.resume_timer(&here, state, response, env),
                None => {
                    log::error!(
                        "sso-filter: no method {:?} to resume a timer wait",
                        crate::deny::sanitize(&method.name)
                    );
                    Background::default()
                }
            },
            (None, _) => Background::default(),
        };
        self.name_background(out)
    }

    /// Names the callouts' clusters and the counters' methods, as for a request's outcome.
    fn name_background(&self, mut out: Background) -> Background {
        for (callout, _) in &mut out.callouts {
            self.name_cluster(callout);
        }
        self.known_methods(&mut out.counters);
        out
    }
}
