//! Puts the git commit the binary is built from into `--version` (`SHIPGATE_GIT_COMMIT`):
//! from `git` in a checkout, from cargo's `.cargo_vcs_info.json` in a packaged crate, else
//! `unknown commit`. On Linux with glibc, links the binary with packed relative relocations.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"])
        .inspect(|_| {
            // Rebuild when HEAD moves (a commit, a checkout).
            for path in [
                git(&["rev-parse", "--git-path", "HEAD"]),
                git(&["rev-parse", "--git-path", "packed-refs"]),
            ]
            .into_iter()
            .flatten()
            {
                println!("cargo:rerun-if-changed={path}");
            }
            if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"])
                .and_then(|r| git(&["rev-parse", "--git-path", &r]))
            {
                println!("cargo:rerun-if-changed={reference}");
            }
        })
        .or_else(|| {
            // A packaged crate: cargo recorded the commit it was packaged from.
            let info = std::fs::read_to_string(".cargo_vcs_info.json").ok()?;
            let info: serde_json::Value = serde_json::from_str(&info).ok()?;
            let sha = info["git"]["sha1"].as_str()?;
            (sha.len() >= 12 && sha.chars().all(|c| c.is_ascii_hexdigit()))
                .then(|| sha[..12].to_owned())
        })
        .unwrap_or_else(|| "unknown commit".to_owned());
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-env=SHIPGATE_GIT_COMMIT={commit}");
    // DT_RELR: the 40,000 relative relocations of the position-independent binary take 8 KB
    // instead of 970 KB (the release binary: 30.9 MB → 29.9 MB). glibc 2.36+ applies them; an
    // older GNU ld ignores the option with a warning. musl and macOS builds are left as they are.
    let target = |key: &str| std::env::var(key).unwrap_or_default();
    if target("CARGO_CFG_TARGET_OS") == "linux" && target("CARGO_CFG_TARGET_ENV") == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
