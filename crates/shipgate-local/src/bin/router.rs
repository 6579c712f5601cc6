//! `shipgate-local-router --listen ADDR --backend-file FILE --ready-file FILE`: the stable port
//! of a local service. Each new connection goes to the port written in the backend file at that
//! moment, so the local provider switches traffic by rewriting one small file; connections
//! already open stay on the process they started with until it stops. Once it listens, the
//! router writes `PID ADDR` to the ready file: the provider's proof that the stable port is
//! this router's and not another process's.

#![allow(clippy::print_stderr)]

use std::path::PathBuf;

use tokio::net::{TcpListener, TcpStream};

fn usage() -> ! {
    eprintln!(
        "usage: shipgate-local-router --listen 127.0.0.1:PORT --backend-file FILE --ready-file FILE"
    );
    std::process::exit(2);
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| usage())
    };
    let listen = value("--listen");
    let backend_file = PathBuf::from(value("--backend-file"));
    let ready_file = PathBuf::from(value("--ready-file"));
    let listener = match TcpListener::bind(&listen).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("shipgate-local-router: cannot listen on {listen}: {err}");
            std::process::exit(1);
        }
    };
    let tmp = ready_file.with_extension("tmp");
    let ready = format!("{} {listen}", std::process::id());
    if let Err(err) = std::fs::write(&tmp, ready).and_then(|()| std::fs::rename(&tmp, &ready_file))
    {
        eprintln!(
            "shipgate-local-router: cannot write {}: {err}",
            ready_file.display()
        );
        std::process::exit(1);
    }
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            continue;
        };
        let backend_file = backend_file.clone();
        tokio::spawn(async move {
            let Ok(text) = tokio::fs::read_to_string(&backend_file).await else {
                return;
            };
            let Ok(port) = text.trim().parse::<u16>() else {
                return;
            };
            if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", port)).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}
