//! Keeps the benchmark tool working: `lock-bench --quick` runs every scenario at tiny sizes and
//! writes a complete report. Nothing here asserts a timing or a target.

use std::{path::Path, process::Command};

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|err| panic!("{file} was not written: {err}"))
}

#[test]
fn quick_run_writes_the_report_the_results_and_the_plots() {
    let out = tempfile::tempdir().expect("temporary directory");
    let output = Command::new(env!("CARGO_BIN_EXE_lock-bench"))
        .args(["--quick", "--out"])
        .arg(out.path())
        .output()
        .expect("run lock-bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "lock-bench --quick failed:\n{stderr}"
    );

    let results: serde_json::Value =
        serde_json::from_str(&read(out.path(), "results.json")).expect("results.json parses");
    assert_eq!(results["meta"]["quick"], true);
    for scenario in [
        "latency",
        "throughput",
        "contention",
        "footprint",
        "redis_cpu",
    ] {
        assert!(
            results[scenario].is_object(),
            "results.json has no `{scenario}`"
        );
    }
    assert!(
        results["latency"]["pubsub_delivery"]["count"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "scenario 1 measured no pub/sub delivery"
    );
    let points = results["contention"]["points"]
        .as_array()
        .expect("contention points");
    assert!(!points.is_empty());
    for point in points {
        assert_eq!(
            point["violations"], 0,
            "mutual exclusion broken in {point:#}"
        );
        assert!(
            point["acquisitions"].as_u64().is_some_and(|n| n > 0),
            "no acquisition in {point:#}"
        );
    }
    for lock in ["ours", "fair"] {
        for (field, what) in [
            ("points", "main runs"),
            ("process_sweep", "sweep over processes"),
        ] {
            assert!(
                results["contention"][field]
                    .as_array()
                    .is_some_and(|points| points.iter().any(|p| p["implementation"] == lock)),
                "`{lock}` is missing from the {what}"
            );
        }
    }
    let targets = results["targets"].as_array().expect("targets");
    assert!(targets.len() >= 8, "every target is evaluated");

    let summary = read(out.path(), "SUMMARY.md");
    assert!(summary.contains("## Performance"), "SUMMARY.md:\n{summary}");

    let report = read(out.path(), "REPORT.md");
    for heading in [
        "## Targets",
        "## 1. Uncontended latency",
        "## 2. Uncontended throughput",
        "## 3. Contended hand-off",
        "## 4. Redis load under contention",
        "## 5. Peers on the same workloads",
        "## 6. Footprint of waiting",
        "## 8. Redis CPU per acquisition",
        "## Method",
    ] {
        assert!(report.contains(heading), "REPORT.md lacks `{heading}`");
    }
    assert!(
        report.contains("Floor of a pub/sub hand-off"),
        "REPORT.md does not show the pub/sub floor"
    );
    for plot in [
        "handoff_latency.svg",
        "commands_per_acquisition.svg",
        "uncontended_latency.svg",
    ] {
        let svg = read(out.path(), plot);
        assert!(
            svg.starts_with("<svg") && svg.contains("</svg>"),
            "{plot} is not an SVG"
        );
        assert!(report.contains(plot), "REPORT.md does not show {plot}");
    }
}
