//! The read-only repository API: branches, tags, files (base64 and raw), trees and commits,
//! with GitLab's shapes, `read_code` rights and errors for bad refs and paths.

use crate::support::{Repo, Server, git, send};
use reqwest::Method;
use serde_json::Value;

async fn get(s: &Server, path: &str) -> (u16, Value) {
    send(s.root(Method::GET, path)).await
}

#[tokio::test]
async fn branches_tags_files_trees_and_commits_read_as_on_gitlab() {
    let s = Server::start();
    let repo = Repo::with_files(&[
        (".gitlab-ci.yml", "job:\n  script: [echo]\n"),
        ("ci/build.yml", "build:\n  script: [make]\n"),
        ("docs/a.md", "# A\n"),
    ]);
    git(repo.path(), &["branch", "feature/x"]);
    git(repo.path(), &["tag", "-a", "v1.0", "-m", "first release"]);
    std::fs::write(repo.path().join("docs/a.md"), "# A, again\n").unwrap();
    git(repo.path(), &["commit", "-qam", "docs: again"]);
    let pid = s.project("demo", repo.path()).await;
    let head = repo.sha("main");

    let (status, branches) = get(&s, &format!("/projects/{pid}/repository/branches")).await;
    assert_eq!(status, 200, "{branches}");
    let names: Vec<&str> = branches
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["feature/x", "main"]);
    let main = &branches[1];
    assert_eq!(
        (main["default"].as_bool(), main["commit"]["id"].as_str()),
        (Some(true), Some(head.as_str()))
    );
    assert_eq!(main["commit"]["title"], "docs: again");
    let (_, found) = get(&s, &format!("/projects/{pid}/repository/branches?search=^feat")).await;
    assert_eq!(found.as_array().unwrap().len(), 1);
    let (status, one) = get(&s, &format!("/projects/{pid}/repository/branches/feature%2Fx")).await;
    assert_eq!((status, one["name"].as_str()), (200, Some("feature/x")));
    let (status, _) = get(&s, &format!("/projects/{pid}/repository/branches/nope")).await;
    assert_eq!(status, 404);

    let (_, tags) = get(&s, &format!("/projects/{pid}/repository/tags")).await;
    assert_eq!(tags[0]["name"], "v1.0");
    assert_eq!(tags[0]["message"].as_str().map(str::trim), Some("first release"));
    assert_ne!(
        tags[0]["target"], tags[0]["commit"]["id"],
        "an annotated tag's target is the tag object"
    );

    let (status, f) = get(&s, &format!("/projects/{pid}/repository/files/ci%2Fbuild.yml?ref=main")).await;
    assert_eq!(status, 200, "{f}");
    assert_eq!(
        (f["file_name"].as_str(), f["encoding"].as_str()),
        (Some("build.yml"), Some("base64"))
    );
    assert_eq!(f["content"], "YnVpbGQ6CiAgc2NyaXB0OiBbbWFrZV0K");
    let raw = s
        .root(
            Method::GET,
            &format!("/projects/{pid}/repository/files/docs%2Fa.md/raw?ref=v1.0"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 200);
    assert_eq!(raw.text().await.unwrap(), "# A\n", "the file as it was at the tag");
    for (path, want) in [
        (format!("/projects/{pid}/repository/files/ci%2Fbuild.yml"), 400),
        (
            format!("/projects/{pid}/repository/files/..%2F..%2Fetc%2Fpasswd?ref=main"),
            400,
        ),
        (format!("/projects/{pid}/repository/files/missing.txt?ref=main"), 404),
        (
            format!("/projects/{pid}/repository/files/ci%2Fbuild.yml?ref=--upload-pack=x"),
            404,
        ),
        (format!("/projects/{pid}/repository/files/ci?ref=main"), 404),
    ] {
        let (status, body) = get(&s, &path).await;
        assert_eq!(status, want, "{path}: {body}");
    }

    let (_, tree) = get(&s, &format!("/projects/{pid}/repository/tree")).await;
    let entries: Vec<(&str, &str)> = tree
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["path"].as_str().unwrap(), e["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        entries,
        vec![(".gitlab-ci.yml", "blob"), ("ci", "tree"), ("docs", "tree")]
    );
    let (_, tree) = get(&s, &format!("/projects/{pid}/repository/tree?recursive=true&path=ci")).await;
    assert_eq!(tree[0]["path"], "ci/build.yml");
    let (status, _) = get(&s, &format!("/projects/{pid}/repository/tree?path=nowhere")).await;
    assert_eq!(status, 404);

    let (_, commits) = get(&s, &format!("/projects/{pid}/repository/commits")).await;
    let titles: Vec<&str> = commits
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, vec!["docs: again", "files"]);
    let (_, ci_only) = get(&s, &format!("/projects/{pid}/repository/commits?path=ci/build.yml")).await;
    assert_eq!(ci_only.as_array().unwrap().len(), 1, "only the commit that added it");
    let (_, paged) = get(&s, &format!("/projects/{pid}/repository/commits?per_page=1&page=2")).await;
    assert_eq!(paged[0]["title"], "files");
    let (status, c) = get(&s, &format!("/projects/{pid}/repository/commits/v1.0")).await;
    assert_eq!((status, c["title"].as_str()), (200, Some("files")));

    // A Guest of a private project may not read its code.
    let (uid, guest) = s.user("gina").await;
    s.add_member(pid, uid, 10).await;
    let (status, _) = send(s.as_token(&guest, Method::GET, &format!("/projects/{pid}/repository/tree"))).await;
    assert_eq!(status, 403);
}
