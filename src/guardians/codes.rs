//! One-time sign-in codes for guardians. A guardian types their email address or mobile
//! number; when it is on record for an active parent or guardian of the tenant, a random
//! 6-digit code goes to it through the outbox (a message kind of its own, queued ahead of
//! every other message: [`crate::outbox::store::enqueue_urgent`]). Whether or not it is on
//! record, the caller learns nothing: [`request`] answers the same way.
//!
//! A code belongs to the browser that asked for it (its *flow*: a random cookie, stored as
//! a SHA-256), works for `web.code_minutes`, once, and dies after `web.code_attempts` wrong
//! tries; asking again retires the flow's earlier codes (only the newest works). At most
//! `web.codes_per_address_per_15_minutes` codes go to one address in 15 minutes. The row
//! keeps the SHA-256 of a random salt and the code; the code itself only until the outbox
//! has sent it ([`SignInCodeMessages::finish_sent`] clears it).

use crate::db;
use crate::domain::{EmailAddress, PhoneE164, Region, TenantId};
use crate::i18n::{Arg, Locale};
use crate::outbox::port::{MessageKindHandler, Rendered};
use crate::outbox::store::{self, Claimed};
use crate::outbox::{Channel, MessageKind, Outgoing};
use chrono::{DateTime, Duration, Utc};
use ring::rand::{SecureRandom, SystemRandom};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult, Value};
use std::collections::HashMap;

/// The limits of sign-in codes (`web.code_minutes`, `web.code_attempts`,
/// `web.codes_per_address_per_15_minutes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeRules {
    /// Minutes a code works (at least 1).
    pub minutes: u32,
    /// Wrong tries after which it dies (at least 1).
    pub attempts: u32,
    /// Codes per address within 15 minutes (at least 1).
    pub per_address: u32,
}

impl CodeRules {
    /// The rules of `config`.
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            minutes: config.web.code_minutes.max(1),
            attempts: config.web.code_attempts.max(1),
            per_address: config.web.codes_per_address_per_15_minutes.max(1),
        }
    }
}

/// Where a guardian asks for their code: an email address or a mobile number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// An email address.
    Email(EmailAddress),
    /// A mobile number in E.164 form.
    Mobile(PhoneE164),
}

/// What the guardian typed is neither an email address nor a phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Enter your email address (like name@example.com) or your mobile number.")]
pub struct NotAnAddress;

impl Address {
    /// An email address when `raw` holds an `@`, else a phone number read in `region`.
    pub fn parse(raw: &str, region: Region) -> Result<Self, NotAnAddress> {
        let raw = raw.trim();
        if raw.contains('@') {
            EmailAddress::parse(raw)
                .map(Address::Email)
                .map_err(|_| NotAnAddress)
        } else {
            PhoneE164::parse(raw, region)
                .map(Address::Mobile)
                .map_err(|_| NotAnAddress)
        }
    }

    fn channel(&self) -> Channel {
        match self {
            Address::Email(_) => Channel::Email,
            Address::Mobile(_) => Channel::Sms,
        }
    }

    /// The address as looked up: an email in lower case, a number in E.164.
    fn key(&self) -> String {
        match self {
            Address::Email(email) => email.as_str().to_lowercase(),
            Address::Mobile(phone) => phone.as_str().to_string(),
        }
    }

    fn hash(&self) -> String {
        sha256(&format!("{}:{}", self.channel().as_str(), self.key()))
    }
}

/// A browser's sign-in flow: the random value of its flow cookie (43 characters,
/// base64url), which the forms also carry as their CSRF value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow(String);

impl Flow {
    /// A new random flow.
    pub fn new() -> Self {
        use base64::Engine;
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random::<32>()))
    }

    /// A flow from its cookie value, when it has the shape of one.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        (raw.len() == 43
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| Self(raw.to_string()))
    }

    /// The cookie value.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when `sent` (a form's CSRF field) is this flow's value (constant time).
    pub fn matches(&self, sent: &str) -> bool {
        same_secret(&self.0, sent.trim())
    }

    fn hash(&self) -> String {
        sha256(&self.0)
    }
}

impl Default for Flow {
    fn default() -> Self {
        Self::new()
    }
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system's random generator failed");
    bytes
}

