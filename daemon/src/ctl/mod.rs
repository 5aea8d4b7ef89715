//! `oidcctl`: see `oidcctl --help`.
#![allow(clippy::print_stdout)] // a command-line tool: stdout is its output

mod doctor;
pub mod idmap;
mod show;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use oidc_proto::client::{self, ClientError, TrustedOwner};
use oidc_proto::types::{ErrorCode, SubjectMove};
use oidc_proto::{Request, Response};
use serde_json::Value;

use crate::config::Config;

/// Exit status: success.
pub const EXIT_OK: u8 = 0;
/// Exit status: not found, refused, or invalid.
pub const EXIT_FAILED: u8 = 1;
/// Exit status: usage error.
pub const EXIT_USAGE: u8 = 2;
/// Exit status: the daemon could not be reached.
pub const EXIT_UNREACHABLE: u8 = 3;

const TIMEOUT: Duration = Duration::from_secs(30);

/// See and fix the state of oidcd, the OpenID Connect login daemon.
///
/// Read commands work for every user (claims are shown to root only); commands that change
/// anything need root, which the daemon checks from the socket's peer credentials.
#[derive(Parser, Debug)]
#[command(
    name = "oidcctl",
    version,
    about,
    long_about,
    after_help = "Exit status:\n  0  success\n  1  not found, refused or invalid (the message says which)\n  2  usage error\n  3  oidcd is not running or did not answer\n\nExamples:\n  oidcctl status\n  oidcctl user show alice --json\n  oidcctl import users.json\n  oidcctl export > idmap.json   # then on every host: oidcctl import idmap.json"
)]
pub struct Args {
    /// Configuration file (for `config check`, and to find the socket).
    #[arg(long, global = true, value_name = "PATH", default_value = oidc_proto::paths::CONFIG_PATH)]
    config: PathBuf,
    /// The daemon's socket (default: cache.socket_path from the configuration, else /run/oidcd/socket).
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Is the daemon up, is a provider configured, how many users and groups, where is the
    /// database; the NSS map: state, generation, counts, size, when written, valid until.
    Status,
    /// Users in the identity cache.
    #[command(subcommand)]
    User(UserCmd),
    /// Provider groups in the identity cache.
    #[command(subcommand)]
    Group(GroupCmd),
    /// The identity cache itself.
    #[command(subcommand)]
    Cache(CacheCmd),
    /// The configuration file.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Pre-provision users (like useradd) or pin a fleet's ID map.
    ///
    /// FILE is either a JSON array of claim sets, each exactly as the configured provider would
    /// send them in an ID token or userinfo (`sub` required; the provider is the one whose
    /// issuer the entries' `iss` names, all the same, else the first configured): each user
    /// goes through the same mapping, protection and access rules as a login, a bad entry is
    /// reported with its index and none of the file is applied (a file too large for one
    /// request, 1 MiB, is sent in parts and applied at once). Or FILE is an ID map written by
    /// `oidcctl export` or `oidcctl idmap merge` (format 2, or format 1 of older releases): its
    /// checksum and consistency are checked, then every entry is pinned here, in parts that
    /// each fit one request, after a dry run of all of them; an entry already pinned with the
    /// same ID is left alone, so configuration management can apply the same map on every run.
    /// Pinned identities get their IDs when they arrive (and a user or group at once when the
    /// name is free). Use `-` for standard input.
    Import {
        /// The file.
        file: PathBuf,
        /// An ID map: check every entry against this host and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print this host's ID map (JSON, format 2, sealed with a checksum): every provider's
    /// users and groups with their IDs, and the pins imported here. Import it on every host
    /// (`oidcctl import`), merged with other hosts' maps (`oidcctl idmap merge`), so that the
    /// same people and groups keep the same IDs everywhere, whatever order they arrive in.
    Export {
        /// Only this provider (its id or issuer).
        #[arg(long, value_name = "ID")]
        provider: Option<String>,
        /// Write format 1 (one provider, the first when --provider is absent), for hosts still
        /// running an oidcd older than fleet maps.
        #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=2))]
        format: u8,
    },
    /// Work on ID map files (no daemon needed).
    #[command(subcommand)]
    Idmap(IdmapCmd),
    /// Let an existing local account (in /etc/passwd) log in with the device flow as one
    /// provider identity (migration from local passwords). NSS keeps serving the account from
    /// /etc/passwd; only that identity (its `sub` at the configured issuer) can approve its
    /// logins. Without a link, an approval never logs into a local account.
    Link {
        /// The local account.
        local_name: String,
        /// The identity's subject (`sub` claim) at the provider's issuer.
        #[arg(long)]
        sub: String,
        /// The provider (its id or issuer); default: the first in the configuration.
        #[arg(long, value_name = "ID")]
        provider: Option<String>,
    },
    /// Remove the link of a local account.
    Unlink {
        /// The local account.
        local_name: String,
    },
    /// List linked local accounts.
    Links,
    /// Move the users of one issuer to another provider, keeping their UIDs, names and files.
    ///
    /// When people move to a new identity provider they get new subjects there, and to oidcd a
    /// new subject is a new person with a new UID. This moves each user (and linked local
    /// account) of the old issuer to its identity at the new provider, which must be configured
    /// (add it as a [[provider]], or replace the old [provider]). By --table, at once: FILE is a
    /// JSON object {"NAME": "NEW SUBJECT", ...} naming users by their Unix name. By --by-email,
    /// at their first login through the new provider: when it vouches for the same email
    /// address (verified, and no other old user's) and maps them to the same name. The old
    /// issuer's groups keep their GIDs too: the new provider's group that maps to the same name
    /// takes each over. Without --apply nothing is changed: the command prints what would
    /// happen (a dry run); run it first. All or nothing.
    #[command(after_help = "Examples:
  oidcctl migrate --from https://old.example.com --to new --table moves.json
  oidcctl migrate --from https://old.example.com --to new --table moves.json --apply
  oidcctl migrate --from https://old.example.com --to new --by-email --apply")]
    Migrate {
        /// The issuer the users belong to now (as oidcctl user show prints it).
        #[arg(long, value_name = "ISSUER")]
        from: String,
        /// The provider they move to: its id or its issuer.
        #[arg(long, value_name = "PROVIDER")]
        to: String,
        /// A JSON object {"NAME": "NEW SUBJECT", ...}: these move at once.
        #[arg(long, value_name = "FILE")]
        table: Option<PathBuf>,
        /// The others move at their first login through the new provider, by verified email.
        #[arg(long)]
        by_email: bool,
        /// Make the changes (without it: a dry run).
        #[arg(long)]
        apply: bool,
    },
    /// Check the whole setup and say how to fix each problem found.
    ///
    /// Checks, in order: the configuration (valid, root-owned, a provider set); the provider
    /// (discovery reachable, issuer, device endpoint and signing keys, algorithms, grant and
    /// scopes it lists); this host's clock against the provider's Date header; the daemon
    /// (socket and its directory, running, its version and configuration); the database's
    /// owner and mode; the NSS map (missing while cache.nss_map is on, not root's or writable
    /// by others, expired while the daemon answers, counts other than the store's, present
    /// while cache.nss_map is off); the IDs (an identity whose ID is not its pin in an imported map is an
    /// error, one whose ID is not the fleet's rule's a warning; with --map, every disagreement
    /// with that fleet map is an error); nsswitch.conf (oidc on passwd and group, after files;
    /// libnss_oidc.so.2 installed); and every PAM service that uses pam_oidc.so (run as Linux-PAM would, root
    /// and a local user must still get in with their local password whatever pam_oidc answers,
    /// daemon down or module missing included); and sshd, as `sshd -T` reports its effective
    /// global settings (Match blocks are not evaluated), when pam_oidc is in sshd's PAM stack
    /// or an SSH keys claim is set: UsePAM no, KbdInteractiveAuthentication no (or, before
    /// OpenSSH 8.7, ChallengeResponseAuthentication no) or AuthenticationMethods without
    /// keyboard-interactive while pam_oidc is in sshd's stack, and an AuthorizedKeysCommand
    /// naming oidc-authorized-keys without `%u` alone, missing, or without an
    /// AuthorizedKeysCommandUser, are errors; sshd not installed skips these checks. Each
    /// finding is printed as ok, WARN or ERROR, with a fix. Run it as root: the configuration
    /// may be readable by root only, and `sshd -T` reads the host keys.
    #[command(
        after_help = "Warnings (exit status stays 0): insecure_http_issuer set; clock off by more than 10 s
(but within login.clock_skew) or not checkable; device grant or a configured scope not
listed by the provider; daemon not restarted after an upgrade or a configuration change;
database or its directory readable by others, or not created yet; initgroups line without
oidc; [NOTFOUND=return] before oidc; oidc on shadow; no PAM service using pam_oidc yet; an
identity whose ID is not the one the fleet's rule gives (left by an earlier release); an NSS
map not written yet, left out entries, not the daemon's own, expired or marked replaced while
the daemon is down, or present (no longer used) while cache.nss_map is off; sshd: sshd -T
failed (its message is shown), LoginGraceTime 0, over 10 minutes, or shorter than
login.timeout, MaxStartups at the default 10:30:100, PerSourceMaxStartups none,
PerSourcePenalties no, and with ssh_keys_claim set: no AuthorizedKeysCommand, one that does
not run oidc-authorized-keys, or PubkeyAuthentication no.

Exit status:
  0  no errors (warnings allowed)
  1  at least one error
  2  usage error

Examples:
  sudo oidcctl doctor
  sudo oidcctl doctor --json | jq '.findings[] | select(.severity != \"ok\")'
  sudo oidcctl doctor --map /etc/oidcd/fleet-idmap.json
  sudo oidcctl doctor --sshd-config /etc/ssh/sshd_config.new"
    )]
    Doctor {
        /// Also compare this host's IDs with this fleet map (an error for every identity whose
        /// ID here differs). Without it, the pins imported here and the fleet's rule are checked.
        #[arg(long, value_name = "FILE")]
        map: Option<PathBuf>,
        /// Check this sshd configuration file instead of sshd's own (/etc/ssh/sshd_config):
        /// it is passed to `sshd -T -f FILE`, so a change can be checked before sshd reloads it.
        #[arg(long, value_name = "FILE")]
        sshd_config: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum IdmapCmd {
    /// Check a map: format, checksum, and that no identity has two IDs and no ID two
    /// identities. Prints its counts.
    Check {
        /// The map (`-`: standard input).
        file: PathBuf,
    },
    /// Print the union of several maps (other hosts' exports, a hand-written pin), sealed. An
    /// identity in several with the same ID appears once; two IDs for one identity, or one ID
    /// for two identities, are printed as conflicts and nothing is written (exit status 1).
    Merge {
        /// The maps.
        #[arg(required = true, num_args = 1..)]
        files: Vec<PathBuf>,
    },
    /// Print the fleet map of a whole directory: FILE holds every identity's claim set, as the
    /// providers send them (as for oidcctl import; `iss` chooses the provider). Each goes
    /// through this host's configuration (names, groups); then every group and identity is
    /// pinned in order, each skipping the IDs pinned before it, so no two share an ID and the
    /// same directory always gives the same map. Import it on every host before the users
    /// arrive. Claim sets the rules refuse are left out (listed on stderr).
    Build {
        /// The claim sets (`-`: standard input).
        file: PathBuf,
    },
    /// Print a map with the checksum of its entries: for a map written or edited by hand
    /// (format "oidcd-idmap-2"; "checksum" may be empty or absent), e.g. to pin one identity of
    /// a colliding pair to a chosen ID.
    Seal {
        /// The map (`-`: standard input).
        file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum UserCmd {
    /// List users: name, UID, groups, source, last login.
    List,
    /// Show one user in full (with the offline PIN's state: set, wrong tries, locked until).
    Show {
        /// Unix name.
        name: String,
    },
    /// Remove a user from the cache (their files stay; they get the same UID if they return).
    Remove {
        /// Unix name.
        name: String,
    },
    /// Re-read a user from the provider now with their refresh token, as the background
    /// refresh does: name, groups and admin status follow the provider; a refused grant
    /// revokes the user.
    Refresh {
        /// Unix name.
        name: String,
    },
    /// Revoke a user on this host now: the PAM account phase (SSH keys, su, sudo, cron)
    /// refuses them until their next login through the provider, they lose their provider and
    /// admin groups, and their tokens are forgotten. Their passwd entry stays, so their files
    /// keep their owner.
    Revoke {
        /// Unix name.
        name: String,
    },
    /// Forget a user's offline PIN ([offline]), with its wrong tries and lock: a PIN they
    /// forgot, want to change or locked. Their next login through the identity provider offers
    /// to set a new one.
    ClearPin {
        /// Unix name.
        name: String,
    },
    /// The SSH public keys sshd accepts for a user now (what `oidc-authorized-keys NAME`
    /// prints to sshd's AuthorizedKeysCommand), from the claim claims.ssh_keys_claim names, as
    /// authorized_keys lines. Lines starting with # say how many are served and, for root, why
    /// none are (revoked, not confirmed by the provider recently enough, refused by the
    /// access rules, no claim configured), the keys stored but not served, and the entries of
    /// the claim that are not keys.
    Keys {
        /// Unix name.
        name: String,
    },
}

#[derive(Subcommand, Debug)]
enum GroupCmd {
    /// List provider groups: name, GID, members.
    List,
    /// Show one group.
    Show {
        /// Unix name.
        name: String,
    },
}

#[derive(Subcommand, Debug)]
enum CacheCmd {
    /// Remove every user, group and membership (users reappear, with the same IDs, at their
    /// next login).
    Clear,
}

#[derive(Subcommand, Debug)]
enum ConfigCmd {
    /// Check the configuration without starting anything; print each problem as
    /// file:line:column: key: message.
    Check,
}

/// Runs `oidcctl` with the process's arguments.
pub fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    ExitCode::from(run(&args))
}

fn run(args: &Args) -> u8 {
    let request = match &args.command {
        Command::Config(ConfigCmd::Check) => return config_check(args),
        Command::Doctor { map, sshd_config } => {
            return doctor::run(
                &args.config,
                args.socket.as_deref(),
                map.as_deref(),
                sshd_config.as_deref(),
                args.json,
            );
        }
        Command::Idmap(IdmapCmd::Build { file }) => return idmap_build(&args.config, file),
        Command::Idmap(cmd) => return idmap_command(cmd),
        Command::Export {
            provider,
            format: 2,
        } => {
            return export_map(&socket_path(args), provider.as_deref());
        }
        Command::Import { file, dry_run } => match import_request(file) {
            Ok(Imported::Map(map)) => return import_map(&socket_path(args), &map, *dry_run),
            Ok(Imported::Request(_) | Imported::Parts(_)) if *dry_run => {
                eprintln!("oidcctl: --dry-run is for ID maps");
                return EXIT_USAGE;
            }
            Ok(Imported::Request(r)) => r,
            Ok(Imported::Parts(entries)) => return import_in_parts(args, &entries),
            Err(e) => {
                eprintln!("oidcctl: {e}");
                return EXIT_FAILED;
            }
        },
        Command::Status => Request::Status,
        Command::User(UserCmd::List) => Request::AdminUserList,
        Command::User(UserCmd::Show { name }) => Request::AdminUserShow { name: name.clone() },
        Command::User(UserCmd::Remove { name }) => Request::AdminUserRemove { name: name.clone() },
        Command::User(UserCmd::Refresh { name }) => {
            Request::AdminUserRefresh { name: name.clone() }
        }
        Command::User(UserCmd::Revoke { name }) => Request::AdminUserRevoke { name: name.clone() },
        Command::User(UserCmd::Keys { name }) => Request::GetSshKeys { name: name.clone() },
        Command::User(UserCmd::ClearPin { name }) => {
            Request::AdminUserClearPin { name: name.clone() }
        }
        Command::Group(GroupCmd::List) => Request::AdminGroupList,
        Command::Group(GroupCmd::Show { name }) => Request::AdminGroupShow { name: name.clone() },
        Command::Cache(CacheCmd::Clear) => Request::AdminCacheClear,
        Command::Export { provider, .. } => Request::AdminExport {
            provider: provider.clone(),
        },
        Command::Link {
            local_name,
            sub,
            provider,
        } => Request::AdminLink {
            local_name: local_name.clone(),
            sub: sub.clone(),
            provider: provider.clone(),
        },
        Command::Unlink { local_name } => Request::AdminUnlink {
            local_name: local_name.clone(),
        },
        Command::Links => Request::AdminLinkList,
        Command::Migrate {
            from,
            to,
            table,
            by_email,
            apply,
        } => match migrate_request(from, to, table.as_deref(), *by_email, *apply) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("oidcctl: {e}");
                return EXIT_USAGE;
            }
        },
    };
    let socket = socket_path(args);
    let response = match client::call(&socket, TrustedOwner::Root, &request, TIMEOUT) {
        Ok(r) => r,
        Err(e) => {
            return unreachable(
                &e,
                &socket,
                matches!(args.command, Command::Status),
                args.json,
            );
        }
    };
    print_response(args, response)
}

