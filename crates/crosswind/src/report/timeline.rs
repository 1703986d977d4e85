//! One identity's timeline as inline SVG: two lanes on one time axis (Entra above, AWS below)
//! with its events as marks, its signals as labelled markers, and below them its decayed risk
//! score with the finding threshold.
//!
//! Outcomes never rely on colour alone: a success is a filled dot above the lane's middle, a
//! failure a cross below it; when events are too dense to draw one by one they are binned into
//! bars, successes solid and rising, failures hatched and hanging. Every mark carries a `<title>`
//! (the browser's tooltip, no script needed).

use chrono::{DateTime, Datelike, Timelike, Utc};
use crosswind_model::{CloudProvider, Finding, Signal};
use crosswind_store::report::Outcome;

use super::html::Html;

/// The drawing's coordinate system (the SVG scales to the page width).
const WIDTH: f64 = 1000.0;
const LEFT: f64 = 104.0;
const RIGHT: f64 = 18.0;
const AXIS_H: f64 = 22.0;
const LABEL_ROW_H: f64 = 15.0;
const LABEL_ROWS: usize = 4;
const LANE_H: f64 = 76.0;
/// Vertical distance of the outcome rows from a lane's middle, and between stacked marks.
const ROW_OFFSET: f64 = 11.0;
const STACK_STEP: f64 = 8.5;
const STACK_LEVELS: usize = 3;
/// Marks closer than this (px) in one row are stacked.
const MARK_GAP: f64 = 9.0;
const GAP: f64 = 16.0;
const SCORE_H: f64 = 130.0;
/// Signal labels are 11 px text: about this many px per character.
const CHAR_W: f64 = 6.2;

/// An event drawn on its own.
pub struct Dot {
    pub time: i64,
    pub provider: CloudProvider,
    pub outcome: Outcome,
    /// One of the events behind a signal.
    pub evidence: bool,
    /// Made under another name (what one of its sources did, e.g. a sprayed user).
    pub other: bool,
    /// The tooltip.
    pub tip: String,
}

/// Events of one time slice, per lane (0 Entra, 1 AWS), when there are too many to draw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bin {
    pub start: i64,
    pub end: i64,
    pub ok: [u64; 2],
    pub failed: [u64; 2],
    pub other: [u64; 2],
}

/// What one timeline shows.
pub struct TimelineData<'a> {
    /// Unique within the page (ids of the SVG's pattern definitions).
    pub id: &'a str,
    pub from: i64,
    pub to: i64,
    pub dots: &'a [Dot],
    /// Set when the events are binned; `dots` then holds only the evidence.
    pub bins: Option<&'a [Bin]>,
    /// Events of its names in the window, per lane.
    pub lane_events: [usize; 2],
    /// Events of other names drawn per lane (what its sources did).
    pub lane_others: [usize; 2],
    /// Signals in the window, oldest first, and the score right after each (`None`: a
    /// threat-only signal naming one of its sources).
    pub signals: Vec<(&'a Signal, Option<f64>)>,
    /// The decayed score sampled over the window, oldest first.
    pub curve: &'a [(i64, f64)],
    pub findings: Vec<&'a Finding>,
    pub threshold: f64,
}

pub fn lane_of(provider: CloudProvider) -> usize {
    match provider {
        CloudProvider::Azure => 0,
        CloudProvider::Aws => 1,
    }
}

const LANE_NAMES: [&str; 2] = ["Entra ID", "AWS"];
const LANE_CLASSES: [&str; 2] = ["lane-entra", "lane-aws"];

struct Geometry {
    from: i64,
    span: f64,
    lanes_top: f64,
    score_top: f64,
    height: f64,
}

impl Geometry {
    fn new(from: i64, to: i64) -> Geometry {
        let lanes_top = AXIS_H + LABEL_ROWS as f64 * LABEL_ROW_H + 4.0;
        let score_top = lanes_top + 2.0 * LANE_H + GAP;
        Geometry {
            from,
            span: (to.saturating_sub(from)).max(1) as f64,
            lanes_top,
            score_top,
            height: score_top + SCORE_H + AXIS_H,
        }
    }

