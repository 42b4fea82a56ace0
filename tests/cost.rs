//! `orderstream cost` as a user runs it: the table, the JSON, and one-line errors for inputs no
//! deployment can meet.

use std::process::{Command, Output};

fn cost(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orderstream")).arg("cost").args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_rate_gets_a_table_of_the_three_choices() {
    let out = cost(&["--rate", "10000"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("10000 records/s on average, 10000 at the peak minute"), "{text}");
    // 10,000 records/s with 20% headroom: 12 shards.
    assert!(text.contains("on 12 provisioned shards"), "{text}");
    assert!(text.contains("| USD a month | orderstream | Python Lambda | Firehose |"), "{text}");
    for row in ["| Kinesis |", "| Lambda processor |", "| Lambda publisher |", "| Firehose |", "| total |"] {
        assert!(text.contains(row), "{row} in {text}");
    }
    assert!(text.contains("Prices: us-east-1 list prices as of"), "{text}");
}

#[test]
fn the_json_totals_order_the_choices_as_measured() {
    let out = cost(&["--daily-peak", "20000", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let e: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let total = |i: usize| -> f64 {
        e["choices"][i]["lines"].as_array().unwrap().iter().map(|l| l["monthly"].as_f64().unwrap()).sum()
    };
    let lambda = |i: usize| -> f64 {
        e["choices"][i]["lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["service"] == "Lambda processor")
            .map(|l| l["monthly"].as_f64().unwrap())
            .sum()
    };
    assert_eq!(e["choices"][0]["name"], "orderstream");
    // The Python processor costs more Lambda time than the Rust one (both wait as long for S3).
    assert!(lambda(1) > 1.5 * lambda(0), "{} {}", lambda(1), lambda(0));
    assert!(total(0) < total(1) && total(0) < total(2), "{e}");
    // The peak minute is a flash sale at 19:00: three times the peak of the curve.
    assert!((e["peak_rate"].as_f64().unwrap() - 60_000.0).abs() < 100.0, "{e}");
}

#[test]
fn impossible_inputs_get_one_line_and_a_failure() {
    for (args, says) in [
        (vec!["--rate", "5000", "--shards", "4"], "use --shards 5 or more, or --on-demand"),
        (vec!["--rate", "300000", "--on-demand"], "an on-demand stream takes at most 200,000 records/s"),
        (vec!["--rate", "900000"], "above the account's quota of 500"),
        (vec!["--rate", "10", "--record-bytes", "2000000"], "Kinesis takes records of 1 to 1,048,576 bytes"),
        (vec!["--rate", "0"], "is not a number > 0"),
        (vec!["--rate", "10", "--kpl-records", "10000"], "KPL aggregates of 10000 records of 240 bytes are"),
        (vec!["--rate", "10", "--payload", "nothing"], "no measured payload \"nothing\""),
        (vec!["--rate", "10", "--prices", "/nonexistent/prices.json"], "cannot read /nonexistent/prices.json"),
        (vec![], "--rate <RATE>|--daily-peak <DAILY_PEAK>"),
        (vec!["--rate", "10", "--daily-peak", "10"], "cannot be used with"),
    ] {
        let out = cost(&args);
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?}: {}", stdout(&out));
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn help_names_every_setting() {
    let out = cost(&["--help"]);
    assert!(out.status.success());
    let text = stdout(&out);
    for flag in [
        "--rate",
        "--daily-peak",
        "--shards",
        "--on-demand",
        "--batch-size",
        "--memory-mb",
        "--publish-interval",
        "--prices",
    ] {
        assert!(text.contains(flag), "{flag} in {text}");
    }
}
