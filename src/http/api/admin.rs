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
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header(("Content-Disposition", "attachment; filename=\"spur-backup.redb\""))
        .insert_header(("X-Spur-Schema-Version", info.schema_version.to_string()))
        .body(crate::http::file_body(file, len)))
}
