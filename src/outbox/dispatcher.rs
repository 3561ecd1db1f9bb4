//! The dispatcher: claims due outbox rows, renders and sends them (email or SMS, each
//! channel under its own token-bucket rate limit), and records the outcomes in small
//! batches as they come in. It runs inside `serve` and as `parent-connection dispatch [--once]`; any
//! number may run against one database.

use super::backoff;
use super::email::{MailTarget, Mailer};
use super::sms::SmsGateway;
use super::store::{self, Claimed, Outcome};
use super::{Channel, Outgoing, SendError};
use crate::config::Config;
use crate::invites::render::{self, RenderConfig};
use chrono::Utc;
use futures_util::StreamExt;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use sea_orm::{DatabaseConnection, DbErr};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// Outcomes recorded per transaction: fewer commits, and a dispatcher that dies loses at
/// most these (their messages are sent again once their claim runs out).
const RECORD_BATCH: usize = 64;

/// On PostgreSQL, the outbox is vacuumed after this many rows were claimed: each message
/// leaves dead row versions (queued, claimed, recorded or removed), and autovacuum, which
/// looks at most once a minute, lets a busy queue table bloat by a minute of traffic.
const VACUUM_EVERY: u64 = 20_000;

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Rows claimed.
    pub claimed: u64,
    /// Delivered.
    pub sent: u64,
    /// Failed for now, due again later.
    pub retried: u64,
    /// Failed for good.
    pub failed: u64,
    /// Out of attempts.
    pub dead: u64,
    /// Not sent on purpose (opted out, nothing left to send).
    pub suppressed: u64,
}

impl Stats {
    fn count(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Sent => self.sent += 1,
            Outcome::Retry { .. } => self.retried += 1,
            Outcome::Failed { .. } => self.failed += 1,
            Outcome::Dead { .. } => self.dead += 1,
            Outcome::Suppressed { .. } => self.suppressed += 1,
        }
    }

    fn add(&mut self, other: Stats) {
        self.claimed += other.claimed;
        self.sent += other.sent;
        self.retried += other.retried;
        self.failed += other.failed;
        self.dead += other.dead;
        self.suppressed += other.suppressed;
    }
}

/// A dispatcher with its transports.
pub struct Dispatcher {
    db: DatabaseConnection,
    config: crate::config::OutboxConfig,
    render: RenderConfig,
    mailer: Mailer,
    sms: Option<SmsGateway>,
    email_rate: DefaultDirectRateLimiter,
    sms_rate: DefaultDirectRateLimiter,
    worker: String,
    claimed_since_vacuum: std::sync::atomic::AtomicU64,
}

fn rate(per_second: u32) -> DefaultDirectRateLimiter {
    let n = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
    RateLimiter::direct(Quota::per_second(n).allow_burst(n))
}

