//! The report page: summary, findings, one section per identity (aliases, timeline, signals,
//! the events behind them) and the source IPs. Static markup and the style sheet only; every
//! value from the store goes through [`Html`]'s escaping.

use crosswind_model::{CloudProvider, Finding};

use super::html::Html;
use super::timeline::{self, TimelineData, fmt_delta, fmt_score, short_time, thousands};
use super::{IdentityView, IpRow, Report, place_text};
use crate::correlation::clouds_of;
use crate::explain::what_happened;

const STYLE: &str = include_str!("report.css");

/// The whole document.
pub fn render(r: &Report) -> String {
    let mut h = Html::new();
    h.raw_static("<!DOCTYPE html>\n");
    h.tag("html").attr("lang", "en").body(|h| {
        h.tag("head").body(|h| {
            h.tag("meta").attr("charset", "utf-8").empty();
            h.tag("meta")
                .attr("name", "viewport")
                .attr("content", "width=device-width, initial-scale=1")
                .empty();
            // Nothing may load or run: no script, no fetch, styles from this file only.
            h.tag("meta")
                .attr("http-equiv", "Content-Security-Policy")
                .attr(
                    "content",
                    "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
                )
                .empty();
            h.tag("meta")
                .attr("name", "generator")
                .attr("content", concat!("crosswind ", env!("CARGO_PKG_VERSION")))
                .empty();
            h.tag("title").text(&title(r));
            h.tag("style").body(|h| {
                h.raw_static(STYLE);
            });
        });
        h.tag("body").body(|h| {
            header(h, r);
            h.tag("main").body(|h| {
                summary(h, r);
                findings(h, r);
                identities(h, r);
                ips(h, r);
            });
            footer(h, r);
        });
    });
    h.into_string()
}

fn title(r: &Report) -> String {
    match r.scope.as_deref() {
        Some([one]) => format!("{one} — crosswind investigation report"),
        _ => "Crosswind investigation report".to_string(),
    }
}

fn period_text(r: &Report) -> String {
    let first = r.clouds.iter().map(|c| c.first).min();
    let last = r.clouds.iter().map(|c| c.last).max();
    let from = r.since.or(first);
    let to = r.until.or(last);
    match (from, to) {
        (Some(a), Some(b)) => format!(
            "{} – {} UTC ({})",
            short_time(a),
            short_time(b),
            duration_text(b - a)
        ),
        _ => "no events".to_string(),
    }
}

fn duration_text(ms: i64) -> String {
    let mins = ms / 60_000;
    if mins < 120 {
        format!("{mins} min")
    } else if mins < 72 * 60 {
        format!("{:.1} h", mins as f64 / 60.0)
    } else {
        format!("{:.1} days", mins as f64 / 1440.0)
    }
}

fn header(h: &mut Html, r: &Report) {
    h.tag("header").class("top").body(|h| {
        h.tag("div").class("brand").text("crosswind");
        h.tag("h1").body(|h| {
            h.text(match r.scope.as_deref() {
                Some([_]) => "Identity investigation: ",
                _ => "Investigation report",
            });
            if let Some([one]) = r.scope.as_deref() {
                h.tag("span").class("who").text(one);
            }
        });
        h.tag("p").class("meta").body(|h| {
            h.text("Period ");
            h.tag("strong").text(&period_text(r));
            h.text(" · generated ");
            h.text(&short_time(r.generated_at));
            h.text(" UTC · store ");
            h.tag("code").text(&r.store_path);
        });
        if let Some(scope) = &r.scope {
            h.tag("p").class("meta").body(|h| {
                h.text("Limited to ");
                h.text(&scope.join(", "));
            });
        }
        if !r.unknown.is_empty() {
            h.tag("p").class("warn").text(&format!(
                "Not in the store (no identity or alias): {}",
                r.unknown.join(", ")
            ));
        }
        h.tag("nav").class("toc").body(|h| {
            for (id, label) in [
                ("summary", "Summary".to_string()),
                ("findings", format!("Findings ({})", r.findings_total)),
                (
                    "identities",
                    if r.identities_left_out.is_empty() {
                        format!("Identities ({})", r.identities.len())
                    } else {
                        format!(
                            "Identities ({} of {})",
                            r.identities.len(),
                            r.identities.len() + r.identities_left_out.len()
                        )
                    },
                ),
                (
                    "ips",
                    format!("Source IPs ({})", thousands(r.ips_total as u64)),
                ),
            ] {
                h.tag("a").href_fragment(id).text(&label);
            }
        });
    });
}

