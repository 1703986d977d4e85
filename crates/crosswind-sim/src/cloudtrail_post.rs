//! CloudTrail records of the calls the post-compromise scenarios and their traps make (IAM access
//! keys, EC2 RunInstances, CloudFormation stacks), shaped as CloudTrail logs them: the Stratus Red
//! Team and Invictus records in the shared data for CreateAccessKey / DeleteAccessKey /
//! RunInstances, the CloudTrail user guide's `userIdentity` examples for assumed roles.

use serde_json::{Map, Value, json};

use crate::cloudtrail::Principal;
use crate::rng::Rng;
use crate::time::{civil_from_days, iso};
use crate::world::{ACCOUNTS, Automation};

/// What CloudFormation writes as `sourceIPAddress`, `userAgent` and `invokedBy` for the calls it
/// makes on the stack creator's behalf.
pub(crate) const CLOUDFORMATION: &str = "cloudformation.amazonaws.com";

/// Whoever made a call: its `userIdentity`, account, and whether the console made it.
pub(crate) struct Actor {
    pub identity: Value,
    pub account: usize,
    pub console: bool,
}

impl Actor {
    pub(crate) fn of(p: &Principal<'_>) -> Actor {
        Actor {
            identity: p.identity(),
            account: p.account(),
            console: !matches!(p, Principal::IamKey(_)),
        }
    }

    /// A role session obtained through `AssumeRoleWithWebIdentity` (GitHub Actions OIDC).
    pub(crate) fn web_identity_role(role: &CiRole, key: &str, created: i64) -> Actor {
        let acct = ACCOUNTS[role.account].id;
        Actor {
            identity: json!({
                "type": "AssumedRole",
                "principalId": format!("{}:{}", role.role_id, role.session),
                "arn": role.session_arn(),
                "accountId": acct,
                "accessKeyId": key,
                "sessionContext": {
                    "sessionIssuer": {
                        "type": "Role",
                        "principalId": role.role_id,
                        "arn": format!("arn:aws:iam::{acct}:role/{}", role.name),
                        "accountId": acct,
                        "userName": role.name,
                    },
                    "webIdFederationData": {
                        "federatedProvider": format!("arn:aws:iam::{acct}:oidc-provider/token.actions.githubusercontent.com"),
                        "attributes": {},
                    },
                    "attributes": { "creationDate": iso(created), "mfaAuthenticated": "false" },
                },
            }),
            account: role.account,
            console: false,
        }
    }
}

/// The deployment role a CI pipeline assumes (GitHub Actions OIDC, session "GitHubActions").
pub(crate) struct CiRole {
    pub account: usize,
    pub name: &'static str,
    pub session: &'static str,
    pub role_id: String,
}

impl CiRole {
    pub(crate) fn session_arn(&self) -> String {
        format!(
            "arn:aws:sts::{}:assumed-role/{}/{}",
            ACCOUNTS[self.account].id, self.name, self.session
        )
    }
}

/// `createDate` as IAM's CloudTrail records write it: "Jul 10, 2023 12:24:29 PM".
fn iam_date(t: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t.div_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    let (h, min, sec) = (s / 3600, s % 3600 / 60, s % 60);
    let (h12, ampm) = match h {
        0 => (12, "AM"),
        1..=11 => (h, "AM"),
        12 => (12, "PM"),
        _ => (h - 12, "PM"),
    };
    format!(
        "{} {d}, {y} {h12}:{min:02}:{sec:02} {ampm}",
        MONTHS[(m as usize).saturating_sub(1) % 12]
    )
}

