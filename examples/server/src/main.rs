//! `auth-example-server`: serves the example app (axum), or manages its users; the command line
//! is [`auth_example_server::cli::run`], shared with the actix-web example.

use std::process::ExitCode;

use auth_example_server::{app_with_dialect, cli, serve, shutdown_signal};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    cli::run("auth-example-server", &args, |listener, auth, dialect| {
        serve(listener, app_with_dialect(auth, dialect), shutdown_signal())
    })
}
