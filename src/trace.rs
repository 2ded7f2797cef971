//! Job logs ("traces"): one append-only file per job under `<data-dir>/traces/`, written as the
//! job prints and readable while it runs. Logs live beside the database, not in it: they are
//! large, written at hundreds of MB/s and need no transaction; the job record in redb says how
//! the job ended. Each log is capped; output past the cap is dropped with GitLab runner's notice.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes written to job logs since start (for `/-/metrics`).
pub static BYTES_WRITTEN: AtomicU64 = AtomicU64::new(0);

/// Where job logs live, and how large one may grow.
pub struct Traces {
    dir: PathBuf,
    max_bytes: u64,
    /// Serialises offset-checked appends from runners (check and write must be one step).
    remote: std::sync::Mutex<()>,
}

/// What became of a runner's patch (`PATCH /jobs/:id/trace`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Patch {
    /// Appended; the log now has this many bytes.
    Appended(u64),
    /// It did not start where the log ends; the log has this many bytes.
    WrongOffset(u64),
    /// It would take the log past the cap.
    TooLarge,
}

/// The start offset of a trace patch's `Content-Range` (`<start>-<end>`). The end is ignored:
/// runners disagree on whether it is inclusive, so GitLab uses the body's length instead.
pub fn content_range_start(header: &str) -> Option<u64> {
    let header = header.trim();
    let header = header.strip_prefix("bytes ").unwrap_or(header);
    let (start, end) = header.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    end.trim().parse::<u64>().ok()?;
    Some(start)
}

impl Traces {
    /// Job logs under `dir`, each capped at `max_bytes`.
    pub fn new(dir: PathBuf, max_bytes: u64) -> io::Result<Traces> {
        fs::create_dir_all(&dir)?;
        Ok(Traces {
            dir,
            max_bytes,
            remote: std::sync::Mutex::new(()),
        })
    }

    /// The file of a job's log.
    pub fn path(&self, job_id: u64) -> PathBuf {
        self.dir.join(format!("{job_id}.log"))
    }

    /// Opens a job's log for appending.
    pub fn writer(&self, job_id: u64) -> io::Result<TraceWriter> {
        let path = self.path(job_id);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let written = file.metadata()?.len();
        Ok(TraceWriter {
            file,
            written,
            max_bytes: self.max_bytes,
            capped: written >= self.max_bytes,
        })
    }

    /// Appends one line outside the job's own output (a crash notice), ignoring the cap.
    pub fn append_notice(&self, job_id: u64, line: &str) {
        let result = self
            .writer(job_id)
            .and_then(|mut w| w.write_framing(&format!("\n{line}\n")));
        if let Err(e) = result {
            tracing::warn!(job_id, error = %e, "could not append to a job log");
        }
    }

    /// Every job log: the job id and when the file last changed.
    pub fn all(&self) -> io::Result<Vec<(u64, std::time::SystemTime)>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".log"))
                .and_then(|n| n.parse().ok())
            else {
                continue;
            };
            out.push((id, entry.metadata()?.modified()?));
        }
        Ok(out)
    }

    /// Appends a runner's patch if it starts exactly where the log ends (GitLab's rule).
    pub fn append_at(&self, job_id: u64, start: u64, bytes: &[u8]) -> io::Result<Patch> {
        let _serial = self
            .remote
            .lock()
            .map_err(|_| io::Error::other("trace lock poisoned"))?;
        let mut file = OpenOptions::new().create(true).append(true).open(self.path(job_id))?;
        let len = file.metadata()?.len();
        if start != len {
            return Ok(Patch::WrongOffset(len));
        }
        if len + bytes.len() as u64 > self.max_bytes {
            return Ok(Patch::TooLarge);
        }
        file.write_all(bytes)?;
        BYTES_WRITTEN.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(Patch::Appended(len + bytes.len() as u64))
    }

    /// Replaces a job's whole log (the legacy `trace` field of `PUT /jobs/:id`), capped.
    pub fn replace(&self, job_id: u64, text: &[u8]) -> io::Result<()> {
        let _serial = self
            .remote
            .lock()
            .map_err(|_| io::Error::other("trace lock poisoned"))?;
        let keep = &text[..text.len().min(self.max_bytes as usize)];
        fs::write(self.path(job_id), keep)
    }

    /// Removes a job's log (when its pipeline is deleted).
    pub fn remove(&self, job_id: u64) {
        let _ = fs::remove_file(self.path(job_id));
    }
}

