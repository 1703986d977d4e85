//! The normalised event: OCSF Authentication (3002) for Entra sign-ins and AWS `ConsoleLogin`,
//! OCSF API Activity (6003) for every other CloudTrail call, OCSF Detection Finding (2004) for
//! Entra ID Protection risk detections.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// OCSF class: Authentication.
pub const CLASS_AUTHENTICATION: u32 = 3002;
/// OCSF class: API Activity.
pub const CLASS_API_ACTIVITY: u32 = 6003;
/// OCSF class: Detection Finding (category 2, Findings): an Identity Protection risk detection.
pub const CLASS_DETECTION_FINDING: u32 = 2004;

/// OCSF `status_id`.
pub const STATUS_UNKNOWN: u8 = 0;
pub const STATUS_SUCCESS: u8 = 1;
pub const STATUS_FAILURE: u8 = 2;

/// The record shapes crosswind reads. `import --format` names the families (graph, signinlogs,
/// diagnostic, cloudtrail): the Entra families hold a sign-in and a risk-detection shape each,
/// the CloudTrail family three concrete shapes.
/// Serialised names equal [`SourceFormat::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum SourceFormat {
    /// Microsoft Graph `signIn` (v1.0 or beta), as `/auditLogs/signIns` returns it.
    #[serde(rename = "graph_signin")]
    GraphSignIn,
    /// Azure Monitor diagnostic-settings record (`{"records":[…]}`, `properties.*`).
    #[serde(rename = "diagnostic_signin")]
    DiagnosticSignIn,
    /// Log Analytics / Sentinel `SigninLogs` row (PascalCase, JSON-in-string columns).
    #[serde(rename = "signinlogs_row")]
    SigninLogsRow,
    /// Raw CloudTrail record (S3 trail file, LookupEvents `CloudTrailEvent`, EventBridge detail).
    #[serde(rename = "cloudtrail")]
    CloudTrail,
    /// Raw CloudTrail record shipped by Logstash (`@timestamp`, no `eventTime`).
    #[serde(rename = "cloudtrail_logstash")]
    CloudTrailLogstash,
    /// Log Analytics / Sentinel `AWSCloudTrail` row.
    #[serde(rename = "sentinel_cloudtrail_row")]
    SentinelCloudTrailRow,
    /// Microsoft Graph `riskDetection` (v1.0 or beta), as `/identityProtection/riskDetections`
    /// returns it.
    #[serde(rename = "graph_risk_detection")]
    GraphRiskDetection,
    /// Azure Monitor diagnostic-settings record of category `UserRiskEvents` (or
    /// `ServicePrincipalRiskEvents`): `properties` is a `riskDetection`.
    #[serde(rename = "diagnostic_risk_detection")]
    DiagnosticRiskDetection,
    /// Log Analytics / Sentinel `AADUserRiskEvents` (or `AADServicePrincipalRiskEvents`) row.
    #[serde(rename = "userriskevents_row")]
    UserRiskEventsRow,
}

impl SourceFormat {
    pub const ALL: [SourceFormat; 9] = [
        SourceFormat::GraphSignIn,
        SourceFormat::DiagnosticSignIn,
        SourceFormat::SigninLogsRow,
        SourceFormat::CloudTrail,
        SourceFormat::CloudTrailLogstash,
        SourceFormat::SentinelCloudTrailRow,
        SourceFormat::GraphRiskDetection,
        SourceFormat::DiagnosticRiskDetection,
        SourceFormat::UserRiskEventsRow,
    ];

