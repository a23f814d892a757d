//! Results and their three renderings: text, JSON and JUnit XML, the latter two in
//! container-structure-test's shapes so existing consumers read them unchanged.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

/// Which kind of test a result belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TestKind {
    /// `commandTests`.
    Command,
    /// `fileExistenceTests`.
    FileExistence,
    /// `fileContentTests`.
    FileContent,
    /// `metadataTest`.
    Metadata,
    /// `licenseTests`.
    License,
}

impl TestKind {
    /// container-structure-test's prefix of result names (`File Existence Test`).
    pub fn label(self) -> &'static str {
        match self {
            TestKind::Command => "Command Test",
            TestKind::FileExistence => "File Existence Test",
            TestKind::FileContent => "File Content Test",
            TestKind::Metadata => "Metadata Test",
            TestKind::License => "License Test",
        }
    }
}

/// The outcome of one test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    /// Its kind.
    pub kind: TestKind,
    /// The test's own name (empty for the metadata and license tests, which have none).
    pub name: String,
    /// Passed?
    pub pass: bool,
    /// Why it failed: one line per failed expectation, expected vs actual.
    pub errors: Vec<String>,
    /// A command's standard output.
    pub stdout: String,
    /// A command's standard error.
    pub stderr: String,
    /// How long it took.
    pub duration: Duration,
}

impl TestResult {
    pub(crate) fn new(kind: TestKind, name: &str) -> TestResult {
        TestResult {
            kind,
            name: name.to_string(),
            pass: true,
            errors: Vec::new(),
            stdout: String::new(),
            stderr: String::new(),
            duration: Duration::ZERO,
        }
    }

    /// Record a failed expectation.
    pub(crate) fn fail(&mut self, reason: String) {
        self.pass = false;
        self.errors.push(reason);
    }

    /// Fail for each `expected` pattern `text` does not match and each `excluded` one it does, in
    /// container-structure-test's words; `what` names the text (`output`, `error`, `file content
    /// string`).
    pub(crate) fn match_strings(
        &mut self,
        expected: &[crate::spec::Pattern],
        excluded: &[crate::spec::Pattern],
        what: &str,
        text: &str,
    ) {
        for p in expected.iter().filter(|p| !p.is_match(text)) {
            self.fail(format!(
                "Expected string '{}' not found in {what} '{text}'",
                p.text
            ));
        }
        for p in excluded.iter().filter(|p| p.is_match(text)) {
            self.fail(format!(
                "Excluded string '{}' found in {what} '{text}'",
                p.text
            ));
        }
    }

    /// The name as container-structure-test prints it: `File Content Test: passwd`, or
    /// `Metadata Test`.
    pub fn display_name(&self) -> String {
        if self.name.is_empty() {
            self.kind.label().to_string()
        } else {
            format!("{}: {}", self.kind.label(), self.name)
        }
    }
}

/// Every result of one test file against one image.
#[derive(Debug, Clone)]
pub struct Report {
    /// The image as given.
    pub image: String,
    /// Its manifest digest.
    pub digest: String,
    /// The test file.
    pub file: String,
    /// In container-structure-test's order: command, file content, file existence, license,
    /// metadata.
    pub results: Vec<TestResult>,
}

