//! `GET /teacher/blocks` (the teacher's block list, newest first, paginated) and `POST
//! /teacher/blocks/{contact}/unblock` (as `DELETE /api/v1/blocks/{contactId}`).

use super::{Paging, next_link, page_size, teacher, when};
use crate::api::AppState;
use crate::auth::policy;
use crate::chats::blocks;
use crate::web::error::PageError;
use crate::web::layout::Layout;
use crate::web::session::WebSession;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;

const PATH: &str = "/teacher/blocks";

/// A blocked guardian.
struct BlockRow {
    name: String,
    since: String,
    unblock: String,
}

/// The block list.
#[derive(Template, WebTemplate)]
#[template(path = "web/teacher/blocks.html")]
struct BlocksPage {
    title: String,
    layout: Layout,
    csrf: String,
    blocks: Vec<BlockRow>,
    next: Option<String>,
    unblocked: bool,
}

/// `?cursor=`, `?unblocked=1`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct BlocksQuery {
    cursor: Option<String>,
    unblocked: Option<String>,
}

/// `GET /teacher/blocks`.
pub async fn list(
    State(state): State<AppState>,
    session: WebSession,
    Query(query): Query<BlocksQuery>,
) -> Result<Response, PageError> {
    let me = teacher(&session)?;
    let owner = policy::chat_owner(&me)?;
    let paging = Paging {
        cursor: query.cursor,
    };
    let (items, next) = blocks::list(
        &state.db,
        session.principal.tenant,
        &owner,
        paging.id()?,
        page_size(&state),
    )
    .await?;
    Ok(BlocksPage {
        title: "My blocks".into(),
        layout: Layout::new(&session, PATH),
        csrf: session.csrf.clone(),
        blocks: items
            .into_iter()
            .map(|b| BlockRow {
                unblock: format!("{PATH}/{}/unblock", b.contact_id),
                name: b.display_name,
                since: when(b.created_at),
            })
            .collect(),
        next: next_link(PATH, next),
        unblocked: query.unblocked.is_some(),
    }
    .into_response())
}

/// `POST /teacher/blocks/{contact}/unblock`.
pub async fn unblock(
    State(state): State<AppState>,
    session: WebSession,
    Path(contact): Path<String>,
    axum::Form(sent): axum::Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    session.check_csrf(sent.get("csrf").map(String::as_str).unwrap_or(""))?;
    let me = teacher(&session)?;
    let owner = policy::chat_owner(&me)?;
    let contact = crate::web::id_param(&contact)?;
    let actor = session.principal.actor();
    blocks::unblock(&state.db, session.principal.tenant, &owner, contact, &actor).await?;
    Ok(Redirect::to(&format!("{PATH}?unblocked=1")).into_response())
}
