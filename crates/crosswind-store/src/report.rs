//! Aggregates for `crosswind report`: counts per cloud, source IPs with their first and last
//! sighting, and the light (time, cloud, outcome) rows a dense timeline is binned from. They
//! read the plain columns of `events` only; the event JSON is decoded just for the few rows a
//! report shows in detail (an IP's place, the events of one identity's window).

use std::collections::{BTreeSet, HashMap, HashSet};

use crosswind_model::{CloudProvider, Location, STATUS_FAILURE, STATUS_SUCCESS};
use rusqlite::params;

use crate::{Result, Store, StoredEvent};

/// Events of one cloud in a time range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloudCount {
    pub provider: CloudProvider,
    pub events: u64,
    /// `status_id` failure.
    pub failed: u64,
    pub first: i64,
    pub last: i64,
}

/// One source IP in a time range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceIp {
    pub ip: String,
    pub azure_events: u64,
    pub aws_events: u64,
    pub failed: u64,
    /// Distinct user names (as recorded) it acted as.
    pub users: u64,
    /// The first of those names in sort order, at most as many as asked for.
    pub sample_users: Vec<String>,
    pub first_seen: i64,
    pub last_seen: i64,
}

/// Events per cloud and per source IP in a time range: one pass over the indexed columns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Activity {
    /// Entra first.
    pub clouds: Vec<CloudCount>,
    /// In no particular order.
    pub ips: Vec<SourceIp>,
}

/// An event reduced to what a timeline bins: when, which cloud, how it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventMark {
    pub time: i64,
    pub provider: CloudProvider,
    pub outcome: Outcome,
}

/// `status_id` as three cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Success,
    Failure,
    Unknown,
}

impl Outcome {
    pub fn from_status(status_id: u8) -> Outcome {
        match status_id {
            STATUS_SUCCESS => Outcome::Success,
            STATUS_FAILURE => Outcome::Failure,
            _ => Outcome::Unknown,
        }
    }
}

fn provider(text: &str) -> CloudProvider {
    if text == CloudProvider::Aws.as_str() {
        CloudProvider::Aws
    } else {
        CloudProvider::Azure
    }
}

/// What happened in `[since, until)`: events per cloud, and per source IP its events, failures,
/// distinct user names (with up to `sample_users` of them) and first and last sighting. With
/// `names`, only the events of those user names (exactly as given: pass the spellings to match).
///
/// Aggregated here rather than by SQLite's GROUP BY, whose sorter took seven times as long as
/// the scan itself over a million events.
pub fn activity(
    store: &Store,
    since: i64,
    until: i64,
    names: Option<&[String]>,
    sample_users: usize,
) -> Result<Activity> {
    const COLUMNS: &str = "SELECT provider, status_id, time, src_ip, user_name FROM events";
    let names = names
        .map(|n| serde_json::to_string(&distinct(n)))
        .transpose()
        .map_err(crate::StoreError::Serialize)?;
    // Unbounded: a plain scan. Bounded: the time index. Named: the user index.
    let sql = match (&names, since == i64::MIN && until == i64::MAX) {
        (None, true) => format!("{COLUMNS} WHERE ?1 IS NOT NULL AND ?2 IS NOT NULL"),
        (None, false) => format!("{COLUMNS} WHERE time >= ?1 AND time < ?2"),
        (Some(_), _) => format!(
            "{COLUMNS} WHERE user_name IN (SELECT value FROM json_each(?3))
               AND time >= ?1 AND time < ?2"
        ),
    };
    let mut stmt = store.conn.prepare_cached(&sql)?;
    let mut rows = match &names {
        None => stmt.query(params![since, until])?,
        Some(n) => stmt.query(params![since, until, n])?,
    };

    #[derive(Default)]
    struct IpAcc {
        azure: u64,
        aws: u64,
        failed: u64,
        first: i64,
        last: i64,
        users: HashSet<u32>,
    }
    let mut clouds: [Option<CloudCount>; 2] = [None, None];
    let mut ips: HashMap<String, IpAcc> = HashMap::new();
    // User names interned: a spray source acts as thousands of them.
    let mut user_ids: HashMap<String, u32> = HashMap::new();
    while let Some(row) = rows.next()? {
        let provider = provider(row.get_ref(0)?.as_str().unwrap_or_default());
        let failed = row.get::<_, i64>(1)? == i64::from(STATUS_FAILURE);
        let time: i64 = row.get(2)?;
        let lane = usize::from(provider == CloudProvider::Aws);
        let c = clouds[lane].get_or_insert(CloudCount {
            provider,
            events: 0,
            failed: 0,
            first: time,
            last: time,
        });
        c.events += 1;
        c.failed += u64::from(failed);
        c.first = c.first.min(time);
        c.last = c.last.max(time);
        let Some(ip) = row.get_ref(3)?.as_str_or_null().ok().flatten() else {
            continue;
        };
        let acc = match ips.get_mut(ip) {
            Some(acc) => acc,
            None => ips.entry(ip.to_owned()).or_insert(IpAcc {
                first: time,
                last: time,
                ..IpAcc::default()
            }),
        };
        match provider {
            CloudProvider::Azure => acc.azure += 1,
            CloudProvider::Aws => acc.aws += 1,
        }
        acc.failed += u64::from(failed);
        acc.first = acc.first.min(time);
        acc.last = acc.last.max(time);
        if let Some(user) = row.get_ref(4)?.as_str_or_null().ok().flatten() {
            let next = user_ids.len() as u32;
            let id = match user_ids.get(user) {
                Some(id) => *id,
                None => *user_ids.entry(user.to_owned()).or_insert(next),
            };
            acc.users.insert(id);
        }
    }
    let mut names_by_id: Vec<&str> = vec![""; user_ids.len()];
    for (name, id) in &user_ids {
        names_by_id[*id as usize] = name;
    }
    let ips = ips
        .into_iter()
        .map(|(ip, acc)| {
            let mut users: Vec<&str> = acc
                .users
                .iter()
                .map(|id| names_by_id[*id as usize])
                .collect();
            users.sort_unstable();
            SourceIp {
                ip,
                azure_events: acc.azure,
                aws_events: acc.aws,
                failed: acc.failed,
                users: acc.users.len() as u64,
                sample_users: users
                    .iter()
                    .take(sample_users)
                    .map(|u| u.to_string())
                    .collect(),
                first_seen: acc.first,
                last_seen: acc.last,
            }
        })
        .collect();
    Ok(Activity {
        clouds: clouds.into_iter().flatten().collect(),
        ips,
    })
}

