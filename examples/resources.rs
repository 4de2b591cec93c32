//! Resources: tasks call a local HTTP server through one shared client, supplied by the
//! runner with `Runner::resource`, never wired in `dag!` and never part of a fingerprint.
//!
//! The example starts a tiny HTTP server on a loopback port, runs the pipeline, then starts a
//! second server on another port and runs it again with a new client: every node is cached,
//! because a resource (here, the client and its address) does not enter any fingerprint.
//!
//! Run it with:
//!
//! ```text
//! cargo run --example resources
//! ```
//!
//! Expected output:
//!
//! ```text
//! run 1: 4 ran, 0 cached, 3 requests: ada (2 repos), grace (3 repos), linus (1 repos)
//! run 2: 0 ran, 4 cached, 0 requests: ada (2 repos), grace (3 repos), linus (1 repos)
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use typedag::prelude::*;

/// A minimal HTTP/1.0 client for one server, shared by every task that calls it.
struct Http {
    base: SocketAddr,
    requests: AtomicUsize,
}

impl Http {
    async fn get(&self, path: &str) -> std::io::Result<String> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let mut stream = TcpStream::connect(self.base).await?;
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
            .await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        if !head.starts_with("HTTP/1.0 200") {
            return Err(std::io::Error::other(format!("GET {path}: {head}")));
        }
        Ok(body.to_owned())
    }
}

/// Which user's repositories the pipeline asks for.
struct Settings {
    users: Vec<String>,
}

#[task(retries = 2)]
async fn repos(http: Res<Http>, user: String) -> Result<Vec<String>, std::io::Error> {
    let body = http.get(&format!("/users/{user}/repos")).await?;
    Ok(body.lines().map(str::to_owned).collect())
}

#[task]
async fn summary(a: &[String], b: &[String], c: &[String], settings: Res<Settings>) -> String {
    settings
        .users
        .iter()
        .zip([a, b, c])
        .map(|(user, repos)| format!("{user} ({} repos)", repos.len()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Serves `/users/NAME/repos` with one repository per line.
async fn serve() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                let mut request = String::new();
                if stream.read_line(&mut request).await.is_err() {
                    return;
                }
                let path = request.split_whitespace().nth(1).unwrap_or("/");
                let body = match path {
                    "/users/ada/repos" => Some("engine\nnotes"),
                    "/users/grace/repos" => Some("cobol\ncompiler\nnanosecond"),
                    "/users/linus/repos" => Some("kernel"),
                    _ => None,
                };
                let response = match body {
                    Some(body) => format!("HTTP/1.0 200 OK\r\n\r\n{body}"),
                    None => "HTTP/1.0 404 Not Found\r\n\r\n".to_owned(),
                };
                let _ = stream.get_mut().write_all(response.as_bytes()).await;
            });
        }
    });
    Ok(addr)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = MemoryStore::new();
    for run in 1..=2 {
        let http = std::sync::Arc::new(Http {
            base: serve().await?,
            requests: AtomicUsize::new(0),
        });
        let users = ["ada", "grace", "linus"].map(String::from);
        let runner = Runner::new()
            .store(store.clone())
            .resource_arc(http.clone())
            .resource(Settings {
                users: users.to_vec(),
            })
            .cancel_on_ctrl_c();
        let [a, b, c] = users;
        let graph = dag! {
            name = "resources";
            ada   = repos(a);
            grace = repos(b);
            linus = repos(c);
            text  = summary(ada, grace, linus);
        };
        let partial = runner.run_partial(graph).await?;
        let text = partial
            .outputs
            .text
            .ok_or_else(|| partial.report.to_string())?;
        println!(
            "run {run}: {} ran, {} cached, {} requests: {text}",
            partial.report.ran(),
            partial.report.cached(),
            http.requests.load(Ordering::SeqCst)
        );
    }
    Ok(())
}
