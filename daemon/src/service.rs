//! Running as a system service: ownership checks on the paths the daemon trusts, and
//! systemd's readiness notification.

use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;

/// Refuses a path that someone other than `owner` (root, in production) could write to: a
/// user able to replace the socket directory or the database could answer for the daemon or
/// invent users. A symbolic link is refused (whoever owns its directory could repoint it).
pub fn check_owned(path: &Path, owner: u32) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.file_type().is_symlink() {
        return Err(format!(
            "{} is a symbolic link; refusing to trust it",
            path.display()
        ));
    }
    check_meta(path, &meta, owner)
}

/// Refuses a configuration file someone other than `owner` could write: whoever can write it
/// names the issuer, and so decides who logs in. Symbolic links are followed (configuration
/// management often links the file); the file they lead to is what counts.
pub fn check_config_file(path: &Path, owner: u32) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    check_meta(path, &meta, owner)
}

fn check_meta(path: &Path, meta: &std::fs::Metadata, owner: u32) -> Result<(), String> {
    if meta.uid() != owner {
        return Err(format!(
            "{} is owned by uid {}, not {owner}: chown it",
            path.display(),
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{} is writable by group or others (mode {:04o}): chmod go-w it",
            path.display(),
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}

/// Creates `dir` (mode `mode`) if missing, then checks it and every existing file named in
/// `files` with [`check_owned`].
pub fn prepare_dir(dir: &Path, mode: u32, files: &[&Path], owner: u32) -> Result<(), String> {
    if !dir.exists() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        // The mode given to mkdir is filtered by the umask of whoever started us.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("cannot set the mode of {}: {e}", dir.display()))?;
    }
    check_owned(dir, owner)?;
    for f in files {
        if f.exists() {
            check_owned(f, owner)?;
        }
    }
    Ok(())
}

/// Sends `state` to systemd when run as `Type=notify`; does nothing otherwise.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    let sent = if let Some(abstract_name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(abstract_name)
            .and_then(|addr| sock.send_to_addr(state.as_bytes(), &addr))
    } else {
        sock.send_to(state.as_bytes(), Path::new(&path))
    };
    if let Err(e) = sent {
        log::debug!("sd_notify {state}: {e}");
    }
}
