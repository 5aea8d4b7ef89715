//! Several providers side by side: finding one by id or issuer, each one's view of the
//! configuration, and which provider a new user name belongs to.
//!
//! A user name says which provider it belongs to: every provider but one has a
//! `mapping.user_prefix` or `mapping.user_suffix` (checked when the file is read), and a name
//! that carries one belongs to that provider; every other name belongs to the provider without
//! one. Over SSH the name is the only thing a person types before the prompt, every client
//! passes it on (ssh, scp, rsync, git, an IDE), and sudo, su and `ls -l` show it: a suffix such
//! as `alice-ext` tells everyone where the identity lives. A question in the prompt would break
//! clients that cannot answer it, and `alice@contractors` is no Unix name (`@` also splits
//! `user@host`). A name already stored keeps the provider that created it (see
//! `auth::route`).

use std::fmt;

use super::{Config, ProviderConfig};

/// The id of a single `[provider]` that names none.
pub const DEFAULT_PROVIDER_ID: &str = "default";

/// Why no provider can be chosen for a new name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// No provider is configured.
    NoProvider,
    /// Every provider has a prefix or suffix, and the name carries none of them.
    NoMatch {
        /// The affixes the providers expect, for the message.
        expected: Vec<String>,
    },
    /// The name carries the affixes of several providers equally well.
    Ambiguous {
        /// Their ids.
        ids: Vec<String>,
    },
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoProvider => f.write_str("no identity provider is configured on this host"),
            Self::NoMatch { expected } => write!(
                f,
                "no identity provider serves names of this form (expected {})",
                expected.join(" or ")
            ),
            Self::Ambiguous { ids } => write!(
                f,
                "the name fits several identity providers ({}): it cannot be used",
                ids.join(", ")
            ),
        }
    }
}

impl ProviderConfig {
    /// The prefix and suffix this provider's user names carry (both empty for the provider
    /// of unmarked names).
    pub fn affixes(&self) -> (&str, &str) {
        (&self.mapping.user_prefix, &self.mapping.user_suffix)
    }

    /// Whether `name` carries this provider's prefix and suffix around a non-empty rest.
    pub fn marks(&self, name: &str) -> bool {
        let (pre, suf) = self.affixes();
        name.len() > pre.len() + suf.len() && name.starts_with(pre) && name.ends_with(suf)
    }

    /// How its names look, for messages (`*-ext`, `c-*`, `*`).
    pub fn name_pattern(&self) -> String {
        let (pre, suf) = self.affixes();
        format!("{pre}*{suf}")
    }
}

#[cfg(test)]
impl ProviderConfig {
    /// A public client `oidcd` at `issuer`, with the default rules (unit tests).
    pub(crate) fn for_tests(issuer: &str) -> Self {
        let d = Config::default();
        Self {
            id: DEFAULT_PROVIDER_ID.into(),
            issuer: issuer.into(),
            client_id: "oidcd".into(),
            client_secret: None,
            client_auth: Some(super::ClientAuth::None),
            scopes: vec!["openid".into()],
            ca_file: None,
            insecure_http_issuer: false,
            offline_access: true,
            claims: d.claims,
            access: d.access,
            mapping: d.mapping,
        }
    }
}

impl Config {
    /// The first provider: the only one of a single `[provider]`.
    pub fn default_provider(&self) -> Option<&ProviderConfig> {
        self.providers.first()
    }

