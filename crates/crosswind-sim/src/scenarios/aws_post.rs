//! The AWS post-compromise scenarios (docs/detections.md, "AWS CloudTrail"): a stolen key that
//! enumerates, then creates an access key for another IAM user (a way back in), and a stolen key
//! that enumerates, then launches instances in a region the account never used. Each pairs its
//! post-compromise signal with the recon burst before it, as an attack does: on its own neither
//! `aws_credential_persistence` (16) nor `aws_unused_region` (40) is ever a finding.

use super::{ATTACKER_BOTO_UA, Sc, Victims, attack_ip, iam};
use crate::cloudtrail::{self, Call, Principal};
use crate::cloudtrail_post::{self as post, Actor, service_user};
use crate::time::{MIN, SEC};
use crate::world::{ACCOUNTS, Aws, World};

/// The attack network both come from (the VPS range of aws-recon: never seen in Entra).
const NET: usize = 3;
/// The region the miner launches in: nothing the simulator writes ever uses it otherwise.
pub(crate) const MINER_REGION: &str = "ap-southeast-1";
/// The service user the backdoor key is created for (a job that runs every 5 min: its keys
/// are the least watched).
const BACKDOOR_USER: &str = "svc-monitoring";

pub(super) fn key_persistence(world: &World, v: &Victims, sc: &mut Sc<'_>, at: i64) {
    let victim = &world.users[v.persist];
    let Some(user) = iam(victim) else { return };
    let ip = attack_ip(&mut sc.rng, NET);
    let p = Principal::IamKey(user);
    // Who am I, who else is here, what may I do: five calls in well under 2 min.
    let mut t = at;
    for call in [
        Call::GetCallerIdentity,
        Call::ListUsers,
        Call::ListAttachedUserPolicies,
        Call::ListGroupsForUser,
        Call::ListRoles,
    ] {
        let rec = cloudtrail::api_call(&mut sc.rng, t, &p, &ip, ATTACKER_BOTO_UA, call, false);
        sc.ct(t, rec);
        t += sc.rng.range(5 * SEC, 15 * SEC);
    }
    // A key for a service user (another identity: it survives the victim's key being revoked).
    let target = service_user(&world.automation, user.account, BACKDOOR_USER)
        .map(|a| a.user.clone())
        .or_else(|| {
            world.users.iter().find_map(|u| match &u.aws {
                Aws::IamKey(o) | Aws::IamConsole(o) if o.name != user.name => Some(o.clone()),
                _ => None,
            })
        });
    let Some(target) = target else { return };
    let who = Actor::of(&p);
    let t = at + 3 * MIN + sc.rng.range(0, 30 * SEC);
    let rec = post::list_access_keys(&mut sc.rng, t, &who, &ip, ATTACKER_BOTO_UA, &target.name);
    sc.ct(t, rec);
    let t = t + sc.rng.range(20 * SEC, 40 * SEC);
    let (rec, new_key) =
        post::create_access_key(&mut sc.rng, t, &who, &ip, ATTACKER_BOTO_UA, &target.name);
    sc.ct(t, rec);
    // The new key tried once, from the same place.
    let t = t + sc.rng.range(40 * SEC, 90 * SEC);
    let mut backdoor = target.clone();
    backdoor.access_key = new_key;
    sc.attacker_call(
        t,
        &Principal::IamKey(&backdoor),
        &ip,
        Call::GetCallerIdentity,
    );

    let name = user.canonical();
    sc.truth.identities.push(name.clone());
    sc.truth.ips.push(ip.clone());
    // Nothing denied; the IP is new for the identity (×1.5).
    sc.expect(&name, "aws_recon_burst", 56.0 * 1.5, Some(&ip));
    // Another signal of the identity minutes before: ×3.
    sc.expect(&name, "aws_credential_persistence", 16.0 * 3.0, Some(&ip));
}

pub(super) fn unused_region(world: &World, v: &Victims, sc: &mut Sc<'_>, at: i64) {
    let victim = &world.users[v.region];
    let Some(user) = iam(victim) else { return };
    let ip = attack_ip(&mut sc.rng, NET);
    let p = Principal::IamKey(user);
    let who = Actor::of(&p);
    let home = ACCOUNTS[user.account].region;
    // Which account, which regions, what network: a miner's checks, in the CLI's default region.
    let mut t = at;
    sc.attacker_call(t, &p, &ip, Call::GetCallerIdentity);
    for name in ["DescribeRegions", "DescribeVpcs", "DescribeSecurityGroups"] {
        t += sc.rng.range(4 * SEC, 12 * SEC);
        let rec = post::ec2_describe(&mut sc.rng, t, &who, &ip, ATTACKER_BOTO_UA, name, home);
        sc.ct(t, rec);
    }
    t += sc.rng.range(4 * SEC, 12 * SEC);
    let rec = cloudtrail::api_call(
        &mut sc.rng,
        t,
        &p,
        &ip,
        ATTACKER_BOTO_UA,
        Call::DescribeInstances,
        false,
    );
    sc.ct(t, rec);
    // Then compute far from where anybody looks, straight from a public image id.
    let t = at + 4 * MIN + sc.rng.range(0, 60 * SEC);
    let rec = post::run_instances(
        &mut sc.rng,
        t,
        &who,
        &ip,
        ATTACKER_BOTO_UA,
        MINER_REGION,
        "ami-0c802847a7dd848c0",
        "c5.18xlarge",
        8,
    );
    sc.ct(t, rec);

    let name = user.canonical();
    sc.truth.identities.push(name.clone());
    sc.truth.ips.push(ip.clone());
    sc.expect(&name, "aws_recon_burst", 56.0 * 1.5, Some(&ip));
    // The account has a week of history by then (the scenario's earliest start), none of it in
    // the miner's region.
    sc.expect(&name, "aws_unused_region", 40.0, Some(&ip));
}
