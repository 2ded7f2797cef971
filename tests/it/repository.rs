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

#[tokio::test]
async fn compare_commit_refs_stats_and_archives() {
    let s = Server::start();
    let repo = Repo::with_files(&[("a.txt", "one\ntwo\n"), ("old.txt", "same\n")]);
    let base = repo.sha("main");
    git(repo.path(), &["checkout", "-qb", "topic"]);
    std::fs::write(repo.path().join("a.txt"), "one\n2\nthree\n").unwrap();
    std::fs::write(repo.path().join("new.sh"), "#!/bin/sh\n").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", repo.path().join("link")).unwrap();
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["mv", "old.txt", "renamed.txt"]);
    git(repo.path(), &["commit", "-qm", "topic work"]);
    git(repo.path(), &["tag", "v2"]);
    let head = repo.sha("topic");
    git(repo.path(), &["checkout", "-q", "main"]);
    let pid = s.project("cmp", repo.path()).await;

    let (status, cmp) = get(&s, &format!("/projects/{pid}/repository/compare?from=main&to=topic")).await;
    assert_eq!(status, 200, "{cmp}");
    assert_eq!(cmp["commit"]["id"].as_str(), Some(head.as_str()));
    assert_eq!(cmp["commits"].as_array().map(Vec::len), Some(1));
    let diffs = cmp["diffs"].as_array().unwrap();
    let by_path = |p: &str| diffs.iter().find(|d| d["new_path"] == p).cloned().unwrap_or_default();
    assert_eq!(by_path("a.txt")["diff"], "@@ -1,2 +1,3 @@\n one\n-two\n+2\n+three\n");
    assert_eq!(
        (
            by_path("new.sh")["new_file"].as_bool(),
            by_path("new.sh")["a_mode"].as_str()
        ),
        (Some(true), Some("0"))
    );
    let renamed = by_path("renamed.txt");
    assert_eq!(
        (renamed["renamed_file"].as_bool(), renamed["old_path"].as_str()),
        (Some(true), Some("old.txt"))
    );
    assert_eq!(cmp["compare_same_ref"], false);
    // Abbreviated SHAs and `~N` resolve as in GitLab.
    let short = &head[..8];
    let (status, by_short) = get(
        &s,
        &format!("/projects/{pid}/repository/compare?from=topic~1&to={short}"),
    )
    .await;
    assert_eq!(status, 200, "{by_short}");
    assert_eq!(by_short["commit"]["id"].as_str(), Some(head.as_str()));
    let (_, same) = get(&s, &format!("/projects/{pid}/repository/compare?from=topic&to={head}")).await;
    assert_eq!(same["compare_same_ref"], true, "the same commit by two names");
    let (_, back) = get(&s, &format!("/projects/{pid}/repository/compare?from=topic&to=main")).await;
    assert_eq!(
        back["commits"].as_array().map(Vec::len),
        Some(0),
        "main has nothing topic lacks"
    );
    let (_, straight) = get(
        &s,
        &format!("/projects/{pid}/repository/compare?from=topic&to=main&straight=true"),
    )
    .await;
    assert!(
        !straight["diffs"].as_array().unwrap().is_empty(),
        "a straight diff shows topic undone"
    );
    assert_eq!(
        get(&s, &format!("/projects/{pid}/repository/compare?from=main&to=nope")).await,
        (404, serde_json::json!({"message": "404 Ref Not Found"}))
    );
    assert_eq!(
        get(&s, &format!("/projects/{pid}/repository/compare?from=--output=/tmp/x")).await,
        (400, serde_json::json!({"error": "to is missing"}))
    );

    // A symbolic link reads as its target's path; it is never followed.
    let (status, link) = get(&s, &format!("/projects/{pid}/repository/files/link?ref=topic")).await;
    assert_eq!(status, 200, "{link}");
    assert_eq!(
        link["content"], "L2V0Yy9wYXNzd2Q=",
        "base64 of /etc/passwd, the link's text"
    );
    let (status, refs) = get(&s, &format!("/projects/{pid}/repository/commits/{base}/refs")).await;
    assert_eq!(status, 200, "{refs}");
    let names: Vec<(String, String)> = refs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["type"].as_str().unwrap().into(), r["name"].as_str().unwrap().into()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("branch".into(), "main".into()),
            ("branch".into(), "topic".into()),
            ("tag".into(), "v2".into())
        ]
    );
    let (_, tags_only) = get(&s, &format!("/projects/{pid}/repository/commits/{head}/refs?type=tag")).await;
    assert_eq!(tags_only, serde_json::json!([{"type": "tag", "name": "v2"}]));

    let (status, commit) = get(&s, &format!("/projects/{pid}/repository/commits/{head}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        commit["stats"],
        serde_json::json!({"additions": 4, "deletions": 1, "total": 5})
    );
    assert_eq!(commit["parent_ids"], serde_json::json!([base]));
    let (_, bare) = get(&s, &format!("/projects/{pid}/repository/commits/{head}?stats=false")).await;
    assert!(bare.get("stats").is_none());

    let archive = s
        .root(
            Method::GET,
            &format!("/projects/{pid}/repository/archive.tar.gz?sha=topic"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(archive.status(), 200);
    let disposition = archive.headers()["content-disposition"].to_str().unwrap().to_string();
    assert_eq!(disposition, format!("attachment; filename=\"cmp-topic-{head}.tar.gz\""));
    let bytes = archive.bytes().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.tgz"), &bytes).unwrap();
    git(dir.path(), &["init", "-q"]);
    let listing = std::process::Command::new("tar")
        .args(["-tzf", "a.tgz"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout).to_string();
    assert!(listing.contains(&format!("cmp-topic-{head}/new.sh")), "{listing}");
    let zip = s
        .root(Method::GET, &format!("/projects/{pid}/repository/archive.zip"))
        .send()
        .await
        .unwrap();
    assert_eq!(zip.status(), 200);
    assert_eq!(&zip.bytes().await.unwrap()[..2], b"PK");
    let (status, _) = get(&s, &format!("/projects/{pid}/repository/archive?sha=nope")).await;
    assert_eq!(status, 404);
    // One path, bzip2: GitLab names the path in the prefix.
    let bz = s
        .root(
            Method::GET,
            &format!("/projects/{pid}/repository/archive.tar.bz2?sha=topic&path=new.sh"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(bz.status(), 200);
    std::fs::write(dir.path().join("a.tbz"), bz.bytes().await.unwrap()).unwrap();
    let listing = std::process::Command::new("tar")
        .args(["-tjf", "a.tbz"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout).to_string();
    assert!(
        listing.lines().any(|l| l == format!("cmp-topic-{head}-new.sh/new.sh")),
        "{listing}"
    );
    assert!(!listing.contains("a.txt"), "only the path asked for: {listing}");
    for bad in ["../etc", "missing", "--output=x"] {
        let (status, _) = get(&s, &format!("/projects/{pid}/repository/archive?sha=topic&path={bad}")).await;
        assert_eq!(status, 404, "{bad}");
    }
}
