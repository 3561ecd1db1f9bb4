//! How a person is named to others.

/// Display name: "Given Family", else the email, else the phone.
pub fn display_name(
    given: Option<&str>,
    family: Option<&str>,
    email: Option<&str>,
    phone: Option<&str>,
) -> String {
    let name = [given, family]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if !name.is_empty() {
        return name;
    }
    email.or(phone).unwrap_or("(no name)").to_string()
}
