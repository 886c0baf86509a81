//! `mxtoken`: see the library crate.

fn main() -> std::process::ExitCode {
    mxtoken_client::main()
}
