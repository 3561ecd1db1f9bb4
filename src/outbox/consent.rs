//! SMS consent (CTIA): who replied STOP to which sending number. An opt-out belongs to the
//! pair (sending number, recipient), not to a tenant: every tenant that sends from the
//! shared number stops texting a recipient who replied STOP to it. The pair is stored only
//! as a keyed hash ([`Purpose::SmsOptOut`] over `"<sender>|<recipient E.164>"`), so an
//! opt-out outlives the contact's erasure without keeping the number.

use crate::db;
use crate::privacy::{PrivacyKey, Purpose};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult, Value};
use std::sync::Arc;

/// Opt-outs of texts from one sending number (`sms.from`), read and written through
/// their keyed hashes.
#[derive(Clone, Debug)]
pub struct OptOuts {
    key: Arc<PrivacyKey>,
    sender: String,
}

impl OptOuts {
    /// The opt-outs of texts from `sender` (the configured `sms.from`), hashed with `key`.
    pub fn new(key: Arc<PrivacyKey>, sender: &str) -> Self {
        Self {
            key,
            sender: sender.trim().to_string(),
        }
    }

    /// The opt-outs of the configured sender, or `None` when SMS is off (`SMS_URL` unset):
    /// what the invitations' channel choice needs.
    pub fn texting(config: &crate::config::Config, key: &Arc<PrivacyKey>) -> Option<Self> {
        (!config.sms.url.trim().is_empty()).then(|| Self::new(key.clone(), &config.sms.from))
    }

    /// The same key for another sending number (an inbound reply to another number).
    pub fn for_sender(&self, sender: &str) -> Self {
        Self::new(self.key.clone(), sender)
    }

    /// The sending number these opt-outs are about.
    pub fn sender(&self) -> &str {
        &self.sender
    }

    /// The keyed hash of (this sender, `recipient` in E.164).
    pub fn hash(&self, recipient: &str) -> String {
        pair_hash(&self.key, &self.sender, recipient)
    }

    /// True when `recipient` replied STOP to this sender, or to any sender before opt-outs
    /// were kept per sender (and not START since).
    pub async fn opted_out<C: ConnectionTrait>(
        &self,
        conn: &C,
        recipient: &str,
    ) -> Result<bool, DbErr> {
        db::exists(
            conn,
            "SELECT COUNT(*) FROM sms_opt_outs WHERE key_hash IN ($1, $2) OR legacy_phone = $3",
            vec![
                self.hash(recipient).into(),
                pair_hash(&self.key, ANY_SENDER, recipient).into(),
                recipient.trim().into(),
            ],
        )
        .await
    }

