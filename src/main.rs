//! The `parent-connection` binary: parses the command line and hands over to the library.

fn main() -> std::process::ExitCode {
    parent_connection::cli::main()
}