/// Compares two secrets in time that depends on their lengths only.
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn sha256(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    crate::secrets::to_hex(digest.as_ref())
}

/// A uniformly random 6-digit code (rejection sampling: no digit is likelier).
fn new_code() -> String {
    const LIMIT: u32 = 4_294_000_000; // the largest multiple of 10^6 below 2^32
    loop {
        let value = u32::from_be_bytes(random::<4>());
        if value < LIMIT {
            return format!("{:06}", value % 1_000_000);
        }
    }
}

fn code_hash(salt: &str, code: &str) -> String {
    sha256(&format!("{salt}:{code}"))
}

/// What asking for a code did. The page says the same thing for each: only tests and logs
/// tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    /// A code is on its way.
    Sent,
    /// No active parent or guardian of the tenant has this address.
    NotOnRecord,
    /// This address had its codes for the last 15 minutes.
    Limited,
    /// A mobile number, but SMS is not configured.
    NoSms,
}

/// The guardian an address belongs to, and the address as on record.
#[derive(Debug, FromQueryResult)]
struct Guardian {
    id: i64,
    recipient: Option<String>,
}

/// An active parent or guardian of `tenant` with `address` (the lowest contact id when
/// several share it), through the (tenant, lower(email)) or (tenant, mobile_phone) index.
async fn guardian_with<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    address: &Address,
) -> Result<Option<Guardian>, DbErr> {
    let (column, matcher) = match address {
        Address::Email(_) => ("c.email", "lower(c.email) = $2"),
        Address::Mobile(_) => ("c.mobile_phone", "c.mobile_phone = $2"),
    };
    db::rows::query_one(
        conn,
        &format!(
            "SELECT c.id, {column} AS recipient FROM contacts c WHERE c.tenant_id = $1 AND {matcher} \
             AND EXISTS (SELECT 1 FROM student_contacts l WHERE l.tenant_id = $1 AND l.contact_id = c.id AND {}) \
             ORDER BY c.id LIMIT 1",
            crate::visible_link!("l")
        ),
        vec![Value::BigInt(Some(tenant.0)), address.key().into()],
    )
    .await
}

/// Sends a code to `address` for the browser `flow` when the address is on record for an
/// active parent or guardian of `tenant` and its limit allows (see the module docs).
pub async fn request(
    db_conn: &DatabaseConnection,
    tenant: TenantId,
    address: &Address,
    flow: &Flow,
    (rules, sms_enabled): (CodeRules, bool),
    now: DateTime<Utc>,
) -> Result<Requested, DbErr> {
    if matches!(address, Address::Mobile(_)) && !sms_enabled {
        return Ok(Requested::NoSms);
    }
    let txn = db::begin_write(db_conn).await?;
    // Codes expired a day ago are of no use, not even to the limit's count.
    db::exec(
        &txn,
        "DELETE FROM sign_in_codes WHERE expires_at < $1",
        vec![Value::ChronoDateTimeUtc(Some(now - Duration::days(1)))],
    )
    .await?;
    let Some(guardian) = guardian_with(&txn, tenant, address).await? else {
        txn.commit().await?;
        return Ok(Requested::NotOnRecord);
    };
    let recent = db::count(
        &txn,
        "SELECT COUNT(*) FROM sign_in_codes WHERE tenant_id = $1 AND address_hash = $2 AND created_at > $3",
        vec![
            Value::BigInt(Some(tenant.0)),
            address.hash().into(),
            Value::ChronoDateTimeUtc(Some(now - Duration::minutes(15))),
        ],
    )
    .await?;
    if recent >= i64::from(rules.per_address) {
        txn.commit().await?;
        return Ok(Requested::Limited);
    }
    // Only the newest code of a flow works.
    db::exec(
        &txn,
        "UPDATE sign_in_codes SET expires_at = $2, pending_code = NULL \
         WHERE flow_hash = $1 AND used_at IS NULL AND expires_at > $2",
        vec![flow.hash().into(), Value::ChronoDateTimeUtc(Some(now))],
    )
    .await?;
    let code = new_code();
    let salt = crate::secrets::to_hex(&random::<16>());
    let recipient = guardian.recipient.unwrap_or_else(|| address.key());
    let id = insert(
        &txn,
        NewCode {
            tenant,
            contact: guardian.id,
            address,
            flow,
            hash: code_hash(&salt, &code),
            salt,
            code,
            expires_at: now + Duration::minutes(i64::from(rules.minutes)),
        },
        now,
    )
    .await?;
    let to = (address.channel(), recipient.as_str());
    store::enqueue_urgent(&txn, tenant, MessageKind::SignInCode, id, to, now).await?;
    txn.commit().await?;
    Ok(Requested::Sent)
}

