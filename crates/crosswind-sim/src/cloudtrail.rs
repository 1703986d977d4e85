//! Builds CloudTrail records (FIELDS.md §4): console sign-ins and the API calls the scenarios
//! need, with full `userIdentity` (incl. `sessionContext`), `tlsDetails` and real error shapes.

use serde_json::{Map, Value, json};

use crate::rng::Rng;
use crate::time::iso;
use crate::world::{ACCOUNTS, IamUser, SsoRole};

/// Whose credentials made the call.
pub(crate) enum Principal<'a> {
    /// An IAM user's long-term `AKIA…` key.
    IamKey(&'a IamUser),
    /// An IAM user's console session (temporary `ASIA…` key, MFA as at login).
    IamConsole {
        user: &'a IamUser,
        key: &'a str,
        created: i64,
        mfa: bool,
    },
    /// An IAM Identity Center session (`AWSReservedSSO_*` role, session name = UPN).
    Sso {
        role: &'a SsoRole,
        session: &'a str,
        key: &'a str,
        created: i64,
    },
}

impl Principal<'_> {
    pub(crate) fn account(&self) -> usize {
        match self {
            Principal::IamKey(u) | Principal::IamConsole { user: u, .. } => u.account,
            Principal::Sso { role, .. } => role.account,
        }
    }

    fn arn(&self) -> String {
        match self {
            Principal::IamKey(u) | Principal::IamConsole { user: u, .. } => u.arn(),
            Principal::Sso { role, session, .. } => {
                format!(
                    "arn:aws:sts::{}:assumed-role/{}/{session}",
                    ACCOUNTS[role.account].id, role.name
                )
            }
        }
    }

    fn is_console_session(&self) -> bool {
        !matches!(self, Principal::IamKey(_))
    }

    pub(crate) fn identity(&self) -> Value {
        match self {
            Principal::IamKey(u) => json!({
                "type": "IAMUser",
                "principalId": u.principal_id,
                "arn": u.arn(),
                "accountId": u.account_id(),
                "accessKeyId": u.access_key,
                "userName": u.name,
            }),
            Principal::IamConsole {
                user,
                key,
                created,
                mfa,
            } => json!({
                "type": "IAMUser",
                "principalId": user.principal_id,
                "arn": user.arn(),
                "accountId": user.account_id(),
                "accessKeyId": key,
                "userName": user.name,
                "sessionContext": {
                    "sessionIssuer": {},
                    "webIdFederationData": {},
                    "attributes": { "creationDate": iso(*created), "mfaAuthenticated": if *mfa { "true" } else { "false" } },
                },
            }),
            Principal::Sso {
                role,
                session,
                key,
                created,
            } => {
                let mut v = sso_identity(role, session, *created);
                if let Some(m) = v.as_object_mut() {
                    m.insert("accessKeyId".into(), json!(key));
                }
                v
            }
        }
    }
}

fn sso_identity(role: &SsoRole, session: &str, created: i64) -> Value {
    let acct = ACCOUNTS[role.account].id;
    json!({
        "type": "AssumedRole",
        "principalId": format!("{}:{session}", role.role_id),
        "arn": format!("arn:aws:sts::{acct}:assumed-role/{}/{session}", role.name),
        "accountId": acct,
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": role.role_id,
                "arn": format!("arn:aws:iam::{acct}:role/aws-reserved/sso.amazonaws.com/{}", role.name),
                "accountId": acct,
                "userName": role.name,
            },
            "webIdFederationData": {},
            "attributes": { "creationDate": iso(created), "mfaAuthenticated": "false" },
        },
    })
}

/// Who logs in to the console.
pub(crate) enum ConsoleUser<'a> {
    Iam(&'a IamUser),
    Sso { role: &'a SsoRole, session: &'a str },
}

fn tls(host: &str) -> Value {
    json!({ "tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256", "clientProvidedHostHeader": host })
}

