//! The backup archive: a gzip'd tar whose entries are copied from their files as they are read
//! (nothing is held in memory), each hashed (BLAKE3) on its way, and `manifest.json` last, which
//! lists every entry with its size and digest. Reading checks every entry against the manifest
//! and admits only the names a backup writes, as plain files: a damaged, partial or foreign
//! archive is refused before anything of it is used.

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// The manifest's own name in the archive (always its last entry).
pub const MANIFEST: &str = "manifest.json";
/// The format this spur writes and reads.
pub const FORMAT: &str = "spur-backup/1";
/// The database snapshot's name in the archive.
pub const DATABASE: &str = "database.redb";
/// The most a manifest may weigh (it lists every file of the archive).
const MAX_MANIFEST: u64 = 256 << 20;

/// What an archive holds, written last.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// The spur that wrote it.
    pub spur_version: String,
    /// The database's schema version.
    pub schema_version: u64,
    /// When the database snapshot was taken (GitLab's time format).
    pub created_at: String,
    /// Every other entry, in archive order.
    pub files: Vec<FileEntry>,
    /// Every project's repository: what the archive holds of it, or why nothing.
    pub repositories: Vec<RepositoryEntry>,
    /// What a backup leaves out on purpose, and how it comes back.
    pub left_out: Vec<String>,
}

/// One file of the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Its name in the archive.
    pub path: String,
    /// Its length in bytes.
    pub size: u64,
    /// Its BLAKE3 digest, in hex.
    pub blake3: String,
}

/// How a project's repository is kept in a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepositoryKind {
    /// Hosted by spur: its refs are in a bundle (none when nothing was ever pushed).
    Hosted,
    /// A mirror of a remote: left out, fetched again from `origin`.
    Mirror,
    /// A repository on the server, read in place: left out.
    Local,
}

/// A project's repository in the manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepositoryEntry {
    /// The project's full path.
    pub project: String,
    /// Its folder's name under `repositories/` (without `.git`).
    pub repo_name: String,
    /// How it is kept.
    pub kind: RepositoryKind,
    /// The bundle's name in the archive, for a hosted repository with refs.
    pub bundle: Option<String>,
    /// The branch HEAD points at.
    pub default_branch: Option<String>,
    /// Where a mirror fetches from (without credentials).
    pub origin: Option<String>,
}

/// Whether `name` is one a backup writes: the database, bundles, SSH's known hosts, job logs
/// and artifacts archives, each a plain relative name that no path trick can widen.
fn admitted(name: &str) -> bool {
    let word = |s: &str| !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric());
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    name == DATABASE
        || name == "repositories/.ssh/known_hosts"
        || name
            .strip_prefix("repositories/")
            .and_then(|n| n.strip_suffix(".git.bundle"))
            .is_some_and(word)
        || name
            .strip_prefix("traces/")
            .and_then(|n| n.strip_suffix(".log"))
            .is_some_and(digits)
        || name
            .strip_prefix("artifacts/")
            .and_then(|n| n.strip_suffix(".zip"))
            .is_some_and(digits)
}

/// Whether `name` is a repository folder name a manifest may give.
pub fn valid_repo_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: blake3::Hasher,
    read: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// Writes an archive entry by entry.
pub struct Writer<W: Write> {
    tar: tar::Builder<GzEncoder<W>>,
    files: Vec<FileEntry>,
}

impl<W: Write> Writer<W> {
    /// An archive written to `out`.
    pub fn new(out: W) -> Writer<W> {
        let mut tar = tar::Builder::new(GzEncoder::new(out, Compression::fast()));
        tar.mode(tar::HeaderMode::Deterministic);
        Writer { tar, files: Vec::new() }
    }

    /// Adds the file at `path` as `name`, as long as it was when opened (a log being written
    /// grows meanwhile). Answers `false` when the file is gone.
    pub fn add_file(&mut self, name: &str, path: &Path) -> io::Result<bool> {
        let file = match fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Ok(false);
        }
        self.add(name, meta.len(), file.take(meta.len()))?;
        Ok(true)
    }

    fn add(&mut self, name: &str, size: u64, reader: impl Read) -> io::Result<()> {
        debug_assert!(admitted(name) || name == MANIFEST, "{name}");
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(0o600);
        header.set_entry_type(tar::EntryType::Regular);
        let mut hashing = Hashing {
            inner: reader,
            hasher: blake3::Hasher::new(),
            read: 0,
        };
        self.tar.append_data(&mut header, name, &mut hashing)?;
        if hashing.read != size {
            return Err(io::Error::other(format!("{name} changed while it was read")));
        }
        if name != MANIFEST {
            self.files.push(FileEntry {
                path: name.to_string(),
                size,
                blake3: hashing.hasher.finalize().to_hex().to_string(),
            });
        }
        Ok(())
    }

    /// Writes `manifest` (its file list is the entries written) as the last entry and ends the
    /// archive; answers the output.
    pub fn finish(mut self, mut manifest: Manifest) -> io::Result<W> {
        manifest.files = std::mem::take(&mut self.files);
        let bytes = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other)?;
        self.add(MANIFEST, bytes.len() as u64, bytes.as_slice())?;
        self.tar.into_inner()?.finish()
    }
}