    /// Stable name, used in the store and in `metadata.log_name`.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceFormat::GraphSignIn => "graph_signin",
            SourceFormat::DiagnosticSignIn => "diagnostic_signin",
            SourceFormat::SigninLogsRow => "signinlogs_row",
            SourceFormat::CloudTrail => "cloudtrail",
            SourceFormat::CloudTrailLogstash => "cloudtrail_logstash",
            SourceFormat::SentinelCloudTrailRow => "sentinel_cloudtrail_row",
            SourceFormat::GraphRiskDetection => "graph_risk_detection",
            SourceFormat::DiagnosticRiskDetection => "diagnostic_risk_detection",
            SourceFormat::UserRiskEventsRow => "userriskevents_row",
        }
    }

    pub fn parse(s: &str) -> Option<SourceFormat> {
        SourceFormat::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// The dedup namespace: the same sign-in exported twice in two shapes is one record.
    pub fn record_source(self) -> RecordSource {
        match self {
            SourceFormat::GraphSignIn
            | SourceFormat::DiagnosticSignIn
            | SourceFormat::SigninLogsRow => RecordSource::EntraSignIn,
            SourceFormat::CloudTrail
            | SourceFormat::CloudTrailLogstash
            | SourceFormat::SentinelCloudTrailRow => RecordSource::CloudTrail,
            SourceFormat::GraphRiskDetection
            | SourceFormat::DiagnosticRiskDetection
            | SourceFormat::UserRiskEventsRow => RecordSource::EntraRiskDetection,
        }
    }

    /// Splunk sourcetype the raw record is forwarded under (docs/splunk.md). An add-on's
    /// sourcetype only for the shape that add-on reads: Log Analytics / Sentinel rows have
    /// PascalCase columns no search written for `azure:aad:signin` or `aws:cloudtrail` finds, so
    /// they go under crosswind's own sourcetypes.
    pub fn sourcetype(self) -> &'static str {
        match self {
            SourceFormat::GraphSignIn => "azure:aad:signin",
            SourceFormat::DiagnosticSignIn => "azure:monitor:aad",
            SourceFormat::SigninLogsRow => "crosswind:signinlogs",
            // Logstash drops `eventTime` for `@timestamp`; every other field is CloudTrail's own.
            SourceFormat::CloudTrail | SourceFormat::CloudTrailLogstash => "aws:cloudtrail",
            SourceFormat::SentinelCloudTrailRow => "crosswind:awscloudtrail",
            SourceFormat::GraphRiskDetection
            | SourceFormat::DiagnosticRiskDetection
            | SourceFormat::UserRiskEventsRow => "azure:aad:identity_protection:risk_detection",
        }
    }

    pub fn provider(self) -> CloudProvider {
        match self.record_source() {
            RecordSource::EntraSignIn | RecordSource::EntraRiskDetection => CloudProvider::Azure,
            RecordSource::CloudTrail => CloudProvider::Aws,
        }
    }
}

/// Namespace in which a record id is unique (dedup key is `(source, record id)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum RecordSource {
    #[serde(rename = "entra_signin")]
    EntraSignIn,
    #[serde(rename = "cloudtrail")]
    CloudTrail,
    /// One state of an Identity Protection risk detection: its record id is the detection id
    /// and the state's time (see [`risk_detection_record_prefix`]), so every update is kept.
    #[serde(rename = "entra_risk_detection")]
    EntraRiskDetection,
}

impl RecordSource {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordSource::EntraSignIn => "entra_signin",
            RecordSource::CloudTrail => "cloudtrail",
            RecordSource::EntraRiskDetection => "entra_risk_detection",
        }
    }

    pub fn parse(s: &str) -> Option<RecordSource> {
        match s {
            "entra_signin" => Some(RecordSource::EntraSignIn),
            "cloudtrail" => Some(RecordSource::CloudTrail),
            "entra_risk_detection" => Some(RecordSource::EntraRiskDetection),
            _ => None,
        }
    }
}

/// The record id of one state of a risk detection is `<detection id>@<version time>`, the version
/// time being `lastUpdatedDateTime` as `YYYY-MM-DDTHH:MM:SS.mmmZ`: fixed width, so the record ids
/// of one detection sort by time and the newest state has the greatest. The same state exported
/// in two shapes gets the same id; a later state (dismissed, remediated) gets a new one. This is
/// the prefix all of a detection's record ids share.
pub fn risk_detection_record_prefix(detection_id: &str) -> String {
    format!("{detection_id}@")
}

/// OCSF `cloud.provider`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum CloudProvider {
    Azure,
    #[serde(rename = "AWS")]
    Aws,
}

impl CloudProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            CloudProvider::Azure => "Azure",
            CloudProvider::Aws => "AWS",
        }
    }
}

