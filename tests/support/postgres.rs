//! A throwaway PostgreSQL cluster for tests, examples and benchmarks: `initdb` and `pg_ctl`
//! from the installed PostgreSQL (`pg_config --bindir`), a fresh data directory, a loopback
//! port, and a non-root user when this process runs as root (PostgreSQL refuses root).
//!
//! A watchdog process stops the cluster and removes its directory when this process ends,
//! however it ends (a failed assertion, a SIGKILL), so no server outlives its test.

#![allow(dead_code, reason = "each test binary uses part of it")]

use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A running cluster; stopped and removed when dropped.
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    user: Option<(u32, u32)>,
}

impl Cluster {
    /// Starts a new cluster for tests: durability off (`fsync`, `synchronous_commit`), as
    /// nothing in it needs to outlive a machine crash. Panics saying what is missing.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// Starts a new cluster that commits durably, as a production server does (for
    /// benchmarks).
    pub fn start_durable() -> Self {
        Self::start_with(true)
    }

    fn start_with(durable: bool) -> Self {
        let bin = bindir();
        let dir = std::env::temp_dir().join(format!(
            "typedag-pg-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the cluster directory");
        let user = server_user();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown the cluster dir");
        }
        let port = free_port();
        let cluster = Self {
            bin,
            dir,
            port,
            user,
        };
        cluster.watch();
        cluster.tool(
            "initdb",
            &[
                "-D",
                cluster.data().to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        std::fs::write(
            cluster.data().join("postgresql.auto.conf"),
            format!(
                "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nmax_connections = 200\nshared_buffers = 64MB\n{}",
                cluster.dir.display(),
                if durable {
                    ""
                } else {
                    "fsync = off\nfull_page_writes = off\nsynchronous_commit = off\n"
                }
            ),
        )
        .expect("write the cluster's settings");
        cluster.pg_ctl(&["start", "-w", "-t", "60"]);
        cluster
    }

    /// One cluster for the whole test binary (stopped by the watchdog when it exits), for
    /// tests that do not restart the server; each takes its own database.
    pub fn shared() -> &'static Self {
        static SHARED: OnceLock<Cluster> = OnceLock::new();
        SHARED.get_or_init(Self::start)
    }

    /// The URL of the default database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A new, empty database, and its URL.
    pub fn database(&self, name: &str) -> String {
        let status = self
            .command("psql")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U"])
            .args(["postgres", "-q", "-v", "ON_ERROR_STOP=1"])
            .args(["-c", &format!("DROP DATABASE IF EXISTS \"{name}\"")])
            .args(["-c", &format!("CREATE DATABASE \"{name}\"")])
            .env("PGOPTIONS", "-c client_min_messages=warning")
            .stdout(Stdio::null())
            .status()
            .expect("run psql");
        assert!(status.success(), "creating database {name} failed");
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Runs `sql` in the database at `url` and returns what it printed (unaligned, no
    /// headers), or panics with the server's words.
    pub fn sql(&self, url: &str, sql: &str) -> String {
        let out = self
            .command("psql")
            .args([url, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .env("PGOPTIONS", "-c client_min_messages=warning")
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Stops the server (fast shutdown: open connections are cut) and starts it again.
    pub fn restart(&self) {
        self.pg_ctl(&["restart", "-m", "fast", "-w", "-t", "60"]);
    }

    /// Stops the server.
    pub fn stop(&self) {
        self.pg_ctl(&["stop", "-m", "fast", "-w"]);
    }

    /// Starts the server after [`stop`](Self::stop).
    pub fn resume(&self) {
        self.pg_ctl(&["start", "-w", "-t", "60"]);
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn command(&self, tool: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(tool));
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid).gid(gid);
        }
        cmd.current_dir(&self.dir);
        cmd
    }

    fn tool(&self, tool: &str, args: &[&str]) {
        let out = self
            .command(tool)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn pg_ctl(&self, args: &[&str]) {
        let log = self.dir.join("server.log");
        let data = self.data();
        let mut all = vec!["-D", data.to_str().unwrap()];
        all.extend(["-l", log.to_str().unwrap()]);
        all.extend(args);
        let started = Instant::now();
        let out = self
            .command("pg_ctl")
            .args(&all)
            .stdin(Stdio::null())
            .output()
            .expect("run pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl {args:?} failed after {:?}: {}\n{}",
            started.elapsed(),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Stops the server and removes the directory once this process is gone.
    fn watch(&self) {
        let script = format!(
            "while [ -e /proc/{pid} ]; do sleep 0.2; done; \
             {pg_ctl} -D {data} stop -m immediate >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            pg_ctl = self.bin.join("pg_ctl").display(),
            data = self.data().display(),
            dir = self.dir.display(),
        );
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid).gid(gid);
        }
        #[allow(
            clippy::zombie_processes,
            reason = "the watchdog outlives this process on purpose"
        )]
        cmd.spawn().expect("start the cluster's watchdog");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args([
                "-D",
                self.data().to_str().unwrap(),
                "stop",
                "-m",
                "immediate",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Where `initdb` and `pg_ctl` are: `$PG_BINDIR`, else what `pg_config --bindir` says.
fn bindir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BINDIR") {
        return dir.into();
    }
    let out = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .expect("these tests need PostgreSQL's server binaries: `pg_config` was not found (install PostgreSQL 15, or set PG_BINDIR)");
    assert!(out.status.success(), "pg_config --bindir failed");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// PostgreSQL refuses to run as root: as root, run it as `postgres` (or `nobody`).
fn server_user() -> Option<(u32, u32)> {
    let uid = id("-u", None);
    if uid != 0 {
        return None;
    }
    for name in ["postgres", "nobody"] {
        if Command::new("id")
            .arg(name)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return Some((id("-u", Some(name)), id("-g", Some(name))));
        }
    }
    panic!("running as root and there is no `postgres` or `nobody` user to run PostgreSQL as");
}

fn id(flag: &str, user: Option<&str>) -> u32 {
    let out = Command::new("id")
        .arg(flag)
        .args(user)
        .output()
        .expect("run id");
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free loopback port")
}

/// Waits until `check` holds, or panics after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
