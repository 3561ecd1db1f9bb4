//! `GET /guardian`: a parent's or guardian's own page (a contact session; staff get the 403
//! page from the policy, `policy::guardian`, like the API's guardian routes):
//!
//! - their children (active links, active students) and each child's teachers, with a
//!   button per teacher that starts (or re-opens) a chat about that child —
//!   `POST /guardian/chats`, the service of `POST /api/v1/guardian/chats`; a teacher who
//!   blocked the guardian: the page again, status 403, saying so;
//! - their chats, newest first, a page at a time (`?cursor=`, "Next page of chats"), as
//!   `GET /api/v1/guardian/chats` lists them;
//! - the weekly digest (`POST /guardian/digest`: unsubscribe, or subscribe again) and text
//!   messages (`POST /guardian/sms`: stop, or allow again), each change audited
//!   ([`crate::guardians::preferences`]);
//! - their language (`POST /guardian/language`: English, Español, or the school's), which
//!   this page, their invitations and their digest are in (docs/languages.md).
//!
//! The page is in the guardian's language (their choice, else the school's).
//!
//! Each form answers `303` back to the page with a status line (post/redirect/get).

use crate::api::AppState;
use crate::auth::policy;
use crate::chats::ChatError;
use crate::chats::store::{self, ChatPage, Viewer};
use crate::domain::LanguageTag;
use crate::guardians::family::{self, Child};
use crate::guardians::preferences::{self, Preferences};
use crate::i18n::{Arg, Locale};
use crate::web::error::PageError;
use crate::web::layout::Layout;
use crate::web::session::WebSession;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;

const PATH: &str = "/guardian";

/// One chat as the page lists it, in the guardian's language.
#[derive(Debug, Clone)]
struct ChatLine {
    line: String,
}

/// The guardian's page.
#[derive(Template, WebTemplate)]
#[template(path = "web/guardian/home.html")]
struct GuardianPage {
    title: String,
    layout: Layout,
    csrf: String,
    prefs: Preferences,
    children: Vec<Child>,
    chats: Vec<ChatLine>,
    next_page: Option<String>,
    done: Option<String>,
    problem: Option<String>,
    /// The language choices: (value, text); the empty value is the school's language.
    languages: Vec<(String, String)>,
    chosen_language: String,
    locale: Locale,
}

impl GuardianPage {
    /// Message `id` in the guardian's language.
    fn t(&self, id: &str) -> String {
        self.locale.text(id)
    }

    /// Message `id` with one argument.
    fn t1(&self, id: &str, name: &str, value: &str) -> String {
        self.locale.format(id, &[(name, Arg::Text(value))])
    }

    /// Message `id` with two arguments.
    fn t2(&self, id: &str, n1: &str, v1: &str, n2: &str, v2: &str) -> String {
        self.locale
            .format(id, &[(n1, Arg::Text(v1)), (n2, Arg::Text(v2))])
    }
}

/// `?cursor=` (chats) and `?done=` (the status line after a form).
#[derive(Debug, Default, serde::Deserialize)]
pub struct PageQuery {
    cursor: Option<String>,
    done: Option<String>,
}

fn done_message(done: Option<&str>, locale: Locale) -> Option<String> {
    let id = match done? {
        "chat" => "guardian-done-chat",
        "digest-off" => "guardian-done-digest-off",
        "digest-on" => "guardian-done-digest-on",
        "sms-off" => "guardian-done-sms-off",
        "sms-on" => "guardian-done-sms-on",
        "language" => "guardian-done-language",
        _ => return None,
    };
    Some(locale.text(id))
}

/// The languages a guardian may choose: the school's, then each shipped locale by its own
/// name.
fn language_choices(locale: Locale) -> Vec<(String, String)> {
    let mut choices = vec![(String::new(), locale.text("guardian-language-default"))];
    choices.extend(Locale::all().map(|l| (l.tag().to_string(), l.text("language-name"))));
    choices
}

/// A name for `id` from the family, else the id itself.
fn name_of<'a>(children: &'a [Child], student: &'a str, teacher: &'a str) -> (String, String) {
    let child = children.iter().find(|c| c.source_id == student);
    let student_name = child.map_or(student.to_string(), |c| c.name.clone());
    let teacher_name = children
        .iter()
        .flat_map(|c| c.teachers.iter())
        .find(|t| t.source_id == teacher)
        .map_or(teacher.to_string(), |t| t.name.clone());
    (student_name, teacher_name)
}

async fn page(
    state: &AppState,
    session: &WebSession,
    contact: i64,
    cursor: Option<&str>,
) -> Result<GuardianPage, PageError> {
    let tenant = session.principal.tenant;
    let prefs = preferences::read(&state.db, &opt_outs(state), tenant, contact)
        .await?
        .ok_or(PageError::Forbidden(
            "The school's records no longer list you. If you think this is a mistake, contact the school.",
        ))?;
    let children = family::children(&state.db, tenant, contact).await?;
    let before = crate::web::id_cursor(cursor)?;
    let (items, next_page) = store::list(
        &state.db,
        tenant,
        &Viewer::Guardian(contact),
        ChatPage {
            student_source_id: None,
            before,
            limit: state.config.api.default_page_size.clamp(1, 100),
        },
    )
    .await?;
    let chats = items
        .iter()
        .map(|chat| {
            let (student, teacher) = name_of(&children, &chat.student_id, &chat.owner_id);
            let date = prefs.locale.long_date(chat.created_at, chrono_tz::UTC);
            ChatLine {
                line: prefs.locale.format(
                    "guardian-chat-line",
                    &[
                        ("child", Arg::Text(&student)),
                        ("teacher", Arg::Text(&teacher)),
                        ("date", Arg::Text(&date)),
                    ],
                ),
            }
        })
        .collect();
    let locale = prefs.locale;
    Ok(GuardianPage {
        title: locale.text("guardian-title"),
        layout: Layout::new(session, PATH).in_language(locale, &session.principal.tenant_slug),
        csrf: session.csrf.clone(),
        chosen_language: prefs
            .language
            .as_deref()
            .and_then(Locale::find)
            .map(|l| l.tag().to_string())
            .unwrap_or_default(),
        prefs,
        children,
        chats,
        next_page,
        done: None,
        problem: None,
        languages: language_choices(locale),
        locale,
    })
}

