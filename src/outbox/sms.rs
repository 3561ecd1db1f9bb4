//! SMS delivery through an HTTP gateway with Twilio's request shape:
//! `POST {base}/2010-04-01/Accounts/{sid}/Messages.json` with the form fields `To`, `Body`
//! and the sender, HTTP basic auth (account SID, auth token), and an `Idempotency-Key`
//! header carrying the message's stable id so a retry after a lost answer is recognisable.
//! The sender (`sms.from`) is a phone number sent as `From`, or a Messaging Service SID
//! (`MG` + 32 hex digits) sent as `MessagingServiceSid`, as Twilio's API description says.
//!
//! The gateway URL must be public unless `outbound.allow_private` ([`crate::outbound`]):
//! checked here and on every request's resolved address; a redirect is not followed (a
//! final error) and an answer larger than `outbound.max_response_bytes` is not read.
//!
//! Outcomes: 2xx sent; 429 and 5xx, timeouts and connection errors are retried (honouring
//! `Retry-After`); an invalid or non-mobile number (Twilio codes 21211, 21214, 21217,
//! 21614, 21612) and every other 4xx are final.

use super::{Outgoing, SendError};
use crate::config::{OutboundConfig, SmsConfig, redact_url};
use std::time::Duration;

/// Twilio error codes that say the number itself cannot be texted.
const INVALID_NUMBER_CODES: [i64; 5] = [21211, 21214, 21217, 21612, 21614];

/// The gateway client.
pub struct SmsGateway {
    client: reqwest::Client,
    endpoint: String,
    account_sid: String,
    auth_token: String,
    sender: Sender,
    max_response_bytes: usize,
}

/// Who sends: a phone number (or alphanumeric sender id) or a Twilio Messaging Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender {
    /// `From`: an E.164 number, short code or alphanumeric sender id.
    From(String),
    /// `MessagingServiceSid`: `MG` followed by 32 hex digits.
    MessagingService(String),
}

impl Sender {
    /// Reads `sms.from`: a Messaging Service SID when it has that exact shape, else `From`.
    pub fn parse(value: &str) -> Self {
        let value = value.trim();
        let is_service = value.len() == 34
            && value.starts_with("MG")
            && value[2..].bytes().all(|b| b.is_ascii_hexdigit());
        if is_service {
            Sender::MessagingService(value.to_string())
        } else {
            Sender::From(value.to_string())
        }
    }

    /// The form field and value that name the sender.
    fn field(&self) -> (&'static str, &str) {
        match self {
            Sender::From(from) => ("From", from),
            Sender::MessagingService(sid) => ("MessagingServiceSid", sid),
        }
    }
}

impl std::fmt::Debug for SmsGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsGateway")
            .field("endpoint", &redact_url(&self.endpoint))
            .field("sender", &self.sender)
            .finish_non_exhaustive()
    }
}

impl SmsGateway {
    /// The gateway of `config` under the `[outbound]` rules, or `Ok(None)` when SMS is
    /// disabled (`sms.url` empty).
    pub fn from_config(
        config: &SmsConfig,
        outbound: &OutboundConfig,
    ) -> Result<Option<Self>, String> {
        let base = config.url.trim().trim_end_matches('/');
        if base.is_empty() {
            return Ok(None);
        }
        let parsed = url::Url::parse(base).ok().filter(|u| {
            matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
        });
        let Some(parsed) = parsed else {
            return Err(format!(
                "SMS_URL '{}' must be an http:// or https:// URL with a host",
                redact_url(base)
            ));
        };
        if config.account_sid.is_empty() || config.from.is_empty() {
            return Err("SMS needs sms.account_sid and sms.from besides SMS_URL".into());
        }
        let policy = crate::outbound::Policy::from_config(outbound);
        policy
            .check_url(&parsed)
            .map_err(|e| format!("SMS_URL: {e}"))?;
        let client = policy
            .client_builder()
            .timeout(Duration::from_secs(config.timeout_seconds.max(1)))
            .build()
            .map_err(|e| format!("cannot build the SMS client: {e}"))?;
        Ok(Some(Self {
            client,
            endpoint: format!(
                "{base}/2010-04-01/Accounts/{}/Messages.json",
                config.account_sid
            ),
            account_sid: config.account_sid.clone(),
            auth_token: config.auth_token.clone(),
            sender: Sender::parse(&config.from),
            max_response_bytes: outbound.max_response_bytes,
        }))
    }

    /// Sends one text message to the E.164 number `message.to`.
    pub async fn send(&self, message: &Outgoing) -> Result<(), SendError> {
        let (sender_field, sender) = self.sender.field();
        let response = self
            .client
            .post(&self.endpoint)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .header("Idempotency-Key", &message.message_id)
            .form(&[
                ("To", message.to.as_str()),
                (sender_field, sender),
                ("Body", message.body.as_str()),
            ])
            .send()
            .await
            .map_err(|e| {
                let what = if e.is_timeout() {
                    "the SMS gateway did not answer in time".to_string()
                } else if let Some(refused) = crate::outbound::refusal_in(&e) {
                    // An internal address is a configuration error: retrying will not help.
                    return SendError::permanent(format!("the SMS gateway is refused: {refused}"));
                } else {
                    "cannot reach the SMS gateway".to_string()
                };
                SendError::transient(what, None)
            })?;
        crate::outbound::refuse_redirect(&self.endpoint, &response)
            .map_err(|e| SendError::permanent(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(retry_after);
        let body =
            match crate::outbound::read_capped(&self.endpoint, response, self.max_response_bytes)
                .await
            {
                Ok(body) => body,
                Err(crate::outbound::ReadError::TooLarge(e)) => {
                    return Err(SendError::permanent(e.to_string()));
                }
                Err(crate::outbound::ReadError::Transport(_)) => Vec::new(),
            };
        let body = String::from_utf8_lossy(&body);
        let code = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("code").and_then(|c| c.as_i64()));
        let reason = format!(
            "the SMS gateway answered {}{}",
            status.as_u16(),
            code.map(|c| format!(" (code {c})")).unwrap_or_default()
        );
        if status.as_u16() == 429 || status.is_server_error() || status.as_u16() == 408 {
            Err(SendError::transient(reason, retry_after))
        } else if code.is_some_and(|c| INVALID_NUMBER_CODES.contains(&c)) {
            Err(SendError::permanent(format!(
                "{reason}: the number cannot receive SMS"
            )))
        } else {
            Err(SendError::permanent(reason))
        }
    }
}

/// `Retry-After` as seconds, or an HTTP date.
pub fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    chrono::DateTime::parse_from_rfc2822(value)
        .ok()
        .map(|at| {
            (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
                .num_seconds()
                .max(0) as u64
        })
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_messaging_service_sid_is_not_a_from_number() {
        let sid = "MG0123456789abcdef0123456789ABCDEF";
        assert_eq!(Sender::parse(sid), Sender::MessagingService(sid.into()));
        assert_eq!(Sender::parse(sid).field().0, "MessagingServiceSid");
        for from in [
            "+12025550199",
            "MG123",
            "MGzz23456789abcdef0123456789ABCDEF",
            "Schools",
        ] {
            assert_eq!(Sender::parse(from).field(), ("From", from));
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon"), None);
    }
}
