//! `BENCHMARKS.md`: the results of a benchmark run, regenerated as a whole each time.

use crate::import::{BackendResults, ImportBenchArgs, ImportBenchResults, Phase, phases};
use crate::measure;
use std::fmt::Write as _;

/// First import of 1,000,000 students, seconds.
pub const TARGET_FIRST_IMPORT_S: f64 = 60.0;
/// Re-sync of 1,000,000 students, seconds.
pub const TARGET_RESYNC_S: f64 = 10.0;
/// Peak resident memory of the process during an import, MiB.
pub const TARGET_PEAK_RSS_MIB: f64 = 300.0;
/// First import time as a multiple of the engine floor.
pub const TARGET_FLOOR_RATIO: f64 = 2.0;
/// The scale the targets are set for.
pub const TARGET_STUDENTS: u64 = 1_000_000;

const HEADER: &str = "\
# Benchmarks

This file is written by the `parent-connection-bench` commands (the workspace crate `bench/`, see
the README's Benchmarks part): do not edit it by hand, re-run the command instead. `import` writes
this head and the import section; `dispatch`, `digest` and `api` each rewrite only their own
section below it.

- **Import** (`import`): SDS import and re-sync at district scale, against the engine floor.
- **Dispatch** (`dispatch`): outbox delivery to a local SMTP sink, clean and with faults.
- **Digest** (`digest`): a weekly digest run for 1,000,000 guardians, and its sends.
- **API** (`api`): the real service (`parent-connection serve`, a child process) on the
  import's district, driven over loopback by thousands of distinct teachers, apps and admins,
  each with its own token: saturation (closed loop), teacher contact reads and a school-day
  mix with 10% writes at fixed rates (open loop: latency from each request's scheduled time,
  so queueing behind a slow server counts), and a soak that watches the server's memory;
  p50/p90/p99/p99.9/max, errors by status and the server's peak RSS per scenario.
- **OneRoster** (`oneroster`): a full and a delta pull of the same district from the
  project's paging test provider, against the CSV import and the provider's own serving time.

A target marked **NOT met** is not met on this machine; why, and what was measured and tried,
is in docs/performance.md (its first section, \"Where the targets stand\").

The import benchmark generates a seeded synthetic SDS v2.1 snapshot
of a large district, imports it into a fresh database, re-syncs it with a slightly changed
snapshot, and measures the *engine floor* — every row the first import writes (schools,
students, staff, classes, enrollments, contacts, student–contact links) loaded with the
plainest fast method of the engine — in the same run on the same machine, so the import can be
judged as a multiple of what the database itself needs. The floor loads into its own fresh
database, migrated with the product's migrations and holding one tenant, so it meets the real
tables' indexes, unique constraints and foreign keys; it reads the same CSV files without
validation or phone/email normalisation, writes in one transaction (SQLite: one prepared
`INSERT` stepped per row; PostgreSQL: `COPY` into the real tables), and resolves the foreign
keys of enrollments and links from SIS ids with one `INSERT … SELECT` from a temporary table
joined on the source ids.

Each database phase (setup, first import, re-sync, engine floor) runs in its own child
process (`parent-connection-bench import-phase`, internal), as a real `parent-connection
import` would: its peak RSS is that process's resident-set high-water mark (`VmHWM`), which
includes the SQLite page cache but not the PostgreSQL server's memory. *RSS at start* is the
child's resident size once started, before it connects. The test-data phases run in the
parent, with the mark reset through `/proc/self/clear_refs`. Wall time is measured inside the
child, from connecting to the end of the phase (process start-up excluded).
";

/// `KiB` as `123 MiB` (or `n/a`).
pub fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "n/a".into(), |k| format!("{:.0} MiB", k as f64 / 1024.0))
}

fn secs(phase: &Phase) -> String {
    format!("{:.1} s", phase.cost.wall.as_secs_f64())
}

