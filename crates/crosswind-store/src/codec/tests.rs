//! Compression story: plain until trained, compressed after, exact on the way back, and never a
//! value naming a dictionary that is not stored.

use crosswind_model::*;

use crate::tests::event;
use crate::*;

pub(crate) const TRAIN_AT: usize = 200;

/// A Graph-like sign-in of a few hundred bytes: fixed keys, values drawn from small sets, a
/// unique id. Compressible the way real records are (keys and common values repeat).
fn raw(i: usize) -> Vec<u8> {
    let users = ["alice", "bob", "carol", "dave", "erin", "frank", "grace"];
    let apps = [
        "Microsoft Teams",
        "Office 365 Exchange Online",
        "Azure Portal",
    ];
    format!(
        r#"{{"id":"{i:08x}-5c02-4dec-aeff-eb4804fccf9e","createdDateTime":"2026-11-{:02}T{:02}:{:02}:{:02}Z","userPrincipalName":"{}@contoso.com","appDisplayName":"{}","ipAddress":"198.51.100.{}","clientAppUsed":"Browser","status":{{"errorCode":{},"failureReason":"{}"}},"location":{{"city":"Hamburg","countryOrRegion":"DE"}},"riskLevelDuringSignIn":"none","riskState":"none"}}"#,
        1 + i % 28,
        i % 24,
        i % 60,
        (i * 7) % 60,
        users[i % users.len()],
        apps[i % apps.len()],
        i % 250,
        if i.is_multiple_of(5) { 50126 } else { 0 },
        if i.is_multiple_of(5) { "Invalid username or password." } else { "Other." },
    )
    .into_bytes()
}

pub(crate) fn record_event(i: usize) -> Event {
    event(
        &format!("{i:08x}-5c02-4dec-aeff-eb4804fccf9e"),
        1_000 + i as i64,
        CloudProvider::Azure,
        !i.is_multiple_of(5),
    )
}

pub(crate) fn insert_range(store: &mut Store, range: std::ops::Range<usize>) -> BatchStats {
    let mut batch = store.begin().unwrap();
    insert_into(&mut batch, range);
    batch.commit().unwrap()
}

/// Records `range` into an open batch (left for the caller to commit or drop).
fn insert_into(batch: &mut Batch<'_>, range: std::ops::Range<usize>) {
    for i in range {
        let (event, raw) = (record_event(i), raw(i));
        batch
            .insert(&NewRecord {
                event: &event,
                format: SourceFormat::GraphSignIn,
                raw: &raw,
                origin: "test",
            })
            .unwrap();
    }
}

fn count(store: &Store, sql: &str) -> i64 {
    scalar(store, sql)
}

