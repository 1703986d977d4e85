//! Container reading: NDJSON edge cases, documents and envelopes, gzip (whole and truncated),
//! invalid UTF-8, huge records, empty input.

use std::io::{Cursor, Write};

use crate::container::{ContainerError, Position, RawRecord, RecordReader};

fn read_all(input: &[u8]) -> Vec<Result<RawRecord, ContainerError>> {
    read_checked(input, crate::DEFAULT_MAX_RECORD_BYTES)
}

/// Reads `input` twice, as an iterator and through `next_normalized` (the import's path), and
/// checks that both yield the same records and errors, each record mapped as `normalize` maps
/// its bytes. Every container test goes through here.
pub(super) fn read_checked(input: &[u8], max: usize) -> Vec<Result<RawRecord, ContainerError>> {
    let open = || match RecordReader::from_read(Cursor::new(input.to_vec())) {
        Ok(r) => r.with_max_record_bytes(max),
        Err(e) => panic!("open: {e}"),
    };
    let items: Vec<_> = open().collect();
    let mut reader = open();
    let mut paired = Vec::new();
    while let Some(item) = reader.next_normalized(None) {
        paired.push(item);
    }
    assert_eq!(paired.len(), items.len(), "{}", render(&items));
    for (a, b) in items.iter().zip(&paired) {
        match (a, b) {
            (Ok(record), Ok((same, normalized))) => {
                assert_eq!(record, same);
                assert_eq!(normalized, &crate::normalize(&record.bytes, None));
            }
            (Err(e), Err(same)) => {
                assert_eq!(e.to_string(), same.to_string());
                assert_eq!(e.raw_bytes(), same.raw_bytes());
            }
            _ => panic!("the two reads differ: {a:?} / {b:?}"),
        }
    }
    items
}

/// `ok line:index text` / `err message` per item, for compact expectations.
fn render(items: &[Result<RawRecord, ContainerError>]) -> String {
    let mut out = String::new();
    for item in items {
        match item {
            Ok(r) => {
                let text = r.as_str();
                let shown: String = if text.len() > 60 {
                    format!("{}…({} bytes)", &text[..40], text.len())
                } else {
                    text.to_owned()
                };
                out.push_str(&format!("ok  {} {shown}\n", r.position));
            }
            Err(e) => out.push_str(&format!("err {e}\n")),
        }
    }
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap_or_default();
    enc.finish().unwrap_or_default()
}

#[test]
fn empty_and_blank_inputs_yield_nothing() {
    assert!(read_all(b"").is_empty());
    assert!(read_all(b"\n\n  \r\n\t\n").is_empty());
    assert!(read_all(b"\xEF\xBB\xBF").is_empty());
    assert!(read_all(&gzip(b"")).is_empty());
}

