//! The `emr-driver` binary: parse the command line, run the library, map the result to an
//! exit code, print the error chain.

fn main() -> std::process::ExitCode {
    emr_driver::cli::main()
}
