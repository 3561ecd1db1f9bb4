//! The `parent-connection` binary: parses the command line and hands over to the library.

#[global_allocator]
static ALLOCATOR: parent_connection::Allocator = parent_connection::Allocator;

fn main() -> std::process::ExitCode {
    parent_connection::configure_allocator();
    parent_connection::cli::main()
}
