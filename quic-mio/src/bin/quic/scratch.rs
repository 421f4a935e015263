//! The temporary directory `quic demo` and `quic perf` serve their
//! generated file from: removed when the command ends, and also when it is
//! interrupted (SIGINT, SIGTERM), so that an aborted run of a 100 MiB or
//! 1 GiB demo does not leave the file behind.

use std::path::{Path, PathBuf};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::Failure;

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
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        self.signals.close();
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
