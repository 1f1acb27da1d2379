//! `tap-jira`: extract a Jira Cloud site as Singer messages.

fn main() -> std::process::ExitCode {
    singer_tap::main(tap_jira::about(), tap_jira::Config::into_tap)
}
