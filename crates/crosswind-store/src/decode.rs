//! Reading long runs of events (the correlator's replay, hunts over a window) on two threads:
//! this one steps SQLite and hands each event to the caller while a second one decompresses and
//! parses the rows after it. Decoding is about half of such a read (the correlator's engine most
//! of the rest), so on two cores a run takes little more than the slower of the two halves.
//!
//! Order, early stop and errors are as in [`crate::stream_events`]: events reach the caller in
//! row order, a row that cannot be decoded is an error at its place, and nothing after the
//! caller's `Ok(false)` is handed over.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc;

use zstd::bulk::Decompressor;

use crate::codec::{self, CodecError};
use crate::{Result, Store, StoreError, StoredEvent};

/// Rows per hand-over (a few hundred KiB of compressed events), and hand-overs in flight.
const CHUNK: usize = 512;
const IN_FLIGHT: usize = 2;

/// One row as read: id, dictionary, stored bytes.
type RawRow = (i64, Option<i64>, Vec<u8>);

/// What the decoding thread is sent: dictionaries it has not seen yet, then rows (or, in a
/// row's place, why its dictionary could not be read).
struct Chunk {
    dicts: Vec<(i64, Vec<u8>)>,
    rows: Vec<Result<RawRow>>,
}

/// Events as decoded, in row order.
type Decoded = Vec<Result<StoredEvent>>;

/// Streams the rows of a prepared `SELECT id, event, event_dict …` into `f` until it returns
/// `Ok(false)`, decoding on a second thread.
pub(crate) fn stream_events_decoding_ahead<E>(
    store: &Store,
    rows: rusqlite::Rows<'_>,
    mut f: impl FnMut(StoredEvent) -> std::result::Result<bool, E>,
) -> std::result::Result<(), E>
where
    E: From<StoreError>,
{
    stream(store, rows, |events| {
        for event in events.drain(..) {
            if !f(event?)? {
                return Ok(false);
            }
        }
        Ok(true)
    })
}

/// Like [`stream_events_decoding_ahead`], lending each event to `f`: the decoding thread, which
/// allocated them, frees them too (mimalloc frees across threads on a slow path), so the
/// caller's thread keeps to its own work.
pub(crate) fn stream_event_refs_decoding_ahead<E>(
    store: &Store,
    rows: rusqlite::Rows<'_>,
    mut f: impl FnMut(&StoredEvent) -> std::result::Result<bool, E>,
) -> std::result::Result<(), E>
where
    E: From<StoreError>,
{
    stream(store, rows, |events| {
        for i in 0..events.len() {
            let go_on = match events.get(i) {
                Some(Ok(event)) => f(event)?,
                // The error at its place, after every event before it.
                Some(Err(_)) => match events.swap_remove(i) {
                    Err(e) => return Err(e.into()),
                    Ok(_) => false,
                },
                None => false,
            };
            if !go_on {
                return Ok(false);
            }
        }
        Ok(true)
    })
}

/// Reads rows on this thread and decodes them on a second one; `deliver` takes each decoded
/// chunk (`Ok(false)`: stop), which then goes back to the decoding thread to be freed.
fn stream<E>(
    store: &Store,
    mut rows: rusqlite::Rows<'_>,
    mut deliver: impl FnMut(&mut Decoded) -> std::result::Result<bool, E>,
) -> std::result::Result<(), E>
where
    E: From<StoreError>,
{
    std::thread::scope(|scope| {
        let (to_decoder, chunks) = mpsc::sync_channel::<Chunk>(IN_FLIGHT);
        let (to_caller, decoded) = mpsc::sync_channel::<Decoded>(IN_FLIGHT);
        let (give_back, delivered) = mpsc::channel::<Decoded>();
        scope.spawn(move || decode_chunks(chunks, to_caller, delivered));
        let mut sent_dicts = HashSet::new();
        let mut pending = 0usize;
        let mut done_reading = false;
        loop {
            // Keep the decoder fed: read the next chunk before handing out the last one.
            if !done_reading && pending < IN_FLIGHT {
                let mut chunk = Chunk {
                    dicts: Vec::new(),
                    rows: Vec::with_capacity(CHUNK),
                };
                while chunk.rows.len() < CHUNK {
                    let Some(row) = rows.next().map_err(StoreError::from)? else {
                        done_reading = true;
                        break;
                    };
                    let id: i64 = row.get(0).map_err(StoreError::from)?;
                    let dict: Option<i64> = row.get(2).map_err(StoreError::from)?;
                    let bytes = row
                        .get_ref(1)
                        .map_err(StoreError::from)?
                        .as_bytes()
                        .map_err(|e| StoreError::from(rusqlite::Error::from(e)))?
                        .to_vec();
                    if let Some(d) = dict.filter(|d| !sent_dicts.contains(d)) {
                        match codec::dictionary(&store.conn, d) {
                            Ok(dict) => {
                                sent_dicts.insert(d);
                                chunk.dicts.push((d, dict));
                            }
                            Err(e) => {
                                chunk.rows.push(Err(e.into()));
                                continue;
                            }
                        }
                    }
                    chunk.rows.push(Ok((id, dict, bytes)));
                }
                if !chunk.rows.is_empty() {
                    if to_decoder.send(chunk).is_err() {
                        break;
                    }
                    pending += 1;
                }
                if !done_reading && pending < IN_FLIGHT {
                    continue;
                }
            }
            if pending == 0 {
                break;
            }
            let Ok(mut events) = decoded.recv() else {
                break;
            };
            pending -= 1;
            if !deliver(&mut events)? {
                // Dropping the senders stops the decoder at its next hand-over.
                return Ok(());
            }
            let _ = give_back.send(events);
        }
        Ok(())
    })
}

/// The decoding thread: decompresses and parses each chunk, in order, until either side hangs up.
fn decode_chunks(
    chunks: mpsc::Receiver<Chunk>,
    out: mpsc::SyncSender<Decoded>,
    delivered: mpsc::Receiver<Decoded>,
) {
    let mut readers: HashMap<i64, std::result::Result<Decompressor<'static>, String>> =
        HashMap::new();
    let mut buf = Vec::new();
    for chunk in chunks {
        while let Ok(events) = delivered.try_recv() {
            drop(events);
        }
        for (id, dict) in chunk.dicts {
            // A dictionary zstd refuses fails each row that names it, not the thread.
            readers.insert(id, codec::decompressor(&dict).map_err(|e| e.to_string()));
        }
        let events = chunk
            .rows
            .into_iter()
            .map(|row| {
                let (id, dict, value) = row?;
                let json = match dict {
                    None => &value[..],
                    Some(d) => {
                        let reader = match readers.get_mut(&d) {
                            Some(Ok(reader)) => reader,
                            Some(Err(e)) => {
                                return Err(StoreError::Codec(CodecError::Zstd(
                                    std::io::Error::other(e.clone()),
                                )));
                            }
                            None => {
                                return Err(StoreError::Codec(CodecError::MissingDictionary(d)));
                            }
                        };
                        codec::decompress(reader, &value, &mut buf).map_err(StoreError::Codec)?;
                        &buf[..]
                    }
                };
                Ok(StoredEvent {
                    id,
                    event: crate::parse_event(id, json)?,
                })
            })
            .collect();
        if out.send(events).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
