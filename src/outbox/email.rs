//! Email delivery with lettre: plain-text messages over SMTP (plain, STARTTLS or implicit
//! TLS, with optional authentication) through a pool of kept-open connections, or written
//! as files (`file://DIR`, the zero-configuration default).
//!
//! lettre 0.11.23 leaves Nagle's algorithm on, and its SMTP exchange (body, then the
//! terminating dot as a second small write) then waits for the server's delayed ACK:
//! about 40 ms a message, 22 messages/s per connection. The pool here opens each TCP
//! connection itself with `TCP_NODELAY` and hands it to lettre, which removes the stall
//! (implicit TLS, `smtps://`, uses lettre's own connect and keeps the stall).
//!
//! Every message carries `MIME-Version: 1.0` (lettre writes it only for MIME bodies, not for
//! a plain body, so it is added here) and `Auto-Submitted: auto-generated` (RFC 3834: no
//! auto-replies). A bulk message (the weekly digest) also carries `List-Unsubscribe` (its
//! HTTPS one-click URL, and a `mailto:` when configured) and `List-Unsubscribe-Post:
//! List-Unsubscribe=One-Click` (RFC 8058). With `mail.dkim_selector`, `mail.dkim_domain` and
//! `mail.dkim_private_key_path` set, every message is DKIM-signed (RSA-SHA256,
//! relaxed/relaxed) over From, To, Subject, Date, Message-ID, MIME-Version, Content-Type,
//! Content-Transfer-Encoding, Auto-Submitted and both List-Unsubscribe headers.

use super::{Outgoing, SendError};
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::{
    ContentTransferEncoding, ContentType, HeaderName, HeaderValue, MIME_VERSION_1_0,
};
use lettre::message::{Body, Mailbox, Message};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncFileTransport, AsyncTransport, Tokio1Executor};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, Semaphore};

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain text (`smtp://`, `?tls=none`; local relays and tests).
    None,
    /// STARTTLS when the server offers it (`smtp://` default).
    Opportunistic,
    /// STARTTLS required (`?tls=required`).
    Required,
    /// TLS from the first byte (`smtps://`).
    Implicit,
}

/// Where email goes, parsed from `MAIL_URL`.
#[derive(Clone, PartialEq, Eq)]
pub enum MailTarget {
    /// Each message written as a `.eml` file in this folder.
    Files(PathBuf),
    /// An SMTP server.
    Smtp {
        /// Host name.
        host: String,
        /// Port.
        port: u16,
        /// Security.
        security: Security,
        /// User and password.
        credentials: Option<(String, String)>,
    },
}

impl std::fmt::Debug for MailTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MailTarget::Files(dir) => write!(f, "files in {}", dir.display()),
            MailTarget::Smtp {
                host,
                port,
                security,
                credentials,
            } => write!(
                f,
                "SMTP {host}:{port} ({security:?}{})",
                if credentials.is_some() {
                    ", authenticated"
                } else {
                    ""
                }
            ),
        }
    }
}

