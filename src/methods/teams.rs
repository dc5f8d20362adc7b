//! `type: teams`: Microsoft Teams tab single sign-on (`reference/providers.md` §6.3).
//!
//! `?activeAuth=teams` inside a Teams tab: the filter serves a page that calls TeamsJS
//! `microsoftTeams.authentication.getAuthToken()` and posts the token. The token is an Entra ID
//! access token for this app, verified here against the tenant's JWKS (fetched by callout,
//! cached process-wide, refetched once for an unknown `kid`): RS256, `exp`/`nbf`, both issuer
//! forms (v1 `https://sts.windows.net/{tid}/`, v2 `https://login.microsoftonline.com/{tid}/v2.0`),
//! both audience forms (`api://{domain}/{appId}` and the bare `{appId}`), the tenant, the
//! `access_as_user` scope and the calling Teams client (`appid`/`azp`).
//!
//! The tab lives in an iframe on a Teams origin, so the page allows those frame ancestors and
//! its flow cookie is cross-site (`SameSite=None`; with `session.partitioned`, `Partitioned`).

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::cache::SharedCache;
use crate::deny::Deny;
use crate::error::ConfigError;
use crate::http::{Callout, CalloutResponse, Query};
use crate::idp::{json_body, IdpFailure, MAX_DOC_BODY};
use crate::jose::claims::numeric_date;
use crate::jose::jws::Verifier;
use crate::jose::keys::{JwsAlg, VerifyKey};
use crate::jose::{b64_segment, strict_object, JoseError, MAX_TOKEN_BYTES};
use crate::mapping::RawMapping;
use crate::methods::cn::{
    self, Answer, ApiBase, Begin, Entry, Fetched, JsPage, Provider, Secret, Settled, TokenKind,
};
use crate::methods::oauth2::{DOC_TTL, JWKS_REFETCH_INTERVAL};

/// The only variant: the tab page.
pub const TAB: &str = "tab";

/// Clock skew allowed on `exp` and `nbf`, seconds.
const LEEWAY: u64 = 300;

/// Teams and Microsoft 365 clients pre-authorised for `access_as_user` (providers.md §6.3).
const TEAMS_CLIENTS: [&str; 7] = [
    "1fec8e78-bce4-4aaf-ab1b-5451cc387264",
    "5e3ce6c0-2b1f-4285-8d4b-75ee78787346",
    "4765445b-32c6-49b0-83e6-1d93765276ca",
    "0ec893e0-5785-4de6-99da-4ed124e5296c",
    "d3590ed6-52b3-4102-aeff-aad2292ab01c",
    "bc59ab01-8403-45c6-8796-ac3ef710b3e3",
    "27922004-5251-4030-b22d-91ecd9a37ea4",
];

/// The method as written in configuration.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTeams {
    client_id: String,
    #[serde(default)]
    client_secret: Option<Secret>,
    tenant_id: String,
    #[serde(default)]
    app_id_uri: Option<String>,
    #[serde(default = "default_scope")]
    required_scope: String,
    #[serde(default)]
    allowed_client_apps: Option<Vec<String>>,
    #[serde(default = "default_authority")]
    authority: String,
    #[serde(default)]
    jwks_url: Option<String>,
    #[serde(default = "default_teams_js")]
    teams_js_url: String,
    #[serde(default = "default_frame_ancestors")]
    frame_ancestors: Vec<String>,
    #[serde(default)]
    organization: Option<String>,
    #[serde(default = "cn::default_timeout")]
    timeout_ms: u64,
}

cn::text_defaults! {
    default_scope = "access_as_user";
    default_authority = "https://login.microsoftonline.com";
    default_teams_js = "https://res.cdn.office.net/teams-js/2.22.0/js/MicrosoftTeams.min.js";
}

