//! Identity resolution: the canonical identity name (risk object) of an [`Event`], the aliases
//! under which it appears, and the identities file that links names across the clouds.
//!
//! Canonical names:
//! - Entra: the lower-cased UPN (`user.name`), else the object id; service principals and
//!   managed identities: their object id (display names are not unique).
//! - AWS IAM user: its ARN with the user part lower-cased (IAM user names are unique
//!   case-insensitively, and failed console logins carry what the user typed), built from the
//!   account and `userName` when the record has no ARN.
//! - Root: `root@<account>`.
//! - Assumed roles of IAM Identity Center (`AWSReservedSSO_*`) or SAML whose session name is a
//!   UPN: that UPN, lower-cased (the automatic cross-cloud link). Other assumed roles:
//!   `arn:aws:sts::<acct>:assumed-role/<role>/<session>`.
//! - `HIDDEN_DUE_TO_SECURITY_REASONS`, AWS services, no user: no identity.
//!
//! The identities file then maps any alias (ARN, IAM user name, UPN, object id) to its
//! `name`. Lookups are case-insensitive.

use std::collections::HashMap;

use crosswind_model::{Alias, CloudProvider, Event, User};
use serde::Deserialize;

/// Why an identities file is invalid.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum IdentityFileError {
    #[error("identities file: {0}")]
    Toml(String),
    #[error("identities file: identity #{0} has an empty name")]
    EmptyName(usize),
    #[error("identities file: alias `{alias}` is linked to both `{first}` and `{second}`")]
    Conflict {
        alias: String,
        first: String,
        second: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFile {
    #[serde(default)]
    identity: Vec<IdentityEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityEntry {
    name: String,
    #[serde(default)]
    aws: Vec<String>,
    #[serde(default)]
    azure: Vec<String>,
}

/// Extra alias links from the identities file: lower-cased alias → canonical name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IdentityLinks {
    map: HashMap<String, String>,
}

/// Key under which a bare IAM user name (no ARN) is linked, valid in any account.
fn iam_name_key(name: &str) -> String {
    format!("iam-user-name:{}", name.to_lowercase())
}

impl IdentityLinks {
    /// Parse the `[[identity]] name / aws / azure` format (config/crosswind.toml, `identities_file`).
    pub fn from_toml(text: &str) -> Result<IdentityLinks, IdentityFileError> {
        let file: IdentityFile =
            toml::from_str(text).map_err(|e| IdentityFileError::Toml(e.to_string()))?;
        let mut links = IdentityLinks::default();
        for (i, entry) in file.identity.iter().enumerate() {
            let name = entry.name.trim().to_lowercase();
            if name.is_empty() {
                return Err(IdentityFileError::EmptyName(i + 1));
            }
            links.insert(name.clone(), &name)?;
            for a in &entry.azure {
                links.insert(a.trim().to_lowercase(), &name)?;
            }
            for a in &entry.aws {
                let a = a.trim();
                let lower = a.to_lowercase();
                if lower.starts_with("arn:") {
                    if let Some(acct) = lower.strip_suffix(":root").and_then(arn_account) {
                        links.insert(format!("root@{acct}"), &name)?;
                    }
                    links.insert(lower, &name)?;
                } else if lower.starts_with("root@") {
                    links.insert(lower, &name)?;
                } else {
                    links.insert(iam_name_key(a), &name)?;
                }
            }
        }
        Ok(links)
    }

    fn insert(&mut self, alias: String, name: &str) -> Result<(), IdentityFileError> {
        if alias.is_empty() {
            return Ok(());
        }
        match self.map.get(&alias) {
            Some(first) if first != name => Err(IdentityFileError::Conflict {
                alias,
                first: first.clone(),
                second: name.to_owned(),
            }),
            Some(_) => Ok(()),
            None => {
                self.map.insert(alias, name.to_owned());
                Ok(())
            }
        }
    }

    /// Link one alias (any case) to a canonical name programmatically.
    pub fn link(&mut self, alias: &str, name: &str) -> Result<(), IdentityFileError> {
        self.insert(alias.trim().to_lowercase(), &name.trim().to_lowercase())
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn lookup(&self, key: &str) -> Option<&str> {
        if self.map.is_empty() {
            return None;
        }
        self.map.get(key).map(String::as_str)
    }
}

/// What kind of principal an event's identity is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    EntraUser,
    IamUser,
    Root,
    /// IAM Identity Center or SAML session (MFA happens at the IdP).
    FederatedSession,
    AssumedRole,
    Other,
}

/// The identity of one event.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    /// Canonical identity name (risk object).
    pub name: String,
    pub kind: PrincipalKind,
    /// Listed in `service_accounts` (by canonical name or any alias).
    pub is_service: bool,
}

