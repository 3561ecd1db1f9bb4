//! `GET /teacher/chats` (the teacher's chats, newest first, paginated), `GET
//! /teacher/chats/{id}` (members, removal banners, invitations; for the owner a form to
//! remove each guardian or block them), `POST /teacher/chats/{id}/members/{contact}/remove`
//! (as `DELETE /api/v1/chats/{id}/members/{contactId}`) and `POST
//! /teacher/chats/{id}/members/{contact}/block` (as `POST /api/v1/blocks` with
//! `removeFromChat`: the guardian is blocked and leaves this chat).

use super::{Paging, next_link, page_size, student_href, teacher, when};
use crate::api::AppState;
use crate::auth::policy;
use crate::chats::ChatItem;
use crate::chats::blocks;
use crate::chats::store::{self, ChatPage};
use crate::roster;
use crate::web::error::PageError;
use crate::web::layout::Layout;
use crate::web::session::WebSession;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;

const LIST: &str = "/teacher/chats";

/// A chat in the list.
struct ChatRow {
    href: String,
    student: String,
    members: String,
    banners: usize,
    started: String,
}

/// The teacher's chats.
#[derive(Template, WebTemplate)]
#[template(path = "web/teacher/chats.html")]
struct ChatsPage {
    title: String,
    layout: Layout,
    chats: Vec<ChatRow>,
    next: Option<String>,
}

fn guardian_names(chat: &ChatItem) -> String {
    let names: Vec<_> = chat
        .members
        .iter()
        .map(|m| m.display_name.as_str())
        .collect();
    if names.is_empty() {
        "no members".into()
    } else {
        names.join(", ")
    }
}

/// `GET /teacher/chats`.
pub async fn list(
    State(state): State<AppState>,
    session: WebSession,
    Query(paging): Query<Paging>,
) -> Result<Response, PageError> {
    let me = teacher(&session)?;
    let viewer = policy::chat_viewer(&me)?;
    let (items, next) = store::list(
        &state.db,
        session.principal.tenant,
        &viewer,
        ChatPage {
            student_source_id: None,
            before: paging.id()?,
            limit: page_size(&state),
        },
    )
    .await?;
    let students: Vec<String> = items.iter().map(|c| c.student_id.clone()).collect();
    let names = roster::student_names(&state.db, session.principal.tenant, &students).await?;
    let chats = items
        .iter()
        .map(|chat| ChatRow {
            href: format!("{LIST}/{}", chat.id),
            student: names
                .get(&chat.student_id)
                .cloned()
                .unwrap_or_else(|| chat.student_id.clone()),
            members: guardian_names(chat),
            banners: chat.banners.len(),
            started: when(chat.created_at),
        })
        .collect();
    Ok(ChatsPage {
        title: "My chats".into(),
        layout: Layout::new(&session, LIST),
        chats,
        next: next_link(LIST, next),
    }
    .into_response())
}

/// A member of the chat.
struct MemberRow {
    name: String,
    kind: String,
    relationship: String,
    link: String,
    added: String,
    /// The owner's forms for a guardian: (remove action, block action).
    actions: Option<(String, String)>,
}

/// A removal banner.
struct BannerRow {
    message: String,
    since: String,
    remove: Option<String>,
    name: String,
}

/// An invitation of a guardian who has not joined.
struct InvitationRow {
    name: String,
    channel: String,
    state: String,
}

/// One chat.
#[derive(Template, WebTemplate)]
#[template(path = "web/teacher/chat.html")]
struct ChatPageView {
    title: String,
    layout: Layout,
    csrf: String,
    student: String,
    student_href: String,
    members: Vec<MemberRow>,
    banners: Vec<BannerRow>,
    invitations: Vec<InvitationRow>,
    notice: Option<&'static str>,
}

/// `?started=1`, `?done=removed|blocked` after a form.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ChatQuery {
    started: Option<String>,
    done: Option<String>,
}

fn chat_id(raw: &str) -> Result<i64, PageError> {
    raw.parse().map_err(|_| PageError::NotFound)
}

/// What the chat page shows of a chat (the forms only for its owner).
struct ChatView {
    chat: ChatItem,
    student_name: String,
    owner: bool,
    notice: Option<&'static str>,
}

