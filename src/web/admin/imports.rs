//! `/admin/imports`: upload an SDS file set (CSV files or one zip) — a dry run by default,
//! applied when asked — through the same path as `POST /api/v1/imports`
//! ([`crate::api::imports::import_upload`]); the runs, newest first, a page at a time; one
//! run's report with every row error (file, record, column); and its errors as CSV
//! (`/admin/imports/{id}/errors.csv`), with every cell that a spreadsheet would read as a
//! formula defused.

use crate::api::AppState;
use crate::api::error::ApiError;
use crate::api::imports::import_upload;
use crate::api::upload::{self, UploadLimits};
use crate::auth::policy;
use crate::entities::sync_run;
use crate::sync::{self, Format};
use crate::web::error::PageError;
use crate::web::form::{Control, Field, Form};
use crate::web::layout::Layout;
use crate::web::session::WebSession;
use crate::web::when;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

const PATH: &str = "/admin/imports";
/// Runs per page of the list.
const RUNS_PER_PAGE: u64 = 25;

/// One problem of a stored report (`sync::report::Issue` as stored).
#[derive(Debug, Clone, Deserialize)]
pub struct StoredIssue {
    /// File name, or `(file set)`.
    pub file: String,
    /// Record number (the header is 1).
    pub record: Option<u64>,
    /// Column name.
    pub column: Option<String>,
    /// Stable code.
    pub code: String,
    /// What is wrong.
    pub message: String,
}

/// A run's counts as stored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct StoredCounts {
    created: u64,
    updated: u64,
    unchanged: u64,
    reactivated: u64,
    deactivated: u64,
    rejected: u64,
}

/// The parts of a stored report the page shows.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct StoredReport {
    errors: Vec<StoredIssue>,
    warnings: Vec<StoredIssue>,
    entities: std::collections::BTreeMap<String, serde_json::Value>,
    error_cap_reached: bool,
}

/// One row of the counts table.
struct CountRow {
    entity: String,
    counts: StoredCounts,
}

/// A run in the list.
struct RunLine {
    id: i64,
    started: String,
    format: String,
    status: &'static str,
    source: String,
    errors: i64,
    warnings: i64,
}

fn status_text(run: &sync_run::Model) -> &'static str {
    match run.status.as_str() {
        "applied" => "Applied",
        "dry_run" => "Dry run (nothing changed)",
        "refused" => "Refused (nothing changed)",
        _ => "Failed (nothing changed)",
    }
}

impl From<&sync_run::Model> for RunLine {
    fn from(run: &sync_run::Model) -> Self {
        Self {
            id: run.id,
            started: when(run.started_at),
            format: run.format.clone(),
            status: status_text(run),
            source: run.source.clone(),
            errors: run.error_count,
            warnings: run.warning_count,
        }
    }
}

/// The imports page.
#[derive(Template, WebTemplate)]
#[template(path = "web/admin/imports.html")]
struct ImportsPage {
    title: String,
    layout: Layout,
    form: Option<Form>,
    runs: Vec<RunLine>,
    next: Option<String>,
}

/// One run's report.
#[derive(Template, WebTemplate)]
#[template(path = "web/admin/import_run.html")]
struct RunPage {
    title: String,
    layout: Layout,
    run: RunLine,
    dry_run: bool,
    finished: String,
    counts: Vec<CountRow>,
    errors: Vec<StoredIssue>,
    warnings: Vec<StoredIssue>,
    cap_reached: bool,
}

fn upload_form(session: &WebSession) -> Form {
    Form {
        // A multipart form carries the CSRF token in its action (the upload's fields are
        // the API's: format, dryRun and the files).
        action: format!("{PATH}?csrf={}", session.csrf),
        csrf: session.csrf.clone(),
        fields: vec![
            Field::new("file", "Files", Control::Files { accept: ".csv,.zip" })
                .hint("The CSV files of one export (users.csv, orgs.csv, …) or one zip holding them."),
            Field::new(
                "format",
                "Format",
                Control::Select(vec![
                    ("sds-v2.1".into(), "SDS v2.1 (School Data Sync)".into()),
                    ("sds-v1".into(), "SDS v1 (classic School Data Sync)".into()),
                ]),
            )
            .value("sds-v2.1"),
            Field::new(
                "dryRun",
                "What to do",
                Control::Select(vec![
                    ("true".into(), "Dry run (change nothing)".into()),
                    ("false".into(), "Apply".into()),
                ]),
            )
            .hint("A dry run checks the files and counts the changes without making them. If its report has no errors, upload the same files again with Apply.")
            .value("true"),
        ],
    }
}