struct NewCode<'a> {
    tenant: TenantId,
    contact: i64,
    address: &'a Address,
    flow: &'a Flow,
    salt: String,
    hash: String,
    code: String,
    expires_at: DateTime<Utc>,
}

async fn insert<C: ConnectionTrait>(
    conn: &C,
    new: NewCode<'_>,
    now: DateTime<Utc>,
) -> Result<i64, DbErr> {
    use crate::entities::sign_in_codes;
    use sea_orm::{ActiveValue::Set, EntityTrait};
    let row = sign_in_codes::ActiveModel {
        tenant_id: Set(new.tenant.0),
        contact_id: Set(new.contact),
        channel: Set(new.address.channel().as_str().to_string()),
        address_hash: Set(new.address.hash()),
        flow_hash: Set(new.flow.hash()),
        salt: Set(new.salt),
        code_hash: Set(new.hash),
        pending_code: Set(Some(new.code)),
        attempts: Set(0),
        created_at: Set(now),
        expires_at: Set(new.expires_at),
        used_at: Set(None),
        ..Default::default()
    };
    Ok(sign_in_codes::Entity::insert(row)
        .exec(conn)
        .await?
        .last_insert_id)
}

/// What checking a code found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// The code was right: the guardian (tenant, contact id). It works no more.
    SignedIn(TenantId, i64),
    /// Not right, used, expired, out of tries, or no code for this browser: one answer.
    Refused,
}

/// The flow's live code (the newest one, unused, unexpired, with tries left).
#[derive(Debug, FromQueryResult)]
struct LiveCode {
    id: i64,
    tenant_id: i64,
    contact_id: i64,
    salt: String,
    code_hash: String,
}

/// Checks `code` against the browser `flow`'s live code: right, it is used up and the
/// guardian returned; wrong, one try is counted.
pub async fn verify(
    db_conn: &DatabaseConnection,
    flow: &Flow,
    code: &str,
    rules: CodeRules,
    now: DateTime<Utc>,
) -> Result<Verified, DbErr> {
    let txn = db::begin_write(db_conn).await?;
    let live: Option<LiveCode> = db::rows::query_one(
        &txn,
        "SELECT id, tenant_id, contact_id, salt, code_hash FROM sign_in_codes \
         WHERE flow_hash = $1 AND used_at IS NULL AND expires_at > $2 AND attempts < $3 \
         ORDER BY id DESC LIMIT 1",
        vec![
            flow.hash().into(),
            Value::ChronoDateTimeUtc(Some(now)),
            Value::BigInt(Some(i64::from(rules.attempts))),
        ],
    )
    .await?;
    let Some(live) = live else {
        txn.commit().await?;
        return Ok(Verified::Refused);
    };
    let right = same_secret(&code_hash(&live.salt, code.trim()), &live.code_hash);
    let id = Value::BigInt(Some(live.id));
    let changed = if right {
        db::exec(
            &txn,
            "UPDATE sign_in_codes SET used_at = $2, pending_code = NULL WHERE id = $1 AND used_at IS NULL",
            vec![id, Value::ChronoDateTimeUtc(Some(now))],
        )
        .await?
    } else {
        db::exec(
            &txn,
            "UPDATE sign_in_codes SET attempts = attempts + 1 WHERE id = $1",
            vec![id],
        )
        .await?
    }
    .rows_affected();
    txn.commit().await?;
    Ok(if right && changed == 1 {
        Verified::SignedIn(TenantId(live.tenant_id), live.contact_id)
    } else {
        Verified::Refused
    })
}

