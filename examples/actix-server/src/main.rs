//! `auth-actix-server`: serves the example app on actix-web, or manages its users; the command
//! line and the configuration (`AUTH_*`) are `auth-example-server`'s
//! ([`auth_example_server::cli::run`]), not a copy.

use std::process::ExitCode;

use auth_actix_server::{serve, shutdown_signal};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    auth_example_server::cli::run("auth-actix-server", &args, |listener, auth, dialect| {
        serve(listener, auth, dialect, shutdown_signal())
    })
}