    /// Records that `recipient` replied STOP (once; the first reply's time is kept).
    /// True when it was not opted out before.
    pub async fn opt_out<C: ConnectionTrait>(
        &self,
        conn: &C,
        recipient: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, DbErr> {
        Ok(db::exec(
            conn,
            "INSERT INTO sms_opt_outs (key_hash, opted_out_at) VALUES ($1, $2) \
             ON CONFLICT (key_hash) DO NOTHING",
            vec![
                self.hash(recipient).into(),
                Value::ChronoDateTimeUtc(Some(now)),
            ],
        )
        .await?
        .rows_affected()
            > 0)
    }

    /// Forgets `recipient`'s opt-out (it replied START), also one from before opt-outs were
    /// kept per sender. True when there was one.
    pub async fn opt_in<C: ConnectionTrait>(
        &self,
        conn: &C,
        recipient: &str,
    ) -> Result<bool, DbErr> {
        Ok(db::exec(
            conn,
            "DELETE FROM sms_opt_outs WHERE key_hash IN ($1, $2) OR legacy_phone = $3",
            vec![
                self.hash(recipient).into(),
                pair_hash(&self.key, ANY_SENDER, recipient).into(),
                recipient.trim().into(),
            ],
        )
        .await?
        .rows_affected()
            > 0)
    }

    /// Hashes the opt-outs kept from before the hashes (`legacy_phone`, see migration
    /// 000021), a batch per transaction; returns how many. They were per tenant, before
    /// opt-outs were kept per sender: each becomes an opt-out from every sender.
    pub async fn convert_legacy(&self, db_conn: &DatabaseConnection) -> Result<u64, DbErr> {
        const BATCH: u64 = 500;
        let mut total = 0;
        loop {
            let txn = db::begin_write(db_conn).await?;
            let rows: Vec<Legacy> = db::rows::query_as(
                &txn,
                &format!(
                    "SELECT id, legacy_phone FROM sms_opt_outs \
                     WHERE legacy_phone IS NOT NULL ORDER BY id LIMIT {BATCH}"
                ),
                vec![],
            )
            .await?;
            for row in &rows {
                hash_legacy(&txn, &self.key, (row.id, &row.legacy_phone)).await?;
            }
            txn.commit().await?;
            total += rows.len() as u64;
            if (rows.len() as u64) < BATCH {
                return Ok(total);
            }
        }
    }
}

/// The sender of opt-outs from before they were kept per sender: every sender.
const ANY_SENDER: &str = "";

/// The keyed hash of (`sender`, `recipient`).
fn pair_hash(key: &PrivacyKey, sender: &str, recipient: &str) -> String {
    let pair = format!("{}|{}", sender.trim(), recipient.trim());
    key.hash(Purpose::SmsOptOut, &pair)
}

/// Replaces the number of legacy row `id` by its any-sender hash (or drops the row when
/// that hash is stored already).
async fn hash_legacy<C: ConnectionTrait>(
    conn: &C,
    key: &PrivacyKey,
    (id, phone): (i64, &str),
) -> Result<(), DbErr> {
    let hash = pair_hash(key, ANY_SENDER, phone);
    let taken = db::exists(
        conn,
        "SELECT COUNT(*) FROM sms_opt_outs WHERE key_hash = $1",
        vec![hash.clone().into()],
    )
    .await?;
    let (sql, values) = if taken {
        (
            "DELETE FROM sms_opt_outs WHERE id = $1",
            vec![Value::BigInt(Some(id))],
        )
    } else {
        (
            "UPDATE sms_opt_outs SET key_hash = $2, legacy_phone = NULL WHERE id = $1",
            vec![Value::BigInt(Some(id)), hash.into()],
        )
    };
    db::exec(conn, sql, values).await.map(|_| ())
}

/// Hashes the opt-out of `phone` kept from before the hashes, if any, in the caller's
/// transaction: an erasure keeps the opt-out but not the number (docs/privacy.md).
pub async fn forget_number<C: ConnectionTrait>(
    conn: &C,
    key: &PrivacyKey,
    phone: &str,
) -> Result<(), DbErr> {
    let rows: Vec<Legacy> = db::rows::query_as(
        conn,
        "SELECT id, legacy_phone FROM sms_opt_outs WHERE legacy_phone = $1",
        vec![phone.trim().into()],
    )
    .await?;
    for row in rows {
        hash_legacy(conn, key, (row.id, &row.legacy_phone)).await?;
    }
    Ok(())
}

/// An opt-out kept from before the hashes.
#[derive(Debug, FromQueryResult)]
struct Legacy {
    id: i64,
    legacy_phone: String,
}

/// A keyword reply to the sending number (CTIA), matched on the whole trimmed body,
/// whatever its case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    /// STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT.
    OptOut,
    /// START, YES, UNSTOP.
    OptIn,
    /// HELP, INFO.
    Help,
}

impl Keyword {
    /// The keyword `body` is, if any.
    pub fn parse(body: &str) -> Option<Self> {
        match body.trim().to_ascii_uppercase().as_str() {
            "STOP" | "STOPALL" | "UNSUBSCRIBE" | "CANCEL" | "END" | "QUIT" => Some(Self::OptOut),
            "START" | "YES" | "UNSTOP" => Some(Self::OptIn),
            "HELP" | "INFO" => Some(Self::Help),
            _ => None,
        }
    }

    /// The reply to the keyword, naming the sender (`sms.sender_name`) and how to opt back
    /// in or get help.
    pub fn reply(self, sender_name: &str) -> String {
        match self {
            Self::OptOut => format!(
                "{sender_name}: you are unsubscribed and will receive no more messages. Reply START to resubscribe."
            ),
            Self::OptIn => format!(
                "{sender_name}: you are subscribed again. Reply HELP for help, STOP to unsubscribe."
            ),
            Self::Help => format!(
                "{sender_name}: messages from your school about Parent Connection. Msg&data rates may apply. Reply STOP to unsubscribe, START to resubscribe."
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_whole_bodies_in_any_case() {
        for word in ["stop", " STOPALL ", "Unsubscribe", "cancel", "END", "quit"] {
            assert_eq!(Keyword::parse(word), Some(Keyword::OptOut), "{word}");
        }
        for word in ["start", "Yes", "UNSTOP"] {
            assert_eq!(Keyword::parse(word), Some(Keyword::OptIn), "{word}");
        }
        for word in ["help", "Info"] {
            assert_eq!(Keyword::parse(word), Some(Keyword::Help), "{word}");
        }
        for body in ["stop please", "thanks!", "", "yes, see you"] {
            assert_eq!(Keyword::parse(body), None, "{body}");
        }
        assert!(Keyword::OptOut.reply("Acme").contains("START"));
        assert!(Keyword::Help.reply("Acme").starts_with("Acme:"));
    }

    #[test]
    fn an_opt_out_is_per_sender_and_keeps_no_number() {
        let key = Arc::new(PrivacyKey::from_bytes(&[7; 32]));
        let shared = OptOuts::new(key.clone(), "+15550001111");
        let other = shared.for_sender("+15550002222");
        let h = shared.hash("+12025550143");
        assert_eq!(h, OptOuts::new(key, " +15550001111 ").hash("+12025550143"));
        assert_ne!(h, other.hash("+12025550143"));
        assert!(!h.contains("2025550143"));
    }
}
