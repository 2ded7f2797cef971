//! Administration: `POST /admin/backup` (administrators) streams a backup of the whole instance
//! (see `crate::backup`) as a `.tar.gz` download while the server keeps working. The database
//! snapshot is taken before the answer starts; the rest is written as the client reads it.

use crate::backup::{self, SnapshotError};
use crate::http::error::ApiError;
use crate::http::{State, signed_in};
use actix_web::{HttpRequest, HttpResponse, web};
use std::io::{self, Write};
use tokio::sync::mpsc;

/// Chunks in flight between the archive's writer thread and the connection.
const CHUNKS_IN_FLIGHT: usize = 8;
/// How long a client may read nothing before the backup is given up (it holds the one
/// backup slot and a database copy).
const STALLED: std::time::Duration = std::time::Duration::from_secs(60);

/// A `Write` that hands what it gets to the connection; fails once the client has gone or has
/// read nothing for [`STALLED`], which stops the backup.
struct ToConnection(mpsc::Sender<io::Result<web::Bytes>>, tokio::runtime::Handle);

impl Write for ToConnection {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let chunk = Ok(web::Bytes::copy_from_slice(buf));
        self.1
            .block_on(self.0.send_timeout(chunk, STALLED))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away or stopped reading"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `POST /admin/backup`.
pub async fn backup(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = signed_in(&req, &spur).await?;
    if !actor.user.admin {
        return Err(ApiError::forbidden());
    }
    let s = spur.clone();
    let snap = web::block(move || backup::snapshot(&s.store, &s.data_dir))
        .await?
        .map_err(|e| match e {
            SnapshotError::Busy => ApiError::conflict(&e.to_string()),
            SnapshotError::Failed(why) => ApiError::internal(why),
        })?;
    let schema = snap.schema_version();
    let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let out = io::BufWriter::with_capacity(256 * 1024, ToConnection(tx.clone(), handle));
        let outcome = snap.write(out).and_then(|(mut out, summary)| {
            out.flush().map_err(|e| e.to_string())?;
            Ok(summary)
        });
        match outcome {
            Ok(s) => tracing::info!(
                repositories = s.repositories,
                logs = s.logs,
                artifacts = s.artifacts,
                "backup taken"
            ),
            Err(e) => {
                tracing::error!(error = %e, "backup broke off");
                // Ends the download with an error, so that the client sees it is cut short.
                let _ = tx.blocking_send(Err(io::Error::other(e)));
            }
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) });
    let stamp = crate::clock::iso8601(crate::clock::now()).replace([':', '.'], "-");
    Ok(HttpResponse::Ok()
        .content_type("application/gzip")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"spur-backup-{stamp}.tar.gz\""),
        ))
        .insert_header(("X-Spur-Schema-Version", schema.to_string()))
        .streaming(body))
}
