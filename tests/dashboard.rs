//! The live dashboard in a real browser: the main job runs as users start it, headless Chromium
//! (Debian's, driven by Playwright from PyPI) opens the URL the job printed, sees the figures
//! change, and saves a screenshot that must show the charts.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

const CHROMIUM_HINT: &str = "bash scripts/test installs Debian's chromium (apt-get install chromium) and Playwright \
                             (tests/requirements.txt)";

#[test]
fn the_dashboard_shows_the_running_job_in_a_real_browser() {
    assert!(
        std::path::Path::new(&std::env::var("CHROMIUM").unwrap_or("/usr/bin/chromium".into())).exists(),
        "no Chromium: {CHROMIUM_HINT}"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut job = Command::new(env!("CARGO_BIN_EXE_orderstream"))
        .args(["--data-dir", dir.path().to_str().unwrap(), "--duration", "45", "--rate", "300", "--shards", "2"])
        .args(["--dashboard", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = BufReader::new(job.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line.clone());
            all.push(line);
        }
        all.join("\n")
    });
    let url = loop {
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("the job prints the dashboard's URL at start");
        if let Some(url) = line.strip_prefix("dashboard: ") {
            break url.to_string();
        }
    };
    assert!(url.starts_with("http://127.0.0.1:") && !url.ends_with(":0/"), "{url}");

    let shot = dir.path().join("dashboard.png");
    let out = Command::new("python3")
        .arg(testkit::script("check_dashboard.py"))
        .args([&url, shot.to_str().unwrap()])
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}): {CHROMIUM_HINT}"));
    assert!(
        out.status.success(),
        "check_dashboard.py failed ({CHROMIUM_HINT}):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (first, second) = (&seen["first"], &seen["second"]);
    for k in ["produced", "processed", "events"] {
        assert!(second[k].as_u64() > first[k].as_u64(), "{k} did not change: {seen}");
    }
    assert_eq!(seen["status"], "running", "{seen}");
    let charts = &seen["charts"];
    assert!(charts["throughput"].as_u64() >= Some(2), "in and out lines: {seen}");
    assert_eq!(charts["funnel"], 5, "five funnel steps: {seen}");
    assert_eq!(charts["shards"], 2, "an iterator age bar per shard: {seen}");
    for chart in ["orders", "revenue", "products", "categories", "quarantine"] {
        assert!(charts[chart].as_u64() > Some(0), "{chart} is empty: {seen}");
    }

    // The screenshot: the page at its size, and mostly not background (cards, bars, text).
    let decoder = png::Decoder::new(BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut png = decoder.read_info().unwrap();
    let mut buf = vec![0; png.output_buffer_size().unwrap()];
    let info = png.next_frame(&mut buf).unwrap();
    assert!(info.width >= 1400 && info.height >= 900, "{}x{}", info.width, info.height);
    let channels = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(channels).collect();
    let background = [0xf4u8, 0xf5, 0xf7];
    let painted = pixels.iter().filter(|p| p[..3] != background).count();
    let colours: std::collections::HashSet<&[u8]> = pixels.iter().map(|p| &p[..3]).collect();
    assert!(painted * 3 > pixels.len(), "the screenshot is mostly blank: {painted} of {} pixels", pixels.len());
    assert!(colours.len() > 50, "the screenshot has only {} colours", colours.len());

    // The job itself finishes and reconciles.
    let status = job.wait().unwrap();
    let mut stdout = String::new();
    job.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    let stderr = reader.join().unwrap();
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains(": yes"), "{stdout}");
}
