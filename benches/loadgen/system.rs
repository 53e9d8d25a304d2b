//! The machine side of a benchmark: CPU time and memory of a process from procfs, pinning to a
//! core, and running inside a network namespace that has only loopback.

use std::{io, os::unix::process::CommandExt, path::Path, process::Command, time::Duration};

/// Sets a benchmark up: inside a loopback-only namespace (unless it targets a server someone
/// else runs), the generator pinned to CPU 1 where there are two. Returns the CPU to pin the
/// server to.
pub fn prepare_benchmark(external_server: bool) -> io::Result<Option<usize>> {
    if !external_server {
        reexec_in_loopback_namespace()
            .map_err(|err| io::Error::other(format!("cannot enter a loopback-only network namespace: {err}")))?;
    }
    if online_cpus() < 2 {
        return Ok(None);
    }
    if let Err(err) = pin_self(1) {
        eprintln!("cannot pin the load generator to CPU 1: {err}");
    }
    Ok(Some(0))
}

/// CPU time (user + system) a process has used, from `/proc/<pid>/stat`.
pub fn cpu_time(pid: u32) -> io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).ok_or_else(|| io::Error::other("odd stat"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat, i.e. 11 and 12 after the name.
    let ticks =
        |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).ok_or_else(|| io::Error::other("odd stat"));
    let total = ticks(11)? + ticks(12)?;
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(Duration::from_nanos(total * 1_000_000_000 / per_second))
}

/// Resident memory of a process in kB, from `/proc/<pid>/status`.
pub fn rss_kb(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
        .ok_or_else(|| io::Error::other("no VmRSS"))
}

fn online_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Pins the calling process (all its future threads) to one CPU.
fn pin_self(cpu: usize) -> io::Result<()> {
    pin(0, cpu)
}

fn pin(pid: libc::pid_t, cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data, filled with libc's own macros.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Makes `command` start pinned to `cpu`.
pub fn pin_command(command: &mut Command, cpu: usize) {
    // SAFETY: only an async-signal-safe system call runs between fork and exec.
    unsafe {
        command.pre_exec(move || pin(0, cpu));
    }
}

/// True when the only network interface is loopback (`/proc/self/net/dev` is per namespace;
/// `/sys/class/net` is not, unless sysfs is mounted again inside it).
fn in_loopback_only_namespace() -> bool {
    match std::fs::read_to_string("/proc/self/net/dev") {
        // Two header lines, then one line per interface: "  name: counters…".
        Ok(dev) => dev.lines().skip(2).filter_map(|l| l.split(':').next()).all(|name| name.trim() == "lo"),
        Err(_) => false,
    }
}

/// Runs this benchmark again inside a new network namespace with only `lo` (up), the recipe of
/// TESTING.md, and exits with its status. Returns only if already inside one.
fn reexec_in_loopback_namespace() -> io::Result<()> {
    const GUARD: &str = "FERROCAST_BENCH_IN_NETNS";
    if in_loopback_only_namespace() {
        return Ok(());
    }
    if std::env::var_os(GUARD).is_some() {
        return Err(io::Error::other("still not in a loopback-only namespace after unshare"));
    }
    let exe = std::env::current_exe()?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut command = Command::new("unshare");
    command.env(GUARD, "1");
    if !root {
        command.arg("-r");
    }
    command.args(["-n", "--", "bash", "-c", "ip link set lo up && exec \"$@\"", "netns"]).arg(&exe).args(&args);
    let status = command.status().map_err(|err| io::Error::other(format!("unshare: {err}")))?;
    std::process::exit(status.code().unwrap_or(1));
}

/// The directory the test and bench binaries live in tells where cargo's target dir is.
pub fn target_dir() -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    // <target>/<profile>/deps/<bench>
    exe.parent()?.parent()?.parent().map(Path::to_path_buf)
}
