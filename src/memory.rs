//! Giving freed memory back to the system. glibc's allocator keeps freed pages in its arenas,
//! so after a burst of requests the resident size stays high although nothing uses it; every
//! 30 s this asks the allocator to return what it can (`malloc_trim`). Large blocks (a
//! sign-in's 19 MiB argon2 memory, big log chunks) always get pages of their own, returned
//! when freed (`configure`).

use std::time::Duration;

/// Runs forever, trimming the allocator's free memory every 30 s.
pub async fn return_freed_memory() {
    loop {
        tokio::time::sleep(Duration::from_secs(30)).await;
        trim();
    }
}

/// Blocks of this size or more are mapped on their own and unmapped when freed.
const OWN_PAGES_FROM: i32 = 256 << 10;

/// Sets the allocator up; called first thing in `main`. glibc raises the size from which a
/// block gets pages of its own to that of the largest one freed (up to 32 MiB): after the
/// first sign-in, each argon2 hash's 19 MiB came from an arena that kept it, so four sign-ins
/// left 60 MiB resident. A fixed threshold keeps large blocks out of the arenas.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn configure() {
    // SAFETY: mallopt only sets glibc's allocator parameters; called before other threads.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, OWN_PAGES_FROM);
    }
}

/// Sets the allocator up (glibc only).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn configure() {}

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
