//! An in-process SMTP sink on loopback: it answers every command at once, keeps a count of
//! each message it accepts by `Message-ID`, and answers the end of each message's data as
//! its [`Answers`] say: accept everything, inject faults at a steady rate (the dispatch
//! benchmark), or play a script of replies first (the outbox tests' 4xx/5xx answers).

use anyhow::Result;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Faults injected at a steady rate, per thousand messages.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Messages answered `451` (transient: the client retries).
    pub transient_per_mille: u64,
    /// Messages kept but whose answer is lost (the connection closes before it): the
    /// client retries, so the message arrives twice with the same `Message-ID`.
    pub dropped_per_mille: u64,
}

/// How the sink answers the end of a message's data.
#[derive(Debug)]
pub enum Answers {
    /// Accept, except for the steady [`Faults`].
    Faults(Faults),
    /// The replies of the script in order (each a whole SMTP reply line such as
    /// `451 4.3.0 try again later`; a scripted reply never counts as accepted), then accept.
    Script(Mutex<VecDeque<String>>),
}

impl Answers {
    /// Accept every message.
    pub fn accept_all() -> Self {
        Self::Faults(Faults::default())
    }

    /// `replies` first, then accept.
    pub fn script<S: Into<String>>(replies: impl IntoIterator<Item = S>) -> Self {
        Self::Script(Mutex::new(replies.into_iter().map(Into::into).collect()))
    }
}

/// What to do with the `n`-th message (counted from 1).
enum Answer {
    Accept,
    Reply(String),
    DropConnection,
}

impl Answers {
    fn answer(&self, n: u64) -> Answer {
        match self {
            Self::Faults(faults) => {
                // Spread the faults evenly: every 1000/per_mille-th message.
                let every = |per_mille: u64, offset: u64| {
                    per_mille > 0 && (n + offset).is_multiple_of(1000 / per_mille)
                };
                if every(faults.dropped_per_mille, 7) {
                    Answer::DropConnection
                } else if every(faults.transient_per_mille, 3) {
                    Answer::Reply("451 4.3.0 try again later".into())
                } else {
                    Answer::Accept
                }
            }
            Self::Script(script) => match script.lock().ok().and_then(|mut s| s.pop_front()) {
                Some(reply) => Answer::Reply(reply),
                None => Answer::Accept,
            },
        }
    }
}

/// What the sink saw.
#[derive(Debug, Default)]
struct Stats {
    received: AtomicU64,
    replied: AtomicU64,
    dropped: AtomicU64,
    accepted: Arc<AtomicUsize>,
    by_message_id: Mutex<HashMap<String, u32>>,
    by_recipient: Mutex<HashMap<String, u32>>,
}

impl Stats {
    fn keep(&self, message_id: String, recipients: &[String]) {
        self.accepted.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut kept) = self.by_message_id.lock() {
            *kept.entry(message_id).or_default() += 1;
        }
        if let Ok(mut kept) = self.by_recipient.lock() {
            for recipient in recipients {
                *kept.entry(recipient.clone()).or_default() += 1;
            }
        }
    }
}

/// The sink: listening on a loopback port until it is dropped.
#[derive(Debug)]
pub struct Sink {
    port: u16,
    stats: Arc<Stats>,
    listener: tokio::task::JoinHandle<()>,
}

impl Sink {
    /// A sink that accepts every message.
    pub async fn accept_all() -> Result<Self> {
        Self::start(Answers::accept_all()).await
    }