    fn x(&self, t: i64) -> f64 {
        let f = (t.saturating_sub(self.from)) as f64 / self.span;
        LEFT + f.clamp(0.0, 1.0) * (WIDTH - LEFT - RIGHT)
    }

    fn lane_top(&self, lane: usize) -> f64 {
        self.lanes_top + lane as f64 * LANE_H
    }

    fn lane_mid(&self, lane: usize) -> f64 {
        self.lane_top(lane) + LANE_H / 2.0
    }
}

/// Writes the `<svg>`.
pub fn render(h: &mut Html, t: &TimelineData<'_>) {
    let g = Geometry::new(t.from, t.to);
    let hatch = format!("hatch-{}", t.id);
    h.tag("svg")
        .class("timeline")
        .attr("viewBox", format!("0 0 {WIDTH} {}", g.height))
        .attr("role", "img")
        .attr(
            "aria-label",
            "timeline of Entra ID and AWS activity with the risk score",
        )
        .body(|h| {
            h.tag("defs").body(|h| {
                h.tag("pattern")
                    .attr("id", &hatch)
                    .attr("width", 4.0)
                    .attr("height", 4.0)
                    .attr("patternUnits", "userSpaceOnUse")
                    .attr("patternTransform", "rotate(45)")
                    .body(|h| {
                        h.tag("rect")
                            .attr("width", 4.0)
                            .attr("height", 4.0)
                            .class("hatch-bg")
                            .empty();
                        h.tag("line")
                            .attr("x1", 0.0)
                            .attr("y1", 0.0)
                            .attr("x2", 0.0)
                            .attr("y2", 4.0)
                            .class("hatch-line")
                            .empty();
                    });
            });
            lanes(h, &g, t);
            grid_and_axis(h, &g, t.from, t.to);
            if let Some(bins) = t.bins {
                draw_bins(h, &g, bins, &hatch);
            }
            let levels = stack_levels(&g, t.dots);
            for (dot, level) in t.dots.iter().zip(levels) {
                draw_dot(h, &g, dot, level);
            }
            draw_signals(h, &g, &t.signals);
            score_panel(h, &g, t);
        });
}

fn lanes(h: &mut Html, g: &Geometry, t: &TimelineData<'_>) {
    for lane in 0..2 {
        let top = g.lane_top(lane);
        h.tag("rect")
            .class(LANE_CLASSES[lane])
            .attr("x", LEFT)
            .attr("y", top)
            .attr("width", WIDTH - LEFT - RIGHT)
            .attr("height", LANE_H)
            .empty();
        h.tag("line")
            .class("lane-mid")
            .attr("x1", LEFT)
            .attr("x2", WIDTH - RIGHT)
            .attr("y1", g.lane_mid(lane))
            .attr("y2", g.lane_mid(lane))
            .empty();
        h.tag("text")
            .class("lane-name")
            .attr("x", LEFT - 8.0)
            .attr("y", g.lane_mid(lane) - 3.0)
            .attr("text-anchor", "end")
            .text(LANE_NAMES[lane]);
        let n = t.lane_events[lane];
        h.tag("text")
            .class("lane-count")
            .attr("x", LEFT - 8.0)
            .attr("y", g.lane_mid(lane) + 11.0)
            .attr("text-anchor", "end")
            .text(&format!(
                "{} event{}",
                thousands(n as u64),
                if n == 1 { "" } else { "s" }
            ));
        let others = t.lane_others[lane];
        if others > 0 {
            h.tag("text")
                .class("lane-count")
                .attr("x", LEFT - 8.0)
                .attr("y", g.lane_mid(lane) + 24.0)
                .attr("text-anchor", "end")
                .text(&format!("+{} by its sources", thousands(others as u64)));
        }
    }
}