    /// The provider with this `id`.
    pub fn provider_by_id(&self, id: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.id == id)
    }

    /// The provider with this issuer.
    pub fn provider_by_issuer(&self, issuer: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.issuer == issuer)
    }

    /// The provider named by `key`: an id, else an issuer.
    pub fn provider_by_key(&self, key: &str) -> Option<&ProviderConfig> {
        self.provider_by_id(key)
            .or_else(|| self.provider_by_issuer(key))
    }

    /// This configuration as `p`'s logins see it: `claims`, `access` and `mapping` are `p`'s.
    pub fn scoped(&self, p: &ProviderConfig) -> Config {
        Config {
            claims: p.claims.clone(),
            access: p.access.clone(),
            mapping: p.mapping.clone(),
            ..self.clone()
        }
    }

    /// The provider a name not stored yet belongs to: the one whose prefix and suffix it
    /// carries (the longest, when several fit), else the one without any.
    pub fn route_new_name(&self, name: &str) -> Result<&ProviderConfig, RouteError> {
        if self.providers.is_empty() {
            return Err(RouteError::NoProvider);
        }
        let marked: Vec<&ProviderConfig> = self
            .providers
            .iter()
            .filter(|p| {
                let (pre, suf) = p.affixes();
                !(pre.is_empty() && suf.is_empty()) && p.marks(name)
            })
            .collect();
        let weight = |p: &ProviderConfig| p.affixes().0.len() + p.affixes().1.len();
        if let Some(best) = marked.iter().map(|p| weight(p)).max() {
            let top: Vec<&ProviderConfig> =
                marked.into_iter().filter(|p| weight(p) == best).collect();
            return match top.as_slice() {
                [one] => Ok(one),
                many => Err(RouteError::Ambiguous {
                    ids: many.iter().map(|p| p.id.clone()).collect(),
                }),
            };
        }
        self.providers
            .iter()
            .find(|p| p.affixes() == ("", ""))
            .ok_or_else(|| RouteError::NoMatch {
                expected: self.providers.iter().map(|p| p.name_pattern()).collect(),
            })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn parse(text: &str) -> Result<Config, crate::config::ConfigErrors> {
        Config::from_toml(Path::new("/etc/oidcd/oidcd.toml"), text, 0o600)
    }

    const TWO: &str = r#"
[claims]
groups_claim = "groups"

[access]
admin_local_groups = ["wheel"]

[[provider]]
id = "staff"
issuer = "https://sso.example.com/realms/staff"
client_id = "linux"

[[provider]]
id = "contractors"
issuer = "https://gitlab.example.com"
client_id = "abc"

[provider.claims]
username_claim = "nickname"

[provider.mapping]
user_suffix = "-ext"
group_prefix = "ext-"

[provider.access]
allowed_groups = ["acme/contractors"]
"#;

    /// Two `[[provider]]` sections: each keeps its own claims, access and mapping over the
    /// host's, and names route by suffix.
    #[test]
    fn two_providers_side_by_side() {
        let c = parse(TWO).unwrap();
        assert_eq!(c.providers.len(), 2);
        let (staff, ext) = (&c.providers[0], &c.providers[1]);
        assert_eq!(staff.claims.username.0, "preferred_username");
        assert_eq!(ext.claims.username.0, "nickname");
        assert_eq!(ext.mapping.group_prefix, "ext-");
        assert!(staff.access.allowed_groups.is_empty());
        assert_eq!(ext.access.allowed_groups, ["acme/contractors"]);
        assert_eq!(
            ext.access.admin_local_groups,
            ["wheel"],
            "host-wide, inherited"
        );
        assert_eq!(c.route_new_name("alice").unwrap().id, "staff");
        assert_eq!(c.route_new_name("alice-ext").unwrap().id, "contractors");
        // The suffix alone is not a name of the provider: it goes to the unmarked one.
        assert_eq!(c.route_new_name("-ext").unwrap().id, "staff");
        assert_eq!(c.scoped(ext).claims.username.0, "nickname");
        assert_eq!(
            c.provider_by_key("https://gitlab.example.com").unwrap().id,
            "contractors"
        );
    }

    /// A single `[provider]` keeps working unchanged, with the id "default".
    #[test]
    fn single_provider_is_default() {
        let c =
            parse("[provider]\nissuer = \"https://idp.example.com\"\nclient_id = \"c\"\n").unwrap();
        assert_eq!(c.providers.len(), 1);
        assert_eq!(c.providers[0].id, DEFAULT_PROVIDER_ID);
        assert_eq!(c.route_new_name("bob").unwrap().id, "default");
    }

    /// Providers that share an id, an issuer or a name shape are refused, and so are
    /// host-wide keys set per provider and missing ids.
    #[test]
    fn providers_must_be_told_apart() {
        let keys = |text: &str| -> Vec<String> {
            parse(text)
                .unwrap_err()
                .0
                .into_iter()
                .filter_map(|e| e.key)
                .collect()
        };
        let same_shape = TWO.replace("user_suffix = \"-ext\"\n", "");
        assert_eq!(keys(&same_shape), ["provider.mapping.user_suffix"]);
        let same_issuer = TWO.replace(
            "https://gitlab.example.com",
            "https://sso.example.com/realms/staff",
        );
        assert_eq!(keys(&same_issuer), ["provider.issuer"]);
        let no_id = TWO.replace("id = \"contractors\"\n", "");
        assert_eq!(keys(&no_id), ["provider.id"]);
        let host_wide = TWO.replace(
            "allowed_groups = [\"acme/contractors\"]",
            "admin_local_groups = [\"sudo\"]",
        );
        assert_eq!(keys(&host_wide), ["provider.access.admin_local_groups"]);
        let uid = TWO.replace("group_prefix = \"ext-\"", "uid_min = 5000");
        assert_eq!(keys(&uid), ["provider.mapping.uid_min"]);
    }

    /// Routing: the longest affix wins; equal ones are ambiguous; with every provider marked, a
    /// plain name has none.
    #[test]
    fn routing_by_affix() {
        let mut c = parse(TWO).unwrap();
        let mut third = c.providers[1].clone();
        third.id = "partners".into();
        third.issuer = "https://partners.example.com".into();
        third.mapping.user_suffix = "-p-ext".into();
        c.providers.push(third);
        assert_eq!(c.route_new_name("bob-p-ext").unwrap().id, "partners");
        assert_eq!(c.route_new_name("bob-ext").unwrap().id, "contractors");
        c.providers[2].mapping.user_suffix = String::new();
        c.providers[2].mapping.user_prefix = "bobb".into();
        assert!(matches!(
            c.route_new_name("bobby-ext"),
            Err(RouteError::Ambiguous { .. })
        ));
        c.providers.remove(0);
        assert!(matches!(
            c.route_new_name("alice"),
            Err(RouteError::NoMatch { .. })
        ));
        c.providers.clear();
        assert_eq!(c.route_new_name("alice"), Err(RouteError::NoProvider));
    }
}
