//! SMS delivery through an HTTP gateway with Twilio's request shape:
//! `POST {base}/2010-04-01/Accounts/{sid}/Messages.json` with the form fields `To`, `From`
//! and `Body`, HTTP basic auth (account SID, auth token), and an `Idempotency-Key` header
//! carrying the message's stable id so a retry after a lost answer is recognisable.
//!
//! Outcomes: 2xx sent; 429 and 5xx, timeouts and connection errors are retried (honouring
//! `Retry-After`); an invalid or non-mobile number (Twilio codes 21211, 21214, 21217,
//! 21614, 21612) and every other 4xx are final.

use super::{Outgoing, SendError};
use crate::config::SmsConfig;
use std::time::Duration;

/// Twilio error codes that say the number itself cannot be texted.
const INVALID_NUMBER_CODES: [i64; 5] = [21211, 21214, 21217, 21612, 21614];

/// The gateway client.
pub struct SmsGateway {
    client: reqwest::Client,
    endpoint: String,
    account_sid: String,
    auth_token: String,
    from: String,
}

impl std::fmt::Debug for SmsGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsGateway")
            .field("endpoint", &self.endpoint)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl SmsGateway {
    /// The gateway of `config`, or `Ok(None)` when SMS is disabled (`sms.url` empty).
    pub fn from_config(config: &SmsConfig) -> Result<Option<Self>, String> {
        let base = config.url.trim().trim_end_matches('/');
        if base.is_empty() {
            return Ok(None);
        }
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!(
                "SMS_URL '{base}' must start with http:// or https://"
            ));
        }
        if config.account_sid.is_empty() || config.from.is_empty() {
            return Err("SMS needs sms.account_sid and sms.from besides SMS_URL".into());
        }
        crate::sync::oneroster::client::install_crypto_provider();
        let client = reqwest::Client::builder()
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
            from: config.from.clone(),
        }))
    }

    /// Sends one text message to the E.164 number `message.to`.
    pub async fn send(&self, message: &Outgoing) -> Result<(), SendError> {
        let response = self
            .client
            .post(&self.endpoint)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .header("Idempotency-Key", &message.message_id)
            .form(&[
                ("To", message.to.as_str()),
                ("From", self.from.as_str()),
                ("Body", message.body.as_str()),
            ])
            .send()
            .await
            .map_err(|e| {
                let what = if e.is_timeout() {
                    "the SMS gateway did not answer in time"
                } else {
                    "cannot reach the SMS gateway"
                };
                SendError::transient(what, None)
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(retry_after);
        let body = response.text().await.unwrap_or_default();
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
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon"), None);
    }
}
