//! What spur hands a container's engine and shell: image references checked to be a
//! registry's (never a file on the host, an option or a line of their own), names a shell can
//! export, the script a container's shell reads on stdin, and gitlab-runner's shell detection.

use crate::domain::Image;

/// gitlab-runner's shell detection: the first bash, else the first sh, of the usual places.
pub(super) const DETECT_SHELL: &str = "if [ -x /usr/local/bin/bash ]; then exec /usr/local/bin/bash --noprofile --norc \"$@\"; \
elif [ -x /usr/bin/bash ]; then exec /usr/bin/bash --noprofile --norc \"$@\"; \
elif [ -x /bin/bash ]; then exec /bin/bash --noprofile --norc \"$@\"; \
elif [ -x /usr/local/bin/sh ]; then exec /usr/local/bin/sh \"$@\"; \
elif [ -x /usr/bin/sh ]; then exec /usr/bin/sh \"$@\"; \
elif [ -x /bin/sh ]; then exec /bin/sh \"$@\"; \
elif [ -x /busybox/sh ]; then exec /busybox/sh \"$@\"; \
else echo shell not found; exit 1; fi";

/// A copy of `image` with variables in its name expanded by the job's.
pub(super) fn expanded(image: &Image, env: &[(String, String)]) -> Image {
    Image {
        name: crate::ci_config::job_settings::expand(&image.name, env),
        ..image.clone()
    }
}

/// An image reference as engines read it (`registry:port/path:tag@digest`): it starts with a
/// letter or digit, so no name is ever read as an option.
pub(super) fn is_reference(name: &str) -> bool {
    // podman reads `<transport>:<where>` as an archive, a folder or a daemon on the host.
    const TRANSPORTS: [&str; 11] = [
        "docker:",
        "docker-archive:",
        "docker-daemon:",
        "oci:",
        "oci-archive:",
        "dir:",
        "containers-storage:",
        "ostree:",
        "sif:",
        "tarball:",
        "atomic:",
    ];
    let lower = name.to_ascii_lowercase();
    // A `:` before the first `/` is a registry's port (digits, then `/`) or a tag (no `/`).
    let colon_ok = match name.split_once(':') {
        Some((before, after)) if !before.contains('/') => {
            !after.contains('/')
                || after
                    .split('/')
                    .next()
                    .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        }
        _ => true,
    };
    !TRANSPORTS.iter().any(|t| lower.starts_with(t))
        && colon_ok
        && name.len() <= 1024
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/' | b':' | b'@'))
}

/// A name a POSIX shell can export.
pub(super) fn is_shell_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A script for a container's shell to read on stdin: the job's variables exported (quoted,
/// so that no value is ever read as code), then its lines as on the host, under a header any
/// POSIX shell accepts (`pipefail` where the shell has it), all in one `eval`.
pub(super) fn script(env: &[(String, String)], lines: &[String]) -> String {
    let mut s = String::new();
    for (k, v) in env.iter().filter(|(k, _)| is_shell_name(k)) {
        s.push_str(&format!("export {k}={}\n", super::single_quote(v)));
    }
    s.push_str("set -e\n(set -o pipefail) 2>/dev/null && set -o pipefail\n");
    s.push_str(&super::script_body("", lines));
    // As gitlab-runner sends it: the shell reads the whole script as one line before running
    // it, and its commands read an empty stdin, never the rest of the script.
    format!(": | eval {}\n", super::single_quote(&s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_names() {
        assert!(is_shell_name("CI_JOB_ID"));
        assert!(is_shell_name("_x1"));
        assert!(!is_shell_name("1X"));
        assert!(!is_shell_name("A-B"));
        assert!(!is_shell_name(""));
    }

    #[test]
    fn references_never_read_as_options() {
        assert!(is_reference("registry.example.com:5000/group/app:1.2@sha256:abc"));
        assert!(is_reference("node"));
        assert!(!is_reference("--privileged"));
        assert!(!is_reference("-v=/:/host"));
        assert!(!is_reference("alpine latest"));
        assert!(!is_reference(""));
        assert!(!is_reference("docker-archive:/tmp/x.tar"));
        assert!(!is_reference("oci:layout"));
        assert!(!is_reference("dir:/root/.ssh"));
        assert!(!is_reference("Containers-Storage:x"));
        assert!(is_reference("localhost:5000/app:1"));
        assert!(is_reference("alpine:3.20"));
        assert!(!is_reference("a\r\nJob succeeded"));
    }
}
