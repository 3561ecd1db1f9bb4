use super::ParseError;
use std::fmt;

/// An email address that passed a conservative syntax check (RFC 5321 lengths, one `@`,
/// a dotted domain, no spaces or control characters). The domain is stored lower-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses `raw` (surrounding white space is ignored).
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let value = raw.trim();
        let invalid = |why: &str| {
            Err(ParseError(format!(
                "'{value}' is not a valid email address: {why}"
            )))
        };
        if value.is_empty() {
            return invalid("it is empty");
        }
        if value.len() > 254 {
            return invalid("longer than 254 characters");
        }
        let Some((local, domain)) = value.rsplit_once('@') else {
            return invalid("no '@'");
        };
        if local.is_empty() || local.len() > 64 {
            return invalid("the part before '@' must be 1 to 64 characters");
        }
        if local.contains('@') && !(local.starts_with('"') && local.ends_with('"')) {
            return invalid("more than one '@'");
        }
        if value.chars().any(|c| {
            c.is_whitespace() || c.is_control() || c == ',' || c == ';' || c == '<' || c == '>'
        }) {
            return invalid("it contains spaces or characters not allowed in an address");
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return invalid("misplaced '.' before '@'");
        }
        // Checked as stored: lower-casing can change a domain (`İ` becomes `i` and a
        // combining dot, which is not a letter) and lengthen the address.
        let domain = domain.to_lowercase();
        if local.len() + 1 + domain.len() > 254 {
            return invalid("longer than 254 characters");
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2
            || labels.iter().any(|label| {
                label.is_empty()
                    || label.len() > 63
                    || label.starts_with('-')
                    || label.ends_with('-')
                    || !label.chars().all(|c| c.is_alphanumeric() || c == '-')
            })
        {
            return invalid("the domain must be dotted labels of letters, digits and '-'");
        }
        Ok(Self(format!("{local}@{domain}")))
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses_and_lowercases_the_domain() {
        assert_eq!(
            EmailAddress::parse(" Ann.Lee+x@Example.ORG ")
                .unwrap()
                .as_str(),
            "Ann.Lee+x@example.org"
        );
    }

    #[test]
    fn refuses_malformed_addresses() {
        for bad in [
            "",
            "plain",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            "a@-b.com",
            ".a@b.com",
            "a@b..com",
            "a@b.com>",
            // Lower-cased, `İ` is `i` and a combining dot: not a letter of a domain.
            "a@a.\u{130}",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad} should be refused");
        }
    }
}
