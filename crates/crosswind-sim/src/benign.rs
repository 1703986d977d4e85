//! Benign traffic: office hours in each user's timezone, MFA, the odd typo, token refreshes,
//! Identity Center and IAM console sessions, developers' keys, automation, and the
//! false-positive traps (VPN flagged as anonymizing, travellers, partner guests, automation
//! that looks like reconnaissance).

use serde_json::Value;

use crate::cloudtrail::{self, Call, ConsoleUser, Principal};
use crate::rng::Rng;
use crate::signin::{self, Auth, DeviceView, NO_RISK, Risk, SignIn, Who};
use crate::time::{DAY, HOUR, MIN, SEC, weekday};
use crate::world::{
    APP_AWS_SSO, APP_OFFICE, APP_OFFICE_DESKTOP, APP_OUTLOOK, APP_PORTAL, APP_TEAMS, Automation,
    Aws, HOME, Job, Kind, PARTNER, TravelFlag, User, World,
};

/// Records with their event time, before sorting.
#[derive(Default)]
pub(crate) struct Records {
    pub signins: Vec<(i64, Value)>,
    pub cloudtrail: Vec<(i64, Value)>,
    /// Risk detections of no sign-in (the rest are derived from the sign-ins afterwards).
    pub risk_detections: Vec<crate::risk::Detection>,
}

pub(crate) const VPN_RISK: Risk = Risk {
    level: "medium",
    aggregated: "medium",
    state: "atRisk",
    detail: "none",
    events: &["anonymizedIPAddress"],
};
const TRAVEL_RISK: Risk = Risk {
    level: "low",
    aggregated: "low",
    state: "none",
    detail: "none",
    events: &["unlikelyTravel"],
};
const UNFAMILIAR_RISK: Risk = Risk {
    level: "low",
    aggregated: "low",
    state: "none",
    detail: "none",
    events: &["unfamiliarFeatures"],
};

static CONSOLE_CALLS: &[Call] = &[
    Call::DescribeInstances,
    Call::ListBuckets,
    Call::GetMetricData,
    Call::DescribeAlarms,
    Call::GetObject,
    Call::FilterLogEvents,
    Call::GetParameter,
];
static KEY_CALLS: &[Call] = &[
    Call::GetObject,
    Call::PutObject,
    Call::DescribeInstances,
    Call::GetParameter,
    Call::FilterLogEvents,
    Call::GetFunction,
];
static DEV_UAS: &[&str] = &[
    "aws-cli/2.22.4 md/awscrt#0.23.1 ua/2.0 os/macos#24.1.0 md/arch#arm64 lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#source md/prompt#off",
    "Boto3/1.35.54 md/Botocore#1.35.54 ua/2.0 os/linux#6.8.0-48-generic md/arch#x86_64 lang/python#3.11.10 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.35.54",
];

struct Ctx<'a> {
    rng: Rng,
    start: i64,
    end: i64,
    out: &'a mut Records,
}

impl Ctx<'_> {
    fn inside(&self, t: i64) -> bool {
        t >= self.start && t < self.end
    }

    fn signin(&mut self, s: &SignIn<'_>) {
        if self.inside(s.time) {
            let v = signin::build(&mut self.rng, s);
            self.out.signins.push((s.time, v));
        }
    }

    fn ct(&mut self, t: i64, v: Value) {
        if self.inside(t) {
            self.out.cloudtrail.push((t, v));
        }
    }
}

fn view(u: &User) -> DeviceView<'_> {
    DeviceView {
        device: u.device,
        device_id: &u.device_id,
        name: &u.device_name,
        ua: u.device.ua,
    }
}

fn who(u: &User) -> Who<'_> {
    Who {
        upn: &u.upn,
        display: &u.display,
        user_id: &u.user_id,
        guest: false,
        home_tenant: &HOME,
    }
}

/// Generates all benign records of the window into `out`.
pub(crate) fn generate(world: &World, seed: u64, start: i64, end: i64, out: &mut Records) {
    let mut ctx = Ctx {
        rng: Rng::derive(seed, "benign"),
        start,
        end,
        out,
    };
    let first_day = (start - DAY).div_euclid(DAY);
    let last_day = (end + DAY).div_euclid(DAY);
    for (i, u) in world.users.iter().enumerate() {
        let mut flagged = false;
        let mut key = String::new();
        let mut urng = Rng::derive(seed, &format!("user-{i}"));
        for day in first_day..=last_day {
            user_day(&mut ctx, &mut urng, u, day, &mut flagged, &mut key);
        }
    }
    for day in first_day..=last_day {
        for g in &world.guests {
            guest_day(&mut ctx, g, day);
        }
    }
    for a in &world.automation {
        automation(&mut ctx, a);
    }
}

