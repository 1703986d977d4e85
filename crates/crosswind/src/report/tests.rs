//! Unit tests of the report: the escaping writer, ticks and binning, and whole pages over a
//! store imported from the simulator's password-spray scenario with markup planted in its
//! records (an attacker controls the name typed into a sign-in and the user agent).

use crosswind_model::CloudProvider;
use crosswind_sim::hostile::{
    MARKUP_SPRAYED_UPN, MARKUP_UPN as HOSTILE_UPN, MARKUP_USER_AGENT as HOSTILE_AGENT, markup_spray,
};
use crosswind_store::report::{EventMark, Outcome};
use serde_json::Value;

use super::html::{Html, escape};
use super::*;
use crate::config::Config;
use crate::correlation::Correlation;
use crate::import::{ImportOptions, import_files};

#[test]
fn text_and_attribute_values_are_escaped() {
    assert_eq!(
        escape(r#"<script>alert("x")</script> & 'y'"#),
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
    );
    let mut h = Html::new();
    h.tag("td")
        .attr("title", r#"" onerror="alert(1)"#)
        .text("<img src=x onerror=alert(1)>");
    assert_eq!(
        h.into_string(),
        r#"<td title="&quot; onerror=&quot;alert(1)">&lt;img src=x onerror=alert(1)&gt;</td>"#
    );
}

#[test]
fn control_and_direction_characters_are_made_visible() {
    // ESC and NUL as their control pictures; a right-to-left override cannot reorder the text.
    assert_eq!(escape("a\u{1b}[31mb\u{0}"), "a\u{241b}[31mb\u{2400}");
    assert_eq!(escape("evil\u{202e}gpj.exe"), "evil\u{fffd}gpj.exe");
    assert_eq!(escape("tab\tand\nline"), "tab\tand\nline");
}

#[test]
fn elements_without_children_close_as_their_kind_requires() {
    let mut h = Html::new();
    h.tag("meta").attr("charset", "utf-8").empty();
    h.tag("circle").attr("r", 4.25).empty();
    h.tag("div").class("bar").empty();
    h.tag("a").href_fragment("identity-1").text("x");
    assert_eq!(
        h.into_string(),
        r##"<meta charset="utf-8"><circle r="4.3"/><div class="bar"></div><a href="#identity-1">x</a>"##
    );
}

#[test]
fn ticks_are_round_times_inside_the_window() {
    let from = 1_796_389_258_000; // 2026-12-04T12:20:58Z
    let (step, ticks) = timeline::ticks(from, from + 6 * 3_600_000);
    assert_eq!(step, 3_600_000);
    assert_eq!(ticks.len(), 6);
    assert!(ticks.iter().all(|t| t % step == 0 && *t >= from));
    let (step, ticks) = timeline::ticks(from, from + 40 * 60_000);
    assert_eq!(step, 5 * 60_000);
    assert_eq!(ticks.first(), Some(&(from - from % step + step)));
}

#[test]
fn bins_count_every_mark_once_by_cloud_and_outcome() {
    let mark = |time, provider, outcome| EventMark {
        time,
        provider,
        outcome,
    };
    let marks = vec![
        mark(0, CloudProvider::Azure, Outcome::Success),
        mark(5, CloudProvider::Azure, Outcome::Failure),
        mark(999, CloudProvider::Aws, Outcome::Failure),
        mark(1_000, CloudProvider::Aws, Outcome::Unknown),
        mark(1_600, CloudProvider::Azure, Outcome::Success),
    ];
    let bins = binned(&marks, 0, 1_600);
    assert_eq!(bins.len(), BINS);
    assert_eq!(bins.first().map(|b| b.start), Some(0));
    assert_eq!(bins.last().map(|b| b.end), Some(1_600));
    let sum = |f: &dyn Fn(&Bin) -> u64| bins.iter().map(f).sum::<u64>();
    assert_eq!(sum(&|b| b.ok[0]), 2);
    assert_eq!(sum(&|b| b.failed[0]), 1);
    assert_eq!(sum(&|b| b.failed[1]), 1);
    assert_eq!(sum(&|b| b.other[1]), 1);
    assert_eq!(bins[0].ok[0] + bins[0].failed[0], 2);
    assert_eq!(
        bins[BINS - 1].ok[0],
        1,
        "the last mark falls in the last bin"
    );
}

/// A store with the simulator's markup-planted password spray (`crosswind_sim::hostile`);
/// `extra` more successful sign-ins of the victim, each from its own IP, make its timeline
/// dense. Returns the store, the correlator config and the victim's identity.
fn hostile_store(dir: &Path, extra: usize) -> (Store, CorrelateConfig, String) {
    let (data, victim) = markup_spray(crosswind_sim::DEFAULT_START);
    let mut records = data.signins.clone();
    let template = records
        .iter()
        .find(|r| r["userPrincipalName"] == HOSTILE_UPN && r["status"]["errorCode"] == 0);
    let template = template.expect("the victim signs in").clone();
    let at = crosswind_sim::parse_iso(template["createdDateTime"].as_str().unwrap()).unwrap();
    for i in 0..extra {
        let mut r = template.clone();
        r["id"] = Value::from(format!("00000000-0000-4000-8000-{i:012}"));
        let t = at - 3_600_000 + (i as i64 * 7_919) % 7_200_000;
        r["createdDateTime"] = Value::from(
            chrono::DateTime::<chrono::Utc>::from_timestamp_millis(t)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
        r["ipAddress"] = Value::from(format!("10.{}.{}.{}", i / 65_536, (i / 256) % 256, i % 256));
        records.push(r);
    }
    let file = dir.join("signins.ndjson");
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&file, text).unwrap();

    let mut store = Store::open(&dir.join("store.db")).unwrap();
    let options = ImportOptions::from_format_args(&["graph".to_string()]).unwrap();
    import_files(&mut store, &[file.display().to_string()], &options, false).unwrap();
    let config = Config::default();
    let correlation = Correlation::from_config(&config, None).unwrap();
    correlation.run_pending(&mut store, None).unwrap();
    (store, config.correlate_config().unwrap(), victim)
}

/// The section of `identity`, which must be drawn.
fn view_of<'a>(report: &'a Report, identity: &str) -> &'a IdentityView {
    report
        .identities
        .iter()
        .find(|v| v.story.identity == identity)
        .unwrap_or_else(|| panic!("{identity} is drawn; findings: {:?}", report.findings))
}

