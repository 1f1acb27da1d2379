//! Python tools the tests run as independent readers and peers (Meltano, moto, deltalake,
//! pyarrow), each in a virtualenv under `~/.cache/singer-rs`, installed once per machine.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The virtualenv `name` with `packages` (pip requirement strings) installed; `probe` is a
/// Python statement that succeeds only when they are (an import and a version check).
pub fn venv(name: &str, packages: &[&str], probe: &str) -> PathBuf {
    let home = std::env::var("HOME").expect("HOME");
    let venv = Path::new(&home).join(".cache/singer-rs").join(name);
    let python = venv.join("bin/python");
    // Tests run in parallel: one installs, the others wait for it.
    std::fs::create_dir_all(venv.parent().expect("cache dir")).expect("cache dir");
    let lock = std::fs::File::create(venv.with_extension("lock")).expect("lock file");
    lock.lock().expect("lock the virtualenv");
    let ready = Command::new(&python)
        .args(["-c", probe])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ready {
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 -m venv");
        assert!(status.success(), "creating the virtualenv {name} failed");
        let status = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet"])
            .args(packages)
            .status()
            .expect("pip");
        assert!(status.success(), "pip install {packages:?} failed");
        let probed = Command::new(&python)
            .args(["-c", probe])
            .output()
            .expect("python");
        assert!(
            probed.status.success(),
            "{name}: `{probe}` fails after installing {packages:?}: {}",
            String::from_utf8_lossy(&probed.stderr)
        );
    }
    venv
}

/// The virtualenv with the object-storage and table-format readers: moto's S3 server,
/// the `deltalake` package (delta-rs's Python binding) and pyarrow.
pub fn lake_venv() -> PathBuf {
    venv(
        "lake-venv",
        &["moto[server]==5.2.5", "deltalake==1.6.6", "pyarrow==26.*"],
        "import moto, deltalake, pyarrow, boto3; assert moto.__version__ == '5.2.5' and deltalake.__version__ == '1.6.6'",
    )
}

/// Runs `script` with the virtualenv's Python and `args`; returns stdout, panicking with
/// stderr when the script fails.
pub fn run_python(venv: &Path, script: &str, args: &[&str]) -> String {
    // The script's work is done when it ends: skip the interpreter's teardown, where the
    // `deltalake` package's runtime threads sometimes abort the process ("terminate called
    // without an active exception") after a correct result.
    let script =
        format!("{script}\nimport os as _os, sys as _sys\n_sys.stdout.flush()\n_os._exit(0)\n");
    let out = Command::new(venv.join("bin/python"))
        .arg("-c")
        .arg(&script)
        .args(args)
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
