//! Scheduled jobs that run once across every instance on one database.
//!
//! Each `serve` instance runs the schedulers (the weekly digest, the OneRoster sync). A
//! job's run for one due key — a tenant's digest of an ISO week, a connection's sync of one
//! period — is claimed in `scheduled_runs`, whose `(job, run_key)` is unique: the instance
//! that inserts the row (or takes over a claim whose lease ran out because its instance
//! died) runs the job, the others skip it. The claimer renews its lease while the job runs
//! and marks the row done at the end; a run that failed is given back, so the next check
//! (of any instance) tries again. Every claim sets a new `claim_token` (a fencing token),
//! and only the current claim renews, finishes or gives back.

use crate::db;
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbErr, Value};
use std::sync::OnceLock;
use std::time::Duration;

/// How long a run's claim lasts without renewal; the claimer renews it every third of this
/// while the job runs, so a run of an instance that died is taken over after at most this.
pub const LEASE: Duration = Duration::from_secs(60);

/// A kind of scheduled job (`scheduled_runs.job`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// A tenant's weekly digest (key: tenant id and ISO week).
    Digest,
    /// A OneRoster connection's scheduled sync (key: tenant id and period start).
    OneRoster,
}

impl Job {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Job::Digest => "digest",
            Job::OneRoster => "oneroster",
        }
    }
}

/// This process's name in claims: its process id and a random suffix (process ids repeat
/// across hosts and restarts).
pub fn instance() -> &'static str {
    static INSTANCE: OnceLock<String> = OnceLock::new();
    INSTANCE.get_or_init(|| {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        format!("{}:{}", std::process::id(), &suffix[..12])
    })
}

/// A claimed run: which, and the fencing token of the claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunClaim {
    /// The job.
    pub job: Job,
    /// Its due key.
    pub key: String,
    /// The claim's fencing token.
    pub token: i64,
}

/// Claims the run of `job` for `key` for `instance` until `now + lease`: `None` when it
/// is done already or another instance's claim on it is still current.
pub async fn claim(
    db_conn: &DatabaseConnection,
    (job, key): (Job, &str),
    instance: &str,
    now: DateTime<Utc>,
    lease: Duration,
) -> Result<Option<RunClaim>, DbErr> {
    let until = now + chrono::Duration::from_std(lease).unwrap_or_default();
    let txn = db::begin_write(db_conn).await?;
    let rows = db::query(
        &txn,
        "INSERT INTO scheduled_runs (job, run_key, claimed_by, claim_token, claimed_at, lease_until) \
         VALUES ($1, $2, $3, 1, $4, $5) \
         ON CONFLICT (job, run_key) DO UPDATE SET claimed_by = excluded.claimed_by, \
           claim_token = scheduled_runs.claim_token + 1, claimed_at = excluded.claimed_at, \
           lease_until = excluded.lease_until \
         WHERE scheduled_runs.done_at IS NULL AND scheduled_runs.lease_until < excluded.claimed_at \
         RETURNING claim_token",
        vec![
            job.as_str().into(),
            key.into(),
            instance.into(),
            Value::ChronoDateTimeUtc(Some(now)),
            Value::ChronoDateTimeUtc(Some(until)),
        ],
    )
    .await?;
    txn.commit().await?;
    rows.first()
        .map(|row| row.try_get::<i64>("", "claim_token"))
        .transpose()
        .map(|token| {
            token.map(|token| RunClaim {
                job,
                key: key.to_string(),
                token,
            })
        })
}

/// Runs `statement` (an UPDATE of `scheduled_runs` using `$1`… for `values`) on the row of
/// `claim` when the claim is still current; whether it was.
async fn on_current(
    db_conn: &DatabaseConnection,
    claim: &RunClaim,
    statement: &str,
    mut values: Vec<Value>,
) -> Result<bool, DbErr> {
    let n = values.len();
    values.extend([
        claim.job.as_str().into(),
        claim.key.as_str().into(),
        Value::BigInt(Some(claim.token)),
    ]);
    let txn = db::begin_write(db_conn).await?;
    let changed = db::exec(
        &txn,
        &format!(
            "{statement} WHERE job = ${} AND run_key = ${} AND claim_token = ${} AND done_at IS NULL",
            n + 1,
            n + 2,
            n + 3
        ),
        values,
    )
    .await?
    .rows_affected();
    txn.commit().await?;
    Ok(changed > 0)
}

