use super::ParseError;
use std::fmt;

/// The database id of a tenant (a school district). Every query is scoped by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct TenantId(pub i64);

/// A tenant's short name used on the command line and in URLs: 1–63 characters of
/// lower-case letters, digits and `-`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct TenantSlug(String);

impl TenantSlug {
    /// Parses a slug.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let ok = !raw.is_empty()
            && raw.len() <= 63
            && raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !raw.starts_with('-');
        if ok {
            Ok(Self(raw.to_string()))
        } else {
            Err(ParseError(format!(
                "'{raw}' is not a valid tenant slug: use 1-63 lower-case letters, digits and '-'"
            )))
        }
    }

    /// The slug as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert!(TenantSlug::parse("nyc-doe").is_ok());
        assert!(TenantSlug::parse("NYC").is_err());
        assert!(TenantSlug::parse("-x").is_err());
        assert!(TenantSlug::parse("").is_err());
    }
}
