//! Whether the library came in through shared_preload_libraries, as it must.

use crate::errors::GuardError;
use pgrx::pg_sys;
use std::sync::atomic::{AtomicBool, Ordering};

static PRELOADED: AtomicBool = AtomicBool::new(false);

/// Called from `_PG_init`: remembers whether this is the preload pass.
pub fn record() {
    // SAFETY: reading a postmaster global during library initialisation.
    let preloading = unsafe { pg_sys::process_shared_preload_libraries_in_progress };
    if preloading {
        PRELOADED.store(true, Ordering::Relaxed);
    }
}

/// True only during the preload pass, the one moment hooks may be installed safely.
pub fn is_preloading() -> bool {
    // SAFETY: read of a postmaster global.
    unsafe { pg_sys::process_shared_preload_libraries_in_progress }
}

/// Every SQL entry point calls this first: without preload the hooks and callbacks
/// that keep the identity safe may not be in place.
pub fn require() -> Result<(), GuardError> {
    if PRELOADED.load(Ordering::Relaxed) {
        Ok(())
    } else {
        Err(GuardError::NotPreloaded)
    }
}
