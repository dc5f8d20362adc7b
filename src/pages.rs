//! The few HTML pages the filter serves itself: the login form, the method chooser and the
//! error page. Everything interpolated is HTML-escaped.

/// Escapes text for HTML element content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{title}</title><style>\
         body{{font-family:system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem;color:#222}}\
         form{{display:grid;gap:.8rem}}label{{display:grid;gap:.3rem}}input{{padding:.5rem;font-size:1rem;width:100%;box-sizing:border-box}}\
         button{{padding:.6rem;font-size:1rem;cursor:pointer}}.msg{{color:#b00020}}\
         ul{{padding-left:1.2rem}}</style></head><body>{body}</body></html>\n",
        title = escape(title)
    )
}

/// The built-in login form.
pub fn login_form(action: &str, state: &str, message: Option<&str>) -> String {
    let msg = message
        .map(|m| format!("<p class=\"msg\" role=\"alert\">{}</p>", escape(m)))
        .unwrap_or_default();
    page(
        "Sign in",
        &format!(
            "<h1>Sign in</h1>{msg}<form method=\"post\" action=\"{action}\">\
             <input type=\"hidden\" name=\"state\" value=\"{state}\">\
             <label>User name <input name=\"username\" autocomplete=\"username\" required autofocus></label>\
             <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
             <button type=\"submit\">Sign in</button></form>",
            action = escape(action),
            state = escape(state)
        ),
    )
}

/// The method chooser: one link per method, as (label, href).
pub fn chooser(links: &[(String, String)]) -> String {
    let items: String = links
        .iter()
        .map(|(label, href)| {
            format!(
                "<li><a href=\"{}\">{}</a></li>",
                escape(href),
                escape(label)
            )
        })
        .collect();
    page(
        "Choose how to sign in",
        &format!("<h1>Sign in with</h1><ul>{items}</ul>"),
    )
}

/// An error page with a short public message and an optional link.
pub fn error(title: &str, message: &str, link: Option<(&str, &str)>) -> String {
    let link = link
        .map(|(label, href)| format!("<p><a href=\"{}\">{}</a></p>", escape(href), escape(label)))
        .unwrap_or_default();
    page(
        title,
        &format!("<h1>{}</h1><p>{}</p>{link}", escape(title), escape(message)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolations_are_escaped() {
        let html = login_form("/login", "\"><script>", Some("<b>"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;b&gt;"));
    }
}
