//! Running the real `herald` binary in isolation: its own temp dir, config and environment.
//!
//! # Why isolation
//! Tests run in parallel and on developers' machines: a `herald` that found `./herald.toml`, a
//! `HERALD_CONFIG` or `HERALD_LOG` from the shell, or the user's store under `XDG_DATA_HOME`
//! would test the machine instead of the change. Every command gets `--config` pointing into
//! its project dir, the variables that could leak are removed, and the data dir is the project
//! dir. Long-running roles (`herald worker`) are [`Spawned`]: killed when the test ends, even
//! when it panics, so a failed test leaves no process behind.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// Variables from the test's own environment that would change what `herald` does.
const LEAKY_ENV: &[&str] = &["HERALD_CONFIG", "HERALD_LOG", "RUST_LOG", "NO_COLOR"];

/// `bin args… --config DIR/herald.toml`, run in `dir`, its data dir `dir`, nothing inherited
/// that changes Herald's behaviour.
pub fn isolated(bin: &Path, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.current_dir(dir)
        .args(args)
        .arg("--config")
        .arg(dir.join(CONFIG));
    for key in LEAKY_ENV {
        cmd.env_remove(key);
    }
    cmd.env("XDG_DATA_HOME", dir);
    cmd
}

/// The config file's name inside a project dir.
const CONFIG: &str = "herald.toml";

/// A temp project: a dir with the config, the campaigns, the audiences and the SQLite store,
/// and the environment every command of the test gets (such as a WhatsApp token).
pub struct Project {
    dir: tempfile::TempDir,
    bin: PathBuf,
    env: Vec<(String, String)>,
}

impl Project {
    /// An empty project running `bin` (`env!("CARGO_BIN_EXE_herald")` in the caller).
    pub fn new(bin: impl Into<PathBuf>) -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temp dir"),
            bin: bin.into(),
            env: Vec::new(),
        }
    }

    /// The project dir.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the project dir.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The SQLite store the config written by tests points at.
    pub fn db(&self) -> PathBuf {
        self.file("herald.db")
    }

    /// Writes `name` in the project dir.
    pub fn write(&self, name: &str, contents: &str) {
        fs::write(self.file(name), contents).unwrap_or_else(|e| panic!("writing {name}: {e}"));
    }

    /// Writes the config file (`herald.toml`).
    pub fn write_config(&self, contents: &str) {
        self.write(CONFIG, contents);
    }

    /// Sets a variable for every command from now on.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// The isolated command.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = isolated(&self.bin, self.path(), args);
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        cmd
    }

    /// Runs `args` to its end.
    pub fn output(&self, args: &[&str]) -> Output {
        self.command(args)
            .output()
            .unwrap_or_else(|e| panic!("herald {args:?} runs: {e}"))
    }

    /// Runs `args`, asserts exit code 0, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "herald {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `args` in the background, its stdout and stderr appended to `NAME.out` and
    /// `NAME.err` in the project dir (read them with [`Project::log`] when a test fails).
    pub fn spawn(&self, name: &str, args: &[&str]) -> Spawned {
        let open = |ext: &str| {
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.file(&format!("{name}.{ext}")))
                .expect("a log file")
        };
        let child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(open("out"))
            .stderr(open("err"))
            .spawn()
            .unwrap_or_else(|e| panic!("herald {args:?} starts: {e}"));
        Spawned {
            name: name.to_owned(),
            child: Some(child),
        }
    }

    /// What a spawned process named `name` wrote to stderr so far.
    pub fn log(&self, name: &str) -> String {
        fs::read_to_string(self.file(&format!("{name}.err"))).unwrap_or_default()
    }
}

/// A background `herald`, killed (SIGKILL) and reaped when dropped if still running.
pub struct Spawned {
    name: String,
    child: Option<Child>,
}

impl Spawned {
    /// Its name (its log files' stem).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Whether it has exited (and then its exit code, if it had one).
    pub fn exited(&mut self) -> Option<Option<i32>> {
        let child = self.child.as_mut()?;
        child
            .try_wait()
            .expect("the process's state")
            .map(|status| status.code())
    }

    /// SIGKILL, by pid, and reap: a crash, nothing finishes.
    pub fn sigkill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // An error means it already exited; reaping below says how.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, by pid (a graceful stop), then waits for the exit; returns the exit code.
    pub fn sigterm(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "SIGTERM to {}", self.name);
        child.wait().expect("the process exits").code()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.sigkill();
    }
}