/// The newest Entra sign-ins from one IP in a window (a seek on the IP index).
pub(crate) const PLACE_OF_IP: &str = "SELECT id, event, event_dict FROM events
     WHERE src_ip = ?1 AND time >= ?2 AND time < ?3 AND provider = 'Azure'
     ORDER BY time DESC LIMIT ?4";

/// Where `ip` was placed by the newest Entra sign-in from it (CloudTrail carries no place)
/// that has a location, looking at most a few sign-ins back.
pub fn place_of_ip(store: &Store, ip: &str, since: i64, until: i64) -> Result<Option<Location>> {
    const LOOK_BACK: i64 = 8;
    let mut stmt = store.conn.prepare_cached(PLACE_OF_IP)?;
    let mut rows = stmt.query(params![ip, since, until, LOOK_BACK])?;
    while let Some(row) = rows.next()? {
        let stored = crate::stored_event(store, row)?;
        if let Some(place) = stored.event.src_endpoint.location
            && (place.city.is_some() || place.country.is_some())
        {
            return Ok(Some(place));
        }
    }
    Ok(None)
}

/// The events of these user names in `[since, until)` as light marks, oldest first.
pub fn marks_of_names(
    store: &Store,
    names: &[String],
    since: i64,
    until: i64,
) -> Result<Vec<EventMark>> {
    let mut stmt = store.conn.prepare_cached(
        "SELECT time, provider, status_id FROM events
         WHERE user_name = ?1 AND time >= ?2 AND time < ?3",
    )?;
    let mut out = Vec::new();
    for name in distinct(names) {
        let rows = stmt.query_map(params![name, since, until], |r| {
            Ok(EventMark {
                time: r.get(0)?,
                provider: provider(&r.get::<_, String>(1)?),
                outcome: Outcome::from_status(r.get(2)?),
            })
        })?;
        for mark in rows {
            out.push(mark?);
        }
    }
    out.sort_by_key(|m| (m.time, m.provider, m.outcome));
    Ok(out)
}

/// The events of these user names in `[since, until)`, newest first, at most `limit`.
pub fn events_of_names(
    store: &Store,
    names: &[String],
    since: i64,
    until: i64,
    limit: usize,
) -> Result<Vec<StoredEvent>> {
    let mut stmt = store.conn.prepare_cached(
        "SELECT id, event, event_dict FROM events
         WHERE user_name = ?1 AND time >= ?2 AND time < ?3 ORDER BY time DESC LIMIT ?4",
    )?;
    let mut out = Vec::new();
    for name in distinct(names) {
        let mut rows = stmt.query(params![name, since, until, limit as i64])?;
        while let Some(row) = rows.next()? {
            out.push(crate::stored_event(store, row)?);
        }
    }
    out.sort_by(|a, b| b.event.time.cmp(&a.event.time).then(b.id.cmp(&a.id)));
    out.dedup_by_key(|e| e.id);
    out.truncate(limit);
    Ok(out)
}

fn distinct(names: &[String]) -> BTreeSet<&str> {
    names.iter().map(String::as_str).collect()
}