/// The one value a query returns.
fn scalar<T: rusqlite::types::FromSql>(store: &Store, sql: &str) -> T {
    store.connection().query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Stores record `i` as `packed` (which a packer made from it).
fn store_packed(batch: &mut Batch<'_>, i: usize, packed: &PackedRecord) -> Inserted {
    let (event, raw) = (record_event(i), raw(i));
    let rec = NewRecord {
        event: &event,
        format: SourceFormat::GraphSignIn,
        raw: &raw,
        origin: "test",
    };
    batch.insert_packed(&rec, packed).unwrap()
}

/// Every stored record reads back byte for byte, and every event as it was stored.
pub(crate) fn assert_exact(store: &Store, n: usize) {
    for i in 0..n {
        let uid = format!("{i:08x}-5c02-4dec-aeff-eb4804fccf9e");
        let id = store
            .event_id(RecordSource::EntraSignIn, &uid)
            .unwrap()
            .unwrap_or_else(|| panic!("record {i} stored"));
        assert_eq!(store.raw_record(id).unwrap().unwrap(), raw(i), "raw {i}");
    }
    let events = store.events(&EventQuery::default()).unwrap();
    assert_eq!(events.len(), n);
    for stored in events {
        let i = (stored.event.time - 1_000) as usize;
        assert_eq!(stored.event, record_event(i), "event {i}");
    }
}

#[test]
fn plain_until_trained_then_compressed_and_read_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("cw.db")).unwrap();
    store.set_train_at(TRAIN_AT, u64::MAX);

    let stats = insert_range(&mut store, 0..TRAIN_AT - 1);
    assert_eq!(stats.dictionaries, 0);
    assert_eq!(count(&store, "SELECT count(*) FROM zstd_dicts"), 0);

    // The record that completes the samples trains both dictionaries and is the first stored
    // compressed.
    let stats = insert_range(&mut store, TRAIN_AT - 1..1_000);
    assert_eq!(stats.dictionaries, 2);
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM zstd_dicts WHERE format = 'graph_signin'"
        ),
        2
    );
    let plain = (TRAIN_AT - 1) as i64;
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM raw_records WHERE dict IS NULL"
        ),
        plain
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM events WHERE event_dict IS NULL"
        ),
        plain
    );
    // Plain events stay JSON text; compressed ones are blobs.
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM events WHERE event_dict IS NULL AND typeof(event) = 'text'"
        ),
        plain
    );
    // Compression pays: the compressed raw records are several times smaller.
    let plain_avg: f64 = scalar(
        &store,
        "SELECT avg(length(raw)) FROM raw_records WHERE dict IS NULL",
    );
    let packed_avg: f64 = scalar(
        &store,
        "SELECT avg(length(raw)) FROM raw_records WHERE dict IS NOT NULL",
    );
    assert!(
        packed_avg * 3.0 < plain_avg,
        "compressed {packed_avg:.0} B vs plain {plain_avg:.0} B"
    );
    assert_exact(&store, 1_000);

    // The follower feed (what the daemon forwards) gets the record as received too.
    let (fed, _) = feed::records_after(&store, 0, "", 2_000).unwrap();
    assert_eq!(fed.len(), 1_000);
    for record in fed {
        let i = (record.event.time - 1_000) as usize;
        assert_eq!(record.raw, raw(i));
    }
}

#[test]
fn reopened_store_compresses_with_its_stored_dictionaries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cw.db");
    {
        let mut store = Store::open(&path).unwrap();
        store.set_train_at(TRAIN_AT, u64::MAX);
        insert_range(&mut store, 0..500);
    }
    let mut store = Store::open(&path).unwrap();
    let stats = insert_range(&mut store, 500..800);
    assert_eq!(stats.dictionaries, 0, "no training after a reopen");
    assert_eq!(count(&store, "SELECT count(*) FROM zstd_dicts"), 2);
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM raw_records WHERE event_id > 500 AND dict IS NULL"
        ),
        0
    );
    assert_exact(&store, 800);
}

#[test]
fn a_rolled_back_dictionary_is_never_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("cw.db")).unwrap();
    store.set_train_at(TRAIN_AT, u64::MAX);
    {
        // Trains in this batch, then rolls back (dropped without commit).
        let mut batch = store.begin().unwrap();
        insert_into(&mut batch, 0..TRAIN_AT + 10);
        assert_eq!(batch.stats().dictionaries, 2);
    }
    assert_eq!(count(&store, "SELECT count(*) FROM zstd_dicts"), 0);
    // The next batch must not compress with the dictionaries that are gone.
    insert_range(&mut store, 0..50);
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM raw_records WHERE dict IS NOT NULL
                OR event_id IN (SELECT id FROM events WHERE event_dict IS NOT NULL)"
        ),
        0
    );
    assert_exact(&store, 50);
}

