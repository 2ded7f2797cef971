//! Records spur's git commit at build time for `spur --version` and `GET /api/v4/version`, and
//! has release builds link start-up code side by side (`link_order`).

fn main() {
    link_order();
    let revision = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=SPUR_REVISION={revision}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
}

/// In release builds for x86-64 Linux (linked by LLD, Rust's default there), has the linker place
/// the functions listed in `src/startup.order` side by side. The kernel maps code in 64 KiB
/// windows around each touched page, so start-up code scattered over the binary kept most of it
/// resident; gathered, an idle server holds a third as much. `cargo bench --bench
/// startup_order` makes the list; names it lacks are placed as before, so a stale list costs
/// memory, never correctness. `SPUR_LINK_ORDER=0` turns it off (for a linker other than LLD).
fn link_order() {
    println!("cargo:rerun-if-changed=src/startup.order");
    println!("cargo:rerun-if-env-changed=SPUR_LINK_ORDER");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    // GNU ld and gold do not read the list: a build told to use them goes without it.
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    let other_linker = ["fuse-ld=bfd", "fuse-ld=gold", "linker-features=-lld"]
        .iter()
        .any(|f| flags.contains(f));
    let wanted = var("PROFILE") == "release"
        && var("TARGET") == "x86_64-unknown-linux-gnu"
        && var("SPUR_LINK_ORDER") != "0"
        && !other_linker;
    let list = std::path::Path::new(&var("CARGO_MANIFEST_DIR")).join("src/startup.order");
    if wanted && list.is_file() {
        println!(
            "cargo:rustc-link-arg-bin=spur=-Wl,--symbol-ordering-file={}",
            list.display()
        );
        println!("cargo:rustc-link-arg-bin=spur=-Wl,--no-warn-symbol-ordering");
    }
    // Relative relocations packed (DT_RELR): 40,000 of them took 1 MiB that the loader reads at
    // every start and that stayed resident; packed, 12 KiB. glibc 2.36 or later runs such
    // binaries, so only a build host that new gets them (it runs what it builds).
    if wanted && glibc_at_least(2, 36) {
        println!("cargo:rustc-link-arg-bin=spur=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether the build host's glibc is at least `major.minor` (`getconf GNU_LIBC_VERSION`).
fn glibc_at_least(major: u32, minor: u32) -> bool {
    let Ok(out) = std::process::Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(version) = text.trim().strip_prefix("glibc ") else {
        return false;
    };
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    found >= (major, minor)
}
