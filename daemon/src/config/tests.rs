use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

use super::*;

/// The configuration shipped in the package.
const SHIPPED: &str = include_str!("../../../packaging/config/oidcd.toml");

const ISSUER: &str = "https://sso.example.com/realms/example";

fn path() -> PathBuf {
    PathBuf::from("/etc/oidcd/oidcd.toml")
}

/// Parses `text` as a root-only file.
fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::from_toml(&path(), text, 0o600)
}

/// The errors of `text`, which must not parse.
fn errors(text: &str) -> Vec<ConfigError> {
    match parse(text) {
        Ok(c) => panic!("accepted: {c:?}"),
        Err(e) => e.0,
    }
}

/// The single error of `text`, checked to be about `key`.
fn one_error(text: &str, key: &str) -> ConfigError {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let e = errs.into_iter().next().unwrap();
    assert_eq!(e.key.as_deref(), Some(key), "{e}");
    assert_eq!(e.file, path());
    e
}

/// A `[provider]` section with `extra` lines.
fn provider(extra: &str) -> String {
    format!("[provider]\nissuer = \"{ISSUER}\"\nclient_id = \"oidcd\"\n{extra}\n")
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "oidcd-config-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    /// Writes `name` with `contents` and permission bits `mode`.
    fn file(&self, name: &str, contents: &str, mode: u32) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, contents).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The example blocks of the shipped file, by name, without their comment prefix.
