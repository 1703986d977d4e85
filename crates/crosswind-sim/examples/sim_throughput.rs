//! Measures generation throughput, and optionally writes the mixed dataset:
//! `cargo run --release -p crosswind-sim --example sim_throughput [records] [out-dir]`.

#![forbid(unsafe_code)]

use std::time::Instant;

use crosswind_sim::{Scenario, SimConfig, SimRecord, generate, stream, write_dataset};

fn main() {
    let n = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000u64);
    let cfg = SimConfig {
        stream_records: n,
        ..SimConfig::default()
    };

    let t0 = Instant::now();
    let (mut signins, mut bytes) = (0u64, 0usize);
    for r in stream(&cfg) {
        bytes += r.json().len();
        if matches!(r, SimRecord::SignIn(_)) {
            signins += 1;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "stream: {n} records ({signins} sign-ins) in {secs:.2} s = {:.0} records/s, {:.0} MB/s",
        n as f64 / secs,
        bytes as f64 / secs / 1e6
    );

    let t0 = Instant::now();
    let ds = generate(&SimConfig::default(), &[Scenario::Mixed]);
    let secs = t0.elapsed().as_secs_f64();
    let total = ds.signins.len() + ds.cloudtrail.len();
    println!(
        "generate(mixed, 200 users, 24 h): {} sign-ins + {} CloudTrail in {secs:.2} s = {:.0} records/s",
        ds.signins.len(),
        ds.cloudtrail.len(),
        total as f64 / secs
    );
    if let Some(dir) = std::env::args().nth(2) {
        match write_dataset(&ds, std::path::Path::new(&dir)) {
            Ok(sum) => println!("wrote {} files to {dir}", sum.files.len()),
            Err(e) => eprintln!("cannot write {dir}: {e}"),
        }
    }
}