#[test]
fn ndjson_with_bad_lines_between_good_ones() {
    let input = b"{\"a\":1}\n{\"b\":\n\n{\"c\":3}  \r\n[1,2\nnot json\n\"str\"\n{\"d\":4}\xff\n{\"e\":\"\xc3\xa9\"}\n{\"f\":6}";
    expect_test::expect![[r#"
        ok  line 1 {"a":1}
        err line 2: invalid json at column 5: EOF while parsing a value
        ok  line 4 {"c":3}
        ok  line 5 element 0 1
        ok  line 5 element 1 2
        err line 5: invalid json at column 4: EOF while parsing a list
        err line 6: invalid json at column 2: expected ident
        err line 7: not a json object or array (found a string)
        ok  line 8 {"d":4}
        err line 8: invalid utf-8 at byte 0
        ok  line 9 {"e":"é"}
        ok  line 10 {"f":6}
    "#]]
    .assert_eq(&render(&read_all(input)));
}

#[test]
fn first_line_broken_then_ndjson() {
    // The first line is cut short but the next one is a whole object: NDJSON, not a document.
    let input = b"{\"a\":\n{\"b\":2}\n{\"c\":3}\n";
    expect_test::expect![[r#"
        err line 1: invalid json at column 5: EOF while parsing a value
        ok  line 2 {"b":2}
        ok  line 3 {"c":3}
    "#]]
    .assert_eq(&render(&read_all(input)));
}

#[test]
fn bom_and_crlf() {
    let input = b"\xEF\xBB\xBF{\"a\":1}\r\n\r\n{\"b\":2}\r\n";
    expect_test::expect![[r#"
        ok  line 1 {"a":1}
        ok  line 3 {"b":2}
    "#]]
    .assert_eq(&render(&read_all(input)));
    // A pretty-printed document with a BOM and CRLF line ends.
    let doc = b"\xEF\xBB\xBF[\r\n  {\"a\": 1},\r\n  {\"b\": 2}\r\n]\r\n";
    expect_test::expect![[r#"
        ok  line 2 element 0 {"a": 1}
        ok  line 3 element 1 {"b": 2}
    "#]]
    .assert_eq(&render(&read_all(doc)));
}

#[test]
fn envelopes_and_documents() {
    let cases: [(&str, &[u8]); 7] = [
        ("array on one line", b"[{\"a\":1}, {\"b\":2}]"),
        (
            "graph page",
            b"{\"@odata.context\":\"https://graph.microsoft.com/beta/$metadata#auditLogs/signIns\",\n \"@odata.nextLink\":\"https://x/?$skiptoken=1\",\n \"value\":[\n  {\"id\":\"1\"},\n  {\"id\":\"2\"}\n ]\n}",
        ),
        ("cloudtrail file", b"{\"Records\":[{\"eventID\":\"e1\"},{\"eventID\":\"e2\"}]}"),
        ("diagnostic envelope", b"{\n  \"records\": [\n    { \"time\": \"t\" }\n  ]\n}\n"),
        ("pretty single record", b"{\n  \"eventID\": \"e1\",\n  \"value\": 3\n}\n"),
        ("value without odata is a record", b"{\"value\":[1],\"id\":\"x\"}"),
        ("ndjson of envelopes", b"{\"records\":[{\"a\":1}]}\n{\"records\":[{\"b\":2},{\"c\":3}]}\n"),
    ];
    let mut out = String::new();
    for (name, input) in cases {
        out.push_str(&format!("# {name}\n{}", render(&read_all(input))));
    }
    expect_test::expect![[r#"
        # array on one line
        ok  line 1 element 0 {"a":1}
        ok  line 1 element 1 {"b":2}
        # graph page
        ok  line 4 element 0 {"id":"1"}
        ok  line 5 element 1 {"id":"2"}
        # cloudtrail file
        ok  line 1 element 0 {"eventID":"e1"}
        ok  line 1 element 1 {"eventID":"e2"}
        # diagnostic envelope
        ok  line 3 element 0 { "time": "t" }
        # pretty single record
        ok  line 1 {
          "eventID": "e1",
          "value": 3
        }
        # value without odata is a record
        ok  line 1 {"value":[1],"id":"x"}
        # ndjson of envelopes
        ok  line 1 element 0 {"a":1}
        ok  line 2 element 0 {"b":2}
        ok  line 2 element 1 {"c":3}
    "#]]
    .assert_eq(&out);
}

#[test]
fn element_bytes_are_exact() {
    let input = b"{\"Records\":[ {\"b\" : 1,\"a\":\"\\u00e9\"} ,{\"x\":[1, 2]}]}";
    let items = read_all(input);
    let got: Vec<&[u8]> = items.iter().flatten().map(|r| r.bytes.as_slice()).collect();
    assert_eq!(
        got,
        vec![
            &b"{\"b\" : 1,\"a\":\"\\u00e9\"}"[..],
            &b"{\"x\":[1, 2]}"[..]
        ]
    );
}

#[test]
fn gzip_is_transparent() {
    let plain = b"{\"Records\":[{\"eventID\":\"e1\"},{\"eventID\":\"e2\"}]}\n";
    let items = read_all(&gzip(plain));
    assert_eq!(items.iter().flatten().count(), 2);
    // Concatenated gzip members read as one stream.
    let mut two = gzip(b"{\"a\":1}\n");
    two.extend(gzip(b"{\"b\":2}\n"));
    assert_eq!(
        render(&read_all(&two)),
        "ok  line 1 {\"a\":1}\nok  line 2 {\"b\":2}\n"
    );
}

#[test]
fn truncated_gzip_ndjson_yields_records_then_error() {
    let mut plain = Vec::new();
    for i in 0..2000 {
        plain.extend(
            format!(
                "{{\"eventID\":\"e{i}\",\"pad\":\"{}\"}}\n",
                "x".repeat(i % 50)
            )
            .bytes(),
        );
    }
    let gz = gzip(&plain);
    let cut = &gz[..gz.len() / 2];
    let items = read_all(cut);
    let (ok, errs): (Vec<_>, Vec<_>) = items.iter().partition(|i| i.is_ok());
    assert!(ok.len() > 100, "read {} records before the cut", ok.len());
    assert_eq!(errs.len(), 1);
    let last = items
        .last()
        .and_then(|r| r.as_ref().err())
        .map(ToString::to_string);
    let last = last.unwrap_or_default();
    assert!(
        last.starts_with(&format!("input is truncated at line {}", ok.len() + 1)),
        "{last}"
    );
    // Every record before the error is whole and in order.
    for (i, r) in ok.iter().enumerate() {
        let r = r
            .as_ref()
            .map(|r| r.as_str().to_owned())
            .unwrap_or_default();
        assert!(r.starts_with(&format!("{{\"eventID\":\"e{i}\"")), "{r}");
    }
}

#[test]
fn truncated_gzip_document_salvages_elements() {
    let mut doc = String::from("{\"Records\":[");
    for i in 0..3000 {
        if i > 0 {
            doc.push(',');
        }
        doc.push_str(&format!("{{\"eventID\":\"e{i}\",\"n\":{i}}}"));
    }
    doc.push_str("]}");
    let gz = gzip(doc.as_bytes());
    let items = read_all(&gz[..gz.len() * 2 / 3]);
    let ok = items.iter().filter(|i| i.is_ok()).count();
    assert!(ok > 100 && ok < 3000, "salvaged {ok}");
    let last = items
        .last()
        .and_then(|r| r.as_ref().err())
        .map(ToString::to_string);
    assert!(last.is_some_and(|e| e.starts_with("input is truncated at line 1")));
}

#[test]
fn truncated_plain_document_reports_where() {
    let items = read_all(b"[\n {\"a\":1},\n {\"b\":2},\n {\"c\":");
    expect_test::expect![[r#"
        ok  line 2 element 0 {"a":1}
        ok  line 3 element 1 {"b":2}
        err line 4: the input ends inside a record (invalid json at line 4 column 6: EOF while parsing a value)
    "#]]
    .assert_eq(&render(&items));
}

#[test]
fn huge_record_on_one_line() {
    let big = "y".repeat(10 * 1024 * 1024);
    let input = format!("{{\"a\":1}}\n{{\"eventID\":\"big\",\"blob\":\"{big}\"}}\n{{\"b\":2}}\n");
    let items = read_all(input.as_bytes());
    assert_eq!(items.len(), 3);
    let sizes: Vec<usize> = items.iter().flatten().map(|r| r.bytes.len()).collect();
    assert_eq!(sizes, vec![7, 10 * 1024 * 1024 + 27, 7]);
    // A huge document element works too.
    let doc = format!("{{\"Records\":[{{\"blob\":\"{big}\"}}]}}");
    let items = read_all(doc.as_bytes());
    assert_eq!(items.iter().flatten().count(), 1);
}

#[test]
fn positions_render() {
    assert_eq!(
        Position {
            line: Some(3),
            index: Some(1)
        }
        .to_string(),
        "line 3 element 1"
    );
    assert_eq!(Position::line(7).to_string(), "line 7");
}

#[test]
fn many_lines_stream() {
    // 200k lines through the reader without holding them: only count.
    let mut input = Vec::new();
    for i in 0..200_000 {
        input.extend(format!("{{\"i\":{i}}}\n").bytes());
    }
    let n = read_all(&input).into_iter().filter(Result::is_ok).count();
    assert_eq!(n, 200_000);
}

#[test]
fn every_prefix_of_mixed_input_is_safe() {
    // Cut a mixed input (NDJSON, envelopes, a pretty document) at every byte: never a panic,
    // and whatever is yielded is either a whole record or an error.
    let inputs: [&[u8]; 3] = [
        b"{\"a\":1}\n{\"records\":[{\"b\":2},{\"c\":[3,{\"d\":\"\xc3\xa9\"}]}]}\n[{\"e\":5}]\n",
        b"{\n  \"@odata.context\": \"x\",\n  \"value\": [\n    {\"id\": \"1\"},\n    {\"id\": \"2\"}\n  ]\n}\n",
        b"\xEF\xBB\xBF[\r\n {\"a\":\"\\u00e9\\\"\"},\r\n {\"b\":[]}\r\n]",
    ];
    for input in inputs {
        for cut in 0..=input.len() {
            for item in read_all(&input[..cut]).into_iter().flatten() {
                assert!(serde_json::from_slice::<serde_json::Value>(&item.bytes).is_ok());
            }
        }
        let gz = gzip(input);
        for cut in 0..=gz.len() {
            for item in read_all(&gz[..cut]).into_iter().flatten() {
                assert!(serde_json::from_slice::<serde_json::Value>(&item.bytes).is_ok());
            }
        }
    }
}

#[test]
fn real_file_gzipped_through_reader_and_normalize() {
    // The import path on a real CloudTrail file: gzip it to a temporary file, read it back.
    let path = super::shared_data().join("invictus-ir-aws_dataset/cloudtrail_records.ndjson");
    let plain = std::fs::read(&path).unwrap_or_default();
    let mut tmp = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("tempfile: {e}"));
    tmp.write_all(&gzip(&plain))
        .unwrap_or_else(|e| panic!("write: {e}"));
    let file = std::fs::File::open(tmp.path()).unwrap_or_else(|e| panic!("open: {e}"));
    let reader = RecordReader::from_read(file).unwrap_or_else(|e| panic!("open: {e}"));
    let (mut ok, mut bad) = (0, 0);
    for item in reader {
        match item.map(|r| crate::normalize(&r.bytes, None)) {
            Ok(Ok(_)) => ok += 1,
            _ => bad += 1,
        }
    }
    assert_eq!((ok, bad), (2900, 0));
}

#[test]
fn braced_ndjson_lines_pass_without_a_validating_pass() {
    // One-object lines are handed on as they are; their one parse (normalize) rejects bad JSON.
    let input =
        b"{\"a\": tru}\n{\"b\":1}{\"c\":2}\n{\"k\\u0065y\":{\"value\":[1]},\"s\":\"}\\\"{\"}\n";
    expect_test::expect![[r#"
        ok  line 1 {"a": tru}
        ok  line 2 {"b":1}
        ok  line 2 {"c":2}
        ok  line 3 {"k\u0065y":{"value":[1]},"s":"}\"{"}
    "#]]
    .assert_eq(&render(&read_all(input)));
    let rejected = read_all(input)
        .into_iter()
        .flatten()
        .map(|r| crate::normalize(&r.bytes, None).map(|_| ()))
        .collect::<Vec<_>>();
    assert_eq!(
        rejected
            .first()
            .and_then(|r| r.as_ref().err())
            .map(|r| r.reason.as_str()),
        Some("invalid json at column 10: expected ident")
    );
}

#[test]
fn ndjson_lines_are_parsed_once_and_read_as_the_scan_reads_them() {
    // After the first line, plain one-object lines skip the scan; every other kind of line
    // (and a line cut by the read buffer) falls back to it. `read_checked` compares the two.
    let mut input = Vec::new();
    input.extend_from_slice(b"{\"first\":1}\n");
    for i in 0..3 {
        input.extend(format!("{{\"i\":{i},\"s\":\"a\\\"b\"}}\n").bytes());
    }
    let odd: [&[u8]; 13] = [
        b"{\"k\\u0065y\":1}\n",
        b"{\"value\":[{\"a\":1}],\"@odata.context\":\"x\"}\n",
        b"{\"Records\":[{\"b\":2},{\"c\":3}]}\n",
        b"{\"value\":\"not an envelope\"}\n",
        b"{\"b\":1}{\"c\":2}\n",
        b"{\"b\":1} [2]\n",
        b"{\"a\": tru}\n",
        b"{\"open\": [1,\n",
        b"{\"crlf\":1}\r\n",
        b"{\"spaces\":1}  \t \n\n\n",
        b"{\"bad\":\"\xff\"}\n",
        b"42\n",
        b"   {\"indented\":1}\n",
    ];
    for line in odd {
        input.extend_from_slice(line);
    }
    // Lines of 1 KB past the 256 KiB read buffer: one of them straddles its end.
    for i in 0..300 {
        input.extend(format!("{{\"n\":{i},\"pad\":\"{}\"}}\n", "x".repeat(1000)).bytes());
    }
    input.extend_from_slice(b"{\"last\":\"no newline\"}");
    let items = read_checked(&input, 4096);
    expect_test::expect![[r#"
        ok  line 1 {"first":1}
        ok  line 2 {"i":0,"s":"a\"b"}
        ok  line 3 {"i":1,"s":"a\"b"}
        ok  line 4 {"i":2,"s":"a\"b"}
        ok  line 5 {"k\u0065y":1}
        ok  line 6 element 0 {"a":1}
        ok  line 7 element 0 {"b":2}
        ok  line 7 element 1 {"c":3}
        ok  line 8 {"value":"not an envelope"}
        ok  line 9 {"b":1}
        ok  line 9 {"c":2}
        ok  line 10 {"b":1}
        ok  line 10 element 0 2
        ok  line 11 {"a": tru}
        err line 12: invalid json at column 12: EOF while parsing a value
        ok  line 13 {"crlf":1}
        ok  line 14 {"spaces":1}
        err line 17: invalid utf-8 at byte 8
        err line 18: not a json object or array (found a number)
        ok  line 19 {"indented":1}
        ok  line 20 {"n":0,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxx…(1016 bytes)
    "#]]
    .assert_eq(&render(items.get(..21).unwrap_or_default()));
    assert_eq!(items.len(), 20 + 300 + 1);
    let mut reader = RecordReader::from_read(Cursor::new(input.clone()))
        .unwrap_or_else(|e| panic!("open: {e}"))
        .with_max_record_bytes(4096);
    while reader.next_normalized(None).is_some() {}
    // The 3 plain lines, the crlf, spaced and indented ones and the 1 KB lines but the one cut
    // by the buffer; not the first line, nor the last one without its newline.
    assert_eq!(reader.plain_lines(), 3 + 3 + 299);
    // Over the limit: the scan reports it.
    let long = format!(
        "{{\"a\":1}}\n{{\"pad\":\"{}\"}}\n{{\"b\":2}}\n",
        "y".repeat(100)
    );
    expect_test::expect![[r#"
        ok  line 1 {"a":1}
        err line 2: a record of 110 bytes is over the 64-byte limit
        ok  line 3 {"b":2}
    "#]]
    .assert_eq(&render(&read_checked(long.as_bytes(), 64)));
}

#[test]
fn plain_object_lines_are_told_from_envelopes() {
    use crate::container::is_plain_object_line as plain;
    assert!(plain(
        br#"{"id":"1","authenticationProcessingDetails":[{"key":"k","value":"v"}]}"#
    ));
    assert!(plain(br#"{"s":"{\"value\":[1]}","n":[1,{"records":2}]}"#));
    assert!(!plain(br#"{"Records":[{"eventID":"e1"}]}"#));
    assert!(!plain(br#"{"x":1, "records":[]}"#));
    assert!(!plain(br#"{"@odata.context":"c","value":[]}"#));
    assert!(
        !plain(br#"{"\u0076alue":[]}"#),
        "escaped keys go to the full scan"
    );
    assert!(!plain(br#"{"a":1}{"b":2}"#));
    assert!(!plain(br#"{"a":"unterminated}"#));
    assert!(!plain(br#"{"a":[1}"#), "unbalanced");
    assert!(!plain(b"[1,2]"));
    assert!(!plain(br#"{"a":"\"#));
}

fn read_limited(input: &[u8], max: usize) -> Vec<Result<RawRecord, ContainerError>> {
    read_checked(input, max)
}

#[test]
fn back_to_back_documents() {
    // Trail files end with `}]}` and no newline: `zcat *.json.gz` runs them together.
    let cases: [(&str, &[u8]); 6] = [
        (
            "trail files, no whitespace",
            b"{\"Records\":[{\"a\":1},{\"b\":2}]}{\"Records\":[{\"c\":3}]}{\"Records\":[]}{\"Records\":[{\"d\":4}]}",
        ),
        (
            "trail files, whitespace between",
            b"{\"Records\":[{\"a\":1}]} \n\n {\"Records\":[{\"b\":2}]}\r\n",
        ),
        (
            "graph pages",
            b"{\"@odata.context\":\"c\",\"value\":[{\"id\":\"1\"}]}{\"value\":[{\"id\":\"2\"},{\"id\":\"3\"}],\"@odata.nextLink\":\"n\"}",
        ),
        ("objects and arrays", b"{\"a\":1}{\"b\":2}[{\"c\":3}]\n{\"d\":4} {\"e\":5}"),
        (
            "pretty documents",
            b"{\n  \"Records\": [\n    {\"a\": 1}\n  ]\n}{\n  \"Records\": [\n    {\"b\": 2}\n  ]\n}\n{\n  \"records\": [{\"c\": 3}]\n}",
        ),
        ("a document then garbage", b"{\"Records\":[{\"a\":1}]} x\n{\"b\":2}"),
    ];
    let mut out = String::new();
    for (name, input) in cases {
        out.push_str(&format!("# {name}\n{}", render(&read_all(input))));
    }
    expect_test::expect![[r#"
        # trail files, no whitespace
        ok  line 1 element 0 {"a":1}
        ok  line 1 element 1 {"b":2}
        ok  line 1 element 0 {"c":3}
        ok  line 1 element 0 {"d":4}
        # trail files, whitespace between
        ok  line 1 element 0 {"a":1}
        ok  line 3 element 0 {"b":2}
        # graph pages
        ok  line 1 element 0 {"id":"1"}
        ok  line 1 element 0 {"id":"2"}
        ok  line 1 element 1 {"id":"3"}
        # objects and arrays
        ok  line 1 {"a":1}
        ok  line 1 {"b":2}
        ok  line 1 element 0 {"c":3}
        ok  line 2 {"d":4}
        ok  line 2 {"e":5}
        # pretty documents
        ok  line 3 element 0 {"a": 1}
        ok  line 7 element 0 {"b": 2}
        ok  line 11 element 0 {"c": 3}
        # a document then garbage
        ok  line 1 element 0 {"a":1}
        err line 1: invalid json at column 1: expected value
        ok  line 2 {"b":2}
    "#]]
    .assert_eq(&out);
    // Gzipped one by one and concatenated, as `cat *.json.gz` gives them.
    let mut gz = gzip(b"{\"Records\":[{\"a\":1}]}");
    gz.extend(gzip(b"{\"Records\":[{\"b\":2}]}"));
    assert_eq!(read_all(&gz).iter().flatten().count(), 2);
}

/// `(position, bytes)` of each record, and each error's text.
fn summary(items: &[Result<RawRecord, ContainerError>]) -> Vec<String> {
    items
        .iter()
        .map(|i| match i {
            Ok(r) => format!("{} {}", r.position, r.as_str()),
            Err(e) => format!("err {e}"),
        })
        .collect()
}

#[test]
fn documents_over_the_limit_are_streamed_record_by_record() {
    let mut doc = String::from("{\"@odata.context\":\"c\",\n\"value\":[\n");
    for i in 0..100 {
        if i > 0 {
            doc.push_str(",\n");
        }
        doc.push_str(&format!(
            "{{\"id\":\"{i}\",\"s\":\"x\\\"]}}{}\"}}",
            "p".repeat(i % 7)
        ));
    }
    doc.push_str("\n],\"@odata.nextLink\":\"n\"}");
    let whole = read_all(doc.as_bytes());
    assert_eq!(whole.iter().flatten().count(), 100);
    // A limit far below the document's size, above each record's: the same records.
    let streamed = read_limited(doc.as_bytes(), 200);
    assert_eq!(summary(&streamed), summary(&whole));
    // The same with a top-level array, on one line, twice in a row.
    let records: Vec<String> = (0..50).map(|i| format!("{{\"n\":{i}}}")).collect();
    let array = format!("[{}]", records.join(","));
    let twice = format!("{array}{array}");
    assert_eq!(
        summary(&read_limited(twice.as_bytes(), 64)),
        summary(&read_all(twice.as_bytes()))
    );
}

#[test]
fn a_record_over_the_limit_is_reported_and_reading_goes_on() {
    let big = "y".repeat(5000);
    // In a streamed document: the record is reported with its index, its length and its
    // first bytes, the records after it are read.
    let doc = format!(
        "{{\"Records\":[{{\"a\":1}},{{\"big\":\"{big}\"}},{{\"b\":2}}]}}{{\"Records\":[{{\"c\":3}}]}}"
    );
    let items = read_limited(doc.as_bytes(), 1000);
    expect_test::expect![[r#"
        line 1 element 0 {"a":1}
        err line 1 element 1: a record of 5010 bytes is over the 1000-byte limit
        line 1 element 2 {"b":2}
        line 1 element 0 {"c":3}
    "#]]
    .assert_eq(&(summary(&items).join("\n") + "\n"));
    let kept = items
        .get(1)
        .and_then(|i| i.as_ref().err())
        .map(|e| e.raw_bytes().to_vec())
        .unwrap_or_default();
    assert_eq!(kept.len(), crate::KEPT_BYTES);
    assert!(kept.starts_with(b"{\"big\":\"yyy"));
    // An NDJSON line, a single record and a line of garbage.
    let input = format!("{{\"a\":1}}\n{{\"big\":\"{big}\"}}\n{{\"b\":2}}\n{big}\n{{\"c\":3}}\n");
    expect_test::expect![[r#"
        line 1 {"a":1}
        err line 2: a record of 5010 bytes is over the 1000-byte limit
        line 3 {"b":2}
        err line 4: a record of 5000 bytes is over the 1000-byte limit
        line 5 {"c":3}
    "#]]
    .assert_eq(&(summary(&read_limited(input.as_bytes(), 1000)).join("\n") + "\n"));
    // A pretty single record over the limit.
    let pretty = format!("{{\n \"big\": \"{big}\"\n}}\n{{\"b\":2}}");
    expect_test::expect![[r#"
        err line 1: a record of 5014 bytes is over the 1000-byte limit
        line 4 {"b":2}
    "#]]
    .assert_eq(&(summary(&read_limited(pretty.as_bytes(), 1000)).join("\n") + "\n"));
}

#[test]
fn blank_runs_and_deep_nesting_cost_nothing() {
    let mut input = vec![b'\n'; 5_000_000];
    input.extend_from_slice(b"  {\"a\":1}\n");
    input.extend(std::iter::repeat_n(b' ', 1_000_000));
    input.extend_from_slice(b"{\"b\":2}");
    assert_eq!(
        summary(&read_limited(&input, 100)),
        ["line 5000001 {\"a\":1}", "line 5000002 {\"b\":2}"]
    );
    // 100k-deep nesting: no stack overflow; what the reader yields, the parser rejects, and
    // the next line is read.
    let mut deep = "[".repeat(100_000);
    deep.push_str(&"]".repeat(100_000));
    deep.push_str("\n{\"c\":3}\n");
    for max in [crate::DEFAULT_MAX_RECORD_BYTES, 1000] {
        let items = read_limited(deep.as_bytes(), max);
        let (last, rest) = items.split_last().unwrap_or_else(|| panic!("nothing read"));
        assert_eq!(last.as_ref().map(|r| r.as_str()).ok(), Some("{\"c\":3}"));
        assert!(!rest.is_empty());
        for item in rest.iter().flatten() {
            assert!(crate::normalize(&item.bytes, None).is_err());
        }
    }
}

#[test]
fn cut_short_input_is_reported_as_such() {
    let doc = b"{\"Records\":[{\"a\":1},{\"b\":2},{\"c\":";
    for max in [1 << 20, 16] {
        let items = read_limited(doc, max);
        let text = summary(&items);
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(
            items
                .last()
                .is_some_and(|i| i.as_ref().is_err_and(ContainerError::is_cut_short)),
            "{text:?}"
        );
    }
    let ndjson = b"{\"a\":1}\n{\"b\":";
    let items = read_all(ndjson);
    assert!(
        items
            .last()
            .is_some_and(|i| i.as_ref().is_err_and(ContainerError::is_cut_short))
    );
    // A broken line in the middle is not the input being cut short.
    let items = read_all(b"{\"b\":\n{\"a\":1}\n");
    assert!(
        items
            .iter()
            .all(|i| !i.as_ref().is_err_and(ContainerError::is_cut_short))
    );
}
