//! Processes: starting them detached, telling whether they live, stopping them politely.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Whether `pid` is a live (not zombie) process.
pub(crate) fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the field after the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Whether `pid` is alive and its command line contains `needle` (guards against pid reuse).
pub(crate) fn alive_as(pid: u32, needle: &str) -> bool {
    alive(pid)
        && std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|cmd| String::from_utf8_lossy(&cmd).contains(needle))
}

/// Sends SIGTERM, waits up to `grace` for the process to go, then SIGKILL.
pub(crate) async fn terminate(pid: u32, grace: Duration) {
    let Ok(raw) = i32::try_from(pid) else {
        return;
    };
    let target = Pid::from_raw(raw);
    if kill(target, Signal::SIGTERM).is_err() {
        return;
    }
    let until = Instant::now() + grace;
    while Instant::now() < until {
        if !alive(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = kill(target, Signal::SIGKILL);
    for _ in 0..40 {
        if !alive(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Starts `argv` in its own process group (so a Ctrl-C meant for shipgate does not reach it),
/// with stdout and stderr appended to `log`. The child outlives shipgate.
pub(crate) fn spawn_detached(
    argv: &[String],
    env: &[(String, String)],
    log: &Path,
) -> std::io::Result<tokio::process::Child> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"))?;
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let err = out.try_clone()?;
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .kill_on_drop(false);
    command.spawn()
}

/// A port on loopback that was free a moment ago.
pub(crate) fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The last `n` lines of a log file.
pub(crate) fn tail(path: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| (*l).to_owned())
        .collect()
}
