//! A TCP relay between one worker and the store, so a freeze can do to the frozen worker's
//! connections what a load balancer or NAT does to a frozen process's: while it is frozen,
//! the answers meant for it are dropped, and when it thaws its connections are gone. Its
//! write in flight then ends in doubt (the store may have applied it), as a Lambda frozen
//! mid-request sees it.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A relay listening on 127.0.0.1, forwarding to `upstream`.
pub struct Proxy {
    /// The port the worker connects to.
    pub port: u16,
    holding: Arc<AtomicBool>,
    /// The next request to pass starts holding (so a freeze lands with a write in flight).
    armed: Arc<AtomicBool>,
    clients: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// Starts relaying to `upstream`.
    pub fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let proxy = Self {
            port,
            holding: Arc::new(AtomicBool::new(false)),
            armed: Arc::new(AtomicBool::new(false)),
            clients: Arc::new(Mutex::new(Vec::new())),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (holding, armed, clients, stop) = (
            Arc::clone(&proxy.holding),
            Arc::clone(&proxy.armed),
            Arc::clone(&proxy.clients),
            Arc::clone(&proxy.stop),
        );
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(upstream) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                if let Ok(mut registry) = clients.lock()
                    && let Ok(copy) = client.try_clone()
                {
                    registry.push(copy);
                }
                relay(client, server, Arc::clone(&holding), Arc::clone(&armed));
            }
        });
        Ok(proxy)
    }

    /// Drops every answer from the next request on (that request reaches the store; its
    /// answer does not), until [`Proxy::release`]. Returns once that request has passed,
    /// or after `patience` (then holding from now).
    pub fn hold_after_next_request(&self, patience: std::time::Duration) {
        self.armed.store(true, Ordering::SeqCst);
        let deadline = std::time::Instant::now() + patience;
        while !self.holding.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
        self.armed.store(false, Ordering::SeqCst);
        self.holding.store(true, Ordering::SeqCst);
    }

    /// Closes every connection of the worker (what it finds when it thaws) and relays
    /// again for new ones.
    pub fn release(&self) {
        if let Ok(mut clients) = self.clients.lock() {
            for client in clients.drain(..) {
                let _ = client.shutdown(Shutdown::Both);
            }
        }
        self.holding.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.release();
        // Wake the accept loop so it sees the stop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Pumps bytes both ways: answers are dropped while `holding`, and a request passing while
/// `armed` starts holding.
fn relay(client: TcpStream, server: TcpStream, holding: Arc<AtomicBool>, armed: Arc<AtomicBool>) {
    let (Ok(client_in), Ok(server_in)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let upstream = Direction::Requests {
        armed,
        holding: Arc::clone(&holding),
    };
    std::thread::spawn(move || pump(client_in, server, upstream));
    std::thread::spawn(move || pump(server_in, client, Direction::Answers { holding }));
}

/// Which way a pump carries bytes, with the flags that way obeys.
enum Direction {
    Requests {
        armed: Arc<AtomicBool>,
        holding: Arc<AtomicBool>,
    },
    Answers {
        holding: Arc<AtomicBool>,
    },
}

fn pump(mut from: TcpStream, mut to: TcpStream, direction: Direction) {
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Direction::Answers { holding } = &direction
            && holding.load(Ordering::SeqCst)
        {
            continue;
        }
        if to.write_all(&buffer[..n]).is_err() {
            break;
        }
        if let Direction::Requests { armed, holding } = &direction
            && armed.swap(false, Ordering::SeqCst)
        {
            holding.store(true, Ordering::SeqCst);
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
