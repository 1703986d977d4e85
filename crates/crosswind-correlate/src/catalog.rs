//! The signal catalogue: every signal of docs/detections.md with its default score, ATT&CK
//! techniques, window and threshold. Config overrides are applied on top in `config.rs`.

/// One kind of signal. The discriminant indexes per-signal settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SignalKind {
    AzureHighRiskSignin,
    AzureRiskyEvent,
    AzureCrossTenantSfa,
    AzurePasswordSpray,
    AwsConsoleLoginNoMfa,
    AwsRootConsoleLogin,
    AwsConsoleLoginFailures,
    AwsReconBurst,
    CrossCloudSprayThenAwsLogin,
    CrossCloudRiskyThenAws,
    CrossCloudImpossibleTravel,
    AzureRiskDetection,
    AzureLegacyAuthSignin,
    AzureMfaFatigue,
    AwsCredentialPersistence,
    AwsMessagingAbuse,
    AwsUnusedRegion,
}

/// Defaults of one signal (docs/detections.md).
#[derive(Clone, Copy, Debug)]
pub struct SignalSpec {
    pub kind: SignalKind,
    pub name: &'static str,
    pub score: f64,
    pub techniques: &'static [&'static str],
    /// Correlation window, where the signal has one.
    pub window_secs: Option<u64>,
    /// Count / speed threshold, where the signal has one.
    pub threshold: Option<u32>,
    /// Look-back beyond the window (spray → success follow-up; "new source IP" history).
    pub lookback_secs: Option<u64>,
    /// An observation that can grow after it was reported (a recon burst whose later calls are
    /// denied): a repeat scoring more than what was reported fires the difference
    /// (`Signal::extends`) instead of being suppressed.
    pub escalates: bool,
}

const DAY: u64 = 86_400;

/// A spec with no window, threshold or look-back.
const fn plain(kind: SignalKind, name: &'static str, score: f64) -> SignalSpec {
    SignalSpec {
        kind,
        name,
        score,
        techniques: &["T1078.004"],
        window_secs: None,
        threshold: None,
        lookback_secs: None,
        escalates: false,
    }
}

/// The catalogue, in [`SignalKind`] order.
const SPECS: [SignalSpec; 17] = [
    plain(
        SignalKind::AzureHighRiskSignin,
        "azure_high_risk_signin",
        56.0,
    ),
    plain(SignalKind::AzureRiskyEvent, "azure_risky_event", 48.0),
    plain(
        SignalKind::AzureCrossTenantSfa,
        "azure_cross_tenant_sfa",
        40.0,
    ),
    SignalSpec {
        kind: SignalKind::AzurePasswordSpray,
        name: "azure_password_spray",
        score: 100.0,
        techniques: &["T1110.003"],
        // The spray window and its distinct users.
        window_secs: Some(600),
        threshold: Some(10),
        // How long after the spray a successful sign-in from the source is attributed to it.
        lookback_secs: Some(DAY),
        escalates: false,
    },
    SignalSpec {
        // The "source IP not seen for this identity" history.
        lookback_secs: Some(14 * DAY),
        ..plain(
            SignalKind::AwsConsoleLoginNoMfa,
            "aws_console_login_no_mfa",
            64.0,
        )
    },
    plain(
        SignalKind::AwsRootConsoleLogin,
        "aws_root_console_login",
        50.0,
    ),
    SignalSpec {
        techniques: &["T1110"],
        window_secs: Some(600),
        threshold: Some(5),
        ..plain(
            SignalKind::AwsConsoleLoginFailures,
            "aws_console_login_failures",
            40.0,
        )
    },
    SignalSpec {
        techniques: &["T1087.004", "T1580", "T1069.003"],
        window_secs: Some(120),
        threshold: Some(4),
        lookback_secs: Some(14 * DAY),
        escalates: true,
        ..plain(SignalKind::AwsReconBurst, "aws_recon_burst", 56.0)
    },
    SignalSpec {
        techniques: &["T1110.003", "T1078.004"],
        window_secs: Some(DAY),
        ..plain(
            SignalKind::CrossCloudSprayThenAwsLogin,
            "cross_cloud_spray_then_aws_login",
            100.0,
        )
    },
    SignalSpec {
        window_secs: Some(8 * 3600),
        ..plain(
            SignalKind::CrossCloudRiskyThenAws,
            "cross_cloud_risky_then_aws",
            80.0,
        )
    },
    SignalSpec {
        // How far apart two sign-ins may be to be compared, and the speed limit in km/h.
        window_secs: Some(DAY),
        threshold: Some(1000),
        ..plain(
            SignalKind::CrossCloudImpossibleTravel,
            "cross_cloud_impossible_travel",
            60.0,
        )
    },
    // The score is the high level's; medium and low scale from it (RISK_LEVEL_FACTORS).
    plain(SignalKind::AzureRiskDetection, "azure_risk_detection", 64.0),
    plain(
        SignalKind::AzureLegacyAuthSignin,
        "azure_legacy_auth_signin",
        32.0,
    ),
    SignalSpec {
        techniques: &["T1621"],
        // Denied or unanswered prompts for one user within the window, and how long after the
        // burst the user's success makes it 80.
        window_secs: Some(600),
        threshold: Some(5),
        lookback_secs: Some(3600),
        // The success grows the reported 24 to 80 (`extends`), like a recon burst's growth.
        escalates: true,
        ..plain(SignalKind::AzureMfaFatigue, "azure_mfa_fatigue", 24.0)
    },
    SignalSpec {
        techniques: &["T1098.001", "T1136.003"],
        // How far back another signal of the identity makes a persistence call score ×3.
        window_secs: Some(8 * 3600),
        // A call first reported at 16 that gains context (another signal, then the same call
        // again within the day) fires the difference rather than being a silent repeat.
        escalates: true,
        ..plain(
            SignalKind::AwsCredentialPersistence,
            "aws_credential_persistence",
            16.0,
        )
    },
    SignalSpec {
        techniques: &["T1496.004"],
        // Distinct messaging calls by one identity within the window.
        window_secs: Some(600),
        threshold: Some(2),
        // The "source IP not seen for this identity" history.
        lookback_secs: Some(14 * DAY),
        ..plain(SignalKind::AwsMessagingAbuse, "aws_messaging_abuse", 56.0)
    },
    SignalSpec {
        techniques: &["T1535"],
        // Activity this recent in the region is no prior use: the intruder's own preparation
        // there (DescribeImages for an AMI id, a key pair, a security group) minutes before.
        window_secs: Some(DAY),
        // Days of the account's history (within the look-back) before a region can be unused.
        threshold: Some(7),
        // How long a region without activity is unused.
        lookback_secs: Some(14 * DAY),
        ..plain(SignalKind::AwsUnusedRegion, "aws_unused_region", 40.0)
    },
];

