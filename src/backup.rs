//! Backups and restores of a data dir: the database (one consistent snapshot, taken while a
//! running server keeps accepting triggers) and the secret key, in one file. Job logs, caches
//! and mirrors are not in it: they are rebuilt or expendable.

use crate::clock;
use crate::context::Spur;
use crate::storage::{self, BackupInfo, Store};
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The secret key file of a data dir.
fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("secret.key")
}

/// Backs up a running server's data into `out` (which must not exist).
pub fn backup_running(spur: &Spur, out: &Path) -> Result<BackupInfo, String> {
    let key = fs::read(key_path(&spur.data_dir)).map_err(|e| format!("cannot read the secret key: {e}"))?;
    spur.store.backup(out, &key, clock::now()).map_err(|e| e.to_string())
}

/// Backs up a stopped server's data dir into `out`.
pub fn backup_offline(data_dir: &Path, out: &Path) -> Result<BackupInfo, String> {
    if out.exists() {
        return Err(format!("{} exists already", out.display()));
    }
    let key = fs::read(key_path(data_dir)).map_err(|e| format!("cannot read {}: {e}", key_path(data_dir).display()))?;
    let store = Store::open(&data_dir.join("spur.redb")).map_err(|e| match e {
        storage::Error::AlreadyOpen => format!(
            "a spur is running on {}: back it up with --url and an administrator's token",
            data_dir.display()
        ),
        other => other.to_string(),
    })?;
    store.backup(out, &key, clock::now()).map_err(|e| e.to_string())
}

/// Restores `file` into `data_dir`: refuses a data dir that holds a database unless `force`.
pub fn restore(file: &Path, data_dir: &Path, force: bool) -> Result<(), String> {
    let db = data_dir.join("spur.redb");
    if db.exists() && !force {
        return Err(format!(
            "{} holds a database already; restore into an empty data dir or pass --force",
            data_dir.display()
        ));
    }
    fs::create_dir_all(data_dir).map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let staging = data_dir.join("spur.redb.restoring");
    let _ = fs::remove_file(&staging);
    let key = storage::restore_backup(file, &staging).map_err(|e| e.to_string())?;
    let mut key_file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(key_path(data_dir))
        .map_err(|e| format!("cannot write the secret key: {e}"))?;
    key_file
        .write_all(&key)
        .and_then(|_| key_file.sync_all())
        .map_err(|e| format!("cannot write the secret key: {e}"))?;
    fs::rename(&staging, &db).map_err(|e| format!("cannot put the database in place: {e}"))?;
    Ok(())
}

/// Asks a running server for a backup and writes it to `file`, chunk by chunk.
pub fn download(url: &str, token: &str, file: &std::path::Path) -> Result<String, String> {
    use std::io::Write;
    if file.exists() {
        return Err(format!("{} exists already", file.display()));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let endpoint = format!("{}/api/v4/admin/backup", url.trim_end_matches('/'));
        crate::outbound::install_tls_provider();
        let mut response = reqwest::Client::new()
            .post(&endpoint)
            .header("PRIVATE-TOKEN", token)
            .send()
            .await
            .map_err(|e| format!("cannot reach {endpoint}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("{endpoint} answered {}", response.status()));
        }
        let schema = response
            .headers()
            .get("x-spur-schema-version")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("?")
            .to_string();
        let partial = file.with_extension("partial");
        let mut out =
            std::fs::File::create(&partial).map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
        let mut bytes = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            out.write_all(&chunk).map_err(|e| e.to_string())?;
            bytes += chunk.len() as u64;
        }
        out.sync_all().map_err(|e| e.to_string())?;
        std::fs::rename(&partial, file).map_err(|e| e.to_string())?;
        Ok(format!("{bytes} bytes, schema version {schema}"))
    })
}
