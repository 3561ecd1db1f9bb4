//! A teacher's submission, parsed: the body of
//! `POST /api/v1/students/{sourceId}/contact-requests` becomes a [`Proposal`] whose emails
//! are valid, whose phones are E.164 (read with the tenant's region) and whose relationship
//! is in the vocabulary, or an error naming the field.

use super::ApprovalError;
use crate::domain::{EmailAddress, PhoneE164, Region, Relationship};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Longest accepted name, in characters.
const MAX_NAME_CHARS: usize = 200;

/// What a request proposes (stored as `contact_requests.action`).
pub use crate::domain::RequestAction as Action;

/// The JSON body of a submission.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestBody {
    /// `add`, `update` or `remove`.
    pub action: String,
    /// The contact to update or remove (its `id` in the contact views).
    pub contact_id: Option<String>,
    /// The proposed values (`add`: the new contact; `update`: only the fields to change,
    /// an empty string clears a field).
    pub contact: Option<ContactBody>,
}

/// Proposed contact values as sent.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContactBody {
    /// Given name.
    pub given_name: Option<String>,
    /// Family name.
    pub family_name: Option<String>,
    /// Email address.
    pub email_address: Option<String>,
    /// Mobile phone, national (read with the tenant's region) or international.
    pub mobile_phone: Option<String>,
    /// `parent`, `guardian`, `relative`, `aide`, `doctor`, `child` or `other`.
    pub relationship: Option<String>,
}

/// A change to one field: `None` leaves it, `Some(None)` clears it, `Some(Some(v))` sets it.
pub type FieldChange<T> = Option<Option<T>>;

/// Parsed proposed values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactFields {
    /// Given name.
    pub given_name: FieldChange<String>,
    /// Family name.
    pub family_name: FieldChange<String>,
    /// Email.
    pub email: FieldChange<EmailAddress>,
    /// E.164 mobile.
    pub mobile_phone: FieldChange<PhoneE164>,
    /// Relationship (never cleared).
    pub relationship: Option<Relationship>,
}

/// A valid submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// What to do.
    pub action: Action,
    /// The contact concerned (update, remove).
    pub contact_id: Option<i64>,
    /// The proposed values (add, update).
    pub fields: ContactFields,
}

fn invalid(field: &str, message: impl Into<String>) -> ApprovalError {
    ApprovalError::InvalidField {
        field: field.to_string(),
        message: message.into(),
    }
}

/// A trimmed name; an empty one clears the field.
fn name(field: &str, raw: Option<&String>) -> Result<FieldChange<String>, ApprovalError> {
    let Some(raw) = raw else { return Ok(None) };
    let value = raw.trim();
    if value.chars().count() > MAX_NAME_CHARS {
        return Err(invalid(
            field,
            format!("at most {MAX_NAME_CHARS} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(field, "control characters are not allowed"));
    }
    Ok(Some((!value.is_empty()).then(|| value.to_string())))
}

/// Parses a field with `parse`; an empty value clears it.
fn parsed<T>(
    field: &str,
    raw: Option<&String>,
    parse: impl FnOnce(&str) -> Result<T, crate::domain::ParseError>,
) -> Result<FieldChange<T>, ApprovalError> {
    match raw.map(|r| r.trim()) {
        None => Ok(None),
        Some("") => Ok(Some(None)),
        Some(value) => parse(value)
            .map(|v| Some(Some(v)))
            .map_err(|e| invalid(field, e.0)),
    }
}

impl ContactFields {
    fn parse(body: &ContactBody, region: Region) -> Result<Self, ApprovalError> {
        let relationship = match body.relationship.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => {
                Some(Relationship::parse(raw).map_err(|e| invalid("contact.relationship", e.0))?)
            }
        };
        Ok(Self {
            given_name: name("contact.givenName", body.given_name.as_ref())?,
            family_name: name("contact.familyName", body.family_name.as_ref())?,
            email: parsed(
                "contact.emailAddress",
                body.email_address.as_ref(),
                EmailAddress::parse,
            )?,
            mobile_phone: parsed("contact.mobilePhone", body.mobile_phone.as_ref(), |raw| {
                PhoneE164::parse(raw, region)
            })?,
            relationship,
        })
    }

    /// True when no field is proposed.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The proposed values as stored and shown: only the proposed fields, `null` for a
    /// cleared one.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        let mut put = |key: &str, change: Option<Option<&str>>| {
            if let Some(value) = change {
                map.insert(key.into(), json!(value));
            }
        };
        put("givenName", self.given_name.as_ref().map(|v| v.as_deref()));
        put(
            "familyName",
            self.family_name.as_ref().map(|v| v.as_deref()),
        );
        put(
            "emailAddress",
            self.email.as_ref().map(|v| v.as_ref().map(|e| e.as_str())),
        );
        put(
            "mobilePhone",
            self.mobile_phone
                .as_ref()
                .map(|v| v.as_ref().map(|p| p.as_str())),
        );
        put("relationship", self.relationship.map(|r| Some(r.as_str())));
        Value::Object(map)
    }

    /// Reads back what [`ContactFields::to_json`] stored (values were valid when stored).
    pub fn from_json(value: &Value, region: Region) -> Result<Self, ApprovalError> {
        let text = |key: &str| -> Option<String> {
            value
                .get(key)
                .map(|v| v.as_str().unwrap_or_default().to_string())
        };
        Self::parse(
            &ContactBody {
                given_name: text("givenName"),
                family_name: text("familyName"),
                email_address: text("emailAddress"),
                mobile_phone: text("mobilePhone"),
                relationship: text("relationship"),
            },
            region,
        )
    }
}

