//! The sign-in pages: the login form of the form methods (built-in users, LDAP) with the
//! scope's other methods as buttons below it, and the chooser (the buttons alone). English or
//! Chinese ([`Lang`]), an optional title and logo ([`Brand`]), and written for screen readers
//! and keyboards: one `<h1>`, labels bound to their fields, the order form fields, submit,
//! then the other methods; a visible focus ring; every colour pair at least 4.5:1 (stated at
//! [`STYLE`]). The only inline code is [`STYLE`], allowed by its hash in [`csp`].

use base64::Engine;
use sha2::{Digest, Sha256};

use super::escape;
use super::lang::{Lang, Text};

/// How the login page offers a method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Way {
    /// A user name and password form of its own (built-in users, LDAP).
    Form,
    /// The identity provider's sign-in page (OIDC, OAuth 2, SAML, CAS).
    Redirect,
    /// A QR code to scan with the provider's app (DingTalk, WeCom, Feishu, WeChat).
    QrCode,
}

/// What a method shows on the login page (`LoginMethod::offer`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    /// How it signs in.
    pub way: Way,
    /// Its name when the method has no `label` (a provider's: DingTalk, 钉钉); `None`: the
    /// method's configured name.
    pub name: Option<Text>,
    /// Query parameters the button adds to the login start (a provider's login type, so a
    /// browser gets the QR login whatever the method's default).
    pub params: Vec<(String, String)>,
}

impl Offer {
    /// Offered as `way`, named by its label or name, with no parameters of its own.
    pub fn of(way: Way) -> Self {
        Offer {
            way,
            name: None,
            params: Vec::new(),
        }
    }
}

/// A message above the form after a failed attempt (never which part was wrong).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    /// Built-in users: unknown user or wrong password.
    BadCredentials,
    /// LDAP: the user, the password or the directory.
    DirectoryFailed,
    /// Too many failures for this user from this address.
    Throttled,
    /// The password budget is spent.
    Busy,
}

impl Notice {
    /// The message in `lang`.
    pub fn text(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Notice::BadCredentials, Lang::En) => "Invalid user name or password.",
            (Notice::BadCredentials, Lang::Zh) => "用户名或密码错误。",
            (Notice::DirectoryFailed, Lang::En) => {
                "Sign-in failed. Check your user name and password, or try again later."
            }
            (Notice::DirectoryFailed, Lang::Zh) => "登录失败。请检查用户名和密码，或稍后再试。",
            (Notice::Throttled, Lang::En) => "Too many failed attempts. Try again later.",
            (Notice::Throttled, Lang::Zh) => "失败次数过多，请稍后再试。",
            (Notice::Busy, Lang::En) => {
                "Too many sign-in attempts right now. Wait a moment and try again."
            }
            (Notice::Busy, Lang::Zh) => "当前登录请求过多，请稍等片刻再试。",
        }
    }
}

/// The logo: where the page loads it from, and the one CSP source that allows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logo {
    src: String,
    source: String,
}

impl Logo {
    /// A logo at `src` (an https URL or a same-origin path, checked by the configuration),
    /// allowed by the CSP source expression `source` (its scheme, host, port and path).
    pub fn new(src: String, source: String) -> Self {
        Logo { src, source }
    }
}

/// The operator's title and logo (`login_page_title`, `login_page_logo`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Brand {
    /// Shown above the heading and in the window title.
    pub title: Option<Text>,
    /// Shown above the heading (decorative: `alt=""`, the title names the site).
    pub logo: Option<Logo>,
}

/// One method on the page: a link that starts its login.
#[derive(Clone, Debug)]
pub struct Button {
    /// How it signs in (`None`: a method the page does not describe, on the chooser only).
    pub way: Option<Way>,
    /// The method's label or name.
    pub label: String,
    /// `{prefix}/login?activeAuth=...` (escaped when written).
    pub href: String,
}

