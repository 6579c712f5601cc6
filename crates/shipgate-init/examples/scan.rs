//! Prints what `shipgate init` would write for a directory (default: the current one).
//!
//! `cargo run -p shipgate-init --example scan -- fixtures/init/proofkit`

#![allow(clippy::print_stdout)]

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| ".".to_owned());
    let layout = shipgate_init::detect(std::path::Path::new(&dir))?;
    for finding in &layout.findings {
        println!("found {}: {}", finding.file, finding.what);
    }
    let scaffold = shipgate_init::scaffold(&layout);
    for file in &scaffold.files {
        println!("\n--- {}\n{}", file.path, file.contents);
    }
    for todo in &scaffold.todo {
        println!("to do: {todo}");
    }
    Ok(())
}
