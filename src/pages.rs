//! The few HTML pages the filter serves itself: the sign-in pages (`login`: the login form
//! and the method chooser, in the reader's language), the error page and the in-app login
//! page. Everything interpolated is HTML-escaped.

pub mod lang;
pub mod login;

/// Escapes text for HTML (and XML: SAML messages and metadata) element content and quoted
/// attributes.
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

/// An in-app login page: loads the client's JSAPI, runs `script` (which calls `send({...})`
/// with the code it got, or `fail(text)`), and posts the code with the flow's `state` as JSON
/// to `post_url`; the answer names where to go next. `config` is JSON for the script (`CFG`);
/// `nonce` is the CSP nonce of the inline script.
pub fn jsapi_page(
    title: &str,
    sdk: Option<&str>,
    config: &serde_json::Value,
    script: &str,
    post_url: &str,
    state: &str,
    nonce: &str,
) -> String {
    // JSON in a <script> element: `<`, `>` and `&` escaped so nothing closes the element.
    let data = serde_json::json!({"cfg": config, "post": post_url, "state": state})
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    let sdk = sdk
        .map(|src| format!("<script src=\"{}\"></script>", escape(src)))
        .unwrap_or_default();
    page(
        title,
        &format!(
            "<h1>{title}</h1><p id=\"status\" role=\"status\">Signing you in…</p>{sdk}\
             <script nonce=\"{nonce}\">\
             const D={data};const CFG=D.cfg;\
             function show(t){{document.getElementById('status').textContent=t;}}\
             function fail(t){{show(String(t||'Sign-in failed.'));}}\
             async function send(fields){{\
             try{{const r=await fetch(D.post,{{method:'POST',credentials:'same-origin',\
             headers:{{'content-type':'application/json','accept':'application/json'}},\
             body:JSON.stringify(Object.assign({{state:D.state}},fields))}});\
             const a=await r.json().catch(()=>({{}}));\
             if(r.ok&&a.location){{location.replace(a.location);}}\
             else{{fail(a.message||('Sign-in failed ('+r.status+').'));}}}}\
             catch(e){{fail('Sign-in failed: '+e);}}}}\
             try{{{script}}}catch(e){{fail('Sign-in failed: '+e);}}\
             </script>",
            title = escape(title),
            nonce = escape(nonce),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolations_are_escaped() {
        let html = error("<b>", "\"><script>", Some(("<i>", "/x?a=\"1\"")));
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<i>"));
        assert!(html.contains("&lt;b&gt;"));
        assert!(html.contains("href=\"/x?a=&quot;1&quot;\""));
    }
}