/// One call's record. `service` is the event source's first label (`iam`, `ec2`, …).
#[allow(clippy::too_many_arguments)]
fn record(
    rng: &mut Rng,
    t: i64,
    who: &Actor,
    ip: &str,
    ua: &str,
    service: &str,
    name: &str,
    region: &str,
    read_only: bool,
    request: Value,
    response: Value,
) -> Value {
    let acct = ACCOUNTS[who.account].id;
    let mut rec = Map::new();
    rec.insert(
        "eventVersion".into(),
        json!(if service == "iam" { "1.09" } else { "1.08" }),
    );
    let mut identity = who.identity.clone();
    let by_service = ip == CLOUDFORMATION;
    if by_service && let Some(m) = identity.as_object_mut() {
        m.insert("invokedBy".into(), json!(CLOUDFORMATION));
    }
    rec.insert("userIdentity".into(), identity);
    rec.insert("eventTime".into(), json!(iso(t)));
    rec.insert(
        "eventSource".into(),
        json!(format!("{service}.amazonaws.com")),
    );
    rec.insert("eventName".into(), json!(name));
    rec.insert("awsRegion".into(), json!(region));
    rec.insert("sourceIPAddress".into(), json!(ip));
    rec.insert("userAgent".into(), json!(ua));
    rec.insert("requestParameters".into(), request);
    rec.insert("responseElements".into(), response);
    rec.insert("requestID".into(), json!(rng.uuid()));
    rec.insert("eventID".into(), json!(rng.uuid()));
    rec.insert("readOnly".into(), json!(read_only));
    rec.insert("eventType".into(), json!("AwsApiCall"));
    rec.insert("managementEvent".into(), json!(true));
    rec.insert("recipientAccountId".into(), json!(acct));
    rec.insert("eventCategory".into(), json!("Management"));
    if !by_service {
        let host = if service == "iam" {
            "iam.amazonaws.com".to_owned()
        } else if service == "ses" {
            // SES (v1 and v2) is reached at email.<region>.amazonaws.com and logged as ses.
            format!("email.{region}.amazonaws.com")
        } else {
            format!("{service}.{region}.amazonaws.com")
        };
        rec.insert(
            "tlsDetails".into(),
            json!({ "tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256", "clientProvidedHostHeader": host }),
        );
    }
    if who.console {
        rec.insert("sessionCredentialFromConsole".into(), json!("true"));
    }
    Value::Object(rec)
}

/// A new long-term key for IAM user `user` (logged in us-east-1, as IAM is).
pub(crate) fn create_access_key(
    rng: &mut Rng,
    t: i64,
    who: &Actor,
    ip: &str,
    ua: &str,
    user: &str,
) -> (Value, String) {
    let key = format!("AKIA{}", rng.base32(16));
    let rec = record(
        rng,
        t,
        who,
        ip,
        ua,
        "iam",
        "CreateAccessKey",
        "us-east-1",
        false,
        json!({ "userName": user }),
        json!({ "accessKey": {
            "accessKeyId": key,
            "status": "Active",
            "userName": user,
            "createDate": iam_date(t),
        } }),
    );
    (rec, key)
}

/// IAM user `user`'s key `key` deleted.
pub(crate) fn delete_access_key(
    rng: &mut Rng,
    t: i64,
    who: &Actor,
    ip: &str,
    ua: &str,
    user: &str,
    key: &str,
) -> Value {
    record(
        rng,
        t,
        who,
        ip,
        ua,
        "iam",
        "DeleteAccessKey",
        "us-east-1",
        false,
        json!({ "userName": user, "accessKeyId": key }),
        Value::Null,
    )
}

/// IAM user `user`'s keys listed (what the console shows before a rotation).
pub(crate) fn list_access_keys(
    rng: &mut Rng,
    t: i64,
    who: &Actor,
    ip: &str,
    ua: &str,
    user: &str,
) -> Value {
    record(
        rng,
        t,
        who,
        ip,
        ua,
        "iam",
        "ListAccessKeys",
        "us-east-1",
        true,
        json!({ "userName": user }),
        Value::Null,
    )
}

/// An EC2 Describe* call (`DescribeRegions`, `DescribeVpcs`, …) with an empty filter.
pub(crate) fn ec2_describe(
    rng: &mut Rng,
    t: i64,
    who: &Actor,
    ip: &str,
    ua: &str,
    name: &str,
    region: &str,
) -> Value {
    let request = match name {
        "DescribeRegions" => json!({ "regionSet": {}, "allRegions": true }),
        "DescribeVpcs" => json!({ "vpcSet": {}, "filterSet": {} }),
        "DescribeSecurityGroups" => {
            json!({ "securityGroupSet": {}, "securityGroupIdSet": {}, "filterSet": {} })
        }
        _ => json!({ "filterSet": {} }),
    };
    record(
        rng,
        t,
        who,
        ip,
        ua,
        "ec2",
        name,
        region,
        true,
        request,
        Value::Null,
    )
}