/// A `ConsoleLogin` (eventSource signin.amazonaws.com, recorded in us-east-1).
pub(crate) fn console_login(
    rng: &mut Rng,
    t: i64,
    who: &ConsoleUser<'_>,
    ip: &str,
    ua: &str,
    success: bool,
    mfa: bool,
) -> Value {
    let (identity, account, mfa_id) = match who {
        ConsoleUser::Iam(u) => {
            let mut id = json!({
                "type": "IAMUser",
                "principalId": u.principal_id,
                "accountId": u.account_id(),
                "accessKeyId": "",
                "userName": u.name,
            });
            if success && let Some(m) = id.as_object_mut() {
                m.insert("arn".into(), json!(u.arn()));
            }
            (id, u.account, if mfa { u.mfa_device.clone() } else { None })
        }
        ConsoleUser::Sso { role, session } => (sso_identity(role, session, t), role.account, None),
    };
    let acct = ACCOUNTS[account].id;
    let mut extra = Map::new();
    extra.insert("LoginTo".into(), json!(format!("https://console.aws.amazon.com/console/home?hashArgs=%23&isauthcode=true&state=hashArgsFromTB_us-east-1_{}", rng.hex(16))));
    extra.insert("MobileVersion".into(), json!("No"));
    extra.insert("MFAUsed".into(), json!(if mfa { "Yes" } else { "No" }));
    if let Some(m) = mfa_id {
        extra.insert("MFAIdentifier".into(), json!(m));
    }
    let mut rec = json!({
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": iso(t),
        "eventSource": "signin.amazonaws.com",
        "eventName": "ConsoleLogin",
        "awsRegion": "us-east-1",
        "sourceIPAddress": ip,
        "userAgent": ua,
        "requestParameters": null,
        "responseElements": { "ConsoleLogin": if success { "Success" } else { "Failure" } },
        "additionalEventData": extra,
        "eventID": rng.uuid(),
        "readOnly": false,
        "eventType": "AwsConsoleSignIn",
        "managementEvent": true,
        "recipientAccountId": acct,
        "eventCategory": "Management",
        "tlsDetails": tls("signin.aws.amazon.com"),
    });
    if !success && let Some(m) = rec.as_object_mut() {
        m.insert("errorMessage".into(), json!("Failed authentication"));
    }
    rec
}

/// The API calls the simulator makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Call {
    GetCallerIdentity,
    ListAttachedUserPolicies,
    ListGroupsForUser,
    ListUserPolicies,
    ListBuckets,
    DescribeInstances,
    ListUsers,
    ListRoles,
    GetAccountAuthorizationDetails,
    GetAccountSummary,
    DescribeVolumes,
    CreateSnapshot,
    CreateTags,
    GetObject,
    PutObject,
    UpdateFunctionCode,
    GetFunction,
    GetMetricData,
    DescribeAlarms,
    GetParameter,
    FilterLogEvents,
}

/// Event names docs/detections.md's `aws_recon_burst` counts as reconnaissance (the listed ones).
pub const RECON_EVENT_NAMES: &[&str] = &[
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
];

impl Call {
    fn parts(self) -> (&'static str, &'static str, bool) {
        // (event source, event name, read only)
        match self {
            Call::GetCallerIdentity => ("sts", "GetCallerIdentity", true),
            Call::ListAttachedUserPolicies => ("iam", "ListAttachedUserPolicies", true),
            Call::ListGroupsForUser => ("iam", "ListGroupsForUser", true),
            Call::ListUserPolicies => ("iam", "ListUserPolicies", true),
            Call::ListBuckets => ("s3", "ListBuckets", true),
            Call::DescribeInstances => ("ec2", "DescribeInstances", true),
            Call::ListUsers => ("iam", "ListUsers", true),
            Call::ListRoles => ("iam", "ListRoles", true),
            Call::GetAccountAuthorizationDetails => ("iam", "GetAccountAuthorizationDetails", true),
            Call::GetAccountSummary => ("iam", "GetAccountSummary", true),
            Call::DescribeVolumes => ("ec2", "DescribeVolumes", true),
            Call::CreateSnapshot => ("ec2", "CreateSnapshot", false),
            Call::CreateTags => ("ec2", "CreateTags", false),
            Call::GetObject => ("s3", "GetObject", true),
            Call::PutObject => ("s3", "PutObject", false),
            Call::UpdateFunctionCode => ("lambda", "UpdateFunctionCode20150331v2", false),
            Call::GetFunction => ("lambda", "GetFunction20150331v2", true),
            Call::GetMetricData => ("monitoring", "GetMetricData", true),
            Call::DescribeAlarms => ("monitoring", "DescribeAlarms", true),
            Call::GetParameter => ("ssm", "GetParameter", true),
            Call::FilterLogEvents => ("logs", "FilterLogEvents", true),
        }
    }