impl Dispatcher {
    /// A dispatcher for `config`'s mail and SMS settings.
    pub fn new(db: DatabaseConnection, config: &Config) -> Result<Self, String> {
        let target = MailTarget::parse(&config.mail.url)?;
        let root = config.mail.tls_root_certificate.trim();
        let mailer = Mailer::with_root_certificate(
            target,
            &config.mail.from,
            config.mail.pool_size,
            Duration::from_secs(config.mail.timeout_seconds.max(1)),
            (!root.is_empty()).then(|| std::path::Path::new(root)),
        )?
        .with_dkim(super::email::DkimSettings::from_config(&config.mail)?.as_ref())?;
        let sms = SmsGateway::from_config(&config.sms)?;
        Ok(Self {
            db,
            config: config.outbox.clone(),
            render: RenderConfig {
                links: crate::web::links::Links::from_config(config),
                sms_sender: config.sms.sender_name.clone(),
                message_id_domain: config.mail.message_id_domain.clone(),
            },
            mailer,
            sms,
            email_rate: rate(config.outbox.email_per_second),
            sms_rate: rate(config.outbox.sms_per_second),
            worker: format!("{}:{}", std::process::id(), uuid::Uuid::new_v4().simple()),
            claimed_since_vacuum: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Where email goes and whether SMS is on, for the log line at start.
    pub fn describe(&self) -> String {
        format!(
            "email to {:?}; SMS {}",
            self.mailer.target(),
            match &self.sms {
                Some(gateway) => format!("through {gateway:?}"),
                None => "disabled (SMS_URL is not set)".into(),
            }
        )
    }

    /// One round: claims a batch and delivers it.
    pub async fn run_once(&self) -> Result<Stats, DbErr> {
        let now = Utc::now();
        let lease = now + chrono::Duration::seconds(self.config.lease_seconds.max(1) as i64);
        // Weekly digests wait outside the outbox until a round has room for them.
        crate::digest::deliver::hand_over(&self.db, self.config.batch_size.max(1), now).await?;
        let claimed = store::claim(
            &self.db,
            &self.worker,
            self.config.batch_size.max(1),
            now,
            lease,
        )
        .await?;
        let mut stats = Stats {
            claimed: claimed.len() as u64,
            ..Stats::default()
        };
        // Sending and recording run side by side: the sends never wait for a commit, and
        // a commit never waits for a paused send holding a pooled connection.
        let (done, mut outcomes) =
            tokio::sync::mpsc::channel::<(Claimed, Outcome)>(RECORD_BATCH * 4);
        // Invitations are rendered for the whole batch in one query, digests in one query
        // per tenant and week.
        let of_kind =
            |kind: &str| -> Vec<&Claimed> { claimed.iter().filter(|c| c.kind == kind).collect() };
        let mut rendered =
            render::render_many(&self.db, &self.render, &of_kind("invitation")).await?;
        rendered.extend(
            crate::digest::deliver::render_many(
                &self.db,
                (&self.render.message_id_domain, &self.render.links),
                &of_kind("digest"),
            )
            .await?,
        );
        let rendered = &rendered;
        let send = async move {
            let mut results = futures_util::stream::iter(claimed)
                .map(|row| async move {
                    let outcome = self.attempt(&row, rendered).await;
                    (row, outcome)
                })
                .buffer_unordered(self.config.concurrency.max(1));
            while let Some((row, outcome)) = results.next().await {
                if done.send((row, outcome?)).await.is_err() {
                    break;
                }
            }
            Ok::<(), DbErr>(())
        };
        let record = async {
            let mut batch = Vec::with_capacity(RECORD_BATCH);
            while outcomes.recv_many(&mut batch, RECORD_BATCH).await > 0 {
                for (_, outcome) in &batch {
                    stats.count(outcome);
                }
                self.record(std::mem::take(&mut batch)).await?;
            }
            Ok::<(), DbErr>(())
        };
        let (sent, recorded) = tokio::join!(send, record);
        sent?;
        recorded?;
        self.vacuum_now_and_then(stats.claimed).await;
        Ok(stats)
    }

    /// Vacuums the outbox on PostgreSQL once [`VACUUM_EVERY`] rows were claimed since the
    /// last time (a failure is logged: autovacuum still runs).
    async fn vacuum_now_and_then(&self, claimed: u64) {
        use std::sync::atomic::Ordering;
        if self.db.get_database_backend() != sea_orm::DbBackend::Postgres {
            return;
        }
        let total = self
            .claimed_since_vacuum
            .fetch_add(claimed, Ordering::Relaxed)
            + claimed;
        if total < VACUUM_EVERY {
            return;
        }
        self.claimed_since_vacuum.store(0, Ordering::Relaxed);
        if let Err(e) = crate::db::exec(&self.db, "VACUUM outbox", vec![]).await {
            tracing::warn!(error = %e, "could not vacuum the outbox");
        }
    }

    /// Records finished sends in one transaction (a row whose claim ran out and that
    /// another dispatcher took is left alone).
    async fn record(&self, done: Vec<(Claimed, Outcome)>) -> Result<(), DbErr> {
        if done.is_empty() {
            return Ok(());
        }
        let txn = crate::db::begin_write(&self.db).await?;
        let now = Utc::now();
        // A sent digest leaves no row (handed over and gone means sent); others record `sent`.
        let (digests, others): (Vec<&Claimed>, Vec<&Claimed>) = done
            .iter()
            .filter(|(_, outcome)| *outcome == Outcome::Sent)
            .map(|(row, _)| row)
            .partition(|row| row.kind == "digest");
        let ids = |rows: Vec<&Claimed>| rows.iter().map(|row| row.id).collect::<Vec<_>>();
        let mut held = store::record_sent(&txn, &self.worker, &ids(others), now).await?;
        held += store::remove_sent(&txn, &self.worker, &ids(digests)).await?;
        for (row, outcome) in done.iter().filter(|(_, o)| *o != Outcome::Sent) {
            held += u64::from(store::record(&txn, &self.worker, row.id, outcome, now).await?);
            // An address the mail server refused for good gets nothing more.
            if let Outcome::Failed { error } = outcome
                && row.channel == Channel::Email.as_str()
            {
                store::suppress_email(&txn, row.tenant_id, &row.recipient, error, now).await?;
            }
        }
        if held < done.len() as u64 {
            tracing::warn!(
                lost = done.len() as u64 - held,
                "claims ran out before their outcomes were recorded"
            );
        }
        txn.commit().await
    }

    /// Rounds until nothing is due (`dispatch --once`).
    pub async fn drain(&self) -> Result<Stats, DbErr> {
        let mut total = Stats::default();
        loop {
            let round = self.run_once().await?;
            total.add(round);
            if round.claimed == 0 {
                return Ok(total);
            }
        }
    }

    /// Rounds forever, sleeping `outbox.poll_interval_ms` when nothing is due; database
    /// errors are logged and retried.
    pub async fn run(self: Arc<Self>) {
        let idle = Duration::from_millis(self.config.poll_interval_ms.max(10));
        loop {
            match self.run_once().await {
                Ok(stats) if stats.claimed > 0 => {
                    tracing::debug!(?stats, "dispatch round");
                }
                Ok(_) => tokio::time::sleep(idle).await,
                Err(e) => {
                    tracing::warn!(error = %e, "dispatch round failed; retrying");
                    tokio::time::sleep(idle).await;
                }
            }
        }
    }

    async fn attempt(
        &self,
        row: &Claimed,
        rendered: &HashMap<i64, Option<Outgoing>>,
    ) -> Result<Outcome, DbErr> {
        let channel = Channel::parse(&row.channel);
        if channel == Some(Channel::Sms)
            && store::opted_out(&self.db, row.tenant_id, &row.recipient).await?
        {
            return Ok(Outcome::Suppressed {
                reason: "the number replied STOP".into(),
            });
        }
        let message = match row.kind.as_str() {
            "invitation" | "digest" => rendered.get(&row.id).cloned().flatten(),
            other => {
                return Ok(Outcome::Failed {
                    error: format!("unknown outbox kind '{other}'"),
                });
            }
        };
        let Some(message) = message else {
            return Ok(Outcome::Suppressed {
                reason: "nothing to send any more (the guardian, invitation or report is gone)"
                    .into(),
            });
        };
        let sent = match channel {
            Some(Channel::Email) => {
                self.email_rate.until_ready().await;
                self.mailer.send(&message).await
            }
            Some(Channel::Sms) => match &self.sms {
                Some(gateway) => {
                    self.sms_rate.until_ready().await;
                    gateway.send(&message).await
                }
                None => Err(SendError::transient(
                    "SMS is disabled (SMS_URL is not set)",
                    None,
                )),
            },
            None => Err(SendError::permanent(format!(
                "unknown channel '{}'",
                row.channel
            ))),
        };
        Ok(self.outcome(row, sent))
    }

    fn outcome(&self, row: &Claimed, sent: Result<(), SendError>) -> Outcome {
        match sent {
            Ok(()) => Outcome::Sent,
            Err(e) if !e.transient => Outcome::Failed { error: e.reason },
            Err(e) if row.attempts >= self.config.max_attempts.max(1) => Outcome::Dead {
                error: format!("{} (after {} attempts)", e.reason, row.attempts),
            },
            Err(e) => {
                let delay = backoff::delay(
                    row.attempts,
                    Duration::from_secs(self.config.backoff_base_seconds),
                    Duration::from_secs(self.config.backoff_max_seconds),
                    e.retry_after,
                    backoff::jitter(),
                );
                Outcome::Retry {
                    at: Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default(),
                    error: e.reason,
                }
            }
        }
    }
}
