//! Paths compiled into the modules and used as defaults by the daemon.

/// The daemon's socket. The PAM and NSS modules connect here and nowhere else.
pub const SOCKET_PATH: &str = "/run/oidcd/socket";

/// The NSS map the daemon writes and the NSS module maps (see [`crate::nss_map`]): root-owned,
/// mode 0644, replaced by rename. The module reads it from here and nowhere else.
pub const NSS_MAP_PATH: &str = "/run/oidcd/nss.map";

/// The daemon's default configuration file.
pub const CONFIG_PATH: &str = "/etc/oidcd/oidcd.toml";

/// The default identity cache database.
pub const DB_PATH: &str = "/var/lib/oidcd/cache.db";

/// Set in the daemon's own environment: the NSS module answers "not found" at once when it
/// sees it, so nothing the daemon runs can ask the daemon through NSS and wait on itself.
pub const NSS_BYPASS_ENV: &str = "OIDCD_NSS_BYPASS";

/// systemd sets `SYSTEMD_ACTIVATION_UNIT` while it prepares a unit (resolving `User=` and the
/// like through NSS); lookups made for our own unit must not wait on the daemon it is starting.
pub const UNIT_NAME: &str = "oidcd.service";