    /// IAM, STS and S3 bucket listing are recorded in us-east-1; the rest in the account's region.
    pub(crate) fn region(self, account: usize) -> &'static str {
        match self.parts().0 {
            "iam" | "sts" => "us-east-1",
            _ if self == Call::ListBuckets => "us-east-1",
            _ => ACCOUNTS[account].region,
        }
    }
}

/// One API call. `denied` adds the service's real error shape.
pub(crate) fn api_call(
    rng: &mut Rng,
    t: i64,
    p: &Principal<'_>,
    ip: &str,
    ua: &str,
    call: Call,
    denied: bool,
) -> Value {
    let (svc, name, read_only) = call.parts();
    let account = p.account();
    let acct = ACCOUNTS[account].id;
    let region = call.region(account);
    let bucket = format!("{}-artifacts", ACCOUNTS[account].alias);
    let user_name = match p {
        Principal::IamKey(u) | Principal::IamConsole { user: u, .. } => u.name.clone(),
        Principal::Sso { session, .. } => (*session).to_owned(),
    };
    let data_event = matches!(call, Call::GetObject | Call::PutObject);
    let host = match svc {
        "iam" => "iam.amazonaws.com".to_owned(),
        "sts" => "sts.amazonaws.com".to_owned(),
        "s3" if data_event => format!("{bucket}.s3.{region}.amazonaws.com"),
        "s3" => format!("s3.{region}.amazonaws.com"),
        _ => format!("{svc}.{region}.amazonaws.com"),
    };
    let object_key = format!("releases/build-{}.zip", rng.range(1000, 9999));
    let request = match call {
        Call::GetCallerIdentity | Call::ListUsers | Call::ListRoles | Call::GetAccountSummary => {
            Value::Null
        }
        Call::GetAccountAuthorizationDetails => {
            json!({ "filter": ["User", "Role", "Group", "LocalManagedPolicy"] })
        }
        Call::ListAttachedUserPolicies | Call::ListGroupsForUser | Call::ListUserPolicies => {
            json!({ "userName": user_name })
        }
        Call::ListBuckets => json!({ "Host": host }),
        Call::DescribeInstances => json!({ "instancesSet": {}, "filterSet": {} }),
        Call::DescribeVolumes => {
            json!({ "volumeSet": {}, "filterSet": { "items": [{ "name": "tag:Backup", "valueSet": { "items": [{ "value": "daily" }] } }] } })
        }
        Call::CreateSnapshot => {
            json!({ "volumeId": format!("vol-0{}", rng.hex(16)), "description": "daily backup" })
        }
        Call::CreateTags => {
            json!({ "resourcesSet": { "items": [{ "resourceId": format!("snap-0{}", rng.hex(16)) }] }, "tagSet": { "items": [{ "key": "Backup", "value": "daily" }] } })
        }
        Call::GetObject | Call::PutObject => {
            json!({ "bucketName": bucket, "Host": host, "key": object_key })
        }
        Call::UpdateFunctionCode => {
            json!({ "functionName": "contoso-api", "publish": true, "dryRun": false })
        }
        Call::GetFunction => json!({ "functionName": "contoso-api" }),
        Call::GetMetricData => {
            json!({ "startTime": iso(t - 3_600_000), "endTime": iso(t), "maxDatapoints": 1440 })
        }
        Call::DescribeAlarms => json!({ "stateValue": "ALARM", "maxRecords": 100 }),
        Call::GetParameter => json!({ "name": "/contoso/app/db-host", "withDecryption": false }),
        Call::FilterLogEvents => {
            json!({ "logGroupName": "/aws/lambda/contoso-api", "startTime": t - 900_000, "interleaved": true })
        }
    };
    let response = match call {
        _ if denied => Value::Null,
        Call::CreateSnapshot => {
            json!({ "snapshotId": format!("snap-0{}", rng.hex(16)), "status": "pending", "startTime": t })
        }
        Call::CreateTags => json!({ "_return": true }),
        Call::UpdateFunctionCode => {
            json!({ "functionName": "contoso-api", "state": "Active", "lastUpdateStatus": "InProgress" })
        }
        _ => Value::Null,
    };
    let request_id = if svc == "s3" {
        rng.base32(16)
    } else {
        rng.uuid()
    };
    let mut rec = Map::new();
    rec.insert(
        "eventVersion".into(),
        json!(if matches!(svc, "iam" | "sts") {
            "1.09"
        } else {
            "1.08"
        }),
    );
    rec.insert("userIdentity".into(), p.identity());
    rec.insert("eventTime".into(), json!(iso(t)));
    rec.insert("eventSource".into(), json!(format!("{svc}.amazonaws.com")));
    rec.insert("eventName".into(), json!(name));
    rec.insert("awsRegion".into(), json!(region));
    rec.insert("sourceIPAddress".into(), json!(ip));
    rec.insert("userAgent".into(), json!(ua));
    if denied {
        let (code, message) = match svc {
            "ec2" => (
                "Client.UnauthorizedOperation".to_owned(),
                "You are not authorized to perform this operation.".to_owned(),
            ),
            "s3" => ("AccessDenied".to_owned(), "Access Denied".to_owned()),
            _ => {
                let resource = match call {
                    Call::ListAttachedUserPolicies
                    | Call::ListGroupsForUser
                    | Call::ListUserPolicies => {
                        format!("user {user_name}")
                    }
                    Call::ListUsers => format!("arn:aws:iam::{acct}:user/"),
                    Call::ListRoles => format!("arn:aws:iam::{acct}:role/"),
                    _ => "*".to_owned(),
                };
                (
                    "AccessDenied".to_owned(),
                    format!(
                        "User: {} is not authorized to perform: {svc}:{name} on resource: {resource} because no identity-based policy allows the {svc}:{name} action",
                        p.arn()
                    ),
                )
            }
        };
        rec.insert("errorCode".into(), json!(code));
        rec.insert("errorMessage".into(), json!(message));
    }
    rec.insert("requestParameters".into(), request);
    rec.insert("responseElements".into(), response);
    if svc == "s3" {
        rec.insert("additionalEventData".into(), json!({
            "SignatureVersion": "SigV4",
            "CipherSuite": "TLS_AES_128_GCM_SHA256",
            "bytesTransferredIn": if call == Call::PutObject { rng.range(20_000, 9_000_000) } else { 0 },
            "AuthenticationMethod": "AuthHeader",
            "x-amz-id-2": format!("{}=", rng.alnum(75)),
            "bytesTransferredOut": if denied { 243 } else { rng.range(300, 90_000) },
        }));
    }
    if data_event {
        rec.insert("resources".into(), json!([
            { "type": "AWS::S3::Object", "ARN": format!("arn:aws:s3:::{bucket}/{object_key}") },
            { "accountId": acct, "type": "AWS::S3::Bucket", "ARN": format!("arn:aws:s3:::{bucket}") },
        ]));
    }
    rec.insert("requestID".into(), json!(request_id));
    rec.insert("eventID".into(), json!(rng.uuid()));
    rec.insert("readOnly".into(), json!(read_only));
    rec.insert("eventType".into(), json!("AwsApiCall"));
    rec.insert("managementEvent".into(), json!(!data_event));
    rec.insert("recipientAccountId".into(), json!(acct));
    rec.insert(
        "eventCategory".into(),
        json!(if data_event { "Data" } else { "Management" }),
    );
    rec.insert("tlsDetails".into(), tls(&host));
    if p.is_console_session() {
        rec.insert("sessionCredentialFromConsole".into(), json!("true"));
    }
    Value::Object(rec)
}
