//! `shipgate-local-router --listen ADDR --backend-file FILE --ready-file FILE [--stats-file FILE]`:
//! the local provider's router as its own executable, for programs that embed the local
//! provider (the `shipgate` binary runs the same code as `shipgate local-router`). See
//! [`shipgate_local::proxy`].

#![allow(clippy::print_stderr)]

use shipgate_local::proxy::{ProxyArgs, serve};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = ProxyArgs::parse(&args).unwrap_or_else(|usage| {
        eprintln!("usage: shipgate-local-router {usage}");
        std::process::exit(2);
    });
    let Err(err) = serve(args, |problem| {
        eprintln!("shipgate-local-router: {problem}")
    })
    .await;
    eprintln!("shipgate-local-router: {err}");
    std::process::exit(1);
}
