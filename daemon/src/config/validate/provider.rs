//! `[provider]` and `[[provider]]`: each provider's client and its own claims, access and
//! mapping over the host's, then what providers must not share.

use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::super::raw::{RawConfig, RawProvider, RawProviders, S};
use super::super::*;
use super::{Validator, span};

/// Largest `client_secret_file` read.
const MAX_SECRET_FILE_LEN: u64 = 64 * 1024;

impl Validator<'_, '_> {
    /// `[provider]` or every `[[provider]]`, then what they must not share.
    pub(super) fn providers(&mut self, raw: &RawConfig, c: &mut Config) {
        let Some(p) = &raw.provider else { return };
        let list: Vec<(&RawProvider, Range<usize>)> = match p.get_ref() {
            RawProviders::One(one) => vec![(one.as_ref(), p.span())],
            RawProviders::Many(v) => v.iter().map(|s| (s.get_ref(), s.span())).collect(),
        };
        let several = list.len() > 1;
        for (raw_p, section) in list {
            if let Some(pc) = self.provider(raw_p, section, c, several) {
                c.providers.push(pc);
            }
        }
        self.providers_apart(&c.providers, p.span());
    }

    /// One provider: its client, and its own claims, access and mapping over the host's.
    fn provider(
        &mut self,
        p: &RawProvider,
        section: Range<usize>,
        c: &Config,
        several: bool,
    ) -> Option<ProviderConfig> {
        let id = match &p.id {
            Some(id) => {
                let ok = !id.get_ref().is_empty()
                    && id.get_ref().len() <= 32
                    && id.get_ref().bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                    });
                if !ok {
                    self.r.at(
                        Some(id.span()),
                        "provider.id",
                        "must be 1 to 32 of a-z, 0-9, - and _",
                    );
                }
                id.get_ref().clone()
            }
            None if several => {
                self.r.at(
                    Some(section.clone()),
                    "provider.id",
                    "is required when there are several [[provider]] sections (a short name such \
                     as \"staff\", shown in logs and by oidcctl)",
                );
                String::new()
            }
            None => DEFAULT_PROVIDER_ID.to_string(),
        };
        let issuer = self.required(&p.issuer, section.clone(), "provider.issuer");
        let client_id = self.required(&p.client_id, section.clone(), "provider.client_id");
        let insecure = p
            .insecure_http_issuer
            .as_ref()
            .is_some_and(|v| *v.get_ref());
        if let (Some(issuer), Some(span)) = (&issuer, span(&p.issuer)) {
            self.check_issuer(issuer, span, insecure);
        }
        if let Some(id) = &client_id {
            if id.trim().is_empty() {
                self.r.at(
                    span(&p.client_id),
                    "provider.client_id",
                    "must not be empty",
                );
            }
        }
        let secret = match (&p.client_secret, &p.client_secret_file) {
            (Some(_), Some(f)) => {
                self.r.at(
                    Some(f.span()),
                    "provider.client_secret_file",
                    "set either client_secret or client_secret_file, not both",
                );
                None
            }
            (Some(s), None) => {
                if self.mode & 0o077 != 0 {
                    self.r.at(
                        Some(s.span()),
                        "provider.client_secret",
                        format!(
                            "the file holds a secret but its mode is {:04o}: make it readable by \
                             root only (chmod 600) or use client_secret_file",
                            self.mode & 0o7777
                        ),
                    );
                }
                Some(Secret(s.get_ref().clone()))
            }
            (None, Some(f)) => self.secret_file(f),
            (None, None) => None,
        };
        let client_auth = match p
            .client_auth
            .as_ref()
            .map(|a| (a.get_ref().as_str(), a.span()))
        {
            None | Some(("auto", _)) => None,
            Some(("basic", _)) => Some(ClientAuth::Basic),
            Some(("post", _)) => Some(ClientAuth::Post),
            Some(("none", _)) => Some(ClientAuth::None),
            Some((other, span)) => {
                self.r.at(
                    Some(span),
                    "provider.client_auth",
                    format!("unknown method {other:?}: expected auto, basic, post or none (default auto)"),
                );
                None
            }
        };
        if client_auth.is_some_and(|a| a != ClientAuth::None) && secret.is_none() {
            self.r.at(
                span(&p.client_auth).or(Some(section.clone())),
                "provider.client_auth",
                "basic and post need client_secret or client_secret_file",
            );
        }
        let scopes = match &p.scopes {
            Some(s) => {
                let list = s.get_ref().clone();
                if !list.iter().any(|x| x == "openid") {
                    self.r
                        .at(Some(s.span()), "provider.scopes", "must include \"openid\"");
                }
                if let Some(bad) = list
                    .iter()
                    .find(|x| x.is_empty() || x.contains(char::is_whitespace))
                {
                    self.r.at(
                        Some(s.span()),
                        "provider.scopes",
                        format!("invalid scope {bad:?}"),
                    );
                }
                list
            }
            None => ["openid", "profile", "email", "groups"]
                .map(String::from)
                .to_vec(),
        };
        let ca_file = p.ca_file.as_ref().and_then(|f| {
            let path = PathBuf::from(f.get_ref());
            if !path.is_absolute() {
                self.r.at(
                    Some(f.span()),
                    "provider.ca_file",
                    "must be an absolute path",
                );
                return None;
            }
            if let Err(e) = std::fs::metadata(&path) {
                self.r.at(
                    Some(f.span()),
                    "provider.ca_file",
                    format!("cannot read {}: {e}", path.display()),
                );
            }
            Some(path)
        });
        let (mut claims, mut access, mut mapping) =
            (c.claims.clone(), c.access.clone(), c.mapping.clone());
        self.r.key_prefix = "provider.";
        if let Some(cl) = &p.claims {
            self.claims(cl, &mut claims);
        }
        if let Some(a) = &p.access {
            self.host_wide(&a.admin_local_groups, "access.admin_local_groups");
            self.host_wide(&a.link_by_email, "access.link_by_email");
            self.access(a, &mut access);
        }
        if let Some(m) = &p.mapping {
            for (v, key) in [
                (&m.uid_min, "mapping.uid_min"),
                (&m.uid_max, "mapping.uid_max"),
                (&m.gid_min, "mapping.gid_min"),
                (&m.gid_max, "mapping.gid_max"),
            ] {
                self.host_wide(v, key);
            }
            self.host_wide(&m.allow_names, "mapping.allow_names");
            self.mapping(m, &mut mapping);
        }
        if p.mapping.is_some() || p.claims.is_some() {
            let at = p.mapping.as_ref().and_then(|m| span(&m.uid_source));
            self.uid_source_needs_claim(&mapping, &claims, at.or(Some(section.clone())));
            let at = p.mapping.as_ref().and_then(|m| span(&m.gid_source));
            self.gid_source_needs_claim(&mapping, &claims, at.or(Some(section.clone())));
        }
        self.r.key_prefix = "";
        Some(ProviderConfig {
            id,
            issuer: issuer?,
            client_id: client_id?,
            client_secret: secret,
            client_auth,
            scopes,
            ca_file,
            insecure_http_issuer: insecure,
            offline_access: p.offline_access.as_ref().is_none_or(|v| *v.get_ref()),
            claims,
            access,
            mapping,
        })
    }

    /// A key that applies to the whole host, set in a provider's own section.
    fn host_wide<T>(&mut self, v: &S<T>, key: &str) {
        if let Some(v) = v {
            let section = key.split('.').next().unwrap_or(key);
            self.r.at(
                Some(v.span()),
                key,
                format!("applies to the whole host: set it in [{section}], not per provider"),
            );
        }
    }

    /// Providers must not share an id or an issuer, and a user name must say which provider it
    /// belongs to: at most one provider has neither `mapping.user_prefix` nor `user_suffix`, and
    /// no two have the same pair.
    fn providers_apart(&mut self, providers: &[ProviderConfig], at: Range<usize>) {
        for (i, p) in providers.iter().enumerate() {
            for q in providers.iter().skip(i + 1) {
                if !p.id.is_empty() && p.id == q.id {
                    self.r.at(
                        Some(at.clone()),
                        "provider.id",
                        format!("{:?} names two providers", p.id),
                    );
                }
                if p.issuer == q.issuer {
                    self.r.at(
                        Some(at.clone()),
                        "provider.issuer",
                        format!(
                            "{} is configured twice (providers {:?} and {:?}): users are keyed \
                             by issuer and subject, so one issuer is one provider",
                            p.issuer, p.id, q.id
                        ),
                    );
                }
                if p.affixes() == q.affixes() {
                    self.r.at(
                        Some(at.clone()),
                        "provider.mapping.user_suffix",
                        format!(
                            "providers {:?} and {:?} both serve names like {}: give one of them \
                             its own mapping.user_prefix or user_suffix in [provider.mapping], \
                             so that a user name says which provider it belongs to",
                            p.id,
                            q.id,
                            p.name_pattern()
                        ),
                    );
                }
            }
        }
    }

    fn check_issuer(&mut self, issuer: &str, span: Range<usize>, insecure: bool) {
        let key = "provider.issuer";
        if let Some(rest) = issuer.strip_prefix("https://") {
            if rest.is_empty() || rest.starts_with('/') {
                self.r.at(Some(span.clone()), key, "has no host");
            }
        } else if let Some(rest) = issuer.strip_prefix("http://") {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            let host = host.rsplit_once(':').map_or(host, |(h, port)| {
                if port.chars().all(|c| c.is_ascii_digit()) {
                    h
                } else {
                    host
                }
            });
            let loopback = matches!(host, "127.0.0.1" | "[::1]" | "localhost");
            if !insecure {
                self.r.at(
                    Some(span.clone()),
                    key,
                    "must use https:// (plain http is only for a test provider on a loopback \
                     address with insecure_http_issuer = true)",
                );
            } else if !loopback {
                self.r.at(
                    Some(span.clone()),
                    key,
                    "insecure_http_issuer only allows http:// on 127.0.0.1, [::1] or localhost",
                );
            }
        } else {
            self.r
                .at(Some(span.clone()), key, "must be an https:// URL");
        }
        if issuer.contains(['?', '#']) {
            self.r
                .at(Some(span), key, "must not contain a query or fragment");
        }
    }

    fn secret_file(&mut self, f: &Spanned<String>) -> Option<Secret> {
        let key = "provider.client_secret_file";
        let path = Path::new(f.get_ref());
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) => {
                self.r.at(
                    Some(f.span()),
                    key,
                    format!("cannot read {}: {e}", path.display()),
                );
                return None;
            }
        };
        let me = nix::unistd::geteuid().as_raw();
        if meta.uid() != me {
            self.r.at(
                Some(f.span()),
                key,
                format!(
                    "{} is owned by uid {}, not {me}: chown it",
                    path.display(),
                    meta.uid()
                ),
            );
        }
        if meta.mode() & 0o077 != 0 {
            self.r.at(
                Some(f.span()),
                key,
                format!(
                    "{} is readable by others (mode {:04o}): chmod 600 it",
                    path.display(),
                    meta.mode() & 0o7777
                ),
            );
        }
        match crate::small_file::read_to_string(path, MAX_SECRET_FILE_LEN) {
            Ok(s) if !s.trim().is_empty() => Some(Secret(s.trim().to_string())),
            Ok(_) => {
                self.r
                    .at(Some(f.span()), key, format!("{} is empty", path.display()));
                None
            }
            Err(e) => {
                self.r.at(
                    Some(f.span()),
                    key,
                    format!("cannot read {}: {e}", path.display()),
                );
                None
            }
        }
    }

    fn required(&mut self, v: &S<String>, section: Range<usize>, key: &str) -> Option<String> {
        match v {
            Some(v) => Some(v.get_ref().clone()),
            None => {
                self.r.at(Some(section), key, "is required in [provider]");
                None
            }
        }
    }
}
