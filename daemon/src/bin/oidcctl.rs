//! `oidcctl`: see `oidcctl --help`.

fn main() -> std::process::ExitCode {
    oidcd::ctl::main()
}