fn view(session: &WebSession, shown: ChatView) -> ChatPageView {
    let ChatView {
        chat,
        student_name,
        owner,
        notice,
    } = shown;
    let base = format!("{LIST}/{}/members", chat.id);
    let name_of = |contact: &str| {
        chat.members
            .iter()
            .find(|m| m.kind == "guardian" && m.id == contact)
            .map(|m| m.display_name.clone())
            .unwrap_or_else(|| format!("contact {contact}"))
    };
    let banners = chat
        .banners
        .iter()
        .map(|b| BannerRow {
            message: b.message.clone(),
            since: when(b.created_at),
            remove: owner.then(|| format!("{base}/{}/remove", b.contact_id)),
            name: name_of(&b.contact_id),
        })
        .collect();
    let invitations = chat
        .invitations
        .iter()
        .map(|i| InvitationRow {
            name: name_of(&i.contact_id),
            channel: i.channel.clone().unwrap_or_else(|| "not sent".into()),
            state: match (&i.state, &i.reason) {
                (Some(state), _) => state.as_str().to_string(),
                (None, Some(reason)) => reason.replace('_', " "),
                (None, None) => i.status.clone(),
            },
        })
        .collect();
    let members = chat
        .members
        .iter()
        .map(|m| MemberRow {
            name: m.display_name.clone(),
            kind: m.kind.clone(),
            relationship: m.relationship.clone().unwrap_or_default(),
            link: m.link_status.clone().unwrap_or_default(),
            added: when(m.added_at),
            actions: (owner && m.kind == "guardian").then(|| {
                (
                    format!("{base}/{}/remove", m.id),
                    format!("{base}/{}/block", m.id),
                )
            }),
        })
        .collect();
    ChatPageView {
        title: format!("Chat about {student_name}"),
        layout: Layout::new(session, LIST),
        csrf: session.csrf.clone(),
        student_href: student_href(&chat.student_id),
        student: student_name,
        members,
        banners,
        invitations,
        notice,
    }
}

/// `GET /teacher/chats/{id}`.
pub async fn show(
    State(state): State<AppState>,
    session: WebSession,
    Path(id): Path<String>,
    Query(query): Query<ChatQuery>,
) -> Result<Response, PageError> {
    let me = teacher(&session)?;
    let viewer = policy::chat_viewer(&me)?;
    let chat = store::read(&state.db, session.principal.tenant, chat_id(&id)?, &viewer)
        .await?
        .ok_or(PageError::NotFound)?;
    let notice = match (query.started.is_some(), query.done.as_deref()) {
        (true, _) => {
            Some("The chat is ready. Invitations go to the guardians who have not joined.")
        }
        (_, Some("removed")) => Some("The guardian was removed from this chat."),
        (_, Some("blocked")) => Some(
            "The guardian was blocked and removed from this chat. Lift the block on My blocks.",
        ),
        _ => None,
    };
    let owner = chat.owner_id == policy::chat_owner(&me)?;
    let student_name = super::students::student_name(&state, &session, &chat.student_id).await?;
    let shown = ChatView {
        chat,
        student_name,
        owner,
        notice,
    };
    Ok(view(&session, shown).into_response())
}

/// The chat and the guardian named by a member form's path, for the chat's owner.
fn member_path(raw: &(String, String)) -> Result<(i64, i64), PageError> {
    Ok((
        chat_id(&raw.0)?,
        raw.1.parse().map_err(|_| PageError::NotFound)?,
    ))
}

/// `POST /teacher/chats/{id}/members/{contact}/remove`.
pub async fn remove_member(
    State(state): State<AppState>,
    session: WebSession,
    Path(path): Path<(String, String)>,
    axum::Form(sent): axum::Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    session.check_csrf(sent.get("csrf").map(String::as_str).unwrap_or(""))?;
    let me = teacher(&session)?;
    let owner = policy::chat_owner(&me)?;
    let (chat, contact) = member_path(&path)?;
    store::remove_member_now(&state.db, session.principal.tenant, chat, &owner, contact).await?;
    Ok(Redirect::to(&format!("{LIST}/{chat}?done=removed")).into_response())
}

/// `POST /teacher/chats/{id}/members/{contact}/block`.
pub async fn block(
    State(state): State<AppState>,
    session: WebSession,
    Path(path): Path<(String, String)>,
    axum::Form(sent): axum::Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    session.check_csrf(sent.get("csrf").map(String::as_str).unwrap_or(""))?;
    let me = teacher(&session)?;
    let owner = policy::chat_owner(&me)?;
    let (chat, contact) = member_path(&path)?;
    let actor = session.principal.actor();
    blocks::block(
        &state.db,
        session.principal.tenant,
        &owner,
        contact,
        Some(chat),
        &actor,
    )
    .await?;
    Ok(Redirect::to(&format!("{LIST}/{chat}?done=blocked")).into_response())
}
