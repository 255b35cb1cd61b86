//! A TCP proxy a test controls: it forwards connections to a target until it is cut, then
//! drops every open connection and refuses new ones until it is restored. It stands between a
//! client and the gateway, or between the gateway and its database, to cut a link without
//! stopping either side.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// A running proxy; it stops accepting when dropped.
#[derive(Debug)]
pub struct TcpProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    link: Arc<Link>,
    accepting: AbortHandle,
}

#[derive(Debug, Default)]
struct Link {
    cut: AtomicBool,
    open: Mutex<Vec<AbortHandle>>,
}

impl TcpProxy {
    /// Starts a proxy on a free loopback port that forwards to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<TcpProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let link = Arc::new(Link::default());
        let shared = link.clone();
        let accepting = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if shared.cut.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let forwarding = tokio::spawn(forward(client, target));
                let mut open = shared.open.lock().expect("not poisoned");
                open.retain(|handle| !handle.is_finished());
                open.push(forwarding.abort_handle());
            }
        })
        .abort_handle();
        Ok(TcpProxy { addr, link, accepting })
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.link.cut.store(true, Ordering::SeqCst);
        for handle in self.link.open.lock().expect("not poisoned").drain(..) {
            handle.abort();
        }
    }

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.link.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
        self.accepting.abort();
    }
}

async fn forward(mut client: TcpStream, target: SocketAddr) {
    if let Ok(mut server) = TcpStream::connect(target).await {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    }
}
