//! The Redis servers the bench measures against, seen from outside the store: an admin
//! connection (fresh key space, `used_memory`, what each key family holds) and the AOF servers
//! the bench starts and stops itself for the durability costs.
//!
//! The bench's Redis (`REDIS_PORT`) is its own (run-baselines.sh starts it for the bench and
//! flushes it between groups), so `FLUSHALL` there is the simplest fresh key space; the store's
//! tests never do this, each has a server of its own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A plain (synchronous) connection for the bench's own bookkeeping, never the store's.
pub(crate) struct Admin {
    conn: redis::Connection,
}

/// Bytes held by the keys of one store prefix, by key family (the text between the prefix and
/// the first `:` of the rest: `dl`, `snap`, `hist`, `consent`, …), as `MEMORY USAGE … SAMPLES 0`
/// counts them (key, value and the key's entry, not the keyspace's bucket array).
#[derive(Debug, Default)]
pub(crate) struct Footprint {
    /// Family → (keys, bytes).
    pub(crate) families: BTreeMap<String, (u64, u64)>,
}

impl Admin {
    /// Connects to `url`.
    pub(crate) fn connect(url: &str) -> Result<Self, String> {
        let conn = redis::Client::open(url)
            .and_then(|client| client.get_connection())
            .map_err(|e| format!("connecting to {url}: {e}"))?;
        Ok(Self { conn })
    }

    /// Empties the server: a fresh key space for the next measurement.
    pub(crate) fn flushall(&mut self) -> Result<(), String> {
        redis::cmd("FLUSHALL")
            .arg("SYNC")
            .query::<()>(&mut self.conn)
            .map_err(|e| format!("FLUSHALL: {e}"))
    }

    /// `used_memory` of `INFO memory`: what BullMQ's bytes per job are measured with.
    pub(crate) fn used_memory(&mut self) -> Result<u64, String> {
        self.info_memory("used_memory")
    }

    /// `used_memory_overhead` of `INFO memory`: the part of `used_memory` that is the server's
    /// bookkeeping rather than data (clients' buffers, the script cache, the key index, …).
    pub(crate) fn overhead(&mut self) -> Result<u64, String> {
        self.info_memory("used_memory_overhead")
    }

    fn info_memory(&mut self, field: &str) -> Result<u64, String> {
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .query(&mut self.conn)
            .map_err(|e| format!("INFO memory: {e}"))?;
        info.lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .ok_or_else(|| format!("INFO memory has no {field}"))?
            .trim()
            .parse()
            .map_err(|e| format!("INFO memory: {field}: {e}"))
    }

    /// Bytes of db 0's key index that `MEMORY USAGE` does not count: the main and expires
    /// tables' bucket arrays and the expires entries (`MEMORY STATS` `overhead.hashtable.*`
    /// less one 24-byte `dictEntry` per key, which `MEMORY USAGE` already counts with its key).
    /// It grows with the number of keys, whichever keys they are.
    pub(crate) fn index_bytes(&mut self) -> Result<u64, String> {
        let stats: redis::Value = redis::cmd("MEMORY")
            .arg("STATS")
            .query(&mut self.conn)
            .map_err(|e| format!("MEMORY STATS: {e}"))?;
        let keys: u64 = redis::cmd("DBSIZE")
            .query(&mut self.conn)
            .map_err(|e| format!("DBSIZE: {e}"))?;
        let Some(db) = lookup(&stats, "db.0") else {
            return Ok(0); // db 0 has no key
        };
        let field = |name: &str| match lookup(db, name) {
            Some(redis::Value::Int(n)) => Ok(u64::try_from(*n).unwrap_or(0)),
            other => Err(format!("MEMORY STATS db.0 {name}: {other:?}")),
        };
        let tables = field("overhead.hashtable.main")? + field("overhead.hashtable.expires")?;
        Ok(tables.saturating_sub(24 * keys))
    }

    /// `INFO commandstats`: command → (calls, µs spent in it, Lua's inner calls included).
    pub(crate) fn commandstats(&mut self) -> Result<BTreeMap<String, (u64, u64)>, String> {
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut self.conn)
            .map_err(|e| format!("INFO commandstats: {e}"))?;
        let mut stats = BTreeMap::new();
        for line in info.lines() {
            let Some((name, fields)) = line
                .strip_prefix("cmdstat_")
                .and_then(|l| l.split_once(':'))
            else {
                continue;
            };
            let field = |key: &str| {
                fields
                    .split(',')
                    .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            stats.insert(name.to_owned(), (field("calls"), field("usec")));
        }
        Ok(stats)
    }

