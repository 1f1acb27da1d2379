//! Where a target reads or writes: local paths and `file://` URLs. Other URLs are refused
//! by name, rather than taken for a relative path (`s3://bucket/prefix` would otherwise
//! become a local folder named `s3:`).

use std::fmt;
use std::path::PathBuf;

/// A location that is not on the local file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotLocal {
    /// A URL of another scheme (`s3`, `gs`, `az`, `https`, ...).
    Scheme(String),
    /// A `file://` URL that names no local path.
    BadFileUrl,
}

impl fmt::Display for NotLocal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotLocal::Scheme(scheme) => write!(f, "'{scheme}://' URLs are not supported"),
            NotLocal::BadFileUrl => f.write_str("not a valid file:// URL"),
        }
    }
}

/// A path or `file://` URL as a local path.
pub fn local_path(location: &str) -> Result<PathBuf, NotLocal> {
    match location.split_once("://") {
        None => Ok(PathBuf::from(location)),
        Some(("file", _)) => url::Url::parse(location)
            .ok()
            .and_then(|u| u.to_file_path().ok())
            .ok_or(NotLocal::BadFileUrl),
        Some((scheme, _)) => Err(NotLocal::Scheme(scheme.to_string())),
    }
}

/// The `file://` URL of a local path, made absolute first (BATCH manifests name files by
/// URL, as the Meltano SDK writes them).
pub fn file_url(path: &std::path::Path) -> Result<String, NotLocal> {
    let absolute = std::path::absolute(path).map_err(|_| NotLocal::BadFileUrl)?;
    url::Url::from_file_path(absolute)
        .map(String::from)
        .map_err(|()| NotLocal::BadFileUrl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_files_only() {
        assert_eq!(
            local_path("file:///tmp/a%20b.jsonl"),
            Ok(PathBuf::from("/tmp/a b.jsonl"))
        );
        assert_eq!(local_path("rel/x.jsonl"), Ok(PathBuf::from("rel/x.jsonl")));
        let e = local_path("s3://bucket/x.jsonl").expect_err("s3");
        assert!(e.to_string().contains("'s3://'"), "{e}");
        assert_eq!(local_path("file://host:bad/x"), Err(NotLocal::BadFileUrl));
        let url = file_url(std::path::Path::new("/tmp/a b/x.json.gz")).expect("url");
        assert_eq!(url, "file:///tmp/a%20b/x.json.gz");
        assert_eq!(local_path(&url), Ok(PathBuf::from("/tmp/a b/x.json.gz")));
    }
}