impl Proposal {
    /// Parses a submission; phones are read with the tenant's `region`.
    pub fn parse(body: &RequestBody, region: Region) -> Result<Self, ApprovalError> {
        let action = Action::parse(body.action.trim()).ok_or_else(|| {
            invalid(
                "action",
                format!(
                    "'{}' is not an action; use add, update or remove",
                    body.action
                ),
            )
        })?;
        let contact_id = match (&body.contact_id, action) {
            (Some(_), Action::Add) => {
                return Err(invalid(
                    "contactId",
                    "an add proposes a new contact: leave contactId out",
                ));
            }
            (None, Action::Update | Action::Remove) => {
                return Err(invalid(
                    "contactId",
                    format!("required for {}", action.as_str()),
                ));
            }
            (None, Action::Add) => None,
            (Some(raw), _) => Some(
                raw.trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|id| *id > 0)
                    .ok_or_else(|| invalid("contactId", format!("'{raw}' is not a contact id")))?,
            ),
        };
        let fields = match (&body.contact, action) {
            (Some(_), Action::Remove) => {
                return Err(invalid(
                    "contact",
                    "a removal takes no contact values: leave contact out",
                ));
            }
            (None, Action::Remove) => ContactFields::default(),
            (None, _) => return Err(invalid("contact", "required for add and update")),
            (Some(contact), _) => ContactFields::parse(contact, region)?,
        };
        if action == Action::Add {
            if fields.relationship.is_none() {
                return Err(invalid(
                    "contact.relationship",
                    "required for a new contact",
                ));
            }
            let email = fields.email.clone().flatten();
            let phone = fields.mobile_phone.clone().flatten();
            if email.is_none() && phone.is_none() {
                return Err(invalid(
                    "contact.emailAddress",
                    "a new contact needs an email address or a mobile phone",
                ));
            }
        }
        if action == Action::Update && fields.is_empty() {
            return Err(invalid("contact", "name at least one field to change"));
        }
        Ok(Self {
            action,
            contact_id,
            fields,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(action: &str, contact_id: Option<&str>, contact: Option<ContactBody>) -> RequestBody {
        RequestBody {
            action: action.into(),
            contact_id: contact_id.map(Into::into),
            contact,
        }
    }

    fn field_of(result: Result<Proposal, ApprovalError>) -> String {
        match result {
            Err(ApprovalError::InvalidField { field, .. }) => field,
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    #[test]
    fn an_add_normalises_phone_and_email() {
        let proposal = Proposal::parse(
            &body(
                "add",
                None,
                Some(ContactBody {
                    given_name: Some(" Ana ".into()),
                    email_address: Some("Ana@Example.COM".into()),
                    mobile_phone: Some("(202) 555-0143".into()),
                    relationship: Some("Guardian".into()),
                    ..Default::default()
                }),
            ),
            Region::default(),
        )
        .unwrap();
        assert_eq!(proposal.fields.given_name, Some(Some("Ana".into())));
        assert_eq!(
            proposal.fields.mobile_phone.flatten().unwrap().as_str(),
            "+12025550143"
        );
        assert_eq!(
            proposal.fields.email.flatten().unwrap().as_str(),
            "Ana@example.com"
        );
    }

    #[test]
    fn bad_fields_are_named() {
        let update = |contact: ContactBody| body("update", Some("1"), Some(contact));
        let cases = [
            (body("paint", None, None), "action"),
            (
                update(ContactBody {
                    email_address: Some("nope".into()),
                    ..Default::default()
                }),
                "contact.emailAddress",
            ),
            (
                update(ContactBody {
                    mobile_phone: Some("555-12".into()),
                    ..Default::default()
                }),
                "contact.mobilePhone",
            ),
            (
                update(ContactBody {
                    relationship: Some("uncle".into()),
                    ..Default::default()
                }),
                "contact.relationship",
            ),
            (body("remove", None, None), "contactId"),
            (body("remove", Some("x"), None), "contactId"),
            (
                body(
                    "add",
                    None,
                    Some(ContactBody {
                        given_name: Some("A".into()),
                        relationship: Some("parent".into()),
                        ..Default::default()
                    }),
                ),
                "contact.emailAddress",
            ),
            (update(ContactBody::default()), "contact"),
        ];
        for (request, field) in cases {
            assert_eq!(
                field_of(Proposal::parse(&request, Region::default())),
                field
            );
        }
    }

    #[test]
    fn stored_fields_read_back_the_same() {
        let fields = ContactFields {
            given_name: Some(Some("Ana".into())),
            family_name: Some(None),
            email: None,
            mobile_phone: Some(Some(
                PhoneE164::parse("+12025550143", Region::default()).unwrap(),
            )),
            relationship: Some(Relationship::Parent),
        };
        let back = ContactFields::from_json(&fields.to_json(), Region::default()).unwrap();
        assert_eq!(back, fields);
    }
}