fn cloud_name(p: CloudProvider) -> &'static str {
    match p {
        CloudProvider::Azure => "Entra ID",
        CloudProvider::Aws => "AWS",
    }
}

fn cloud_badges(h: &mut Html, clouds: &[CloudProvider]) {
    for c in clouds {
        h.tag("span")
            .class(match c {
                CloudProvider::Azure => "badge entra",
                CloudProvider::Aws => "badge aws",
            })
            .text(cloud_name(*c));
    }
}

fn card(h: &mut Html, label: &str, value: &str, detail: &str) {
    h.tag("div").class("card").body(|h| {
        h.tag("div").class("card-label").text(label);
        h.tag("div").class("card-value").text(value);
        h.tag("div").class("card-detail").text(detail);
    });
}

fn summary(h: &mut Html, r: &Report) {
    h.tag("section").attr("id", "summary").body(|h| {
        h.tag("h2").text("Summary");
        h.tag("div").class("cards").body(|h| {
            for provider in [CloudProvider::Azure, CloudProvider::Aws] {
                let c = r.clouds.iter().find(|c| c.provider == provider);
                let (events, failed) = c.map_or((0, 0), |c| (c.events, c.failed));
                card(
                    h,
                    match provider {
                        CloudProvider::Azure => "Entra ID sign-ins",
                        CloudProvider::Aws => "AWS CloudTrail events",
                    },
                    &thousands(events),
                    &format!("{} failed", thousands(failed)),
                );
            }
            let identities: std::collections::BTreeSet<&str> =
                r.findings.iter().map(|f| f.identity.as_str()).collect();
            card(
                h,
                "Findings",
                &thousands(r.findings_total as u64),
                &format!(
                    "on {} identit{}",
                    identities.len(),
                    if identities.len() == 1 { "y" } else { "ies" }
                ),
            );
            card(
                h,
                "Identities with signals",
                &thousands(r.top_total as u64),
                &format!("{} signals", thousands(r.signals as u64)),
            );
        });
        h.tag("h3").text("Top identities by peak score");
        if r.top.is_empty() {
            h.tag("p")
                .class("empty")
                .text("No identity has a signal in this period.");
            return;
        }
        let scale = r
            .top
            .iter()
            .map(|t| t.peak)
            .fold(r.threshold * 1.25, f64::max);
        table(
            h,
            "rank",
            &[
                "identity",
                "clouds",
                "peak score",
                "",
                "at period end",
                "signals",
                "findings",
            ],
            |h| {
                for t in &r.top {
                    let anchor = r
                        .identities
                        .iter()
                        .find(|v| v.story.identity == t.identity)
                        .map(|v| v.anchor.as_str());
                    h.tag("tr").body(|h| {
                        h.tag("td")
                            .class("ident")
                            .body(|h| identity_link(h, &t.identity, anchor));
                        h.tag("td")
                            .class("clouds")
                            .body(|h| cloud_badges(h, &t.clouds));
                        h.tag("td").class("barcell").body(|h| {
                            let over = t.peak >= r.threshold;
                            h.tag("div").class("bar").body(|h| {
                                h.tag("div")
                                    .class(if over { "fill over" } else { "fill" })
                                    .attr("style", format!("width:{:.1}%", pct(t.peak, scale)))
                                    .empty();
                                h.tag("div")
                                    .class("mark")
                                    .attr("style", format!("left:{:.1}%", pct(r.threshold, scale)))
                                    .attr("title", format!("threshold {}", fmt_score(r.threshold)))
                                    .empty();
                            });
                        });
                        h.tag("td")
                            .class(if t.peak >= r.threshold {
                                "num hot"
                            } else {
                                "num"
                            })
                            .text(&fmt_score(t.peak));
                        h.tag("td").class("num muted").text(&fmt_score(t.score));
                        h.tag("td").class("num").text(&t.signals.to_string());
                        h.tag("td").class("num").text(&t.findings.to_string());
                    });
                }
            },
        );
        left_out(h, r.top_total, r.top.len(), "identities with signals");
    });
}

