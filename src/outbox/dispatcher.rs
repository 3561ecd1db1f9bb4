//! The dispatcher: claims due outbox rows, has their kinds render them ([`MessageKinds`]),
//! sends them (email or SMS, each channel under its own token-bucket rate limit), and
//! records the outcomes in small batches as they come in, per message: one message that
//! cannot be rendered or sent never fails the others. It runs inside `serve` and as
//! `parent-connection dispatch [--once]`; any number may run against one database. Asked to
//! stop ([`Stop`]), it claims nothing more, lets the sends in flight finish within
//! `outbox.shutdown_grace_seconds`, and gives back the rows it did not send.
//!
//! While a round's rows are being sent, the dispatcher renews their lease every third of
//! `outbox.lease_seconds` ([`store::renew`]): a batch slower than the lease is not claimed
//! and sent again by another dispatcher. Outcomes are recorded under each claim's fencing
//! token ([`store::Hold`]): a dispatcher whose claim was taken over anyway (it stalled past
//! its lease) records nothing, and says so in the log.

use super::backoff;
use super::consent::OptOuts;
use super::disclosures::{self, Accepted, Sealed};
use super::email::{MailTarget, Mailer};
use super::port::{MessageKinds, Rendered};
use super::sms::SmsGateway;
use super::store::{self, Claimed, Hold, Outcome};
use super::{Channel, Outgoing, SendError};
use crate::config::Config;
use crate::db::engine::claim as engine;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use sea_orm::{DatabaseConnection, DbErr};
use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Outcomes recorded per transaction: fewer commits, and a dispatcher that dies loses at
/// most these (their messages are sent again once their claim runs out).
const RECORD_BATCH: usize = 64;

/// Batches of outcomes being recorded at the same time, each in its own transaction (on
/// SQLite they take turns at the write lock; on PostgreSQL they overlap their round trips).
const RECORDS_IN_FLIGHT: usize = 4;

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
    /// Held for later (a text message in the recipient's quiet hours).
    pub held: u64,
}

impl Stats {
    fn count(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Sent => self.sent += 1,
            Outcome::Retry { .. } => self.retried += 1,
            Outcome::Failed { .. } => self.failed += 1,
            Outcome::Dead { .. } => self.dead += 1,
            Outcome::Suppressed { .. } => self.suppressed += 1,
            Outcome::Held { .. } => self.held += 1,
        }
    }

    fn add(&mut self, other: Stats) {
        self.claimed += other.claimed;
        self.sent += other.sent;
        self.retried += other.retried;
        self.failed += other.failed;
        self.dead += other.dead;
        self.suppressed += other.suppressed;
        self.held += other.held;
    }
}

/// Tells dispatchers to stop ([`StopSwitch::new`]).
#[derive(Debug)]
pub struct StopSwitch(watch::Sender<bool>);

/// A dispatcher's view of its [`StopSwitch`].
#[derive(Debug, Clone)]
pub struct Stop(watch::Receiver<bool>);

impl StopSwitch {
    /// A switch, off, and the [`Stop`] to give the dispatchers.
    pub fn new() -> (Self, Stop) {
        let (tx, rx) = watch::channel(false);
        (Self(tx), Stop(rx))
    }

    /// Asks every dispatcher holding its [`Stop`] to stop.
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

impl Stop {
    /// A stop that is never asked for.
    pub fn never() -> Self {
        StopSwitch::new().1
    }