impl Button {
    /// The button's text, which is its accessible name: the label and how it signs in.
    pub fn text(&self, lang: Lang) -> String {
        let label = self.label.trim();
        match lang {
            Lang::En => match self.way {
                Some(Way::QrCode) => format!("Sign in with {label} (QR code)"),
                Some(Way::Form) => format!("Sign in with {label} (user name and password)"),
                Some(Way::Redirect) | None => format!("Sign in with {label}"),
            },
            Lang::Zh => {
                // A Latin name between Chinese words gets a space on each side.
                let latin = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
                let pad_l = if latin(label.chars().next()) { " " } else { "" };
                let pad_r = if latin(label.chars().last()) { " " } else { "" };
                let how = match self.way {
                    Some(Way::QrCode) => "扫码登录",
                    Some(Way::Form) => "账号密码登录",
                    Some(Way::Redirect) | None => "登录",
                };
                format!("使用{pad_l}{label}{pad_r}{how}")
            }
        }
    }
}

/// The login form's part of the page.
pub struct Form<'a> {
    /// Where it posts (`login_page`).
    pub action: &'a str,
    /// The flow's state.
    pub state: &'a str,
    /// The message after a failed attempt.
    pub notice: Option<Notice>,
}

/// The page's words.
struct Words {
    sign_in: &'static str,
    choose: &'static str,
    user: &'static str,
    password: &'static str,
    others: &'static str,
}

fn words(lang: Lang) -> Words {
    match lang {
        Lang::En => Words {
            sign_in: "Sign in",
            choose: "Choose how to sign in",
            user: "User name",
            password: "Password",
            others: "Other ways to sign in",
        },
        Lang::Zh => Words {
            sign_in: "登录",
            choose: "选择登录方式",
            user: "用户名",
            password: "密码",
            others: "其他登录方式",
        },
    }
}

/// The sign-in pages' style, allowed by its hash ([`csp`]). Colours (WCAG 2 contrast, measured
/// again in the browser by `tests/e2e/browser/login-page.mjs`): text `#1f2328` on `#ffffff`
/// 15.8:1; the submit button `#ffffff` on `#0b57d0` 6.4:1 (hover `#0a4bb5`, 7.8:1); method
/// buttons `#0b57d0` on `#ffffff` 6.4:1 (hover background `#e8f0fe`, 5.6:1); the error
/// `#b3261e` on `#fdecea` 5.7:1; field borders `#59636e` on `#ffffff` 6.1:1 and the focus ring
/// `#0b57d0` 6.4:1 (non-text: 3:1 needed).
pub const STYLE: &str = "\
*{box-sizing:border-box}\
body{margin:0;background:#f6f8fa;color:#1f2328;font:1rem/1.5 system-ui,-apple-system,\"Segoe UI\",\"PingFang SC\",\"Microsoft YaHei\",\"Noto Sans CJK SC\",sans-serif}\
main{max-width:26rem;margin:3rem auto;padding:2rem;background:#fff;border:1px solid #d0d7de;border-radius:8px}\
.brand{display:flex;align-items:center;gap:.75rem;margin:0 0 1rem}\
.brand img{max-height:3rem;max-width:12rem}\
.site{margin:0;font-size:1.25rem;font-weight:600}\
h1{margin:0 0 1rem;font-size:1.5rem}\
h2{margin:1.5rem 0 .75rem;font-size:1rem}\
form{display:grid;gap:.4rem}\
label{font-weight:600;margin-top:.4rem}\
input{width:100%;padding:.5rem .75rem;font:inherit;color:#1f2328;background:#fff;border:1px solid #59636e;border-radius:6px}\
button,.way{display:block;width:100%;padding:.6rem 1rem;font:inherit;font-weight:600;text-align:center;border-radius:6px;cursor:pointer}\
button{margin-top:1rem;color:#fff;background:#0b57d0;border:1px solid #0b57d0}\
button:hover{background:#0a4bb5}\
ul{list-style:none;margin:0;padding:0;display:grid;gap:.5rem}\
.way{color:#0b57d0;background:#fff;border:1px solid #0b57d0;text-decoration:none}\
.way:hover{background:#e8f0fe}\
:focus-visible{outline:3px solid #0b57d0;outline-offset:2px}\
.msg{margin:0 0 1rem;padding:.5rem .75rem;color:#b3261e;background:#fdecea;border:1px solid #b3261e;border-radius:6px}";