#[test]
fn packer_uses_only_committed_dictionaries() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("cw.db")).unwrap();
    store.set_train_at(TRAIN_AT, u64::MAX);
    let mut packer = store.packer();
    let pack = |packer: &mut Packer, i: usize| {
        packer
            .pack(&record_event(i), SourceFormat::GraphSignIn, &raw(i), true)
            .unwrap()
    };

    // Before any dictionary: plain JSON and raw, which the batch samples and trains on.
    let mut batch = store.begin().unwrap();
    for i in 0..TRAIN_AT + 10 {
        let packed = pack(&mut packer, i);
        assert_eq!((packed.event_dict, packed.raw_dict), (None, None));
        assert!(
            packed.raw.is_empty(),
            "the batch takes the record's own bytes"
        );
        store_packed(&mut batch, i, &packed);
    }
    // Trained in the open batch: not yet for the packer.
    assert_eq!(batch.stats().dictionaries, 2);
    let packed = pack(&mut packer, TRAIN_AT + 10);
    assert_eq!((packed.event_dict, packed.raw_dict), (None, None));
    batch.commit().unwrap();

    // Committed: the packer compresses, and the batch stores what it packed.
    let mut batch = store.begin().unwrap();
    for i in TRAIN_AT + 10..600 {
        let packed = pack(&mut packer, i);
        assert!(packed.event_dict.is_some() && packed.raw_dict.is_some());
        assert!(packed.raw.len() < raw(i).len());
        assert!(matches!(
            store_packed(&mut batch, i, &packed),
            Inserted::New(_)
        ));
        // The same record again is a duplicate, packed or not.
        assert_eq!(store_packed(&mut batch, i, &packed), Inserted::Duplicate);
    }
    batch.commit().unwrap();
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM raw_records WHERE dict IS NULL"
        ),
        (TRAIN_AT - 1) as i64
    );
    assert_exact(&store, 600);
}

#[test]
fn damaged_values_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("cw.db")).unwrap();
    store.set_train_at(TRAIN_AT, u64::MAX);
    insert_range(&mut store, 0..400);
    let id = store
        .event_id(
            RecordSource::EntraSignIn,
            &format!("{:08x}-5c02-4dec-aeff-eb4804fccf9e", 300),
        )
        .unwrap()
        .unwrap();
    let conn = store.connection();

    // A truncated frame.
    conn.execute(
        "UPDATE raw_records SET raw = substr(raw, 1, length(raw) - 3) WHERE event_id = ?1",
        [id],
    )
    .unwrap();
    let err = store.raw_record(id).unwrap_err();
    assert!(matches!(err, StoreError::Codec(_)), "{err}");

    // Not a zstd frame at all.
    conn.execute(
        "UPDATE raw_records SET raw = x'00' WHERE event_id = ?1",
        [id],
    )
    .unwrap();
    assert!(matches!(
        store.raw_record(id).unwrap_err(),
        StoreError::Codec(CodecError::BadSize)
    ));

    // A dictionary that is not stored.
    conn.execute("UPDATE events SET event_dict = 999 WHERE id = ?1", [id])
        .unwrap();
    let err = store.events(&EventQuery::default()).unwrap_err();
    assert!(
        matches!(err, StoreError::Codec(CodecError::MissingDictionary(999))),
        "{err}"
    );
}