/// A table with a header row of `columns`; `rows` writes the body's rows.
fn table(h: &mut Html, class: &'static str, columns: &[&str], rows: impl FnOnce(&mut Html)) {
    h.tag("table").class(class).body(|h| {
        h.tag("thead").body(|h| {
            h.tag("tr").body(|h| {
                for c in columns {
                    h.tag("th").text(c);
                }
            });
        });
        h.tag("tbody").body(rows);
    });
}

fn pct(v: f64, scale: f64) -> f64 {
    if scale > 0.0 {
        (v / scale * 100.0).clamp(0.0, 100.0)
    } else {
        0.0
    }
}

fn identity_link(h: &mut Html, identity: &str, anchor: Option<&str>) {
    match anchor {
        Some(a) => {
            h.tag("a").href_fragment(a).text(identity);
        }
        None => {
            h.text(identity);
        }
    }
}

fn left_out(h: &mut Html, total: usize, shown: usize, what: &str) {
    if total > shown {
        h.tag("p").class("more").text(&format!(
            "… and {} more {what} not shown ({} in all).",
            thousands((total - shown) as u64),
            thousands(total as u64)
        ));
    }
}

fn findings(h: &mut Html, r: &Report) {
    h.tag("section").attr("id", "findings").body(|h| {
        h.tag("h2").text("Findings");
        if r.findings.is_empty() {
            h.tag("p")
                .class("empty")
                .text("No finding was raised in this period.");
            return;
        }
        h.tag("p").class("hint").text(
            "Highest score first. Each identity's section below shows how its score got there.",
        );
        table(
            h,
            "findings",
            &[
                "raised (UTC)",
                "identity",
                "score",
                "clouds",
                "signals",
                "latest signal",
            ],
            |h| {
                for f in &r.findings {
                    finding_row(h, r, f);
                }
            },
        );
        left_out(h, r.findings_total, r.findings.len(), "findings");
    });
}

fn finding_row(h: &mut Html, r: &Report, f: &Finding) {
    let anchor = r
        .identities
        .iter()
        .find(|v| v.story.identity == f.identity)
        .map(|v| v.anchor.as_str());
    h.tag("tr").body(|h| {
        h.tag("td").class("time").text(&short_time(f.raised_at));
        h.tag("td")
            .class("ident")
            .body(|h| identity_link(h, &f.identity, anchor));
        h.tag("td").class("num hot").text(&fmt_score(f.score));
        h.tag("td")
            .class("clouds")
            .body(|h| cloud_badges(h, &f.clouds));
        h.tag("td").class("num").text(&f.signals.len().to_string());
        h.tag("td").class("summary").body(|h| {
            // The latest signal's explanation up front, the whole summary one click away
            // (<details> needs no script).
            let (head, latest) = match f.summary.rsplit_once("; latest: ") {
                Some((head, latest)) => (head, latest),
                None => ("", f.summary.as_str()),
            };
            h.tag("div").text(latest);
            if !head.is_empty() {
                h.tag("details").body(|h| {
                    h.tag("summary").text("how the score was reached");
                    h.tag("div").class("muted").text(head);
                });
            }
        });
    });
}

