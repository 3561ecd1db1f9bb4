//! What a parent or guardian does for themselves (SPEC §8, issue 18 items 1 and 4): sign in
//! with a one-time code sent to the address the school has on record ([`codes`], which
//! also plugs the code message into the outbox port), see their children and their
//! children's teachers ([`family`]), and choose which messages they get ([`preferences`]:
//! the weekly digest, text messages).
//!
//! Who may call what is decided in [`crate::auth::policy`] (`policy::guardian`); every
//! function here is scoped to one tenant and one contact and reads from that contact's own
//! rows through an index.

pub mod codes;
pub mod family;
pub mod preferences;

pub use codes::{Address, CodeRules, Flow, SignInCodeMessages};
