//! A small hostile HTTP/1.1 server on loopback: reads each request whole, hands it to a
//! closure that writes whatever raw bytes it likes back (echoes, lies about lengths, bad
//! headers, redirects, or nothing at all), and counts requests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request as received.
#[derive(Debug, Clone)]
pub struct RawRequest {
    pub head: String,
    pub body: String,
}

impl RawRequest {
    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    pub fn path(&self) -> &str {
        self.head.split_whitespace().nth(1).unwrap_or_default()
    }
}

/// What to send back.
pub enum Reply {
    /// These bytes, at once.
    Send(Vec<u8>),
    /// These bytes after a pause.
    After(std::time::Duration, Vec<u8>),
    /// The head at once, then the body one byte per interval.
    Trickle(Vec<u8>, Vec<u8>, std::time::Duration),
    /// Close the connection without a word (after reading the request).
    Close,
}

pub struct HostileServer {
    pub addr: std::net::SocketAddr,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl HostileServer {
    pub async fn start(respond: impl Fn(&RawRequest) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_on("127.0.0.1:0", respond).await
    }

    pub async fn start_on(addr: &str, respond: impl Fn(&RawRequest) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let respond = Arc::new(respond);
        let counter = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let (respond, counter) = (Arc::clone(&respond), Arc::clone(&counter));
                tokio::spawn(async move {
                    while let Some(request) = read_request(&mut stream).await {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let bytes = match respond(&request) {
                            Reply::Send(bytes) => bytes,
                            Reply::After(pause, bytes) => {
                                tokio::time::sleep(pause).await;
                                bytes
                            }
                            Reply::Trickle(head, body, interval) => {
                                if stream.write_all(&head).await.is_err() {
                                    return;
                                }
                                for byte in body {
                                    tokio::time::sleep(interval).await;
                                    if stream.write_all(&[byte]).await.is_err() {
                                        return;
                                    }
                                }
                                continue;
                            }
                            Reply::Close => return,
                        };
                        if stream.write_all(&bytes).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { addr, requests, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<RawRequest> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buffer[head_end..head_end + length]).into_owned();
    Some(RawRequest { head, body })
}

/// A complete HTTP/1.1 response.
pub fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Reply {
    Reply::Send(response_bytes(status, headers, body))
}

pub fn response_bytes(status: u16, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

/// A token response with this access token and type.
pub fn token(access_token: &str, token_type: &str) -> Reply {
    let body =
        serde_json::json!({ "access_token": access_token, "token_type": token_type, "expires_in": 3600 }).to_string();
    response(200, &[("content-type", "application/json")], &body)
}

/// An OAuth error body as JSON (`description` JSON-escaped here).
pub fn oauth_error(status: u16, error: &str, description: &str) -> Reply {
    let body = serde_json::json!({ "error": error, "error_description": description }).to_string();
    response(status, &[("content-type", "application/json")], &body)
}
