//! [`main`]: a tap binary's whole `main`.

use std::io::Write as _;
use std::process::ExitCode;

use serde::de::DeserializeOwned;
use singer_core::Error as CoreError;
use singer_core::catalog::Catalog;
use singer_core::cli::{About, TapArgs};
use singer_core::state::State;

use crate::Tap;
use crate::error::{Error, Result};

/// Runs a tap binary: parses flags, answers `--about`, loads and validates the config,
/// builds the tap with `build`, then discovers or syncs. Returns the process exit code.
///
/// ```no_run
/// # fn about() -> singer_core::cli::About { unimplemented!() }
/// # #[derive(serde::Deserialize)] struct Config;
/// # fn build(_: Config) -> singer_tap::Result<singer_tap::Tap> { unimplemented!() }
/// fn main() -> std::process::ExitCode {
///     singer_tap::main(about(), build)
/// }
/// ```
pub fn main<C: DeserializeOwned>(about: About, build: impl FnOnce(C) -> Result<Tap>) -> ExitCode {
    let Some(args) = singer_core::cli::start::<TapArgs>(&about) else {
        return ExitCode::SUCCESS;
    };
    match run(&about, &args, build) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("CRITICAL {e}");
            ExitCode::FAILURE
        }
    }
}

fn run<C: DeserializeOwned>(
    about: &About,
    args: &TapArgs,
    build: impl FnOnce(C) -> Result<Tap>,
) -> Result<ExitCode> {
    let config = singer_core::cli::load_settings(about, &args.common.config)?;
    let mut tap = build(config)?;
    tap.settings.verify |= args.verify;
    about.name.clone_into(&mut tap.settings.tap_name);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Sync(format!("cannot start the async runtime: {e}")))?;
    if args.discover {
        let catalog = runtime.block_on(tap.discover_available());
        let mut text = serde_json::to_string_pretty(&catalog).unwrap_or_default();
        text.push('\n');
        std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(|source| CoreError::Stream {
                context: "writing the catalog",
                source,
            })?;
        return Ok(ExitCode::SUCCESS);
    }
    let catalog = match (&args.catalog, &args.properties) {
        (Some(path), _) => Some(Catalog::from_file(path)?),
        (None, Some(path)) => Some(Catalog::from_legacy_properties(path)?),
        (None, None) => None,
    };
    let state = match &args.state {
        Some(path) => State::from_file(path)?,
        None => State::default(),
    };
    let out: Box<dyn std::io::Write + Send> = Box::new(std::io::BufWriter::with_capacity(
        1 << 16,
        std::io::stdout(),
    ));
    let test = args.test.is_some();
    if args.test.as_deref() == Some("schema") {
        tap.settings.state_every_records = u64::MAX;
    }
    let report = runtime.block_on(tap.sync(catalog.as_ref(), state, test, out))?;
    if report.failures.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for (stream, error) in &report.failures {
        eprintln!("CRITICAL {stream}: {error}");
    }
    Ok(ExitCode::FAILURE)
}