/// The `Content-Security-Policy` of the sign-in pages: nothing but [`STYLE`] (by its hash),
/// the logo (exactly it) and the form's post to this origin.
pub fn csp(brand: &Brand) -> String {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE));
    let img = brand
        .logo
        .as_ref()
        .map_or("'none'", |logo| logo.source.as_str());
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src {img}; form-action 'self'; \
         base-uri 'none'; frame-ancestors 'self'"
    )
}

/// The login form with the other methods as buttons below it (`form`), or the chooser: the
/// buttons alone (`form` `None`).
pub fn sign_in(lang: Lang, brand: &Brand, form: Option<&Form<'_>>, buttons: &[Button]) -> String {
    let w = words(lang);
    let heading = if form.is_some() { w.sign_in } else { w.choose };
    let site = brand.title.as_ref().map(|t| t.get(lang));
    let title = site.map_or_else(|| heading.to_owned(), |s| format!("{heading} · {s}"));
    let mut body = String::from("<main>");
    if brand.title.is_some() || brand.logo.is_some() {
        body.push_str("<div class=\"brand\">");
        if let Some(logo) = &brand.logo {
            body.push_str(&format!("<img src=\"{}\" alt=\"\">", escape(&logo.src)));
        }
        if let Some(site) = site {
            body.push_str(&format!("<p class=\"site\">{}</p>", escape(site)));
        }
        body.push_str("</div>");
    }
    body.push_str(&format!("<h1>{heading}</h1>"));
    if let Some(form) = form {
        body.push_str(&form_html(lang, &w, form));
    }
    if !buttons.is_empty() {
        let items: String = buttons
            .iter()
            .map(|b| {
                format!(
                    "<li><a class=\"way\" href=\"{}\">{}</a></li>",
                    escape(&b.href),
                    escape(&b.text(lang))
                )
            })
            .collect();
        match form {
            Some(_) => body.push_str(&format!(
                "<section aria-labelledby=\"others\"><h2 id=\"others\">{}</h2><ul>{items}</ul>\
                 </section>",
                w.others
            )),
            None => body.push_str(&format!("<ul>{items}</ul>")),
        }
    }
    body.push_str("</main>");
    format!(
        "<!doctype html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{title}</title><style>{STYLE}</style></head><body>{body}</body></html>\n",
        lang = lang.tag(),
        title = escape(&title),
    )
}

