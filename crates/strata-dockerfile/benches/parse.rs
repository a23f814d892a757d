//! Parse (and resolve) a generated 10,000-line Dockerfile; prints milliseconds per run. Then
//! the JSON document of a 10,000-line single stage whose environment keeps growing (issue 15:
//! it used to grow with the square of the length), with its size.
//!
//! `cargo bench -p strata-dockerfile`

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Instant;

/// A realistic mix: stages, ARG/ENV with expansions, long continued RUNs with comments,
/// heredocs, COPY with flags, LABELs. Exactly `lines` lines.
fn generate(lines: usize) -> String {
    let mut out =
        String::from("# syntax=docker/dockerfile:1\nARG BASE=debian:bookworm-slim\nARG V=1.0\n");
    let mut n = 3;
    let mut stage = 0;
    let mut i = 0usize;
    while n < lines {
        i += 1;
        let block = match (i - 1) % 7 {
            0 => {
                stage += 1;
                format!("FROM ${{BASE}} AS s{stage}\nARG V\nENV APP_HOME=/opt/app{stage} VERSION=${{V:-dev}}\n")
            }
            1 => "RUN set -eux; \\\n\tapt-get update; \\\n# a comment inside the continuation\n\tapt-get install -y --no-install-recommends \\\n\t\tca-certificates curl; \\\n\trm -rf /var/lib/apt/lists/*\n".to_string(),
            2 => "COPY --chown=app:app --chmod=0644 --link src/ \"$APP_HOME/src/\"\n".to_string(),
            3 => "RUN <<EOF\nset -e\necho building $VERSION\nEOF\n".to_string(),
            4 => "LABEL org.opencontainers.image.version=\"$VERSION\" \\\n      com.example.stage=s1\n".to_string(),
            5 => "RUN --mount=type=cache,target=/root/.cache,id=c-${V} make -C \"$APP_HOME\" build\n".to_string(),
            _ => "WORKDIR $APP_HOME\nEXPOSE 8080/tcp\n".to_string(),
        };
        let count = block.lines().count();
        if n + count > lines {
            for _ in n..lines {
                out.push_str("# padding\n");
            }
            break;
        }
        out.push_str(&block);
        n += count;
    }
    if stage == 0 {
        out.push_str("FROM scratch\n");
    }
    out
}

/// Milliseconds per call: (best, median) of `runs` timed calls after a warm-up. The best is
/// the figure least disturbed by other processes on a shared machine.
fn time<F: FnMut()>(runs: usize, mut f: F) -> (f64, f64) {
    f();
    let mut samples: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    (samples[0], samples[runs / 2])
}

#[allow(clippy::print_stdout)]
fn main() {
    let text = generate(10_000);
    let lines = text.lines().count();
    let df = strata_dockerfile::parse(&text).expect("the generated Dockerfile parses");
    let args = BTreeMap::new();
    let parse_ms = time(100, || {
        black_box(strata_dockerfile::parse(black_box(&text)).unwrap());
    });
    let resolve_ms = time(100, || {
        black_box(df.resolve(&args, None).unwrap());
    });
    let mut report = String::new();
    let _ = writeln!(
        report,
        "parse:   {lines} lines, {} bytes, {} instructions: best {:.2} ms, median {:.2} ms",
        text.len(),
        df.instructions.len(),
        parse_ms.0,
        parse_ms.1
    );
    let _ = writeln!(
        report,
        "resolve: best {:.2} ms, median {:.2} ms",
        resolve_ms.0, resolve_ms.1
    );
    let heavy = env_heavy(10_000);
    let heavy_df = strata_dockerfile::parse(&heavy).expect("the generated Dockerfile parses");
    let mut bytes = 0;
    let json_ms = time(10, || {
        let r = heavy_df.resolve(&args, None).unwrap();
        let doc = strata_dockerfile::Document::new("Dockerfile", &heavy_df, &r);
        bytes = black_box(serde_json::to_string(&doc).unwrap()).len();
    });
    let _ = writeln!(
        report,
        "json:    {} lines, one growing stage: {bytes} bytes, best {:.2} ms, median {:.2} ms",
        heavy.lines().count(),
        json_ms.0,
        json_ms.1
    );
    print!("{report}");
}

/// One stage: ENV, ARG, RUN, COPY, LABEL repeated (the environment grows all along).
fn env_heavy(lines: usize) -> String {
    let mut out = String::from("FROM debian:bookworm\n");
    for i in 0..lines / 5 {
        let _ = write!(
            out,
            "ENV VAR_{i}=value-{i}\nARG A_{i}=x\nRUN echo $VAR_{i}\nCOPY src{i} /dst{i}\nLABEL l{i}=v\n"
        );
    }
    out
}