#[test]
fn a_huge_record_after_training_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("cw.db")).unwrap();
    store.set_train_at(TRAIN_AT, u64::MAX);
    insert_range(&mut store, 0..TRAIN_AT + 1);
    // 10 MiB: far past any sample size, with a long unique tail the dictionary cannot know.
    let mut huge = raw(TRAIN_AT + 1);
    huge.truncate(huge.len() - 1);
    huge.extend_from_slice(br#","blob":""#);
    let mut x: u32 = 7;
    while huge.len() < 10 << 20 {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        huge.push(b'a' + (x >> 27) as u8 % 26);
    }
    huge.extend_from_slice(br#""}"#);
    let event = record_event(TRAIN_AT + 1);
    let mut batch = store.begin().unwrap();
    let Inserted::New(id) = batch
        .insert(&NewRecord {
            event: &event,
            format: SourceFormat::GraphSignIn,
            raw: &huge,
            origin: "test",
        })
        .unwrap()
    else {
        panic!("stored as new")
    };
    batch.commit().unwrap();
    let dict: Option<i64> = store
        .connection()
        .query_row(
            "SELECT dict FROM raw_records WHERE event_id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap();
    assert!(dict.is_some(), "compressed like the others");
    assert_eq!(store.raw_record(id).unwrap().unwrap(), huge);
}

/// Dictionary ids named by raw records `lo..hi` (by insertion order), distinct, ascending.
fn raw_dicts(store: &Store, lo: i64, hi: i64) -> Vec<Option<i64>> {
    let mut stmt = store
        .connection()
        .prepare(
            "SELECT DISTINCT dict FROM raw_records WHERE event_id >= ?1 AND event_id < ?2
             ORDER BY dict",
        )
        .unwrap();
    stmt.query_map([lo, hi], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

#[test]
fn dictionaries_follow_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("cw.db")).unwrap();
    // Train on 200 records; after 300 values, sample 200 more (still compressing) and train a
    // successor: dictionaries at records 199, 698 and 1197 (0-based), two each (raw, event).
    store.set_train_at(TRAIN_AT, 300);
    for lo in [0, 500, 1_000] {
        insert_range(&mut store, lo..lo + 500);
    }
    assert_eq!(count(&store, "SELECT count(*) FROM zstd_dicts"), 6);
    let ids: Vec<i64> = {
        let mut stmt = store
            .connection()
            .prepare("SELECT id FROM zstd_dicts WHERE part = 'raw' ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    // Row ids are 1-based: record i is row i + 1.
    assert_eq!(raw_dicts(&store, 1, 200), vec![None]);
    assert_eq!(raw_dicts(&store, 200, 699), vec![Some(ids[0])]);
    assert_eq!(raw_dicts(&store, 699, 1198), vec![Some(ids[1])]);
    assert_eq!(raw_dicts(&store, 1198, 1501), vec![Some(ids[2])]);
    assert_exact(&store, 1_500);
}

#[test]
fn values_packed_off_thread_count_towards_a_successor() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("cw.db")).unwrap();
    store.set_train_at(TRAIN_AT, 300);
    let mut packer = store.packer();
    let mut insert_packed = |store: &mut Store, range: std::ops::Range<usize>| {
        let mut batch = store.begin().unwrap();
        let mut packed_with = Vec::new();
        for i in range {
            let packed = packer
                .pack(&record_event(i), SourceFormat::GraphSignIn, &raw(i), true)
                .unwrap();
            packed_with.push(packed.raw_dict);
            store_packed(&mut batch, i, &packed);
        }
        (batch.commit().unwrap(), packed_with)
    };
    let (stats, _) = insert_packed(&mut store, 0..250);
    assert_eq!(stats.dictionaries, 2);
    // Everything here is packed off-thread with the first dictionaries; the batch counts them,
    // samples the plain forms once 300 are in, and trains successors in this batch.
    let (stats, packed_with) = insert_packed(&mut store, 250..900);
    assert_eq!(stats.dictionaries, 2);
    let first = packed_with[0];
    assert!(packed_with.iter().all(|d| *d == first && d.is_some()));
    // Committed: the packer moves to the successors.
    let (_, packed_with) = insert_packed(&mut store, 900..1_000);
    assert!(packed_with.iter().all(|d| d.is_some() && *d > first));
    assert_eq!(count(&store, "SELECT count(*) FROM zstd_dicts"), 4);
    assert_exact(&store, 1_000);
}

#[test]
fn a_rolled_back_successor_leaves_the_old_dictionary_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("cw.db")).unwrap();
    store.set_train_at(TRAIN_AT, 300);
    insert_range(&mut store, 0..600);
    {
        // Trains the successors (at record 698), then rolls back.
        let mut batch = store.begin().unwrap();
        insert_into(&mut batch, 600..800);
        assert_eq!(batch.stats().dictionaries, 2);
    }
    assert_eq!(count(&store, "SELECT count(*) FROM zstd_dicts"), 2);
    insert_range(&mut store, 600..700);
    let first_raw: i64 = count(&store, "SELECT min(id) FROM zstd_dicts WHERE part = 'raw'");
    assert_eq!(raw_dicts(&store, 601, 701), vec![Some(first_raw)]);
    assert_exact(&store, 700);
}
