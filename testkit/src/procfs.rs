//! A process's CPU time and peak memory from /proc (Linux), for the tests and the benchmarks:
//! `pid` is a process id or `self`.

use std::fmt::Display;

/// User and system CPU seconds of the process (all its threads; 100 clock ticks a second).
pub fn cpu_seconds(pid: impl Display) -> f64 {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// The process's peak resident memory (`VmHWM`) in KiB, if the process still runs.
pub fn peak_kib(pid: impl Display) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim().parse().ok()
}

/// The process's peak resident memory in MiB (for the benchmarks' tables).
pub fn peak_mib(pid: impl Display) -> f64 {
    peak_kib(&pid).unwrap_or_else(|| panic!("no VmHWM in /proc/{pid}/status")) as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_peak_and_cpu_time() {
        assert!(peak_kib(std::process::id()).unwrap() > 0);
        assert!(peak_kib("self").unwrap() > 0);
        assert!(peak_mib("self") > 0.0);
        assert!(cpu_seconds("self") >= 0.0);
        assert_eq!(peak_kib(u32::MAX), None);
    }
}