/// A claimed code message, as stored.
#[derive(Debug, FromQueryResult)]
struct CodeRow {
    id: i64,
    tenant_id: i64,
    pending_code: Option<String>,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
    district: Option<String>,
    preferred_language: Option<String>,
    default_language: Option<String>,
}

/// The sign-in code kind of outbox message: rendered at send time while the code still
/// works (else [`Rendered::Gone`]); once sent, the code is wiped from its row.
#[derive(Debug, Clone)]
pub struct SignInCodeMessages {
    sms_sender: String,
    message_id_domain: String,
}

impl SignInCodeMessages {
    /// Code messages whose texts open with `sms_sender` (`sms.sender_name`) and whose ids
    /// end in `message_id_domain` (`mail.message_id_domain`).
    pub fn new(sms_sender: String, message_id_domain: String) -> Self {
        Self {
            sms_sender,
            message_id_domain,
        }
    }

    /// The message in the guardian's language (else the district's), like every message
    /// to them.
    fn compose(&self, claimed: &Claimed, row: &CodeRow, code: &str) -> Outgoing {
        let l = Locale::negotiate(
            row.preferred_language.as_deref(),
            row.default_language.as_deref(),
        );
        let minutes = (row.expires_at - row.created_at).num_minutes().max(1);
        let district = row.district.as_deref().unwrap_or_default();
        let (subject, body) = code_texts(
            l,
            claimed.channel,
            (code, minutes),
            (district, &self.sms_sender),
        );
        Outgoing {
            message_id: crate::outbox::message_id(claimed.id, &self.message_id_domain),
            to: claimed.recipient.clone(),
            subject,
            body,
            list_unsubscribe: None,
            language: Some(l.tag()),
        }
    }
}

/// The subject (email only) and plain-text body of a code message in `l`: `code`, good
/// for `minutes`, from `district`; a text opens with `sender`.
fn code_texts(
    l: Locale,
    channel: Channel,
    (code, minutes): (&str, i64),
    (district, sender): (&str, &str),
) -> (Option<String>, String) {
    let args = [
        ("code", Arg::Text(code)),
        ("minutes", Arg::Number(minutes as f64)),
        ("district", Arg::Text(district)),
        ("sender", Arg::Text(sender)),
    ];
    match channel {
        Channel::Email => (
            Some(l.text("code-email-subject")),
            [
                l.text("code-email-hello"),
                l.format("code-email-intro", &args),
                code.to_string(),
                l.format("code-email-how", &args),
                l.text("code-email-ignore"),
            ]
            .join("\n\n"),
        ),
        Channel::Sms => (None, l.format("code-sms", &args)),
    }
}

#[async_trait::async_trait]
impl MessageKindHandler for SignInCodeMessages {
    fn kind(&self) -> MessageKind {
        MessageKind::SignInCode
    }

    async fn render(
        &self,
        db: &DatabaseConnection,
        claimed: &[&Claimed],
    ) -> Result<HashMap<i64, Rendered>, DbErr> {
        let mut out: HashMap<i64, Rendered> =
            claimed.iter().map(|c| (c.id, Rendered::Gone)).collect();
        if claimed.is_empty() {
            return Ok(out);
        }
        let by_code: HashMap<i64, &Claimed> = claimed.iter().map(|c| (c.ref_id, *c)).collect();
        let rows: Vec<CodeRow> = db::rows::query_as(
            db,
            &format!(
                "SELECT k.id, k.tenant_id, k.pending_code, k.created_at, k.expires_at, k.used_at, t.name AS district, \
                   c.preferred_language, ts.default_language \
                 FROM sign_in_codes k JOIN tenants t ON t.id = k.tenant_id \
                 LEFT JOIN contacts c ON c.id = k.contact_id AND c.tenant_id = k.tenant_id \
                 LEFT JOIN tenant_settings ts ON ts.tenant_id = k.tenant_id \
                 WHERE k.id IN ({})",
                db::id_list(by_code.keys().copied())
            ),
            vec![],
        )
        .await?;
        let now = Utc::now();
        for row in rows {
            let Some(claimed) = by_code.get(&row.id) else {
                continue;
            };
            // A code that no longer works is not worth sending; never cross tenants.
            let live = row.used_at.is_none() && row.expires_at > now;
            match (&row.pending_code, live) {
                (Some(code), true) if TenantId(row.tenant_id) == claimed.tenant_id => {
                    out.insert(
                        claimed.id,
                        Rendered::Ready(self.compose(claimed, &row, code)),
                    );
                }
                _ => {}
            }
        }
        Ok(out)
    }