/// `count` instances of `instance_type` launched from `image` in `region`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_instances(
    rng: &mut Rng,
    t: i64,
    who: &Actor,
    ip: &str,
    ua: &str,
    region: &str,
    image: &str,
    instance_type: &str,
    count: u32,
) -> Value {
    let acct = ACCOUNTS[who.account].id;
    let items: Vec<Value> = (0..count)
        .map(|k| {
            json!({
                "instanceId": format!("i-0{}", rng.hex(16)),
                "imageId": image,
                "instanceState": { "code": 0, "name": "pending" },
                "privateDnsName": format!("ip-172-31-{}-{}.{region}.compute.internal", rng.range(0, 64), rng.range(2, 255)),
                "amiLaunchIndex": k,
                "instanceType": instance_type,
                "launchTime": t,
                "placement": { "availabilityZone": format!("{region}a"), "tenancy": "default" },
                "monitoring": { "state": "disabled" },
            })
        })
        .collect();
    let client_token = rng.uuid();
    let request_id = rng.uuid();
    let reservation = format!("r-0{}", rng.hex(16));
    record(
        rng,
        t,
        who,
        ip,
        ua,
        "ec2",
        "RunInstances",
        region,
        false,
        json!({
            "instancesSet": { "items": [{ "imageId": image, "minCount": count, "maxCount": count }] },
            "instanceType": instance_type,
            "blockDeviceMapping": {},
            "monitoring": { "enabled": false },
            "disableApiTermination": false,
            "disableApiStop": false,
            "clientToken": client_token,
        }),
        json!({
            "requestId": request_id,
            "reservationId": reservation,
            "ownerId": acct,
            "groupSet": {},
            "instancesSet": { "items": items },
        }),
    )
}

/// A CloudFormation stack created (`create`) or updated from a template in the CI bucket.
#[allow(clippy::too_many_arguments)]
pub(crate) fn stack(
    rng: &mut Rng,
    t: i64,
    who: &Actor,
    ip: &str,
    ua: &str,
    region: &str,
    stack_name: &str,
    create: bool,
) -> Value {
    let acct = ACCOUNTS[who.account].id;
    let template = format!(
        "https://{}-ci-artifacts.s3.amazonaws.com/templates/{stack_name}-{}.yaml",
        ACCOUNTS[who.account].alias,
        rng.hex(8)
    );
    let stack_id = format!(
        "arn:aws:cloudformation:{region}:{acct}:stack/{stack_name}/{}",
        rng.uuid()
    );
    record(
        rng,
        t,
        who,
        ip,
        ua,
        "cloudformation",
        if create { "CreateStack" } else { "UpdateStack" },
        region,
        false,
        json!({
            "stackName": stack_name,
            "templateURL": template,
            "capabilities": ["CAPABILITY_IAM"],
            "parameters": [{ "parameterKey": "Environment", "parameterValue": "prod" }],
        }),
        json!({ "stackId": stack_id }),
    )
}

/// An SES call (`GetSendQuota`, `VerifyEmailIdentity`, …) in `region`: read-only for the
/// Get*/List* checks, shaped as SES's CloudTrail records (`ses.amazonaws.com`, host
/// `email.<region>.amazonaws.com`, no response elements). The sends themselves (SendEmail,
/// SendRawEmail) are not written: `aws_messaging_abuse` reads only account-level calls.
#[allow(clippy::too_many_arguments)]
pub(crate) fn ses_call(
    rng: &mut Rng,
    t: i64,
    who: &Actor,
    ip: &str,
    ua: &str,
    region: &str,
    name: &str,
    request: Value,
) -> Value {
    let read_only = name.starts_with("Get") || name.starts_with("List");
    record(
        rng,
        t,
        who,
        ip,
        ua,
        "ses",
        name,
        region,
        read_only,
        request,
        Value::Null,
    )
}

/// The service user a rotation or a backdoor key targets: the account's job of that name.
pub(crate) fn service_user<'a>(
    automation: &'a [Automation],
    account: usize,
    name: &str,
) -> Option<&'a Automation> {
    automation
        .iter()
        .find(|a| a.user.account == account && a.user.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iam_dates_read_like_cloudtrail() {
        // 2023-07-10T12:24:29Z, as in the Stratus Red Team CreateAccessKey record.
        assert_eq!(iam_date(1_688_991_869_000), "Jul 10, 2023 12:24:29 PM");
        assert_eq!(iam_date(1_688_947_200_000), "Jul 10, 2023 12:00:00 AM");
    }
}