/// One normalised record. Field names follow OCSF 1.x where OCSF has one; the rest sit in
/// `entra` / `aws` extension objects.
///
/// A risk detection (class 2004) is the same shape: `time` is the risky activity's time
/// (`activityDateTime`), `user` the user at risk, `src_endpoint` where the risk came from,
/// `finding_info` the detection itself, `entra` its Identity Protection fields. Its `status_id`
/// is 0: a detection is neither a success nor a failure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    pub schema_version: u32,
    /// 3002 Authentication, 6003 API Activity or 2004 Detection Finding.
    pub class_uid: u32,
    /// Event time, epoch milliseconds UTC.
    pub time: i64,
    /// 1 success, 2 failure, 0 unknown.
    pub status_id: u8,
    /// Source's own result code: Entra `status.errorCode` as text ("0", "50126"), CloudTrail
    /// `errorCode` ("AccessDenied") or, for console logins, "Success"/"Failure".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<String>,
    /// Entra `failureReason`, CloudTrail `errorMessage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_detail: Option<String>,
    pub metadata: Metadata,
    pub cloud: Cloud,
    #[serde(default)]
    pub src_endpoint: SrcEndpoint,
    /// The authenticating user (class 3002), the user at risk (class 2004).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    /// The calling principal (class 6003).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
    /// CloudTrail call; for Entra the application signed in to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<Api>,
    /// Entra application signed in to (`appDisplayName`, `appId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Service>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_request: Option<HttpRequest>,
    /// MFA used for this authentication, when the source says (Entra
    /// `authenticationRequirement`/details, CloudTrail `MFAUsed` / `mfaAuthenticated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_mfa: Option<bool>,
    /// What was detected (class 2004).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding_info: Option<FindingInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entra: Option<EntraDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsDetail>,
}

impl Event {
    /// The user this event is about: `user` for 3002, `actor.user` for 6003.
    pub fn principal(&self) -> Option<&User> {
        self.user
            .as_ref()
            .or_else(|| self.actor.as_ref().map(|a| &a.user))
    }

    pub fn is_success(&self) -> bool {
        self.status_id == STATUS_SUCCESS
    }

    pub fn provider(&self) -> CloudProvider {
        self.cloud.provider
    }

    pub fn src_ip(&self) -> Option<&str> {
        self.src_endpoint.ip.as_deref()
    }

    /// CloudTrail `eventName` (or `ConsoleLogin`), Entra: none.
    pub fn operation(&self) -> Option<&str> {
        self.api.as_ref().map(|a| a.operation.as_str())
    }

