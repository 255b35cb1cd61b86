//! The results: one row per scenario and database, printed as a table and written as JSON.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use kapable_tools::Summary;
use serde::Serialize;
use serde_json::{Map, Value};

/// Which tail figure a row's last latency column holds.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tail {
    /// The 99.9th percentile (request scenarios, with many samples).
    #[serde(rename = "p99.9")]
    P999,
    /// The largest sample (deliveries and connections).
    Max,
}

/// One scenario's result on one database.
#[derive(Debug, Serialize)]
pub struct Row {
    /// The scenario's name.
    pub scenario: String,
    /// `sqlite`, `postgres` or `external`.
    pub database: String,
    /// Successful operations per second.
    pub throughput: f64,
    /// What `throughput` counts, such as `req/s`.
    pub unit: String,
    /// Median latency in milliseconds.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency in milliseconds.
    pub p99_ms: Option<f64>,
    /// The tail latency in milliseconds: see `tail`.
    pub tail_ms: Option<f64>,
    /// Which figure `tail_ms` is.
    pub tail: Tail,
    /// Latency samples behind the percentiles.
    pub samples: usize,
    /// Failed operations.
    pub errors: u64,
    /// `throughput` over the same database's `baseline` throughput, where meaningful.
    pub ratio_to_baseline: Option<f64>,
    /// Scenario-specific figures (WAL size, RSS, completeness ...).
    pub extra: Map<String, Value>,
    /// The same figures, short and readable, for the table.
    #[serde(skip)]
    notes: Vec<String>,
}

impl Row {
    /// A row without latencies yet.
    pub fn new(scenario: &str, database: &str, throughput: f64, unit: &str) -> Row {
        Row {
            scenario: scenario.to_owned(),
            database: database.to_owned(),
            throughput,
            unit: unit.to_owned(),
            p50_ms: None,
            p99_ms: None,
            tail_ms: None,
            tail: Tail::P999,
            samples: 0,
            errors: 0,
            ratio_to_baseline: None,
            extra: Map::new(),
            notes: Vec::new(),
        }
    }

    /// The row of a scenario that could not run.
    pub fn failed(scenario: &str, database: &str, error: &anyhow::Error) -> Row {
        eprintln!("  {scenario} on {database} failed: {error:#}");
        let mut row = Row::new(scenario, database, 0.0, "-");
        row.errors = 1;
        let text = format!("{error:#}");
        let short: String = text.chars().take(120).collect();
        row.extra("failed", text, format!("FAILED: {short}"));
        row
    }

    /// Sets the latency columns from `samples`.
    pub fn latencies(&mut self, samples: Vec<Duration>, tail: Tail) {
        self.tail = tail;
        let Some(summary) = Summary::of(samples) else {
            return;
        };
        self.samples = summary.count;
        self.p50_ms = Some(ms(summary.p50));
        self.p99_ms = Some(ms(summary.p99));
        self.tail_ms = Some(ms(match tail {
            Tail::P999 => summary.p999,
            Tail::Max => summary.max,
        }));
    }

    /// Adds a figure: `value` under `key` in the JSON, `note` in the table.
    pub fn extra(&mut self, key: &str, value: impl Into<Value>, note: impl Into<String>) {
        self.value(key, value);
        self.note(note);
    }

    /// Adds a figure to the JSON only.
    pub fn value(&mut self, key: &str, value: impl Into<Value>) {
        self.extra.insert(key.to_owned(), value.into());
    }

    /// Adds a remark to the table only.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// `bytes` as KiB, MiB or GiB.
pub fn bytes(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.1} KiB", b / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.1} MiB", b / 1_048_576.0),
        _ => format!("{:.2} GiB", b / 1_073_741_824.0),
    }
}

/// Prints the rows as a table on stdout.
pub fn print_table(rows: &[Row]) {
    let cell = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.2}"));
    println!();
    println!(
        "{:<13} {:<9} {:>19} {:>9} {:>9} {:>15} {:>7} {:>8}  extra",
        "scenario",
        "database",
        "throughput",
        "p50 ms",
        "p99 ms",
        "p99.9/max ms",
        "errors",
        "vs base"
    );
    for row in rows {
        let tail = match row.tail {
            Tail::P999 => cell(row.tail_ms),
            Tail::Max => format!("{} (max)", cell(row.tail_ms)),
        };
        let ratio = row.ratio_to_baseline.map_or("-".to_owned(), |r| format!("{:.1}%", r * 100.0));
        println!(
            "{:<13} {:<9} {:>19} {:>9} {:>9} {:>15} {:>7} {:>8}  {}",
            row.scenario,
            row.database,
            format!("{:.0} {}", row.throughput, row.unit),
            cell(row.p50_ms),
            cell(row.p99_ms),
            tail,
            row.errors,
            ratio,
            row.notes.iter().filter(|n| !n.is_empty()).cloned().collect::<Vec<_>>().join("; ")
        );
    }
}

/// Writes the rows to `path` as a JSON array.
pub fn write_json(path: &Path, rows: &[Row]) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(rows)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

/// The most a figure may worsen against the reference before it counts as a regression.
const TOLERANCE: f64 = 0.10;

/// Compares `rows` with the rows of an earlier run in `path` (its `--json` output): for each
/// scenario and database in both, the change of throughput and of p99 (of `idle-streams`, the
/// bytes a stream costs, its open rate being no figure of merit). Prints one line each;
/// returns how many worsened by more than 10%.
pub fn compare(path: &Path, rows: &[Row]) -> anyhow::Result<usize> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let reference: Vec<Value> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JSON array", path.display()))?;
    let mut regressions = 0;
    println!();
    println!("against {} (worse by over {:.0}% is flagged):", path.display(), TOLERANCE * 100.0);
    for row in rows {
        let earlier = reference.iter().find(|r| {
            r["scenario"].as_str() == Some(row.scenario.as_str())
                && r["database"].as_str() == Some(row.database.as_str())
        });
        let Some(earlier) = earlier else { continue };
        let figures = match row.scenario.as_str() {
            "idle-streams" => vec![(
                "bytes/stream",
                earlier["extra"]["bytes_per_stream"].as_f64(),
                row.extra.get("bytes_per_stream").and_then(Value::as_f64),
                false,
            )],
            _ => vec![
                ("throughput", earlier["throughput"].as_f64(), Some(row.throughput), true),
                ("p99", earlier["p99_ms"].as_f64(), row.p99_ms, false),
            ],
        };
        let mut line = format!("  {:<13} {:<9}", row.scenario, row.database);
        let mut worse = false;
        for (name, before, now, higher_is_better) in figures {
            let (Some(before), Some(now)) = (before, now) else { continue };
            if before <= 0.0 {
                continue;
            }
            let change = now / before - 1.0;
            worse |= if higher_is_better { change < -TOLERANCE } else { change > TOLERANCE };
            line += &format!("  {name} {:+.1}%", change * 100.0);
        }
        if worse {
            regressions += 1;
            line += "  REGRESSION";
        }
        println!("{line}");
    }
    Ok(regressions)
}
