//! A language a person reads, as a BCP 47 tag (RFC 5646): `es`, `pt-BR`, `zh-Hant`,
//! `sr-Latn-RS`. Parsed into its canonical case (language lower, script title, region
//! upper); private-use and grandfathered tags, and extensions, are refused, as no
//! translation would ever match them.

use super::ParseError;

/// A BCP 47 language tag: language, optional script, optional region, optional variants.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LanguageTag(String);

impl LanguageTag {
    /// Parses a tag, in any case, with `-` or `_` between subtags (nothing around it: callers
    /// trim what people typed).
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let invalid = |why: &str| {
            ParseError(format!(
                "'{raw}' is not a BCP 47 language tag ({why}); e.g. en, es, pt-BR, zh-Hant"
            ))
        };
        if raw.is_empty() || raw.len() > 35 {
            return Err(invalid("empty or too long"));
        }
        let mut parts = raw.split(['-', '_']);
        let language = parts.next().unwrap_or_default();
        if !(2..=3).contains(&language.len()) && !(5..=8).contains(&language.len())
            || !language.bytes().all(|b| b.is_ascii_alphabetic())
        {
            return Err(invalid("the language is 2 or 3 letters"));
        }
        let mut tag = language.to_ascii_lowercase();
        let mut seen_script = false;
        let mut seen_region = false;
        for part in parts {
            let alpha = part.bytes().all(|b| b.is_ascii_alphabetic());
            let digits = part.bytes().all(|b| b.is_ascii_digit());
            let alnum = part.bytes().all(|b| b.is_ascii_alphanumeric());
            tag.push('-');
            if part.len() == 4 && alpha && !seen_script && !seen_region {
                seen_script = true;
                tag.push_str(&part[..1].to_ascii_uppercase());
                tag.push_str(&part[1..].to_ascii_lowercase());
            } else if ((part.len() == 2 && alpha) || (part.len() == 3 && digits)) && !seen_region {
                seen_region = true;
                seen_script = true;
                tag.push_str(&part.to_ascii_uppercase());
            } else if alnum
                && ((5..=8).contains(&part.len())
                    || (part.len() == 4 && part.as_bytes()[0].is_ascii_digit()))
            {
                seen_script = true;
                seen_region = true;
                tag.push_str(&part.to_ascii_lowercase());
            } else {
                return Err(invalid(&format!(
                    "'{part}' is not a script, region or variant"
                )));
            }
        }
        Ok(Self(tag))
    }

    /// Parses the language column of an SIS file, which holds a BCP 47 tag, an ISO 639-2/3
    /// code or an English language name depending on the SIS (`es`, `spa`, `Spanish`): names
    /// and three-letter codes of the languages most spoken in US districts' homes are mapped
    /// to their BCP 47 tag (so `spa` finds the Spanish translation); anything else must be a
    /// tag. Surrounding blanks are ignored.
    pub fn from_sis(raw: &str) -> Result<Self, ParseError> {
        let raw = raw.trim();
        let known = SIS_LANGUAGES.iter().find(|(tag, codes, name)| {
            raw.eq_ignore_ascii_case(name)
                || codes.iter().any(|c| raw.eq_ignore_ascii_case(c))
                || raw.eq_ignore_ascii_case(tag)
        });
        match known {
            Some((tag, _, _)) => Self::parse(tag),
            None => Self::parse(raw),
        }
    }

    /// The canonical tag.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The language subtag alone (`pt-BR` → `pt`).
    pub fn language(&self) -> &str {
        self.0.split('-').next().unwrap_or(&self.0)
    }
}

