//! The false-positive traps of the AWS post-compromise signals (docs/detections.md): an admin
//! rotating access keys (a service user's, then their own) from the office every Monday (`aws_credential_persistence` 16 per
//! rotation, nothing else), and a CI role that starts deploying CloudFormation stacks to a new
//! region on the window's first weekday (CreateStack, then CloudFormation's RunInstances), while
//! the account's stored history is shorter than the 7 days `aws_unused_region` needs, and keeps
//! deploying there on every weekday after. Neither must ever reach a finding.

use crate::benign::Records;
use crate::cloudtrail::{self, ConsoleUser, Principal};
use crate::cloudtrail_post::{
    self as post, Actor, CLOUDFORMATION, CiRole, create_access_key, delete_access_key,
    list_access_keys,
};
use crate::rng::Rng;
use crate::time::{DAY, HOUR, MIN, SEC, weekday};
use crate::world::{Aws, Job, World};

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
    traps
}