/// A "nice" tick step for a span: about six to ten ticks.
fn tick_step(span_ms: i64) -> i64 {
    const MIN: i64 = 60_000;
    const STEPS: [i64; 17] = [
        MIN,
        2 * MIN,
        5 * MIN,
        10 * MIN,
        15 * MIN,
        30 * MIN,
        60 * MIN,
        2 * 60 * MIN,
        3 * 60 * MIN,
        6 * 60 * MIN,
        12 * 60 * MIN,
        24 * 60 * MIN,
        2 * 24 * 60 * MIN,
        7 * 24 * 60 * MIN,
        14 * 24 * 60 * MIN,
        30 * 24 * 60 * MIN,
        90 * 24 * 60 * MIN,
    ];
    STEPS
        .iter()
        .copied()
        .find(|s| span_ms / s <= 9)
        .unwrap_or(STEPS[STEPS.len() - 1])
}

/// Tick times (UTC-aligned multiples of the step) within `[from, to]`.
pub fn ticks(from: i64, to: i64) -> (i64, Vec<i64>) {
    let step = tick_step(to.saturating_sub(from));
    let first = from.div_euclid(step) * step + if from.rem_euclid(step) == 0 { 0 } else { step };
    let mut out = Vec::new();
    let mut t = first;
    while t <= to && out.len() < 40 {
        out.push(t);
        t += step;
    }
    (step, out)
}

fn grid_and_axis(h: &mut Html, g: &Geometry, from: i64, to: i64) {
    let (step, ticks) = ticks(from, to);
    let bottom = g.score_top + SCORE_H;
    let mut last_day = None;
    for t in ticks {
        let x = g.x(t);
        h.tag("line")
            .class("grid")
            .attr("x1", x)
            .attr("x2", x)
            .attr("y1", g.lanes_top)
            .attr("y2", bottom)
            .empty();
        let Some(dt) = DateTime::<Utc>::from_timestamp_millis(t) else {
            continue;
        };
        let day = (dt.year(), dt.ordinal());
        let label = if step >= 86_400_000 {
            dt.format("%b %d").to_string()
        } else if last_day != Some(day) {
            dt.format("%b %d %H:%M").to_string()
        } else {
            format!("{:02}:{:02}", dt.hour(), dt.minute())
        };
        last_day = Some(day);
        for y in [AXIS_H - 7.0, bottom + AXIS_H - 6.0] {
            h.tag("text")
                .class("tick")
                .attr("x", x)
                .attr("y", y)
                .attr("text-anchor", "middle")
                .text(&label);
        }
    }
    h.tag("text")
        .class("tick utc")
        .attr("x", 4.0)
        .attr("y", AXIS_H - 7.0)
        .text("times UTC");
}

/// How far each dot is pushed away from its row so that marks close in time do not hide one
/// another (`dots` oldest first): the lowest level whose previous mark is far enough, cycling
/// when all are taken.
fn stack_levels(g: &Geometry, dots: &[Dot]) -> Vec<usize> {
    // Per lane and outcome row, the x of the last mark on each level.
    let mut last: Vec<[f64; STACK_LEVELS]> = vec![[f64::MIN; STACK_LEVELS]; 6];
    let mut cycle = [0usize; 6];
    dots.iter()
        .map(|d| {
            let row = lane_of(d.provider) * 3
                + match d.outcome {
                    Outcome::Success => 0,
                    Outcome::Failure => 1,
                    Outcome::Unknown => 2,
                };
            let x = g.x(d.time);
            let level = last[row]
                .iter()
                .position(|prev| x - prev >= MARK_GAP)
                .unwrap_or_else(|| {
                    cycle[row] = (cycle[row] + 1) % STACK_LEVELS;
                    cycle[row]
                });
            last[row][level] = x;
            level
        })
        .collect()
}

