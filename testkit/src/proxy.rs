//! A loopback TCP proxy that injects the faults of a network or a server: put it between
//! the service and PostgreSQL, an SMTP server, the SMS gateway or a OneRoster provider,
//! and switch it at any time between:
//!
//! - [`Mode::Pass`]: bytes flow both ways (connections opened while it hung go on);
//! - [`Mode::Refuse`]: the listening socket is closed, so a new connection is refused
//!   (`ECONNREFUSED`), and every open connection is cut;
//! - [`Mode::Hang`]: connections are accepted and kept open but no byte is forwarded
//!   either way (a server or a network that stopped answering);
//! - [`Mode::Cut`]: every open connection is closed at once; new ones are accepted and
//!   closed.
//!
//! Switching back to [`Mode::Pass`] lets the client reconnect to the same address.

use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with the bytes and connections (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward both ways.
    Pass,
    /// Refuse new connections, cut open ones.
    Refuse,
    /// Accept, forward nothing.
    Hang,
    /// Close every connection.
    Cut,
}

/// A running proxy in front of one target address; stops when dropped.
pub struct FaultProxy {
    address: SocketAddr,
    mode: Arc<watch::Sender<Mode>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
        // Ends the relays of open connections too.
        self.mode.send_replace(Mode::Cut);
    }
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port forwarding to `target`, in [`Mode::Pass`].
    pub async fn start(target: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind the proxy")?;
        let address = listener.local_addr()?;
        let mode = Arc::new(watch::channel(Mode::Pass).0);
        let task = tokio::spawn(accept_loop(listener, address, target, mode.clone()));
        Ok(Self {
            address,
            mode,
            task,
        })
    }

    /// The address clients connect to.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Switches the proxy to `mode` (at once, for open connections too).
    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        *self.mode.borrow()
    }
}

/// Accepts while the mode is not [`Mode::Refuse`]; closes the listener while it is, and
/// binds the same address again when it is switched back.
async fn accept_loop(
    listener: TcpListener,
    address: SocketAddr,
    target: SocketAddr,
    mode: Arc<watch::Sender<Mode>>,
) {
    let mut watch = mode.subscribe();
    let mut listener = Some(listener);
    loop {
        let Some(open) = listener.as_ref() else {
            if watch.changed().await.is_err() {
                return;
            }
            if *watch.borrow_and_update() != Mode::Refuse {
                listener = TcpListener::bind(address).await.ok();
            }
            continue;
        };
        tokio::select! {
            accepted = open.accept() => {
                if let Ok((client, _)) = accepted {
                    tokio::spawn(relay(client, target, mode.subscribe()));
                }
            }
            changed = watch.changed() => {
                if changed.is_err() {
                    return;
                }
                if *watch.borrow_and_update() == Mode::Refuse {
                    listener = None;
                }
            }
        }
    }
}

/// Waits while the proxy hangs: `true` once it passes, `false` once it cuts or refuses.
async fn until_pass(mode: &mut watch::Receiver<Mode>) -> bool {
    loop {
        match *mode.borrow_and_update() {
            Mode::Pass => return true,
            Mode::Cut | Mode::Refuse => return false,
            Mode::Hang => {}
        }
        if mode.changed().await.is_err() {
            return false;
        }
    }
}

/// Forwards one connection as the mode says; returns (closing both sides) when it is cut.
async fn relay(mut client: TcpStream, target: SocketAddr, mut mode: watch::Receiver<Mode>) {
    if !until_pass(&mut mode).await {
        return;
    }
    let Ok(mut upstream) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let mut from_client = vec![0u8; 16 * 1024];
    let mut from_upstream = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            read = client.read(&mut from_client) => {
                let Ok(n @ 1..) = read else { return };
                if !until_pass(&mut mode).await
                    || upstream.write_all(&from_client[..n]).await.is_err()
                {
                    return;
                }
            }
            read = upstream.read(&mut from_upstream) => {
                let Ok(n @ 1..) = read else { return };
                if !until_pass(&mut mode).await
                    || client.write_all(&from_upstream[..n]).await.is_err()
                {
                    return;
                }
            }
            changed = mode.changed() => {
                if changed.is_err() || matches!(*mode.borrow_and_update(), Mode::Cut | Mode::Refuse) {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buffer = [0u8; 1024];
                    while let Ok(n @ 1..) = socket.read(&mut buffer).await {
                        if socket.write_all(&buffer[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        address
    }

    async fn echo(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
        stream.write_all(b"ping").await?;
        let mut buffer = [0u8; 4];
        let read = tokio::time::timeout(
            std::time::Duration::from_millis(300),
            stream.read_exact(&mut buffer),
        )
        .await;
        match read {
            Ok(Ok(_)) => Ok(buffer.to_vec()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
        }
    }

    #[tokio::test]
    async fn passes_hangs_refuses_and_cuts() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        let mut open = TcpStream::connect(proxy.address()).await.unwrap();
        assert_eq!(echo(&mut open).await.unwrap(), b"ping");

        proxy.set(Mode::Hang);
        let hung = echo(&mut open).await.unwrap_err();
        assert_eq!(hung.kind(), std::io::ErrorKind::TimedOut);

        proxy.set(Mode::Refuse);
        // The listener closes asynchronously (a connection in its backlog is reset): poll
        // until it has.
        loop {
            match TcpStream::connect(proxy.address()).await {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
                _ => tokio::task::yield_now().await,
            }
        }

        proxy.set(Mode::Pass);
        let mut again = loop {
            if let Ok(stream) = TcpStream::connect(proxy.address()).await {
                break stream;
            }
            tokio::task::yield_now().await;
        };
        assert_eq!(echo(&mut again).await.unwrap(), b"ping");

        proxy.set(Mode::Cut);
        assert!(echo(&mut again).await.is_err());
    }
}
