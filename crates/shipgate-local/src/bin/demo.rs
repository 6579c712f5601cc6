//! `shipgate-demo-service --port PORT --version VERSION`: the README demo's service as its own
//! executable (the `shipgate` binary runs the same code as `shipgate demo-service`). See
//! [`shipgate_local::demo`] for how each version behaves.

#![allow(clippy::print_stderr)]

use shipgate_local::demo::{DemoArgs, DemoEnd, serve};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = DemoArgs::parse(&args).unwrap_or_else(|usage| {
        eprintln!("usage: shipgate-demo-service {usage}");
        std::process::exit(2);
    });
    match serve(args, |port| eprintln!("demo: listening on {port}")).await {
        Ok(DemoEnd::Crashed) => {
            eprintln!("demo: crashing on purpose");
            std::process::exit(3);
        }
        Ok(DemoEnd::Stopped) => {}
        Err(err) => {
            eprintln!("demo: {err}");
            std::process::exit(1);
        }
    }
}