    /// True once a stop was asked for.
    pub fn requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits until a stop is asked for (forever if its switch is gone unused).
    pub async fn wait(mut self) {
        if self.0.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// A claimed row and what became of it.
struct Finished {
    row: Claimed,
    outcome: Outcome,
    /// The mail server refused the address for good: it gets nothing more.
    refused: bool,
    /// What the transport accepted, and when (the disclosure log).
    accepted: Option<(Outgoing, DateTime<Utc>)>,
}

/// A claimed batch, rendered and checked against the suppressions, ready to send.
#[derive(Default)]
struct Prepared {
    claimed: Vec<Claimed>,
    rendered: HashMap<i64, Rendered>,
}

impl Prepared {
    /// The claims of the batch.
    fn holds(&self) -> Vec<Hold> {
        self.claimed.iter().map(Claimed::hold).collect()
    }
}

/// Records the outcomes of sends; cheap to clone, so that each batch of outcomes is
/// recorded on a task of its own.
#[derive(Clone)]
struct Recorder {
    db: DatabaseConnection,
    kinds: MessageKinds,
}

impl Recorder {
    /// Records finished sends in one transaction (a row whose claim ran out and that
    /// another dispatcher took is left alone). Sent rows are finished by their kind.
    async fn record(self, done: Vec<Finished>) -> Result<(), DbErr> {
        if done.is_empty() {
            return Ok(());
        }
        // Hashing and compressing the texts is CPU work: done before the transaction, so
        // it holds no connection (and on SQLite no write lock) meanwhile.
        let sealed: HashMap<i64, Sealed> = done
            .iter()
            .filter_map(|f| Some((f.row.id, Sealed::of(&f.accepted.as_ref()?.0))))
            .collect();
        let txn = crate::db::begin_write(&self.db).await?;
        let now = Utc::now();
        self.log_disclosures(&txn, &done, &sealed).await?;
        let mut held = 0;
        for handler in self.kinds.iter() {
            let sent: Vec<Hold> = done
                .iter()
                .filter(|f| f.outcome == Outcome::Sent && f.row.kind == handler.kind())
                .map(|f| f.row.hold())
                .collect();
            if !sent.is_empty() {
                held += handler.finish_sent(&txn, &sent, now).await?;
            }
        }
        for finished in done.iter().filter(|f| f.outcome != Outcome::Sent) {
            let row = &finished.row;
            let outcome = &finished.outcome;
            held += u64::from(store::record(&txn, row.hold(), outcome, now).await?);
            // An address the mail server refused for good gets nothing more.
            if let Outcome::Failed { error } = outcome
                && finished.refused
            {
                store::suppress_email(&txn, row.tenant_id, &row.recipient, error, now).await?;
            }
        }
        if held < done.len() as u64 {
            // Fenced off: another dispatcher holds these rows now, and its outcome counts.
            tracing::warn!(
                stale = done.len() as u64 - held,
                "claims were taken over before their outcomes were recorded; outcomes dropped"
            );
        }
        txn.commit().await
    }

    /// Records in the disclosure log what the transports accepted of `done` (whatever
    /// became of the claims: the message went out), kind by kind.
    async fn log_disclosures(
        &self,
        txn: &crate::db::WriteTxn,
        done: &[Finished],
        sealed: &HashMap<i64, Sealed>,
    ) -> Result<(), DbErr> {
        for handler in self.kinds.iter() {
            let sent: Vec<&Finished> = done
                .iter()
                .filter(|f| f.accepted.is_some() && f.row.kind == handler.kind())
                .collect();
            if sent.is_empty() {
                continue;
            }
            let rows: Vec<&Claimed> = sent.iter().map(|f| &f.row).collect();
            let about = handler.disclosed(txn, &rows).await?;
            let accepted: Vec<Accepted<'_>> = sent
                .iter()
                .filter_map(|f| {
                    let (message, at) = f.accepted.as_ref()?;
                    Some(Accepted {
                        tenant: f.row.tenant_id,
                        kind: f.row.kind,
                        ref_id: f.row.ref_id,
                        channel: f.row.channel,
                        message,
                        sealed: sealed.get(&f.row.id)?,
                        at: *at,
                        about: about.get(&f.row.id)?,
                    })
                })
                .collect();
            disclosures::record(txn, &accepted).await?;
        }
        Ok(())
    }
}

/// A dispatcher with its transports and the kinds it delivers.
pub struct Dispatcher {
    db: DatabaseConnection,
    config: crate::config::OutboxConfig,
    kinds: MessageKinds,
    recorder: Recorder,
    /// Batches of outcomes recorded at once ([`RECORDS_IN_FLIGHT`] at most, fewer with a
    /// small pool: the next batch's claim and render need a connection too).
    records_in_flight: usize,
    mailer: Mailer,
    sms: Option<SmsGateway>,
    email_rate: DefaultDirectRateLimiter,
    sms_rate: DefaultDirectRateLimiter,
    worker: String,
    claimed_since_vacuum: std::sync::atomic::AtomicU64,
    opt_outs: OptOuts,
    /// The key of the hashed email suppressions.
    privacy: Arc<crate::privacy::PrivacyKey>,
    /// The opt-outs kept from before the hashes were converted (once per dispatcher).
    legacy_converted: std::sync::atomic::AtomicBool,
}

/// Disclosure texts past their retention removed per round, at most.
const EXPIRE_BATCH: u64 = 500;

/// Batches of outcomes recorded at once with a pool of `pool_size` connections: two stay
/// free for the next batch's claim and render and the lease renewals (a pool taken whole
/// by recordings made the next batch wait: measured on PostgreSQL with 4 connections).
fn records_in_flight(pool_size: u32) -> usize {
    (pool_size as usize)
        .saturating_sub(2)
        .clamp(1, RECORDS_IN_FLIGHT)
}

fn rate(per_second: u32) -> DefaultDirectRateLimiter {
    let n = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
    RateLimiter::direct(Quota::per_second(n).allow_burst(n))
}

impl Dispatcher {
    /// A dispatcher for `config`'s mail and SMS settings, delivering the messages of
    /// `kinds` (a row of another kind is retried until a dispatcher that knows it sends it).
    pub fn new(
        db: DatabaseConnection,
        config: &Config,
        kinds: MessageKinds,
    ) -> Result<Self, String> {
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
        let sms = SmsGateway::from_config(&config.sms, &config.outbound)?;
        let key = crate::privacy::PrivacyKey::from_config(config).map_err(|e| e.to_string())?;
        let privacy = Arc::new(key);
        Ok(Self {
            opt_outs: OptOuts::new(privacy.clone(), &config.sms.from),
            privacy,
            legacy_converted: std::sync::atomic::AtomicBool::new(false),
            recorder: Recorder {
                db: db.clone(),
                kinds: kinds.clone(),
            },
            records_in_flight: records_in_flight(config.database.pool_size()),
            db,
            config: config.outbox.clone(),
            kinds,
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
            "email to {:?}; SMS {}; kinds {:?}",
            self.mailer.target(),
            match &self.sms {
                Some(gateway) => format!("through {gateway:?}"),
                None => "disabled (SMS_URL is not set)".into(),
            },
            self.kinds
        )
    }

    /// One round: claims a batch and delivers it.
    pub async fn run_once(&self) -> Result<Stats, DbErr> {
        self.round(&Stop::never()).await
    }

    /// One round that stops early when `stop` is asked for: no new send starts, sends in
    /// flight get `outbox.shutdown_grace_seconds` to finish, and the rows not sent are given
    /// back ([`store::release`]).
    async fn round(&self, stop: &Stop) -> Result<Stats, DbErr> {
        let batch = self.prepare(stop).await?;
        self.deliver(batch, stop).await
    }

    /// Housekeeping, hand-over, then claims a batch and renders it (empty once a stop was
    /// asked for: nothing more is claimed).
    async fn prepare(&self, stop: &Stop) -> Result<Prepared, DbErr> {
        let now = Utc::now();
        let lease = now + chrono::Duration::seconds(self.config.lease_seconds.max(1) as i64);
        let limit = self.config.batch_size.max(1);
        self.housekeeping(now).await;

        self.hand_over(limit, now).await;
        if stop.requested() {
            return Ok(Prepared::default());
        }
        let claimed = store::claim(&self.db, &self.worker, limit, now, lease).await?;
        let mut rendered = self.render(&claimed).await;
        self.refuse_suppressed(&claimed, &mut rendered).await;
        Ok(Prepared { claimed, rendered })
    }

    /// Delivers `current` while the next batch is prepared beside it, so the mail server
    /// never waits for a claim or a render. The next batch's leases are renewed while it
    /// waits; it is only claimed once no stop was asked for.
    async fn deliver_and_prepare(
        &self,
        current: Prepared,
        stop: &Stop,
    ) -> (Result<Stats, DbErr>, Result<Prepared, DbErr>) {
        let (delivered, is_delivered) = watch::channel(false);
        let deliver = async {
            let stats = self.deliver(current, stop).await;
            delivered.send_replace(true);
            stats
        };
        let prepare = async {
            let next = self.prepare(stop).await?;
            let held = next.holds();
            if !held.is_empty() {
                let mut is_delivered = is_delivered;
                tokio::select! {
                    _ = is_delivered.wait_for(|done| *done) => {}
                    never = self.keep_leases(&held) => match never {},
                }
            }
            Ok(next)
        };
        tokio::join!(deliver, prepare)
    }

    /// Sends a prepared batch and records the outcomes; see [`Self::round`].
    async fn deliver(&self, batch: Prepared, stop: &Stop) -> Result<Stats, DbErr> {
        let Prepared { claimed, rendered } = batch;
        let mut stats = Stats {
            claimed: claimed.len() as u64,
            ..Stats::default()
        };
        let held: Vec<Hold> = claimed.iter().map(Claimed::hold).collect();
        let rendered = &rendered;
        // Sending and recording run side by side: the sends never wait for a commit, and
        // a commit never waits for a paused send holding a pooled connection.
        let (done, outcomes) = tokio::sync::mpsc::channel::<Finished>(RECORD_BATCH * 4);
        let stopped = stop.clone();
        let send = async move {
            let mut results = std::pin::pin!(
                futures_util::stream::iter(claimed)
                    .take_until(stopped.wait())
                    .map(|row| self.attempt(row, rendered))
                    .buffer_unordered(self.config.concurrency.max(1))
            );
            while let Some(finished) = results.next().await {
                if done.send(finished).await.is_err() {
                    break;
                }
            }
        };
        let grace = Duration::from_secs(self.config.shutdown_grace_seconds);
        let bounded = async {
            tokio::select! {
                () = send => {}
                () = async { stop.clone().wait().await; tokio::time::sleep(grace).await } => {
                    tracing::warn!("shutdown grace over: the sends still in flight are given back");
                }
            }
        };
        let mut recorded = HashSet::with_capacity(held.len());
        let record = async {
            let batches = futures_util::stream::unfold(outcomes, |mut outcomes| async move {
                let mut batch = Vec::with_capacity(RECORD_BATCH);
                (outcomes.recv_many(&mut batch, RECORD_BATCH).await > 0)
                    .then_some((batch, outcomes))
            });
            // Each outcome is in exactly one batch, and each batch in one transaction: a
            // few of them commit at once, so a server's round trips are not paid in turn.
            let mut commits = std::pin::pin!(
                batches
                    .map(|batch| {
                        for finished in &batch {
                            stats.count(&finished.outcome);
                            recorded.insert(finished.row.id);
                        }
                        // A task of its own: the hashing, compressing and statements of
                        // a batch run on another thread than the sends.
                        let recorder = self.recorder.clone();
                        async move {
                            tokio::spawn(recorder.record(batch)).await.map_err(|e| {
                                DbErr::Custom(format!("recording the outcomes stopped: {e}"))
                            })?
                        }
                    })
                    .buffer_unordered(self.records_in_flight)
            );
            while let Some(committed) = commits.next().await {
                committed?;
            }
            Ok::<(), DbErr>(())
        };
        let recorded_all = tokio::select! {
            ((), recorded_all) = async { tokio::join!(bounded, record) } => recorded_all,
            never = self.keep_leases(&held) => match never {},
        };
        recorded_all?;
        let unsent: Vec<Hold> = held
            .into_iter()
            .filter(|hold| !recorded.contains(&hold.id))
            .collect();
        self.give_back(&unsent).await?;
        self.vacuum_now_and_then(stats.claimed).await;
        Ok(stats)
    }

    /// Gives the claims of `unsent` back to the queue at once (stopping).
    async fn give_back(&self, unsent: &[Hold]) -> Result<(), DbErr> {
        if !unsent.is_empty() {
            let released = store::release(&self.db, unsent, Utc::now()).await?;
            tracing::info!(
                released,
                "stopping: unsent messages given back to the queue"
            );
        }
        Ok(())
    }

    /// Renews the lease of the claims of `held` every third of `outbox.lease_seconds`, for
    /// as long as the round sends them (the caller drops this future when it is done).
    /// Claims already recorded are no longer current and are left alone; a renewal that
    /// fails (the database is unreachable) is logged and tried again at the next tick.
    async fn keep_leases(&self, held: &[Hold]) -> std::convert::Infallible {
        let lease = Duration::from_secs(self.config.lease_seconds.max(1));
        crate::db::jobs::renew_every_third(lease, |until| async move {
            match store::renew(&self.db, held, until).await {
                Ok(renewed) => tracing::trace!(renewed, "outbox leases renewed"),
                Err(e) => tracing::warn!(error = %e, "cannot renew the outbox leases; retrying"),
            }
        })
        .await
    }

    /// Converts the opt-outs kept from before the hashes (first round only) and removes
    /// disclosure texts past `outbox.disclosure_text_days` (a batch per round); a failure is
    /// logged and tried again next round.
    async fn housekeeping(&self, now: DateTime<Utc>) {
        use std::sync::atomic::Ordering;
        if !self.legacy_converted.load(Ordering::Relaxed) {
            match self.opt_outs.convert_legacy(&self.db).await {
                Ok(converted) => {
                    self.legacy_converted.store(true, Ordering::Relaxed);
                    if converted > 0 {
                        tracing::info!(converted, "SMS opt-outs converted to keyed hashes");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot convert the SMS opt-outs yet"),
            }
        }
        let days = i64::try_from(self.config.disclosure_text_days).unwrap_or(i64::MAX);
        let Some(cutoff) = chrono::Duration::try_days(days).and_then(|d| now.checked_sub_signed(d))
        else {
            return;
        };
        if let Err(e) = disclosures::expire_texts(&self.db, cutoff, EXPIRE_BATCH, now).await {
            tracing::warn!(error = %e, "cannot remove old disclosure texts; retrying next round");
        }
    }

    /// Lets every kind hand its waiting messages to the outbox; a kind that fails is
    /// logged and tried again next round (the others go on).
    async fn hand_over(&self, limit: u64, now: chrono::DateTime<Utc>) {
        for handler in self.kinds.iter() {
            if let Err(e) = handler.hand_over(&self.db, limit, now).await {
                tracing::warn!(kind = handler.kind().as_str(), error = %e, "hand-over failed; retrying next round");
            }
        }
    }

    /// Renders the claimed rows, kind by kind. A kind that fails, or that this dispatcher
    /// does not know, fails its rows alone, for now.
    async fn render(&self, rows: &[Claimed]) -> HashMap<i64, Rendered> {
        let mut out = HashMap::with_capacity(rows.len());
        let mut by_kind: HashMap<super::MessageKind, Vec<&Claimed>> = HashMap::new();
        for row in rows {
            by_kind.entry(row.kind).or_default().push(row);
        }
        for (kind, of_kind) in by_kind {
            let rendered = match self.kinds.get(kind) {
                Some(handler) => handler.render(&self.db, &of_kind).await,
                None => Err(DbErr::Custom(format!(
                    "this dispatcher does not deliver '{}' messages",
                    kind.as_str()
                ))),
            };
            match rendered {
                Ok(rendered) => out.extend(rendered),
                Err(e) => {
                    tracing::warn!(kind = kind.as_str(), error = %e, rows = of_kind.len(), "cannot render");
                    for row in of_kind {
                        out.insert(row.id, Rendered::Failed(format!("cannot render: {e}")));
                    }
                }
            }
        }
        out
    }

    /// Marks the email rows whose address is suppressed (in plain or as the keyed hash
    /// erasure keeps) as not to be sent; when the check fails they are retried instead.
    async fn refuse_suppressed(&self, rows: &[Claimed], rendered: &mut HashMap<i64, Rendered>) {
        match super::suppressions::suppressed_among(&self.db, &self.privacy, rows).await {
            Ok(suppressed) => {
                for id in suppressed {
                    rendered.insert(
                        id,
                        Rendered::Refused("the mail server refused this address for good".into()),
                    );
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot check email suppressions; retrying the batch's emails");
                for row in rows.iter().filter(|r| r.channel == Channel::Email) {
                    rendered.insert(
                        row.id,
                        Rendered::Failed(format!("cannot check email suppressions: {e}")),
                    );
                }
            }
        }
    }

    /// Vacuums the outbox on PostgreSQL once [`VACUUM_EVERY`] rows were claimed since the
    /// last time (a failure is logged: autovacuum still runs).
    async fn vacuum_now_and_then(&self, claimed: u64) {
        use std::sync::atomic::Ordering;
        if !engine::needs_vacuum(&self.db) {
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
        if let Err(e) = engine::vacuum(&self.db, "outbox").await {
            tracing::warn!(error = %e, "could not vacuum the outbox");
        }
    }

    /// Rounds until nothing is due (`dispatch --once`), each batch prepared while the one
    /// before is sent.
    pub async fn drain(&self) -> Result<Stats, DbErr> {
        let stop = Stop::never();
        let mut total = Stats::default();
        let mut current = self.prepare(&stop).await?;
        while !current.claimed.is_empty() {
            let (stats, next) = self.deliver_and_prepare(current, &stop).await;
            if let (Err(_), Ok(next)) = (&stats, &next) {
                self.give_back(&next.holds()).await?;
            }
            total.add(stats?);
            current = match next? {
                // Claimed while the batch before was still recorded, an empty claim can
                // miss what that batch gave back for a retry: only a claim after it counts.
                next if next.claimed.is_empty() => self.prepare(&stop).await?,
                next => next,
            };
        }
        Ok(total)
    }

    /// Rounds until `stop` is asked for, sleeping `outbox.poll_interval_ms` when nothing
    /// is due; database errors are logged and retried. Each batch is prepared while the one
    /// before is sent. On stop, the round under way claims nothing more, lets its sends in
    /// flight finish within `outbox.shutdown_grace_seconds` and gives back the rest (and
    /// any batch already prepared); then this returns.
    pub async fn run(self: Arc<Self>, stop: Stop) {
        let idle = Duration::from_millis(self.config.poll_interval_ms.max(10));
        let mut ready: Option<Prepared> = None;
        while !stop.requested() {
            let current = match ready.take() {
                Some(prepared) => Ok(prepared),
                None => self.prepare(&stop).await,
            };
            let pause = match current {
                Ok(current) if !current.claimed.is_empty() => {
                    let (stats, next) = self.deliver_and_prepare(current, &stop).await;
                    match next {
                        Ok(next) if !next.claimed.is_empty() => ready = Some(next),
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "preparing a dispatch round failed; retrying")
                        }
                    }
                    match stats {
                        Ok(stats) => {
                            tracing::debug!(?stats, "dispatch round");
                            continue;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "dispatch round failed; retrying");
                            idle
                        }
                    }
                }
                Ok(_) => idle,
                Err(e) => {
                    tracing::warn!(error = %e, "dispatch round failed; retrying");
                    idle
                }
            };
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = stop.clone().wait() => {}
            }
        }
        if let Some(left) = ready
            && let Err(e) = self.give_back(&left.holds()).await
        {
            tracing::warn!(error = %e, "cannot give back a prepared batch; its lease runs out");
        }
        tracing::info!("outbox dispatcher stopped");
    }

    async fn attempt(&self, row: Claimed, rendered: &HashMap<i64, Rendered>) -> Finished {
        let (outcome, refused) = self.try_send(&row, rendered).await;
        // Stamped as soon as the transport answered: the time it accepted the message.
        let accepted = match (&outcome, rendered.get(&row.id)) {
            (Outcome::Sent, Some(Rendered::Ready(message))) => Some((message.clone(), Utc::now())),
            _ => None,
        };
        Finished {
            row,
            outcome,
            refused,
            accepted,
        }
    }

    /// Sends one row; the outcome, and whether the mail server refused the address.
    async fn try_send(&self, row: &Claimed, rendered: &HashMap<i64, Rendered>) -> (Outcome, bool) {
        if row.channel == Channel::Sms {
            match self.opt_outs.opted_out(&self.db, &row.recipient).await {
                Ok(true) => {
                    return (
                        Outcome::Suppressed {
                            reason: "the number replied STOP".into(),
                        },
                        false,
                    );
                }
                Ok(false) => {}
                Err(e) => {
                    let error = SendError::transient(format!("cannot check opt-outs: {e}"), None);
                    return (self.outcome(row, Err(error)), false);
                }
            }
        }
        let message = match rendered.get(&row.id) {
            Some(Rendered::Ready(message)) => message,
            Some(Rendered::Failed(reason)) => {
                let error = SendError::transient(reason.clone(), None);
                return (self.outcome(row, Err(error)), false);
            }
            Some(Rendered::Refused(reason)) => {
                let reason = reason.clone();
                return (Outcome::Suppressed { reason }, false);
            }
            Some(Rendered::Held { until, reason }) => {
                let (until, reason) = (*until, reason.clone());
                return (Outcome::Held { until, reason }, false);
            }
            Some(Rendered::Gone) | None => {
                return (
                    Outcome::Suppressed {
                        reason:
                            "nothing to send any more (the guardian, invitation or report is gone)"
                                .into(),
                    },
                    false,
                );
            }
        };
        let sent = match row.channel {
            Channel::Email => {
                self.email_rate.until_ready().await;
                self.mailer.send(message).await
            }
            Channel::Sms => match &self.sms {
                Some(gateway) => {
                    self.sms_rate.until_ready().await;
                    gateway.send(message).await
                }
                None => Err(SendError::transient(
                    "SMS is disabled (SMS_URL is not set)",
                    None,
                )),
            },
        };
        let refused = row.channel == Channel::Email && matches!(&sent, Err(e) if !e.transient);
        (self.outcome(row, sent), refused)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recordings_leave_two_connections_of_the_pool_free() {
        assert_eq!(records_in_flight(2), 1, "never none");
        assert_eq!(records_in_flight(3), 1);
        assert_eq!(records_in_flight(4), 2, "the default pool on 2 CPUs");
        assert_eq!(records_in_flight(6), RECORDS_IN_FLIGHT);
        assert_eq!(records_in_flight(64), RECORDS_IN_FLIGHT, "capped");
    }
}