/// Every tag in `page` is one the report writes, and none has an event-handler attribute.
fn assert_only_report_markup(page: &str) {
    const TAGS: &[&str] = &[
        "!DOCTYPE",
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "header",
        "nav",
        "main",
        "section",
        "article",
        "footer",
        "figure",
        "figcaption",
        "details",
        "summary",
        "h1",
        "h2",
        "h3",
        "h4",
        "p",
        "div",
        "span",
        "strong",
        "code",
        "a",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "svg",
        "defs",
        "pattern",
        "g",
        "rect",
        "line",
        "circle",
        "path",
        "text",
    ];
    let mut rest = page;
    while let Some(i) = rest.find('<') {
        let tag = &rest[i + 1..];
        let end = tag.find('>').expect("every tag ends");
        let inner = &tag[..end];
        let name: String = inner
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '!')
            .collect();
        assert!(TAGS.contains(&name.as_str()), "unexpected tag <{inner}>");
        let lower = inner.to_ascii_lowercase();
        assert!(
            !lower.split_whitespace().any(|w| w.starts_with("on")),
            "event handler in <{inner}>"
        );
        rest = &tag[end..];
    }
}

#[test]
fn record_markup_stays_text_in_every_part_of_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let (store, config, identity) = hostile_store(dir.path(), 0);
    let report = gather(&store, &config, &ReportOptions::default()).unwrap();
    view_of(&report, &identity);
    let page = page::render(&report);
    assert_only_report_markup(&page);
    assert!(!page.contains(HOSTILE_UPN) && !page.contains(HOSTILE_AGENT));
    assert!(!page.contains(MARKUP_SPRAYED_UPN));
    assert!(
        page.contains(&escape(MARKUP_SPRAYED_UPN)),
        "the sprayed name is listed"
    );
    // The payloads are there, as text: in the identity's heading, its alias list, the
    // evidence table, the IP table and the SVG tooltips.
    let upn = escape(&identity);
    assert!(page.contains(&format!("<h3>{upn}</h3>")), "heading");
    // (Entra user principal names are lower-cased when normalised.)
    assert!(page.contains(&format!("<code>{upn}</code>")), "alias");
    assert!(page.contains(&format!(r#"<td class="ua">{}</td>"#, escape(HOSTILE_AGENT))));
    assert!(
        page.split("<title>")
            .skip(2)
            .filter_map(|t| t.split_once("</title>"))
            .any(|(tip, _)| tip.contains(&escape(HOSTILE_AGENT))),
        "an SVG tooltip names the agent"
    );
    assert!(page.contains("<title>Crosswind investigation report</title>"));
}

#[test]
fn the_spray_that_led_to_a_sign_in_is_on_the_victims_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let (store, config, identity) = hostile_store(dir.path(), 0);
    let report = gather(&store, &config, &ReportOptions::default()).unwrap();
    let view = view_of(&report, &identity);
    // Its own spray signal, and the threat-only one naming the source, with the failed
    // sign-ins of the other users it sprayed.
    assert!(view.sources.iter().all(|s| s.risk_object.is_empty()));
    assert!(!view.sources.is_empty(), "{:?}", view.story.signals);
    assert!(view.lane_others[0] >= 10, "{:?}", view.lane_others);
    let failed = view
        .dots
        .iter()
        .filter(|d| d.outcome == Outcome::Failure && d.evidence)
        .count();
    assert!(failed >= 10, "{failed} failed sign-ins drawn");
    assert!(view.bins.is_none());
    assert!(view.from <= view.sources[0].time && view.story.signals[0].time <= view.to);
    // The score curve reaches the finding's score and ends at or above the threshold.
    let peak = view.curve.iter().map(|p| p.1).fold(0.0, f64::max);
    assert!(peak >= config.finding_threshold, "{peak}");
}

#[test]
fn dense_timelines_are_binned_and_long_lists_say_what_they_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let (store, config, identity) = hostile_store(dir.path(), 700);
    let report = gather(&store, &config, &ReportOptions::default()).unwrap();
    let view = view_of(&report, &identity);
    let bins = view.bins.as_ref().expect("binned");
    let binned: u64 = bins
        .iter()
        .map(|b| b.ok.iter().chain(&b.failed).chain(&b.other).sum::<u64>())
        .sum();
    assert_eq!(binned as usize, view.lane_events[0] + view.lane_events[1]);
    assert!(binned as usize > MAX_DOTS, "{binned}");
    assert!(view.dots.len() <= MAX_DOTS);
    assert_eq!(report.ips.len(), MAX_IPS);
    assert!(report.ips_total > 700);
    // Flagged IPs (the spray source) come first.
    assert!(report.ips[0].flagged);
    let page = page::render(&report);
    assert!(page.contains(r#"<g class="bin">"#));
    assert!(page.contains(&format!(
        "… and {} more source IPs not shown",
        timeline::thousands((report.ips_total - MAX_IPS) as u64)
    )));
    assert_only_report_markup(&page);
}

#[test]
fn identity_scope_and_the_explain_page_show_only_that_identity() {
    let dir = tempfile::tempdir().unwrap();
    let (store, config, identity) = hostile_store(dir.path(), 0);
    let options = ReportOptions {
        identities: vec![
            HOSTILE_UPN.to_string(),
            "nobody@nowhere.example".to_string(),
        ],
        ..ReportOptions::default()
    };
    let report = gather(&store, &config, &options).unwrap();
    assert_eq!(report.identities.len(), 1);
    assert_eq!(report.unknown, ["nobody@nowhere.example"]);
    assert!(report.findings.iter().all(|f| f.identity == identity));
    assert!(report.top.iter().all(|t| t.identity == identity));
    // The IP table holds only the addresses its names used.
    assert!(!report.ips.is_empty());
    assert!(
        report
            .ips
            .iter()
            .all(|r| r.users.iter().any(|(u, _)| *u == identity))
    );

    let mut out = Vec::new();
    assert!(
        crate::explain::explain(
            &store,
            HOSTILE_UPN,
            &config,
            crate::explain::ExplainFormat::Html,
            &mut out
        )
        .unwrap()
    );
    let page = String::from_utf8(out).unwrap();
    assert_only_report_markup(&page);
    assert_eq!(page.matches("<article class=\"identity\"").count(), 1);
    assert!(page.contains(&format!("<title>{} — crosswind", escape(&identity))));
}
