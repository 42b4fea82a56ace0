//! The allocator kept from giving an invocation's memory back to the kernel between invocations.
//!
//! Each invocation allocates and frees the same large buffers: the 6 MB body, the decoded
//! records, the Arrow columns and the Parquet pages. glibc's malloc serves a block above its
//! mmap threshold with a fresh `mmap` and returns it with `munmap`, and gives the heap's free top
//! back above its trim threshold; the next invocation then faults the same pages in again, zeroed
//! by the kernel, in system CPU time the function pays for. The thresholds adapt to the largest
//! block freed so far, but not far enough for this working set: 29,000 page faults in 21
//! storefront invocations, against 5,700 with both thresholds raised (docs/performance.md, B1).

/// Blocks below this come from the heap rather than their own `mmap` (glibc's largest allowed
/// value on 64-bit targets: a larger one is refused).
const MMAP_THRESHOLD: i32 = 32 << 20;
/// The heap's free top is given back to the kernel only above this: more than an invocation's
/// working set (about 20 MiB for a full 6 MB event), far less than the function's memory.
const TRIM_THRESHOLD: i32 = 64 << 20;

/// Raises glibc malloc's mmap and trim thresholds for the process (the Lambda bootstrap calls it
/// first thing). Returns whether the allocator took both; `false` where the C library is not
/// glibc (musl, other systems), whose allocator is left as it is.
pub fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallopt` takes the arena's lock and only sets two parameters of the
        // allocator; neither value changes what any allocation made before or after may do.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    /// The calling thread's minor page faults so far.
    fn minor_faults() -> u64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
        fields[7].parse().unwrap()
    }

    /// Allocates `len` bytes, writes every page, and frees them.
    fn touch(len: usize) {
        let mut v = vec![0u8; len];
        for b in v.iter_mut().step_by(4096) {
            *b = 1;
        }
        std::hint::black_box(&v);
    }

    #[test]
    fn a_freed_large_block_is_reused_without_faulting_its_pages_again() {
        assert!(keep_freed_memory());
        const LEN: usize = 8 << 20;
        touch(LEN);
        let before = minor_faults();
        for _ in 0..4 {
            touch(LEN);
        }
        // Without the thresholds each round faults the block's 2,048 pages in again.
        let faults = minor_faults() - before;
        assert!(faults < 500, "{faults} page faults in 4 rounds of an 8 MiB block");
    }
}