/// Reads a whole archive from `input`, checking every entry against the manifest; with `into`,
/// also writes the entries below that folder (which must be empty and private). Answers the
/// manifest, or why the archive cannot be used.
pub fn read(input: impl Read, into: Option<&Path>) -> Result<Manifest, String> {
    let damaged = |e: io::Error| format!("the archive is damaged or cut short: {e}");
    let mut archive = tar::Archive::new(GzDecoder::new(input));
    let mut seen: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut manifest: Option<Manifest> = None;
    for entry in archive.entries().map_err(damaged)? {
        let mut entry = entry.map_err(damaged)?;
        let name = entry
            .path()
            .map_err(damaged)?
            .to_str()
            .map(str::to_string)
            .ok_or("the archive holds a name that is not UTF-8")?;
        if manifest.is_some() {
            return Err(format!(
                "the archive goes on after its manifest ({name}): it is not a spur backup"
            ));
        }
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(format!("{name} is not a plain file: the archive is not a spur backup"));
        }
        if name == MANIFEST {
            let mut text = Vec::new();
            (&mut entry)
                .take(MAX_MANIFEST)
                .read_to_end(&mut text)
                .map_err(damaged)?;
            let parsed: Manifest =
                serde_json::from_slice(&text).map_err(|e| format!("the manifest does not parse: {e}"))?;
            manifest = Some(parsed);
            continue;
        }
        if !admitted(&name) {
            return Err(format!("the archive holds {name}, which no spur backup does"));
        }
        if seen.contains_key(&name) {
            return Err(format!("the archive holds {name} twice"));
        }
        let mut hashing = Hashing {
            inner: &mut entry,
            hasher: blake3::Hasher::new(),
            read: 0,
        };
        match into {
            Some(dir) => {
                let target = dir.join(&name);
                if let Some(parent) = target.parent() {
                    fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(parent)
                        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
                }
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&target)
                    .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
                io::copy(&mut hashing, &mut file).map_err(damaged)?;
                file.sync_all()
                    .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
            }
            None => {
                io::copy(&mut hashing, &mut io::sink()).map_err(damaged)?;
            }
        }
        let digest = hashing.hasher.finalize().to_hex().to_string();
        seen.insert(name, (hashing.read, digest));
    }
    let manifest = manifest
        .ok_or("the archive ends before its manifest: it is cut short (a partial download?) or not a spur backup")?;
    if manifest.format != FORMAT {
        return Err(format!("the archive's format is {}, not {FORMAT}", manifest.format));
    }
    for file in &manifest.files {
        match seen.remove(&file.path) {
            None => return Err(format!("{} is missing from the archive", file.path)),
            Some((size, digest)) if size != file.size || digest != file.blake3 => {
                return Err(format!(
                    "{} does not match its checksum: the archive is damaged",
                    file.path
                ));
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = seen.keys().next() {
        return Err(format!(
            "{extra} is not in the manifest: the archive is not a spur backup"
        ));
    }
    if !manifest.files.iter().any(|f| f.path == DATABASE) {
        return Err("the archive holds no database".into());
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            format: FORMAT.into(),
            spur_version: "test".into(),
            schema_version: 1,
            created_at: "now".into(),
            files: Vec::new(),
            repositories: Vec::new(),
            left_out: Vec::new(),
        }
    }

    fn sample() -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        fs::write(&db, b"database bytes").unwrap();
        let log = dir.path().join("log");
        fs::write(&log, "line\n".repeat(1000)).unwrap();
        let mut w = Writer::new(Vec::new());
        assert!(w.add_file(DATABASE, &db).unwrap());
        assert!(w.add_file("traces/7.log", &log).unwrap());
        assert!(!w.add_file("traces/8.log", &dir.path().join("gone")).unwrap());
        w.finish(manifest()).unwrap()
    }

    #[test]
    fn an_archive_reads_back_entry_by_entry() {
        let bytes = sample();
        let m = read(bytes.as_slice(), None).unwrap();
        assert_eq!(m.files.len(), 2);
        let dir = tempfile::tempdir().unwrap();
        read(bytes.as_slice(), Some(dir.path())).unwrap();
        assert_eq!(fs::read(dir.path().join(DATABASE)).unwrap(), b"database bytes");
        assert_eq!(fs::read_to_string(dir.path().join("traces/7.log")).unwrap().len(), 5000);
    }

    #[test]
    fn a_cut_short_or_damaged_archive_is_refused() {
        let bytes = sample();
        for cut in [10, bytes.len() / 2, bytes.len() - 30] {
            let err = read(&bytes[..cut], None).unwrap_err();
            assert!(err.contains("cut short") || err.contains("damaged"), "{cut}: {err}");
        }
        let mut flipped = bytes.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x55;
        assert!(read(flipped.as_slice(), None).is_err());
        assert!(read(&b"plain text"[..], None).is_err());
    }

    #[test]
    fn a_manifest_that_disagrees_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        fs::write(&db, b"x").unwrap();
        // An entry the manifest does not list.
        let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        let mut header = tar::Header::new_gnu();
        header.set_size(1);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, DATABASE, &b"x"[..]).unwrap();
        let m = serde_json::to_vec(&manifest()).unwrap();
        let mut header = tar::Header::new_gnu();
        header.set_size(m.len() as u64);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, MANIFEST, m.as_slice()).unwrap();
        let bytes = tar.into_inner().unwrap().finish().unwrap();
        assert!(
            read(bytes.as_slice(), None)
                .unwrap_err()
                .contains("not in the manifest")
        );
    }

    #[test]
    fn only_the_names_a_backup_writes_are_admitted() {
        for ok in [
            "database.redb",
            "traces/12.log",
            "artifacts/3.zip",
            "repositories/0a1b.git.bundle",
        ] {
            assert!(admitted(ok), "{ok}");
        }
        for bad in [
            "../spur.redb",
            "traces/../../x.log",
            "/etc/passwd",
            "traces/1.log/x",
            "repositories/../x.git.bundle",
            "repositories/a/b.git.bundle",
            "secret.key",
            "artifacts/-1.zip",
        ] {
            assert!(!admitted(bad), "{bad}");
        }
    }
}