/// Shows the guardian's page.
pub async fn show(
    State(state): State<AppState>,
    session: WebSession,
    Query(query): Query<PageQuery>,
) -> Result<Response, PageError> {
    let contact = policy::guardian(&session.principal)?;
    let mut page = page(&state, &session, contact, query.cursor.as_deref()).await?;
    page.done = done_message(query.done.as_deref(), page.locale);
    Ok(page.into_response())
}

fn field<'a>(sent: &'a HashMap<String, String>, name: &str) -> &'a str {
    sent.get(name)
        .map(String::as_str)
        .unwrap_or_default()
        .trim()
}

fn back(done: &str) -> Response {
    Redirect::to(&format!("{PATH}?done={done}")).into_response()
}

/// `POST /guardian/chats` (`teacher`, `student`): starts or re-opens a chat with a teacher
/// of the guardian's child.
pub async fn start_chat(
    State(state): State<AppState>,
    session: WebSession,
    axum::Form(sent): axum::Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    session.check_csrf(field(&sent, "csrf"))?;
    let principal = &session.principal;
    let (teacher, student) = (field(&sent, "teacher"), field(&sent, "student"));
    let contact = policy::guardian_start_chat(&state.db, principal, teacher, student).await?;
    store::mark_joined(&state.db, principal.tenant, contact).await?;
    match store::guardian_start(&state.db, principal.tenant, contact, teacher, student).await {
        Ok(_) => Ok(back("chat")),
        Err(ChatError::Blocked) => {
            let mut page = page(&state, &session, contact, None).await?;
            let (_, teacher_name) = name_of(&page.children, student, teacher);
            page.problem = Some(page.t1("guardian-blocked", "teacher", &teacher_name));
            Ok((StatusCode::FORBIDDEN, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// A guardian's switch on their page.
#[derive(Debug, Clone, Copy)]
enum Preference {
    /// The weekly digest (`subscribe` = `yes` or `no`).
    Digest,
    /// Text messages (`receive` = `yes` or `no`).
    Sms,
}

impl Preference {
    /// The form field that carries the choice.
    fn field(self) -> &'static str {
        match self {
            Preference::Digest => "subscribe",
            Preference::Sms => "receive",
        }
    }

    /// The `?done=` of the page shown after the change.
    fn done(self, on: bool) -> &'static str {
        match (self, on) {
            (Preference::Digest, true) => "digest-on",
            (Preference::Digest, false) => "digest-off",
            (Preference::Sms, true) => "sms-on",
            (Preference::Sms, false) => "sms-off",
        }
    }
}

/// Sets `which` as the form says (audited by the service), then shows the page again.
/// The opt-outs of the configured sending number (`sms.from`).
fn opt_outs(state: &AppState) -> crate::outbox::consent::OptOuts {
    crate::outbox::consent::OptOuts::new(state.privacy.clone(), &state.config.sms.from)
}

async fn set_preference(
    state: &AppState,
    session: &WebSession,
    sent: &HashMap<String, String>,
    which: Preference,
) -> Result<Response, PageError> {
    session.check_csrf(field(sent, "csrf"))?;
    let contact = policy::guardian(&session.principal)?;
    let on = field(sent, which.field()) == "yes";
    let (tenant, actor) = (session.principal.tenant, session.principal.actor());
    match which {
        Preference::Digest => {
            preferences::set_digest(&state.db, tenant, contact, on, &actor).await?;
        }
        Preference::Sms => {
            preferences::set_sms(&state.db, &opt_outs(state), tenant, contact, on, &actor).await?;
        }
    }
    Ok(back(which.done(on)))
}

/// `POST /guardian/digest` (`subscribe` = `yes` or `no`).
pub async fn digest(
    State(state): State<AppState>,
    session: WebSession,
    axum::Form(sent): axum::Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    set_preference(&state, &session, &sent, Preference::Digest).await
}

/// `POST /guardian/sms` (`receive` = `yes` or `no`).
pub async fn sms(
    State(state): State<AppState>,
    session: WebSession,
    axum::Form(sent): axum::Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    set_preference(&state, &session, &sent, Preference::Sms).await
}

/// `POST /guardian/language` (`language` = `en`, `es`, or empty for the school's): the
/// language of the guardian's page and messages (audited as `contact.preferences`).
pub async fn language(
    State(state): State<AppState>,
    session: WebSession,
    axum::Form(sent): axum::Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    session.check_csrf(field(&sent, "csrf"))?;
    let contact = policy::guardian(&session.principal)?;
    let raw = field(&sent, "language");
    let language = match raw {
        "" => None,
        tag => Some(
            Locale::find(tag)
                .and_then(|l| LanguageTag::parse(l.tag()).ok())
                .ok_or(PageError::NotFound)?,
        ),
    };
    let (tenant, actor) = (session.principal.tenant, session.principal.actor());
    preferences::set_language(&state.db, tenant, contact, language.as_ref(), &actor).await?;
    Ok(back("language"))
}
