//! A job's `release:` step: after its script succeeded, spur makes the release itself (no
//! release-cli), as the job's user, with the job's variables expanded in every field. A release
//! that cannot be made fails the job, as release-cli's failure would.

use super::{JobRun, Log};
use crate::ci_config::job_settings::expand;
use crate::domain::{Project, ReleaseSpec};
use crate::releases::{NewRelease, Refusal};

impl JobRun<'_> {
    /// Makes the job's release; false (with the reason in the log) when it could not.
    pub(super) async fn release_step(
        &self,
        log: &mut Log,
        project: &Project,
        spec: &ReleaseSpec,
        env: &[(String, String)],
    ) -> bool {
        log.section_start("release_scripts", "Executing \"release\" stage of the job script");
        let made = self.make_release(project, spec, env).await;
        match &made {
            Ok((tag, url)) => log.framing(&format!("\x1b[32;1mCreated release {tag}: {url}\x1b[0;m\n")),
            Err(why) => log.framing(&format!("\x1b[31;1mERROR: cannot create the release: {why}\x1b[0;m\n")),
        }
        log.section_end("release_scripts");
        made.is_ok()
    }

    async fn make_release(
        &self,
        project: &Project,
        spec: &ReleaseSpec,
        env: &[(String, String)],
    ) -> Result<(String, String), String> {
        let x = |text: &str| expand(text, env);
        let user = self
            .spur
            .store
            .user(self.job.user_id)
            .map_err(|e| e.to_string())?
            .ok_or("the job's user no longer exists")?;
        let access = crate::auth::project_access(&self.spur.store, Some(&user), project, crate::clock::now())
            .map_err(|e| e.to_string())?;
        if !access.at_least(crate::domain::AccessLevel::Developer) {
            return Err("the job's user may not create releases in this project".into());
        }
        let released_at = match &spec.released_at {
            Some(at) => Some(
                time::OffsetDateTime::parse(&x(at), &time::format_description::well_known::Iso8601::DEFAULT)
                    .map_err(|_| format!("released_at {at:?} is not an ISO 8601 time"))?
                    .unix_timestamp()
                    .saturating_mul(1000),
            ),
            None => None,
        };
        let links = spec
            .links
            .iter()
            .map(|l| crate::domain::ReleaseLink {
                name: x(&l.name),
                url: x(&l.url),
                direct_asset_path: l.direct_asset_path.as_deref().map(x),
                ..l.clone()
            })
            .collect();
        let new = NewRelease {
            tag_name: x(&spec.tag_name),
            name: spec.name.as_deref().map(x),
            description: spec.description.as_deref().map(x),
            // A missing tag is cut from the pipeline's commit unless `ref` says otherwise.
            reference: Some(spec.reference.as_deref().map_or_else(|| self.pipeline.sha.clone(), x)),
            tag_message: spec.tag_message.as_deref().map(x),
            released_at,
            links,
        };
        let release = crate::releases::create(self.spur.clone(), project, &user, &access, new)
            .await?
            .map_err(|r| match r {
                Refusal::Invalid(m) | Refusal::Forbidden(m) | Refusal::Conflict(m) | Refusal::Unprocessable(m) => m,
                Refusal::NotFound(what) => format!("{what} not found"),
            })?;
        let url = self
            .spur
            .url(&format!("{}/-/releases/{}", project.full_path, release.tag_name));
        Ok((release.tag_name, url))
    }
}
