//! Identities across clouds: one person (or workload) is one canonical identity name with
//! aliases — Entra UPN and object id, IAM user ARN and name, root, SSO / SAML sessions.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::CloudProvider;

/// One name under which an identity appears in the logs (an `aliases` row in the store).
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub struct Alias {
    /// Canonical identity name (the risk object): `alice@corp.example`,
    /// `arn:aws:iam::111122223333:user/bob`, `root@111122223333`.
    pub identity: String,
    /// What the value is: `upn`, `object_id`, `iam_user_arn`, `iam_user_name`, `root_arn`,
    /// `assumed_role_arn`, `sso_session`, `federated_user_arn`, `principal_arn`.
    pub kind: String,
    /// The alias as the source recorded it (original case).
    pub value: String,
    pub cloud: CloudProvider,
}
