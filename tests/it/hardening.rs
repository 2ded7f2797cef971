//! Hardening: failed sign-ins and (when configured) failed triggers are rate-limited per client
//! with GitLab's 429 `Retry later`, without slowing valid callers.

use crate::support::{ROOT_TOKEN, Repo, Server, send};

#[tokio::test]
async fn failed_sign_ins_are_throttled_by_default() {
    let s = Server::start_with(&["--concurrent", "0", "--sign-in-rate-limit", "3"]);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let attempt = |password: &'static str| {
        let client = client.clone();
        let base = s.base.clone();
        async move {
            let form = client.get(format!("{base}/users/sign_in")).send().await.unwrap();
            let cookie = form
                .headers()
                .get_all("set-cookie")
                .iter()
                .map(|h| h.to_str().unwrap().split(';').next().unwrap().to_string())
                .find(|c| c.starts_with("_spur_csrf="))
                .unwrap_or_default();
            let page = form.text().await.unwrap();
            let marker = "name=\"authenticity_token\" value=\"";
            let csrf = page
                .find(marker)
                .map(|i| page[i + marker.len()..i + marker.len() + 64].to_string())
                .unwrap_or_default();
            client
                .post(format!("{base}/users/sign_in"))
                .header("Cookie", cookie)
                .form(&[
                    ("authenticity_token", csrf.as_str()),
                    ("user[login]", "root"),
                    ("user[password]", password),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    for _ in 0..3 {
        assert_eq!(attempt("wrong-password").await.status(), 200);
    }
    let throttled = attempt("root-password-123").await;
    assert_eq!(throttled.status(), 429);
    assert!(throttled.headers().get("retry-after").is_some());
    assert_eq!(throttled.text().await.unwrap(), "Retry later\n");
    // The API with a valid token is not slowed.
    let (status, _) = send(s.as_token(ROOT_TOKEN, reqwest::Method::GET, "/user")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn failed_triggers_are_throttled_only_when_configured() {
    for (limit, want) in [("0", 404), ("5", 429)] {
        let s = Server::start_with(&["--concurrent", "0", "--trigger-rate-limit", limit]);
        let repo = Repo::new();
        let pid = s.project("demo", repo.path()).await;
        let url = s.api(&format!("/projects/{pid}/trigger/pipeline"));
        for _ in 0..5 {
            let (status, _) = send(s.http.post(&url).form(&[("token", "glptt-wrong"), ("ref", "main")])).await;
            assert_eq!(status, 404);
        }
        let (status, _) = send(s.http.post(&url).form(&[("token", "glptt-wrong"), ("ref", "main")])).await;
        assert_eq!(status, want, "limit {limit}");
    }
}