    /// A sink answering as `answers` say.
    pub async fn start(answers: Answers) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let stats = Arc::new(Stats::default());
        let (shared, answers) = (stats.clone(), Arc::new(answers));
        let listener = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let _ = socket.set_nodelay(true);
                tokio::spawn(session(socket, shared.clone(), answers.clone()));
            }
        });
        Ok(Self {
            port,
            stats,
            listener,
        })
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mail.url` of the sink (plain SMTP, no TLS).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }

    /// Messages kept so far (a message kept twice counts twice), as a shared counter.
    pub fn accepted(&self) -> Arc<AtomicUsize> {
        self.stats.accepted.clone()
    }

    /// Distinct messages (by `Message-ID`) kept.
    pub fn unique(&self) -> u64 {
        self.stats
            .by_message_id
            .lock()
            .map(|m| m.len() as u64)
            .unwrap_or(0)
    }

    /// How often each message (by `Message-ID`) was kept.
    pub fn counts(&self) -> HashMap<String, u32> {
        self.stats
            .by_message_id
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    /// How many messages each recipient (`RCPT TO` address) was sent.
    pub fn recipients(&self) -> HashMap<String, u32> {
        self.stats
            .by_recipient
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    /// Messages kept more than once.
    pub fn duplicates(&self) -> u64 {
        self.stats
            .by_message_id
            .lock()
            .map(|m| m.values().map(|n| u64::from(n.saturating_sub(1))).sum())
            .unwrap_or(0)
    }

    /// Messages answered with a reply other than acceptance (a `451` fault or a scripted
    /// reply).
    pub fn replied(&self) -> u64 {
        self.stats.replied.load(Ordering::Relaxed)
    }

    /// Messages whose answer was dropped.
    pub fn dropped(&self) -> u64 {
        self.stats.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// One SMTP session.
async fn session(socket: TcpStream, stats: Arc<Stats>, answers: Arc<Answers>) {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    if write.write_all(b"220 sink ESMTP\r\n").await.is_err() {
        return;
    }
    let (mut in_data, mut message_id) = (false, String::new());
    let mut recipients = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        if in_data {
            if line != "." {
                if message_id.is_empty()
                    && let Some(id) = line.strip_prefix("Message-ID: ")
                {
                    message_id = id.trim().to_string();
                }
                continue;
            }
            in_data = false;
            let n = stats.received.fetch_add(1, Ordering::Relaxed) + 1;
            let id = std::mem::take(&mut message_id);
            let to = std::mem::take(&mut recipients);
            let reply = match answers.answer(n) {
                Answer::DropConnection => {
                    // The server took the message but the answer is lost.
                    stats.dropped.fetch_add(1, Ordering::Relaxed);
                    stats.keep(id, &to);
                    return;
                }
                Answer::Reply(reply) => {
                    stats.replied.fetch_add(1, Ordering::Relaxed);
                    format!("{reply}\r\n")
                }
                Answer::Accept => {
                    stats.keep(id, &to);
                    "250 2.0.0 queued\r\n".to_string()
                }
            };
            if write.write_all(reply.as_bytes()).await.is_err() {
                return;
            }
            continue;
        }
        let upper = line.get(..4).unwrap_or_default().to_ascii_uppercase();
        if upper == "RCPT"
            && let Some((_, address)) = line.split_once('<')
        {
            recipients.push(address.trim_end_matches('>').to_string());
        }
        let reply: &[u8] = match upper.as_str() {
            "EHLO" => b"250-sink\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n",
            "DATA" => {
                in_data = true;
                b"354 end with .\r\n"
            }
            "QUIT" => {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            }
            _ => b"250 ok\r\n",
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// Sends `messages` (their Message-IDs) on one session and returns every reply line.
    async fn send(sink: &Sink, messages: &[&str]) -> String {
        let mut socket = TcpStream::connect(("127.0.0.1", sink.port()))
            .await
            .unwrap();
        let mut script = String::from("EHLO test\r\n");
        for id in messages {
            script.push_str(&format!(
                "MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\nMessage-ID: {id}\r\n\r\nhello\r\n.\r\n"
            ));
        }
        script.push_str("QUIT\r\n");
        socket.write_all(script.as_bytes()).await.unwrap();
        let mut replies = String::new();
        socket.read_to_string(&mut replies).await.unwrap();
        replies
    }

    #[tokio::test]
    async fn a_script_answers_first_then_everything_is_accepted() {
        let sink = Sink::start(Answers::script(["451 4.3.0 later", "550 5.1.1 no"]))
            .await
            .unwrap();
        let replies = send(&sink, &["<1@x>", "<2@x>", "<3@x>", "<3@x>"]).await;
        assert!(replies.contains("451 4.3.0 later\r\n"), "{replies}");
        assert!(replies.contains("550 5.1.1 no\r\n"), "{replies}");
        assert_eq!(replies.matches("250 2.0.0 queued").count(), 2, "{replies}");
        assert_eq!(sink.accepted().load(Ordering::SeqCst), 2);
        assert_eq!((sink.unique(), sink.duplicates()), (1, 1));
        assert_eq!((sink.replied(), sink.dropped()), (2, 0));
    }

    #[tokio::test]
    async fn faults_come_at_their_rate() {
        let sink = Sink::start(Answers::Faults(Faults {
            transient_per_mille: 100,
            dropped_per_mille: 0,
        }))
        .await
        .unwrap();
        let ids: Vec<String> = (0..20).map(|i| format!("<{i}@x>")).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        send(&sink, &ids).await;
        assert_eq!(sink.replied(), 2);
        assert_eq!(sink.unique(), 18);
    }
}