/// Extends the claim to `until`; false when it is no longer current.
pub async fn renew(
    db_conn: &DatabaseConnection,
    claim: &RunClaim,
    until: DateTime<Utc>,
) -> Result<bool, DbErr> {
    on_current(
        db_conn,
        claim,
        "UPDATE scheduled_runs SET lease_until = $1",
        vec![Value::ChronoDateTimeUtc(Some(until))],
    )
    .await
}

/// Marks the run done: no instance runs it again. False when the claim was no longer
/// current (another instance took it over and finishes it).
pub async fn finish(
    db_conn: &DatabaseConnection,
    claim: &RunClaim,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    on_current(
        db_conn,
        claim,
        "UPDATE scheduled_runs SET done_at = $1",
        vec![Value::ChronoDateTimeUtc(Some(now))],
    )
    .await
}

/// Gives the run back (it failed): the next check of any instance claims it again.
pub async fn give_back(db_conn: &DatabaseConnection, claim: &RunClaim) -> Result<bool, DbErr> {
    on_current(
        db_conn,
        claim,
        "UPDATE scheduled_runs SET lease_until = claimed_at",
        vec![],
    )
    .await
}

/// Whether the run of `job` for `key` is done.
pub async fn is_done(db_conn: &DatabaseConnection, (job, key): (Job, &str)) -> Result<bool, DbErr> {
    db::exists(
        db_conn,
        "SELECT COUNT(*) AS n FROM scheduled_runs WHERE job = $1 AND run_key = $2 AND done_at IS NOT NULL",
        vec![job.as_str().into(), key.into()],
    )
    .await
}

/// Runs `work` once across instances for `job` and `key`: claims the run, keeps its lease
/// while `work` runs, marks it done when `work` succeeds and gives it back when it fails.
/// `Ok(None)` when another instance has run it or is running it.
pub async fn run_once<T, E, F>(
    db_conn: &DatabaseConnection,
    (job, key): (Job, &str),
    lease: Duration,
    work: F,
) -> Result<Option<T>, E>
where
    E: From<DbErr>,
    F: std::future::Future<Output = Result<T, E>>,
{
    let Some(claim) = claim(db_conn, (job, key), instance(), Utc::now(), lease).await? else {
        return Ok(None);
    };
    let result = tokio::select! {
        result = work => result,
        never = keep(db_conn, &claim, lease) => match never {},
    };
    match result {
        Ok(value) => {
            if !finish(db_conn, &claim, Utc::now()).await? {
                tracing::warn!(
                    job = job.as_str(),
                    key,
                    "the run's claim was taken over while it ran"
                );
            }
            Ok(Some(value))
        }
        Err(e) => {
            if let Err(back) = give_back(db_conn, &claim).await {
                tracing::warn!(job = job.as_str(), key, error = %back, "cannot give the failed run back; its lease runs out");
            }
            Err(e)
        }
    }
}

/// Renews `claim` every third of `lease` until dropped; a failed renewal is logged.
async fn keep(
    db_conn: &DatabaseConnection,
    claim: &RunClaim,
    lease: Duration,
) -> std::convert::Infallible {
    renew_every_third(lease, |until| async move {
        match renew(db_conn, claim, until).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(job = claim.job.as_str(), key = %claim.key, "the run's claim was taken over")
            }
            Err(e) => {
                tracing::warn!(job = claim.job.as_str(), error = %e, "cannot renew the run's claim; retrying")
            }
        }
    })
    .await
}

/// Calls `renew` with a new end of the lease (now + `lease`) every third of `lease`, for
/// ever: what keeps a claim alive while its holder works. The holder drops this future
/// when the work is done; `renew` logs its own failures (the next tick tries again).
pub async fn renew_every_third<F, Fut>(lease: Duration, mut renew: F) -> std::convert::Infallible
where
    F: FnMut(DateTime<Utc>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut ticks = tokio::time::interval(lease / 3);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        renew(Utc::now() + chrono::Duration::from_std(lease).unwrap_or_default()).await;
    }
}