fn identities(h: &mut Html, r: &Report) {
    h.tag("section").attr("id", "identities").body(|h| {
        h.tag("h2").text("Identities");
        if r.identities.is_empty() {
            h.tag("p")
                .class("empty")
                .text("No identity to show: no finding in this period.");
        }
        for v in &r.identities {
            identity_section(h, r, v);
        }
        if !r.identities_left_out.is_empty() {
            let shown: Vec<&str> = r
                .identities_left_out
                .iter()
                .take(50)
                .map(String::as_str)
                .collect();
            h.tag("p").class("more").text(&format!(
                "… and {} more identities with findings not drawn (lower peak scores): {}{}",
                r.identities_left_out.len(),
                shown.join(", "),
                if r.identities_left_out.len() > shown.len() {
                    ", …"
                } else {
                    ""
                }
            ));
        }
    });
}

fn identity_section(h: &mut Html, r: &Report, v: &IdentityView) {
    let story = &v.story;
    let peak = story.peak().map_or(0.0, |p| p.score);
    let current = story.scored.timeline.last().map_or(0.0, |p| p.score);
    let clouds = clouds_of(&story.signals);
    h.tag("article")
        .class("identity")
        .attr("id", &v.anchor)
        .body(|h| {
            h.tag("header").body(|h| {
                h.tag("h3").text(&story.identity);
                h.tag("span")
                    .class(if peak >= r.threshold {
                        "score hot"
                    } else {
                        "score"
                    })
                    .text(&format!("peak {}", fmt_score(peak)));
                h.tag("span")
                    .class("score muted")
                    .text(&format!("after its last signal {}", fmt_score(current)));
                cloud_badges(h, &clouds);
                h.tag("span").class("counts").text(&format!(
                    "{} signals · {} findings",
                    story.signals.len(),
                    story.findings.len()
                ));
            });
            aliases(h, v);
            h.tag("figure").body(|h| {
                let signals = v.signals_in_window();
                let findings = story
                    .findings
                    .iter()
                    .filter(|f| f.raised_at >= v.from && f.raised_at <= v.to)
                    .collect();
                timeline::render(
                    h,
                    &TimelineData {
                        id: &v.anchor,
                        from: v.from,
                        to: v.to,
                        dots: &v.dots,
                        bins: v.bins.as_deref(),
                        lane_events: v.lane_events,
                        lane_others: v.lane_others,
                        signals,
                        curve: &v.curve,
                        findings,
                        threshold: r.threshold,
                    },
                );
                h.tag("figcaption").body(|h| legend(h, v));
            });
            signals_table(h, v);
            evidence_table(h, v);
        });
}

fn aliases(h: &mut Html, v: &IdentityView) {
    h.tag("div").class("aliases").body(|h| {
        for provider in [CloudProvider::Azure, CloudProvider::Aws] {
            let mine: Vec<_> = v
                .story
                .aliases
                .iter()
                .filter(|a| a.cloud == provider)
                .collect();
            h.tag("div")
                .class(match provider {
                    CloudProvider::Azure => "alias-col entra",
                    CloudProvider::Aws => "alias-col aws",
                })
                .body(|h| {
                    h.tag("div").class("alias-head").text(cloud_name(provider));
                    if mine.is_empty() {
                        h.tag("div").class("muted").text("no name seen");
                    }
                    for a in mine {
                        h.tag("div").class("alias").body(|h| {
                            h.tag("span").class("kind").text(&a.kind.replace('_', " "));
                            h.tag("code").text(&a.value);
                        });
                    }
                });
        }
    });
}

