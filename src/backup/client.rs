//! `spur backup --url`: asks a running server (over http or https, e.g. behind a TLS proxy) for
//! a backup, writes it chunk by chunk, and checks the whole archive before giving it its name.

use super::{archive, partial_path};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Downloads a backup from the server at `url` with an administrator's `token` into `file`
/// (which must not exist); `ca_cert` adds a PEM certificate to trust (a proxy's own CA).
/// Answers a line saying what the archive holds.
pub fn download(url: &str, token: &str, file: &Path, ca_cert: Option<&Path>) -> Result<String, String> {
    if file.exists() {
        return Err(format!("{} exists already", file.display()));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let partial = partial_path(file);
    if partial.exists() {
        return Err(format!(
            "{} exists: another backup is being written there, or one broke off (remove it)",
            partial.display()
        ));
    }
    let result = rt.block_on(fetch(url, token, &partial, ca_cert));
    let checked = result.and_then(|bytes| {
        let input = std::fs::File::open(&partial).map_err(|e| e.to_string())?;
        let manifest = archive::read(std::io::BufReader::with_capacity(1 << 18, input), None)
            .map_err(|e| format!("the server's backup is unusable: {e}"))?;
        std::fs::rename(&partial, file).map_err(|e| e.to_string())?;
        let count = |prefix: &str| manifest.files.iter().filter(|f| f.path.starts_with(prefix)).count();
        Ok(format!(
            "{bytes} bytes, schema version {}, {} repositories, {} job logs, {} artifacts archives",
            manifest.schema_version,
            count("repositories/"),
            count("traces/"),
            count("artifacts/")
        ))
    });
    if checked.is_err() && !matches!(&checked, Err(e) if e.starts_with(CREATE_FAILED)) {
        let _ = std::fs::remove_file(&partial);
    }
    checked
}

/// How an error starts when `partial` could not be made (so it is someone else's: kept).
const CREATE_FAILED: &str = "cannot create ";

/// Streams the server's answer into `partial`; answers its length. Redirects are not followed:
/// the administrator's token goes only to the URL given.
async fn fetch(url: &str, token: &str, partial: &Path, ca_cert: Option<&Path>) -> Result<u64, String> {
    let endpoint = format!("{}/api/v4/admin/backup", url.trim_end_matches('/'));
    crate::outbound::install_tls_provider();
    let mut client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    if let Some(path) = ca_cert {
        let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))?;
        client = client.add_root_certificate(cert);
    }
    let client = client.build().map_err(|e| e.to_string())?;
    let mut response = client
        .post(&endpoint)
        .header("PRIVATE-TOKEN", token)
        .send()
        .await
        .map_err(|e| format!("cannot reach {endpoint}: {e}"))?;
    if response.status().is_redirection() {
        let to = response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .unwrap_or("?")
            .to_string();
        return Err(format!(
            "{endpoint} redirects to {to}; spur does not follow it with your token: give that URL instead"
        ));
    }
    if !response.status().is_success() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        return Err(format!(
            "{endpoint} answered {status}: {}",
            body.chars().take(300).collect::<String>()
        ));
    }
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(partial)
        .map_err(|e| format!("{CREATE_FAILED}{}: {e}", partial.display()))?;
    let mut bytes = 0u64;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("the download broke off after {bytes} bytes: {e}"))?
    {
        out.write_all(&chunk).map_err(|e| e.to_string())?;
        bytes += chunk.len() as u64;
    }
    out.sync_all().map_err(|e| e.to_string())?;
    Ok(bytes)
}
