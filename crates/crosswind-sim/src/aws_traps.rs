//! The false-positive traps of the AWS post-compromise signals (docs/detections.md): an admin
//! rotating access keys (a service user's, then their own) from the office every Monday (`aws_credential_persistence` 16 per
//! rotation, nothing else), and a CI role that starts deploying CloudFormation stacks to a new
//! region on the window's first weekday (CreateStack, then CloudFormation's RunInstances), while
//! the account's stored history is shorter than the 7 days `aws_unused_region` needs, and keeps
//! deploying there on every weekday after; and a notification service (`svc-notifications`)
//! that checks its SES quota every hour and, before its daily digest, whether sending is on —
//! two account-level messaging calls a day, from the one EC2 address it always uses (so never
//! ×1.5 for a new IP): `aws_messaging_abuse` 56 on the first day, a repeat inside 24 h is
//! silent, and habitual (14) from the third day. None must ever reach a finding.

use crate::benign::Records;
use crate::cloudtrail::{self, ConsoleUser, Principal};
use crate::cloudtrail_post::{
    self as post, Actor, CLOUDFORMATION, CiRole, create_access_key, delete_access_key,
    list_access_keys, ses_call,
};
use crate::rng::Rng;
use crate::time::{DAY, HOUR, MIN, SEC, weekday};
use crate::world::{ACCOUNTS, Aws, CLOUD_ISPS, IamUser, IpAlloc, Job, World};

/// The region the CI team adopts (never used by anything else the simulator writes).
pub const CI_NEW_REGION: &str = "eu-central-1";
/// The CI role's stack in the new region.
const CI_STACK: &str = "contoso-api-eu";
/// The service user whose key the admin rotates (a reporting job the simulator does not run, so
/// no simulated record goes on using the deleted key).
const ROTATED_SERVICE: &str = "svc-reporting";

struct Out<'a> {
    rng: Rng,
    start: i64,
    end: i64,
    out: &'a mut Records,
}

impl Out<'_> {
    fn inside(&self, t: i64) -> bool {
        t >= self.start && t < self.end
    }

    fn ct(&mut self, t: i64, v: serde_json::Value) {
        if self.inside(t) {
            self.out.cloudtrail.push((t, v));
        }
    }
}

/// The CI role (account 0), from its own PRNG stream so the world's other draws stay put.
pub(crate) fn ci_role(seed: u64) -> CiRole {
    let mut rng = Rng::derive(seed, "ci-role");
    CiRole {
        account: 0,
        name: "github-actions-deploy",
        session: "GitHubActions",
        role_id: format!("AROA{}", rng.base32(17)),
    }
}

/// The notification service's IAM user (not linked to anybody, not among the tenant's
/// `service_accounts`).
const SES_SENDER: &str = "svc-notifications";
/// Its SDK, on the EC2 instance it runs on.
const SES_SENDER_UA: &str = "aws-sdk-java/2.29.20 Linux/6.1.115-126.197.amzn2023.x86_64 OpenJDK_64-Bit_Server_VM/21.0.5+11-LTS Java/21.0.5 vendor/Amazon.com_Inc. md/internal exec-env/AWS_ECS_EC2 io/sync http/Apache cfg/retry-mode/legacy";

/// The notification service (account 0): its IAM user and the EC2 address it sends from, from
/// its own PRNG stream (the world's other draws stay put), in a /24 no one else in `world` uses.
pub(crate) fn ses_sender(world: &World, seed: u64) -> (IamUser, String) {
    let mut rng = Rng::derive(seed, "ses-sender");
    let user = IamUser::new(&mut rng, 0, SES_SENDER.to_owned(), None, false);
    let slash24 = |ip: &str| ip.rsplit_once('.').map_or(ip, |(p, _)| p).to_owned();
    let taken: std::collections::BTreeSet<String> = world
        .users
        .iter()
        .map(|u| slash24(&u.net.ip))
        .chain(world.guests.iter().map(|g| slash24(&g.net.ip)))
        .chain(world.automation.iter().map(|a| slash24(&a.ip)))
        .collect();
    let mut alloc = IpAlloc::new();
    let mut ip = alloc.alloc(&mut rng, CLOUD_ISPS).0;
    while taken.contains(&slash24(&ip)) {
        ip = alloc.alloc(&mut rng, CLOUD_ISPS).0;
    }
    (user, ip)
}

/// When the CI role first deploys to the new region: the window's first weekday, 15:00 UTC
/// (the pipelines' hours), or `None` when that is not inside the window.
pub(crate) fn ci_adoption(start: i64, end: i64) -> Option<i64> {
    let first = start.div_euclid(DAY);
    (first..first + 7)
        .map(|d| d * DAY + 15 * HOUR)
        .find(|&t| t >= start && weekday(t) < 5)
        .filter(|&t| t < end)
}