/// Decodes `%XX` escapes (user names and passwords in URLs).
pub fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| std::str::from_utf8(&bytes[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The one line the dispatcher (and `serve`, `config check`) stops with when `MAIL_URL`
/// holds credentials but would not protect them with TLS.
pub const CLEARTEXT_CREDENTIALS: &str = "SMTP credentials need TLS, or the password could travel in clear text: use smtp://user:pass@host:587?tls=required (STARTTLS required) or smtps://user:pass@host:465 (implicit TLS)";

impl MailTarget {
    /// Parses a lettre-style URL with the `url` crate (as [`crate::config::redact_url`]
    /// does, so both agree on where the password ends): `file://DIR`,
    /// `smtp://[user:pass@]host[:port][?tls=none|opportunistic|required]`,
    /// `smtps://[user:pass@]host[:port]`. Credentials need TLS: `tls=required` or
    /// `smtps://` ([`CLEARTEXT_CREDENTIALS`]).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let shape = || "mail.url must look like smtp://host:port or file://DIR".to_string();
        let (scheme, rest) = raw.split_once("://").ok_or_else(shape)?;
        if scheme == "file" {
            if rest.is_empty() {
                return Err("file:// needs a folder, e.g. file://data/mail".into());
            }
            return Ok(MailTarget::Files(PathBuf::from(rest)));
        }
        let implicit = match scheme {
            "smtp" => false,
            "smtps" => true,
            other => {
                return Err(format!(
                    "mail.url scheme '{other}' is not supported: use smtp://, smtps:// or file://"
                ));
            }
        };
        let url = url::Url::parse(raw).map_err(|e| {
            format!(
                "mail.url '{}' is not a URL: {e}",
                crate::config::redact_url(raw)
            )
        })?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| "mail.url names no host".to_string())?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .to_string();
        let port = url.port().unwrap_or(if implicit { 465 } else { 587 });
        let credentials = (!url.username().is_empty() || url.password().is_some()).then(|| {
            (
                percent_decode(url.username()),
                percent_decode(url.password().unwrap_or_default()),
            )
        });
        let mut security = if implicit {
            Security::Implicit
        } else {
            Security::Opportunistic
        };
        for pair in url
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            match pair.split_once('=') {
                Some(("tls", "none")) if !implicit => security = Security::None,
                Some(("tls", "opportunistic")) if !implicit => security = Security::Opportunistic,
                Some(("tls", "required")) if !implicit => security = Security::Required,
                _ => {
                    return Err(format!(
                        "mail.url option '{pair}' is not supported (tls=none|opportunistic|required)"
                    ));
                }
            }
        }
        if credentials.is_some() && matches!(security, Security::None | Security::Opportunistic) {
            return Err(CLEARTEXT_CREDENTIALS.into());
        }
        Ok(MailTarget::Smtp {
            host,
            port,
            security,
            credentials,
        })
    }
}

/// DKIM signing settings (`mail.dkim_*`).
#[derive(Clone, PartialEq, Eq)]
pub struct DkimSettings {
    /// Selector (`s=`): the key is published at `SELECTOR._domainkey.DOMAIN`.
    pub selector: String,
    /// Signing domain (`d=`).
    pub domain: String,
    /// The RSA private key, PEM (PKCS#1, `BEGIN RSA PRIVATE KEY`).
    pub private_key_pem: String,
}

impl std::fmt::Debug for DkimSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimSettings")
            .field("selector", &self.selector)
            .field("domain", &self.domain)
            .field("private_key_pem", &"***")
            .finish()
    }
}