fn user_day(
    ctx: &mut Ctx<'_>,
    rng: &mut Rng,
    u: &User,
    day: i64,
    flagged: &mut bool,
    key: &mut String,
) {
    let tz = u.net.place.tz_min * MIN;
    let local_midnight = day * DAY - tz;
    let workday = weekday(day * DAY) < 5;
    // Draw everything up front so a day's randomness does not depend on the window.
    let weekend_active = rng.chance(0.12);
    if !workday && !weekend_active {
        return;
    }
    let s = local_midnight + u.work_start_min * MIN + rng.range(0, 20 * MIN);
    let len = if workday {
        u.work_len_min * MIN
    } else {
        rng.range(40 * MIN, 100 * MIN)
    };
    let e = s + len;
    let typo = u.kind != Kind::Vpn && rng.chance(0.03);
    let base = SignIn {
        time: s,
        who: who(u),
        app: &APP_OFFICE,
        ip: &u.net.ip,
        asn: u.net.asn,
        place: u.net.place,
        device: view(u),
        client_app: "Browser",
        protocol: "none",
        interactive: true,
        error: 0,
        auth: Auth::FreshMfa(u.mfa_method),
        risk: NO_RISK,
    };
    let risk_for = |flagged: &mut bool, inside: bool| -> Risk {
        match u.kind {
            Kind::Vpn => VPN_RISK,
            Kind::Traveller(flag) if !*flagged && inside => {
                *flagged = true;
                if flag == TravelFlag::UnlikelyTravel {
                    TRAVEL_RISK
                } else {
                    UNFAMILIAR_RISK
                }
            }
            _ => NO_RISK,
        }
    };
    if typo {
        let t = s - rng.range(15 * SEC, 70 * SEC);
        ctx.signin(&SignIn {
            time: t,
            error: 50126,
            auth: Auth::PasswordOnly,
            ..base
        });
    }
    let inside = ctx.inside(s);
    let risk = risk_for(flagged, inside);
    ctx.signin(&SignIn { risk, ..base });

    let extra = rng.range(1, 5);
    for _ in 0..extra {
        let t = rng.range(s + 10 * MIN, e);
        let app = match rng.below(10) {
            0..=3 => &APP_OUTLOOK,
            4..=7 => &APP_TEAMS,
            _ => &APP_PORTAL,
        };
        let risk = if u.kind == Kind::Vpn {
            VPN_RISK
        } else {
            NO_RISK
        };
        ctx.signin(&SignIn {
            time: t,
            app,
            auth: Auth::Token,
            risk,
            ..base
        });
    }
    // Non-interactive token refreshes from the desktop clients.
    let mut t = s + rng.range(2 * MIN, 15 * MIN);
    while t < e {
        let app = if rng.chance(0.5) {
            &APP_TEAMS
        } else {
            &APP_OFFICE_DESKTOP
        };
        ctx.signin(&SignIn {
            time: t,
            app,
            client_app: "Mobile Apps and Desktop clients",
            protocol: "none",
            interactive: false,
            auth: Auth::Token,
            ..base
        });
        t += rng.range(45 * MIN, 75 * MIN);
    }

    match &u.aws {
        Aws::None => {}
        Aws::Sso(role) => {
            if !rng.chance(0.65) {
                return;
            }
            let t0 = rng.range(s + 20 * MIN, (e - 60 * MIN).max(s + 21 * MIN));
            let risk = if u.kind == Kind::Vpn {
                VPN_RISK
            } else {
                NO_RISK
            };
            ctx.signin(&SignIn {
                time: t0,
                app: &APP_AWS_SSO,
                auth: Auth::Token,
                risk,
                ..base
            });
            let login = t0 + rng.range(20 * SEC, 90 * SEC);
            let v = cloudtrail::console_login(
                &mut ctx.rng,
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
            ctx.ct(login, v);
            let session_key = format!("ASIA{}", rng.base32(16));
            let p = Principal::Sso {
                role,
                session: &u.upn,
                key: &session_key,
                created: login,
            };
            calls(
                ctx,
                rng,
                &p,
                login,
                &u.net.ip,
                u.device.ua,
                CONSOLE_CALLS,
                3,
                12,
            );
        }
        Aws::IamConsole(iam) => {
            if !rng.chance(0.7) {
                return;
            }
            let login = rng.range(s + 15 * MIN, (e - 60 * MIN).max(s + 16 * MIN));
            let v = cloudtrail::console_login(
                &mut ctx.rng,
                login,
                &ConsoleUser::Iam(iam),
                &u.net.ip,
                u.device.ua,
                true,
                true,
            );
            ctx.ct(login, v);
            let session_key = format!("ASIA{}", rng.base32(16));
            let p = Principal::IamConsole {
                user: iam,
                key: &session_key,
                created: login,
                mfa: true,
            };
            calls(
                ctx,
                rng,
                &p,
                login,
                &u.net.ip,
                u.device.ua,
                CONSOLE_CALLS,
                3,
                10,
            );
        }
        Aws::IamKey(iam) => {
            if key.is_empty() {
                key.push_str(DEV_UAS[rng.index(DEV_UAS.len())]);
            }
            let n = rng.range(4, 14);
            let mut times: Vec<i64> = (0..n).map(|_| rng.range(s + 5 * MIN, e)).collect();
            times.sort_unstable();
            let p = Principal::IamKey(iam);
            for t in times {
                let call = KEY_CALLS[rng.index(KEY_CALLS.len())];
                let v = cloudtrail::api_call(&mut ctx.rng, t, &p, &u.net.ip, key, call, false);
                ctx.ct(t, v);
            }
        }
    }
}

/// A console session's calls, 2–20 minutes apart (never a burst).
#[allow(clippy::too_many_arguments)]
fn calls(
    ctx: &mut Ctx<'_>,
    rng: &mut Rng,
    p: &Principal<'_>,
    from: i64,
    ip: &str,
    ua: &str,
    pool: &[Call],
    lo: i64,
    hi: i64,
) {
    let n = rng.range(lo, hi);
    let mut t = from;
    for _ in 0..n {
        t += rng.range(2 * MIN + 5 * SEC, 20 * MIN);
        let call = pool[rng.index(pool.len())];
        let v = cloudtrail::api_call(&mut ctx.rng, t, p, ip, ua, call, false);
        ctx.ct(t, v);
    }
}

fn guest_day(ctx: &mut Ctx<'_>, g: &crate::world::Guest, day: i64) {
    let tz = g.net.place.tz_min * MIN;
    if weekday(day * DAY) >= 5 {
        return;
    }
    let n = ctx.rng.range(0, 3);
    for _ in 0..n {
        let t = day * DAY - tz + 9 * HOUR + ctx.rng.range(0, 8 * HOUR);
        let app = if ctx.rng.chance(0.5) {
            &APP_TEAMS
        } else {
            &APP_OFFICE
        };
        let s = SignIn {
            time: t,
            who: Who {
                upn: &g.upn,
                display: &g.display,
                user_id: &g.user_id,
                guest: true,
                home_tenant: &PARTNER,
            },
            app,
            ip: &g.net.ip,
            asn: g.net.asn,
            place: g.net.place,
            device: DeviceView {
                device: g.device,
                device_id: "",
                name: "",
                ua: g.device.ua,
            },
            client_app: "Browser",
            protocol: "none",
            interactive: true,
            error: 0,
            auth: Auth::PasswordOnly,
            risk: NO_RISK,
        };
        ctx.signin(&s);
    }
}

fn automation(ctx: &mut Ctx<'_>, a: &Automation) {
    let p = Principal::IamKey(&a.user);
    let (period, phase, steps): (i64, i64, &[(i64, Call)]) = match a.job {
        Job::Backup => (
            30 * MIN,
            7 * MIN,
            &[
                (0, Call::GetCallerIdentity),
                (1, Call::DescribeVolumes),
                (3, Call::CreateSnapshot),
                (4, Call::CreateTags),
            ],
        ),
        Job::Monitoring => (
            5 * MIN,
            2 * MIN,
            &[(0, Call::DescribeInstances), (1, Call::GetMetricData)],
        ),
        Job::Deploy => (
            45 * MIN,
            11 * MIN,
            &[
                (0, Call::GetCallerIdentity),
                (6, Call::GetObject),
                (41, Call::UpdateFunctionCode),
                (47, Call::GetFunction),
            ],
        ),
        Job::Inventory => (
            12 * HOUR,
            2 * HOUR + 15 * MIN,
            &[
                (0, Call::GetCallerIdentity),
                (2, Call::ListUsers),
                (4, Call::ListRoles),
                (7, Call::GetAccountAuthorizationDetails),
                (11, Call::ListBuckets),
                (14, Call::DescribeInstances),
            ],
        ),
    };
    let mut t = ctx.start.div_euclid(period) * period + phase;
    while t < ctx.end {
        // Pipelines run on weekdays 13:00–23:00 UTC (US office hours), not every slot.
        let runs = match a.job {
            Job::Deploy => {
                let h = t.rem_euclid(DAY) / HOUR;
                weekday(t) < 5 && (13..23).contains(&h) && ctx.rng.chance(0.6)
            }
            _ => true,
        };
        if runs {
            let jitter = ctx.rng.range(0, 20 * SEC);
            for &(off, call) in steps {
                let ts = t + jitter + off * SEC;
                let v = cloudtrail::api_call(&mut ctx.rng, ts, &p, &a.ip, a.ua, call, false);
                ctx.ct(ts, v);
            }
        }
        t += period;
    }
}
