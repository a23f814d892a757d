//! `strata log`: the timeline of what changed, who did it, when, and what it cascaded to.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Result;
use strata_events::{Event, EventLog, Query};

use super::graph::write_stdout;
use crate::global::GlobalArgs;

/// Arguments of `strata log`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this image.
    image: Option<String>,
    /// Only events at or after this time: RFC 3339, a date (`2026-11-23`, UTC), or how long ago
    /// (`30m`, `2h`, `7d`, `2w`).
    #[arg(long)]
    since: Option<String>,
    /// Only these kinds of event (repeatable).
    #[arg(long, value_parser = ["build", "test", "sign", "import", "push", "pull", "delete", "deploy", "update"])]
    kind: Vec<String>,
    /// At most this many events (newest kept).
    #[arg(long, short = 'n')]
    limit: Option<usize>,
    /// Print the events as JSON.
    #[arg(long)]
    json: bool,
}

/// Print the timeline.
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    let store_path = global.store_path()?;
    let db = crate::global::state_dir_of(&store_path).join("events.db");
    if !db.exists() {
        write_stdout("nothing recorded yet\n")?;
        return Ok(ExitCode::SUCCESS);
    }
    let since = args.since.as_deref().map(since_time).transpose()?;
    let log = EventLog::open(&db)?;
    let events = log.query(&Query {
        image: args.image,
        since,
        kinds: args
            .kind
            .iter()
            .filter_map(|k| strata_events::Kind::from_name(k))
            .collect(),
        limit: args.limit.unwrap_or(0),
        ..Query::default()
    })?;
    if args.json {
        write_stdout(&(serde_json::to_string_pretty(&events)? + "\n"))?;
        return Ok(ExitCode::SUCCESS);
    }
    write_stdout(&timeline(&strata_events::readable_timeline(events)))?;
    Ok(ExitCode::SUCCESS)
}

/// `--since` as the log stores times (RFC 3339 UTC with milliseconds), so that comparing the
/// strings compares the times.
fn since_time(value: &str) -> Result<String> {
    let utc =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let digits = value.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &value[digits.len()..];
    if let (Ok(n), Some(seconds)) = (
        digits.parse::<i64>(),
        match unit {
            "s" => Some(1),
            "m" => Some(60),
            "h" => Some(3600),
            "d" => Some(86_400),
            "w" => Some(604_800),
            _ => None,
        },
    ) {
        return Ok(utc(
            chrono::Utc::now() - chrono::Duration::seconds(n * seconds)
        ));
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(utc(t.with_timezone(&chrono::Utc)));
    }
    if let Ok(day) = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Ok(utc(day.and_time(chrono::NaiveTime::MIN).and_utc()));
    }
    anyhow::bail!(
        "invalid --since {value:?}: give an RFC 3339 time, a date (2026-11-23) or how long ago (30m, 2h, 7d)"
    )
}

/// One line per event; a rebuild lists what it cascaded to in the same run.
fn timeline(events: &[Event]) -> String {
    let mut cascaded: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for e in events {
        if let (Some(run), Some(cause)) = (&e.run_id, &e.cause)
            && e.result == "ok"
        {
            cascaded
                .entry((run.clone(), cause.clone()))
                .or_default()
                .push(e.image.clone());
        }
    }
    let mut out = String::new();
    for e in events {
        let time = e.time.get(..19).unwrap_or(&e.time).replace('T', " ");
        let team = e.team.as_deref().unwrap_or("?");
        let kind = e
            .kind
            .map(|k| format!("{k:?}").to_lowercase())
            .unwrap_or_default();
        let verb = match (kind.as_str(), e.result.as_str()) {
            ("build", "ok") => "rebuilt".to_string(),
            ("build", "up-to-date") => "found up to date".to_string(),
            ("build", "failed") => "FAILED to build".to_string(),
            ("build", "skipped") => "skipped".to_string(),
            ("build", "started") => "started building".to_string(),
            ("build", "interrupted") => "was INTERRUPTED building".to_string(),
            ("sign", "ok") => "signed the provenance of".to_string(),
            ("test", "ok") => "tested".to_string(),
            ("test", "failed") => "FAILED the tests of".to_string(),
            ("push", "ok") => "pushed".to_string(),
            ("push", "refused") => "was REFUSED a push to".to_string(),
            (k, r) => format!("{k} {r}"),
        };
        if matches!(kind.as_str(), "deploy" | "update")
            && let Some(reason) = &e.reason
        {
            // A deployment's record is a sentence of its own: `acme-prod/wordpress: deployed
            // sha256:… (corebuild … by operations → httpd-php → wordpress), healthy in 2.1 s, …`.
            let by = e
                .user
                .as_deref()
                .map(|u| format!(" [{u}]"))
                .unwrap_or_default();
            out.push_str(&format!("{time} {team} {}: {reason}{by}\n", e.image));
            continue;
        }
        let mut line = format!("{time} {team} {verb} {}", e.image);
        if let Some(user) = &e.user {
            line.push_str(&format!(" [{user}]"));
        }
        if let Some(reason) = &e.reason {
            // One line per event: a failed RUN's captured output stays in `--json`.
            let first = reason.lines().next().unwrap_or("");
            let first = first.strip_suffix("; last output:").unwrap_or(first);
            line.push_str(&format!(" ({first})"));
        }
        let is_build = kind == "build";
        if e.result == "ok"
            && let Some(new) = &e.new_digest
        {
            if is_build {
                let old = e.old_digest.as_deref().map(short).unwrap_or("(none)");
                line.push_str(&format!(" {old} → {}", short(new)));
            } else {
                line.push_str(&format!(" {}", short(new)));
            }
        }
        if let Some(run) = &e.run_id
            && is_build
            && e.cause.is_none()
        {
            // A rebuild that started a cascade: everything it reached, transitively.
            let mut reached: Vec<String> = Vec::new();
            let mut frontier = vec![e.image.clone()];
            while let Some(image) = frontier.pop() {
                for child in cascaded.get(&(run.clone(), image)).into_iter().flatten() {
                    if !reached.contains(child) {
                        reached.push(child.clone());
                        frontier.push(child.clone());
                    }
                }
            }
            if !reached.is_empty() {
                line.push_str(&format!(", cascaded to {}", reached.join(", ")));
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    if out.is_empty() {
        out.push_str("no events\n");
    }
    out
}

fn short(digest: &str) -> &str {
    let end = digest.len().min("sha256:".len() + 12);
    &digest[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_times_dates_and_durations() {
        assert_eq!(
            since_time("2026-11-23").unwrap(),
            "2026-11-23T00:00:00.000Z"
        );
        assert_eq!(
            since_time("2026-11-23T10:00:00+02:00").unwrap(),
            "2026-11-23T08:00:00.000Z"
        );
        let two_hours_ago = since_time("2h").unwrap();
        let expected = chrono::Utc::now() - chrono::Duration::hours(2);
        let got = chrono::DateTime::parse_from_rfc3339(&two_hours_ago).unwrap();
        assert!(
            (got.timestamp() - expected.timestamp()).abs() < 60,
            "{two_hours_ago}"
        );
        for bad in ["yesterday", "2h30", "h", "2026-13-01"] {
            let err = since_time(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid --since"), "{bad}: {err}");
        }
    }
}