fn form_html(lang: Lang, w: &Words, form: &Form<'_>) -> String {
    let (msg, described) = match form.notice {
        Some(n) => (
            format!(
                "<p class=\"msg\" id=\"msg\" role=\"alert\">{}</p>",
                escape(n.text(lang))
            ),
            " aria-describedby=\"msg\"",
        ),
        None => (String::new(), ""),
    };
    format!(
        "{msg}<form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"state\" value=\"{state}\">\
         <label for=\"username\">{user}</label>\
         <input id=\"username\" name=\"username\" autocomplete=\"username\" autocapitalize=\"none\" \
         spellcheck=\"false\" required autofocus{described}>\
         <label for=\"password\">{password}</label>\
         <input id=\"password\" name=\"password\" type=\"password\" \
         autocomplete=\"current-password\" required>\
         <button type=\"submit\">{submit}</button></form>",
        action = escape(form.action),
        state = escape(form.state),
        user = w.user,
        password = w.password,
        submit = w.sign_in,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn button(way: Option<Way>, label: &str) -> Button {
        Button {
            way,
            label: label.into(),
            href: "/sso/login?activeAuth=x".into(),
        }
    }

    #[test]
    fn button_names_say_the_method_and_the_way() {
        let cases = [
            (
                Some(Way::QrCode),
                "DingTalk",
                Lang::En,
                "Sign in with DingTalk (QR code)",
            ),
            (Some(Way::QrCode), "钉钉", Lang::Zh, "使用钉钉扫码登录"),
            (Some(Way::QrCode), "WeCom", Lang::Zh, "使用 WeCom 扫码登录"),
            (Some(Way::Redirect), "Okta", Lang::En, "Sign in with Okta"),
            (
                Some(Way::Redirect),
                "公司 SSO",
                Lang::Zh,
                "使用公司 SSO 登录",
            ),
            (
                Some(Way::Form),
                "LDAP",
                Lang::En,
                "Sign in with LDAP (user name and password)",
            ),
            (Some(Way::Form), "目录", Lang::Zh, "使用目录账号密码登录"),
            (None, "portal", Lang::En, "Sign in with portal"),
        ];
        for (way, label, lang, want) in cases {
            assert_eq!(button(way, label).text(lang), want);
        }
    }

    #[test]
    fn everything_interpolated_is_escaped() {
        let brand = Brand {
            title: Some(Text::same("<b>Acme</b>")),
            logo: Some(Logo::new("/l.png?a=1&b=\"2\"".into(), "x".into())),
        };
        let form = Form {
            action: "/login\"x",
            state: "\"><script>",
            notice: Some(Notice::BadCredentials),
        };
        let mut b = button(Some(Way::Redirect), "<img src=x onerror=alert(1)>");
        b.href = "/sso/login?a=1&b=\"><script>".into();
        let html = sign_in(Lang::En, &brand, Some(&form), &[b]);
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(html.contains("&lt;b&gt;Acme&lt;/b&gt;"), "{html}");
        assert!(
            html.contains("src=\"/l.png?a=1&amp;b=&quot;2&quot;\""),
            "{html}"
        );
    }

    #[test]
    fn the_page_speaks_its_language() {
        let form = Form {
            action: "/login",
            state: "s",
            notice: Some(Notice::Throttled),
        };
        let zh = sign_in(Lang::Zh, &Brand::default(), Some(&form), &[]);
        assert!(zh.contains("<html lang=\"zh-CN\">"), "{zh}");
        for w in [
            "<h1>登录</h1>",
            ">用户名</label>",
            ">密码</label>",
            "失败次数过多",
        ] {
            assert!(zh.contains(w), "{w}: {zh}");
        }
        let en = sign_in(Lang::En, &Brand::default(), None, &[button(None, "a")]);
        assert!(en.contains("<html lang=\"en\">"), "{en}");
        assert!(en.contains("<h1>Choose how to sign in</h1>"), "{en}");
        assert!(!en.contains("<form"), "{en}");
    }

    #[test]
    fn fields_submit_then_methods_in_document_order() {
        let form = Form {
            action: "/login",
            state: "s",
            notice: None,
        };
        let html = sign_in(
            Lang::En,
            &Brand::default(),
            Some(&form),
            &[button(None, "a")],
        );
        let at = |needle: &str| html.find(needle).unwrap_or(usize::MAX);
        assert!(at("id=\"username\"") < at("id=\"password\""));
        assert!(at("id=\"password\"") < at("type=\"submit\""));
        assert!(at("type=\"submit\"") < at("class=\"way\""));
        assert!(!html.contains("tabindex"));
        assert!(html.contains("<label for=\"username\">"));
        assert!(html.contains("<label for=\"password\">"));
    }

    #[test]
    fn the_csp_allows_the_style_and_exactly_the_logo() {
        let plain = csp(&Brand::default());
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE));
        assert!(
            plain.contains(&format!("style-src 'sha256-{hash}'")),
            "{plain}"
        );
        assert!(plain.contains("img-src 'none'"), "{plain}");
        assert!(plain.starts_with("default-src 'none';"), "{plain}");
        let brand = Brand {
            title: None,
            logo: Some(Logo::new(
                "https://cdn.example.com/a/logo.png?v=2".into(),
                "https://cdn.example.com/a/logo.png".into(),
            )),
        };
        assert!(csp(&brand).contains("img-src https://cdn.example.com/a/logo.png;"));
    }
}
