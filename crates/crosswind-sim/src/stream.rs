//! A streaming generator for benchmarks: millions of realistic records without holding them.
//!
//! It serialises a few hundred real records once (built by the same code as [`crate::generate`]),
//! turns each into a template whose ids and timestamps are holes, and then fills holes at
//! memcpy speed. Timestamps increase evenly across the window; about half the records are
//! sign-ins. Benign traffic only: no office-hours shape, no scenarios (use `generate` for those).

use serde_json::Value;

use crate::SimConfig;
use crate::benign::VPN_RISK;
use crate::cloudtrail::{self, Call, ConsoleUser, Principal};
use crate::rng::Rng;
use crate::signin::{self, Auth, DeviceView, NO_RISK, SignIn, Who};
use crate::time::push_iso;
use crate::world::{APP_OFFICE, APP_TEAMS, Aws, HOME, Kind, World};

/// One serialised record (a JSON object on one line, no trailing newline).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimRecord {
    /// A Graph beta `signIn`.
    SignIn(String),
    /// A CloudTrail record.
    CloudTrail(String),
}

impl SimRecord {
    pub fn json(&self) -> &str {
        match self {
            SimRecord::SignIn(s) | SimRecord::CloudTrail(s) => s,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Hole {
    Uuid,
    Time,
    Token,
    S3RequestId,
}

#[derive(Debug)]
struct Template {
    parts: Vec<String>,
    holes: Vec<Hole>,
    len: usize,
}

const MARK: &str = "@@";

/// Replaces the variable fields of a built record with hole markers.
fn punch(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                let hole = match k.as_str() {
                    "id" | "correlationId" | "originalRequestId" | "eventID" => Some("0"),
                    "sessionId" if x.as_str().is_some_and(|s| !s.is_empty()) => Some("0"),
                    "createdDateTime"
                    | "authenticationStepDateTime"
                    | "eventTime"
                    | "creationDate" => Some("1"),
                    "uniqueTokenIdentifier" => Some("2"),
                    "requestID" if x.as_str().is_some_and(|s| s.len() == 16) => Some("3"),
                    "requestID" => Some("0"),
                    _ => None,
                };
                match hole {
                    Some(h) if x.is_string() => *x = Value::String(format!("{MARK}{h}{MARK}")),
                    _ => punch(x),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(punch),
        _ => {}
    }
}

fn template(mut v: Value) -> Option<Template> {
    punch(&mut v);
    let text = serde_json::to_string(&v).ok()?;
    let mut parts = Vec::new();
    let mut holes = Vec::new();
    for (i, piece) in text.split(MARK).enumerate() {
        if i % 2 == 0 {
            parts.push(piece.to_owned());
        } else {
            holes.push(match piece {
                "0" => Hole::Uuid,
                "1" => Hole::Time,
                "2" => Hole::Token,
                _ => Hole::S3RequestId,
            });
        }
    }
    (parts.len() == holes.len() + 1).then_some(Template {
        parts,
        holes,
        len: text.len() + 64,
    })
}

/// The iterator [`stream`] returns.
#[derive(Debug)]
pub struct SimStream {
    rng: Rng,
    signins: Vec<Template>,
    trail: Vec<Template>,
    i: u64,
    n: u64,
    start: i64,
    span: i64,
}

/// Streams `cfg.stream_records` benign records, evenly spread over the window.
pub fn stream(cfg: &SimConfig) -> SimStream {
    let world = World::build(cfg);
    let mut rng = Rng::derive(cfg.seed, "stream-templates");
    let mut signins = Vec::new();
    let mut trail = Vec::new();
    let t0 = cfg.start;
    for u in world.users.iter().take(400) {
        let risk = if u.kind == Kind::Vpn {
            VPN_RISK
        } else {
            NO_RISK
        };
        let base = SignIn {
            time: t0,
            who: Who {
                upn: &u.upn,
                display: &u.display,
                user_id: &u.user_id,
                guest: false,
                home_tenant: &HOME,
            },
            app: &APP_OFFICE,
            ip: &u.net.ip,
            asn: u.net.asn,
            place: u.net.place,
            device: DeviceView {
                device: u.device,
                device_id: &u.device_id,
                name: &u.device_name,
                ua: u.device.ua,
            },
            client_app: "Browser",
            protocol: "none",
            interactive: true,
            error: 0,
            auth: Auth::FreshMfa(u.mfa_method),
            risk,
        };
        signins.extend(template(signin::build(&mut rng, &base)));
        let refresh = SignIn {
            app: &APP_TEAMS,
            client_app: "Mobile Apps and Desktop clients",
            interactive: false,
            auth: Auth::Token,
            risk: NO_RISK,
            ..base
        };
        signins.extend(template(signin::build(&mut rng, &refresh)));
        match &u.aws {
            Aws::Sso(role) => {
                let login = cloudtrail::console_login(
                    &mut rng,
                    t0,
                    &ConsoleUser::Sso {
                        role,
                        session: &u.upn,
                    },
                    &u.net.ip,
                    u.device.ua,
                    true,
                    false,
                );
                trail.extend(template(login));
                let key = format!("ASIA{}", rng.base32(16));
                let p = Principal::Sso {
                    role,
                    session: &u.upn,
                    key: &key,
                    created: t0,
                };
                for call in [
                    Call::DescribeInstances,
                    Call::GetObject,
                    Call::GetMetricData,
                ] {
                    trail.extend(template(cloudtrail::api_call(
                        &mut rng,
                        t0,
                        &p,
                        &u.net.ip,
                        u.device.ua,
                        call,
                        false,
                    )));
                }
            }
            Aws::IamKey(iam) | Aws::IamConsole(iam) => {
                let p = Principal::IamKey(iam);
                for call in [Call::GetObject, Call::PutObject, Call::GetParameter] {
                    trail.extend(template(cloudtrail::api_call(
                        &mut rng, t0, &p, &u.net.ip, DEV_UA, call, false,
                    )));
                }
            }
            Aws::None => {}
        }
    }
    for a in &world.automation {
        let p = Principal::IamKey(&a.user);
        for call in [
            Call::GetCallerIdentity,
            Call::DescribeVolumes,
            Call::DescribeInstances,
            Call::GetMetricData,
            Call::CreateSnapshot,
        ] {
            trail.extend(template(cloudtrail::api_call(
                &mut rng, t0, &p, &a.ip, a.ua, call, false,
            )));
        }
    }
    let span = i64::from(cfg.hours.max(1)) * crate::time::HOUR;
    SimStream {
        rng: Rng::derive(cfg.seed, "stream"),
        signins,
        trail,
        i: 0,
        n: cfg.stream_records,
        start: cfg.start,
        span,
    }
}

const DEV_UA: &str = "aws-cli/2.22.4 md/awscrt#0.23.1 ua/2.0 os/linux#6.8.0-48-generic md/arch#x86_64 lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/prompt#off";

impl SimStream {
    fn fill(rng: &mut Rng, t: &Template, time: i64) -> String {
        let mut out = String::with_capacity(t.len);
        for (k, part) in t.parts.iter().enumerate() {
            out.push_str(part);
            match t.holes.get(k) {
                Some(Hole::Uuid) => rng.push_uuid(&mut out),
                Some(Hole::Time) => push_iso(&mut out, time),
                Some(Hole::Token) => rng.push_alnum(&mut out, 22),
                Some(Hole::S3RequestId) => rng.push_alnum(&mut out, 16),
                None => {}
            }
        }
        out
    }
}

impl Iterator for SimStream {
    type Item = SimRecord;

    fn next(&mut self) -> Option<SimRecord> {
        if self.i >= self.n {
            return None;
        }
        let time = self.start
            + (i128::from(self.i) * i128::from(self.span) / i128::from(self.n.max(1))) as i64;
        self.i += 1;
        let r = self.rng.next_u64();
        let sign_in = r & 1 == 0 || self.trail.is_empty();
        let pool = if sign_in { &self.signins } else { &self.trail };
        let t = pool.get(((r >> 1) % pool.len().max(1) as u64) as usize)?;
        let s = Self::fill(&mut self.rng, t, time);
        Some(if sign_in {
            SimRecord::SignIn(s)
        } else {
            SimRecord::CloudTrail(s)
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.n - self.i).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}
