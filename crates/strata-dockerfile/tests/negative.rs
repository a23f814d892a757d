//! Failure cases in `testdata-negative/<case>/`: parsing and resolving each `Dockerfile` (with
//! the optional `target`) must fail with exactly the one-line error in `error`.

use std::collections::BTreeMap;
use std::path::Path;

fn error_of(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("Dockerfile")).unwrap();
    let target = std::fs::read_to_string(dir.join("target"))
        .ok()
        .map(|t| t.trim().to_string());
    match strata_dockerfile::parse(&text)
        .and_then(|df| df.resolve(&BTreeMap::new(), target.as_deref()))
    {
        Ok(_) => panic!("{}: parsed without error", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn negative_cases_fail_with_their_error() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata-negative");
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 20, "the negative corpus went missing");
    let mut failures = Vec::new();
    for dir in &cases {
        let expected = std::fs::read_to_string(dir.join("error")).unwrap();
        let got = error_of(dir);
        assert!(
            !got.contains('\n'),
            "{}: error is not one line",
            dir.display()
        );
        if got != expected.trim_end() {
            failures.push(format!(
                "{}:\n  expected: {}\n  got:      {got}",
                dir.file_name().unwrap().to_string_lossy(),
                expected.trim_end()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
