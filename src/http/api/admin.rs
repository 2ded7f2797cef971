//! Administration: `POST /admin/backup` (administrators) answers a consistent backup of the
//! database and the secret key as a file download, while the server keeps working.

use crate::http::error::ApiError;
use crate::http::{State, signed_in};
use actix_web::{HttpRequest, HttpResponse, web};

/// `POST /admin/backup`.
pub async fn backup(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    let actor = signed_in(&req, &spur).await?;
    if !actor.user.admin {
        return Err(ApiError::forbidden());
    }
    let dir = spur.data_dir.join("backups");
    let path = dir.join(format!(".backup-{}.redb", uuid::Uuid::new_v4()));
    let s = spur.clone();
    let p = path.clone();
    let info = web::block(move || {
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        crate::backup::backup_running(&s, &p)
    })
    .await?
    .map_err(ApiError::internal)?;
    // Open, then unlink: the download reads the open file, and nothing is left behind.
    let file = tokio::fs::File::open(&path).await.map_err(ApiError::internal)?;
    let _ = tokio::fs::remove_file(&path).await;
    let len = file.metadata().await.map_err(ApiError::internal)?.len();
    tracing::info!(rows = info.rows, bytes = len, "backup taken");
    let stream = futures_util::stream::unfold((file, len), |(mut file, left)| async move {
        use tokio::io::AsyncReadExt;
        if left == 0 {
            return None;
        }
        let mut buf = vec![0u8; (256 * 1024).min(left as usize)];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(web::Bytes::from(buf)), (file, left - n as u64)))
            }
            Err(e) => Some((Err(e), (file, 0))),
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header(("Content-Disposition", "attachment; filename=\"spur-backup.redb\""))
        .insert_header(("X-Spur-Schema-Version", info.schema_version.to_string()))
        .body(actix_web::body::SizedStream::new(len, stream)))
}
