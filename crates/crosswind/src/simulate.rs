//! `crosswind simulate` and the import half of `crosswind demo`: scenario data from the built-in
//! generator, written as the clouds would hand it over (Graph sign-in and risk detection pages,
//! CloudTrail trail files).

use std::path::{Path, PathBuf};

use anyhow::Context;
use crosswind_sim::{Scenario, SimConfig, generate, write_dataset};

/// Generator knobs the CLI exposes.
#[derive(Clone, Debug, clap::Args)]
pub struct SimArgs {
    /// Seed: the same seed writes byte-identical files.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Users in the simulated tenant.
    #[arg(long, default_value_t = 200)]
    pub users: usize,
    /// Hours of traffic.
    #[arg(long, default_value_t = 24)]
    pub hours: u32,
}

impl SimArgs {
    pub fn config(&self) -> SimConfig {
        SimConfig {
            seed: self.seed,
            users: self.users,
            hours: self.hours,
            ..SimConfig::default()
        }
    }
}

/// Writes `scenario` (mixed into a benign tenant) under `out`; returns the files to import.
pub fn write_scenario(
    scenario: Scenario,
    args: &SimArgs,
    out: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    let dataset = generate(&args.config(), &[scenario]);
    write_dataset(&dataset, out)
        .with_context(|| format!("cannot write scenario to {}", out.display()))?;
    let mut files = Vec::new();
    collect_record_files(out, &mut files)?;
    files.sort();
    Ok(files)
}

/// Graph pages (`entra/signins-*.json`, `entra/riskdetections-*.json`; not the arrival-delay
/// sidecar) and trail files (`*.json.gz`).
fn collect_record_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if path.is_dir() {
            collect_record_files(&path, out)?;
        } else if name.ends_with(".json.gz")
            || ((name.starts_with("signins-") || name.starts_with("riskdetections-"))
                && name.ends_with(".json"))
        {
            out.push(path);
        }
    }
    Ok(())
}
