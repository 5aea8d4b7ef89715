//! Reading the administrator's small files (configuration, client secret, CA bundle) so that a
//! wrong path cannot hang or exhaust the daemon: a FIFO would block `read` until a writer
//! comes, and `/dev/zero` never ends.

use std::io::{self, Read};
use std::path::Path;

/// The contents of `path`, which must be a regular file (after symlinks) of at most `max`
/// bytes; anything else is an `InvalidInput` error that says what the path is instead.
pub fn read(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        let what = if meta.is_dir() {
            "a directory"
        } else {
            "not a regular file"
        };
        return Err(io::Error::new(io::ErrorKind::InvalidInput, what));
    }
    let mut out = Vec::new();
    std::fs::File::open(path)?
        .take(max.saturating_add(1))
        .read_to_end(&mut out)?;
    if out.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("larger than {max} bytes"),
        ));
    }
    Ok(out)
}

/// [`read`], as UTF-8 text.
pub fn read_to_string(path: &Path, max: u64) -> io::Result<String> {
    String::from_utf8(read(path, max)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_within_the_limit_are_read() {
        let dir = std::env::temp_dir().join(format!("oidcd-small-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("secret");
        std::fs::write(&f, "s3cret\n").unwrap();
        assert_eq!(read_to_string(&f, 7).unwrap(), "s3cret\n");
        let e = read(&f, 6).unwrap_err();
        assert_eq!(e.to_string(), "larger than 6 bytes");
        std::fs::write(&f, [0xff, 0xfe]).unwrap();
        assert_eq!(
            read_to_string(&f, 7).unwrap_err().to_string(),
            "not UTF-8 text"
        );
        assert_eq!(read(&dir, 7).unwrap_err().to_string(), "a directory");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn devices_and_fifos_are_refused_without_blocking() {
        assert_eq!(
            read(Path::new("/dev/zero"), 1 << 20)
                .unwrap_err()
                .to_string(),
            "not a regular file"
        );
        let dir = std::env::temp_dir().join(format!("oidcd-small-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert_eq!(
            read(&fifo, 10).unwrap_err().to_string(),
            "not a regular file"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