fn legend(h: &mut Html, v: &IdentityView) {
    let mut entries = vec![
        ("glyph dot", "●", " succeeded"),
        ("glyph cross", "✕", " failed"),
        ("glyph ring", "◯", " behind a signal"),
    ];
    if v.lane_others.iter().any(|n| *n > 0) {
        entries.push(("glyph faded", "✕", " faded: other names, from its sources"));
    }
    entries.extend([
        ("glyph diamond", "◆", " signal (label: points)"),
        (
            "glyph diamond",
            "◇",
            " its source's signal (e.g. the spray before a sign-in)",
        ),
        ("glyph tri", "▼", " finding"),
    ]);
    for (class, glyph, meaning) in entries {
        h.tag("span").class("lg").body(|h| {
            h.tag("span").class(class).text(glyph);
            h.text(meaning);
        });
    }
    if v.bins.is_some() {
        h.tag("span").class("lg note").text(&format!(
            "{} events: drawn as counts per time slice (solid bars up: succeeded; hatched bars down: failed)",
            thousands((v.lane_events[0] + v.lane_events[1]) as u64)
        ));
    }
    h.tag("span").class("lg note").text(&format!(
        "{} – {} UTC · hover a mark for details",
        short_time(v.from),
        short_time(v.to)
    ));
}

fn signals_table(h: &mut Html, v: &IdentityView) {
    let signals = v.signals_in_window();
    h.tag("h4").text("Signals and why they fired");
    if signals.is_empty() {
        h.tag("p").class("empty").text("No signal in this window.");
        return;
    }
    // Oldest first, as the story unfolds; the newest when there are too many.
    let total = signals.len();
    let shown = &signals[total.saturating_sub(super::MAX_SIGNAL_ROWS)..];
    left_out(h, total, shown.len(), "older signals");
    table(
        h,
        "signals",
        &[
            "time (UTC)",
            "signal",
            "ATT&CK",
            "points",
            "score after",
            "explanation",
        ],
        |h| {
            for (s, after) in shown {
                h.tag("tr")
                    .class(if after.is_some() { "own" } else { "source" })
                    .body(|h| {
                        h.tag("td").class("time").text(&short_time(s.time));
                        h.tag("td").body(|h| {
                            h.tag("span").class("sig-name").text(&s.signal);
                            cloud_badges(h, &s.cloud);
                            if after.is_none() {
                                h.tag("div").class("source-note").text(&format!(
                                    "source {}: its activity reached this identity",
                                    s.threat_object.as_deref().unwrap_or("?")
                                ));
                            }
                        });
                        h.tag("td").body(|h| {
                            for t in &s.mitre_technique_id {
                                h.tag("span").class("attack").text(t);
                            }
                        });
                        match after {
                            Some(after) => {
                                h.tag("td").class("num").text(&fmt_delta(s.risk_score));
                                h.tag("td").class("num").text(&fmt_score(*after));
                            }
                            None => {
                                h.tag("td").class("num muted").text("—");
                                h.tag("td").class("num muted").text("—");
                            }
                        }
                        h.tag("td").class("summary").text(&s.risk_message);
                    });
            }
        },
    );
}

fn evidence_table(h: &mut Html, v: &IdentityView) {
    if v.evidence.is_empty() {
        return;
    }
    h.tag("h4").text("Events behind the signals");
    table(
        h,
        "events",
        &[
            "time (UTC)",
            "cloud",
            "user as recorded",
            "action",
            "result",
            "source IP",
            "place",
            "user agent",
        ],
        |h| {
            for e in &v.evidence {
                let ev = &e.event;
                let (what, status) = what_happened(ev);
                h.tag("tr").body(|h| {
                    h.tag("td").class("time").text(&short_time(ev.time));
                    h.tag("td")
                        .class("clouds")
                        .body(|h| cloud_badges(h, &[ev.provider()]));
                    h.tag("td")
                        .class("ident")
                        .text(ev.principal().and_then(|u| u.name.as_deref()).unwrap_or(""));
                    h.tag("td").text(&what);
                    h.tag("td")
                        .class(if ev.is_success() {
                            "ok-text"
                        } else {
                            "fail-text"
                        })
                        .text(&if ev.is_success() {
                            "✓ ok".to_string()
                        } else {
                            format!("✕ {status}")
                        });
                    h.tag("td").class("ip").text(ev.src_ip().unwrap_or(""));
                    h.tag("td").text(
                        &ev.src_endpoint
                            .location
                            .as_ref()
                            .and_then(place_text)
                            .unwrap_or_default(),
                    );
                    h.tag("td").class("ua").text(
                        ev.http_request
                            .as_ref()
                            .and_then(|r| r.user_agent.as_deref())
                            .unwrap_or(""),
                    );
                });
            }
        },
    );
    left_out(
        h,
        v.evidence_total,
        v.evidence.len(),
        "events behind signals",
    );
}