/// `1234567` as `1,234,567`.
pub fn n(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The note a run below the target scale carries.
pub fn scale_note(md: &mut String, students: u64) {
    if students != TARGET_STUDENTS {
        let _ = writeln!(
            md,
            "- **Note:** the targets are set for {} students; this run used {}, so met / not met below is for this smaller scale only",
            n(TARGET_STUDENTS),
            n(students)
        );
    }
}

/// The `### Targets` heading and the head of its table, one column per engine.
pub fn targets_head<'a>(md: &mut String, engines: impl IntoIterator<Item = &'a str>) {
    let _ = writeln!(md, "\n### Targets\n");
    let mut header = String::from("| target |");
    let mut rule = String::from("|---|");
    for name in engines {
        let _ = write!(header, " {name} |");
        rule.push_str("---|");
    }
    let _ = writeln!(md, "{header}\n{rule}");
}

/// "met", or a bold "NOT met".
pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**NOT met**" }
}

fn ratio(phase: &Phase, floor: Option<&Phase>) -> Option<f64> {
    let floor = floor?.cost.wall.as_secs_f64();
    (floor > 0.0).then(|| phase.cost.wall.as_secs_f64() / floor)
}

/// The whole Markdown file.
pub fn markdown(results: &ImportBenchResults, args: &ImportBenchArgs) -> String {
    let mut md = String::from(HEADER);
    let g = &results.generated;
    let m = &results.mutated;
    let machine = &results.machine;
    let _ = writeln!(md, "\n## Import benchmark\n");
    let _ = writeln!(
        md,
        "- **Date (UTC):** {}",
        results.started_at.format("%Y-%m-%d %H:%M")
    );
    let _ = writeln!(md, "- **Commit:** `{}`", results.commit);
    md.push_str(&measure::machine_lines(machine));
    let _ = writeln!(
        md,
        "- **Scale:** {} students (seed {}): {} schools, {} homeroom classes and teachers, {} families, {} contact users, {} student–contact links; {} `users.csv` rows, {} enrollments; {:.0} MiB of CSV, rows in random order",
        n(g.students),
        results.seed,
        n(g.schools),
        n(g.classes),
        n(g.families),
        n(g.contacts),
        n(g.links),
        n(g.users),
        n(g.enrollments),
        g.bytes as f64 / (1u64 << 20) as f64
    );
    let _ = writeln!(
        md,
        "- **Contact data:** US phone numbers in mixed national/international formats, {} invalid on purpose, {} without a phone, {} without an email",
        n(g.invalid_phones),
        n(g.no_phone),
        n(g.no_email)
    );
    let _ = writeln!(
        md,
        "- **Re-sync snapshot:** {} contacts changed ({} emails, {} phones, {} names; {:.2}%), {} links removed ({:.2}%), everything else identical",
        n(m.contacts_changed),
        n(m.emails_changed),
        n(m.phones_changed),
        n(m.names_changed),
        pct(m.contacts_changed, m.contacts),
        n(m.links_removed),
        pct(m.links_removed, m.links)
    );
    let _ = writeln!(
        md,
        "- **Settings:** import `batch_rows` = {}, pool `max_connections` = {}",
        results.import_config.batch_rows, results.max_connections
    );
    if let (Some(before), Some(after)) = &results.load {
        let _ = writeln!(
            md,
            "- **Load average (1/5/15 min):** {before} at the start, {after} at the end (the benchmark itself adds 1–2 while it runs; more means other work shared the CPUs)"
        );
    }
    if !results.per_phase_rss {
        let _ = writeln!(
            md,
            "- **Note:** the peak-RSS mark could not be reset, so each peak is the process's peak so far"
        );
    }
    scale_note(&mut md, results.students);
    targets_head(&mut md, results.backends.iter().map(|b| b.name));
    type Check = fn(&BackendResults) -> Option<(String, bool)>;
    let checks: [(String, Check); 4] = [
        (
            format!("first import ≤ {TARGET_FIRST_IMPORT_S:.0} s"),
            |b| {
                let p = b.phase(phases::FIRST)?;
                Some((secs(p), p.cost.wall.as_secs_f64() <= TARGET_FIRST_IMPORT_S))
            },
        ),
        (format!("re-sync ≤ {TARGET_RESYNC_S:.0} s"), |b| {
            let p = b.phase(phases::RESYNC)?;
            Some((secs(p), p.cost.wall.as_secs_f64() <= TARGET_RESYNC_S))
        }),
        (
            format!("peak RSS ≤ {TARGET_PEAK_RSS_MIB:.0} MB (imports)"),
            |b| {
                let peak = [phases::FIRST, phases::RESYNC]
                    .iter()
                    .filter_map(|p| b.phase(p)?.cost.peak_rss_kib)
                    .max()?;
                Some((mib(Some(peak)), peak as f64 / 1024.0 <= TARGET_PEAK_RSS_MIB))
            },
        ),
        (
            format!("first import ≤ {TARGET_FLOOR_RATIO:.0}× engine floor"),
            |b| {
                let r = ratio(b.phase(phases::FIRST)?, b.phase(phases::FLOOR))?;
                Some((format!("{r:.1}×"), r <= TARGET_FLOOR_RATIO))
            },
        ),
    ];
    for (name, check) in &checks {
        let mut line = format!("| {name} |");
        for b in &results.backends {
            match check(b) {
                Some((value, met)) => {
                    let _ = write!(line, " {value} — {} |", verdict(met));
                }
                None => line.push_str(" n/a |"),
            }
        }
        let _ = writeln!(md, "{line}");
    }

    for b in &results.backends {
        backend_section(&mut md, b, &results.mutated);
    }

    let _ = writeln!(md, "\n### Test data\n");
    let _ = writeln!(
        md,
        "| phase | wall time | peak RSS | rows |\n|---|---|---|---|"
    );
    for p in &results.data_phases {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            p.name,
            secs(p),
            mib(p.cost.peak_rss_kib),
            n(p.rows)
        );
    }

    let _ = writeln!(md, "\n### How to reproduce\n");
    let _ = writeln!(md, "```sh");
    let _ = writeln!(md, "cargo build --release --workspace");
    let mut command = format!(
        "target/release/parent-connection-bench import --students {} --seed {}",
        results.students, results.seed
    );
    if args.postgres_url.is_some() {
        command.push_str(" \\\n  --postgres-url postgres://USER:PASSWORD@127.0.0.1:5432/postgres");
    }
    if args.skip_sqlite {
        command.push_str(" --skip-sqlite");
    }
    command.push_str(" --out BENCHMARKS.md");
    let _ = writeln!(md, "{command}");
    let _ = writeln!(md, "```\n");
    let _ = writeln!(
        md,
        "The PostgreSQL role must be allowed to create databases: a fresh `bench_import_<pid>` database is created and dropped. \
         `--work-dir DIR` puts the generated files ({:.0} MB for both snapshots at this scale) and the SQLite database elsewhere; `--keep` keeps them. \
         Other work on the machine during the run slows it down: run it on a quiet machine.",
        (g.bytes + results.mutated.bytes) as f64 / 1e6
    );
    md
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

