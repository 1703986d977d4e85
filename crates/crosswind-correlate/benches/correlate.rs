//! Throughput bench: 100k identities, 10M synthetic time-sorted events (Entra sign-ins, AWS
//! console logins and API calls, with a few sprays and recon bursts mixed in), generated
//! in-process in chunks. Reports engine events/s (generation excluded), scoring time and peak
//! RSS (`VmHWM`). `CORRELATE_BENCH_EVENTS` overrides the event count.

use std::time::{Duration, Instant};

use crosswind_correlate::{CorrelateConfig, Engine, IdentityLinks, RECON_CALLS, score_all};
use crosswind_model::*;

const IDENTITIES: u64 = 100_000;
const T0: i64 = 1_780_000_000_000;
const CHUNK: usize = 10_000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn ip_of(user: u64, alt: u64) -> String {
    let n = user * 2 + alt;
    format!(
        "{}.{}.{}.{}",
        20 + (n >> 16) % 200,
        (n >> 8) & 255,
        n & 255,
        1 + user % 250
    )
}

fn base(provider: CloudProvider, uid: String, time: i64, ip: String) -> Event {
    Event {
        schema_version: SCHEMA_VERSION,
        class_uid: if provider == CloudProvider::Azure {
            CLASS_AUTHENTICATION
        } else {
            CLASS_API_ACTIVITY
        },
        time,
        status_id: STATUS_SUCCESS,
        status_code: None,
        status_detail: None,
        metadata: Metadata {
            uid,
            product: String::new(),
            log_name: if provider == CloudProvider::Azure {
                SourceFormat::GraphSignIn
            } else {
                SourceFormat::CloudTrail
            },
            correlation_uid: None,
            event_types: vec![],
        },
        cloud: Cloud {
            provider,
            account: Account {
                uid: Some("111122223333".into()),
            },
            region: None,
        },
        src_endpoint: SrcEndpoint {
            ip: Some(ip),
            ..SrcEndpoint::default()
        },
        user: None,
        actor: None,
        api: None,
        service: None,
        http_request: None,
        is_mfa: None,
        finding_info: None,
        entra: None,
        aws: None,
    }
}

fn sso(user: u64) -> User {
    let role = "AWSReservedSSO_ReadOnly_0123456789abcdef";
    User {
        name: Some(format!("user{user}@corp.example")),
        kind: Some("AssumedRole".into()),
        arn: Some(format!(
            "arn:aws:sts::111122223333:assumed-role/{role}/user{user}@corp.example"
        )),
        account_uid: Some("111122223333".into()),
        credential_uid: Some(format!("ASIA{user:012}")),
        session: Some(Session {
            issuer_name: Some(role.into()),
            is_federated: true,
            ..Session::default()
        }),
        ..User::default()
    }
}

fn iam(user: u64) -> User {
    User {
        name: Some(format!("svc{user}")),
        kind: Some("IAMUser".into()),
        arn: Some(format!("arn:aws:iam::111122223333:user/svc{user}")),
        account_uid: Some("111122223333".into()),
        credential_uid: Some(format!("AKIA{user:012}")),
        ..User::default()
    }
}