impl Report {
    /// Tests that passed.
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.pass).count()
    }

    /// Tests that failed.
    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }

    /// True when at least one test ran and none failed (container-structure-test fails a run of
    /// no tests too).
    pub fn success(&self) -> bool {
        !self.results.is_empty() && self.failed() == 0
    }

    /// The failing results.
    pub fn failures(&self) -> impl Iterator<Item = &TestResult> {
        self.results.iter().filter(|r| !r.pass)
    }

    /// The first failure in one line: `File Existence Test: motd: /etc/motd should exist ...`.
    pub fn first_failure(&self) -> Option<String> {
        self.failures().next().map(|r| {
            let reason = r.errors.first().map(String::as_str).unwrap_or("failed");
            format!("{}: {}", r.display_name(), one_line(reason))
        })
    }

    fn duration(&self) -> Duration {
        self.results.iter().map(|r| r.duration).sum()
    }

    /// Human-readable: one line per test, reasons indented below failures, then a summary.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} ({}) with {}",
            self.image,
            short(&self.digest),
            self.file
        );
        for r in &self.results {
            let status = if r.pass { "PASS" } else { "FAIL" };
            let _ = writeln!(
                out,
                "  {status}  {} ({:.2}s)",
                r.display_name(),
                r.duration.as_secs_f64()
            );
            for e in &r.errors {
                for (i, line) in e.lines().enumerate() {
                    let lead = if i == 0 { "- " } else { "  " };
                    let _ = writeln!(out, "          {lead}{line}");
                }
            }
        }
        if self.results.is_empty() {
            let _ = writeln!(out, "No tests run! Check config file format.");
        }
        let _ = writeln!(
            out,
            "{} passed, {} failed ({} tests, {:.2}s): {}",
            self.passed(),
            self.failed(),
            self.results.len(),
            self.duration().as_secs_f64(),
            if self.success() { "PASS" } else { "FAIL" }
        );
        out
    }

    /// container-structure-test's `--output json` document:
    /// `{"Pass":n,"Fail":n,"Total":n,"Duration":ns,"Results":[{"Name","Pass","Stdout","Stderr","Errors","Duration"}]}`.
    pub fn to_json(&self) -> serde_json::Value {
        let results: Vec<serde_json::Value> = self
            .results
            .iter()
            .map(|r| {
                let mut v = serde_json::json!({
                    "Name": r.display_name(),
                    "Pass": r.pass,
                    "Duration": nanos(r.duration),
                });
                if !r.stdout.is_empty() {
                    v["Stdout"] = r.stdout.clone().into();
                }
                if !r.stderr.is_empty() {
                    v["Stderr"] = r.stderr.clone().into();
                }
                if !r.errors.is_empty() {
                    v["Errors"] = r.errors.clone().into();
                }
                v
            })
            .collect();
        serde_json::json!({
            "Pass": self.passed(),
            "Fail": self.failed(),
            "Total": self.results.len(),
            "Duration": nanos(self.duration()),
            "Results": results,
        })
    }

    /// JUnit XML as container-structure-test writes it: one `<testsuites>` with one `<testsuite>`
    /// named `suite`, a `<testcase>` per result with a `<failure>` per reason and the command's
    /// output in `<system-out>`/`<system-err>`.
    pub fn to_junit(&self, suite: &str) -> String {
        let mut out = String::from(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
        let _ = write!(
            out,
            r#"<testsuites failures="{}" tests="{}" time="{}"><testsuite name="{}">"#,
            self.failed(),
            self.results.len(),
            self.duration().as_secs_f64(),
            xml_escape(suite)
        );
        for r in &self.results {
            let _ = write!(
                out,
                r#"<testcase name="{}" time="{}">"#,
                xml_escape(&r.display_name()),
                r.duration.as_secs_f64()
            );
            for e in &r.errors {
                let _ = write!(out, "<failure>{}</failure>", xml_escape(e));
            }
            let _ = write!(
                out,
                "<system-out>{}</system-out><system-err>{}</system-err></testcase>",
                xml_escape(&r.stdout),
                xml_escape(&r.stderr)
            );
        }
        out.push_str("</testsuite></testsuites>\n");
        out
    }

    /// The events-log entry of this report: a [`strata_events::Kind::Test`] event for chain image
    /// `image` owned by `team`, result `ok` or `failed`, the first failure as the reason and every
    /// result in the detail.
    pub fn to_event(&self, image: &str, team: &str, run_id: Option<&str>) -> strata_events::Event {
        strata_events::Event {
            time: strata_events::now(),
            kind: Some(strata_events::Kind::Test),
            image: image.to_string(),
            team: Some(team.to_string()),
            user: Some(strata_events::current_user()),
            new_digest: Some(self.digest.clone()),
            reason: Some(match self.first_failure() {
                Some(f) => format!("{} of {} failed: {f}", self.failed(), self.results.len()),
                None => format!("{} tests passed", self.passed()),
            }),
            run_id: run_id.map(str::to_string),
            duration_ms: Some(i64::try_from(self.duration().as_millis()).unwrap_or(i64::MAX)),
            result: if self.success() { "ok" } else { "failed" }.to_string(),
            detail: Some(self.to_event_detail()),
            ..strata_events::Event::default()
        }
    }

    /// The events-log detail of this report: counts and each result's name, verdict and reasons.
    pub fn to_event_detail(&self) -> serde_json::Value {
        serde_json::json!({
            "file": self.file,
            "passed": self.passed(),
            "failed": self.failed(),
            "results": self.results.iter().map(|r| serde_json::json!({
                "kind": r.kind,
                "name": r.display_name(),
                "pass": r.pass,
                "errors": r.errors,
            })).collect::<Vec<_>>(),
        })
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn short(digest: &str) -> &str {
    &digest[..digest.len().min("sha256:".len() + 12)]
}

fn one_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("");
    if s.lines().nth(1).is_some() {
        format!("{line} …")
    } else {
        line.to_string()
    }
}

/// Escape text for XML content and attributes; characters XML 1.0 cannot hold are dropped.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            '\t' => out.push_str("&#x9;"),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        let mut ok = TestResult::new(TestKind::FileExistence, "sh");
        ok.duration = Duration::from_millis(5);
        let mut bad = TestResult::new(TestKind::Command, "echo <x>");
        bad.stdout = "hi\n".into();
        bad.fail("Expected string 'bye' not found in output 'hi\n'".into());
        Report {
            image: "acme/base".into(),
            digest: "sha256:0123456789abcdef0123".into(),
            file: "t.yaml".into(),
            results: vec![bad, ok],
        }
    }

    #[test]
    fn json_has_container_structure_tests_shape() {
        let json = report().to_json();
        assert_eq!(json["Pass"], 1);
        assert_eq!(json["Fail"], 1);
        assert_eq!(json["Total"], 2);
        assert_eq!(json["Results"][0]["Name"], "Command Test: echo <x>");
        assert_eq!(json["Results"][0]["Pass"], false);
        assert_eq!(json["Results"][0]["Stdout"], "hi\n");
        assert_eq!(json["Results"][1]["Duration"], 5_000_000);
        assert!(json["Results"][1].get("Errors").is_none());
    }

    #[test]
    fn junit_escapes_and_counts() {
        let xml = report().to_junit("container-structure-test.test");
        assert!(xml.starts_with(
            r#"<?xml version="1.0" encoding="UTF-8"?><testsuites failures="1" tests="2" time="0.005"><testsuite name="container-structure-test.test">"#
        ), "{xml}");
        assert!(
            xml.contains(r#"<testcase name="Command Test: echo &lt;x&gt;" time="0">"#),
            "{xml}"
        );
        assert!(xml.contains("<failure>Expected string &#39;bye&#39; not found in output &#39;hi&#xA;&#39;</failure>"), "{xml}");
        assert!(xml.contains("<system-out>hi&#xA;</system-out>"), "{xml}");
    }

    #[test]
    fn text_names_failures_and_reasons() {
        let r = report();
        let text = r.to_text();
        assert!(text.contains("  FAIL  Command Test: echo <x>"), "{text}");
        assert!(text.contains("- Expected string 'bye'"), "{text}");
        assert!(
            text.ends_with("1 passed, 1 failed (2 tests, 0.01s): FAIL\n"),
            "{text}"
        );
        assert!(!r.success());
        assert_eq!(
            r.first_failure().unwrap(),
            "Command Test: echo <x>: Expected string 'bye' not found in output 'hi …"
        );
    }
}