fn print_response(args: &Args, response: Response) -> u8 {
    let mut out = std::io::stdout().lock();
    let printed = match &response {
        Response::NotFound => {
            eprintln!("oidcctl: not found");
            return EXIT_FAILED;
        }
        Response::Error {
            code,
            message,
            details,
        } => {
            eprintln!("oidcctl: {message}");
            for d in details {
                eprintln!("  {d}");
            }
            if *code == ErrorCode::PermissionDenied {
                eprintln!("oidcctl: run it as root (sudo oidcctl ...)");
            }
            return EXIT_FAILED;
        }
        Response::Unavailable { reason } => {
            eprintln!("oidcctl: oidcd cannot answer: {reason}");
            return EXIT_FAILED;
        }
        _ if args.json => show::json(&mut out, &response),
        _ => show::text(&mut out, &response),
    };
    match printed.and_then(|()| out.flush()) {
        Ok(()) => EXIT_OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => EXIT_OK,
        Err(e) => {
            eprintln!("oidcctl: {e}");
            EXIT_FAILED
        }
    }
}

fn unreachable(e: &ClientError, socket: &Path, is_status: bool, json: bool) -> u8 {
    if is_status && json {
        let v = serde_json::json!({"daemon_running": false, "socket_path": socket, "error": e.to_string()});
        println!("{v:#}");
    } else {
        eprintln!("oidcctl: {e}");
        if matches!(e, ClientError::NotRunning(_)) {
            eprintln!(
                "oidcctl: start it with `systemctl start oidcd` and see `journalctl -u oidcd`"
            );
        }
    }
    EXIT_UNREACHABLE
}