fn ips(h: &mut Html, r: &Report) {
    h.tag("section").attr("id", "ips").body(|h| {
        h.tag("h2").text("Source IPs");
        if r.ips.is_empty() {
            h.tag("p").class("empty").text("No source IP in this period.");
            return;
        }
        h.tag("p").class("hint").text(
            "Flagged (⚑) IPs are named by a signal or sent the events behind one; then IPs seen in both clouds, then those used by the most names.",
        );
        table(h, "ips", &["source IP", "place", "first seen (UTC)", "last seen (UTC)", "clouds", "events", "failed", "names used from it"], |h| {
            for row in &r.ips {
                ip_row(h, row);
            }
        });
        left_out(h, r.ips_total, r.ips.len(), "source IPs");
    });
}

fn ip_row(h: &mut Html, row: &IpRow) {
    let ip = &row.ip;
    h.tag("tr")
        .class(if row.flagged { "flagged" } else { "plain" })
        .body(|h| {
            h.tag("td").class("ip").body(|h| {
                if row.flagged {
                    h.tag("span")
                        .class("flag")
                        .attr("title", "flagged")
                        .text("⚑ ");
                }
                h.text(&ip.ip);
            });
            h.tag("td").text(
                &row.place
                    .as_ref()
                    .and_then(place_text)
                    .unwrap_or_else(|| "—".to_string()),
            );
            h.tag("td").class("time").text(&short_time(ip.first_seen));
            h.tag("td").class("time").text(&short_time(ip.last_seen));
            h.tag("td").class("clouds").body(|h| {
                let mut clouds = Vec::new();
                if ip.azure_events > 0 {
                    clouds.push(CloudProvider::Azure);
                }
                if ip.aws_events > 0 {
                    clouds.push(CloudProvider::Aws);
                }
                cloud_badges(h, &clouds);
            });
            h.tag("td")
                .class("num")
                .text(&thousands(ip.azure_events + ip.aws_events));
            h.tag("td").class("num").text(&thousands(ip.failed));
            h.tag("td").class("names").body(|h| {
                for (i, (name, anchor)) in row.users.iter().enumerate() {
                    if i > 0 {
                        h.text(", ");
                    }
                    identity_link(h, name, anchor.as_deref());
                }
                if ip.users > row.users.len() as u64 {
                    h.tag("span").class("muted").text(&format!(
                        " … +{} more",
                        thousands(ip.users - row.users.len() as u64)
                    ));
                }
            });
        });
}

fn footer(h: &mut Html, r: &Report) {
    h.tag("footer").body(|h| {
        h.tag("p").text(&format!(
            "Scores are crosswind's decayed per-identity risk: each signal's points halve every {}, ×1.5 while the identity has signals in both clouds; a finding is raised at {}. Times are UTC.",
            duration_text(r.half_life_ms),
            fmt_score(r.threshold)
        ));
        h.tag("p").text(concat!(
            "Written by crosswind ",
            env!("CARGO_PKG_VERSION"),
            " as one self-contained file: no script, no fonts or images fetched."
        ));
    });
}