/// `?cursor=` of the runs list.
#[derive(Debug, Default, Deserialize)]
pub struct RunsQuery {
    cursor: Option<String>,
}

async fn imports_page(
    state: &AppState,
    session: &WebSession,
    form: Option<Form>,
    cursor: Option<&str>,
) -> Result<ImportsPage, PageError> {
    let before = crate::web::id_cursor(cursor)?;
    let (rows, more) =
        sync::runs::page(&state.db, session.principal.tenant, before, RUNS_PER_PAGE).await?;
    let next = more
        .then(|| rows.last().map(|r| format!("{PATH}?cursor={}", r.id)))
        .flatten();
    let may_run = policy::run_import(&session.principal).is_ok();
    Ok(ImportsPage {
        title: "Imports".into(),
        layout: Layout::new(session, PATH),
        form: form.or_else(|| may_run.then(|| upload_form(session))),
        runs: rows.iter().map(RunLine::from).collect(),
        next,
    })
}

/// The upload form and the runs.
pub async fn show(
    State(state): State<AppState>,
    session: WebSession,
    Query(query): Query<RunsQuery>,
) -> Result<Response, PageError> {
    policy::read_imports(&session.principal)?;
    let page = imports_page(&state, &session, None, query.cursor.as_deref()).await?;
    Ok(page.into_response())
}

/// `?csrf=` of the upload form.
#[derive(Debug, Default, Deserialize)]
pub struct CsrfQuery {
    #[serde(default)]
    csrf: String,
}

fn parse_format(raw: Option<&str>) -> Result<Format, String> {
    match raw {
        Some("sds-v1") => Ok(Format::SdsV1),
        Some("sds-v2.1") | None => Ok(Format::SdsV21),
        Some(other) => Err(format!(
            "'{other}' is not a format: choose SDS v2.1 or SDS v1"
        )),
    }
}