/// `--socket`, else the configuration's `cache.socket_path` when the file can be read (it is
/// root-only when it holds a secret), else the compiled-in path.
fn socket_path(args: &Args) -> PathBuf {
    if let Some(s) = &args.socket {
        return s.clone();
    }
    std::fs::read_to_string(&args.config)
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|t| {
            t.get("cache")?
                .get("socket_path")?
                .as_str()
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(oidc_proto::paths::SOCKET_PATH))
}

fn config_check(args: &Args) -> u8 {
    match Config::load(&args.config) {
        Ok(c) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"file": c.path, "valid": true, "errors": []})
                );
            } else {
                println!("{}: ok", c.path.display());
                if c.providers.is_empty() {
                    println!(
                        "note: no [provider] configured: known users still resolve; imports and logins need it"
                    );
                }
                for notice in &c.notices {
                    println!("note: {notice}");
                }
            }
            EXIT_OK
        }
        Err(errors) => {
            if args.json {
                let list: Vec<Value> = errors
                    .0
                    .iter()
                    .map(|e| serde_json::json!({"line": e.line, "column": e.column, "key": e.key, "message": e.message}))
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({"file": args.config, "valid": false, "errors": list})
                );
            } else {
                eprintln!("{errors}");
                eprintln!("{} problem(s) found", errors.0.len());
            }
            EXIT_FAILED
        }
    }
}

