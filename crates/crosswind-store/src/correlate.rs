//! Correlation results: identities and aliases, signals (risk events) with the events behind
//! them, and findings (migration 0002).
//!
//! Invariants:
//! - signal and finding ids are deterministic (crosswind-correlate hashes what they observed), so
//!   inserts are `INSERT OR IGNORE` and re-running the correlator over a range is idempotent; the
//!   insert functions report which rows were new, so only those are queued for Splunk;
//! - the correlator reads events in [`for_each_event_ordered`] order — event time, then the
//!   source record id — never in arrival (row id) order, so its results do not depend on the
//!   order records were stored in.
//!
//! This module knows SQL only; the logic lives in `crosswind-correlate`.

use std::collections::HashMap;

use crosswind_model::{Alias, Finding, Signal};
use rusqlite::{OptionalExtension, params};

use crate::{Batch, Result, Store, StoreError, StoredEvent};

/// Checkpoint name of the correlator's cursor (the last `events.id` it has seen).
pub const CORRELATE_CHECKPOINT: &str = "correlate";

/// A stored JSON body that does not parse (column 1 of the query).
fn corrupt(source: serde_json::Error) -> StoreError {
    StoreError::Sqlite(rusqlite::Error::FromSqlConversionFailure(
        1,
        rusqlite::types::Type::Text,
        Box::new(source),
    ))
}

/// Records identities and their aliases seen at event time `time` (upsert: widens
/// first/last seen).
pub fn upsert_aliases(batch: &mut Batch<'_>, aliases: &[Alias], time: i64) -> Result<()> {
    for a in aliases {
        upsert_alias_seen(batch, a, time, time)?;
    }
    Ok(())
}

/// Records one alias (and its identity) seen from `first` to `last` (epoch ms); an existing row
/// only widens.
pub fn upsert_alias_seen(batch: &mut Batch<'_>, a: &Alias, first: i64, last: i64) -> Result<()> {
    let tx = batch.transaction();
    tx.prepare_cached(
        "INSERT INTO identities (name, first_seen, last_seen) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET first_seen = min(first_seen, excluded.first_seen),
                                          last_seen = max(last_seen, excluded.last_seen)",
    )?
    .execute(params![a.identity, first, last])?;
    tx.prepare_cached(
        "INSERT INTO aliases (identity, kind, value, cloud, first_seen, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (identity, kind, value) DO UPDATE
           SET first_seen = min(first_seen, excluded.first_seen),
               last_seen = max(last_seen, excluded.last_seen)",
    )?
    .execute(params![
        a.identity,
        a.kind,
        a.value,
        a.cloud.as_str(),
        first,
        last
    ])?;
    Ok(())
}

