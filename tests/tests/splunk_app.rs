//! The Splunk app `packaging/splunk/TA-crosswind`: every `.conf` file parses as Splunk reads
//! them (stanzas, `key = value`, `\` continuations, no key twice in a stanza), every sourcetype
//! crosswind can send has a props stanza with JSON extraction and a timestamp rule (and no
//! stanza names one it never sends), eval expressions balance their quotes and brackets, the
//! macros, eventtypes and sourcetypes the searches use exist, Authentication and Change are
//! tagged, and the app's version is crosswind's. AppInspect itself runs in `.ci/run`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Conf = BTreeMap<String, BTreeMap<String, String>>;

fn app_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/splunk/TA-crosswind")
}

/// Parses a `.conf` file as Splunk does; any line it would not understand is an error.
fn parse(path: &Path) -> Result<Conf, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut conf = Conf::new();
    let mut stanza: Option<String> = None;
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let at = |msg: &str| format!("{}:{}: {msg}", path.display(), n + 1);
        let mut line = line.to_string();
        while line.ends_with('\\') {
            line.pop();
            match lines.next() {
                Some((_, next)) => {
                    line.push('\n');
                    line.push_str(next);
                }
                None => return Err(at("continuation at end of file")),
            }
        }
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[') {
            let name = name
                .strip_suffix(']')
                .ok_or_else(|| at("stanza without ]"))?;
            if conf.insert(name.to_string(), BTreeMap::new()).is_some() {
                return Err(at(&format!("stanza [{name}] twice")));
            }
            stanza = Some(name.to_string());
            continue;
        }
        let (key, value) = trimmed
            .split_once('=')
            .ok_or_else(|| at("neither a stanza nor key = value"))?;
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(at(&format!("bad key {key:?}")));
        }
        let section = conf.entry(stanza.clone().unwrap_or_default()).or_default();
        if section
            .insert(key.to_string(), value.trim().to_string())
            .is_some()
        {
            return Err(at(&format!("{key} twice in one stanza")));
        }
    }
    Ok(conf)
}

fn conf(name: &str) -> Conf {
    parse(&app_dir().join(name)).unwrap_or_else(|e| panic!("{e}"))
}

/// Quotes and brackets balance (single-quoted field names, double-quoted strings).
fn balanced(expr: &str) -> bool {
    let mut stack = Vec::new();
    let mut chars = expr.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                if c == '\\' {
                    chars.next();
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' => quote = Some(c),
                '(' | '[' => stack.push(c),
                ')' if stack.pop() != Some('(') => return false,
                ']' if stack.pop() != Some('[') => return false,
                _ => {}
            },
        }
    }
    quote.is_none() && stack.is_empty()
}

#[test]
fn every_conf_file_parses() {
    let mut seen = 0;
    for dir in ["default", "metadata"] {
        for entry in std::fs::read_dir(app_dir().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "conf" || e == "meta") {
                parse(&path).unwrap_or_else(|e| panic!("{e}"));
                seen += 1;
            }
        }
    }
    assert!(seen >= 7, "{seen} conf files");
}

#[test]
fn every_sourcetype_crosswind_sends_has_a_props_stanza_and_no_other() {
    let props = conf("default/props.conf");
    let sent: BTreeSet<&str> = crosswind_hec::sourcetypes().into_iter().collect();
    let stanzas: BTreeSet<&str> = props.keys().map(String::as_str).collect();
    assert_eq!(
        stanzas, sent,
        "props.conf stanzas vs sourcetypes crosswind sends"
    );
    for (sourcetype, settings) in &props {
        let kv = settings.get("KV_MODE").map(String::as_str);
        let expected = if sourcetype == "crosswind:unparsed" {
            "none"
        } else {
            "json"
        };
        assert_eq!(kv, Some(expected), "[{sourcetype}] KV_MODE");
        assert!(
            settings.contains_key("TIME_PREFIX") || settings.contains_key("DATETIME_CONFIG"),
            "[{sourcetype}] has no timestamp rule"
        );
        for (key, value) in settings {
            if key.starts_with("EVAL-") || key.starts_with("FIELDALIAS-") {
                assert!(balanced(value), "[{sourcetype}] {key} unbalanced: {value}");
            }
            if let Some(rest) = key.strip_prefix("FIELDALIAS-") {
                let words: Vec<&str> = value.split_whitespace().collect();
                assert!(
                    !rest.is_empty()
                        && words.len().is_multiple_of(3)
                        && words.chunks(3).all(|w| w[1] == "AS"),
                    "[{sourcetype}] {key}: expected `field AS alias` pairs: {value}"
                );
            }
        }
    }
    // The Graph array as a plain multivalue field, so the risky sign-in detection matches.
    for sourcetype in [
        "azure:aad:signin",
        "azure:monitor:aad",
        "crosswind:signinlogs",
    ] {
        assert!(
            props[sourcetype].contains_key("EVAL-riskEventTypes_v2"),
            "{sourcetype}"
        );
    }
    // Splunk ES's name for the techniques, on risk events.
    assert_eq!(
        props["crosswind:risk"]["EVAL-annotations.mitre_attack.mitre_technique_id"],
        "'annotations.mitre_attack.mitre_technique_id{}'"
    );
}