fn shipped_example(name: &str) -> String {
    let begin = format!("# ----- begin example: {name} -----");
    let mut lines = SHIPPED.lines().skip_while(|l| *l != begin);
    assert!(lines.next().is_some(), "no example {name:?}");
    lines
        .take_while(|l| *l != "# ----- end example -----")
        .map(|l| {
            let l = l.strip_prefix('#').expect("example lines are comments");
            l.strip_prefix("   ").unwrap_or(l.trim_start())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parses `text` with its `client_secret_file` pointed at a real 0600 file.
fn parse_with_secret(text: &str) -> Config {
    let dir = TempDir::new();
    let secret = dir.file("client_secret", "s3cret\n", 0o600);
    let text = text.replace("/etc/oidcd/client_secret", &secret.to_string_lossy());
    parse(&text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"))
}

// ---- The shipped file ----

/// The shipped file parses and, everything being commented out, equals the defaults.
#[test]
fn shipped_config_is_the_default() {
    let c = parse(SHIPPED).unwrap();
    assert_eq!(
        c,
        Config {
            path: path(),
            ..Config::default()
        }
    );
}

/// Every key of every section, uncommented with the value shown, still gives the defaults.
#[test]
fn shipped_defaults_uncommented_are_the_defaults() {
    let mut text = String::new();
    let mut in_list = false;
    for line in SHIPPED.lines().take_while(|l| !l.starts_with("# Examples")) {
        // Keys are written `#key = value`, sections `[name]`, list items `#    "x",`.
        let uncommented = line.strip_prefix('#').unwrap_or(line);
        let is_key = uncommented.split_once(" = ").is_some_and(|(k, _)| {
            !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        });
        if in_list || is_key || line.starts_with('[') || uncommented == "[provider]" {
            in_list = (in_list || uncommented.ends_with('[')) && uncommented != "]";
            text.push_str(uncommented);
            text.push('\n');
        }
    }
    // The provider's secret options need a real file; a public client has neither.
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("client_secret") && !l.starts_with("ca_file"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut c = parse(&text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"));
    // The one key kept only for old files says so.
    assert_eq!(c.notices.len(), 1, "{:?}", c.notices);
    assert!(c.notices[0].starts_with("login.max_provisional_per_minute is no longer used"));
    c.notices.clear();
    let p = c.providers[0].clone();
    assert_eq!(p.issuer, ISSUER);
    assert_eq!(p.client_auth, None);
    assert_eq!(p.scopes, ["openid", "profile", "email", "groups"]);
    assert!(!p.insecure_http_issuer);
    assert_eq!(c.claims.uid, Some(ClaimPath("uid_number".into())));
    let claims = ClaimsConfig {
        uid: Some(ClaimPath("uid_number".into())),
        gid: Some(ClaimPath("group_gids".into())),
        domain: Some(ClaimPath("hd".into())),
        ssh_keys: Some(ClaimPath("ssh_public_keys".into())),
        ..Config::default().claims
    };
    let expected = Config {
        path: path(),
        providers: vec![ProviderConfig {
            claims: claims.clone(),
            ..p
        }],
        claims,
        ..Config::default()
    };
    assert_eq!(c, expected);
}

/// Each example block of the shipped file is a valid configuration meaning what it says.
#[test]
fn shipped_examples_parse() {
    let kc = parse(&shipped_example("keycloak")).unwrap();
    assert_eq!(kc.claims.groups.len(), 3);
    assert_eq!(kc.access.admin_groups, ["linux-admins"]);
    assert_eq!(kc.providers[0].client_auth, None);

    assert_eq!(kc.mapping.group_path, GroupPath::Dash);

    let gl = parse(&shipped_example("gitlab")).unwrap();
    assert_eq!(gl.claims.source, ClaimSource::Both);
    assert_eq!(gl.claims.username, ClaimPath("nickname".into()));
    assert_eq!(gl.mapping.group_path, GroupPath::Last);

    let entra = parse(&shipped_example("entra")).unwrap();
    assert_eq!(entra.claims.source, ClaimSource::IdToken);
    assert_eq!(entra.mapping.strip_suffixes, ["@example.com"]);
    assert_eq!(entra.providers[0].scopes, ["openid", "profile", "email"]);
    assert_eq!(entra.mapping.group_names.len(), 1);

    let google = parse_with_secret(&shipped_example("google"));
    assert_eq!(google.claims.domain, Some(ClaimPath("hd".into())));

    let ak = parse(&shipped_example("authentik")).unwrap();
    assert!(ak.providers[0].issuer.ends_with("/linux/"));
}

// ---- A complete file ----

/// A file setting every key to a non-default value gives exactly those values.
#[test]
fn every_key_round_trips() {
    let dir = TempDir::new();
    let ca = dir.file("ca.pem", "-----BEGIN CERTIFICATE-----\n", 0o644);
    let text = format!(
        r#"
[daemon]
log_level = "debug"

[provider]
issuer = "http://127.0.0.1:9400"
client_id = "host-1"
client_secret = "s3cret"
client_auth = "post"
scopes = ["openid", "email"]
ca_file = "{ca}"
insecure_http_issuer = true
offline_access = false

[claims]
source = "userinfo"
username_claim = "email"
groups_claim = ["realm_access.roles", "groups"]
uid_claim = "uidNumber"
gid_claim = "groupGids"
gecos_claim = "given_name"
email_claim = "mail"
domain_claim = "hd"
ssh_keys_claim = "attributes.ssh_public_keys"

[access]
allowed_groups = ["staff"]
allowed_email_domains = ["@Example.COM"]
require_email_verified = true
admin_groups = ["ops"]
admin_local_groups = ["wheel", "adm"]
link_by_email = true
max_login_age_days = 30
ignore_group_case = true

[mapping]
lowercase_names = false
strip_suffixes = ["@example.com"]
group_prefix = "oidc-"
group_strip_prefixes = ["/"]
groups_include = ["team-*"]
groups_exclude = ["team-old-*"]
group_path = "last"
group_names = {{ "1234-abcd" = "ops" }}
user_suffix = "-x"
uid_source = "claim"
gid_source = "claim"
uid_min = 100000
uid_max = 199999
gid_min = 200000
gid_max = 299999
home = "/srv/home/{{uid}}/{{username}}"
shell = "/bin/zsh"
allow_names = ["admin"]

[cache]
positive_ttl = 60
negative_ttl = 0
enumerate = true
socket_path = "/run/oidcd-test/socket"
db_path = "/var/lib/oidcd-test/cache.db"
nss_map = false
nss_map_ttl = 30

[login]
timeout = 600
default_poll_interval = 0.5
clock_skew = 5.5
allowed_algs = ["ES384"]
qr = false
ssh_first_login = false
ssh_first_uid = "provisional"
ssh_programs = ["/opt/ssh/sbin/sshd"]
provisional_ttl = 60
max_provisional_per_minute = 5
max_provisional_entries = 50
max_logins_in_progress = 8
max_logins_per_source = 2

[refresh]
enable = false
interval = 1.5
max_concurrent = 2
retry_min = 2
retry_max = 30
entry_ttl = 600
userinfo_recheck = false

[offline]
enable = true
max_days = 10
min_length = 8
max_failures = 3
lockout = 60
"#,
        ca = ca.display()
    );
    let c = parse(&text).unwrap();
    let claims = ClaimsConfig {
        source: ClaimSource::Userinfo,
        username: ClaimPath("email".into()),
        groups: vec![
            ClaimPath("realm_access.roles".into()),
            ClaimPath("groups".into()),
        ],
        uid: Some(ClaimPath("uidNumber".into())),
        gid: Some(ClaimPath("groupGids".into())),
        gecos: ClaimPath("given_name".into()),
        email: ClaimPath("mail".into()),
        domain: Some(ClaimPath("hd".into())),
        ssh_keys: Some(ClaimPath("attributes.ssh_public_keys".into())),
    };
    let access = AccessConfig {
        allowed_groups: vec!["staff".into()],
        allowed_email_domains: vec!["example.com".into()],
        require_email_verified: true,
        admin_groups: vec!["ops".into()],
        admin_local_groups: vec!["wheel".into(), "adm".into()],
        link_by_email: true,
        max_login_age_days: 30,
        ignore_group_case: true,
    };
    let mapping = MappingConfig {
        lowercase_names: false,
        strip_suffixes: vec!["@example.com".into()],
        group_prefix: "oidc-".into(),
        group_strip_prefixes: vec!["/".into()],
        groups_include: vec!["team-*".into()],
        groups_exclude: vec!["team-old-*".into()],
        group_path: GroupPath::Last,
        group_names: [("1234-abcd".to_string(), "ops".to_string())]
            .into_iter()
            .collect(),
        user_prefix: String::new(),
        user_suffix: "-x".into(),
        uid_source: UidSource::Claim,
        gid_source: GidSource::Claim,
        uids: IdRange {
            min: 100_000,
            max: 199_999,
        },
        gids: IdRange {
            min: 200_000,
            max: 299_999,
        },
        home: "/srv/home/{uid}/{username}".into(),
        shell: "/bin/zsh".into(),
        allow_names: vec!["admin".into()],
    };
    let expected = Config {
        path: path(),
        log_level: log::LevelFilter::Debug,
        providers: vec![ProviderConfig {
            id: "default".into(),
            issuer: "http://127.0.0.1:9400".into(),
            client_id: "host-1".into(),
            client_secret: Some(Secret("s3cret".into())),
            client_auth: Some(ClientAuth::Post),
            scopes: vec!["openid".into(), "email".into()],
            ca_file: Some(ca),
            insecure_http_issuer: true,
            offline_access: false,
            claims: claims.clone(),
            access: access.clone(),
            mapping: mapping.clone(),
        }],
        claims,
        access,
        mapping,
        cache: CacheConfig {
            positive_ttl: Duration::from_secs(60),
            negative_ttl: Duration::ZERO,
            enumerate: true,
            socket_path: "/run/oidcd-test/socket".into(),
            db_path: "/var/lib/oidcd-test/cache.db".into(),
            nss_map: false,
            nss_map_ttl: Duration::from_secs(30),
        },
        login: LoginConfig {
            timeout: Duration::from_secs(600),
            default_poll_interval: Duration::from_millis(500),
            clock_skew: Duration::from_millis(5500),
            allowed_algs: vec!["ES384".into()],
            qr: false,
            ssh_first_login: false,
            ssh_first_uid: SshFirstUid::Provisional,
            ssh_programs: vec!["/opt/ssh/sbin/sshd".into()],
            provisional_ttl: Duration::from_secs(60),
            max_provisional_per_minute: 5,
            max_provisional_entries: 50,
            max_logins_in_progress: 8,
            max_logins_per_source: 2,
        },
        notices: vec![
            "login.max_provisional_per_minute is no longer used (strangers could use a budget \
             of new entries up against a real user): remove it; login.max_provisional_entries \
             bounds the table instead"
                .into(),
        ],
        refresh: RefreshConfig {
            enable: false,
            interval: Duration::from_millis(1500),
            max_concurrent: 2,
            retry_min: Duration::from_secs(2),
            retry_max: Duration::from_secs(30),
            entry_ttl: Duration::from_secs(600),
            userinfo_recheck: false,
        },
        offline: OfflineConfig {
            enable: true,
            max_days: 10,
            min_length: 8,
            max_failures: 3,
            lockout: Duration::from_secs(60),
        },
    };
    assert_eq!(c, expected);
}

/// An empty file is the default configuration, with no provider.
#[test]
fn empty_file_is_default() {
    let c = parse("").unwrap();
    assert!(c.providers.is_empty());
    assert_eq!(
        c,
        Config {
            path: path(),
            ..Config::default()
        }
    );
}

/// A secret never shows in the config's Debug output.
#[test]
fn secret_is_redacted_in_debug() {
    let c = parse(&provider("client_secret = \"hunter2-secret\"")).unwrap();
    let shown = format!("{c:?}");
    assert!(!shown.contains("hunter2-secret"), "{shown}");
    assert_eq!(
        c.providers
            .into_iter()
            .next()
            .unwrap()
            .client_secret
            .unwrap()
            .expose(),
        "hunter2-secret"
    );
}

// ---- Schema errors ----

/// An unknown key is an error naming the file, line, column and the key.
#[test]
fn unknown_key_names_place_and_key() {
    let e = one_error(
        "[daemon]\nlog_level = \"info\"\nlog_levle = \"debug\"\n",
        "daemon.log_levle",
    );
    assert_eq!((e.line, e.column), (Some(3), Some(1)));
    assert!(e.message.contains("log_levle"), "{e}");
    let shown = e.to_string();
    assert!(
        shown.starts_with("/etc/oidcd/oidcd.toml:3:1: daemon.log_levle: "),
        "{shown}"
    );
}

/// An unknown section is refused too.
#[test]
fn unknown_section_is_refused() {
    let e = one_error("[daemon]\n\n[cahce]\nenumerate = true\n", "cahce");
    assert_eq!(e.line, Some(3));
}

/// A value of the wrong type is an error at the value, naming its key.
#[test]
fn wrong_type_names_key() {
    let e = one_error("[cache]\npositive_ttl = \"300\"\n", "cache.positive_ttl");
    assert_eq!(e.line, Some(2));
    let e = one_error(
        "[access]\nallowed_groups = \"staff\"\n",
        "access.allowed_groups",
    );
    assert_eq!(e.line, Some(2));
}

/// Integer seconds are accepted where fractional seconds are.
#[test]
fn integer_seconds_accepted_for_fractional_keys() {
    let c = parse("[login]\ntimeout = 120\nclock_skew = 0\n").unwrap();
    assert_eq!(c.login.timeout, Duration::from_secs(120));
    assert_eq!(c.login.clock_skew, Duration::ZERO);
}

/// Values outside their documented ranges are refused.
#[test]
fn out_of_range_values() {
    one_error("[cache]\npositive_ttl = -1\n", "cache.positive_ttl");
    one_error("[cache]\nnss_map_ttl = 2\n", "cache.nss_map_ttl");
    one_error("[cache]\nnss_map_ttl = 86401\n", "cache.nss_map_ttl");
    one_error("[cache]\nnegative_ttl = 3601\n", "cache.negative_ttl");
    one_error("[login]\ntimeout = 5\n", "login.timeout");
    one_error(
        "[login]\nmax_logins_in_progress = 0\n",
        "login.max_logins_in_progress",
    );
    one_error(
        "[login]\nmax_logins_per_source = 0\n",
        "login.max_logins_per_source",
    );
    one_error(
        "[login]\nmax_provisional_entries = 0\n",
        "login.max_provisional_entries",
    );
    one_error("[cache]\ndb_path = \"cache.db\"\n", "cache.db_path");
    one_error("[login]\nssh_programs = [\"sshd\"]\n", "login.ssh_programs");
}

// ---- [daemon] ----

/// An unknown log level is refused, naming the accepted ones.
#[test]
fn bad_log_level() {
    let e = one_error("[daemon]\nlog_level = \"verbose\"\n", "daemon.log_level");
    assert!(
        e.message.contains("verbose") && e.message.contains("debug"),
        "{e}"
    );
    assert_eq!((e.line, e.column), (Some(2), Some(13)));
}

// ---- [provider] ----

/// issuer and client_id are required once there is a [provider] section.
#[test]
fn provider_needs_issuer_and_client_id() {
    let errs = errors("[provider]\nclient_auth = \"none\"\n");
    let keys: Vec<_> = errs.iter().map(|e| e.key.as_deref().unwrap()).collect();
    assert_eq!(keys, ["provider.issuer", "provider.client_id"]);
    assert!(errs.iter().all(|e| e.line.is_some()));
}

/// An inline secret in a file others can read is refused, naming the mode.
#[test]
fn inline_secret_in_readable_file() {
    let text = provider("client_secret = \"s3cret\"");
    let errs = Config::from_toml(&path(), &text, 0o100644).unwrap_err().0;
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].key.as_deref(), Some("provider.client_secret"));
    assert!(errs[0].message.contains("0644"), "{}", errs[0]);
    assert!(Config::from_toml(&path(), &text, 0o100600).is_ok());
}

/// `Config::load` takes the mode from the file itself.
#[test]
fn load_checks_the_files_own_mode() {
    let dir = TempDir::new();
    let text = provider("client_secret = \"s3cret\"");
    let open = dir.file("open.toml", &text, 0o644);
    let e = Config::load(&open).unwrap_err();
    assert_eq!(e.0[0].key.as_deref(), Some("provider.client_secret"));
    assert_eq!(e.0[0].file, open);
    let closed = dir.file("closed.toml", &text, 0o600);
    assert_eq!(Config::load(&closed).unwrap().path, closed);
    let missing = Config::load(&dir.0.join("missing.toml")).unwrap_err();
    assert!(missing.0[0].message.contains("cannot read"), "{missing}");
}

/// Setting both client_secret and client_secret_file is refused.
#[test]
fn secret_and_secret_file_both_set() {
    let dir = TempDir::new();
    let f = dir.file("secret", "s3cret\n", 0o600);
    let text = provider(&format!(
        "client_secret = \"x\"\nclient_secret_file = \"{}\"",
        f.display()
    ));
    let e = one_error(&text, "provider.client_secret_file");
    assert!(e.message.contains("not both"), "{e}");
}

/// A secret file is read and trimmed; client_auth is left to discovery.
#[test]
fn secret_file_is_read() {
    let dir = TempDir::new();
    let f = dir.file("secret", "  s3cret \n", 0o600);
    let c = parse(&provider(&format!(
        "client_secret_file = \"{}\"",
        f.display()
    )))
    .unwrap();
    let p = c.providers.into_iter().next().unwrap();
    assert_eq!(p.client_secret.unwrap().expose(), "s3cret");
    assert_eq!(p.client_auth, None);
}

/// A missing, empty or world-readable secret file is refused.
#[test]
fn secret_file_missing_empty_or_readable() {
    let dir = TempDir::new();
    let missing = dir.0.join("nope");
    let e = one_error(
        &provider(&format!("client_secret_file = \"{}\"", missing.display())),
        "provider.client_secret_file",
    );
    assert!(e.message.contains("cannot read"), "{e}");

    let empty = dir.file("empty", "\n", 0o600);
    let e = one_error(
        &provider(&format!("client_secret_file = \"{}\"", empty.display())),
        "provider.client_secret_file",
    );
    assert!(e.message.contains("empty"), "{e}");

    let open = dir.file("open", "s3cret\n", 0o644);
    let e = one_error(
        &provider(&format!("client_secret_file = \"{}\"", open.display())),
        "provider.client_secret_file",
    );
    assert!(e.message.contains("0644"), "{e}");

    // A FIFO would block the daemon's read until someone writes to it.
    let fifo = dir.0.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let e = one_error(
        &provider(&format!("client_secret_file = \"{}\"", fifo.display())),
        "provider.client_secret_file",
    );
    assert!(e.message.contains("not a regular file"), "{e}");
}

/// A configuration path that is not a regular file is refused at once, not read forever.
#[test]
fn config_that_is_not_a_regular_file_is_refused() {
    let e = Config::load(Path::new("/dev/zero")).unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");
}

/// client_auth basic or post without any secret is refused.
#[test]
fn client_auth_needs_a_secret() {
    one_error(&provider("client_auth = \"basic\""), "provider.client_auth");
    one_error(&provider("client_auth = \"post\""), "provider.client_auth");
    one_error(&provider("client_auth = \"jwt\""), "provider.client_auth");
    let c = parse(&provider("client_auth = \"none\"")).unwrap();
    assert_eq!(
        c.providers.into_iter().next().unwrap().client_auth,
        Some(ClientAuth::None)
    );
}

/// Without client_auth, the method follows the provider's list: none without a secret; with
/// one, Basic when listed or when nothing is listed (RFC 8414's default), else post.
#[test]
fn client_auth_is_chosen_from_the_providers_list() {
    let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(ClientAuth::choose(false, None), ClientAuth::None);
    assert_eq!(
        ClientAuth::choose(false, Some(&list(&["client_secret_basic"]))),
        ClientAuth::None
    );
    assert_eq!(ClientAuth::choose(true, None), ClientAuth::Basic);
    let both = list(&["client_secret_post", "client_secret_basic"]);
    assert_eq!(ClientAuth::choose(true, Some(&both)), ClientAuth::Basic);
    let post = list(&["client_secret_post", "none"]);
    assert_eq!(ClientAuth::choose(true, Some(&post)), ClientAuth::Post);
    // Nothing we can do is listed (private_key_jwt only): Basic, and the provider will say.
    let jwt = list(&["private_key_jwt"]);
    assert_eq!(ClientAuth::choose(true, Some(&jwt)), ClientAuth::Basic);
}

/// Scopes must include openid and be single tokens.
#[test]
fn scopes_need_openid() {
    let e = one_error(
        &provider("scopes = [\"profile\", \"email\"]"),
        "provider.scopes",
    );
    assert!(e.message.contains("openid"), "{e}");
    one_error(
        &provider("scopes = [\"openid\", \"a b\"]"),
        "provider.scopes",
    );
}

/// A plain-http issuer needs insecure_http_issuer.
#[test]
fn http_issuer_needs_the_insecure_flag() {
    let text = "[provider]\nissuer = \"http://127.0.0.1:9400\"\nclient_id = \"c\"\n";
    let e = one_error(text, "provider.issuer");
    assert!(e.message.contains("https"), "{e}");
    assert_eq!(e.line, Some(2));
    for host in [
        "127.0.0.1:9400",
        "[::1]:9400",
        "localhost",
        "localhost:80/x",
    ] {
        let ok = format!(
            "[provider]\nissuer = \"http://{host}\"\nclient_id = \"c\"\ninsecure_http_issuer = true\n"
        );
        let c = parse(&ok).unwrap_or_else(|e| panic!("{host}: {e}"));
        assert!(c.providers.into_iter().next().unwrap().insecure_http_issuer);
    }
}

/// insecure_http_issuer never allows a non-loopback host, however it is disguised.
#[test]
fn insecure_http_only_on_loopback() {
    for host in [
        "idp.example.com",
        "10.0.0.1:8080",
        "127.0.0.1.nip.io",
        "localhost@evil.example",
        "localhost:80@evil.example",
    ] {
        let text = format!(
            "[provider]\nissuer = \"http://{host}\"\nclient_id = \"c\"\ninsecure_http_issuer = true\n"
        );
        let e = one_error(&text, "provider.issuer");
        assert!(
            e.message.contains("loopback") || e.message.contains("127.0.0.1"),
            "{host}: {e}"
        );
    }
}

/// Issuers that are not https URLs, or carry a query, are refused at their line.
#[test]
fn malformed_issuers() {
    for issuer in ["sso.example.com", "https://", "https:///path", "ftp://x"] {
        let text = format!("[provider]\nissuer = \"{issuer}\"\nclient_id = \"c\"\n");
        let e = one_error(&text, "provider.issuer");
        assert_eq!(e.line, Some(2), "{issuer}");
    }
    let e = one_error(
        "[provider]\nissuer = \"https://idp.example.com/?x=1\"\nclient_id = \"c\"\n",
        "provider.issuer",
    );
    assert_eq!(e.line, Some(2), "{e}");
}

/// A relative or missing ca_file is refused.
#[test]
fn ca_file_must_exist() {
    one_error(&provider("ca_file = \"ca.pem\""), "provider.ca_file");
    one_error(
        &provider("ca_file = \"/nonexistent/oidcd/ca.pem\""),
        "provider.ca_file",
    );
}

// ---- [claims] ----

/// Bad claim sources and paths are refused; URL-named claims are accepted.
#[test]
fn claim_settings() {
    one_error("[claims]\nsource = \"access_token\"\n", "claims.source");
    one_error(
        "[claims]\ngroups_claim = \"realm_access..roles\"\n",
        "claims.groups_claim",
    );
    one_error("[claims]\nusername_claim = \"\"\n", "claims.username_claim");
    let c = parse("[claims]\ngroups_claim = \"https://example.com/claims/groups\"\n").unwrap();
    assert_eq!(c.claims.groups[0].0, "https://example.com/claims/groups");
}

// ---- [access] ----

/// admin_groups without any local group to grant is refused.
#[test]
fn admin_groups_need_local_groups() {
    let e = one_error(
        "[access]\nadmin_groups = [\"ops\"]\nadmin_local_groups = []\n",
        "access.admin_local_groups",
    );
    assert_eq!(e.line, Some(2));
    // The default ["sudo"] suffices.
    let c = parse("[access]\nadmin_groups = [\"ops\"]\n").unwrap();
    assert_eq!(c.access.admin_local_groups, ["sudo"]);
}

/// Invalid email domains and local group names are refused.
#[test]
fn access_lists_are_checked() {
    one_error(
        "[access]\nallowed_email_domains = [\"a@b\"]\n",
        "access.allowed_email_domains",
    );
    one_error(
        "[access]\nallowed_email_domains = [\"@\"]\n",
        "access.allowed_email_domains",
    );
    one_error(
        "[access]\nadmin_local_groups = [\"Sudo Users\"]\n",
        "access.admin_local_groups",
    );
}

// ---- [mapping] ----

/// A uid_min in the system range (below 1000) is refused.
#[test]
fn uid_min_in_system_range() {
    let e = one_error("[mapping]\nuid_min = 500\n", "mapping.uid_min");
    assert!(e.message.contains("system range"), "{e}");
    one_error(
        "[mapping]\ngid_min = 0\ngid_max = 100000\n",
        "mapping.gid_min",
    );
}

/// uid_min above uid_max (an empty range) is refused.
#[test]
fn empty_uid_range() {
    let e = one_error(
        "[mapping]\nuid_min = 200000\nuid_max = 100000\n",
        "mapping.uid_max",
    );
    assert!(e.message.contains("empty range"), "{e}");
    assert_eq!(e.line, Some(3));
}

/// A range of fewer than 1000 IDs is refused; exactly 1000 is enough.
#[test]
fn small_ranges() {
    let e = one_error(
        "[mapping]\nuid_min = 100000\nuid_max = 100998\n",
        "mapping.uid_max",
    );
    assert!(e.message.contains("fewer than 1000"), "{e}");
    let c = parse("[mapping]\nuid_min = 100000\nuid_max = 100999\n").unwrap();
    assert_eq!(c.mapping.uids.len(), 1000);
}

/// Reserved IDs do not count towards the 1000 (fuzz/config property): a range inside systemd's
/// DynamicUser range, where no ID could ever be allocated, is refused; one overlapping it with
/// 1000 other IDs is accepted.
#[test]
fn ranges_count_only_usable_ids() {
    let e = one_error(
        "[mapping]\nuid_min = 61184\nuid_max = 65519\n",
        "mapping.uid_max",
    );
    assert!(e.message.contains("fewer than 1000"), "{e}");
    one_error(
        "[mapping]\ngid_min = 60500\ngid_max = 65600\n",
        "mapping.gid_max",
    );
    let c = parse("[mapping]\nuid_min = 60000\nuid_max = 65999\n").unwrap();
    assert_eq!(c.mapping.uids.usable_len(), 6000 - 4336 - 2);
    for id in [
        999, 1000, 61183, 61184, 65519, 65520, 65533, 65534, 65535, 65536,
    ] {
        let one = IdRange { min: id, max: id };
        assert_eq!(one.usable_len(), u64::from(!is_reserved_id(id)), "{id}");
    }
}

/// IDs that do not fit a uid_t, or are its -1/-2 sentinels, are refused.
#[test]
fn ids_beyond_uid_t() {
    one_error("[mapping]\ngid_max = 4294967295\n", "mapping.gid_max");
    one_error("[mapping]\nuid_min = -5\n", "mapping.uid_min");
}

/// uid_source = "claim" needs claims.uid_claim; with it the config is valid.
#[test]
fn uid_source_claim_needs_uid_claim() {
    let e = one_error("[mapping]\nuid_source = \"claim\"\n", "mapping.uid_source");
    assert!(e.message.contains("uid_claim"), "{e}");
    let c =
        parse("[claims]\nuid_claim = \"uidNumber\"\n[mapping]\nuid_source = \"claim\"\n").unwrap();
    assert_eq!(c.mapping.uid_source, UidSource::Claim);
    one_error("[mapping]\nuid_source = \"random\"\n", "mapping.uid_source");
}

/// A home template with an unknown placeholder, relative or with ':' is refused.
#[test]
fn home_template() {
    let e = one_error("[mapping]\nhome = \"/home/{user}\"\n", "mapping.home");
    assert!(e.message.contains("placeholder"), "{e}");
    one_error("[mapping]\nhome = \"home/{username}\"\n", "mapping.home");
    one_error("[mapping]\nhome = \"/home/a:b\"\n", "mapping.home");
    one_error("[mapping]\nshell = \"bash\"\n", "mapping.shell");
}

/// allow_names may never contain root, nor invalid names.
#[test]
fn allow_names_never_root() {
    let e = one_error(
        "[mapping]\nallow_names = [\"admin\", \"root\"]\n",
        "mapping.allow_names",
    );
    assert!(e.message.contains("root"), "{e}");
    one_error(
        "[mapping]\nallow_names = [\"a:b\"]\n",
        "mapping.allow_names",
    );
}

/// A group prefix that cannot start a valid group name is refused.
#[test]
fn bad_group_prefix() {
    one_error(
        "[mapping]\ngroup_prefix = \"1x-\"\n",
        "mapping.group_prefix",
    );
    one_error(
        "[mapping]\nstrip_suffixes = [\"\"]\n",
        "mapping.strip_suffixes",
    );
}

// ---- [login] ----

/// Symmetric algorithms and "none" are never allowed, nor an empty list.
#[test]
fn allowed_algs_refuse_hmac_and_none() {
    for alg in ["HS256", "none", "rs256"] {
        let e = one_error(
            &format!("[login]\nallowed_algs = [\"RS256\", \"{alg}\"]\n"),
            "login.allowed_algs",
        );
        assert!(e.message.contains(alg), "{e}");
    }
    one_error("[login]\nallowed_algs = []\n", "login.allowed_algs");
}

// ---- Several errors ----

/// All problems of a file are reported together, in file order.
#[test]
fn errors_reported_together_in_file_order() {
    let text = "\
[login]
allowed_algs = [\"none\"]

[daemon]
log_level = \"loud\"

[mapping]
uid_min = 10
home = \"/home/{name}\"
";
    let errs = errors(text);
    let got: Vec<_> = errs
        .iter()
        .map(|e| (e.line.unwrap(), e.key.clone().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            (2, "login.allowed_algs".to_string()),
            (5, "daemon.log_level".to_string()),
            (8, "mapping.uid_min".to_string()),
            (9, "mapping.home".to_string()),
        ]
    );
    let shown = ConfigErrors(errs).to_string();
    assert_eq!(shown.lines().count(), 4, "{shown}");
}

// ---- Claim paths ----

/// A dotted path walks into nested objects.
#[test]
fn claim_path_nested() {
    let claims = json!({"realm_access": {"roles": ["admins", "users"]}});
    assert_eq!(
        ClaimPath("realm_access.roles".into()).find(&claims),
        Some(&json!(["admins", "users"]))
    );
    assert_eq!(
        ClaimPath("realm_access".into()).find(&claims),
        Some(&json!({"roles": ["admins", "users"]}))
    );
}

/// A claim named by a URL, dots and all, is found whole.
#[test]
fn claim_path_url_key() {
    let claims = json!({"https://example.com/claims/groups": ["a"], "groups": ["b"]});
    assert_eq!(
        ClaimPath("https://example.com/claims/groups".into()).find(&claims),
        Some(&json!(["a"]))
    );
}

/// A path may continue below a URL-named key; a whole key wins over a nested path.
#[test]
fn claim_path_below_url_key() {
    let claims = json!({"https://example.com/claims": {"groups": ["a"]}});
    assert_eq!(
        ClaimPath("https://example.com/claims.groups".into()).find(&claims),
        Some(&json!(["a"]))
    );
    let both = json!({"a.b": 1, "a": {"b": 2, "c": 3}});
    assert_eq!(ClaimPath("a.b".into()).find(&both), Some(&json!(1)));
    assert_eq!(ClaimPath("a.c".into()).find(&both), Some(&json!(3)));
}

/// Missing keys, and paths through non-objects, find nothing.
#[test]
fn claim_path_missing() {
    let claims = json!({"email": "a@b", "realm_access": {"roles": []}, "list": [{"x": 1}]});
    for p in [
        "nope",
        "realm_access.groups",
        "email.domain",
        "list.x",
        "realm_access.roles.x",
    ] {
        assert_eq!(ClaimPath(p.into()).find(&claims), None, "{p}");
    }
    assert_eq!(ClaimPath("x".into()).find(&json!("not an object")), None);
}

/// A TOML syntax error is reported with its place.
#[test]
fn syntax_error_has_a_place() {
    let errs = errors("[daemon]\nlog_level = \"info\n");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].line, Some(2), "{}", errs[0]);
    let errs = errors("[cache]\nenumerate = true\nenumerate = false\n");
    assert_eq!(errs[0].line, Some(3), "{}", errs[0]);
}

/// A wrong element in a list written over several lines names the list's key.
#[test]
fn wrong_type_in_multiline_list_names_key() {
    let text = "[login]\nssh_programs = [\n    \"/usr/sbin/sshd\",\n    42,\n]\n";
    let e = one_error(text, "login.ssh_programs");
    assert_eq!(e.line, Some(4), "{e}");
}

// ---- provider quirks ----

/// `groups_claim` takes one claim or a list; `group_path` and `group_names` are checked.
#[test]
fn group_rules() {
    let c = parse("[claims]\ngroups_claim = [\"groups\", \"realm_access.roles\"]\n").unwrap();
    assert_eq!(
        c.claims.groups,
        [
            ClaimPath("groups".into()),
            ClaimPath("realm_access.roles".into())
        ]
    );
    one_error("[claims]\ngroups_claim = []\n", "claims.groups_claim");
    one_error("[mapping]\ngroup_path = \"slash\"\n", "mapping.group_path");
    let e = one_error(
        "[mapping]\ngroup_names = { \"a\" = \"ops\", \"b\" = \"ops\" }\n",
        "mapping.group_names",
    );
    assert!(e.message.contains("both map to"), "{e}");
    one_error(
        "[mapping]\ngroup_names = { \"a\" = \"Not A Name\" }\n",
        "mapping.group_names",
    );
    one_error("[mapping]\nuser_suffix = \"@x\"\n", "mapping.user_suffix");
    one_error("[mapping]\nuser_prefix = \"1\"\n", "mapping.user_prefix");
}

/// `allowed_email_domains = ["*"]` is refused with the way to allow any domain (leave it
/// empty), not read as a domain named "*".
#[test]
fn star_is_not_an_email_domain() {
    for list in ["[\"*\"]", "[\"*.example.com\"]"] {
        let e = one_error(
            &format!("[access]\nallowed_email_domains = {list}\n"),
            "access.allowed_email_domains",
        );
        assert!(e.message.contains("leave it empty"), "{e}");
    }
}