/// The i-th event of the stream (time-sorted by construction).
fn gen_event(rng: &mut Rng, i: u64, total: u64) -> Event {
    // Spread over one day.
    let time = T0 + (i as i128 * 86_400_000 / total.max(1) as i128) as i64;
    let user = rng.below(IDENTITIES);
    let uid = format!("ev{i:010}");
    let roll = rng.below(1000);
    // A spray every ~100k events: 12 users failing from one IP.
    if i % 100_000 < 12 {
        let mut e = base(
            CloudProvider::Azure,
            uid,
            time,
            format!("203.0.113.{}", (i / 100_000) % 250),
        );
        e.status_id = STATUS_FAILURE;
        e.status_code = Some("50126".into());
        e.user = Some(User {
            name: Some(format!("user{user}@corp.example")),
            ..User::default()
        });
        e.entra = Some(EntraDetail::default());
        return e;
    }
    // A recon burst every ~100k events: 6 distinct calls by one IAM user's key.
    if (50..56).contains(&(i % 100_000)) {
        let burster = (i / 100_000) * 10 % IDENTITIES;
        let mut e = base(
            CloudProvider::Aws,
            uid,
            time,
            format!("198.51.100.{}", (i / 100_000) % 250),
        );
        e.actor = Some(Actor {
            user: iam(burster),
            invoked_by: None,
        });
        e.api = Some(Api {
            operation: RECON_CALLS[(i % 100_000 - 50) as usize].to_owned(),
            service: None,
            request_uid: None,
        });
        e.http_request = Some(HttpRequest {
            user_agent: Some("Boto3/1.34".into()),
        });
        return e;
    }
    let ip = ip_of(user, rng.below(2));
    match roll {
        0..=499 => {
            let mut e = base(CloudProvider::Azure, uid, time, ip);
            let fail = roll < 40;
            e.status_id = if fail { STATUS_FAILURE } else { STATUS_SUCCESS };
            e.status_code = Some(if fail { "50126" } else { "0" }.into());
            e.user = Some(User {
                name: Some(format!("User{user}@Corp.Example")),
                uid: Some(format!("oid-{user}")),
                ..User::default()
            });
            e.src_endpoint.location = Some(Location {
                lat: Some(30.0 + (user % 20) as f64),
                long: Some(-10.0 + (user % 40) as f64),
                ..Location::default()
            });
            let risky = roll.is_multiple_of(97);
            e.entra = Some(EntraDetail {
                risk_level_during_signin: Some(if risky { "medium" } else { "none" }.into()),
                risk_state: Some(if risky { "atRisk" } else { "none" }.into()),
                risk_event_types: if risky {
                    vec!["unfamiliarFeatures".into()]
                } else {
                    vec![]
                },
                authentication_requirement: Some("multiFactorAuthentication".into()),
                home_tenant_id: Some("t".into()),
                resource_tenant_id: Some("t".into()),
                ..EntraDetail::default()
            });
            e
        }
        500..=549 => {
            let mut e = base(CloudProvider::Aws, uid, time, ip);
            e.class_uid = CLASS_AUTHENTICATION;
            let iam_user = user.is_multiple_of(10);
            e.user = Some(if iam_user { iam(user) } else { sso(user) });
            e.api = Some(Api {
                operation: "ConsoleLogin".into(),
                service: None,
                request_uid: None,
            });
            e.aws = Some(AwsDetail {
                console_login: Some("Success".into()),
                mfa_used: Some(if roll.is_multiple_of(5) { "No" } else { "Yes" }.into()),
                ..AwsDetail::default()
            });
            e
        }
        _ => {
            let mut e = base(CloudProvider::Aws, uid, time, ip);
            let actor = if user.is_multiple_of(10) {
                iam(user)
            } else {
                sso(user)
            };
            // Users tend to repeat a few calls; recon calls are a fraction.
            let op = if roll.is_multiple_of(7) {
                RECON_CALLS[rng.below(12) as usize].to_owned()
            } else {
                [
                    "PutObject",
                    "GetObject",
                    "RunInstances",
                    "AssumeRole",
                    "Decrypt",
                ][rng.below(5) as usize]
                    .to_owned()
            };
            if roll.is_multiple_of(53) {
                e.status_id = STATUS_FAILURE;
                e.status_code = Some("AccessDenied".into());
            }
            e.actor = Some(Actor {
                user: actor,
                invoked_by: None,
            });
            e.api = Some(Api {
                operation: op,
                service: None,
                request_uid: None,
            });
            e.http_request = Some(HttpRequest {
                user_agent: Some("aws-cli/2.15".into()),
            });
            e.aws = Some(AwsDetail::default());
            e
        }
    }
}

fn vm_hwm_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let total: u64 = std::env::var("CORRELATE_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let mut engine = Engine::new(CorrelateConfig::default(), IdentityLinks::default());
    let mut rng = Rng(42);
    let mut signals = Vec::new();
    let mut chunk = Vec::with_capacity(CHUNK);
    let (mut gen_time, mut run_time) = (Duration::ZERO, Duration::ZERO);
    let mut i = 0u64;
    while i < total {
        let t = Instant::now();
        chunk.clear();
        while chunk.len() < CHUNK && i < total {
            chunk.push(gen_event(&mut rng, i, total));
            i += 1;
        }
        gen_time += t.elapsed();
        let t = Instant::now();
        for e in &chunk {
            engine.process(e, &mut signals);
        }
        run_time += t.elapsed();
    }
    let t = Instant::now();
    let scores = score_all(&signals, &[], engine.config());
    let score_time = t.elapsed();
    let findings: usize = scores.values().map(|s| s.findings.len()).sum();
    let stats = engine.stats();
    println!("crosswind-correlate bench: {total} events, {IDENTITIES} identities");
    println!(
        "  engine: {:.2} s, {:.0} events/s (generation {:.2} s, excluded)",
        run_time.as_secs_f64(),
        total as f64 / run_time.as_secs_f64().max(1e-9),
        gen_time.as_secs_f64()
    );
    println!(
        "  signals: {} emitted, {} suppressed; scoring {} identities: {:.3} s, {findings} findings",
        stats.signals,
        stats.suppressed,
        scores.len(),
        score_time.as_secs_f64()
    );
    let mut by_name = std::collections::BTreeMap::<&str, usize>::new();
    for s in &signals {
        *by_name.entry(s.signal.as_str()).or_default() += 1;
    }
    println!("  by signal: {by_name:?}");
    println!("  state: {:?}", engine.state_sizes());
    match vm_hwm_kib() {
        Some(k) => println!("  peak RSS (VmHWM): {:.1} MiB", k as f64 / 1024.0),
        None => println!("  peak RSS: unavailable"),
    }
}