/// Writes the traps' records of the window into `out`; returns each trap identity and its kind.
pub(crate) fn generate(
    world: &World,
    seed: u64,
    start: i64,
    end: i64,
    out: &mut Records,
) -> Vec<(String, &'static str)> {
    let mut o = Out {
        rng: Rng::derive(seed, "aws-traps"),
        start,
        end,
        out,
    };
    let mut traps = Vec::new();
    let days = start.div_euclid(DAY)..=end.div_euclid(DAY);

    // The admin: the first IAM console user (MFA), rotating a service user's key, then their own.
    let admin = world.users.iter().find_map(|u| match &u.aws {
        Aws::IamConsole(iam) => Some((u, iam)),
        _ => None,
    });
    if let Some((u, iam)) = admin {
        let mut keys = [
            (
                ROTATED_SERVICE.to_owned(),
                format!("AKIA{}", o.rng.base32(16)),
            ),
            (iam.name.clone(), iam.access_key.clone()),
        ];
        let mut rotated = false;
        for day in days.clone() {
            let login = day * DAY - u.net.place.tz_min * MIN + u.work_start_min * MIN + 90 * MIN;
            if weekday(day * DAY) != 0 || !o.inside(login) {
                continue;
            }
            rotated = true;
            let v = cloudtrail::console_login(
                &mut o.rng,
                login,
                &ConsoleUser::Iam(iam),
                &u.net.ip,
                u.device.ua,
                true,
                true,
            );
            o.ct(login, v);
            let session = format!("ASIA{}", o.rng.base32(16));
            let who = Actor::of(&Principal::IamConsole {
                user: iam,
                key: &session,
                created: login,
                mfa: true,
            });
            let mut t = login + 2 * MIN;
            for (user, current) in keys.iter_mut() {
                let v = list_access_keys(&mut o.rng, t, &who, &u.net.ip, u.device.ua, user);
                o.ct(t, v);
                t += o.rng.range(20 * SEC, 50 * SEC);
                let (v, new) = create_access_key(&mut o.rng, t, &who, &u.net.ip, u.device.ua, user);
                o.ct(t, v);
                // The new key goes where it is used; the old one is deleted after.
                t += o.rng.range(6 * MIN, 12 * MIN);
                let v =
                    delete_access_key(&mut o.rng, t, &who, &u.net.ip, u.device.ua, user, current);
                o.ct(t, v);
                *current = new;
                t += o.rng.range(MIN, 3 * MIN);
            }
        }
        if rotated {
            traps.push((iam.canonical(), "key_rotation"));
        }
    }

    // The CI role: adopts the new region on the first weekday, then deploys there every weekday.
    let runner = world
        .automation
        .iter()
        .find(|a| a.job == Job::Deploy && a.user.account == 0);
    if let (Some(runner), Some(adopted)) = (runner, ci_adoption(start, end)) {
        let role = ci_role(seed);
        for day in days {
            let t = day * DAY + 15 * HOUR + o.rng.range(0, 40 * MIN);
            let t = if day == adopted.div_euclid(DAY) {
                adopted
            } else {
                t
            };
            if t < adopted || weekday(t) >= 5 || !o.inside(t) {
                continue;
            }
            let key = format!("ASIA{}", o.rng.base32(16));
            let who = Actor::web_identity_role(&role, &key, t - 20 * SEC);
            let create = t == adopted;
            let v = post::stack(
                &mut o.rng,
                t,
                &who,
                &runner.ip,
                runner.ua,
                CI_NEW_REGION,
                CI_STACK,
                create,
            );
            o.ct(t, v);
            if create {
                // CloudFormation launches the stack's instances with the role's session.
                let at = t + o.rng.range(40 * SEC, 90 * SEC);
                let v = post::run_instances(
                    &mut o.rng,
                    at,
                    &who,
                    CLOUDFORMATION,
                    CLOUDFORMATION,
                    CI_NEW_REGION,
                    "ami-0d1ddd83282187d18",
                    "t3.medium",
                    2,
                );
                o.ct(at, v);
            }
        }
        traps.push((role.session_arn(), "ci_new_region"));
    }

    // The notification service: the quota every hour, and before the 07:30 UTC digest whether
    // sending is enabled, then the quota again (the sends themselves are not in the trail).
    let (sender, ip) = ses_sender(world, seed);
    let who = Actor::of(&Principal::IamKey(&sender));
    let region = ACCOUNTS[sender.account].region;
    let ses = |o: &mut Out<'_>, t: i64, name: &str| {
        let v = ses_call(
            &mut o.rng,
            t,
            &who,
            &ip,
            SES_SENDER_UA,
            region,
            name,
            serde_json::Value::Null,
        );
        o.ct(t, v);
    };
    let mut wrote = false;
    let hours = start.div_euclid(HOUR)..end.div_euclid(HOUR) + 1;
    for hour in hours {
        let t = hour * HOUR + o.rng.range(0, 90 * SEC);
        if o.inside(t) {
            ses(&mut o, t, "GetSendQuota");
            wrote = true;
        }
        if hour.rem_euclid(24) == 7 {
            let digest = hour * HOUR + 30 * MIN + o.rng.range(0, 5 * MIN);
            for (k, name) in ["GetAccountSendingEnabled", "GetSendQuota"]
                .into_iter()
                .enumerate()
            {
                let t = digest + k as i64 * o.rng.range(SEC, 4 * SEC);
                if o.inside(t) {
                    ses(&mut o, t, name);
                }
            }
        }
    }
    if wrote {
        traps.push((sender.arn(), "ses_sender"));
    }
    traps
}