/// Languages SIS exports name in words or by ISO 639-2/3 code: (BCP 47 tag, codes, English
/// name). The home languages most reported by large US districts (New York City's list of
/// translated notices among them).
const SIS_LANGUAGES: &[(&str, &[&str], &str)] = &[
    ("en", &["eng"], "English"),
    ("es", &["spa"], "Spanish"),
    ("zh", &["zho", "chi", "cmn"], "Chinese"),
    ("zh", &[], "Mandarin"),
    ("yue", &[], "Cantonese"),
    ("ar", &["ara"], "Arabic"),
    ("bn", &["ben"], "Bengali"),
    ("ru", &["rus"], "Russian"),
    ("ht", &["hat"], "Haitian Creole"),
    ("fr", &["fra", "fre"], "French"),
    ("ur", &["urd"], "Urdu"),
    ("ko", &["kor"], "Korean"),
    ("vi", &["vie"], "Vietnamese"),
    ("pl", &["pol"], "Polish"),
    ("pt", &["por"], "Portuguese"),
    ("pa", &["pan"], "Punjabi"),
    ("tl", &["tgl"], "Tagalog"),
    ("so", &["som"], "Somali"),
    ("hi", &["hin"], "Hindi"),
    ("ja", &["jpn"], "Japanese"),
    ("de", &["deu", "ger"], "German"),
    ("it", &["ita"], "Italian"),
    ("sq", &["sqi", "alb"], "Albanian"),
    ("ne", &["nep"], "Nepali"),
    ("uk", &["ukr"], "Ukrainian"),
    ("uz", &["uzb"], "Uzbek"),
    ("fa", &["fas", "per"], "Persian"),
    ("fa", &[], "Farsi"),
    ("ps", &["pus"], "Pashto"),
    ("sw", &["swa"], "Swahili"),
    ("fuf", &[], "Pular"),
    ("wo", &["wol"], "Wolof"),
    ("hmn", &[], "Hmong"),
    ("km", &["khm"], "Khmer"),
    ("my", &["mya", "bur"], "Burmese"),
    ("ti", &["tir"], "Tigrinya"),
    ("am", &["amh"], "Amharic"),
    ("el", &["ell", "gre"], "Greek"),
    ("he", &["heb"], "Hebrew"),
    ("yi", &["yid"], "Yiddish"),
    ("tr", &["tur"], "Turkish"),
];

impl std::fmt::Display for LanguageTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_parse_into_their_canonical_case() {
        for (raw, canonical) in [
            ("es", "es"),
            ("EN", "en"),
            ("pt-br", "pt-BR"),
            ("pt_BR", "pt-BR"),
            ("zh-hant", "zh-Hant"),
            ("zh-hant-tw", "zh-Hant-TW"),
            ("sr-Latn-RS", "sr-Latn-RS"),
            ("es-419", "es-419"),
            ("yue", "yue"),
            ("de-CH-1996", "de-CH-1996"),
        ] {
            assert_eq!(
                LanguageTag::parse(raw).unwrap().as_str(),
                canonical,
                "{raw}"
            );
        }
        assert_eq!(LanguageTag::parse("pt-BR").unwrap().language(), "pt");
    }

    #[test]
    fn sis_columns_may_name_the_language_or_give_its_iso_639_2_code() {
        for (raw, tag) in [
            ("Spanish", "es"),
            ("spa", "es"),
            (" SPANISH ", "es"),
            ("es-MX", "es-MX"),
            ("Haitian Creole", "ht"),
            ("chi", "zh"),
            ("Cantonese", "yue"),
            ("ben", "bn"),
            ("pt_br", "pt-BR"),
        ] {
            assert_eq!(LanguageTag::from_sis(raw).unwrap().as_str(), tag, "{raw}");
        }
        assert!(LanguageTag::from_sis("Klingon!").is_err());
        assert!(LanguageTag::from_sis("").is_err());
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "e",
            "spanish!",
            "x-klingon",
            "es-",
            "es--MX",
            "en-US-US",
            "es-Latn-Latn",
            "i-default",
            "en-a-bbb",
            "1234",
            "es MX",
            " es",
            "en-US-Latn",
        ] {
            assert!(LanguageTag::parse(bad).is_err(), "{bad}");
        }
    }
}