/// Receives an upload and imports it; a problem with the upload itself comes back next to
/// the Files field, a run (applied, dry, refused) goes to its report.
pub async fn upload(
    State(state): State<AppState>,
    session: WebSession,
    Query(query): Query<CsrfQuery>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, PageError> {
    session.check_csrf(&query.csrf)?;
    policy::run_import(&session.principal)?;
    let mut form = upload_form(&session);
    let outcome = match multipart {
        Ok(multipart) => receive_and_import(&state, &session, multipart).await,
        Err(e) => Err(Refused::Field(
            "file",
            format!("send the files with the form ({})", e.body_text()),
        )),
    };
    match outcome {
        Ok(Some(run)) => Ok(Redirect::to(&format!("{PATH}/{run}")).into_response()),
        Ok(None) => Err(PageError::Internal("an import kept no run".into())),
        Err(Refused::Page(e)) => Err(e),
        Err(Refused::Field(field, message)) => {
            if let Some(field) = form.field_mut(field) {
                field.error = Some(message);
            }
            let page = imports_page(&state, &session, Some(form), None).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

/// Why an upload was not imported.
enum Refused {
    /// Something wrong with the upload: the field and the message shown next to it.
    Field(&'static str, String),
    /// A failure of ours or a busy database: its page.
    Page(PageError),
}

impl From<ApiError> for Refused {
    fn from(error: ApiError) -> Self {
        match error.status() {
            StatusCode::SERVICE_UNAVAILABLE => Refused::Page(PageError::Busy),
            s if s.is_server_error() => Refused::Page(PageError::Internal(format!(
                "import upload: {}",
                error.message()
            ))),
            _ => Refused::Field("file", error.message().to_string()),
        }
    }
}

/// The run id of the import, or why it was not imported.
async fn receive_and_import(
    state: &AppState,
    session: &WebSession,
    multipart: Multipart,
) -> Result<Option<i64>, Refused> {
    let limits = UploadLimits::from_config(&state.config);
    let received = upload::receive(multipart, limits).await?;
    let format =
        parse_format(received.format.as_deref()).map_err(|m| Refused::Field("format", m))?;
    let dry_run = received.dry_run.as_deref() != Some("false");
    let report = import_upload(state, &session.principal, received, format, dry_run, false).await?;
    Ok(report.run_id)
}

async fn find_run(
    state: &AppState,
    session: &WebSession,
    id: &str,
) -> Result<sync_run::Model, PageError> {
    policy::read_imports(&session.principal)?;
    let id = crate::web::id_param(id)?;
    sync::runs::find(&state.db, session.principal.tenant, id)
        .await?
        .ok_or(PageError::NotFound)
}

/// The stored report as `session` may read it: without the values its issues quote unless
/// the caller reads contacts ([`policy::contact_values`], as `GET /api/v1/imports/{id}`).
fn stored_report(session: &WebSession, run: &sync_run::Model) -> StoredReport {
    let report: serde_json::Value = serde_json::from_str(&run.report).unwrap_or_default();
    let report = match policy::contact_values(&session.principal) {
        policy::ContactValues::Shown => report,
        policy::ContactValues::Hidden => crate::sync::report::without_values(report),
    };
    serde_json::from_value(report).unwrap_or_default()
}

/// One run's report.
pub async fn run(
    State(state): State<AppState>,
    session: WebSession,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let run = find_run(&state, &session, &id).await?;
    let report = stored_report(&session, &run);
    let counts = report
        .entities
        .iter()
        .filter_map(|(entity, value)| {
            let counts = serde_json::from_value::<StoredCounts>(value.clone()).ok()?;
            value.is_object().then(|| CountRow {
                entity: entity.clone(),
                counts,
            })
        })
        .collect();
    Ok(RunPage {
        title: format!("Import run {}", run.id),
        layout: Layout::new(&session, PATH),
        dry_run: run.dry_run,
        finished: when(run.finished_at),
        run: RunLine::from(&run),
        counts,
        errors: report.errors,
        warnings: report.warnings,
        cap_reached: report.error_cap_reached,
    }
    .into_response())
}

/// A CSV cell that no spreadsheet runs as a formula: text starting with `=`, `+`, `-`, `@`,
/// a tab or a carriage return gets a leading `'` (OWASP's advice), then CSV quoting.
pub fn safe_cell(text: &str) -> String {
    let defused = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if defused.contains([',', '"', '\n', '\r']) || defused != defused.trim() {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

/// The errors of a run as CSV: `file,record,column,code,message`.
pub fn errors_csv(errors: &[StoredIssue]) -> String {
    let mut out = String::from("file,record,column,code,message\r\n");
    for issue in errors {
        let record = issue.record.map(|r| r.to_string()).unwrap_or_default();
        let cells = [
            safe_cell(&issue.file),
            record,
            safe_cell(issue.column.as_deref().unwrap_or("")),
            safe_cell(&issue.code),
            safe_cell(&issue.message),
        ];
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

/// The run's errors as a CSV download.
pub async fn errors_download(
    State(state): State<AppState>,
    session: WebSession,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let run = find_run(&state, &session, &id).await?;
    let csv = errors_csv(&stored_report(&session, &run).errors);
    let disposition = format!("attachment; filename=\"import-{}-errors.csv\"", run.id);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        csv,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_never_run_as_formulas() {
        assert_eq!(safe_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(safe_cell("+1"), "'+1");
        assert_eq!(safe_cell("-2+3"), "'-2+3");
        assert_eq!(safe_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(safe_cell("\t=1"), "'\t=1");
        assert_eq!(safe_cell("users.csv"), "users.csv");
        assert_eq!(safe_cell("a, b"), "\"a, b\"");
    }

    #[test]
    fn the_csv_has_a_header_and_a_line_per_error() {
        let csv = errors_csv(&[StoredIssue {
            file: "users.csv".into(),
            record: Some(3),
            column: Some("email".into()),
            code: "invalid_email".into(),
            message: "=cmd| is not an email".into(),
        }]);
        assert_eq!(
            csv,
            "file,record,column,code,message\r\nusers.csv,3,email,invalid_email,'=cmd| is not an email\r\n"
        );
    }
}