fn draw_dot(h: &mut Html, g: &Geometry, dot: &Dot, level: usize) {
    let lane = lane_of(dot.provider);
    let x = g.x(dot.time);
    let mid = g.lane_mid(lane);
    let away = ROW_OFFSET + level as f64 * STACK_STEP;
    let ring_it = dot.evidence && !dot.other;
    h.tag("g")
        .class(if dot.other { "ev other" } else { "ev" })
        .body(|h| {
            h.tag("title").text(&dot.tip);
            match dot.outcome {
                Outcome::Success => {
                    let y = mid - away;
                    if ring_it {
                        ring(h, x, y);
                    }
                    h.tag("circle")
                        .class(["ok ok-entra", "ok ok-aws"][lane])
                        .attr("cx", x)
                        .attr("cy", y)
                        .attr("r", 4.5)
                        .empty();
                }
                Outcome::Failure => {
                    let y = mid + away;
                    if ring_it {
                        ring(h, x, y);
                    }
                    let d = 4.0;
                    h.tag("path")
                        .class("fail")
                        .attr(
                            "d",
                            format!(
                                "M{:.1} {:.1}L{:.1} {:.1}M{:.1} {:.1}L{:.1} {:.1}",
                                x - d,
                                y - d,
                                x + d,
                                y + d,
                                x - d,
                                y + d,
                                x + d,
                                y - d
                            ),
                        )
                        .empty();
                }
                Outcome::Unknown => {
                    let y = mid
                        + if level.is_multiple_of(2) {
                            0.0
                        } else {
                            STACK_STEP / 2.0
                        };
                    if ring_it {
                        ring(h, x, y);
                    }
                    h.tag("rect")
                        .class("unknown")
                        .attr("x", x - 3.5)
                        .attr("y", y - 3.5)
                        .attr("width", 7.0)
                        .attr("height", 7.0)
                        .empty();
                }
            }
        });
}

/// The ring around an event behind a signal.
fn ring(h: &mut Html, x: f64, y: f64) {
    h.tag("circle")
        .class("evidence")
        .attr("cx", x)
        .attr("cy", y)
        .attr("r", 6.5)
        .empty();
}

fn draw_bins(h: &mut Html, g: &Geometry, bins: &[Bin], hatch: &str) {
    let max = bins
        .iter()
        .flat_map(|b| b.ok.iter().chain(&b.failed).chain(&b.other))
        .copied()
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let half = LANE_H / 2.0 - 4.0;
    // Square-root heights: a bin of 4 events stays visible next to one of 4,000.
    let height = |n: u64| {
        if n == 0 {
            0.0
        } else {
            (half * (n as f64 / max).sqrt()).max(1.5)
        }
    };
    for b in bins {
        let x0 = g.x(b.start);
        let w = (g.x(b.end) - x0 - 0.6).max(0.8);
        for (lane, lane_name) in LANE_NAMES.iter().enumerate() {
            let (ok, failed, other) = (b.ok[lane], b.failed[lane], b.other[lane]);
            if ok + failed + other == 0 {
                continue;
            }
            let mid = g.lane_mid(lane);
            h.tag("g").class("bin").body(|h| {
                h.tag("title").text(&format!(
                    "{} – {} UTC · {}: {} succeeded, {} failed{}",
                    short_time(b.start),
                    short_time(b.end),
                    lane_name,
                    thousands(ok),
                    thousands(failed),
                    if other > 0 {
                        format!(", {} unknown", thousands(other))
                    } else {
                        String::new()
                    }
                ));
                let up = height(ok + other);
                if up > 0.0 {
                    h.tag("rect")
                        .class(["bar-ok ok-entra", "bar-ok ok-aws"][lane])
                        .attr("x", x0)
                        .attr("y", mid - up)
                        .attr("width", w)
                        .attr("height", up)
                        .empty();
                }
                let down = height(failed);
                if down > 0.0 {
                    h.tag("rect")
                        .class("bar-fail")
                        .attr("x", x0)
                        .attr("y", mid)
                        .attr("width", w)
                        .attr("height", down)
                        .attr("fill", format!("url(#{hatch})"))
                        .empty();
                }
            });
        }
    }
}