/// Appends to one job's log, dropping the job's output past the cap.
pub struct TraceWriter {
    file: File,
    written: u64,
    max_bytes: u64,
    capped: bool,
}

impl TraceWriter {
    /// Appends the job's output; past the cap it is dropped after one notice.
    pub fn write_output(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.capped {
            return Ok(());
        }
        let room = self.max_bytes.saturating_sub(self.written);
        if (bytes.len() as u64) <= room {
            self.file.write_all(bytes)?;
            self.written += bytes.len() as u64;
            BYTES_WRITTEN.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            return Ok(());
        }
        self.file.write_all(&bytes[..room as usize])?;
        self.written += room;
        self.capped = true;
        let notice = format!(
            "\n\x1b[31;1mJob's log exceeded limit of {} bytes.\nJob execution will continue but no more output will be collected.\x1b[0;m\n",
            self.max_bytes
        );
        self.write_framing(&notice)
    }

    /// Appends spur's own lines (section markers, the final status), which the cap never drops.
    pub fn write_framing(&mut self, text: &str) -> io::Result<()> {
        self.file.write_all(text.as_bytes())?;
        self.written += text.len() as u64;
        Ok(())
    }

    /// Bytes in the log so far.
    pub fn len(&self) -> u64 {
        self.written
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.written == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runner_patches_append_only_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let traces = Traces::new(dir.path().into(), 10).unwrap();
        assert_eq!(traces.append_at(1, 0, b"abc").unwrap(), Patch::Appended(3));
        assert_eq!(traces.append_at(1, 0, b"abc").unwrap(), Patch::WrongOffset(3));
        assert_eq!(traces.append_at(1, 5, b"x").unwrap(), Patch::WrongOffset(3));
        assert_eq!(traces.append_at(1, 3, b"").unwrap(), Patch::Appended(3));
        assert_eq!(traces.append_at(1, 3, b"defghij").unwrap(), Patch::Appended(10));
        assert_eq!(traces.append_at(1, 10, b"k").unwrap(), Patch::TooLarge);
        assert_eq!(fs::read(traces.path(1)).unwrap(), b"abcdefghij");
    }

    #[test]
    fn content_range_starts_are_read_and_ends_ignored() {
        assert_eq!(content_range_start("0-42"), Some(0));
        assert_eq!(content_range_start("43-1080"), Some(43));
        assert_eq!(content_range_start("1080-1080"), Some(1080));
        assert_eq!(content_range_start("bytes 5-9"), Some(5));
        for bad in ["", "-", "5", "a-b", "5-", "-5", "1-2-3", "18446744073709551616-1"] {
            assert_eq!(content_range_start(bad), None, "{bad}");
        }
    }

    #[test]
    fn output_past_the_cap_is_dropped_but_framing_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let traces = Traces::new(dir.path().into(), 10).unwrap();
        let mut w = traces.writer(7).unwrap();
        w.write_output(b"12345").unwrap();
        w.write_output(b"6789abcdef").unwrap();
        w.write_output(b"zzz").unwrap();
        w.write_framing("Job succeeded\n").unwrap();
        let text = fs::read_to_string(traces.path(7)).unwrap();
        assert!(text.starts_with("123456789a\n"), "{text}");
        assert!(text.contains("exceeded limit of 10 bytes"));
        assert!(!text.contains("zzz"));
        assert!(text.ends_with("Job succeeded\n"));
    }
}