fn migrate_request(
    from: &str,
    to: &str,
    table: Option<&Path>,
    by_email: bool,
    apply: bool,
) -> Result<Request, String> {
    if table.is_none() && !by_email {
        return Err("say how identities move: --table FILE, --by-email, or both".into());
    }
    let table = match table {
        None => Vec::new(),
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let map: serde_json::Map<String, Value> = serde_json::from_str(&text).map_err(|e| {
                format!(
                    "{}: expected a JSON object {{\"NAME\": \"NEW SUBJECT\", ...}}: {e}",
                    file.display()
                )
            })?;
            map.into_iter()
                .map(|(name, sub)| match sub {
                    Value::String(new_sub) => Ok(SubjectMove { name, new_sub }),
                    other => Err(format!(
                        "{}: the new subject of {name:?} must be a string, not {other}",
                        file.display()
                    )),
                })
                .collect::<Result<_, _>>()?
        }
    };
    Ok(Request::AdminMigrate {
        from_issuer: from.to_string(),
        to: to.to_string(),
        table,
        by_email,
        apply,
    })
}

/// What `oidcctl import` sends.
enum Imported {
    /// Claim sets, in one request.
    Request(Request),
    /// Claim sets too many for one request: sent in parts, applied at once.
    Parts(Vec<Value>),
    /// An ID map, sent in parts.
    Map(oidc_proto::types::FleetMap),
}