fn backend_section(
    md: &mut String,
    b: &BackendResults,
    mutated: &parent_connection_testkit::generate::MutateSummary,
) {
    let _ = writeln!(md, "\n### {} {}\n", b.name, b.version);
    let size = b.database_bytes.map_or_else(String::new, |bytes| {
        format!(" (size after the re-sync: {:.0} MB)", bytes as f64 / 1e6)
    });
    let _ = writeln!(
        md,
        "Database: `{}`{size}. Engine floor: {}.\n",
        b.location, b.floor_method
    );
    let floor = b.phase(phases::FLOOR);
    let _ = writeln!(
        md,
        "| phase | wall time | peak RSS (RSS at start) | rows | vs engine floor |\n|---|---|---|---|---|"
    );
    for p in &b.phases {
        let rows = match p.name.as_str() {
            phases::SETUP => "—".to_string(),
            phases::FLOOR => format!(
                "{} inserted ({})",
                n(p.rows),
                b.floor_rows
                    .named()
                    .iter()
                    .map(|(table, rows)| format!("{} {table}", n(*rows)))
                    .collect::<Vec<_>>()
                    .join(" + ")
            ),
            _ => format!("{} written", n(p.rows)),
        };
        let vs = match (p.name.as_str(), ratio(p, floor)) {
            (phases::SETUP, _) | (_, None) => "—".to_string(),
            (_, Some(r)) => format!("{r:.2}×"),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} ({}) | {rows} | {vs} |",
            p.name,
            secs(p),
            mib(p.cost.peak_rss_kib),
            mib(p.cost.start_rss_kib)
        );
    }
    for p in &b.phases {
        if !p.steps.is_empty() {
            let steps: Vec<String> = p
                .steps
                .iter()
                .map(|(name, took)| format!("{name} {:.1} s", took.as_secs_f64()))
                .collect();
            let _ = writeln!(md, "\n{} steps: {}.", capitalize(&p.name), steps.join(", "));
        }
    }
    if b.resync_forced {
        let _ = writeln!(
            md,
            "\nThe deletion guard refused the re-sync, so it ran with `force` (it should not have: 0.5% is under the guard)."
        );
    }
    let _ = writeln!(
        md,
        "\nCounts reported by the imports (created / updated / unchanged / reactivated / deactivated / rejected):\n"
    );
    let _ = writeln!(md, "| entity | first import | re-sync |\n|---|---|---|");
    for (name, first) in &b.first.entities {
        let resync = b.resync.entity(name);
        let _ = writeln!(md, "| {name} | {} | {} |", counts(first), counts(&resync));
    }
    let (updated, deactivated) = (
        b.resync.entity("contacts").updated,
        b.resync.entity("links").deactivated,
    );
    let _ = writeln!(
        md,
        "\nRe-sync check: {} contacts updated for {} changed by the mutator ({}); {} links deactivated for {} removed ({}).",
        n(updated),
        n(mutated.contacts_changed),
        if updated == mutated.contacts_changed {
            "equal"
        } else {
            "differs: a changed contact may have lost all its links"
        },
        n(deactivated),
        n(mutated.links_removed),
        if deactivated == mutated.links_removed {
            "equal"
        } else {
            "**differs**"
        }
    );
    let _ = writeln!(
        md,
        "\nWarnings (contacts kept without a channel): {} in the first import, {} in the re-sync.",
        n(b.first.warning_count),
        n(b.resync.warning_count)
    );
}