    /// Whether this is an Identity Protection risk detection (class 2004).
    pub fn is_risk_detection(&self) -> bool {
        self.class_uid == CLASS_DETECTION_FINDING
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Metadata {
    /// The source record's id: Graph `id`, CloudTrail `eventID`, or `sha256:<hex>` of the record.
    pub uid: String,
    /// "Microsoft Entra ID" or "AWS CloudTrail".
    pub product: String,
    /// The shape the record came in.
    pub log_name: SourceFormat,
    /// Graph `correlationId` (for a risk detection: the sign-in's), CloudTrail `requestID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_uid: Option<String>,
    /// Graph `signInEventTypes`/diagnostic `category`, CloudTrail `eventType`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_types: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Cloud {
    pub provider: CloudProvider,
    /// Entra tenant id or AWS account id (`recipientAccountId`).
    #[serde(default)]
    pub account: Account,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Account {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SrcEndpoint {
    /// Source IP. CloudTrail service callers ("cloudtrail.amazonaws.com", "AWS Internal") are
    /// kept in `domain` instead, never here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Entra `autonomousSystemNumber`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autonomous_system_number: Option<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Location {
    /// ISO 3166-1 alpha-2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct User {
    /// Entra: `userPrincipalName` lower-cased. AWS: IAM `userName` as recorded (may be
    /// `HIDDEN_DUE_TO_SECURITY_REASONS` on failed console logins), assumed-role session name,
    /// "root" for the root user, `invokedBy` for AWS services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Entra `userId` (object id), AWS `principalId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Entra `userType` (member/guest) or sign-in kind; AWS `userIdentity.type`
    /// (IAMUser, Root, AssumedRole, …).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    /// AWS `userIdentity.arn` (absent on many failed console logins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// AWS access key id (OCSF `credential_uid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_uid: Option<String>,
    /// AWS `userIdentity.accountId`; Entra home tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_uid: Option<String>,
    /// Assumed-role session details (AWS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Session>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Session {
    /// `sessionContext.sessionIssuer.arn` (the role, or user for federation tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_arn: Option<String>,
    /// `sessionContext.sessionIssuer.userName` (the role name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_name: Option<String>,
    /// `sessionContext.attributes.mfaAuthenticated`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_authenticated: Option<bool>,
    /// Session created by IAM Identity Center (`AWSReservedSSO_*` role) or a SAML provider;
    /// MFA for these sessions happens at the identity provider.
    #[serde(default)]
    pub is_federated: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Actor {
    pub user: User,
    /// AWS `userIdentity.invokedBy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoked_by: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Api {
    /// CloudTrail `eventName`.
    pub operation: String,
    /// CloudTrail `eventSource` (`sts.amazonaws.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// CloudTrail `requestID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_uid: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Service {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HttpRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// OCSF `finding_info` of a Detection Finding (class 2004): the risk detection itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FindingInfo {
    /// The detection's own id (Graph `id`). One detection is stored once per state: every
    /// state has this `uid`, and `metadata.uid` = `<uid>@<modified_time>`; the state with the
    /// greatest `modified_time` is the detection's current one.
    pub uid: String,
    /// `riskEventType` as given (falls back to the older `riskType`); `unknown` when absent.
    pub title: String,
    /// `[riskEventType]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    /// `detectedDateTime`, epoch ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_time: Option<i64>,
    /// `lastUpdatedDateTime`, epoch ms (falls back to `detectedDateTime`, then the activity
    /// time): the time of this state.
    pub modified_time: i64,
}

/// Entra-only sign-in facts the detections need. Risk detections (class 2004) fill the
/// `risk_*` fields from the detection and the detection-only fields below them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EntraDetail {
    /// `riskLevelDuringSignIn`: none | low | medium | high | hidden.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_level_during_signin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_level_aggregated: Option<String>,
    /// `riskState`: none | confirmedSafe | remediated | dismissed | atRisk | confirmedCompromised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_detail: Option<String>,
    /// `riskEventTypes_v2` (falls back to the deprecated `riskEventTypes`), as given; for a risk
    /// detection `[riskEventType]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub risk_event_types: Vec<String>,
    /// Risk detection: `riskLevel` (low | medium | high | hidden | none), as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_level: Option<String>,
    /// Risk detection: `detectionTimingType` (realtime | nearRealtime | offline | notDefined).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection_timing_type: Option<String>,
    /// Risk detection: `activity`, what the risk is linked to (signin | user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_activity: Option<String>,
    /// Risk detection: `requestId` of the sign-in it is linked to (that sign-in's Graph `id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Risk detection: `source` (IdentityProtection, activeDirectory, MicrosoftCloudAppSecurity…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_source: Option<String>,
    /// Risk detection: `tokenIssuerType` (AzureAD | ADFederationServices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_issuer_type: Option<String>,
    /// `authenticationRequirement`: singleFactorAuthentication | multiFactorAuthentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_requirement: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_tenant_access_type: Option<String>,
    /// `clientAppUsed`: Browser, Mobile Apps and Desktop clients, or a legacy protocol (IMAP4,
    /// POP3, Exchange ActiveSync, Authenticated SMTP, Other clients, …), as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_app_used: Option<String>,
    /// `status.additionalDetails`: why a sign-in failed beyond its code, as given ("MFA denied;
    /// user declined the authentication" on a 500121).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_additional_details: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_interactive: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditional_access_status: Option<String>,
}

/// CloudTrail-only facts the detections need.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AwsDetail {
    /// `eventType`: AwsApiCall | AwsConsoleSignIn | AwsServiceEvent | AwsConsoleAction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// `additionalEventData.MFAUsed` exactly as recorded ("Yes", "No", "YES").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_used: Option<String>,
    /// `additionalEventData.LoginTo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_to: Option<String>,
    /// `additionalEventData.SamlProviderArn` (federated console login).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saml_provider_arn: Option<String>,
    /// `responseElements.ConsoleLogin`: Success | Failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_login: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_version: Option<String>,
    /// `sessionCredentialFromConsole`: the call was made by the AWS console with the session of
    /// a signed-in user (browsing, not a script).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_credential_from_console: Option<bool>,
    /// AttachUserPolicy / PutUserPolicy / AddUserToGroup whose `requestParameters` grant
    /// administrator rights (the AdministratorAccess policy, a policy document allowing action
    /// `*`, a group named like `*admin*`); absent for other calls (docs/detections.md,
    /// `aws_credential_persistence`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants_admin: Option<bool>,
}

/// The IAM calls whose `requestParameters` can grant a user administrator rights: the
/// normaliser judges them into [`AwsDetail::grants_admin`], the correlator counts them only when
/// they do (docs/detections.md, `aws_credential_persistence`).
pub const ADMIN_GRANT_CALLS: &[&str] = &["AttachUserPolicy", "PutUserPolicy", "AddUserToGroup"];
