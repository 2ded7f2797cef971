//! Releases: a named, described snapshot of a tag, with links to its assets.

use serde::{Deserialize, Serialize};

/// A project's release of one tag.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// Its project.
    pub project_id: u64,
    /// The tag it releases (one release a tag).
    pub tag_name: String,
    /// Its title (the tag's name when none was given).
    pub name: String,
    /// Its notes (Markdown, shown as text).
    pub description: String,
    /// The commit the tag pointed at when the release was made.
    pub sha: String,
    /// Who made it.
    pub author_id: u64,
    /// When it was made.
    pub created_at: super::Millis,
    /// When it is (or was) released; later than now makes it an upcoming release.
    pub released_at: super::Millis,
    /// Its asset links, in the order they were added.
    pub links: Vec<ReleaseLink>,
}

/// A link to a release's asset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseLink {
    /// Its id, unique across releases.
    pub id: u64,
    /// Its name, unique within the release.
    pub name: String,
    /// Its URL (http, https or ftp), unique within the release.
    pub url: String,
    /// `direct_asset_path`: the path of a permanent link under the release's URL.
    pub direct_asset_path: Option<String>,
    /// `other`, `runbook`, `image` or `package`.
    pub link_type: String,
}

/// A job's `release:` keyword, its values not yet expanded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseSpec {
    /// `tag_name`.
    pub tag_name: String,
    /// `name`.
    pub name: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `ref`: where a missing tag is cut from (the pipeline's commit when absent).
    pub reference: Option<String>,
    /// `tag_message`.
    pub tag_message: Option<String>,
    /// `released_at` (ISO 8601).
    pub released_at: Option<String>,
    /// `assets:links`: name, url, `direct_asset_path` (or `filepath`), `link_type`.
    pub links: Vec<ReleaseLink>,
}