fn default_frame_ancestors() -> Vec<String> {
    [
        "https://teams.microsoft.com",
        "https://*.teams.microsoft.com",
        "https://*.teams.microsoft.us",
        "https://teams.cloud.microsoft",
        "https://*.cloud.microsoft",
        "https://*.office.com",
        "https://outlook.office.com",
        "https://*.microsoft365.com",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// A configured Teams method.
#[derive(Debug)]
pub struct Teams {
    client_id: String,
    tenant_id: String,
    app_id_uri: Option<String>,
    required_scope: String,
    allowed_client_apps: Vec<String>,
    authority: String,
    jwks: url::Url,
    teams_js_url: String,
    frame_ancestors: String,
    organization: Option<String>,
    timeout_ms: u64,
}

/// What a Teams login waits for.
#[derive(Debug)]
pub enum Step {
    /// The tenant's JWKS, to verify the token.
    ExpectJwks {
        /// The Teams SSO token.
        token: Secret,
        /// Whether the JWKS was fetched for this token already.
        refreshed: bool,
    },
}

impl Teams {
    /// Parses the method's configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the field.
    pub fn from_raw(raw: RawTeams, at: &str) -> Result<Self, ConfigError> {
        let here = |f: &str| format!("{at}.{f}");
        let err = |f: &str, reason: &str| ConfigError {
            path: here(f),
            reason: reason.to_owned(),
        };
        cn::require_id(&raw.client_id, &here("client_id"))?;
        cn::require_id(&raw.tenant_id, &here("tenant_id"))?;
        if matches!(
            raw.tenant_id.as_str(),
            "common" | "organizations" | "consumers"
        ) {
            return Err(err(
                "tenant_id",
                "must be the tenant's id (Directory ID), not common/organizations/consumers",
            ));
        }
        if let Some(s) = &raw.client_secret {
            cn::require_secret(s, &here("client_secret"))?;
        }
        if let Some(uri) = &raw.app_id_uri {
            if !uri.starts_with("api://") || !uri.ends_with(&format!("/{}", raw.client_id)) {
                return Err(err("app_id_uri", "must be api://{domain}/{client_id}"));
            }
        }
        if raw.required_scope.trim().is_empty() {
            return Err(err("required_scope", "must not be empty"));
        }
        let allowed_client_apps = raw
            .allowed_client_apps
            .unwrap_or_else(|| TEAMS_CLIENTS.iter().map(|s| (*s).to_owned()).collect());
        if allowed_client_apps.is_empty() {
            return Err(err("allowed_client_apps", "must list at least one client"));
        }
        let authority = ApiBase::parse(&raw.authority, &here("authority"))?;
        let jwks = match &raw.jwks_url {
            Some(u) => ApiBase::parse(u, &here("jwks_url"))?.url("", &[]),
            None => authority.url(&format!("/{}/discovery/v2.0/keys", raw.tenant_id), &[]),
        };
        cn::check_timeout(raw.timeout_ms, &here("timeout_ms"))?;
        let teams_js = url::Url::parse(&raw.teams_js_url)
            .map_err(|e| err("teams_js_url", &format!("not an absolute URL: {e}")))?;
        for (i, a) in raw.frame_ancestors.iter().enumerate() {
            let ok = !a.is_empty()
                && a.len() <= 200
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._:/*".contains(&b));
            if !ok {
                return Err(err(
                    &format!("frame_ancestors[{i}]"),
                    "must be a CSP source (scheme://host[:port], * allowed in the host)",
                ));
            }
        }
        Ok(Teams {
            client_id: raw.client_id,
            tenant_id: raw.tenant_id,
            app_id_uri: raw.app_id_uri,
            required_scope: raw.required_scope,
            allowed_client_apps,
            authority: raw.authority.trim_end_matches('/').to_owned(),
            jwks,
            teams_js_url: teams_js.to_string(),
            frame_ancestors: raw.frame_ancestors.join(" "),
            organization: raw.organization,
            timeout_ms: raw.timeout_ms,
        })
    }

    fn jwks_key(&self) -> String {
        format!("sso:teams:jwks:{}", self.jwks)
    }

    /// Verifies a Teams token against a JWKS; `Ok(None)` when its `kid` is not there.
    ///
    /// # Errors
    ///
    /// [`IdpFailure::IdToken`] for every failed check.
    pub fn verify(
        &self,
        token: &str,
        jwks: &Value,
        now: u64,
    ) -> Result<Option<Map<String, Value>>, IdpFailure> {
        let Some(claims) = signed_claims(token, jwks)? else {
            return Ok(None);
        };
        self.check_claims(&claims, now)?;
        Ok(Some(claims))
    }

    /// The claims of a signed token: its time, tenant, issuer, audience, scope and calling
    /// app are this method's.
    fn check_claims(&self, claims: &Map<String, Value>, now: u64) -> Result<(), IdpFailure> {
        let bad = IdpFailure::IdToken;
        let date = |name| numeric_date(claims, name).map_err(bad);
        match date("exp")? {
            Some(exp) if now < exp.saturating_add(LEEWAY) => {}
            Some(_) => return Err(bad(JoseError::Expired)),
            None => return Err(bad(JoseError::MissingClaim)),
        }
        if date("nbf")?.is_some_and(|nbf| now.saturating_add(LEEWAY) < nbf) {
            return Err(bad(JoseError::NotYetValid));
        }
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        // The tenant first: the issuer is built from it.
        if text("tid") != Some(self.tenant_id.as_str()) {
            return Err(IdpFailure::NotMember {
                provider: Self::LABEL,
                why: "another_tenant",
            });
        }
        let (issuer, caller) = match text("ver") {
            Some("1.0") => (
                format!("https://sts.windows.net/{}/", self.tenant_id),
                "appid",
            ),
            Some("2.0") => (format!("{}/{}/v2.0", self.authority, self.tenant_id), "azp"),
            _ => return Err(bad(JoseError::ClaimType)),
        };
        if text("iss") != Some(issuer.as_str()) {
            return Err(bad(JoseError::Issuer));
        }
        let aud_ok = match text("aud") {
            Some(aud) if aud == self.client_id => true,
            Some(aud) => match &self.app_id_uri {
                Some(uri) => aud == uri,
                None => aud.starts_with("api://") && aud.ends_with(&format!("/{}", self.client_id)),
            },
            None => false,
        };
        if !aud_ok {
            return Err(bad(JoseError::Audience));
        }
        let scopes = text("scp").unwrap_or("");
        if !scopes.split(' ').any(|s| s == self.required_scope) {
            return Err(bad(JoseError::MissingClaim));
        }
        if !text(caller).is_some_and(|c| self.allowed_client_apps.iter().any(|a| a == c)) {
            return Err(bad(JoseError::Audience));
        }
        cn::user_id(text("oid")).ok_or(bad(JoseError::MissingClaim))?;
        Ok(())
    }

    /// The claims for the mapping: the token's, without the protocol ones.
    fn claims(&self, mut claims: Map<String, Value>) -> Map<String, Value> {
        for k in [
            "aud", "iss", "iat", "nbf", "exp", "aio", "uti", "rh", "xms_tcdt", "acct", "ver",
            "appidacr", "azpacr", "scp", "sub",
        ] {
            claims.remove(k);
        }
        if let Some(org) = &self.organization {
            claims.insert("organization".into(), json!(org));
        }
        claims
    }
}

/// A token's claims when its RS256 signature verifies with the JWKS key its `kid` names;
/// `None` when the JWKS has no such key (fetched again once).
fn signed_claims(token: &str, jwks: &Value) -> Result<Option<Map<String, Value>>, IdpFailure> {
    let kid = token_kid(token)?;
    let keys = keys_for(jwks, &kid);
    if keys.is_empty() {
        return Ok(None);
    }
    let claims = Verifier::new(JwsAlg::Rs256, keys)
        .verify(token)
        .map_err(IdpFailure::IdToken)?
        .claims;
    Ok(Some(claims))
}

/// The JWKS's signing keys with this `kid`.
fn keys_for(jwks: &Value, kid: &str) -> Vec<(Option<String>, VerifyKey)> {
    jwks.get("keys")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
                .filter(|k| {
                    k.get("use")
                        .and_then(Value::as_str)
                        .is_none_or(|u| u == "sig")
                })
                .filter_map(|k| VerifyKey::from_jwk(JwsAlg::Rs256, k).ok())
                .map(|key| (Some(kid.to_owned()), key))
                .collect()
        })
        .unwrap_or_default()
}

impl Provider for Teams {
    type Step = Step;

    const TYPE: &'static str = "teams";

    const LABEL: &'static str = "Microsoft Teams";

    fn timeout_ms(&self) -> u64 {
        self.timeout_ms
    }

    /// Mapping defaults: the user principal name (v2 `preferred_username`, v1 `upn`), the
    /// display name, app roles as roles, groups.
    fn default_mapping(&self) -> RawMapping {
        RawMapping::defaults(&[
            ("login", "$['preferred_username','upn','unique_name','oid']"),
            ("name", "name"),
            ("email", "$['email','upn','preferred_username']"),
            ("roles", "roles"),
            ("groups", "groups"),
            ("org", "organization"),
        ])
    }

    /// Every URL the method calls out to (for `sso-filter clusters`).
    fn outbound_urls(&self) -> Vec<url::Url> {
        vec![self.jwks.clone()]
    }

    fn cross_site(&self) -> bool {
        true
    }

    fn choose(&self, _entry: &Entry<'_>) -> Result<&'static str, Deny> {
        Ok(TAB)
    }

    fn begin(
        &self,
        _variant: &str,
        _entry: &Entry<'_>,
        _state: &str,
        _redirect_uri: &str,
    ) -> Result<Begin, Deny> {
        Ok(Begin::Page(JsPage {
            title: "Signing in with Microsoft Teams".into(),
            sdk: Some(self.teams_js_url.clone()),
            config: json!({"clientId": self.client_id}),
            script: TAB_SCRIPT.into(),
            frame_ancestors: Some(self.frame_ancestors.clone()),
        }))
    }

    fn callback(&self, _variant: &str, _query: &Query, _redirect_uri: &str) -> Result<Step, Deny> {
        Err(Deny::NotFound)
    }

    fn posted(&self, _variant: &str, fields: &Map<String, Value>) -> Result<Step, Deny> {
        let token = fields
            .get("token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_BYTES)
            .ok_or(Deny::BadRequest("no_token"))?;
        Ok(Step::ExpectJwks {
            token: Secret::new(token),
            refreshed: false,
        })
    }

    fn settle(
        &self,
        step: Step,
        cache: &dyn SharedCache,
        now: u64,
    ) -> Result<Settled<Step>, IdpFailure> {
        let Step::ExpectJwks { token, refreshed } = step;
        // Cheap checks first: no JWKS fetch for a token no JWKS could verify.
        token_kid(token.expose())?;
        let cached = cache
            .get(&self.jwks_key())
            .ok()
            .flatten()
            .and_then(|(bytes, _)| serde_json::from_slice::<Value>(&bytes).ok())
            .and_then(|v| Some((v.get("at")?.as_u64()?, v.get("doc")?.clone())));
        let Some((at, doc)) = cached.filter(|(at, _)| now < at.saturating_add(DOC_TTL)) else {
            if refreshed {
                // Fetched, yet not in the cache: the cache is failing; fail closed.
                return Err(IdpFailure::BadAnswer("jwks_cache"));
            }
            return Ok(Settled::Call(Step::ExpectJwks { token, refreshed }));
        };
        match self.verify(token.expose(), &doc, now)? {
            Some(claims) => Ok(Settled::Done(Answer::Claims(self.claims(claims)))),
            // An unknown key: Entra may have rolled its keys; fetch again, at most once a
            // minute (security.md M5).
            None if !refreshed && now >= at.saturating_add(JWKS_REFETCH_INTERVAL) => {
                Ok(Settled::Call(Step::ExpectJwks { token, refreshed }))
            }
            None => Err(IdpFailure::IdToken(JoseError::UnknownKey)),
        }
    }

    fn remember(
        &self,
        _step: &Step,
        response: &CalloutResponse,
        cache: &dyn SharedCache,
        now: u64,
    ) {
        if response.status != Some(200) {
            return;
        }
        if let Ok(doc) = json_body(response, MAX_DOC_BODY) {
            let value = json!({"at": now, "doc": doc}).to_string();
            if cache.set(&self.jwks_key(), value.as_bytes(), None).is_err() {
                log::info!("sso-filter: could not cache the Teams JWKS");
            }
        }
    }

    fn token_for(&self, _step: &Step) -> Option<TokenKind> {
        None
    }

    fn token_key(&self, kind: TokenKind) -> String {
        format!("sso:apptoken:teams:{kind:?}:{}", self.client_id)
    }

    fn token_request(&self, _kind: TokenKind, _now_ms: u64) -> Callout {
        // Never asked for: tab sign-in needs no app token.
        cn::get(self.jwks.clone(), self.timeout_ms)
    }

    fn token_answer(
        &self,
        _kind: TokenKind,
        _response: &CalloutResponse,
    ) -> Result<Fetched, IdpFailure> {
        Err(IdpFailure::BadAnswer("no_app_token"))
    }

    fn request(&self, _step: &Step, _token: Option<&str>, _now_ms: u64) -> Callout {
        cn::get(self.jwks.clone(), self.timeout_ms)
    }

    fn answer(&self, step: Step, response: &CalloutResponse) -> Result<Answer<Step>, IdpFailure> {
        let Step::ExpectJwks { token, .. } = step;
        if response.status != Some(200) {
            return Err(IdpFailure::BadAnswer("jwks_status"));
        }
        let doc = json_body(response, MAX_DOC_BODY)?;
        if doc.get("keys").and_then(Value::as_array).is_none() {
            return Err(IdpFailure::BadAnswer("jwks"));
        }
        // `remember` cached the JWKS; `settle` verifies against it next.
        Ok(Answer::Next(Step::ExpectJwks {
            token,
            refreshed: true,
        }))
    }
}

/// The `kid` of a token whose header passes the checks that need no key (size, RS256, a
/// `kid`): one reading of the header before a key is looked for and before one is fetched.
fn token_kid(token: &str) -> Result<String, IdpFailure> {
    let bad = IdpFailure::IdToken;
    if token.len() > MAX_TOKEN_BYTES {
        return Err(bad(JoseError::TooLarge));
    }
    let header = token
        .split('.')
        .next()
        .ok_or(bad(JoseError::Malformed))
        .and_then(|h| b64_segment(h).map_err(bad))
        .and_then(|b| strict_object(&b).map_err(bad))?;
    // Entra signs access tokens with RS256 only; anything else (none, HS256) is refused
    // before a key is chosen.
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(bad(JoseError::Algorithm));
    }
    header
        .get("kid")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or(bad(JoseError::UnknownKey))
}

/// The tab page's script: TeamsJS v2 (`app.initialize`, promise `getAuthToken`), also
/// answering through the v1 callbacks.
const TAB_SCRIPT: &str = "\
const T=window.microsoftTeams;\
if(!T||!T.authentication){fail('Open this tab in Microsoft Teams.');}\
else{(async function(){try{\
if(T.app&&typeof T.app.initialize==='function'){await T.app.initialize();}\
else if(typeof T.initialize==='function'){T.initialize();}\
const token=await new Promise(function(ok,no){\
const r=T.authentication.getAuthToken({successCallback:ok,failureCallback:no});\
if(r&&typeof r.then==='function'){r.then(ok,no);}});\
send({token:token});}\
catch(e){fail('Teams did not give a sign-in token: '+e);}})();}";
