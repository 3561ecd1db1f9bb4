use super::ParseError;
use phonenumber::{Mode, country};
use std::{fmt, str::FromStr};

/// An ISO 3166 region used to read national phone numbers (a tenant's default region).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region(country::Id);

impl Region {
    /// Parses a two-letter region code such as `US` or `GB` (case-insensitive).
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        country::Id::from_str(&raw.trim().to_uppercase())
            .map(Self)
            .map_err(|_| {
                ParseError(format!(
                    "'{raw}' is not a known two-letter region code (e.g. US, GB, CA)"
                ))
            })
    }

    /// The two-letter code.
    pub fn code(&self) -> String {
        format!("{:?}", self.0)
    }
}

impl Default for Region {
    fn default() -> Self {
        Self(country::Id::US)
    }
}

/// A phone number in E.164 form (`+` and up to 15 digits), known to be a valid number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct PhoneE164(String);

impl PhoneE164 {
    /// Normalises `raw` with the `phonenumber` crate, reading national numbers in `region`.
    pub fn parse(raw: &str, region: Region) -> Result<Self, ParseError> {
        let value = raw.trim();
        if value.is_empty() {
            return Err(ParseError("the phone number is empty".into()));
        }
        // A number in international form is read without the region: `phonenumber` 0.3
        // strips the region's national prefix from it otherwise (read in US, `+44 121 496
        // 0000` lost its `1`, and `+33 1 00 00 00 00` could not be read at all).
        let international = value.starts_with('+') || value.starts_with('\u{FF0B}');
        let number = phonenumber::parse((!international).then_some(region.0), value)
            .map_err(|e| ParseError(format!("'{value}' cannot be read as a phone number ({e})")))?;
        let invalid = || {
            ParseError(format!(
                "'{value}' is not a valid phone number for region {}",
                region.code()
            ))
        };
        if !phonenumber::is_valid(&number) {
            return Err(invalid());
        }
        let e164 = number.format().mode(Mode::E164).to_string();
        // The metadata accepts some longer numbers (`+49 201 00000000000`); E.164 does not.
        if e164.len() > 16 {
            return Err(ParseError(format!(
                "'{value}' has more than the 15 digits of an international number"
            )));
        }
        // What is stored must read back as itself; `phonenumber` can judge a number valid
        // one way and not the other (`00 7 803 000 0000` read in GB, but not `+78030000000`).
        if international_form(&e164).as_deref() != Some(e164.as_str()) {
            return Err(invalid());
        }
        Ok(Self(e164))
    }

    /// The number as E.164 text, e.g. `+12025550123`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `text` read as an international number: its E.164 form when valid.
fn international_form(text: &str) -> Option<String> {
    phonenumber::parse(None, text)
        .ok()
        .filter(phonenumber::is_valid)
        .map(|number| number.format().mode(Mode::E164).to_string())
}

impl fmt::Display for PhoneE164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_national_and_international_forms() {
        let us = Region::parse("us").unwrap();
        assert_eq!(
            PhoneE164::parse("(202) 555-0123", us).unwrap().as_str(),
            "+12025550123"
        );
        assert_eq!(
            PhoneE164::parse("+44 20 7946 0958", us).unwrap().as_str(),
            "+442079460958"
        );
        // International numbers whose national number starts with the region's own
        // national prefix (`1` in the US) keep it.
        assert_eq!(
            PhoneE164::parse("+44 121 496 0000", us).unwrap().as_str(),
            "+441214960000"
        );
        assert_eq!(
            PhoneE164::parse("+33 1 42 68 53 00", us).unwrap().as_str(),
            "+33142685300"
        );
        let gb = Region::parse("GB").unwrap();
        assert_eq!(
            PhoneE164::parse("020 7946 0958", gb).unwrap().as_str(),
            "+442079460958"
        );
    }

    #[test]
    fn refuses_numbers_that_cannot_be_valid() {
        let us = Region::default();
        for bad in [
            "",
            "555-1234",
            "hello",
            "+1 000 000 0000",
            "+49 201 00000000000",
        ] {
            assert!(
                PhoneE164::parse(bad, us).is_err(),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn what_is_accepted_reads_back_as_itself() {
        let gb = Region::parse("GB").unwrap();
        // Valid for the metadata when dialled from the UK, not in international form.
        assert!(PhoneE164::parse("0078030000000", gb).is_err());
        let number = PhoneE164::parse("0044 20 7946 0958", gb).unwrap();
        assert_eq!(number.as_str(), "+442079460958");
        assert_eq!(PhoneE164::parse(number.as_str(), gb).unwrap(), number);
    }

    #[test]
    fn refuses_unknown_regions() {
        assert!(Region::parse("XX").is_err());
        assert_eq!(Region::parse("ca").unwrap().code(), "CA");
    }
}