fn draw_signals(h: &mut Html, g: &Geometry, signals: &[(&Signal, Option<f64>)]) {
    // Labels go into the rows above the lanes, each in the first row where it does not overlap
    // the previous label; one that fits nowhere keeps its marker and tooltip only.
    let mut row_end = [f64::MIN; LABEL_ROWS];
    let mut unlabelled = 0usize;
    for (s, after) in signals {
        let x = g.x(s.time);
        let lanes: Vec<usize> = if s.cloud.is_empty() {
            vec![0, 1]
        } else {
            let mut l: Vec<usize> = s.cloud.iter().map(|c| lane_of(*c)).collect();
            l.sort();
            l.dedup();
            l
        };
        let threat = s.threat_object.as_deref().unwrap_or("?");
        let label = match after {
            Some(_) => format!("{} {}", s.signal, fmt_delta(s.risk_score)),
            None => format!("{} from {threat}", s.signal),
        };
        let width = label.chars().count() as f64 * CHAR_W;
        let (anchor_end, x0, x1) = if x + 3.0 + width > WIDTH - RIGHT {
            (true, x - 3.0 - width, x)
        } else {
            (false, x, x + 3.0 + width)
        };
        let row = row_end.iter().position(|end| *end + 6.0 < x0);
        let attack = if s.mitre_technique_id.is_empty() {
            "—".to_string()
        } else {
            s.mitre_technique_id.join(", ")
        };
        let tip = match after {
            Some(after) => format!(
                "{} UTC · {} {} → score {} · ATT&CK {attack} · {}",
                short_time(s.time),
                s.signal,
                fmt_delta(s.risk_score),
                fmt_score(*after),
                s.risk_message
            ),
            None => format!(
                "{} UTC · {} from {threat} (a source this identity's activity came from) · ATT&CK {attack} · {}",
                short_time(s.time),
                s.signal,
                s.risk_message
            ),
        };
        let source = after.is_none();
        h.tag("g")
            .class(if source { "sig source" } else { "sig" })
            .body(|h| {
                h.tag("title").text(&tip);
                let top = match row {
                    Some(r) => AXIS_H + r as f64 * LABEL_ROW_H + 4.0,
                    None => g.lanes_top,
                };
                h.tag("line")
                    .class("sig-line")
                    .attr("x1", x)
                    .attr("x2", x)
                    .attr("y1", top)
                    .attr("y2", g.score_top + SCORE_H)
                    .empty();
                for lane in &lanes {
                    let y = g.lane_mid(*lane);
                    h.tag("path")
                        .class("sig-mark")
                        .attr("d", format!("M{:.1} {:.1}l7 7l-7 7l-7 -7z", x, y - 7.0))
                        .empty();
                }
                if let Some(r) = row {
                    row_end[r] = x1;
                    let text = h
                        .tag("text")
                        .class("sig-label")
                        .attr("x", if anchor_end { x - 3.0 } else { x + 3.0 })
                        .attr("y", AXIS_H + r as f64 * LABEL_ROW_H + 14.0);
                    let text = if anchor_end {
                        text.attr("text-anchor", "end")
                    } else {
                        text
                    };
                    text.text(&label);
                }
            });
        if row.is_none() {
            unlabelled += 1;
        }
    }
    if unlabelled > 0 {
        h.tag("text")
            .class("row-hint")
            .attr("x", LEFT - 8.0)
            .attr("y", AXIS_H + 30.0)
            .attr("text-anchor", "end")
            .text(&format!("+{unlabelled} unlabelled"));
    }
}

