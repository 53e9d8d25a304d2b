//! Free space on the recordings disk (`--recordings-min-free`, README "Recording"). The
//! recording thread measures it; the pages read the last measure without a system call.

use std::{
    ffi::CString,
    io,
    os::unix::ffi::OsStrExt,
    path::Path,
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
};

/// What the recording thread last measured, shared with everyone who shows it.
#[derive(Debug)]
pub struct DiskStatus {
    min_free: u64,
    free: AtomicU64,
    low: AtomicBool,
}

/// A copy of [`DiskStatus`] at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskReport {
    pub free: u64,
    pub min_free: u64,
    /// Below the minimum: running recordings ended, new ones are refused.
    pub low: bool,
}

impl DiskReport {
    /// Why nothing is recorded now, in words a streamer understands.
    pub fn reason(&self) -> String {
        format!(
            "the recordings disk has {} free, less than the {} the server keeps free (--recordings-min-free)",
            human_bytes(self.free),
            human_bytes(self.min_free)
        )
    }
}

impl DiskStatus {
    pub fn new(min_free: u64) -> Self {
        Self { min_free, free: AtomicU64::new(u64::MAX), low: AtomicBool::new(false) }
    }

    pub fn report(&self) -> DiskReport {
        DiskReport {
            free: self.free.load(Ordering::Relaxed),
            min_free: self.min_free,
            low: self.low.load(Ordering::Relaxed),
        }
    }

    /// Measures `folder`'s file system; answers the report when it just crossed the minimum
    /// (either way), so that it is logged once and not per packet.
    pub(super) fn measure(&self, folder: &Path) -> Option<DiskReport> {
        let free = match free_bytes(folder) {
            Ok(free) => free,
            Err(err) => {
                tracing::warn!(%err, folder = %folder.display(), "cannot measure the recordings disk");
                return None;
            }
        };
        self.free.store(free, Ordering::Relaxed);
        let low = free < self.min_free;
        let was = self.low.swap(low, Ordering::Relaxed);
        (was != low).then(|| self.report())
    }
}

/// Bytes an unprivileged writer may still use on `folder`'s file system.
pub fn free_bytes(folder: &Path) -> io::Result<u64> {
    let path = CString::new(folder.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a NUL-terminated string and `stats` is written by statvfs on success.
    if unsafe { libc::statvfs(path.as_ptr(), stats.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled `stats`.
    let stats = unsafe { stats.assume_init() };
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    Ok(stats.f_bavail as u64 * stats.f_frsize as u64)
}

/// `1 GiB`, `512 MiB`, `900 KiB`, `12 B`: binary units, one decimal below 10.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value >= 10.0 || value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Parses `--recordings-min-free`: `0`, `1073741824`, `500MiB`, `1GiB`, `2G` (binary units).
pub fn parse_size(value: &str) -> Result<u64, String> {
    let value = value.trim();
    let split = value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        "t" | "tib" => 40,
        _ => return Err(format!("{value:?}: use bytes, or a number with KiB, MiB, GiB or TiB (like 1GiB)")),
    };
    let n: u64 = number.parse().map_err(|_| format!("{value:?} is not a size like 1GiB or 500MiB"))?;
    n.checked_mul(1 << shift).ok_or_else(|| format!("{value:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_units_and_bad_ones_say_why() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("500 MiB"), Ok(500 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert!(parse_size("1.5GiB").is_err());
        assert!(parse_size("GiB").unwrap_err().contains("not a size"));
        assert!(parse_size("1PB").unwrap_err().contains("KiB, MiB"));
        assert!(parse_size("99999999999TiB").unwrap_err().contains("too large"));
        assert_eq!(human_bytes(1 << 30), "1 GiB");
        assert_eq!(human_bytes(1536 << 10), "1.5 MiB");
        assert_eq!(human_bytes(812 << 20), "812 MiB");
    }

    #[test]
    fn crossing_the_minimum_is_reported_once_each_way() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        assert!(free > 0);
        let plenty = DiskStatus::new(0);
        assert_eq!(plenty.measure(dir.path()), None, "never low: nothing to report");
        assert!(!plenty.report().low);
        let scarce = DiskStatus::new(u64::MAX);
        let crossed = scarce.measure(dir.path()).expect("crossed below the minimum");
        assert!(crossed.low && crossed.reason().contains("less than"), "{crossed:?}");
        assert_eq!(scarce.measure(dir.path()), None, "said once, not again");
    }
}
