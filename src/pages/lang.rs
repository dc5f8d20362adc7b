//! The languages of the sign-in pages: English and Simplified Chinese, chosen per request from
//! `Accept-Language` (RFC 9110 §12.5.4), and text that configuration gives in both.

use std::borrow::Cow;

/// A language the sign-in pages are written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// English, the default.
    En,
    /// Simplified Chinese, for every `zh*` range (`zh`, `zh-CN`, `zh-TW`, `zh-Hant`).
    Zh,
}

/// The most ranges of `Accept-Language` looked at; browsers send a handful.
const MAX_RANGES: usize = 64;

impl Lang {
    /// The tag for `<html lang>` and `Content-Language`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }

    /// The language the `Accept-Language` values (every header line, in order) prefer: of
    /// English and Chinese, the one with the higher weight (a range's `q`, default 1), the
    /// earlier on a tie; a language no range names takes the weight of `*`. A range matches
    /// by its primary subtag (`zh-Hant` is Chinese). No header, nothing acceptable, or a
    /// malformed header: English.
    pub fn negotiate<'a>(values: impl IntoIterator<Item = &'a str>) -> Lang {
        // Per language: (weight in thousandths, position of the range that gave it).
        let mut en: Option<(u16, usize)> = None;
        let mut zh: Option<(u16, usize)> = None;
        let mut any: Option<(u16, usize)> = None;
        let ranges = values
            .into_iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .take(MAX_RANGES);
        for (at, range) in ranges.enumerate() {
            let mut parts = range.split(';');
            let tag = parts.next().unwrap_or_default().trim();
            let Some(q) = weight(parts) else { continue };
            let primary = tag.split('-').next().unwrap_or_default();
            let slot = if primary.eq_ignore_ascii_case("zh") {
                &mut zh
            } else if primary.eq_ignore_ascii_case("en") {
                &mut en
            } else if tag == "*" {
                &mut any
            } else {
                continue;
            };
            // Several ranges of one language (`zh-TW;q=0, zh-CN`): the best of them counts.
            if slot.is_none_or(|(best, _)| q > best) {
                *slot = Some((q, at));
            }
        }
        let zh_wins = match (en.or(any), zh.or(any)) {
            (_, None | Some((0, _))) => false,
            (None, Some(_)) => true,
            (Some((qe, ae)), Some((qz, az))) => qz > qe || (qz == qe && az < ae),
        };
        if zh_wins {
            Lang::Zh
        } else {
            Lang::En
        }
    }
}

/// The `q` of a range's parameters in thousandths (`None`: malformed, the range is ignored).
fn weight<'a>(params: impl Iterator<Item = &'a str>) -> Option<u16> {
    let mut q = 1000;
    for p in params {
        let (name, value) = p.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("q") {
            return None;
        }
        q = qvalue(value.trim())?;
    }
    Some(q)
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )` (RFC 9110 §12.4.2).
fn qvalue(text: &str) -> Option<u16> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{frac:0<3}").parse::<u16>().ok()?;
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// Text in both page languages: the same words for both (a brand, a product name), or one
/// per language.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Text {
    en: Cow<'static, str>,
    zh: Cow<'static, str>,
}

impl Text {
    /// The same text in both languages.
    pub fn same(text: impl Into<Cow<'static, str>>) -> Self {
        let text = text.into();
        Text {
            en: text.clone(),
            zh: text,
        }
    }

    /// English and Chinese text.
    pub fn new(en: impl Into<Cow<'static, str>>, zh: impl Into<Cow<'static, str>>) -> Self {
        Text {
            en: en.into(),
            zh: zh.into(),
        }
    }

    /// The text in `lang`.
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::En => &self.en,
            Lang::Zh => &self.zh,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(header: &str) -> Lang {
        Lang::negotiate([header])
    }

    #[test]
    fn chinese_for_every_zh_range() {
        for h in [
            "zh",
            "zh-CN",
            "zh-TW",
            "zh-Hant",
            "zh-Hant-TW",
            "ZH-cn",
            "zh-CN,zh;q=0.9",
        ] {
            assert_eq!(pick(h), Lang::Zh, "{h}");
        }
    }

    #[test]
    fn english_by_default_and_for_other_languages() {
        for h in [
            "",
            "en",
            "en-US,en;q=0.9",
            "fr-FR",
            "de, fr;q=0.5",
            "*",
            "zhx",
            "chinese",
        ] {
            assert_eq!(pick(h), Lang::En, "{h}");
        }
        assert_eq!(Lang::negotiate([]), Lang::En);
    }

    /// What Chrome and Firefox send with their language settings, and q-value edge cases.
    #[test]
    fn weights_decide() {
        let cases = [
            ("en-US,en;q=0.9,zh-CN;q=0.8,zh;q=0.7", Lang::En),
            ("zh-CN,zh;q=0.9,en;q=0.8,en-GB;q=0.7,en-US;q=0.6", Lang::Zh),
            ("fr-FR, zh;q=0.8, en;q=0.5", Lang::Zh),
            ("en;q=0.5, zh;q=0.8", Lang::Zh),
            ("en, zh", Lang::En),
            ("zh, en", Lang::Zh),
            ("zh;q=0.5, en;q=0.5", Lang::Zh),
            ("zh;q=0, en;q=0.1", Lang::En),
            ("zh;q=0", Lang::En),
            ("zh-TW;q=0, zh-CN", Lang::Zh),
            ("zh;q=0, *", Lang::En),
            ("en;q=0, *", Lang::Zh),
            ("*;q=0.5, zh;q=0.4", Lang::En),
            ("de, *;q=0.1, zh;q=0.2", Lang::Zh),
            ("zh;Q=0.9, en;q=0.8", Lang::Zh),
            ("zh ; q=0.9 , en ; q=0.8", Lang::Zh),
            ("zh;q=1.000, en", Lang::Zh),
            ("zh;q=0.999, en", Lang::En),
        ];
        for (h, want) in cases {
            assert_eq!(pick(h), want, "{h}");
        }
    }

    /// A malformed range is ignored, not read as q=1.
    #[test]
    fn malformed_weights_are_ignored() {
        for h in [
            "zh;q=2, en;q=0.1",
            "zh;q=1.5, en;q=0.1",
            "zh;q=0.1234, en;q=0.1",
            "zh;q=abc, en;q=0.1",
            "zh;q=, en;q=0.1",
            "zh;level=1, en;q=0.1",
            "zh;q, en;q=0.1",
            "zh;q=-1, en;q=0.1",
        ] {
            assert_eq!(pick(h), Lang::En, "{h}");
        }
    }

    #[test]
    fn several_header_lines_are_one_list() {
        assert_eq!(Lang::negotiate(["fr", "zh;q=0.3"]), Lang::Zh);
        assert_eq!(Lang::negotiate(["en;q=0.2", "zh;q=0.3"]), Lang::Zh);
    }

    #[test]
    fn only_the_first_ranges_count() {
        let long = format!("{}zh", "x,".repeat(MAX_RANGES));
        assert_eq!(pick(&long), Lang::En);
    }

    #[test]
    fn qvalues() {
        assert_eq!(qvalue("0"), Some(0));
        assert_eq!(qvalue("0.5"), Some(500));
        assert_eq!(qvalue("0.05"), Some(50));
        assert_eq!(qvalue("1"), Some(1000));
        assert_eq!(qvalue("1.0"), Some(1000));
        assert_eq!(qvalue("1.001"), None);
        assert_eq!(qvalue(".5"), None);
        assert_eq!(qvalue("0.+5"), None);
    }
}
