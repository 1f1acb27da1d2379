//! `tap-jira`: extract a Jira Cloud site as Singer messages.

use std::process::ExitCode;

/// Records are parsed on one thread and freed on another; mimalloc keeps that cheap where
/// glibc's arenas contend on a lock.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    singer_core::cli::tap_main(tap_jira::about(), |config: tap_jira::Config| {
        config.into_tap()
    })
}