/// Longest part of an import, as JSON: under the daemon's request limit with room for the
/// envelope.
const PART_LEN: usize = oidc_proto::frame::MAX_REQUEST_LEN - 4096;
/// How long applying a staged import may take (100,000 users: seconds).
const COMMIT_TIMEOUT: Duration = Duration::from_secs(600);

fn import_request(file: &Path) -> Result<Imported, String> {
    let text = if file == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| format!("reading standard input: {e}"))?
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?
    };
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not valid JSON: {e}", file.display()))?;
    drop(text);
    let request = match value {
        Value::Array(entries) => {
            if serde_json::to_vec(&entries).map_or(0, |v| v.len()) > PART_LEN {
                return Ok(Imported::Parts(entries));
            }
            Request::AdminImport { entries }
        }
        Value::Object(ref o) if o.contains_key("format") => {
            return idmap::parse(value, true)
                .map(Imported::Map)
                .map_err(|e| format!("{}: {e}", file.display()));
        }
        _ => {
            return Err(format!(
                "{}: expected a JSON array of claim sets, or an ID map from `oidcctl export`",
                file.display()
            ));
        }
    };
    // The daemon reads at most MAX_REQUEST_LEN bytes per request; say so before sending.
    let limit = oidc_proto::frame::MAX_REQUEST_LEN - 64;
    let size = serde_json::to_vec(&oidc_proto::Envelope::new(&request)).map_or(0, |v| v.len());
    if size > limit {
        return Err(format!(
            "{}: this ID map is {size} bytes, over the limit of {limit} bytes oidcd accepts at \
             once: split the file and import the parts",
            file.display()
        ));
    }
    Ok(Imported::Request(request))
}