fn counts(c: &crate::child::Counts6) -> String {
    format!(
        "{} / {} / {} / {} / {} / {}",
        n(c.created),
        n(c.updated),
        n(c.unchanged),
        n(c.reactivated),
        n(c.deactivated),
        n(c.rejected)
    )
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

/// A few lines for the terminal.
pub fn summary(results: &ImportBenchResults) -> String {
    let mut out = format!("import benchmark, {} students:\n", n(results.students));
    for b in &results.backends {
        let floor = b.phase(phases::FLOOR);
        for p in &b.phases {
            let vs = ratio(p, floor)
                .filter(|_| p.name != phases::SETUP && p.name != phases::FLOOR)
                .map(|r| format!(" ({r:.2}× floor)"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {:<11} {:<26} {:>8}  peak RSS {:>8}  rows {}{vs}",
                b.name,
                p.name,
                secs(p),
                mib(p.cost.peak_rss_kib),
                n(p.rows)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        assert_eq!(n(0), "0");
        assert_eq!(n(999), "999");
        assert_eq!(n(1_000), "1,000");
        assert_eq!(n(2_345_678), "2,345,678");
        assert_eq!(mib(Some(2048)), "2 MiB");
        assert_eq!(capitalize("re-sync"), "Re-sync");
    }
}
