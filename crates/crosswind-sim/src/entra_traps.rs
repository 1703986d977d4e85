//! The false-positive traps of the Entra-side signals (docs/detections.md): a user who now and
//! then denies one or two MFA prompts before approving, and a mail-room device that syncs over
//! Exchange ActiveSync (a legacy protocol) every day. Neither must ever reach a finding.

use crate::benign::Records;
use crate::cloudtrail::{self, Call, ConsoleUser, Principal};
use crate::rng::Rng;
use crate::scenarios::sso_office_users;
use crate::signin::{self, Auth, DeviceView, MFA_DECLINED, MFA_NO_RESPONSE, NO_RISK, SignIn, Who};
use crate::time::{DAY, MIN, SEC, weekday};
use crate::world::{APP_AWS_SSO, APP_EXO_ROPC, APP_OFFICE, Aws, Device, HOME, Kind, World};

/// The mail-room scanner's mail client.
static EAS_DEVICE: Device = Device {
    os: "Android",
    browser: "",
    ua: "Android-SAMSUNG-SM-X200/101.50001",
    managed: false,
    trust: "",
};

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

    fn signin(&mut self, s: &SignIn<'_>) {
        if self.inside(s.time) {
            let v = signin::build(&mut self.rng, s);
            self.out.signins.push((s.time, v));
        }
    }
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
        rng: Rng::derive(seed, "entra-traps"),
        start,
        end,
        out,
    };
    let mut traps = Vec::new();
    let days = start.div_euclid(DAY)..=end.div_euclid(DAY);

    // The denier: an Identity Center user (the MFA fatigue victim is the first; this is the
    // second), so a fatigue signal raised by mistake would meet their AWS console login.
    if let Some(i) = sso_office_users(world).nth(1)
        && let Aws::Sso(role) = &world.users[i].aws
    {
        let u = &world.users[i];
        let who = Who {
            upn: &u.upn,
            display: &u.display,
            user_id: &u.user_id,
            guest: false,
            home_tenant: &HOME,
        };
        let view = DeviceView {
            device: u.device,
            device_id: &u.device_id,
            name: &u.device_name,
            ua: u.device.ua,
        };
        for day in days.clone() {
            let t0 = day * DAY - u.net.place.tz_min * MIN + 9 * 60 * MIN + o.rng.range(0, 40 * MIN);
            let base = SignIn {
                time: t0,
                who,
                app: &APP_OFFICE,
                ip: &u.net.ip,
                asn: u.net.asn,
                place: u.net.place,
                device: view,
                client_app: "Browser",
                protocol: "none",
                interactive: true,
                error: 0,
                auth: Auth::FreshMfa(u.mfa_method),
                risk: NO_RISK,
            };
            // One or two prompts missed or declined by mistake, then approved.
            let refused = 1 + o.rng.index(2) as i64;
            for k in 0..refused {
                let why = if k == 0 {
                    MFA_NO_RESPONSE
                } else {
                    MFA_DECLINED
                };
                o.signin(&SignIn {
                    time: t0 + k * 35 * SEC,
                    error: 500121,
                    auth: Auth::MfaRefused(why),
                    ..base
                });
            }
            let ok = t0 + refused * 35 * SEC + 20 * SEC;
            o.signin(&SignIn { time: ok, ..base });
            // Then the AWS console, as every morning.
            let sso = ok + 25 * MIN;
            o.signin(&SignIn {
                time: sso,
                app: &APP_AWS_SSO,
                auth: Auth::Token,
                ..base
            });
            let login = sso + 40 * SEC;
            if o.inside(login) {
                let v = cloudtrail::console_login(
                    &mut o.rng,
                    login,
                    &ConsoleUser::Sso {
                        role,
                        session: &u.upn,
                    },
                    &u.net.ip,
                    u.device.ua,
                    true,
                    false,
                );
                o.out.cloudtrail.push((login, v));
                let key = format!("ASIA{}", o.rng.base32(16));
                let p = Principal::Sso {
                    role,
                    session: &u.upn,
                    key: &key,
                    created: login,
                };
                let t = login + 3 * MIN;
                if o.inside(t) {
                    let v = cloudtrail::api_call(
                        &mut o.rng,
                        t,
                        &p,
                        &u.net.ip,
                        u.device.ua,
                        Call::DescribeInstances,
                        false,
                    );
                    o.out.cloudtrail.push((t, v));
                }
            }
        }
        traps.push((u.upn.clone(), "mfa_denier"));
    }

    // The mail-room scanner: a shared mailbox syncing over Exchange ActiveSync from the office
    // all day, every day.
    if let Some(office) = world.users.iter().find(|u| u.kind == Kind::Office) {
        let upn = format!("mailroom@{}", HOME.domain);
        let user_id = o.rng.uuid();
        let who = Who {
            upn: &upn,
            display: "Mail Room Scanner",
            user_id: &user_id,
            guest: false,
            home_tenant: &HOME,
        };
        for day in days {
            let weekend = weekday(day * DAY) >= 5;
            let mut t = day * DAY - office.net.place.tz_min * MIN + 6 * 60 * MIN;
            let until = t + if weekend { 2 * 60 * MIN } else { 12 * 60 * MIN };
            while t < until {
                o.signin(&SignIn {
                    time: t,
                    who,
                    app: &APP_EXO_ROPC,
                    ip: &office.net.ip,
                    asn: office.net.asn,
                    place: office.net.place,
                    device: DeviceView {
                        device: &EAS_DEVICE,
                        device_id: "",
                        name: "",
                        ua: EAS_DEVICE.ua,
                    },
                    client_app: "Exchange ActiveSync",
                    protocol: "none",
                    interactive: false,
                    error: 0,
                    auth: Auth::PasswordOnly,
                    risk: NO_RISK,
                });
                t += o.rng.range(40 * MIN, 70 * MIN);
            }
        }
        traps.push((upn, "mail_room"));
    }
    traps
}
