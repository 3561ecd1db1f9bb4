//! `POST /api/v1/imports` (upload an SDS file set and import it with the same rules and
//! report as the CLI), `GET /api/v1/imports` and `GET /api/v1/imports/{id}`.

use super::AppState;
use super::error::{ApiError, ErrorBody, current_request_id};
use super::extract::{ApiPath, ApiQuery, IdPageParams, id_cursor};
use super::upload::{self, UploadLimits};
use crate::audit::{self, AuditEntry};
use crate::auth::{Principal, policy};
use crate::entities::sync_run;
use crate::sync::report::{Counts, ImportReport, RunStatus};
use crate::sync::{self, Format, ImportRequest, NoProgress};
use axum::Json;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Options given in the query string (multipart fields of the same name win).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// `sds-v1` or `sds-v2.1`.
    #[param(pattern = r"^(sds-v1|sds-v2\.1)$")]
    pub format: Option<String>,
    /// `true`: check and count everything, change nothing (also `1`/`yes`; `false`, `0`,
    /// `no` or empty: apply).
    #[param(pattern = "(?i)^(true|false|1|0|yes|no|)$")]
    pub dry_run: Option<String>,
    /// `true`: apply even past the deletion guards (same values as `dryRun`).
    #[param(pattern = "(?i)^(true|false|1|0|yes|no|)$")]
    pub force: Option<String>,
}

/// The multipart body of an upload (for the OpenAPI document).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ImportUpload {
    /// `sds-v1` or `sds-v2.1` (or the `format` query parameter).
    #[schema(pattern = r"^(sds-v1|sds-v2\.1)$")]
    format: Option<String>,
    /// `true` for a dry run.
    #[schema(rename = "dryRun")]
    dry_run: Option<bool>,
    /// `true` to apply past the deletion guards.
    force: Option<bool>,
    /// The CSV files of the set (one part per file, the part's filename is the file name),
    /// or one zip holding them.
    #[schema(value_type = Vec<String>, format = Binary, min_items = 1)]
    file: Vec<Vec<u8>>,
}

/// One import run.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportRun {
    /// Run id.
    pub id: String,
    /// `sds-v1` or `sds-v2.1`.
    pub format: String,
    /// Where the files came from.
    pub source: String,
    /// `applied`, `dry_run`, `refused` or `failed`.
    pub status: String,
    /// A dry run.
    pub dry_run: bool,
    /// Forced past the guards.
    pub forced: bool,
    /// Start (UTC).
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// End (UTC).
    pub finished_at: chrono::DateTime<chrono::Utc>,
    /// Totals over every entity.
    pub counts: Counts,
    /// Errors.
    pub error_count: i64,
    /// Warnings.
    pub warning_count: i64,
    /// The full report (the CLI's `--json` output); only on `GET /api/v1/imports/{id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub report: Option<serde_json::Value>,
}

/// A page of import runs, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportRunPage {
    /// The runs.
    pub items: Vec<ImportRun>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A run as the API shows it; its report (`with_report`) without the values its issues
/// quote unless the caller reads contacts ([`policy::contact_values`]).
fn run(model: sync_run::Model, with_report: Option<policy::ContactValues>) -> ImportRun {
    let counts = Counts::from(&model);
    ImportRun {
        id: model.id.to_string(),
        format: model.format,
        source: model.source,
        status: model.status.as_str().to_string(),
        dry_run: model.dry_run,
        forced: model.forced,
        started_at: model.started_at,
        finished_at: model.finished_at,
        counts,
        error_count: model.error_count,
        warning_count: model.warning_count,
        report: with_report.map(|values| {
            let report = serde_json::from_str(&model.report).unwrap_or_default();
            match values {
                policy::ContactValues::Shown => report,
                policy::ContactValues::Hidden => crate::sync::report::without_values(report),
            }
        }),
    }
}

fn flag(name: &str, value: Option<&str>) -> Result<bool, ApiError> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("" | "false" | "0" | "no") => Ok(false),
        Some("true" | "1" | "yes") => Ok(true),
        Some(other) => Err(ApiError::bad_request(
            "invalid_field",
            format!("{name} must be true or false, not '{other}'"),
        )),
    }
}

fn format(value: Option<&str>) -> Result<Format, ApiError> {
    match value {
        Some("sds-v1") => Ok(Format::SdsV1),
        Some("sds-v2.1") => Ok(Format::SdsV21),
        Some(other) => Err(ApiError::bad_request(
            "invalid_field",
            format!("format must be sds-v1 or sds-v2.1, not '{other}'"),
        )),
        None => Err(ApiError::bad_request(
            "missing_format",
            "say which format the files are: format=sds-v1 or format=sds-v2.1",
        )),
    }
}

