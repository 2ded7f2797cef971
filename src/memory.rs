//! Giving freed memory back to the system. glibc's allocator keeps freed pages in its arenas,
//! so after a burst of requests the resident size stays high although nothing uses it; every
//! 30 s this asks the allocator to return what it can (`malloc_trim`).

use std::time::Duration;

/// Runs forever, trimming the allocator's free memory every 30 s.
pub async fn return_freed_memory() {
    loop {
        tokio::time::sleep(Duration::from_secs(30)).await;
        trim();
    }
}

/// Asks the allocator to return its free memory to the system now.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn trim() {
    // SAFETY: malloc_trim only walks glibc's own heap bookkeeping under its locks; it takes a
    // plain integer and touches no memory of ours.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Asks the allocator to return its free memory to the system now (glibc only).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim() {}
