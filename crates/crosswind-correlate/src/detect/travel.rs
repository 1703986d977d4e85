//! `cross_cloud_impossible_travel`: one identity's located successes in the two clouds further
//! apart than the speed limit allows. AWS calls are placed by the location Entra reported for
//! the same IP (within [`GEO_TTL_MS`]).

use crate::StateMap;

use crosswind_model::CloudProvider;

use super::{Detector, Sweep, BOTH, Ctx, Sink, age};
use crate::catalog::{MIN_TRAVEL_KM, SignalKind};
use crate::config::CorrelateConfig;
use crate::emit::Draft;
use crate::engine::{GEO_TTL_MS, HOUR_MS, trim_oldest};
use crate::identity::Resolved;
use crate::net::{fmt_duration, haversine_km, valid_coords};

const MAX_GEO_IPS: usize = 2_000_000;
const MAX_IDENTITIES: usize = 2_000_000;

#[derive(Clone)]
struct Fix {
    t: i64,
    lat: f64,
    lon: f64,
    ip: String,
    event_id: String,
}

#[derive(Clone, Copy)]
struct GeoFix {
    t: i64,
    lat: f64,
    lon: f64,
}

/// Locations learnt from Entra per IP, and each identity's last located success per cloud.
#[derive(Clone, Default)]
pub(crate) struct Travel {
    geo: StateMap<String, GeoFix>,
    last_fix: StateMap<String, [Option<Fix>; 2]>,
}

impl Travel {
    pub fn sizes(&self) -> (usize, usize) {
        (self.geo.len(), self.last_fix.len())
    }

    /// Learn the IP's location from an Entra record (any outcome), to place AWS calls.
    pub fn learn(&mut self, c: &Ctx<'_>) {
        if let (Some(ip), Some(loc)) = (c.ip, c.ev.src_endpoint.location.as_ref())
            && let (Some(lat), Some(lon)) = (loc.lat, loc.long)
            && valid_coords(lat, lon)
            && !c.trusted
        {
            let fix = GeoFix { t: c.t, lat, lon };
            match self.geo.get_mut(ip) {
                Some(g) => *g = fix,
                None => {
                    self.geo.insert(ip.to_owned(), fix);
                }
            }
        }
    }

    /// Cross-cloud impossible travel: compare this located success with the identity's last
    /// located success in the other cloud.
    pub fn on_success(
        &mut self,
        c: &Ctx<'_>,
        who: &Resolved,
        cloud: CloudProvider,
        sink: &mut Sink<'_>,
    ) {
        if c.trusted {
            return;
        }
        let Some(ip) = c.ip else { return };
        let (lat, lon) = match cloud {
            CloudProvider::Azure => match c
                .ev
                .src_endpoint
                .location
                .as_ref()
                .and_then(|l| Some((l.lat?, l.long?)))
            {
                Some((a, b)) if valid_coords(a, b) => (a, b),
                _ => return,
            },
            CloudProvider::Aws => match self.geo.get(ip) {
                Some(g) if age(c.t, g.t) <= GEO_TTL_MS && c.t >= g.t => (g.lat, g.lon),
                _ => return,
            },
        };
        let set = c.cfg.signal(SignalKind::CrossCloudImpossibleTravel).clone();
        let (idx, other) = match cloud {
            CloudProvider::Azure => (0, 1),
            CloudProvider::Aws => (1, 0),
        };
        let fixes = match self.last_fix.get_mut(&who.name) {
            Some(f) => f,
            None => self
                .last_fix
                .entry(who.name.clone())
                .or_insert([None, None]),
        };
        let prev = fixes[other]
            .as_ref()
            .map(|p| (p.t, p.lat, p.lon, p.ip == ip));
        match &mut fixes[idx] {
            Some(f) => {
                // Reuse the buffers: this runs for most events.
                f.t = c.t;
                f.lat = lat;
                f.lon = lon;
                f.ip.clear();
                f.ip.push_str(ip);
                f.event_id.clear();
                f.event_id.push_str(c.id);
            }
            slot => {
                *slot = Some(Fix {
                    t: c.t,
                    lat,
                    lon,
                    ip: ip.to_owned(),
                    event_id: c.id.to_owned(),
                });
            }
        }
        let Some((pt, plat, plon, same_ip)) = prev else {
            return;
        };
        if same_ip || c.t < pt || age(c.t, pt) > set.window_ms {
            return;
        }
        let km = haversine_km(plat, plon, lat, lon);
        if km < MIN_TRAVEL_KM {
            return;
        }
        let Some(p) = self.last_fix.get(&who.name).and_then(|f| f[other].clone()) else {
            return;
        };
        let hours = (c.t - p.t) as f64 / HOUR_MS as f64;
        let speed = if hours > 0.0 {
            km / hours
        } else {
            f64::INFINITY
        };
        if speed <= f64::from(set.threshold) {
            return;
        }
        let (from_cloud, to_cloud) = match cloud {
            CloudProvider::Azure => ("AWS", "Entra"),
            CloudProvider::Aws => ("Entra", "AWS"),
        };
        let speed_text = if speed.is_finite() {
            format!("{speed:.0} km/h")
        } else {
            "at the same instant".to_owned()
        };
        let msg = format!(
            "{} used {from_cloud} from {} ({:.2}, {:.2}) and {} later {to_cloud} from {ip} ({lat:.2}, {lon:.2}): {km:.0} km apart, {speed_text} (limit {} km/h)",
            who.name,
            p.ip,
            p.lat,
            p.lon,
            fmt_duration(c.t - p.t),
            set.threshold
        );
        let ids = vec![p.event_id.clone(), c.id.to_owned()];
        // The threat object is always the AWS side's IP, so that A→B and B→A between the same
        // two places are one observation for repeat suppression.
        let aws_ip = match cloud {
            CloudProvider::Aws => ip.to_owned(),
            CloudProvider::Azure => p.ip.clone(),
        };
        sink.fire(
            c.t,
            Draft {
                kind: SignalKind::CrossCloudImpossibleTravel,
                risk_object: &who.name,
                is_service: who.is_service,
                score: 0.0,
                threat: Some(&aws_ip),
                clouds: BOTH,
            },
            1.0,
            || (msg, ids),
        );
    }
}

impl Detector for Travel {
    const SWEEP: Sweep = Sweep::Hourly;

    fn sweep(&mut self, cfg: &CorrelateConfig, now: i64) {
        let cut = |w: i64| now.saturating_sub(w);
        self.geo.retain(|_, g| g.t >= cut(GEO_TTL_MS));
        trim_oldest(&mut self.geo, MAX_GEO_IPS, |g| g.t);
        let travel = cfg.signal(SignalKind::CrossCloudImpossibleTravel).window_ms;
        self.last_fix
            .retain(|_, f| f.iter().flatten().any(|x| x.t >= cut(travel)));
        trim_oldest(&mut self.last_fix, MAX_IDENTITIES, |f| {
            f.iter().flatten().map(|x| x.t).max().unwrap_or(i64::MIN)
        });
    }
}
