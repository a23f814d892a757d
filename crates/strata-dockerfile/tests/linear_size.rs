//! Issue 15: `dockerfile parse --json` grew with the square of the file's length, because
//! every RUN carried the whole environment. RUNs now share it (`run_envs`), so the document
//! grows linearly. Sizes are counted in bytes (deterministic), not timed.

use std::collections::BTreeMap;

use strata_dockerfile::{Document, parse};

/// One stage whose environment keeps growing: ENV, ARG, RUN, COPY, LABEL, `units` times.
fn env_heavy(units: usize) -> String {
    let mut out = String::from("FROM debian:bookworm\n");
    for i in 0..units {
        out.push_str(&format!(
            "ENV VAR_{i}=value-{i}\nARG A_{i}=x\nRUN echo $VAR_{i}\nCOPY src{i} /dst{i}\nLABEL l{i}=v\n"
        ));
    }
    out
}

fn json_len(text: &str) -> usize {
    let df = parse(text).unwrap();
    let r = df.resolve(&BTreeMap::new(), None).unwrap();
    serde_json::to_string(&Document::new("Dockerfile", &df, &r))
        .unwrap()
        .len()
}

#[test]
fn json_document_grows_linearly_with_the_file() {
    let small = json_len(&env_heavy(500));
    let big = json_len(&env_heavy(2_000));
    // 4x the lines: linear is 4x the bytes, quadratic about 16x
    let ratio = big as f64 / small as f64;
    assert!(ratio < 4.5, "{small} -> {big} bytes: x{ratio:.1}");
}

#[test]
fn every_run_still_sees_its_whole_environment() {
    let text = env_heavy(50);
    let df = parse(&text).unwrap();
    let r = df.resolve(&BTreeMap::new(), None).unwrap();
    let runs: Vec<_> = r.stages[0]
        .instructions
        .iter()
        .filter_map(|i| i.env.as_ref())
        .collect();
    assert_eq!(runs.len(), 50);
    for (i, env) in runs.iter().enumerate() {
        let vars = env.vars();
        // PATH, then VAR_j and A_j for every j up to i
        assert_eq!(vars.len(), 1 + 2 * (i + 1));
        assert_eq!(env.get(&format!("VAR_{i}")), Some(format!("value-{i}")));
        assert_eq!(env.get(&format!("VAR_{}", i + 1)), None);
    }
    // the document's table rebuilds the same lists
    let doc = serde_json::to_value(Document::new("Dockerfile", &df, &r)).unwrap();
    let table = doc["run_envs"].as_array().unwrap();
    let entry = |id: u64| table.iter().find(|e| e["id"] == id).unwrap();
    let run = &doc["stages"][0]["instructions"][2];
    let mut chain = vec![entry(run["env"].as_u64().unwrap())];
    while let Some(p) = chain.last().unwrap()["parent"].as_u64() {
        chain.push(entry(p));
    }
    let names: Vec<&str> = chain
        .iter()
        .rev()
        .flat_map(|e| e["vars"].as_array().unwrap())
        .map(|kv| kv[0].as_str().unwrap())
        .collect();
    assert_eq!(names, ["PATH", "VAR_0", "A_0"]);
}
