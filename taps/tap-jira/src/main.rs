//! `tap-jira`: extract a Jira Cloud site as Singer messages.

use std::process::ExitCode;

fn main() -> ExitCode {
    singer_core::cli::tap_main(tap_jira::about(), |config: tap_jira::Config| {
        config.into_tap()
    })
}
