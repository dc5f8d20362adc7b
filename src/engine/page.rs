//! The sign-in pages as the engine serves them (`pages::login` writes them): the login form
//! of a form method, offering the other methods of the request's scope as buttons, and the
//! chooser. Both in the language `Accept-Language` prefers, with `Vary: Accept-Language`, and
//! under a CSP that allows their style and the configured logo and nothing else.

use super::Filter;
use crate::config::{Method, Scope};
use crate::http::{RequestHead, Response};
use crate::pages::lang::Lang;
use crate::pages::login::{self, Button, Form, Notice, Offer};

/// The login form of one method, for [`Filter::form_page`].
pub(super) struct FormPage<'a> {
    /// The form method's name.
    pub method: &'a str,
    /// The tenant code of the flow's scope.
    pub tenant: Option<&'a str>,
    /// The flow's return URL (already `safe_return`ed).
    pub rd: &'a str,
    /// The flow's state.
    pub state: &'a str,
    /// 200, or 401/429 after a failed attempt.
    pub status: u16,
    /// The message after a failed attempt.
    pub notice: Option<Notice>,
}

impl Filter {
    /// `{prefix}/login?{method_param}=NAME&rd=RD`, then the tenant parameters and the
    /// method's own (`offer.params`): where a method's button (or chooser link) starts it.
    /// `rd` went through `safe_return` and is checked again there.
    pub(super) fn method_link(
        &self,
        name: &str,
        rd: &str,
        tenant: &[(String, String)],
        own: &[(String, String)],
    ) -> String {
        let c = &self.config;
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair(&c.method_param, name).append_pair("rd", rd);
        for (k, v) in tenant.iter().chain(own) {
            q.append_pair(k, v);
        }
        format!("{}/login?{}", c.prefix, q.finish())
    }

    /// The chooser (`{prefix}/login` with several methods and no default): every method of
    /// the scope, with the request's tenant parameters.
    pub(super) fn chooser_page(
        &self,
        head: &RequestHead,
        scope: &Scope,
        rd: &str,
        tenant: &[(String, String)],
    ) -> Response {
        let lang = lang_of(head);
        let buttons: Vec<Button> = scope
            .methods
            .values()
            .map(|m| self.button(m, m.imp.offer(), lang, rd, tenant))
            .collect();
        let html = login::sign_in(lang, &self.config.brand, None, &buttons);
        self.sign_in_response(200, lang, html)
    }

    /// The login form of `page.method`, then a button for each other method of its scope the
    /// login page offers (`LoginMethod::offer`; switched-off methods are not in the scope).
    pub(super) fn form_page(&self, head: &RequestHead, page: &FormPage<'_>) -> Response {
        let lang = lang_of(head);
        // The flow's scope, named by the first tenant parameter (the flow keeps its code).
        let tenant: Vec<(String, String)> = page
            .tenant
            .zip(self.config.tenant_params.first())
            .map(|(code, p)| (p.clone(), code.to_owned()))
            .into_iter()
            .collect();
        let buttons: Vec<Button> = self
            .scope_of(page.tenant)
            .into_iter()
            .flat_map(|scope| scope.methods.values())
            .filter(|m| m.name != page.method)
            .filter_map(|m| {
                let offer = m.imp.offer()?;
                Some(self.button(m, Some(offer), lang, page.rd, &tenant))
            })
            .collect();
        let form = Form {
            action: &self.config.login_page,
            state: page.state,
            notice: page.notice,
        };
        let html = login::sign_in(lang, &self.config.brand, Some(&form), &buttons);
        self.sign_in_response(page.status, lang, html)
    }

    fn button(
        &self,
        m: &Method,
        offer: Option<Offer>,
        lang: Lang,
        rd: &str,
        tenant: &[(String, String)],
    ) -> Button {
        let name = m
            .label
            .as_ref()
            .or_else(|| offer.as_ref().and_then(|o| o.name.as_ref()));
        let own = offer.as_ref().map_or(&[][..], |o| &o.params);
        Button {
            way: offer.as_ref().map(|o| o.way),
            label: name.map_or_else(|| m.name.clone(), |t| t.get(lang).to_owned()),
            href: self.method_link(&m.name, rd, tenant, own),
        }
    }

    /// A sign-in page's response: its language, `Vary: Accept-Language`, its CSP, no
    /// Referer (the URL carries the return URL and the flow's page).
    fn sign_in_response(&self, status: u16, lang: Lang, html: String) -> Response {
        Response::new(status)
            .html(html)
            .header("content-language", lang.tag())
            .header("vary", "Accept-Language")
            .header("content-security-policy", login::csp(&self.config.brand))
            .header("referrer-policy", "no-referrer")
    }
}

/// The page language a request's `Accept-Language` prefers.
fn lang_of(head: &RequestHead) -> Lang {
    Lang::negotiate(head.header_values("accept-language"))
}
