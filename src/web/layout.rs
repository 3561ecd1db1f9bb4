//! The frame of every signed-in page (`templates/web/app.html`): who is signed in, the
//! pages their roles reach (asked of the policy, like the pages themselves), and the
//! sign-out form with the session's CSRF token.

use super::session::WebSession;
use crate::auth::{Identity, Principal, policy};

/// One link of the main navigation.
#[derive(Debug, Clone)]
pub struct NavLink {
    /// Where it goes.
    pub href: &'static str,
    /// Its text.
    pub text: String,
    /// True on the page it leads to (`aria-current="page"`).
    pub current: bool,
}

/// A signed-in page of the navigation: where, its name, and the policy check that lets a
/// caller open it (the same check as the page's handler).
struct Page {
    href: &'static str,
    text: &'static str,
    allowed: fn(&Principal) -> bool,
}

/// The signed-in pages: the one list the navigation is built from.
const PAGES: [Page; 13] = [
    Page {
        href: "/admin/digest",
        text: "Digest",
        allowed: |p| policy::read_audit(p).is_ok(),
    },
    Page {
        href: "/admin/imports",
        text: "Imports",
        allowed: |p| policy::read_imports(p).is_ok(),
    },
    Page {
        href: "/admin/oneroster",
        text: "OneRoster",
        allowed: |p| policy::run_oneroster(p).is_ok(),
    },
    Page {
        href: "/admin/outbox",
        text: "Outbox",
        allowed: |p| {
            policy::administer_contacts(p).is_ok() || policy::digest_unsubscribes(p).is_ok()
        },
    },
    Page {
        href: "/admin/settings",
        text: "Settings",
        allowed: |p| policy::read_settings(p).is_ok(),
    },
    Page {
        href: "/admin/approvals",
        text: "Approvals",
        allowed: |p| policy::administer_contacts(p).is_ok(),
    },
    Page {
        href: "/admin/audit",
        text: "Audit log",
        allowed: |p| policy::read_audit(p).is_ok(),
    },
    Page {
        href: "/admin/disclosures",
        text: "Disclosures",
        allowed: |p| policy::administer_contacts(p).is_ok(),
    },
    Page {
        href: "/guardian",
        text: "Your page",
        allowed: |p| policy::guardian(p).is_ok(),
    },
    Page {
        href: "/teacher/classes",
        text: "My classes",
        allowed: |p| policy::teacher_pages(p).is_ok(),
    },
    Page {
        href: "/teacher/requests",
        text: "My requests",
        allowed: |p| policy::teacher_pages(p).is_ok(),
    },
    Page {
        href: "/teacher/chats",
        text: "My chats",
        allowed: |p| policy::teacher_pages(p).is_ok(),
    },
    Page {
        href: "/teacher/blocks",
        text: "My blocks",
        allowed: |p| policy::teacher_pages(p).is_ok(),
    },
];

/// The frame's data.
#[derive(Debug, Clone)]
pub struct Layout {
    /// "Name (roles) · tenant".
    pub who: String,
    /// The session's CSRF token, for the sign-out form.
    pub csrf: String,
    /// The navigation.
    pub links: Vec<NavLink>,
    /// The language the page is in (`<html lang>`).
    pub lang: &'static str,
    /// The skip link's text.
    pub skip: String,
    /// The sign-out button's text.
    pub sign_out: String,
}

impl Layout {
    /// The frame for `session` on the page at `current`.
    pub fn new(session: &WebSession, current: &str) -> Self {
        let principal = &session.principal;
        Self {
            who: who(principal),
            csrf: session.csrf.clone(),
            links: reachable(principal)
                .into_iter()
                .map(|(href, text)| NavLink {
                    href,
                    text: text.to_string(),
                    current: current.starts_with(href),
                })
                .collect(),
            lang: "en",
            skip: "Skip to content".into(),
            sign_out: "Sign out".into(),
        }
    }

    /// The frame of a guardian's page in their language: the guardian's own link, who is
    /// signed in, the skip link and sign-out are translated (staff pages stay English).
    pub fn in_language(mut self, locale: crate::i18n::Locale, tenant_slug: &str) -> Self {
        self.lang = locale.tag();
        self.skip = locale.text("skip-to-content");
        self.sign_out = locale.text("sign-out");
        self.who = locale.format(
            "who-guardian",
            &[("tenant", crate::i18n::Arg::Text(tenant_slug))],
        );
        for link in &mut self.links {
            if link.href == "/guardian" {
                link.text = locale.text("nav-guardian");
            }
        }
        self
    }
}

/// The pages `principal` may open: (href, text).
pub fn reachable(principal: &Principal) -> Vec<(&'static str, &'static str)> {
    PAGES
        .iter()
        .filter(|page| (page.allowed)(principal))
        .map(|page| (page.href, page.text))
        .collect()
}

fn who(principal: &Principal) -> String {
    match &principal.identity {
        Identity::User { source_id, roles } => {
            let roles: Vec<_> = roles.iter().map(|r| r.as_str()).collect();
            format!(
                "{source_id} ({}) · {}",
                roles.join(", "),
                principal.tenant_slug
            )
        }
        Identity::Contact { .. } => format!("Parent or guardian · {}", principal.tenant_slug),
        Identity::App { app_id, .. } => format!("{app_id} · {}", principal.tenant_slug),
    }
}
