//! The outbox's port: the outbox knows a message kind only through [`MessageKindHandler`],
//! which each capability that sends messages implements (invitations in `invites`, the
//! weekly digest in `digest`). The dispatcher is given the handlers when it is built
//! ([`MessageKinds`]), so the outbox imports no capability.

use super::disclosures::About;
use super::store::{self, Claimed, Hold};
use super::{MessageKind, Outgoing};
use crate::db::WriteTxn;
use crate::domain::TenantId;
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbErr};
use std::collections::HashMap;
use std::sync::Arc;

/// What rendering made of one claimed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rendered {
    /// The message to send.
    Ready(Outgoing),
    /// Nothing to send any more (the guardian, invitation or report is gone): suppressed.
    Gone,
    /// Not to be sent to this address (why): suppressed. Set by the dispatcher for an
    /// address the mail server refused for good ([`super::suppressions`]).
    Refused(String),
    /// This message could not be rendered now (why): retried with backoff, dead after
    /// `outbox.max_attempts`. Other messages of the round are not affected.
    Failed(String),
    /// Not to be sent before `until` (a text message in the recipient's quiet hours): queued
    /// again for then, held for `reason` (`store::QUIET_HOURS`), the attempt not counted.
    Held {
        /// When it may go.
        until: DateTime<Utc>,
        /// Why.
        reason: String,
    },
}

/// How one kind of message is handed to the outbox, rendered and finished.
#[async_trait::async_trait]
pub trait MessageKindHandler: Send + Sync {
    /// The kind this handler serves (the `outbox.kind` of its rows).
    fn kind(&self) -> MessageKind;

    /// Moves up to `limit` messages that wait outside the outbox into it, due at `now`;
    /// returns how many. Kinds that enqueue in their own transaction have none.
    async fn hand_over(
        &self,
        _db: &DatabaseConnection,
        _limit: u64,
        _now: DateTime<Utc>,
    ) -> Result<u64, DbErr> {
        Ok(0)
    }

    /// Renders the claimed rows of this kind as they are now, one entry per row id (a row
    /// without an entry is [`Rendered::Gone`]). An error fails only these rows, for now.
    async fn render(
        &self,
        db: &DatabaseConnection,
        claimed: &[&Claimed],
    ) -> Result<HashMap<i64, Rendered>, DbErr>;

    /// Finishes the rows of the claims of `held` that were sent and are still current;
    /// returns how many were. By default the rows are kept with status `sent`.
    async fn finish_sent(
        &self,
        txn: &WriteTxn,
        held: &[Hold],
        now: DateTime<Utc>,
    ) -> Result<u64, DbErr> {
        store::record_sent(txn, held, now).await
    }

    /// Whom and what the sent rows of `claimed` were about, for the disclosure log
    /// ([`super::disclosures`]), one entry per row id. Kinds that disclose nothing about a
    /// student (a sign-in code) have none, and are not logged.
    async fn disclosed(
        &self,
        _txn: &WriteTxn,
        _claimed: &[&Claimed],
    ) -> Result<HashMap<i64, About>, DbErr> {
        Ok(HashMap::new())
    }

    /// Messages of `tenant` waiting outside the outbox (not handed over yet), counted up to
    /// `cap`: the admin view counts them as queued.
    async fn waiting(
        &self,
        _db: &DatabaseConnection,
        _tenant: TenantId,
        _cap: i64,
    ) -> Result<i64, DbErr> {
        Ok(0)
    }
}

/// The handlers a dispatcher (or the admin view) knows, one per kind.
#[derive(Clone, Default)]
pub struct MessageKinds {
    handlers: Vec<Arc<dyn MessageKindHandler>>,
}

impl MessageKinds {
    /// No kinds yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `handler` (replacing an earlier one of its kind).
    pub fn with(mut self, handler: impl MessageKindHandler + 'static) -> Self {
        self.handlers.retain(|h| h.kind() != handler.kind());
        self.handlers.push(Arc::new(handler));
        self
    }

    /// The handler of `kind`, if registered.
    pub fn get(&self, kind: MessageKind) -> Option<&dyn MessageKindHandler> {
        self.handlers
            .iter()
            .find(|h| h.kind() == kind)
            .map(|h| h.as_ref())
    }

    /// Every handler, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &dyn MessageKindHandler> {
        self.handlers.iter().map(|h| h.as_ref())
    }

    /// Messages of `tenant` waiting outside the outbox, over every kind, up to `cap`.
    pub async fn waiting(
        &self,
        db: &DatabaseConnection,
        tenant: TenantId,
        cap: i64,
    ) -> Result<i64, DbErr> {
        let mut total = 0;
        for handler in self.iter() {
            total += handler.waiting(db, tenant, cap).await?;
        }
        Ok(total.min(cap))
    }
}

impl std::fmt::Debug for MessageKinds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.handlers.iter().map(|h| h.kind()))
            .finish()
    }
}
