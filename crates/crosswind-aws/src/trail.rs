//! One CloudTrail trail file (`{"Records":[…]}`, gzip or plain) into a store batch: the CPU side
//! of S3 mode, apart from the S3 calls so it can be measured on its own
//! (`cargo bench -p crosswind-aws --bench trail_files`).

use std::collections::HashSet;
use std::io::Read;

use crosswind_store::{Batch, QuarantineRecord};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::{AwsError, store_record};

/// Largest trail file read, decompressed (CloudTrail files are at most a few MB compressed).
pub const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;

#[derive(Deserialize)]
struct TrailFile<'a> {
    #[serde(borrow, rename = "Records")]
    records: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct NameOnly<'a> {
    #[serde(borrow, rename = "eventName", default)]
    event_name: Option<&'a str>,
}

/// What one trail file gave.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrailFileOutcome {
    /// Records kept (stored, or quarantined one by one when unmappable).
    pub records: u64,
    /// Records skipped because their `eventName` is not one the collector keeps.
    pub filtered: u64,
    /// The file was not a (gzipped) trail file: quarantined whole.
    pub quarantined_whole: bool,
}

/// The event names kept, for one file (all when the list is empty).
pub struct EventFilter<'a>(Option<HashSet<&'a str>>);

impl<'a> EventFilter<'a> {
    pub fn new(names: &'a [String]) -> Self {
        Self((!names.is_empty()).then(|| names.iter().map(String::as_str).collect()))
    }

    /// A record without a readable `eventName` is kept: normalising it gives it a quarantine
    /// row with a reason, which is better than dropping it unseen.
    fn keeps(&self, record: &[u8]) -> bool {
        let Some(names) = &self.0 else {
            return true;
        };
        match serde_json::from_slice::<NameOnly<'_>>(record)
            .ok()
            .and_then(|n| n.event_name)
        {
            Some(name) => names.contains(name),
            None => true,
        }
    }
}

/// Decompresses `body` and stores every record `filter` keeps into `batch`; a body that is not
/// a trail file is quarantined whole with the reason. `location` names the file in quarantine
/// rows (`s3://bucket/key`).
pub fn store_trail_file(
    batch: &mut Batch<'_>,
    body: &[u8],
    filter: &EventFilter<'_>,
    origin: &str,
    location: &str,
) -> Result<TrailFileOutcome, AwsError> {
    let mut json = Vec::new();
    let decoded = if body.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(body)
            .take(MAX_FILE_BYTES)
            .read_to_end(&mut json)
            .map(|_| ())
            .map_err(|e| format!("not a valid gzip file: {e}"))
    } else {
        Ok(())
    };
    let json: &[u8] = if body.starts_with(&[0x1f, 0x8b]) {
        &json
    } else {
        body
    };
    let parsed = decoded.and_then(|()| {
        serde_json::from_slice::<TrailFile<'_>>(json)
            .map_err(|e| format!("not a CloudTrail file ({{\"Records\":[…]}}): {e}"))
    });
    let mut outcome = TrailFileOutcome::default();
    match parsed {
        Ok(file) => {
            for (i, raw) in file.records.iter().enumerate() {
                let bytes = raw.get().as_bytes();
                if !filter.keeps(bytes) {
                    outcome.filtered += 1;
                    continue;
                }
                outcome.records += 1;
                store_record(batch, bytes, origin, &|| format!("{location} record {i}"))?;
            }
        }
        Err(reason) => {
            outcome.quarantined_whole = true;
            batch.quarantine_once(&QuarantineRecord {
                origin,
                position: Some(location),
                reason: &reason,
                raw: body,
            })?;
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use crosswind_store::Store;

    use super::*;

    fn record(name: &str, id: &str) -> String {
        format!(
            r#"{{"eventVersion":"1.08","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::123456789012:user/alice","accountId":"123456789012","userName":"alice","accessKeyId":"AKIAEXAMPLE"}},"eventTime":"2026-11-30T10:00:00Z","eventSource":"sts.amazonaws.com","eventName":"{name}","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.9","userAgent":"aws-cli/2.15.30","requestParameters":null,"responseElements":null,"requestID":"r-{id}","eventID":"{id}","readOnly":true,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management"}}"#
        )
    }

    fn gzip(s: &str) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(s.as_bytes()).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn keeps_named_records_and_counts_the_rest() {
        let file = format!(
            r#"{{"Records":[{},{},{}]}}"#,
            record("GetCallerIdentity", "e1"),
            record("PutObject", "e2"),
            r#"{"eventTime":"2026-11-30T10:00:00Z"}"#,
        );
        let names = vec!["GetCallerIdentity".to_owned()];
        let mut store = Store::open_in_memory().unwrap();
        let mut batch = store.begin().unwrap();
        let out = store_trail_file(
            &mut batch,
            &gzip(&file),
            &EventFilter::new(&names),
            "test",
            "f",
        )
        .unwrap();
        let stats = batch.commit().unwrap();
        // The nameless record is kept (and quarantined by the normaliser), never dropped unseen.
        assert_eq!(out.records, 2);
        assert_eq!(out.filtered, 1);
        assert!(!out.quarantined_whole);
        assert_eq!(stats.stored, 1);
        assert_eq!(stats.quarantined, 1);
    }

    #[test]
    fn not_a_trail_file_is_quarantined_whole() {
        let mut store = Store::open_in_memory().unwrap();
        let mut batch = store.begin().unwrap();
        let out = store_trail_file(
            &mut batch,
            b"\x1f\x8bnot gzip at all",
            &EventFilter::new(&[]),
            "test",
            "s3://b/k",
        )
        .unwrap();
        assert!(out.quarantined_whole);
        assert_eq!(batch.commit().unwrap().quarantined, 1);
    }
}
