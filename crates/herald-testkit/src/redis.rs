//! A real `redis-server` per test: its own free port on 127.0.0.1 and its own temporary
//! directory, killed when the value is dropped. No test shares a server or calls `FLUSHDB`.
//!
//! # Why a real server and never a skip
//! The Redis store's guarantees live in its Lua scripts and in Redis's persistence; a stand-in
//! would test neither. A machine without `redis-server` fails the test with the install hint
//! (`.ci/run` installs it), it does not pass by skipping.
//!
//! The helper talks RESP over a plain `TcpStream` (PING, CONFIG SET, DBSIZE), so the testkit needs
//! no Redis client crate.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a started server gets to answer PING: a guard against a hang, not a timing claim.
const START_CAP: Duration = Duration::from_secs(30);

/// How a server persists, as `redis-server` is told at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// `appendonly yes`, `appendfsync everysec`, no RDB snapshots: Herald's default promise.
    Aof,
    /// `appendonly yes`, `appendfsync always`: `durability = "power-loss"`.
    AofAlways,
    /// No AOF, RDB snapshots only (`save 3600 1`): what Herald must refuse to claim on.
    RdbOnly,
    /// Nothing on disk (the bench's setting).
    None,
}

/// A running `redis-server` owned by one test.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
    persistence: Persistence,
    /// More `redis-server` arguments, given at every start.
    extra: Vec<String>,
}

impl RedisServer {
    /// A server with AOF on (`appendfsync everysec`), as Herald's default expects.
    pub fn start() -> Self {
        Self::with(Persistence::Aof)
    }

    /// A server persisting as `persistence` says.
    pub fn with(persistence: Persistence) -> Self {
        Self::with_args(persistence, &[])
    }

    /// A server persisting as `persistence` says, started with `extra` arguments as well (such
    /// as `["--rename-command", "CONFIG", ""]`, a managed Redis that disables `CONFIG`). The
    /// helper itself needs only PING.
    pub fn with_args(persistence: Persistence, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory for redis-server");
        let mut server = Self {
            child: None,
            port: 0,
            dir,
            persistence,
            extra: extra.iter().map(|a| (*a).to_owned()).collect(),
        };
        server.spawn_on_free_port();
        server
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's working directory (its AOF and log live here).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// SIGKILLs the server (a process crash: what Redis acknowledged is in the page cache and
    /// survives, so a restart replays it from the AOF).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and directory, so it reloads what it persisted.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn(self.port)
            .unwrap_or_else(|why| panic!("redis-server did not restart on {}: {why}", self.port));
    }

    /// Kills the server, deletes everything it persisted and starts it again on the same port:
    /// a Redis that came back empty.
    pub fn restart_empty(&mut self) {
        self.kill();
        for entry in std::fs::read_dir(self.dir.path()).expect("read the redis dir") {
            let path = entry.expect("a dir entry").path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path).expect("remove the AOF directory");
            } else if path.file_name().is_some_and(|n| n != "redis.log") {
                std::fs::remove_file(&path).expect("remove a redis file");
            }
        }
        self.spawn(self.port)
            .unwrap_or_else(|why| panic!("redis-server did not restart on {}: {why}", self.port));
    }

    /// Sends one command (its arguments as bulk strings) and returns the reply's first line,
    /// such as `+OK` or `:3`. For tests that set up or inspect the server directly.
    pub fn command(&self, args: &[&str]) -> String {
        command(self.port, args).unwrap_or_else(|why| panic!("redis command {args:?}: {why}"))
    }

    fn spawn_on_free_port(&mut self) {
        let mut last = String::new();
        for _ in 0..10 {
            let port = free_port();
            match self.spawn(port) {
                Ok(()) => {
                    self.port = port;
                    return;
                }
                Err(why) => last = why,
            }
        }
        panic!("redis-server could not start on a free port: {last}");
    }

    fn spawn(&mut self, port: u16) -> Result<(), String> {
        let dir = self.dir.path();
        let mut args: Vec<String> = vec![
            "--port".into(),
            port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--dir".into(),
            dir.display().to_string(),
            "--logfile".into(),
            "redis.log".into(),
            "--daemonize".into(),
            "no".into(),
            "--protected-mode".into(),
            "yes".into(),
        ];
        let (aof, fsync, save) = match self.persistence {
            Persistence::Aof => ("yes", "everysec", ""),
            Persistence::AofAlways => ("yes", "always", ""),
            Persistence::RdbOnly => ("no", "everysec", "3600 1"),
            Persistence::None => ("no", "everysec", ""),
        };
        for (name, value) in [("appendonly", aof), ("appendfsync", fsync), ("save", save)] {
            args.push(format!("--{name}"));
            args.push(value.to_owned());
        }
        args.extend(self.extra.iter().cloned());
        let child = Command::new(redis_server())
            .args(&args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(why) if why.kind() == std::io::ErrorKind::NotFound => panic!(
                "redis-server is not installed: the Redis tests need a real server \
                 (`sudo apt-get install redis-server`; .ci/run installs it)"
            ),
            Err(why) => return Err(format!("spawn redis-server: {why}")),
        };
        let deadline = Instant::now() + START_CAP;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "redis-server exited with {status}; its log: {}",
                    log_tail(dir)
                ));
            }
            // LOADING (replaying an AOF) answers PING with an error: wait for +PONG.
            if command(port, &["PING"]).is_ok_and(|reply| reply == "+PONG") {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "redis-server did not answer PING within {START_CAP:?}; its log: {}",
                    log_tail(dir)
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `redis-server` from `HERALD_REDIS_SERVER` (a build elsewhere) or the `PATH`.
fn redis_server() -> PathBuf {
    std::env::var_os("HERALD_REDIS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("redis-server"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

fn log_tail(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

/// One RESP command over a fresh connection; the reply's first line.
fn command(port: u16, args: &[&str]) -> Result<String, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    if line.is_empty() {
        return Err("connection closed".into());
    }
    Ok(line.trim_end().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_keeps_what_it_acknowledged_across_a_kill_and_forgets_it_when_emptied() {
        let mut server = RedisServer::start();
        assert_eq!(server.command(&["SET", "k", "v"]), "+OK");
        assert_eq!(server.command(&["CONFIG", "GET", "appendonly"]), "*2");
        server.restart();
        assert_eq!(server.command(&["EXISTS", "k"]), ":1");
        server.restart_empty();
        assert_eq!(server.command(&["EXISTS", "k"]), ":0");
        let other = RedisServer::with(Persistence::RdbOnly);
        assert_ne!(other.port(), server.port());
        assert_eq!(other.command(&["DBSIZE"]), ":0");
    }
}