/// Internal: the default canonical name, lower-cased lookup keys, and the aliases.
struct Raw {
    default: String,
    keys: Vec<String>,
    kind: PrincipalKind,
    aliases: Vec<(&'static str, String)>,
}

const HIDDEN: &str = "HIDDEN_DUE_TO_SECURITY_REASONS";

fn nonempty(s: Option<&String>) -> Option<&str> {
    s.map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// Account id of an ARN (`arn:aws:iam::<acct>:...`).
fn arn_account(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

/// Resource part of an ARN (after the fifth ':').
fn arn_resource(arn: &str) -> Option<&str> {
    arn.splitn(6, ':').nth(5)
}

/// `full`: also compute lookup keys and aliases (skipped on the hot path when there are no
/// links and no service accounts).
fn raw_identity(ev: &Event, full: bool) -> Option<Raw> {
    match ev.provider() {
        CloudProvider::Azure => raw_entra(ev, full),
        CloudProvider::Aws => raw_aws(ev, full),
    }
}

fn when<T>(full: bool, f: impl FnOnce() -> Vec<T>) -> Vec<T> {
    if full { f() } else { Vec::new() }
}

fn raw_entra(ev: &Event, full: bool) -> Option<Raw> {
    let user = ev.principal()?;
    let upn = nonempty(user.name.as_ref()).map(str::to_lowercase);
    let oid = nonempty(user.uid.as_ref());
    // A service principal or managed identity sign-in names the app by its display name, which
    // is not unique in a tenant and may look like anything (a UPN): two apps of one name would
    // merge, and one named like a user would join that user. The app is its object id.
    if matches!(
        user.kind.as_deref(),
        Some("servicePrincipal" | "managedIdentity")
    ) && let Some(o) = oid
    {
        let id = o.to_lowercase();
        return Some(Raw {
            keys: when(full, || {
                let mut k = vec![id.clone()];
                k.extend(upn.clone());
                k
            }),
            aliases: when(full, || {
                let mut a = vec![("service_principal_id", o.to_owned())];
                a.extend(upn.clone().map(|n| ("service_principal_name", n)));
                a
            }),
            default: id,
            kind: PrincipalKind::EntraUser,
        });
    }
    let mut keys = Vec::with_capacity(2);
    let mut aliases = Vec::with_capacity(2);
    if let Some(u) = upn.as_ref().filter(|_| full) {
        keys.push(u.clone());
        aliases.push(("upn", u.clone()));
    }
    if let Some(o) = oid.filter(|_| full) {
        keys.push(o.to_lowercase());
        aliases.push(("object_id", o.to_owned()));
    }
    let default = upn.or_else(|| oid.map(str::to_lowercase))?;
    Some(Raw {
        default,
        keys,
        kind: PrincipalKind::EntraUser,
        aliases,
    })
}

fn infer_aws_kind(user: &User) -> &str {
    if let Some(k) = nonempty(user.kind.as_ref()) {
        return k;
    }
    match nonempty(user.arn.as_ref()).and_then(arn_resource) {
        Some("root") => "Root",
        Some(r) if r.starts_with("user/") => "IAMUser",
        Some(r) if r.starts_with("assumed-role/") => "AssumedRole",
        Some(r) if r.starts_with("federated-user/") => "FederatedUser",
        _ => "",
    }
}

fn raw_aws(ev: &Event, full: bool) -> Option<Raw> {
    let user = ev.principal()?;
    let name = nonempty(user.name.as_ref()).filter(|n| *n != HIDDEN);
    let arn = nonempty(user.arn.as_ref());
    let account = nonempty(user.account_uid.as_ref())
        .or_else(|| arn.and_then(arn_account))
        .or_else(|| nonempty(ev.cloud.account.uid.as_ref()));
    match infer_aws_kind(user) {
        "IAMUser" => {
            let built;
            let (orig_arn, user_part): (&str, &str) =
                match arn.and_then(|a| Some((a, arn_resource(a)?))) {
                    Some((a, res)) => (a, res.strip_prefix("user/").unwrap_or(res)),
                    None => {
                        let n = name?;
                        built = format!("arn:aws:iam::{}:user/{n}", account.unwrap_or("unknown"));
                        (&built, n)
                    }
                };
            let lower_arn = orig_arn.to_lowercase();
            let short = user_part.rsplit('/').next().unwrap_or(user_part);
            Some(Raw {
                keys: when(full, || vec![lower_arn.clone(), iam_name_key(short)]),
                default: lower_arn,
                kind: PrincipalKind::IamUser,
                aliases: when(full, || {
                    vec![
                        ("iam_user_arn", orig_arn.to_owned()),
                        ("iam_user_name", name.unwrap_or(short).to_owned()),
                    ]
                }),
            })
        }
        "Root" => {
            let acct = account?;
            let root_arn = || {
                arn.map(str::to_owned)
                    .unwrap_or_else(|| format!("arn:aws:iam::{acct}:root"))
            };
            let default = format!("root@{acct}");
            Some(Raw {
                keys: when(full, || vec![root_arn().to_lowercase(), default.clone()]),
                default,
                kind: PrincipalKind::Root,
                aliases: when(full, || vec![("root_arn", root_arn())]),
            })
        }
        "AssumedRole" => {
            let res = arn.and_then(arn_resource);
            let mut parts = res
                .and_then(|r| r.strip_prefix("assumed-role/"))
                .map(|r| r.splitn(2, '/'));
            let role_from_arn = parts.as_mut().and_then(|p| p.next());
            let session_from_arn = parts.as_mut().and_then(|p| p.next());
            let session_ctx = user.session.as_ref();
            let role = session_ctx
                .and_then(|s| nonempty(s.issuer_name.as_ref()))
                .or(role_from_arn)
                .unwrap_or("");
            let session = session_from_arn.or(name).or_else(|| {
                nonempty(user.uid.as_ref())
                    .and_then(|p| p.split_once(':'))
                    .map(|(_, s)| s)
            })?;
            let issuer_arn = session_ctx
                .and_then(|s| nonempty(s.issuer_arn.as_ref()))
                .unwrap_or("");
            let federated = role.starts_with("AWSReservedSSO_")
                || issuer_arn.contains("/aws-reserved/sso.amazonaws.com/")
                || session_ctx.is_some_and(|s| s.is_federated)
                || ev
                    .aws
                    .as_ref()
                    .is_some_and(|a| a.saml_provider_arn.is_some());
            let full_arn = || match arn {
                Some(a) => a.to_owned(),
                None => format!(
                    "arn:aws:sts::{}:assumed-role/{role}/{session}",
                    account.unwrap_or("unknown")
                ),
            };
            if federated && session.contains('@') {
                let upn = session.to_lowercase();
                Some(Raw {
                    keys: when(full, || vec![upn.clone(), full_arn().to_lowercase()]),
                    default: upn,
                    kind: PrincipalKind::FederatedSession,
                    aliases: when(full, || vec![("sso_session", full_arn())]),
                })
            } else {
                let default = full_arn();
                Some(Raw {
                    keys: when(full, || vec![default.to_lowercase()]),
                    aliases: when(full, || vec![("assumed_role_arn", default.clone())]),
                    default,
                    kind: if federated {
                        PrincipalKind::FederatedSession
                    } else {
                        PrincipalKind::AssumedRole
                    },
                })
            }
        }
        "AWSService" => None,
        kind => {
            let a = arn?;
            let alias_kind = if kind == "FederatedUser" {
                "federated_user_arn"
            } else {
                "principal_arn"
            };
            Some(Raw {
                default: a.to_owned(),
                keys: when(full, || vec![a.to_lowercase()]),
                kind: PrincipalKind::Other,
                aliases: when(full, || vec![(alias_kind, a.to_owned())]),
            })
        }
    }
}

fn apply_links(keys: &[String], default: String, links: &IdentityLinks) -> String {
    match keys.iter().find_map(|k| links.lookup(k)) {
        Some(name) => name.to_owned(),
        None => default,
    }
}

/// The canonical identity of an event, or `None` (hidden user, AWS service, no user).
pub fn resolve(
    ev: &Event,
    links: &IdentityLinks,
    service_accounts: &std::collections::HashSet<String>,
) -> Option<Resolved> {
    let full = !links.is_empty() || !service_accounts.is_empty();
    let raw = raw_identity(ev, full)?;
    let name = apply_links(&raw.keys, raw.default, links);
    let is_service = !service_accounts.is_empty()
        && (service_accounts.contains(&name)
            || service_accounts.contains(&name.to_lowercase())
            || raw.keys.iter().any(|k| service_accounts.contains(k)));
    Some(Resolved {
        name,
        kind: raw.kind,
        is_service,
    })
}

/// Canonical identity name only (no service-account check).
pub fn identity_of(ev: &Event, links: &IdentityLinks) -> Option<String> {
    raw_identity(ev, !links.is_empty()).map(|raw| apply_links(&raw.keys, raw.default, links))
}

/// Every alias of the event's identity, for the store's `aliases` table. Empty when the event
/// has no identity.
pub fn aliases_of(ev: &Event, links: &IdentityLinks) -> Vec<Alias> {
    let Some(raw) = raw_identity(ev, true) else {
        return Vec::new();
    };
    let identity = apply_links(&raw.keys, raw.default, links);
    let cloud = ev.provider();
    raw.aliases
        .into_iter()
        .map(|(kind, value)| Alias {
            identity: identity.clone(),
            kind: kind.to_owned(),
            value,
            cloud,
        })
        .collect()
}
