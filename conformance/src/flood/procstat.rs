//! What the server process costs during a flood, from Linux's /proc: CPU
//! seconds (`stat`'s utime + stime) and resident memory (`status`'s VmRSS,
//! sampled, and VmHWM, the kernel's own peak).

use std::time::Duration;

/// The process (or one of its threads, for an in-process server) whose
/// cost is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watched {
    /// The process.
    pub pid: u32,
    /// One thread of it, whose CPU time alone is counted; memory is always
    /// the whole process's.
    pub tid: Option<u32>,
}

impl Watched {
    /// A whole process.
    pub fn process(pid: u32) -> Self {
        Self { pid, tid: None }
    }

    /// The calling thread of this process.
    pub fn this_thread() -> Option<Self> {
        // /proc/thread-self links to "<pid>/task/<tid>".
        let link = std::fs::read_link("/proc/thread-self").ok()?;
        let tid = link.file_name()?.to_str()?.parse().ok()?;
        Some(Self { pid: std::process::id(), tid: Some(tid) })
    }

    /// CPU time used so far (user and system).
    pub fn cpu(&self) -> Option<Duration> {
        let path = match self.tid {
            Some(tid) => format!("/proc/{}/task/{tid}/stat", self.pid),
            None => format!("/proc/{}/stat", self.pid),
        };
        let stat = std::fs::read_to_string(path).ok()?;
        // The command name may hold spaces and parentheses: the fields
        // counted are those after its closing parenthesis, from the state
        // (field 3); utime and stime are fields 14 and 15.
        let rest = &stat[stat.rfind(')')? + 1..];
        let mut fields = rest.split_whitespace().skip(11);
        let utime: u64 = fields.next()?.parse().ok()?;
        let stime: u64 = fields.next()?.parse().ok()?;
        Some(Duration::from_secs_f64((utime + stime) as f64 / clock_ticks()))
    }

    /// Resident memory now and at its peak (VmRSS, VmHWM), in KiB.
    pub fn memory_kib(&self) -> Option<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let field = |name: &str| -> Option<u64> {
            let line = status.lines().find(|l| l.starts_with(name))?;
            line[name.len()..].trim().trim_end_matches("kB").trim().parse().ok()
        };
        Some((field("VmRSS:")?, field("VmHWM:")?))
    }
}

/// Clock ticks per second, the unit of /proc's CPU times.
fn clock_ticks() -> f64 {
    // SAFETY: sysconf reads a configuration value; it has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// What the server used over a run.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ServerUsage {
    /// CPU seconds used during the run.
    pub cpu_seconds: f64,
    /// The resident set when the run started, KiB.
    pub start_rss_kib: u64,
    /// The largest resident set seen in the samples (every 50 ms), KiB.
    pub max_rss_kib: u64,
    /// The process's peak resident set (VmHWM) at the end, KiB: since the
    /// process started, not only during the run.
    pub hwm_kib: u64,
}

/// Samples a [`Watched`] process during a run.
#[derive(Debug)]
pub(super) struct Sampler {
    watched: Watched,
    start_cpu: Option<Duration>,
    usage: ServerUsage,
}

impl Sampler {
    pub(super) fn start(watched: Watched) -> Self {
        let mut sampler = Self { watched, start_cpu: watched.cpu(), usage: ServerUsage::default() };
        sampler.sample();
        sampler.usage.start_rss_kib = sampler.usage.max_rss_kib;
        sampler
    }

    pub(super) fn sample(&mut self) {
        if let Some((rss, hwm)) = self.watched.memory_kib() {
            self.usage.max_rss_kib = self.usage.max_rss_kib.max(rss);
            self.usage.hwm_kib = hwm;
        }
    }

    pub(super) fn finish(mut self) -> ServerUsage {
        self.sample();
        if let (Some(start), Some(end)) = (self.start_cpu, self.watched.cpu()) {
            self.usage.cpu_seconds = end.saturating_sub(start).as_secs_f64();
        }
        self.usage
    }
}