fn idmap_command(cmd: &IdmapCmd) -> u8 {
    let (map, what) = match cmd {
        IdmapCmd::Check { file } => match idmap::read(file, true) {
            Ok(m) => {
                let problems = idmap::problems(&m);
                for p in &problems {
                    eprintln!("oidcctl: {}: {p}", file.display());
                }
                if !problems.is_empty() {
                    return EXIT_FAILED;
                }
                println!(
                    "{}: ok: {} users, {} groups, {}",
                    file.display(),
                    m.users.len(),
                    m.groups.len(),
                    m.checksum
                );
                return EXIT_OK;
            }
            Err(e) => {
                eprintln!("oidcctl: {e}");
                return EXIT_FAILED;
            }
        },
        IdmapCmd::Merge { files } => {
            let mut maps = Vec::new();
            for f in files {
                match idmap::read(f, true) {
                    Ok(m) => maps.push(m),
                    Err(e) => {
                        eprintln!("oidcctl: {e}");
                        return EXIT_FAILED;
                    }
                }
            }
            match idmap::merge(maps) {
                Ok(m) => (m, "merge"),
                Err(conflicts) => {
                    for c in &conflicts {
                        eprintln!("oidcctl: conflict: {c}");
                    }
                    eprintln!(
                        "oidcctl: {} conflict(s); nothing written: pin one side (oidcctl idmap \
                         seal of a map with the chosen ID) and merge again",
                        conflicts.len()
                    );
                    return EXIT_FAILED;
                }
            }
        }
        IdmapCmd::Build { .. } => return EXIT_USAGE,
        IdmapCmd::Seal { file } => match idmap::read(file, false) {
            Ok(m) => (idmap::sealed(m), "seal"),
            Err(e) => {
                eprintln!("oidcctl: {e}");
                return EXIT_FAILED;
            }
        },
    };
    for p in idmap::problems(&map) {
        eprintln!("oidcctl: {what}: {p}");
    }
    print_map(&map)
}