    /// A server setting (`CONFIG GET`), for the bench's own log of what it ran against.
    pub(crate) fn config_get(&mut self, name: &str) -> Result<String, String> {
        let pairs: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg(name)
            .query(&mut self.conn)
            .map_err(|e| format!("CONFIG GET {name}: {e}"))?;
        pairs
            .get(1)
            .cloned()
            .ok_or_else(|| format!("CONFIG GET {name}: no such setting"))
    }

    /// Every key under `prefix`, measured one `SCAN` page at a time (pipelined `MEMORY USAGE`).
    pub(crate) fn footprint(&mut self, prefix: &str) -> Result<Footprint, String> {
        let mut footprint = Footprint::default();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}*"))
                .arg("COUNT")
                .arg(1000)
                .query(&mut self.conn)
                .map_err(|e| format!("SCAN: {e}"))?;
            if !keys.is_empty() {
                let mut pipe = redis::pipe();
                for key in &keys {
                    pipe.cmd("MEMORY")
                        .arg("USAGE")
                        .arg(key)
                        .arg("SAMPLES")
                        .arg(0);
                }
                // A key deleted between SCAN and MEMORY USAGE answers nil.
                let sizes: Vec<Option<u64>> = pipe
                    .query(&mut self.conn)
                    .map_err(|e| format!("MEMORY USAGE: {e}"))?;
                for (key, size) in keys.iter().zip(sizes) {
                    let Some(size) = size else { continue };
                    let rest = &key[prefix.len()..];
                    let family = rest.split(':').next().unwrap_or(rest).to_owned();
                    let entry = footprint.families.entry(family).or_default();
                    entry.0 += 1;
                    entry.1 += size;
                }
            }
            if next == 0 {
                return Ok(footprint);
            }
            cursor = next;
        }
    }
}

/// The value after `name` in a reply of name/value pairs (RESP2 array or RESP3 map).
fn lookup<'a>(reply: &'a redis::Value, name: &str) -> Option<&'a redis::Value> {
    let is = |v: &redis::Value| match v {
        redis::Value::BulkString(b) => b == name.as_bytes(),
        redis::Value::SimpleString(s) => s == name,
        _ => false,
    };
    match reply {
        redis::Value::Array(items) => items
            .chunks(2)
            .find(|pair| pair.len() == 2 && is(&pair[0]))
            .map(|pair| &pair[1]),
        redis::Value::Map(pairs) => pairs.iter().find(|(k, _)| is(k)).map(|(_, v)| v),
        _ => None,
    }
}

/// When the AOF is flushed to disk: what `durability` asks of Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fsync {
    /// `appendfsync everysec`: Herald refuses it (a slow background fsync postpones the AOF
    /// write while Redis keeps replying); measured for comparison only.
    EverySec,
    /// `appendfsync always`: what Herald requires, at either durability.
    Always,
}

impl Fsync {
    fn setting(self) -> &'static str {
        match self {
            Fsync::EverySec => "everysec",
            Fsync::Always => "always",
        }
    }
}

/// A `redis-server` with `appendonly yes` the bench started on a free port, in its own
/// directory on disk; stopped (and its directory removed) when dropped.
pub(crate) struct AofServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl AofServer {
    /// Starts one under `root` and waits (at most ~10 s) until it answers `PING`.
    pub(crate) fn start(root: &Path, fsync: Fsync) -> Result<Self, String> {
        let port = free_port()?;
        let dir = root.join(format!("redis-aof-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "yes"])
            .args(["--appendfsync", fsync.setting()])
            .arg("--dir")
            .arg(&dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!("cannot start redis-server (apt-get install redis-server): {e}")
            })?;
        let mut server = Self { child, port, dir };
        for _ in 0..500 {
            if let Ok(mut admin) = Admin::connect(&server.url())
                && redis::cmd("PING").query::<String>(&mut admin.conn).is_ok()
            {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "redis-server on port {port} exited at start ({status}); see {}",
                    server.dir.join("redis.log").display()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        server.stop();
        Err(format!("redis-server on port {port} did not answer PING"))
    }

    /// Its URL.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for AofServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port nothing listens on now (the OS's choice, released at once: a small race with other
/// programs, which `start` reports as a server that exited).
fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("finding a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}
