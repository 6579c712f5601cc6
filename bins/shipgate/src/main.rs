//! The `shipgate` binary: everything lives in the library half of this crate.

fn main() -> std::process::ExitCode {
    shipgate::main_impl()
}