/// Stores signals (`INSERT OR IGNORE` on the id) with their event links; returns the indices
/// of the signals that were new.
pub fn insert_signals(batch: &mut Batch<'_>, signals: &[Signal]) -> Result<Vec<usize>> {
    let now = batch.now;
    let tx = batch.transaction();
    let mut ins = tx.prepare_cached(
        "INSERT OR IGNORE INTO signals
           (id, signal, time, risk_object, risk_score, threat_object, created_at, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    let mut new = Vec::new();
    for (i, s) in signals.iter().enumerate() {
        let (body, score) = signal_row(s)?;
        let n = ins.execute(params![
            s.id,
            s.signal,
            s.time,
            s.risk_object,
            score,
            s.threat_object,
            now,
            body
        ])?;
        if n == 0 {
            continue;
        }
        link_events(tx, s)?;
        new.push(i);
    }
    Ok(new)
}

/// A signal's stored body and score (a non-finite score is stored as 0).
fn signal_row(s: &Signal) -> Result<(String, f64)> {
    let body = serde_json::to_string(s).map_err(StoreError::Serialize)?;
    let score = if s.risk_score.is_finite() {
        s.risk_score
    } else {
        0.0
    };
    Ok((body, score))
}

/// Links a signal to the records of its events.
fn link_events(tx: &rusqlite::Transaction<'_>, s: &Signal) -> Result<()> {
    let mut link = tx.prepare_cached(
        "INSERT OR IGNORE INTO signal_events (signal_id, record_id) VALUES (?1, ?2)",
    )?;
    for e in &s.event_ids {
        link.execute(params![s.id, e])?;
    }
    Ok(())
}

/// Replaces a stored signal with a new version of it (same id): a replay over late data
/// concluded otherwise (see the driver's `reconcile`). Its event links are kept and extended.
pub fn replace_signal(batch: &mut Batch<'_>, s: &Signal) -> Result<()> {
    let tx = batch.transaction();
    let (body, score) = signal_row(s)?;
    tx.prepare_cached(
        "UPDATE signals SET signal = ?2, time = ?3, risk_object = ?4, risk_score = ?5,
                threat_object = ?6, body = ?7
         WHERE id = ?1",
    )?
    .execute(params![
        s.id,
        s.signal,
        s.time,
        s.risk_object,
        score,
        s.threat_object,
        body
    ])?;
    link_events(tx, s)
}

/// Stores findings (`INSERT OR IGNORE` on the id); returns the indices of the new ones.
pub fn insert_findings(batch: &mut Batch<'_>, findings: &[Finding]) -> Result<Vec<usize>> {
    let now = batch.now;
    let tx = batch.transaction();
    let mut ins = tx.prepare_cached(
        "INSERT OR IGNORE INTO findings (id, identity, raised_at, score, created_at, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut new = Vec::new();
    for (i, f) in findings.iter().enumerate() {
        let body = serde_json::to_string(f).map_err(StoreError::Serialize)?;
        let score = if f.score.is_finite() { f.score } else { 0.0 };
        if ins.execute(params![f.id, f.identity, f.raised_at, score, now, body])? > 0 {
            new.push(i);
        }
    }
    Ok(new)
}

/// Events with `since <= time < until` in the correlator's order: event time, then source
/// record id (ties never depend on arrival order).
pub fn for_each_event_ordered<E>(
    store: &Store,
    since: i64,
    until: i64,
    f: impl FnMut(&StoredEvent) -> std::result::Result<bool, E>,
) -> std::result::Result<(), E>
where
    E: From<StoreError>,
{
    let mut stmt = store
        .conn
        .prepare_cached(
            "SELECT id, event, event_dict FROM events WHERE time >= ?1 AND time < ?2
             ORDER BY time, record_id, source",
        )
        .map_err(StoreError::from)?;
    let rows = stmt
        .query(params![since, until])
        .map_err(StoreError::from)?;
    crate::decode::stream_event_refs_decoding_ahead(store, rows, f)
}

fn collect<T>(
    store: &Store,
    sql: &str,
    args: impl rusqlite::Params,
    parse: impl Fn(&str) -> serde_json::Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = store.conn.prepare_cached(sql)?;
    let mut rows = stmt.query(args)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let body: String = row.get(1)?;
        out.push(parse(&body).map_err(corrupt)?);
    }
    Ok(out)
}

fn signal(s: &str) -> serde_json::Result<Signal> {
    serde_json::from_str(s)
}

fn finding(s: &str) -> serde_json::Result<Finding> {
    serde_json::from_str(s)
}

/// Signals with `since <= time < until`, by time then id (all identities, threat-only too).
pub fn signals_between(store: &Store, since: i64, until: i64) -> Result<Vec<Signal>> {
    collect(
        store,
        "SELECT id, body FROM signals WHERE time >= ?1 AND time < ?2 ORDER BY time, id",
        params![since, until],
        signal,
    )
}

/// The signals named in `kinds` with `since <= time < until`, by time then id: an index range
/// per kind (`signals_signal_time`), so a hunt for a rare kind does not decode every signal.
pub fn signals_of_kinds_between(
    store: &Store,
    kinds: &[&str],
    since: i64,
    until: i64,
) -> Result<Vec<Signal>> {
    let kinds = serde_json::to_string(kinds).map_err(StoreError::Serialize)?;
    collect(
        store,
        SIGNALS_OF_KINDS,
        params![kinds, since, until],
        signal,
    )
}

pub(crate) const SIGNALS_OF_KINDS: &str = "SELECT id, body FROM signals
     WHERE signal IN (SELECT value FROM json_each(?1)) AND time >= ?2 AND time < ?3
     ORDER BY time, id";

/// One identity's signals with `time >= since`, by time then id.
pub fn signals_of(store: &Store, identity: &str, since: i64) -> Result<Vec<Signal>> {
    collect(
        store,
        "SELECT id, body FROM signals WHERE risk_object = ?1 AND time >= ?2 ORDER BY time, id",
        params![identity, since],
        signal,
    )
}

/// One identity's findings, oldest first.
pub fn findings_of(store: &Store, identity: &str) -> Result<Vec<Finding>> {
    collect(
        store,
        "SELECT id, body FROM findings WHERE identity = ?1 ORDER BY raised_at, id",
        params![identity],
        finding,
    )
}

/// How many findings were raised on one identity (from the index, no body decoded).
pub fn findings_count_of(store: &Store, identity: &str) -> Result<u64> {
    Ok(store
        .conn
        .prepare_cached("SELECT count(*) FROM findings WHERE identity = ?1")?
        .query_row([identity], |r| r.get::<_, i64>(0))?
        .unsigned_abs())
}

/// Findings raised at or after `since`, newest first.
pub fn findings_since(store: &Store, since: i64) -> Result<Vec<Finding>> {
    collect(
        store,
        "SELECT id, body FROM findings WHERE raised_at >= ?1 ORDER BY raised_at DESC, id",
        params![since],
        finding,
    )
}

/// The aliases of one identity.
pub fn aliases_of(store: &Store, identity: &str) -> Result<Vec<Alias>> {
    let mut stmt = store.conn.prepare_cached(
        "SELECT identity, kind, value, cloud FROM aliases WHERE identity = ?1 ORDER BY kind, value",
    )?;
    let rows = stmt.query_map([identity], |r| {
        let cloud: String = r.get(3)?;
        Ok(Alias {
            identity: r.get(0)?,
            kind: r.get(1)?,
            value: r.get(2)?,
            cloud: if cloud == "AWS" {
                crosswind_model::CloudProvider::Aws
            } else {
                crosswind_model::CloudProvider::Azure
            },
        })
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// The identity an alias (any case: a UPN, object id, ARN, IAM user name) belongs to.
pub fn identity_for_alias(store: &Store, alias: &str) -> Result<Option<String>> {
    if let Some(name) = store
        .conn
        .prepare_cached("SELECT name FROM identities WHERE name = ?1 COLLATE NOCASE")?
        .query_row([alias], |r| r.get(0))
        .optional()?
    {
        return Ok(Some(name));
    }
    Ok(store
        .conn
        .prepare_cached(
            "SELECT identity FROM aliases WHERE value = ?1 COLLATE NOCASE ORDER BY identity LIMIT 1",
        )?
        .query_row([alias], |r| r.get(0))
        .optional()?)
}

#[cfg(test)]
mod tests {
    //! Correlation tables: idempotent inserts, event links, queries, tie order.

    use crosswind_model::*;

    use super::*;
    use crate::NewRecord;

    fn sig(id: &str, who: &str, time: i64) -> Signal {
        Signal {
            schema_version: SCHEMA_VERSION,
            id: id.into(),
            signal: "aws_recon_burst".into(),
            time,
            risk_object: who.into(),
            risk_object_type: "user".into(),
            risk_score: 56.0,
            risk_message: "why".into(),
            threat_object: Some("203.0.113.7".into()),
            threat_object_type: Some("ip".into()),
            mitre_technique_id: vec!["T1087.004".into()],
            cloud: vec![CloudProvider::Aws],
            event_ids: vec!["e1".into(), "e2".into()],
            habitual: false,
            extends: None,
        }
    }

    fn finding_row(id: &str, who: &str, at: i64) -> Finding {
        Finding {
            schema_version: SCHEMA_VERSION,
            id: id.into(),
            identity: who.into(),
            score: 120.0,
            threshold: 100.0,
            clouds: vec![CloudProvider::Aws],
            signals: vec!["s1".into()],
            first_seen: at,
            last_seen: at,
            raised_at: at,
            summary: "sum".into(),
        }
    }

    fn event(uid: &str, time: i64) -> Event {
        Event {
            schema_version: SCHEMA_VERSION,
            class_uid: CLASS_API_ACTIVITY,
            time,
            status_id: STATUS_SUCCESS,
            status_code: None,
            status_detail: None,
            metadata: Metadata {
                uid: uid.into(),
                product: "test".into(),
                log_name: SourceFormat::CloudTrail,
                correlation_uid: None,
                event_types: vec![],
            },
            cloud: Cloud {
                provider: CloudProvider::Aws,
                account: Account::default(),
                region: None,
            },
            src_endpoint: SrcEndpoint::default(),
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

    #[test]
    fn signals_of_kinds_are_read_by_kind_and_window() {
        let mut store = Store::open_in_memory().unwrap();
        let mut b = store.begin().unwrap();
        let kinds = [
            ("a", "aws_recon_burst", 10),
            ("b", "azure_password_spray", 20),
            ("c", "azure_risky_event", 30),
            ("d", "aws_recon_burst", 40),
            ("e", "azure_password_spray", 50),
        ];
        let all: Vec<Signal> = kinds
            .iter()
            .map(|&(id, kind, time)| {
                let mut s = sig(id, "alice@corp.example", time);
                s.signal = kind.into();
                s
            })
            .collect();
        insert_signals(&mut b, &all).unwrap();
        b.commit().unwrap();
        let ids = |kinds: &[&str], since, until| -> Vec<String> {
            signals_of_kinds_between(&store, kinds, since, until)
                .unwrap()
                .into_iter()
                .map(|s| s.id)
                .collect()
        };
        assert_eq!(
            ids(&["aws_recon_burst", "azure_password_spray"], 0, 100),
            ["a", "b", "d", "e"]
        );
        assert_eq!(ids(&["azure_password_spray"], 20, 50), ["b"]);
        assert_eq!(ids(&["azure_risky_event"], i64::MIN, i64::MAX), ["c"]);
        assert!(ids(&[], i64::MIN, i64::MAX).is_empty());
        assert!(ids(&["aws_recon_burst"], 41, 100).is_empty());
    }

    #[test]
    fn a_replaced_signal_is_read_back_in_its_new_version() {
        let mut store = Store::open_in_memory().unwrap();
        let mut b = store.begin().unwrap();
        let mut s = sig("s1", "alice@corp.example", 10);
        insert_signals(&mut b, std::slice::from_ref(&s)).unwrap();
        s.risk_score /= 4.0;
        s.habitual = true;
        replace_signal(&mut b, &s).unwrap();
        b.commit().unwrap();
        let back = signals_between(&store, i64::MIN, i64::MAX).unwrap();
        assert_eq!(back, [s]);
    }

    #[test]
    fn correlation_story() {
        let mut store = Store::open_in_memory().unwrap();
        let mut b = store.begin().unwrap();
        let signals = vec![sig("s1", "alice@corp.example", 10), sig("s2", "", 5)];
        assert_eq!(insert_signals(&mut b, &signals).unwrap(), [0, 1]);
        assert!(insert_signals(&mut b, &signals).unwrap().is_empty());
        let f = vec![finding_row("f1", "alice@corp.example", 10)];
        assert_eq!(insert_findings(&mut b, &f).unwrap(), [0]);
        assert!(insert_findings(&mut b, &f).unwrap().is_empty());
        let aliases = vec![
            Alias {
                identity: "alice@corp.example".into(),
                kind: "iam_user_arn".into(),
                value: "arn:aws:iam::1:user/Alice".into(),
                cloud: CloudProvider::Aws,
            },
            Alias {
                identity: "alice@corp.example".into(),
                kind: "iam_user_name".into(),
                value: "Alice".into(),
                cloud: CloudProvider::Aws,
            },
        ];
        upsert_aliases(&mut b, &aliases, 100).unwrap();
        upsert_aliases(&mut b, &aliases, 50).unwrap();
        // Same time, record ids out of order; stored in the "wrong" order.
        for uid in ["b", "a", "c"] {
            let e = event(uid, 7);
            b.insert(&NewRecord {
                event: &e,
                format: SourceFormat::CloudTrail,
                raw: b"{}",
                origin: "t",
            })
            .unwrap();
        }
        b.commit().unwrap();

        assert_eq!(
            signals_between(&store, 0, 100)
                .unwrap()
                .iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>(),
            ["s2", "s1"]
        );
        assert_eq!(
            signals_of(&store, "alice@corp.example", 0).unwrap(),
            signals[..1]
        );
        assert!(
            signals_of(&store, "alice@corp.example", 11)
                .unwrap()
                .is_empty()
        );
        assert_eq!(findings_of(&store, "alice@corp.example").unwrap(), f);
        assert_eq!(
            findings_count_of(&store, "alice@corp.example").unwrap(),
            f.len() as u64
        );
        assert_eq!(findings_count_of(&store, "nobody@corp.example").unwrap(), 0);
        assert_eq!(findings_since(&store, 0).unwrap().len(), 1);
        let mut got = aliases_of(&store, "alice@corp.example").unwrap();
        got.sort();
        assert_eq!(got, aliases);
        assert_eq!(
            identity_for_alias(&store, "ALICE").unwrap().as_deref(),
            Some("alice@corp.example")
        );
        assert_eq!(
            identity_for_alias(&store, "Alice@Corp.Example")
                .unwrap()
                .as_deref(),
            Some("alice@corp.example")
        );
        assert_eq!(identity_for_alias(&store, "nobody").unwrap(), None);
        let (first, last): (i64, i64) = store
            .connection()
            .query_row("SELECT first_seen, last_seen FROM identities", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((first, last), (50, 100));
        let links: i64 = store
            .connection()
            .query_row("SELECT count(*) FROM signal_events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(links, 4);

        let mut order = Vec::new();
        for_each_event_ordered(&store, 0, 100, |e| {
            order.push(e.event.metadata.uid.clone());
            Ok::<_, StoreError>(true)
        })
        .unwrap();
        assert_eq!(order, ["a", "b", "c"]);
    }

    /// Only IPs with events in both clouds inside the window, busiest first (ties by IP), with
    /// each cloud's distinct users.
    #[test]
    fn cross_cloud_ips_counts_both_clouds_in_the_window() {
        let mut store = Store::open_in_memory().unwrap();
        let mut b = store.begin().unwrap();
        let rows = [
            // (uid, time, provider, ip, user)
            (
                "1",
                10,
                CloudProvider::Azure,
                "198.51.100.1",
                Some("bob@corp.example"),
            ),
            ("2", 20, CloudProvider::Aws, "198.51.100.1", Some("bob")),
            (
                "3",
                30,
                CloudProvider::Azure,
                "198.51.100.1",
                Some("al,ice@corp.example"),
            ),
            (
                "4",
                40,
                CloudProvider::Azure,
                "198.51.100.1",
                Some("bob@corp.example"),
            ),
            ("5", 15, CloudProvider::Aws, "203.0.113.9", None),
            (
                "6",
                25,
                CloudProvider::Azure,
                "203.0.113.9",
                Some("eve@corp.example"),
            ),
            // Azure only, AWS only, outside the window, no IP.
            ("7", 20, CloudProvider::Azure, "192.0.2.1", Some("x")),
            ("8", 20, CloudProvider::Aws, "192.0.2.2", Some("y")),
            ("9", 500, CloudProvider::Aws, "192.0.2.1", Some("z")),
            ("10", 20, CloudProvider::Aws, "", Some("w")),
        ];
        for (uid, time, provider, ip, user) in rows {
            let mut e = event(uid, time);
            e.cloud.provider = provider;
            e.src_endpoint.ip = (!ip.is_empty()).then(|| ip.to_string());
            e.user = user.map(|u| User {
                name: Some(u.into()),
                ..User::default()
            });
            let format = match provider {
                CloudProvider::Azure => SourceFormat::GraphSignIn,
                CloudProvider::Aws => SourceFormat::CloudTrail,
            };
            b.insert(&NewRecord {
                event: &e,
                format,
                raw: b"{}",
                origin: "t",
            })
            .unwrap();
        }
        b.commit().unwrap();
        let got = cross_cloud_ips(&store, 0, 100).unwrap();
        assert_eq!(
            got,
            [
                CrossCloudIp {
                    ip: "198.51.100.1".into(),
                    azure_events: 3,
                    aws_events: 1,
                    azure_users: "al;ice@corp.example;bob@corp.example".into(),
                    aws_users: "bob".into(),
                    first_seen: 10,
                    last_seen: 40,
                },
                CrossCloudIp {
                    ip: "203.0.113.9".into(),
                    azure_events: 1,
                    aws_events: 1,
                    azure_users: "eve@corp.example".into(),
                    aws_users: "".into(),
                    first_seen: 15,
                    last_seen: 25,
                },
            ]
        );
        // From 15 on: the AWS call at 500 makes 192.0.2.1 a both-clouds IP; ties go by IP.
        let later: Vec<_> = cross_cloud_ips(&store, 15, 1_000)
            .unwrap()
            .into_iter()
            .map(|c| {
                (
                    c.ip,
                    c.azure_events,
                    c.aws_events,
                    c.first_seen,
                    c.last_seen,
                )
            })
            .collect();
        assert_eq!(
            later,
            [
                ("198.51.100.1".to_string(), 2, 1, 20, 40),
                ("192.0.2.1".to_string(), 1, 1, 20, 500),
                ("203.0.113.9".to_string(), 1, 1, 15, 25),
            ]
        );
        // Unbounded: every event counts.
        let all: Vec<_> = cross_cloud_ips(&store, i64::MIN, i64::MAX)
            .unwrap()
            .into_iter()
            .map(|c| (c.ip, c.azure_events, c.aws_events))
            .collect();
        assert_eq!(
            all,
            [
                ("198.51.100.1".to_string(), 3, 1),
                ("192.0.2.1".to_string(), 1, 1),
                ("203.0.113.9".to_string(), 1, 1),
            ]
        );
        // Both ways of reading agree on every window, narrow or wide.
        for (since, until) in [
            (0, 100),
            (15, 1_000),
            (20, 21),
            (25, 41),
            (i64::MIN, i64::MAX),
        ] {
            assert_eq!(
                cross_cloud_ips_via(&store, since, until, true).unwrap(),
                cross_cloud_ips_via(&store, since, until, false).unwrap(),
                "{since}..{until}"
            );
        }
        // A window of a quarter or more of the events reads the IP index, a narrower one the
        // time index.
        assert!(reads_most_of_the_store(&store, 0, 100).unwrap());
        assert!(reads_most_of_the_store(&store, 20, 21).unwrap());
        assert!(!reads_most_of_the_store(&store, 10, 11).unwrap());
        assert!(!reads_most_of_the_store(&store, 1_000, 2_000).unwrap());
    }

    /// The IP index answers the store-wide count on its own, and one IP's lookups seek it.
    #[test]
    fn ip_queries_use_the_covering_ip_index() {
        let store = Store::open_in_memory().unwrap();
        let plan = |sql: &str, n: usize| -> String {
            let mut stmt = store
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            let args: Vec<i64> = (0..n as i64).collect();
            stmt.query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<rusqlite::Result<Vec<_>>>()
                .unwrap()
                .join("\n")
        };
        let by_index = plan(IPS_BY_INDEX, 2);
        assert!(
            by_index.contains("COVERING INDEX events_ip_time"),
            "{by_index}"
        );
        let users = plan(USERS_OF_IP, 3);
        assert!(
            users.contains("COVERING INDEX events_ip_time (src_ip=?)"),
            "{users}"
        );
        let kinds = plan(SIGNALS_OF_KINDS, 3);
        assert!(kinds.contains("signals_signal_time (signal=?"), "{kinds}");
        let place = plan(crate::report::PLACE_OF_IP, 4);
        assert!(
            place.contains("events_ip_time (src_ip=? AND provider=?"),
            "{place}"
        );
    }
}

/// Events stored after row id `after` (the correlator's cursor): the earliest event time among
/// them and the highest row id, or `None` when there are none.
pub fn pending_since(store: &Store, after: i64) -> Result<Option<(i64, i64)>> {
    Ok(store
        .conn
        .prepare_cached("SELECT min(time), max(id) FROM events WHERE id > ?1")?
        .query_row([after], |r| {
            Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?))
        })
        .map(|(t, id)| t.zip(id))?)
}

/// Findings raised on identities, newest first, at most `limit` (all identities).
pub fn findings_recent(store: &Store, since: i64, limit: usize) -> Result<Vec<Finding>> {
    collect(
        store,
        "SELECT id, body FROM findings WHERE raised_at >= ?1 ORDER BY raised_at DESC, id LIMIT ?2",
        params![since, limit as i64],
        finding,
    )
}

/// Events whose user is one of `names` (as stored or lower-cased), newest first, at most `limit`.
pub fn events_for_names(store: &Store, names: &[String], limit: usize) -> Result<Vec<StoredEvent>> {
    let spellings: Vec<String> = names
        .iter()
        .flat_map(|n| [n.clone(), n.to_lowercase()])
        .collect();
    crate::report::events_of_names(store, &spellings, i64::MIN, i64::MAX, limit)
}

/// One source IP seen in both clouds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrossCloudIp {
    pub ip: String,
    pub azure_events: u64,
    pub aws_events: u64,
    /// Distinct user names per cloud, `;`-separated (at most a few dozen).
    pub azure_users: String,
    pub aws_users: String,
    pub first_seen: i64,
    pub last_seen: i64,
}

/// Per IP, the events of each cloud in a window, in IP order, from the IP index alone.
pub(crate) const IPS_BY_INDEX: &str = "SELECT src_ip, provider, time FROM events
     INDEXED BY events_ip_time WHERE src_ip IS NOT NULL AND time >= ?1 AND time < ?2";
/// The same by the time index, which reads each event's table row.
const IPS_BY_TIME: &str = "SELECT src_ip, provider, time FROM events INDEXED BY events_time
     WHERE time >= ?1 AND time < ?2 AND src_ip IS NOT NULL";
/// The users seen from one IP in a window (from the IP index alone).
pub(crate) const USERS_OF_IP: &str = "SELECT DISTINCT provider, user_name FROM events
     INDEXED BY events_ip_time
     WHERE src_ip = ?1 AND time >= ?2 AND time < ?3 AND user_name IS NOT NULL
     ORDER BY provider, user_name";

/// Source IPs with events in both Entra and AWS within `[since, until)`, busiest first.
///
/// A window holding a good part of the store is read from the IP index (src_ip, provider,
/// time, user_name) alone, which is in IP order, so each IP is counted and done with before the
/// next; a narrow window of a large store is read through the time index instead (its rows
/// only, at a table lookup each) and counted in a hash map. Only the few IPs seen in both clouds are read again
/// for their users.
pub fn cross_cloud_ips(store: &Store, since: i64, until: i64) -> Result<Vec<CrossCloudIp>> {
    let by_ip_index = reads_most_of_the_store(store, since, until)?;
    cross_cloud_ips_via(store, since, until, by_ip_index)
}

fn cross_cloud_ips_via(
    store: &Store,
    since: i64,
    until: i64,
    by_ip_index: bool,
) -> Result<Vec<CrossCloudIp>> {
    #[derive(Default)]
    struct Seen {
        azure: u64,
        aws: u64,
        first: i64,
        last: i64,
    }
    impl Seen {
        fn add(&mut self, provider: &str, time: i64) {
            match provider {
                "Azure" => self.azure += 1,
                "AWS" => self.aws += 1,
                _ => {}
            }
            self.first = self.first.min(time);
            self.last = self.last.max(time);
        }
        fn new(time: i64) -> Seen {
            Seen {
                first: time,
                last: time,
                ..Seen::default()
            }
        }
    }
    let in_both = |seen: &Seen| seen.azure > 0 && seen.aws > 0;
    let mut both: Vec<(Box<str>, Seen)> = Vec::new();
    let mut stmt = store.conn.prepare_cached(if by_ip_index {
        IPS_BY_INDEX
    } else {
        IPS_BY_TIME
    })?;
    let mut rows = stmt.query(params![since, until])?;
    // In IP order, one IP at a time; in time order, every IP of the window at once.
    let mut current: Option<(Box<str>, Seen)> = None;
    let mut by_ip: HashMap<Box<str>, Seen> = HashMap::new();
    while let Some(row) = rows.next()? {
        let Ok(ip) = row.get_ref(0)?.as_str() else {
            continue;
        };
        let provider = row.get_ref(1)?.as_str().unwrap_or_default();
        let time: i64 = row.get(2)?;
        let seen = if by_ip_index {
            if current.as_ref().is_none_or(|(at, _)| **at != *ip)
                && let Some((done, seen)) = current.replace((ip.into(), Seen::new(time)))
                && in_both(&seen)
            {
                both.push((done, seen));
            }
            current.as_mut().map(|(_, seen)| seen)
        } else {
            Some(match by_ip.get_mut(ip) {
                Some(seen) => seen,
                None => by_ip.entry(ip.into()).or_insert(Seen::new(time)),
            })
        };
        if let Some(seen) = seen {
            seen.add(provider, time);
        }
    }
    both.extend(current.into_iter().chain(by_ip).filter(|(_, s)| in_both(s)));
    let mut users = store.conn.prepare_cached(USERS_OF_IP)?;
    let mut out = Vec::new();
    for (ip, seen) in both {
        let (mut azure_users, mut aws_users) = (Vec::new(), Vec::new());
        let mut rows = users.query(params![&*ip, since, until])?;
        while let Some(row) = rows.next()? {
            let user = row
                .get_ref(1)?
                .as_str()
                .unwrap_or_default()
                .replace(',', ";");
            match row.get_ref(0)?.as_str().unwrap_or_default() {
                "Azure" => azure_users.push(user),
                "AWS" => aws_users.push(user),
                _ => {}
            }
        }
        out.push(CrossCloudIp {
            ip: ip.into(),
            azure_events: seen.azure,
            aws_events: seen.aws,
            azure_users: azure_users.join(";"),
            aws_users: aws_users.join(";"),
            first_seen: seen.first,
            last_seen: seen.last,
        });
    }
    out.sort_by(|a, b| {
        (b.azure_events + b.aws_events)
            .cmp(&(a.azure_events + a.aws_events))
            .then_with(|| a.ip.cmp(&b.ip))
    });
    Ok(out)
}

/// Whether `[since, until)` holds a quarter or more of the store's events, by the time index's
/// count against the id range (ids only grow; retention leaves gaps, which only makes a window
/// look narrower). Reading the whole IP index costs about what a quarter of the events costs
/// through the time index, one table lookup each.
fn reads_most_of_the_store(store: &Store, since: i64, until: i64) -> Result<bool> {
    if since == i64::MIN && until == i64::MAX {
        return Ok(true);
    }
    let span: Option<i64> = store
        .conn
        .prepare_cached("SELECT (SELECT max(id) FROM events) - (SELECT min(id) FROM events) + 1")?
        .query_row([], |r| r.get(0))?;
    let Some(span) = span else {
        return Ok(true);
    };
    // Counting stops at the quarter: a narrow window of a huge store costs little to check.
    let in_window: i64 = store
        .conn
        .prepare_cached(
            "SELECT count(*) FROM (SELECT 1 FROM events INDEXED BY events_time
             WHERE time >= ?1 AND time < ?2 LIMIT ?3)",
        )?
        .query_row(params![since, until, span / 4 + 1], |r| r.get(0))?;
    Ok(in_window > span / 4)
}

/// The newest event time at or before `until_ms` (an index range: records dated far in the
/// future are left out).
pub fn max_event_time_until(store: &Store, until_ms: i64) -> Result<Option<i64>> {
    Ok(store
        .conn
        .prepare_cached("SELECT max(time) FROM events WHERE time <= ?1")?
        .query_row([until_ms], |r| r.get(0))?)
}

/// The newest event time in the store.
pub fn max_event_time(store: &Store) -> Result<Option<i64>> {
    Ok(store
        .conn
        .prepare_cached("SELECT max(time) FROM events")?
        .query_row([], |r| r.get(0))?)
}

/// The stored events with these source record ids (either source), for the events behind
/// signals.
pub fn events_by_record_ids(store: &Store, record_ids: &[String]) -> Result<Vec<StoredEvent>> {
    // By the dedup key (see `crate::dedup`): the keyed row, else an unkeyed one.
    let mut stmt = store.conn.prepare_cached(if store.keyed {
        "SELECT id, event, event_dict FROM events
         WHERE record_key = ?3 AND source = ?1 AND record_id = ?2
         UNION ALL
         SELECT id, event, event_dict FROM events INDEXED BY events_unkeyed
         WHERE record_key IS NULL AND source = ?1 AND record_id = ?2
         LIMIT 1"
    } else {
        "SELECT id, event, event_dict FROM events WHERE source = ?1 AND record_id = ?2"
    })?;
    let mut out = Vec::new();
    for record_id in record_ids {
        for source in [
            crosswind_model::RecordSource::EntraSignIn,
            crosswind_model::RecordSource::CloudTrail,
        ] {
            let source = source.as_str();
            let mut rows = if store.keyed {
                let key = crate::dedup::record_key(source, record_id);
                stmt.query(params![source, record_id, key])?
            } else {
                stmt.query(params![source, record_id])?
            };
            while let Some(row) = rows.next()? {
                out.push(crate::stored_event(store, row)?);
            }
        }
    }
    Ok(out)
}
