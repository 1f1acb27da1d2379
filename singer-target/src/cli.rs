//! [`main`]: a target binary's whole `main`.

use std::process::ExitCode;
use std::sync::atomic::Ordering;

use serde::de::DeserializeOwned;
use singer_core::cli::{About, TargetArgs};

use crate::error::{Error, Result};
use crate::runtime::{RunSummary, STOP_REQUESTED, install_stop_handler, run};
use crate::settings::TargetSettings;
use crate::sink::Sink;

/// A target's config: its own settings, with the shared [`TargetSettings`] flattened in.
pub trait TargetConfig: DeserializeOwned {
    /// The settings every target shares.
    fn target_settings(&self) -> &TargetSettings;
}

/// Runs a target binary: parses flags, answers `--about`, loads and validates the config,
/// opens the sink with `open`, and loads the input. Returns the process exit code (143
/// after SIGTERM, as a process killed by it would).
///
/// ```no_run
/// # fn about() -> singer_core::cli::About { unimplemented!() }
/// # #[derive(serde::Deserialize)] struct Config { #[serde(flatten)] target: singer_target::TargetSettings }
/// # impl singer_target::TargetConfig for Config { fn target_settings(&self) -> &singer_target::TargetSettings { &self.target } }
/// # struct MySink;
/// # impl singer_target::Sink for MySink {
/// #     fn last_commit(&mut self) -> singer_target::Result<Option<singer_target::CommitMarker>> { Ok(None) }
/// #     fn commit(&mut self, _: singer_target::Commit) -> singer_target::Result<Vec<(String, singer_target::LoadStats)>> { Ok(vec![]) }
/// # }
/// # fn open(_: &Config) -> singer_target::Result<MySink> { Ok(MySink) }
/// fn main() -> std::process::ExitCode {
///     singer_target::main(about(), open)
/// }
/// ```
pub fn main<C: TargetConfig, S: Sink + Send>(
    about: About,
    open: impl FnOnce(&C) -> Result<S>,
) -> ExitCode {
    let Some(args) = singer_core::cli::start::<TargetArgs>(&about) else {
        return ExitCode::SUCCESS;
    };
    match load(&about, &args, open) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            if STOP_REQUESTED.load(Ordering::Relaxed) {
                ExitCode::from(143)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn load<C: TargetConfig, S: Sink + Send>(
    about: &About,
    args: &TargetArgs,
    open: impl FnOnce(&C) -> Result<S>,
) -> Result<RunSummary> {
    let config: C = singer_core::cli::load_settings(about, &args.common.config)?;
    // Stream maps are checked before the destination is opened or any input read.
    singer_core::stream_map::StreamMaps::new(&config.target_settings().maps)?;
    let sink = open(&config)?;
    let settings = config.target_settings();
    install_stop_handler();
    let stdout = std::io::stdout();
    match &args.input {
        Some(path) => {
            let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
            run(sink, settings, file, stdout.lock())
        }
        None => run(sink, settings, std::io::stdin(), stdout.lock()),
    }
}
