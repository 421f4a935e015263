//! The temporary directory `quic demo` and `quic perf` serve their
//! generated file from: removed when the command ends, and also when it is
//! interrupted (SIGINT, SIGTERM), so that an aborted run of a 100 MiB or
//! 1 GiB demo does not leave the file behind.

use std::path::{Path, PathBuf};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::tool::Failure;

/// A directory under the system's temporary directory, removed on drop
/// or on a terminating signal.
pub(crate) struct ScratchDir {
    path: PathBuf,
    signals: signal_hook::iterator::Handle,
}

impl ScratchDir {
    /// Creates `<tmp>/<prefix>-<pid>`.
    pub(crate) fn new(prefix: &str) -> Result<Self, Failure> {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
        std::fs::create_dir_all(&path)
            .map_err(|e| Failure::other(format!("cannot create {}: {e}", path.display())))?;
        // The handler only wakes this thread (signal-hook's self-pipe); the
        // removal runs here, outside signal context.
        let mut signals = Signals::new([SIGINT, SIGTERM])
            .map_err(|e| Failure::other(format!("cannot handle signals: {e}")))?;
        let handle = signals.handle();
        let doomed = path.clone();
        std::thread::spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let _ = std::fs::remove_dir_all(&doomed);
                eprintln!("quic: interrupted");
                std::process::exit(128 + signal);
            }
        });
        Ok(Self { path, signals: handle })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Fails, before anything is written, when the directory's file system
    /// has less than `bytes` (and a 64 MiB margin) free: a large `--size`
    /// would otherwise fill the disk and fail late.
    pub(crate) fn ensure_room(&self, bytes: u64) -> Result<(), Failure> {
        let Some(free) = free_bytes(&self.path) else { return Ok(()) };
        if bytes.saturating_add(64 << 20) <= free {
            return Ok(());
        }
        let gib = |b: u64| b as f64 / f64::from(1u32 << 30);
        Err(Failure::other(format!(
            "the generated file needs {:.1} GiB in {}, which has {:.1} GiB free \
             (a smaller --size, or TMPDIR pointing elsewhere)",
            gib(bytes),
            self.path.display(),
            gib(free)
        )))
    }
}

/// Free bytes for an unprivileged user on the file system holding `path`;
/// `None` if the system cannot say.
fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: all-zero bytes are a valid `statvfs` (plain integers).
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is a NUL-terminated string and `st` a live statvfs
    // the call only writes to.
    if unsafe { libc::statvfs(c_path.as_ptr(), &raw mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        self.signals.close();
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