#[test]
fn authentication_and_change_are_tagged_on_eventtypes_that_exist() {
    let eventtypes = conf("default/eventtypes.conf");
    let tags = conf("default/tags.conf");
    let sent: BTreeSet<String> = crosswind_hec::sourcetypes()
        .into_iter()
        .map(String::from)
        .collect();
    for (name, settings) in &eventtypes {
        let search = &settings["search"];
        assert!(balanced(search), "{name}: {search}");
        for part in search.split("sourcetype=\"").skip(1) {
            let sourcetype = part.split('"').next().unwrap_or_default();
            assert!(sent.contains(sourcetype), "{name} names {sourcetype}");
        }
    }
    let mut tagged: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (stanza, settings) in &tags {
        let eventtype = stanza
            .strip_prefix("eventtype=")
            .unwrap_or_else(|| panic!("tags.conf [{stanza}]"));
        assert!(
            eventtypes.contains_key(eventtype),
            "no eventtype {eventtype}"
        );
        for (tag, state) in settings {
            assert_eq!(state, "enabled", "[{stanza}] {tag}");
            tagged.entry(tag.as_str()).or_default().insert(eventtype);
        }
    }
    assert_eq!(
        tagged["authentication"],
        BTreeSet::from(["crosswind_aws_console_login", "crosswind_entra_signin"])
    );
    assert_eq!(
        tagged["change"],
        BTreeSet::from(["crosswind_aws_iam_change"])
    );
}

#[test]
fn searches_use_macros_that_exist_and_the_app_has_crosswinds_version() {
    let macros = conf("default/macros.conf");
    let saved = conf("default/savedsearches.conf");
    let dashboard =
        std::fs::read_to_string(app_dir().join("default/data/ui/views/crosswind_overview.xml"))
            .unwrap();
    let mut searches: Vec<(String, String)> = saved
        .iter()
        .map(|(name, s)| (name.clone(), s["search"].clone()))
        .collect();
    for query in dashboard.split("<query>").skip(1) {
        let query = query.split("</query>").next().unwrap_or_default();
        searches.push(("dashboard".into(), query.to_string()));
    }
    assert!(searches.len() >= 7, "{searches:?}");
    for (name, search) in &searches {
        assert!(balanced(search), "{name}: {search}");
        let used: Vec<&str> = search.split('`').skip(1).step_by(2).collect();
        assert!(!used.is_empty(), "{name} names no index macro");
        for m in used {
            assert!(macros.contains_key(m), "{name} uses undefined macro {m}");
        }
    }
    let seed = &saved["Crosswind - Entra risky sign-in"]["search"];
    assert!(
        seed.contains("sourcetype=\"azure:aad:signin\"") && seed.contains("riskEventTypes_v2"),
        "{seed}"
    );
    let app = conf("default/app.conf");
    assert_eq!(app["package"]["id"], "TA-crosswind");
    assert_eq!(app["id"]["name"], "TA-crosswind");
    for stanza in ["id", "launcher"] {
        assert_eq!(
            app[stanza]["version"],
            env!("CARGO_PKG_VERSION"),
            "app.conf [{stanza}]"
        );
    }
}

#[test]
fn the_parser_refuses_what_splunk_would_not_read() {
    let dir = tempfile::tempdir().unwrap();
    for (text, why) in [
        (
            "[a]\nKV_MODE = json\nKV_MODE = none\n",
            "twice in one stanza",
        ),
        ("[a]\njust words\n", "neither a stanza"),
        ("[a\nx = 1\n", "stanza without ]"),
        ("[a]\n[a]\n", "stanza [a] twice"),
    ] {
        let path = dir.path().join("x.conf");
        std::fs::write(&path, text).unwrap();
        let err = parse(&path).unwrap_err();
        assert!(err.contains(why), "{err}");
    }
    assert!(!balanced("coalesce('a{}', b"));
    assert!(balanced("if(x==\"(\", 1, 0)"));
}