/// Why the DKIM settings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DkimError {
    /// Some of the three keys are set, not all.
    #[error(
        "DKIM signing needs all of mail.dkim_selector, mail.dkim_domain and mail.dkim_private_key_path, or none of them"
    )]
    Partial,
    /// The key file cannot be read.
    #[error("cannot read mail.dkim_private_key_path {path}: {reason}")]
    Unreadable {
        /// The file.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// The file does not hold a usable key.
    #[error("mail.dkim_private_key_path {path}: {reason}")]
    BadKey {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

impl From<DkimError> for String {
    fn from(e: DkimError) -> Self {
        e.to_string()
    }
}

impl DkimSettings {
    /// From the configuration: `Ok(None)` when the three keys are empty; an error when only
    /// some are set, or the key file cannot be read or holds no RSA PKCS#1 key (checked
    /// here, so a bad key stops start-up rather than the first send).
    pub fn from_config(config: &crate::config::MailConfig) -> Result<Option<Self>, DkimError> {
        let (selector, domain, path) = (
            config.dkim_selector.trim(),
            config.dkim_domain.trim(),
            config.dkim_private_key_path.trim(),
        );
        match [selector, domain, path]
            .iter()
            .filter(|v| v.is_empty())
            .count()
        {
            3 => return Ok(None),
            0 => {}
            _ => return Err(DkimError::Partial),
        }
        let private_key_pem = std::fs::read_to_string(path).map_err(|e| DkimError::Unreadable {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
        let settings = Self {
            selector: selector.to_string(),
            domain: domain.to_string(),
            private_key_pem,
        };
        settings.signer().map_err(|reason| DkimError::BadKey {
            path: path.to_string(),
            reason,
        })?;
        Ok(Some(settings))
    }

    /// The lettre signing configuration.
    fn signer(&self) -> Result<DkimConfig, String> {
        let key = DkimSigningKey::new(&self.private_key_pem, DkimSigningAlgorithm::Rsa)
            .map_err(|e| format!("the DKIM private key is not an RSA PKCS#1 PEM key: {e}"))?;
        Ok(DkimConfig::new(
            self.selector.clone(),
            self.domain.clone(),
            key,
            SIGNED_HEADERS
                .iter()
                .map(|name| HeaderName::new_from_ascii_str(name))
                .collect(),
            DkimCanonicalization {
                header: DkimCanonicalizationType::Relaxed,
                body: DkimCanonicalizationType::Relaxed,
            },
        ))
    }
}

/// Headers covered by the DKIM signature (one a message lacks is signed as absent).
const SIGNED_HEADERS: [&str; 11] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Auto-Submitted",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// Sends plain-text email to the configured target.
pub struct Mailer {
    target: MailTarget,
    /// Extra trusted root certificate (PEM) for a relay with a private CA.
    root_certificate: Option<Vec<u8>>,
    from: Mailbox,
    files: Option<AsyncFileTransport<Tokio1Executor>>,
    pool: Mutex<Vec<AsyncSmtpConnection>>,
    slots: Semaphore,
    timeout: Duration,
    hello: ClientId,
    dkim: Option<Arc<DkimConfig>>,
}

impl Mailer {
    /// A mailer for `target` with `from` as the From header.
    pub fn new(
        target: MailTarget,
        from: &str,
        pool_size: usize,
        timeout: Duration,
    ) -> Result<Self, String> {
        Self::with_root_certificate(target, from, pool_size, timeout, None)
    }

    /// As [`Mailer::new`], also trusting the CA certificate in the PEM file `root` (a relay
    /// with a private CA, `mail.tls_root_certificate`).
    pub fn with_root_certificate(
        target: MailTarget,
        from: &str,
        pool_size: usize,
        timeout: Duration,
        root: Option<&std::path::Path>,
    ) -> Result<Self, String> {
        let root_certificate = match root {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                format!(
                    "cannot read mail.tls_root_certificate {}: {e}",
                    path.display()
                )
            })?),
            None => None,
        };
        let from: Mailbox = from
            .parse()
            .map_err(|e| format!("mail.from '{from}' is not a mailbox: {e}"))?;
        let files = match &target {
            MailTarget::Files(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create the mail folder {}: {e}", dir.display()))?;
                Some(AsyncFileTransport::<Tokio1Executor>::new(dir))
            }
            MailTarget::Smtp { .. } => None,
        };
        Ok(Self {
            target,
            root_certificate,
            from,
            files,
            pool: Mutex::new(Vec::new()),
            slots: Semaphore::new(pool_size.max(1)),
            timeout,
            hello: ClientId::default(),
            dkim: None,
        })
    }

    /// Signs every message with `dkim` from now on (`None`: unsigned).
    pub fn with_dkim(mut self, dkim: Option<&DkimSettings>) -> Result<Self, String> {
        self.dkim = dkim.map(DkimSettings::signer).transpose()?.map(Arc::new);
        Ok(self)
    }

    /// Where mail goes (for the log line at start).
    pub fn target(&self) -> &MailTarget {
        &self.target
    }

    /// Builds the message: plain text only, a stable Message-ID, no HTML part, the
    /// headers of the module docs, DKIM-signed when configured.
    pub fn build(&self, message: &Outgoing) -> Result<Message, SendError> {
        let mut email = unsigned(&self.from, message)?;
        if let Some(dkim) = &self.dkim {
            email.sign(dkim);
        }
        Ok(email)
    }

    /// The message as [`Mailer::build`] makes it, built and signed on the blocking pool,
    /// then turned into what `finish` needs: encoding the body and an RSA signature are
    /// CPU work that must not hold the thread driving the sends (nor an async worker
    /// thread that also serves the API).
    async fn build_off_thread<T: Send + 'static>(
        &self,
        message: &Outgoing,
        finish: fn(Message) -> T,
    ) -> Result<T, SendError> {
        let from = self.from.clone();
        let dkim = self.dkim.clone();
        let message = message.clone();
        tokio::task::spawn_blocking(move || {
            let mut email = unsigned(&from, &message)?;
            if let Some(dkim) = &dkim {
                email.sign(dkim);
            }
            Ok(finish(email))
        })
        .await
        .map_err(|e| SendError::transient(format!("cannot build the message: {e}"), None))?
    }

    /// Sends one message.
    pub async fn send(&self, message: &Outgoing) -> Result<(), SendError> {
        if let Some(files) = &self.files {
            let email = self.build_off_thread(message, |email| email).await?;
            return files.send(email).await.map(|_| ()).map_err(|e| {
                SendError::transient(format!("cannot write the mail file: {e}"), None)
            });
        }
        let (envelope, wire) = self
            .build_off_thread(message, |email| {
                (email.envelope().clone(), email.formatted())
            })
            .await?;
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| SendError::transient("the mailer is shutting down", None))?;
        let idle = self.pool.lock().await.pop();
        let mut connection = match idle {
            Some(connection) if !connection.has_broken() => connection,
            // The whole session setup (greeting, EHLO, STARTTLS, AUTH) is bounded: a server
            // that accepts the connection and then says nothing must not hold the slot.
            _ => tokio::time::timeout(self.timeout, self.connect())
                .await
                .map_err(|_| {
                    SendError::transient(
                        "the SMTP server did not answer in time (opening the session)",
                        None,
                    )
                })??,
        };
        let sent = tokio::time::timeout(self.timeout, connection.send(&envelope, &wire)).await;
        match sent {
            Ok(Ok(_)) => {
                self.pool.lock().await.push(connection);
                Ok(())
            }
            Ok(Err(e)) => {
                // A rejected message leaves the session usable; anything else drops it.
                if (e.is_permanent() || e.is_transient()) && !connection.has_broken() {
                    self.pool.lock().await.push(connection);
                }
                Err(classify(&e))
            }
            Err(_) => Err(SendError::transient(
                "the SMTP server did not answer in time",
                None,
            )),
        }
    }

    /// Opens one SMTP session (TCP_NODELAY, EHLO, STARTTLS, AUTH as configured).
    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let MailTarget::Smtp {
            host,
            port,
            security,
            credentials,
        } = &self.target
        else {
            return Err(SendError::permanent("not an SMTP target"));
        };
        let unreachable = |e: String| {
            SendError::transient(
                format!("cannot reach the SMTP server {host}:{port}: {e}"),
                None,
            )
        };
        let tls = || {
            let failed = |e: lettre::transport::smtp::Error| {
                SendError::permanent(format!("TLS setup failed: {e}"))
            };
            let mut builder = TlsParameters::builder(host.clone());
            if let Some(pem) = &self.root_certificate {
                builder = builder.add_root_certificate(Certificate::from_pem(pem).map_err(failed)?);
            }
            builder.build().map_err(failed)
        };
        let mut connection = if *security == Security::Implicit {
            AsyncSmtpConnection::connect_tokio1(
                (host.as_str(), *port),
                Some(self.timeout),
                &self.hello,
                Some(tls()?),
                None,
            )
            .await
            .map_err(|e| unreachable(e.to_string()))?
        } else {
            let stream = tokio::time::timeout(
                self.timeout,
                tokio::net::TcpStream::connect((host.as_str(), *port)),
            )
            .await
            .map_err(|_| unreachable("connect timed out".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
            stream
                .set_nodelay(true)
                .map_err(|e| unreachable(e.to_string()))?;
            let mut connection =
                AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
                    .await
                    .map_err(|e| unreachable(e.to_string()))?;
            let starttls = match security {
                Security::Required => true,
                Security::Opportunistic => connection.can_starttls(),
                _ => false,
            };
            if starttls {
                connection
                    .starttls(tls()?, &self.hello)
                    .await
                    .map_err(|e| SendError::transient(format!("STARTTLS failed: {e}"), None))?;
            }
            connection
        };
        if let Some((user, password)) = credentials {
            connection
                .auth(
                    &[Mechanism::Plain, Mechanism::Login],
                    &Credentials::new(user.clone(), password.clone()),
                )
                .await
                .map_err(|e| classify(&e))?;
        }
        Ok(connection)
    }
}