impl SignalKind {
    pub const ALL: [SignalKind; 17] = [
        SignalKind::AzureHighRiskSignin,
        SignalKind::AzureRiskyEvent,
        SignalKind::AzureCrossTenantSfa,
        SignalKind::AzurePasswordSpray,
        SignalKind::AwsConsoleLoginNoMfa,
        SignalKind::AwsRootConsoleLogin,
        SignalKind::AwsConsoleLoginFailures,
        SignalKind::AwsReconBurst,
        SignalKind::CrossCloudSprayThenAwsLogin,
        SignalKind::CrossCloudRiskyThenAws,
        SignalKind::CrossCloudImpossibleTravel,
        SignalKind::AzureRiskDetection,
        SignalKind::AzureLegacyAuthSignin,
        SignalKind::AzureMfaFatigue,
        SignalKind::AwsCredentialPersistence,
        SignalKind::AwsMessagingAbuse,
        SignalKind::AwsUnusedRegion,
    ];

    pub fn spec(self) -> SignalSpec {
        SPECS[self.index()]
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// By name; also accepts `cross_cloud_spray_then_aws` (the short name used in early notes).
    pub fn from_name(name: &str) -> Option<SignalKind> {
        if name == "cross_cloud_spray_then_aws" {
            return Some(SignalKind::CrossCloudSprayThenAwsLogin);
        }
        SignalKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Reconnaissance / credential-validation calls counted by `aws_recon_burst` (at most 64).
pub const RECON_CALLS: &[&str] = &[
    "GetCallerIdentity",
    "ListAttachedUserPolicies",
    "ListGroupsForUser",
    "ListUserPolicies",
    "ListBuckets",
    "DescribeInstances",
    "ListUsers",
    "ListRoles",
    "GetAccountAuthorizationDetails",
    "GetAccountSummary",
    "ListAccessKeys",
    "ListGroups",
    "ListPolicies",
    "GetUser",
    "ListAttachedGroupPolicies",
    "ListGroupPolicies",
    "GetPolicy",
    "GetPolicyVersion",
    "ListRolePolicies",
    "ListAttachedRolePolicies",
    "ListInstanceProfiles",
    "ListMFADevices",
    "GetLoginProfile",
    "DescribeRegions",
    "ListSecrets",
    "GetBucketPolicy",
    "GetBucketAcl",
    "ListAccountAliases",
    "GetAccountPasswordPolicy",
    "ListSAMLProviders",
    "ListOpenIDConnectProviders",
    "DescribeSecurityGroups",
    "DescribeVpcs",
    "ListFunctions",
    "DescribeDBInstances",
    "ListDetectors",
    "DescribeTrails",
    "GetSendQuota",
    "ListIdentities",
    "ListOrganizationalUnitsForParent",
    "ListAccounts",
    "DescribeOrganization",
];

/// What one AWS call (name without API version) is to the AWS detectors, looked up once per
/// event in one table rather than once per detector: each field indexes its detector's list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AwsCallRoles {
    /// Index in [`RECON_CALLS`].
    pub recon: Option<u8>,
    /// Index in [`MESSAGING_CALLS`] (the event source is checked by the detector).
    pub messaging: Option<u8>,
    /// Index in [`PERSISTENCE_CALLS`].
    pub persistence: Option<u8>,
    /// One of [`UNUSED_REGION_CALLS`].
    pub unused_region: bool,
}

/// The roles of the AWS call named `op` (without API version); none for any other name.
pub fn aws_call_roles(op: &str) -> AwsCallRoles {
    static TABLE: std::sync::OnceLock<std::collections::HashMap<&'static str, AwsCallRoles>> =
        std::sync::OnceLock::new();
    TABLE
        .get_or_init(|| {
            let mut t: std::collections::HashMap<&'static str, AwsCallRoles> =
                std::collections::HashMap::new();
            for (i, name) in RECON_CALLS.iter().enumerate() {
                t.entry(name).or_default().recon = Some(i as u8);
            }
            for (i, (name, _)) in MESSAGING_CALLS.iter().enumerate() {
                t.entry(name).or_default().messaging = Some(i as u8);
            }
            for (i, (name, _)) in PERSISTENCE_CALLS.iter().enumerate() {
                t.entry(name).or_default().persistence = Some(i as u8);
            }
            for name in UNUSED_REGION_CALLS {
                t.entry(name).or_default().unused_region = true;
            }
            t
        })
        .get(op)
        .copied()
        .unwrap_or_default()
}
const _: () = assert!(RECON_CALLS.len() <= 64 && PERSISTENCE_CALLS.len() <= 255);

/// IAM calls that create a way back in (`aws_credential_persistence`), with what each does.
/// AttachUserPolicy / PutUserPolicy / AddUserToGroup ([`crosswind_model::ADMIN_GRANT_CALLS`])
/// count only when they grant admin.
pub const PERSISTENCE_CALLS: &[(&str, &str)] = &[
    ("CreateAccessKey", "created an access key"),
    ("CreateLoginProfile", "created a console password"),
    ("UpdateLoginProfile", "changed a console password"),
    ("CreateUser", "created an IAM user"),
    ("DeactivateMFADevice", "deactivated an MFA device"),
    ("DeleteVirtualMFADevice", "deleted a virtual MFA device"),
    (
        "AttachUserPolicy",
        "attached an administrator policy to a user",
    ),
    (
        "PutUserPolicy",
        "put an inline policy allowing every action on a user",
    ),
    ("AddUserToGroup", "added a user to an admin group"),
];
/// Account-level messaging calls counted by `aws_messaging_abuse` (at most 32), each with the
/// `eventSource` values it is logged under: SES and SES v2 share `ses.amazonaws.com` (SES v2's
/// endpoint is `email.<region>.amazonaws.com`, accepted too). A call logged under another
/// service (API Gateway's `GetAccount`, Cognito Identity's `ListIdentities`) does not count.
pub const MESSAGING_CALLS: &[(&str, &[&str])] = &[
    ("GetSendQuota", SES),
    ("GetAccount", SES),
    ("GetAccountSendingEnabled", SES),
    ("ListIdentities", SES),
    ("ListEmailIdentities", SES),
    ("UpdateAccountSendingEnabled", SES),
    ("PutAccountDetails", SES),
    ("CreateEmailIdentity", SES),
    ("VerifyEmailIdentity", SES),
    ("VerifyDomainIdentity", SES),
    ("GetSMSAttributes", SNS),
    ("SetSMSAttributes", SNS),
    ("GetSMSSandboxAccountStatus", SNS),
    ("CreateSMSSandboxPhoneNumber", SNS),
];
const _: () = assert!(MESSAGING_CALLS.len() <= 32);
const SES: &[&str] = &["ses.amazonaws.com", "email.amazonaws.com"];
const SNS: &[&str] = &["sns.amazonaws.com"];

/// Calls that create infrastructure, read by `aws_unused_region` (without API version:
/// Lambda logs `CreateFunction20150331`).
pub const UNUSED_REGION_CALLS: &[&str] = &["RunInstances", "CreateFunction", "CreateStack"];

/// `aws_credential_persistence` with another signal of the identity in its window: 16 → 48.
pub const PERSISTENCE_CONTEXT_FACTOR: f64 = 3.0;

/// Entra failure codes that make a sign-in part of a password spray.
pub const SPRAY_FAILURE_CODES: &[&str] = &["50126", "50053", "50055", "50057"];

/// `riskEventTypes_v2` values that raise `azure_risky_event` (lower-cased).
pub const RISKY_EVENT_TYPES: &[&str] = &[
    "impossibletravel",
    "anonymizedipaddress",
    "maliciousipaddress",
    "unfamiliarfeatures",
    "passwordspray",
    "leakedcredentials",
    "nationstateip",
    "riskyipaddress",
    "investigationsthreatintelligence",
];

/// Risk event types that are about the IP only: from a trusted CIDR they raise nothing.
pub const IP_BASED_RISK_TYPES: &[&str] = &[
    "anonymizedipaddress",
    "maliciousipaddress",
    "riskyipaddress",
    "suspiciousipaddress",
    "malwareinfectedipaddress",
    "nationstateip",
];

/// Travel-like risk event types (business travellers).
pub const TRAVEL_RISK_TYPES: &[&str] =
    &["impossibletravel", "unlikelytravel", "unfamiliarfeatures"];

/// Score multiplier: source IP not seen for this identity in the look-back.
pub const NEW_IP_FACTOR: f64 = 1.5;
/// Score bonus: some calls of a recon burst were denied.
pub const DENIED_BONUS: f64 = 20.0;
/// Score multiplier for a habitual pattern (docs/detections.md, "Repeats").
pub const HABITUAL_FACTOR: f64 = 0.25;
/// Score multiplier for `service_accounts`.
pub const SERVICE_ACCOUNT_FACTOR: f64 = 0.25;
/// Score multiplier for low-risk, travel-only Entra risk.
pub const TRAVEL_FACTOR: f64 = 0.5;
/// Risk multiplier while an identity has signals in both clouds.
pub const BOTH_CLOUDS_FACTOR: f64 = 1.5;
/// Impossible travel: pairs closer than this are geolocation noise, never a signal.
pub const MIN_TRAVEL_KM: f64 = 500.0;

/// `azure_risk_detection` score by `riskLevel`, as a fraction of the configured (high) score:
/// high 64, medium 40, low 16 by default. Other levels (none, hidden) raise nothing.
pub const RISK_LEVEL_FACTORS: &[(&str, f64)] =
    &[("high", 1.0), ("medium", 40.0 / 64.0), ("low", 16.0 / 64.0)];
/// `azure_risk_detection` states that count: not reviewed, or confirmed by an admin.
pub const RISK_DETECTION_AT_RISK: &[&str] = &["atrisk", "confirmedcompromised"];
/// Later states that take a detection's score back (reviewed safe, or the risk was remediated).
pub const RISK_DETECTION_CLOSED: &[&str] = &["dismissed", "confirmedsafe", "remediated"];
/// Risk detection types whose ATT&CK technique is not T1078.004.
pub const RISK_TYPE_TECHNIQUES: &[(&str, &[&str])] = &[("leakedcredentials", &["T1586.003"])];

/// `clientAppUsed` values of modern clients (case-insensitive); any other non-empty value is a
/// legacy protocol that cannot do MFA (`azure_legacy_auth_signin`), except these unknowns.
pub const MODERN_CLIENT_APPS: &[&str] = &["browser", "mobile apps and desktop clients"];
/// `clientAppUsed` values that say nothing about the protocol.
pub const UNKNOWN_CLIENT_APPS: &[&str] = &["unknown", "unknownfuturevalue", "none", "-"];

/// `azure_mfa_fatigue`: the Entra code of a failed strong authentication (MFA) request...
pub const MFA_DENIED_CODE: &str = "500121";
/// ...counted when its `status.additionalDetails` (case-insensitive) says the user declined,
/// did not respond, or reported fraud: "MFA denied; user declined the authentication", "MFA
/// denied; user did not respond to mobile app notification", "MFA denied; Phone App Reported
/// Fraud". Other 500121 details (a duplicate request, a wrong code typed) are not a prompt the
/// user refused; 50074/50076 are the ordinary "MFA required" interrupts.
pub const MFA_REFUSED_DETAILS: &[&str] = &[
    "declined",
    "did not respond",
    "didn't respond",
    "not answered",
    "reported fraud",
    "fraud code",
];
/// `azure_mfa_fatigue` when the user then signs in successfully: 24 → 80.
pub const MFA_FATIGUE_SUCCESS_FACTOR: f64 = 80.0 / 24.0;