/// Uploads an SDS v1 or v2.1 file set (multipart CSV files, or one zip) and imports it as a
/// full snapshot, all-or-nothing, with the rules and report of `parent-connection import`.
/// 201: applied; 200: dry run; 422 `import_refused`: nothing changed, the report is in
/// `details`.
#[utoipa::path(
    post,
    path = "/api/v1/imports",
    tag = "imports",
    params(ImportParams),
    request_body(content = ImportUpload, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Applied; the report (Location: the run)", body = Object),
        (status = 200, description = "Dry run; the report", body = Object),
        (status = 400, description = "Malformed upload or options", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Needs global-admin or teams-admin", body = ErrorBody),
        (status = 413, description = "Too large (body, file, or unpacked zip)", body = ErrorBody),
        (status = 415, description = "Not multipart/form-data", body = ErrorBody),
        (status = 422, description = "Refused: errors in the files or a guard; the report is in details", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<ImportParams>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    policy::run_import(&principal)?;
    let multipart = multipart.map_err(|e| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("send the files as multipart/form-data ({})", e.body_text()),
        )
    })?;
    let limits = UploadLimits::from_config(&state.config);
    let upload = upload::receive(multipart, limits).await?;
    let format = format(upload.format.as_deref().or(params.format.as_deref()))?;
    let dry_run = flag(
        "dryRun",
        upload.dry_run.as_deref().or(params.dry_run.as_deref()),
    )?;
    let force = flag("force", upload.force.as_deref().or(params.force.as_deref()))?;
    let report = import_upload(&state, &principal, upload, format, dry_run, force).await?;
    let body = serde_json::to_value(&report).map_err(ApiError::internal)?;
    match report.status {
        RunStatus::Applied => {
            let mut response = (StatusCode::CREATED, Json(body)).into_response();
            if let Some(id) = report.run_id
                && let Ok(location) = HeaderValue::from_str(&format!("/api/v1/imports/{id}"))
            {
                response.headers_mut().insert(header::LOCATION, location);
            }
            Ok(response)
        }
        RunStatus::DryRun => Ok((StatusCode::OK, Json(body)).into_response()),
        RunStatus::Refused | RunStatus::Failed => {
            let first = report
                .errors
                .first()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "refused".into());
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "import_refused",
                format!(
                    "the import was refused and nothing changed ({} error(s)); first: {first}",
                    report.errors.len()
                ),
            )
            .with_details(body))
        }
    }
}

/// Imports a received upload for `principal` (who may run imports) as a full snapshot — the
/// API's and the imports page's one path — and records `import.upload` in the audit log. The
/// import runs to its end even if the client goes away; the upload's folder lives until then.
pub async fn import_upload(
    state: &AppState,
    principal: &Principal,
    upload: upload::Upload,
    format: Format,
    dry_run: bool,
    force: bool,
) -> Result<ImportReport, ApiError> {
    let request = ImportRequest {
        tenant: principal.tenant_slug.clone(),
        format,
        dir: upload.files_dir.clone(),
        source: Some(upload_source(&upload.files, upload.zipped)),
        dry_run,
        force,
        actor: principal.actor(),
        privacy: (*state.privacy).clone(),
    };
    let files = upload.files.clone();
    let zipped = upload.zipped;
    let db = state.jobs.clone();
    let config = state.config.clone();
    let report = tokio::spawn(async move {
        let result = sync::import(&db, &config.import, &request, Arc::new(NoProgress)).await;
        drop(upload);
        result
    })
    .await
    .map_err(|e| ApiError::internal(format!("import task: {e}")))?
    .map_err(|e| match e {
        sync::SyncError::Tenant(_) => ApiError::not_found("tenant"),
        other => ApiError::failure(other),
    })?;
    audit::record(
        &state.db,
        AuditEntry {
            tenant_id: Some(principal.tenant),
            actor: &principal.actor(),
            action: "import.upload",
            target: report.run_id.map(|id| format!("sync_run:{id}")),
            before: None,
            after: Some(serde_json::json!({
                "format": format.as_str(),
                "dryRun": dry_run,
                "force": force,
                "zip": zipped,
                "files": files,
                "status": report.status.as_str(),
                "requestId": current_request_id(),
            })),
        },
    )
    .await?;
    Ok(report)
}

/// Import runs of the tenant, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/imports",
    tag = "imports",
    params(IdPageParams),
    responses(
        (status = 200, description = "A page of runs", body = ImportRunPage),
        (status = 400, description = "Bad paging parameters", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Needs global-admin, teams-admin or tenant-admin", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<IdPageParams>,
) -> Result<Json<ImportRunPage>, ApiError> {
    policy::read_imports(&principal)?;
    let request = params.request(&state)?;
    let before = id_cursor(&request)?;
    let (rows, more) = sync::runs::page(&state.db, principal.tenant, before, request.limit).await?;
    let next_cursor = if more {
        rows.last().map(|r| r.id.to_string())
    } else {
        None
    };
    Ok(Json(ImportRunPage {
        items: rows.into_iter().map(|r| run(r, None)).collect(),
        next_cursor,
    }))
}

/// One import run with its full report. Its issues' messages quote the files' values:
/// tenant admins get them without (file, record, column and code only).
#[utoipa::path(
    get,
    path = "/api/v1/imports/{id}",
    tag = "imports",
    params(("id" = String, Path, description = "Run id")),
    responses(
        (status = 200, description = "The run and its report", body = ImportRun),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Needs global-admin, teams-admin or tenant-admin", body = ErrorBody),
        (status = 404, description = "No such run in the tenant", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ImportRun>, ApiError> {
    policy::read_imports(&principal)?;
    let Ok(id) = id.parse::<i64>() else {
        return Err(ApiError::not_found("import run"));
    };
    let row = sync::runs::find(&state.db, principal.tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("import run"))?;
    Ok(Json(run(row, Some(policy::contact_values(&principal)))))
}

/// How a run from an upload names its source: the uploaded file names, not the temporary
/// folder they were unpacked to.
fn upload_source(files: &[upload::ReceivedFile], zipped: bool) -> String {
    let what = if zipped { "upload (zip)" } else { "upload" };
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    format!("{what}: {}", names.join(", "))
}
