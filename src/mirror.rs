//! Mirrors: bringing a project's mirror of its remote origin up to date, signed in with the
//! project's sealed credentials or deploy key, through addresses the outbound policy admits.
//! Every caller that needs fresh refs (triggers, pipeline creation, push pipelines, lint) comes
//! here.

use crate::context::Spur;
use crate::git::Origin;

/// Fetches a project's mirror (nothing for local and hosted repositories), signed in as
/// `import_auth` says.
pub async fn fetch_origin(spur: &Spur, project: &crate::domain::Project) -> Result<(), String> {
    let origin = Origin::of(project);
    let Origin::Remote(url) = &origin else { return Ok(()) };
    // Checked again at every fetch: the host may resolve elsewhere now.
    let pin = crate::outbound::git_pin(url, &spur.outbound_policy()).await?;
    spur.repos
        .refresh(&project.repo_name, &origin, &import_auth(spur, project), &pin)
        .await
}

/// How to sign in to a project's origin: its deploy key for SSH, the unsealed credentials of
/// an http(s) `import_url`, or nothing.
pub fn import_auth(spur: &Spur, project: &crate::domain::Project) -> crate::git::RemoteAuth {
    let unseal = |sealed: &Vec<u8>| spur.secrets.unseal(sealed).ok();
    if let Some(private) = project.deploy_key.as_ref().and_then(|k| unseal(&k.private_sealed)) {
        return crate::git::RemoteAuth::SshKey(private);
    }
    match project.import_credentials.as_ref().and_then(unseal) {
        Some(plain) => crate::git::RemoteAuth::Basic(String::from_utf8_lossy(&plain).into_owned()),
        None => crate::git::RemoteAuth::None,
    }
}