fn score_panel(h: &mut Html, g: &Geometry, t: &TimelineData<'_>) {
    let top = g.score_top;
    let bottom = top + SCORE_H;
    let peak = t
        .curve
        .iter()
        .map(|p| p.1)
        .chain(t.signals.iter().filter_map(|s| s.1))
        .fold(0.0f64, f64::max);
    let ymax = nice_ceiling(peak.max(t.threshold) * 1.12);
    let y = |v: f64| bottom - (v.max(0.0) / ymax).min(1.0) * (SCORE_H - 6.0);
    h.tag("rect")
        .class("score-bg")
        .attr("x", LEFT)
        .attr("y", top)
        .attr("width", WIDTH - LEFT - RIGHT)
        .attr("height", SCORE_H)
        .empty();
    // Above the threshold: the finding zone.
    h.tag("rect")
        .class("danger")
        .attr("x", LEFT)
        .attr("y", y(ymax))
        .attr("width", WIDTH - LEFT - RIGHT)
        .attr("height", (y(t.threshold) - y(ymax)).max(0.0))
        .empty();
    h.tag("text")
        .class("lane-name")
        .attr("x", LEFT - 8.0)
        .attr("y", top + SCORE_H / 2.0 - 10.0)
        .attr("text-anchor", "end")
        .text("risk score");
    for v in [0.0, t.threshold, ymax] {
        h.tag("text")
            .class("tick")
            .attr("x", LEFT - 8.0)
            .attr("y", y(v) + 4.0)
            .attr("text-anchor", "end")
            .text(&fmt_score(v));
    }
    if let (Some(first), Some(last)) = (t.curve.first(), t.curve.last()) {
        let mut line = String::new();
        for (i, (time, v)) in t.curve.iter().enumerate() {
            line.push_str(&format!(
                "{}{:.1} {:.1}",
                if i == 0 { "M" } else { "L" },
                g.x(*time),
                y(*v)
            ));
        }
        let area = format!(
            "{line}L{:.1} {:.1}L{:.1} {:.1}z",
            g.x(last.0),
            bottom,
            g.x(first.0),
            bottom
        );
        h.tag("path").class("score-area").attr("d", area).empty();
        h.tag("path").class("score-line").attr("d", line).empty();
    }
    let ty = y(t.threshold);
    h.tag("line")
        .class("threshold")
        .attr("x1", LEFT)
        .attr("x2", WIDTH - RIGHT)
        .attr("y1", ty)
        .attr("y2", ty)
        .empty();
    h.tag("text")
        .class("threshold-label")
        .attr("x", LEFT + 4.0)
        .attr("y", ty - 4.0)
        .text(&format!("finding threshold {}", fmt_score(t.threshold)));
    // Finding labels left to right; one that would overlap the previous keeps its marker only.
    let mut label_end = LEFT + 4.0 + 110.0;
    for f in &t.findings {
        let (x, fy) = (g.x(f.raised_at), y(f.score));
        h.tag("g").class("finding").body(|h| {
            h.tag("title").text(&format!(
                "finding at {} UTC: score {} · {}",
                short_time(f.raised_at),
                fmt_score(f.score),
                f.summary
            ));
            h.tag("path")
                .class("finding-mark")
                .attr("d", format!("M{:.1} {:.1}l6 -11h-12z", x, fy - 3.0))
                .empty();
            let text = format!("finding {}", fmt_score(f.score));
            let width = text.chars().count() as f64 * CHAR_W;
            let right = x + 8.0 + width > WIDTH - RIGHT;
            let (x0, x1) = if right {
                (x - 8.0 - width, x)
            } else {
                (x, x + 8.0 + width)
            };
            if x0 > label_end + 4.0 {
                label_end = x1;
                let label = h
                    .tag("text")
                    .class("finding-label")
                    .attr("x", if right { x - 8.0 } else { x + 8.0 })
                    .attr("y", (fy - 6.0).max(top + 10.0));
                let label = if right {
                    label.attr("text-anchor", "end")
                } else {
                    label
                };
                label.text(&text);
            }
        });
    }
}

/// A round number at least `v` (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten).
fn nice_ceiling(v: f64) -> f64 {
    if !(v.is_finite() && v > 0.0) {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * p)
}

/// A score as the report prints it: whole when it is, else one decimal.
/// A signal's score as what it adds: `+64`, or `-64` for a withdrawal.
pub fn fmt_delta(v: f64) -> String {
    if v < 0.0 {
        format!("-{}", fmt_score(-v))
    } else {
        format!("+{}", fmt_score(v))
    }
}

pub fn fmt_score(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r == r.trunc() {
        format!("{}", r as i64)
    } else {
        format!("{r:.1}")
    }
}

/// `2026-12-04 14:52:17` (UTC).
pub fn short_time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