/// The message from `from` without its DKIM signature.
fn unsigned(from: &Mailbox, message: &Outgoing) -> Result<Message, SendError> {
    let to: Mailbox = message
        .to
        .parse()
        .map_err(|e| SendError::permanent(format!("'{}' is not a mailbox: {e}", message.to)))?;
    let mut builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(message.subject.clone().unwrap_or_default())
        .message_id(Some(message.message_id.clone()))
        .header(MIME_VERSION_1_0)
        .header(ContentType::TEXT_PLAIN)
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".into(),
        ));
    if let Some(language) = message.language {
        builder = builder.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Content-Language"),
            language.into(),
        ));
    }
    if let Some(list) = &message.list_unsubscribe {
        builder = builder
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                list_unsubscribe(&list.url, list.mailto.as_deref())?,
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".into(),
            ));
    }
    builder
        .body(plain_body(&message.body))
        .map_err(|e| SendError::permanent(format!("cannot build the message: {e}")))
}

/// The longest line SMTP and RFC 5322 allow, without its CRLF.
const MAX_LINE: usize = 998;

/// The body as it goes on the wire: as written (`7bit`, CRLF line endings) when it is
/// ASCII without NUL or stray CR and every line fits [`MAX_LINE`]; otherwise lettre's
/// choice of quoted-printable or base64. lettre encodes any line of 76 or more characters,
/// and every digest has some (its paragraphs with names filled in, the unsubscribe link):
/// quoted-printable made the text harder to read in a raw message, and encoding it was the
/// largest single cost of sending a digest.
fn plain_body(text: &str) -> Body {
    let mut wire = Vec::with_capacity(text.len() + text.len() / 32 + 2);
    let mut lines = text.split('\n').peekable();
    while let Some(line) = lines.next() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let fits_7bit =
            line.len() <= MAX_LINE && line.bytes().all(|b| b.is_ascii() && b != 0 && b != b'\r');
        if !fits_7bit {
            return Body::new(text.to_owned());
        }
        wire.extend_from_slice(line.as_bytes());
        if lines.peek().is_some() {
            wire.extend_from_slice(b"\r\n");
        }
    }
    Body::dangerous_pre_encoded(wire, ContentTransferEncoding::SevenBit)
}

