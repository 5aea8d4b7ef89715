//! The fleet simulation (issue 13): `oidcd::fleet_sim` with arguments. It prints a Markdown
//! report (the table README.md quotes) and writes it to `--out`.
//!
//!     cargo run --release -p oidcd --example fleet_sim -- --hosts 100 --identities 100000 \
//!         --out docs/fleet/100x100000.md
//!     cargo run --release -p oidcd --example fleet_sim -- --fleet 10000 --hosts 100 \
//!         --identities 1000000 --out docs/fleet/10000x1000000.md
//!
//! CI runs a tiny fleet as a unit test (`fleet_sim::tests`), so this cannot rot.
#![allow(clippy::print_stdout)] // a command: stdout is its output

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use oidcd::config::IdRange;
use oidcd::fleet_sim::{self, Spec};

/// Simulate a fleet: hosts with one configuration, identities arriving on each by random paths
/// (SSH first, console, import; later sudo, refresh) in random orders, beside random local
/// accounts, allocated with the real rule. Prints how many identities got two UIDs, how many
/// IDs stand for two identities, the true conflicts, refusals, SSH reconnects and the cost,
/// for this release and the previous one's probing.
#[derive(Parser, Debug)]
struct Args {
    /// Hosts in the fleet (reported; defaults to --hosts).
    #[arg(long)]
    fleet: Option<u64>,
    /// Hosts simulated (a sample when smaller than --fleet).
    #[arg(long, default_value_t = 10)]
    hosts: usize,
    /// Identities; each arrives once on every simulated host.
    #[arg(long, default_value_t = 10_000)]
    identities: usize,
    /// Providers the identities are spread over.
    #[arg(long, default_value_t = 2)]
    providers: usize,
    /// Hosts (per thousand) with a local account given an ID inside the oidcd ranges.
    #[arg(long, default_value_t = 50)]
    local_per_mille: u32,
    /// UID range size (from the default uid_min; the GIDs follow it); default: the default ranges.
    #[arg(long)]
    uid_range: Option<u32>,
    /// Apply the fleet map of the whole directory (oidcctl idmap build) on every host first.
    #[arg(long)]
    map: bool,
    /// Weights of the first arrival paths: SSH first, console, import.
    #[arg(long, value_delimiter = ',', default_values_t = [5, 3, 2])]
    paths: Vec<u32>,
    /// Hosts replayed through the SQLite store and compared with the in-memory host.
    #[arg(long, default_value_t = 1)]
    verify: usize,
    /// Worker threads (default: the CPUs).
    #[arg(long)]
    threads: Option<usize>,
    /// Seed.
    #[arg(long, default_value_t = 13)]
    seed: u64,
    /// Also write the report here.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut spec = Spec::new(
        args.fleet.unwrap_or(args.hosts as u64),
        args.hosts,
        args.identities,
    );
    spec.providers = args.providers;
    spec.local_per_mille = args.local_per_mille;
    spec.with_map = args.map;
    if let [ssh, console, import] = args.paths[..] {
        spec.paths = [ssh, console, import];
    }
    spec.verify = args.verify;
    spec.seed = args.seed;
    if let Some(t) = args.threads {
        spec.threads = t;
    }
    if let Some(n) = args.uid_range {
        let min = spec.uids.min;
        spec.uids = IdRange {
            min,
            max: min.saturating_add(n.saturating_sub(1)),
        };
        spec.gids = IdRange {
            min: spec.uids.max.saturating_add(1),
            max: spec.uids.max.saturating_add(n),
        };
    }
    let command = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    let command = format!("cargo run --release -p oidcd --example fleet_sim -- {command}");
    let report = match fleet_sim::run(&spec) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fleet_sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    let date = chrono::Local::now().format("%Y-%m-%d").to_string();
    let text = report.markdown(&date, &command);
    print!("{text}");
    if let Some(out) = &args.out {
        if let Err(e) = std::fs::write(out, &text) {
            eprintln!("fleet_sim: {}: {e}", out.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
