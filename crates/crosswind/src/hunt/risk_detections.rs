//! `risk-detections`: Identity Protection risk detections whose activity falls in the range, one
//! row per detection in its latest stored state (a detection is stored once per state,
//! `<id>@<lastUpdatedDateTime>`: docs/schema.md), filtered by user, level and state.

use std::collections::BTreeMap;

use crosswind_model::{CLASS_DETECTION_FINDING, CloudProvider, Event};
use crosswind_store::{EventQuery, Store, StoreError, Subset};
use serde_json::{Value, json};

use super::{Filters, Range};
use crate::output::Rows;
use crate::timearg::format_time;

/// One detection: its latest state and how many states were stored.
struct Latest {
    event: Event,
    updated: i64,
    states: usize,
}

fn updated_of(e: &Event) -> i64 {
    e.finding_info.as_ref().map_or(e.time, |f| f.modified_time)
}

fn matches(value: Option<&str>, wanted: Option<&str>) -> bool {
    wanted.is_none_or(|w| value.is_some_and(|v| v.eq_ignore_ascii_case(w)))
}

pub(super) fn run(store: &Store, range: Range, filters: &Filters) -> anyhow::Result<Rows> {
    let query = EventQuery {
        since: range.since,
        until: range.until,
        provider: Some(CloudProvider::Azure),
        class_uid: Some(CLASS_DETECTION_FINDING),
        success_only: false,
        subset: Some(Subset::RiskDetections),
    };
    // Latest state per detection id; the filters apply to that state (a detection dismissed
    // later is listed as dismissed, not as the atRisk it was).
    let mut latest: BTreeMap<String, Latest> = BTreeMap::new();
    store.for_each_event(&query, |stored| {
        let e = stored.event;
        let Some(uid) = e.finding_info.as_ref().map(|f| f.uid.clone()) else {
            return Ok::<_, StoreError>(true);
        };
        let updated = updated_of(&e);
        match latest.get_mut(&uid) {
            Some(l) => {
                l.states += 1;
                if updated >= l.updated {
                    l.updated = updated;
                    l.event = e;
                }
            }
            None => {
                latest.insert(
                    uid,
                    Latest {
                        event: e,
                        updated,
                        states: 1,
                    },
                );
            }
        }
        Ok(true)
    })?;
    let user_filter = filters.user.as_deref().map(str::to_lowercase);
    let mut hits: Vec<(String, Latest)> = latest
        .into_iter()
        .filter(|(_, l)| {
            let e = &l.event;
            let entra = e.entra.as_ref();
            let user = e.user.as_ref();
            let user_ok = user_filter.as_deref().is_none_or(|w| {
                user.is_some_and(|u| {
                    u.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(w))
                        || u.uid.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(w))
                })
            });
            user_ok
                && matches(
                    entra.and_then(|x| x.risk_level.as_deref()),
                    filters.level.as_deref(),
                )
                && matches(
                    entra.and_then(|x| x.risk_state.as_deref()),
                    filters.state.as_deref(),
                )
        })
        .collect();
    hits.sort_by(|a, b| b.1.event.time.cmp(&a.1.event.time).then(a.0.cmp(&b.0)));
    let mut rows = Rows::new(vec![
        "time",
        "detected",
        "updated",
        "user",
        "risk_event_type",
        "risk_level",
        "risk_state",
        "risk_detail",
        "timing",
        "src_ip",
        "country",
        "states",
        "detection_id",
    ]);
    let opt = |v: Option<&String>| v.map_or(Value::Null, |s| json!(s));
    for (uid, l) in hits {
        let e = &l.event;
        let entra = e.entra.as_ref();
        let f = e.finding_info.as_ref();
        rows.push(vec![
            json!(format_time(e.time)),
            f.and_then(|f| f.created_time)
                .map_or(Value::Null, |t| json!(format_time(t))),
            json!(format_time(l.updated)),
            opt(e
                .user
                .as_ref()
                .and_then(|u| u.name.as_ref().or(u.uid.as_ref()))),
            opt(f.map(|f| &f.title)),
            opt(entra.and_then(|x| x.risk_level.as_ref())),
            opt(entra.and_then(|x| x.risk_state.as_ref())),
            opt(entra.and_then(|x| x.risk_detail.as_ref())),
            opt(entra.and_then(|x| x.detection_timing_type.as_ref())),
            opt(e.src_endpoint.ip.as_ref()),
            opt(e
                .src_endpoint
                .location
                .as_ref()
                .and_then(|l| l.country.as_ref())),
            json!(l.states),
            json!(uid),
        ]);
    }
    Ok(rows)
}
