use std::process::ExitCode;

fn main() -> ExitCode {
    engraft::cli::main()
}