    async fn finish_sent(
        &self,
        txn: &db::WriteTxn,
        held: &[crate::outbox::store::Hold],
        now: DateTime<Utc>,
    ) -> Result<u64, DbErr> {
        if !held.is_empty() {
            db::exec(
                txn,
                &format!(
                    "UPDATE sign_in_codes SET pending_code = NULL WHERE id IN \
                     (SELECT ref_id FROM outbox WHERE kind = {} AND id IN ({}))",
                    crate::outbox_kind!(SignInCode),
                    db::id_list(held.iter().map(|h| h.id))
                ),
                vec![],
            )
            .await?;
        }
        store::record_sent(txn, held, now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_stored_salted() {
        let code = new_code();
        assert_eq!(code.len(), 6);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        assert_ne!(code_hash("a", &code), code_hash("b", &code));
        assert_eq!(code_hash("a", &code).len(), 64);
    }

    #[test]
    fn an_address_is_an_email_or_a_mobile_number() {
        let us = Region::parse("US").unwrap();
        assert!(matches!(
            Address::parse(" Linda.Ng@Example.com ", us),
            Ok(Address::Email(_))
        ));
        assert_eq!(
            Address::parse("Linda.Ng@Example.com", us).unwrap().key(),
            "linda.ng@example.com"
        );
        match Address::parse("(202) 555-0177", us) {
            Ok(Address::Mobile(phone)) => assert_eq!(phone.as_str(), "+12025550177"),
            other => panic!("{other:?}"),
        }
        assert_eq!(Address::parse("hello", us), Err(NotAnAddress));
        assert_eq!(Address::parse("", us), Err(NotAnAddress));
    }

    #[test]
    fn a_flow_is_random_and_matches_only_itself() {
        let flow = Flow::new();
        assert_eq!(Flow::parse(flow.as_str()), Some(flow.clone()));
        assert!(flow.matches(flow.as_str()));
        assert!(!flow.matches(Flow::new().as_str()));
        assert!(!flow.matches(""));
        assert_eq!(Flow::parse("short"), None);
    }

    #[test]
    fn messages_are_plain_text_in_the_guardians_language() {
        let english = Locale::ENGLISH;
        let (subject, email) = code_texts(
            english,
            Channel::Email,
            ("012345", 10),
            ("NYC & Co", "Parent Connection"),
        );
        assert_eq!(
            subject.as_deref(),
            Some("Your Parent Connection sign-in code")
        );
        assert!(
            email.contains("\n\n012345\n\n") && email.contains("(NYC & Co)"),
            "{email}"
        );
        assert!(email.contains("for 10 minutes"), "{email}");
        let (_, sms) = code_texts(
            english,
            Channel::Sms,
            ("012345", 1),
            ("NYC", "Parent Connection"),
        );
        assert_eq!(
            sms,
            "Parent Connection: your sign-in code is 012345. It works once, for 1 minute. Reply STOP to opt out."
        );
        let spanish = Locale::find("es").unwrap();
        let (subject, email) = code_texts(spanish, Channel::Email, ("012345", 10), ("NYC", "PC"));
        assert_eq!(
            subject.as_deref(),
            Some("Su código para iniciar sesión en Parent Connection")
        );
        assert!(email.contains("durante 10 minutos"), "{email}");
        let (_, sms) = code_texts(
            spanish,
            Channel::Sms,
            ("012345", 10),
            ("NYC", "Parent Connection"),
        );
        assert!(sms.starts_with("Parent Connection: su código") && sms.contains("STOP"));
        // One GSM-7 segment in English (accented Spanish is UCS-2: the gateway splits it).
        let (_, sms) = code_texts(
            english,
            Channel::Sms,
            ("012345", 10),
            ("NYC", "Parent Connection"),
        );
        assert!(sms.chars().count() <= 160, "one segment: {sms}");
    }
}