fn idmap_build(config: &Path, file: &Path) -> u8 {
    let cfg = match Config::load(config) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return EXIT_FAILED;
        }
    };
    let text = if file == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).map_err(|e| e.to_string())
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))
    };
    let claims: Vec<Value> = match text.and_then(|t| {
        serde_json::from_str(&t).map_err(|e| {
            format!(
                "{}: expected a JSON array of claim sets: {e}",
                file.display()
            )
        })
    }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("oidcctl: {e}");
            return EXIT_FAILED;
        }
    };
    let (map, notes) = idmap::build(&cfg, &claims);
    for n in &notes {
        eprintln!("oidcctl: {n}");
    }
    print_map(&map)
}

fn print_map(map: &oidc_proto::types::FleetMap) -> u8 {
    let mut out = std::io::stdout().lock();
    let written = serde_json::to_writer_pretty(&mut out, map)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .and_then(|()| out.flush());
    match written {
        Ok(()) => EXIT_OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => EXIT_OK,
        Err(e) => {
            eprintln!("oidcctl: {e}");
            EXIT_FAILED
        }
    }
}

fn export_map(socket: &Path, provider: Option<&str>) -> u8 {
    match idmap::export(socket, provider) {
        Ok(map) => print_map(&map),
        Err(f) => failure(f, socket),
    }
}

fn import_map(socket: &Path, map: &oidc_proto::types::FleetMap, dry_run: bool) -> u8 {
    match idmap::import(socket, map, dry_run) {
        Ok(said) => {
            for line in said {
                println!("{line}");
            }
            EXIT_OK
        }
        Err(f) => failure(f, socket),
    }
}

/// Prints a refusal or an unreachable daemon; the exit status.
fn failure(f: idmap::Failed, socket: &Path) -> u8 {
    let resp = match f {
        idmap::Failed::Unreachable(e) => return unreachable(&e, socket, false, false),
        idmap::Failed::Answer(resp) => *resp,
    };
    match resp {
        Response::Error {
            code,
            message,
            details,
        } => {
            eprintln!("oidcctl: {message}");
            for d in details {
                eprintln!("  {d}");
            }
            if code == ErrorCode::PermissionDenied {
                eprintln!("oidcctl: run it as root (sudo oidcctl ...)");
            }
            EXIT_FAILED
        }
        Response::Unavailable { reason } => {
            eprintln!("oidcctl: oidcd cannot answer: {reason}");
            EXIT_FAILED
        }
        other => {
            eprintln!("oidcctl: unexpected answer: {other:?}");
            EXIT_FAILED
        }
    }
}

/// Sends claim sets in parts of at most [`PART_LEN`] bytes, then asks the daemon to apply
/// them all at once (all or nothing, as for a small file).
fn import_in_parts(args: &Args, entries: &[Value]) -> u8 {
    let socket = socket_path(args);
    let id = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    // Cut the parts first, so an entry too large for any part stops the import before
    // anything is sent.
    let mut cuts = Vec::new();
    let (mut start, mut len) = (0, 2);
    for (i, e) in entries.iter().enumerate() {
        let n = serde_json::to_vec(e).map_or(0, |v| v.len()) + 1;
        if n + 2 > PART_LEN {
            eprintln!(
                "oidcctl: entry {i} alone is over the limit of {PART_LEN} bytes oidcd accepts \
                 in one request; nothing was imported"
            );
            return EXIT_FAILED;
        }
        if len + n > PART_LEN {
            cuts.push(start..i);
            (start, len) = (i, 2);
        }
        len += n;
    }
    cuts.push(start..entries.len());
    for range in cuts {
        let part = Request::AdminImportPart {
            import_id: id.clone(),
            entries: entries[range].to_vec(),
        };
        match client::call(&socket, TrustedOwner::Root, &part, TIMEOUT) {
            Ok(Response::Done { .. }) => {}
            Ok(other) => return print_response(args, other),
            Err(e) => return unreachable(&e, &socket, false, args.json),
        }
    }
    let commit = Request::AdminImportCommit {
        import_id: id,
        total: entries.len() as u64,
    };
    match client::call(&socket, TrustedOwner::Root, &commit, COMMIT_TIMEOUT) {
        Ok(r) => print_response(args, r),
        Err(e) => unreachable(&e, &socket, false, args.json),
    }
}