/// The `List-Unsubscribe` value: the HTTPS URL first (RFC 8058 one-click), then the
/// `mailto:`; each in angle brackets. A URL with a character that would break the header
/// is refused.
fn list_unsubscribe(url: &str, mailto: Option<&str>) -> Result<String, SendError> {
    let mut parts = vec![url];
    parts.extend(mailto);
    if parts.iter().any(|p| {
        p.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
    }) {
        return Err(SendError::permanent(
            "an unsubscribe address holds a character not allowed in List-Unsubscribe",
        ));
    }
    Ok(parts
        .iter()
        .map(|p| format!("<{p}>"))
        .collect::<Vec<_>>()
        .join(", "))
}

/// SMTP 4xx and connection problems are worth retrying; 5xx are final.
fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    let text = e.to_string();
    if e.is_permanent() {
        SendError::permanent(format!("the SMTP server refused the message: {text}"))
    } else {
        SendError::transient(format!("SMTP: {text}"), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing(list: Option<crate::outbox::ListUnsubscribe>) -> Outgoing {
        Outgoing {
            message_id: "<outbox.1@pc.example>".into(),
            to: "guardian@example.com".into(),
            subject: Some("Weekly summary".into()),
            body: "Hello\n".into(),
            list_unsubscribe: list,
            language: None,
        }
    }

    fn mailer() -> Mailer {
        let dir = tempfile::tempdir().unwrap();
        Mailer::new(
            MailTarget::Files(dir.path().to_path_buf()),
            "Parent Connection <no-reply@pc.example>",
            1,
            Duration::from_secs(5),
        )
        .unwrap()
    }

    fn header_lines(message: &Message) -> String {
        let text = String::from_utf8(message.formatted()).unwrap();
        // Unfolded: a long header continues on lines that start with a space.
        text.split("\r\n\r\n").next().unwrap().replace("\r\n ", " ")
    }

    #[test]
    fn every_message_has_mime_version_and_auto_submitted_and_digests_list_unsubscribe() {
        let mailer = mailer();
        let plain = header_lines(&mailer.build(&outgoing(None)).unwrap());
        assert_eq!(plain.matches("MIME-Version: 1.0").count(), 1, "{plain}");
        assert!(plain.contains("Auto-Submitted: auto-generated"), "{plain}");
        assert!(!plain.contains("List-Unsubscribe"), "{plain}");
        let digest = header_lines(
            &mailer
                .build(&outgoing(Some(crate::outbox::ListUnsubscribe {
                    url: "https://pc.example/unsubscribe/abc".into(),
                    mailto: Some("mailto:unsub@pc.example?subject=unsubscribe%20abc".into()),
                })))
                .unwrap(),
        );
        assert!(
            digest.contains("List-Unsubscribe: <https://pc.example/unsubscribe/abc>, <mailto:unsub@pc.example?subject=unsubscribe%20abc>"),
            "{digest}"
        );
        assert!(
            digest.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
            "{digest}"
        );
        assert!(
            mailer
                .build(&outgoing(Some(crate::outbox::ListUnsubscribe {
                    url: "https://pc.example/x>\r\nBcc: a@b".into(),
                    mailto: None,
                })))
                .is_err()
        );
    }

    #[test]
    fn plain_ascii_bodies_go_as_written_and_the_rest_is_encoded() {
        let wire = |body: &str| {
            let mut message = outgoing(None);
            message.body = body.into();
            let text = String::from_utf8(mailer().build(&message).unwrap().formatted()).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            let encoding = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Transfer-Encoding: "))
                .unwrap()
                .to_string();
            (encoding, body.to_string())
        };
        let link = format!("https://pc.example/unsubscribe/{}", "a".repeat(120));
        let digest = format!(
            "Hello Ann Lee,\n\n{}\n. a dot first\n{link}\n",
            "word ".repeat(30)
        );
        assert_eq!(wire(&digest), ("7bit".into(), digest.replace('\n', "\r\n")));
        assert_eq!(wire("a\r\nb").1, "a\r\nb");
        for encoded in ["Grüße\n", &"x".repeat(MAX_LINE + 1)] {
            assert_ne!(wire(encoded).0, "7bit", "{encoded:?}");
        }
        assert_eq!(wire(&"x".repeat(MAX_LINE)).0, "7bit");
    }

    #[test]
    fn urls_parse_with_clear_errors() {
        assert_eq!(
            MailTarget::parse("file://data/mail").unwrap(),
            MailTarget::Files(PathBuf::from("data/mail"))
        );
        assert_eq!(
            MailTarget::parse("smtp://u%40x:p%3Aw@mail.example:2525?tls=required").unwrap(),
            MailTarget::Smtp {
                host: "mail.example".into(),
                port: 2525,
                security: Security::Required,
                credentials: Some(("u@x".into(), "p:w".into())),
            }
        );
        assert!(matches!(
            MailTarget::parse("smtps://relay.example").unwrap(),
            MailTarget::Smtp {
                port: 465,
                security: Security::Implicit,
                ..
            }
        ));
        assert!(MailTarget::parse("smtp://h:x").is_err());
        assert!(MailTarget::parse("pop3://h").is_err());
        assert!(MailTarget::parse("smtp://h?tls=maybe").is_err());
        let shown = format!(
            "{:?}",
            MailTarget::parse("smtp://user:secret@h:25?tls=required").unwrap()
        );
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn credentials_need_tls() {
        for url in [
            "smtp://user:pass@mail.example:587",
            "smtp://user:pass@mail.example:587?tls=opportunistic",
            "smtp://user:pass@mail.example:25?tls=none",
            "smtp://user@mail.example:25?tls=none",
        ] {
            assert_eq!(
                MailTarget::parse(url),
                Err(CLEARTEXT_CREDENTIALS.into()),
                "{url}"
            );
        }
        assert!(
            CLEARTEXT_CREDENTIALS.contains("tls=required") && !CLEARTEXT_CREDENTIALS.contains('\n')
        );
        for url in [
            "smtp://user:pass@mail.example:587?tls=required",
            "smtps://user:pass@mail.example",
            "smtp://mail.example:25",
            "smtp://127.0.0.1:2525?tls=none",
        ] {
            assert!(MailTarget::parse(url).is_ok(), "{url}");
        }
    }

    /// The mail parser and `redact_url` agree on where the password ends: an `@` inside
    /// it belongs to it, and no part of it is logged.
    #[test]
    fn an_at_sign_in_the_password_is_neither_split_nor_logged() {
        let raw = "smtp://u:p@ss@mail.example:587?tls=required";
        assert_eq!(
            MailTarget::parse(raw).unwrap(),
            MailTarget::Smtp {
                host: "mail.example".into(),
                port: 587,
                security: Security::Required,
                credentials: Some(("u".into(), "p@ss".into())),
            }
        );
        let shown = crate::config::redact_url(raw);
        assert!(!shown.contains("ss") && !shown.contains("p@"), "{shown}");
        assert!(shown.contains("mail.example:587"), "{shown}");
    }
}
