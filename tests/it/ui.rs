//! The browser UI over plain HTTP: sign-in and its cookie, CSRF checks, what each role may
//! open (404 without access, sign-in redirect for strangers), escaping, the badge, and the live
//! log endpoint. The full browser flow is in `browser.rs`.

use crate::support::{ROOT_TOKEN, Repo, Server, send};
use reqwest::Method;
use reqwest::redirect::Policy;

/// A browser-like client that keeps its cookies by hand (reqwest's store is a feature we skip).
pub(crate) struct Browser {
    pub(crate) http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

impl Browser {
    pub(crate) fn new(s: &Server) -> Browser {
        Browser {
            http: crate::support::http_client_builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            base: s.base.clone(),
            cookies: Vec::new(),
        }
    }

    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    pub(crate) fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, resp: &reqwest::Response) -> Vec<String> {
        let mut raw = Vec::new();
        for h in resp.headers().get_all("set-cookie") {
            let line = h.to_str().unwrap().to_string();
            let (pair, _) = line.split_once(';').unwrap_or((&line, ""));
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.retain(|(name, _)| name != k);
            if !v.is_empty() {
                self.cookies.push((k.to_string(), v.to_string()));
            }
            raw.push(line);
        }
        raw
    }

    pub(crate) async fn get(&mut self, path: &str) -> (u16, String, Option<String>) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header("Cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(&resp);
        let status = resp.status().as_u16();
        let location = resp.headers().get("location").map(|l| l.to_str().unwrap().to_string());
        (status, resp.text().await.unwrap(), location)
    }

    pub(crate) async fn post(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (u16, String, Option<String>, Vec<String>) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        let raw = self.keep(&resp);
        let status = resp.status().as_u16();
        let location = resp.headers().get("location").map(|l| l.to_str().unwrap().to_string());
        (status, resp.text().await.unwrap(), location, raw)
    }

    pub(crate) async fn sign_in(&mut self, login: &str, password: &str) -> (u16, Vec<String>) {
        let (_, page, _) = self.get("/users/sign_in").await;
        let csrf = csrf_of(&page);
        let (status, _, _, raw) = self
            .post(
                "/users/sign_in",
                &[
                    ("authenticity_token", &csrf),
                    ("user[login]", login),
                    ("user[password]", password),
                ],
            )
            .await;
        (status, raw)
    }
}

pub(crate) fn csrf_of(page: &str) -> String {
    let marker = "name=\"authenticity_token\" value=\"";
    let i = page.find(marker).expect("a form with a CSRF token") + marker.len();
    page[i..].split('"').next().unwrap().to_string()
}

async fn setup() -> (Server, Repo, u64) {
    let s = Server::start();
    let repo = Repo::with_files(&[(".gitlab-ci.yml", "build:\n  script: [echo hi]\n")]);
    let pid = s.project("demo", repo.path()).await;
    for (name, level) in [("mia", 40), ("dev", 30)] {
        let (status, user) = send(s.root(Method::POST, "/users").form(&[
            ("username", name),
            ("name", name),
            ("email", &format!("{name}@example.com")),
            ("password", "password123"),
        ]))
        .await;
        assert_eq!(status, 201, "{user}");
        s.add_member(pid, user["id"].as_u64().unwrap(), level).await;
    }
    (s, repo, pid)
}

#[tokio::test]
async fn sign_in_sets_a_safe_session_cookie_and_sign_out_ends_it() {
    let (s, _repo, _) = setup().await;
    let mut b = Browser::new(&s);
    let (status, _, location) = b.get("/").await;
    assert_eq!((status, location.as_deref()), (302, Some("/users/sign_in")));
    let (status, _) = b.sign_in("mia", "wrong-password").await;
    assert_eq!(status, 200, "a wrong password re-renders the form");
    let (_, page, _) = b.get("/users/sign_in").await;
    assert!(!page.contains("Invalid login") || page.contains("Sign in"));
    let (status, raw) = b.sign_in("mia", "password123").await;
    assert_eq!(status, 302);
    let session = raw
        .iter()
        .find(|c| c.starts_with("_spur_session="))
        .expect("a session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax"),
        "{session}"
    );
    assert!(!session.contains("Secure"), "plain http: no Secure flag");
    let (status, page, _) = b.get("/").await;
    assert_eq!(status, 200);
    assert!(page.contains("root/demo"));
    // Sign-out needs the CSRF token, then the old cookie is worthless.
    let old = b.cookie_header();
    let (status, _, _, _) = b.post("/users/sign_out", &[("authenticity_token", "forged")]).await;
    assert_eq!(status, 422);
    let csrf = csrf_of(&page);
    let (status, _, location, _) = b.post("/users/sign_out", &[("authenticity_token", &csrf)]).await;
    assert_eq!((status, location.as_deref()), (302, Some("/users/sign_in")));
    let resp = b
        .http
        .get(format!("{}/", s.base))
        .header("Cookie", old)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302, "the ended session no longer signs in");
}

#[tokio::test]
async fn forms_without_the_csrf_token_change_nothing() {
    let (s, _repo, pid) = setup().await;
    let mut b = Browser::new(&s);
    b.sign_in("mia", "password123").await;
    let (status, body, _, _) = b
        .post(
            "/root/demo/-/triggers",
            &[("trigger[description]", "forged"), ("authenticity_token", "x")],
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (_, triggers) = send(s.root(Method::GET, &format!("/projects/{pid}/triggers"))).await;
    assert_eq!(triggers.as_array().unwrap().len(), 0);
    let (_, page, _) = b.get("/root/demo/-/settings/ci_cd").await;
    let csrf = csrf_of(&page);
    let (status, _, location, _) = b
        .post(
            "/root/demo/-/triggers",
            &[
                ("trigger[description]", "<script>alert(1)</script>"),
                ("authenticity_token", &csrf),
            ],
        )
        .await;
    assert_eq!(status, 302);
    assert!(
        location
            .unwrap()
            .ends_with("/root/demo/-/settings/ci_cd?created=1#created-trigger")
    );
    let (_, page, _) = b.get("/root/demo/-/settings/ci_cd").await;
    assert!(page.contains("Trigger token was created successfully."));
    assert!(
        page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "descriptions are escaped: {page}"
    );
    assert!(!page.contains("<script>alert(1)</script>"));
    let (_, page, _) = b.get("/root/demo/-/settings/ci_cd").await;
    assert!(
        !page.contains("Trigger token was created successfully."),
        "a flash shows once"
    );
}

#[tokio::test]
async fn pages_answer_404_without_access_and_settings_need_maintainer() {
    let (s, _repo, pid) = setup().await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let (status, _) = send(
        s.http
            .post(s.api(&format!("/projects/{pid}/trigger/pipeline")))
            .form(&[("token", token.as_str()), ("ref", "main")]),
    )
    .await;
    assert_eq!(status, 201);
    let (status, outsider) = send(s.root(Method::POST, "/users").form(&[
        ("username", "olga"),
        ("name", "olga"),
        ("email", "olga@example.com"),
        ("password", "password123"),
    ]))
    .await;
    assert_eq!(status, 201, "{outsider}");
    let pages = [
        "/root/demo/-/pipelines",
        "/root/demo/-/pipelines/1",
        "/root/demo/-/jobs",
        "/root/demo/-/jobs/1",
        "/root/demo/-/settings/ci_cd",
        "/root/demo/-/project_members",
    ];
    // Strangers are sent to sign in; outsiders get 404 everywhere, as for a missing project.
    let mut anon = Browser::new(&s);
    for p in pages {
        let (status, _, location) = anon.get(p).await;
        let back = format!("/users/sign_in?redirect_to={}", p.replace('/', "%2F"));
        assert_eq!((status, location.as_deref()), (302, Some(back.as_str())), "{p}");
    }
    let mut olga = Browser::new(&s);
    olga.sign_in("olga", "password123").await;
    for p in pages.iter().chain(&["/root/nope/-/pipelines"]) {
        let (status, page, _) = olga.get(p).await;
        assert_eq!(status, 404, "{p}");
        assert!(page.contains("Page not found"), "{p}");
        assert!(
            page.contains("Sign out") && page.contains("olga"),
            "the 404 keeps the header: {p}"
        );
    }
    let mut dev = Browser::new(&s);
    dev.sign_in("dev", "password123").await;
    for p in pages {
        let (status, _, _) = dev.get(p).await;
        let want = if p.ends_with("settings/ci_cd") { 404 } else { 200 };
        assert_eq!(status, want, "{p}");
    }
    let (_, page, _) = dev.get("/root/demo/-/jobs").await;
    assert!(page.contains("triggered"), "jobs of trigger pipelines carry the label");
    let (_, page, _) = dev.get("/root/demo/-/jobs/1").await;
    assert!(page.contains("Trigger token:") && page.contains(&token[6..10]));
    assert!(!page.contains(&token), "the full token never reaches a job page");
}

#[tokio::test]
async fn the_badge_and_the_log_endpoint() {
    let (s, _repo, pid) = setup().await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    send(
        s.http
            .post(s.api(&format!("/projects/{pid}/trigger/pipeline")))
            .form(&[("token", token.as_str()), ("ref", "main")]),
    )
    .await;
    let mut b = Browser::new(&s);
    b.sign_in("mia", "password123").await;
    let (status, svg, _) = b.get("/root/demo/badges/main/pipeline.svg").await;
    assert_eq!(status, 200);
    assert!(svg.starts_with("<svg") && svg.contains("pipeline: pending"), "{svg}");
    let (status, body, _) = b.get("/root/demo/-/jobs/1/trace.json?cursor=0.-").await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "pending");
    assert_eq!(v["complete"], false);
    let (status, css, _) = b.get("/assets/spur.css").await;
    assert_eq!(status, 200);
    assert!(css.contains(".status-success"));
}

#[tokio::test]
async fn admins_create_users_and_projects_users_manage_tokens_and_members() {
    let (s, repo, pid) = setup().await;
    let mut root = Browser::new(&s);
    root.sign_in("root", "root-password-123").await;
    let (status, page, _) = root.get("/admin/users").await;
    assert_eq!(status, 200);
    let csrf = csrf_of(&page);
    let (status, _, location, _) = root
        .post(
            "/admin/users",
            &[
                ("authenticity_token", &csrf),
                ("user[name]", "Nina"),
                ("user[username]", "nina"),
                ("user[email]", "nina@example.com"),
                ("user[password]", "password123"),
            ],
        )
        .await;
    assert_eq!((status, location.as_deref()), (302, Some("/admin/users")));
    let (_, page, _) = root.get("/admin/users").await;
    assert!(page.contains("User was created.") && page.contains("@nina"), "{page}");
    let (status, _, location, _) = root
        .post(
            "/projects",
            &[
                ("authenticity_token", &csrf),
                ("project[name]", "second"),
                ("project[import_url]", repo.path().to_str().unwrap()),
            ],
        )
        .await;
    assert_eq!((status, location.as_deref()), (302, Some("/root/second")));

    // A Maintainer invites nina as Developer; a Developer may not manage members.
    let mut mia = Browser::new(&s);
    mia.sign_in("mia", "password123").await;
    let (_, page, _) = mia.get("/root/demo/-/project_members").await;
    let csrf = csrf_of(&page);
    assert!(!page.contains("value=\"50\""), "a Maintainer cannot grant Owner");
    let (status, _, _, _) = mia
        .post(
            "/root/demo/-/project_members",
            &[
                ("authenticity_token", &csrf),
                ("username", "nina"),
                ("access_level", "30"),
            ],
        )
        .await;
    assert_eq!(status, 302);
    let (_, members) = send(s.root(Method::GET, &format!("/projects/{pid}/members"))).await;
    assert!(
        members
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["username"] == "nina" && m["access_level"] == 30)
    );
    let mut dev = Browser::new(&s);
    dev.sign_in("dev", "password123").await;
    let (_, page, _) = dev.get("/root/demo/-/project_members").await;
    assert!(!page.contains("Invite a member"));
    let (status, _, _, _) = dev
        .post(
            "/root/demo/-/project_members",
            &[
                ("authenticity_token", &csrf_of(&page)),
                ("username", "olga"),
                ("access_level", "30"),
            ],
        )
        .await;
    assert_eq!(status, 404);

    // nina makes a token (shown once), uses it, revokes it.
    let mut nina = Browser::new(&s);
    nina.sign_in("nina", "password123").await;
    let (_, page, _) = nina.get("/-/user_settings/personal_access_tokens").await;
    let csrf = csrf_of(&page);
    let (status, page, _, _) = nina
        .post(
            "/-/user_settings/personal_access_tokens",
            &[
                ("authenticity_token", &csrf),
                ("personal_access_token[name]", "laptop"),
                ("personal_access_token[scopes][]", "api"),
            ],
        )
        .await;
    assert_eq!(status, 200);
    let i = page.find("id=\"new-token\">").unwrap() + "id=\"new-token\">".len();
    let token = page[i..].split('<').next().unwrap().to_string();
    assert!(token.starts_with("glpat-"), "{token}");
    let (status, me) = send(s.as_token(&token, Method::GET, "/user")).await;
    assert_eq!((status, me["username"].as_str()), (200, Some("nina")));
    let (_, page, _) = nina.get("/-/user_settings/personal_access_tokens").await;
    assert!(
        page.contains("laptop") && !page.contains(&token),
        "the token is shown once"
    );
    let marker = "/-/user_settings/personal_access_tokens/";
    let i = page.find(marker).unwrap() + marker.len();
    let id = page[i..].split('/').next().unwrap().to_string();
    let (status, _, _, _) = nina
        .post(&format!("{marker}{id}/revoke"), &[("authenticity_token", &csrf)])
        .await;
    assert_eq!(status, 302);
    let (status, _) = send(s.as_token(&token, Method::GET, "/user")).await;
    assert_eq!(status, 401);
    let (status, _, _) = nina.get("/admin/users").await;
    assert_eq!(status, 404, "only administrators see the user list");
}

#[tokio::test]
async fn settings_edit_descriptions_flag_invalid_tokens_and_set_the_variables_role() {
    let (s, _repo, pid) = setup().await;
    let (tom_id, tom_token) = s.user("tom").await;
    s.add_member(pid, tom_id, 40).await;
    s.trigger_token(&tom_token, pid).await;
    let (status, _) = send(
        s.root(Method::PUT, &format!("/projects/{pid}/members/{tom_id}"))
            .form(&[("access_level", "20")]),
    )
    .await;
    assert_eq!(status, 200);
    let mut mia = Browser::new(&s);
    mia.sign_in("mia", "password123").await;
    let (_, page, _) = mia.get("/root/demo/-/settings/ci_cd").await;
    assert!(
        page.contains("Trigger user has insufficient permissions to project"),
        "tom's token is invalid now"
    );
    let csrf = csrf_of(&page);
    mia.post(
        "/root/demo/-/triggers",
        &[("trigger[description]", "first"), ("authenticity_token", &csrf)],
    )
    .await;
    let (_, triggers) = send(s.root(Method::GET, &format!("/projects/{pid}/triggers"))).await;
    let mine = triggers
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["description"] == "first")
        .unwrap()["id"]
        .clone();
    let (status, _, _, _) = mia
        .post(
            &format!("/root/demo/-/triggers/{mine}"),
            &[("trigger[description]", "renamed"), ("authenticity_token", &csrf)],
        )
        .await;
    assert_eq!(status, 302);
    let (_, t) = send(s.root(Method::GET, &format!("/projects/{pid}/triggers/{mine}"))).await;
    assert_eq!(t["description"], "renamed");
    let (status, _, _, _) = mia
        .post(
            "/root/demo/-/settings/ci_cd/pipeline_variables",
            &[("minimum_role", "maintainer"), ("authenticity_token", &csrf)],
        )
        .await;
    assert_eq!(status, 302);
    let (_, project) = send(s.root(Method::GET, &format!("/projects/{pid}"))).await;
    assert_eq!(project["ci_pipeline_variables_minimum_override_role"], "maintainer");
}

#[tokio::test]
async fn pipeline_pages_link_upstream_and_downstream_and_settings_manage_the_allowlist() {
    let s = Server::start_with(&["--concurrent", "2"]);
    let a_repo = Repo::with_files(&[(
        ".gitlab-ci.yml",
        "go:\n  trigger: {project: root/beta, strategy: depend}\n",
    )]);
    let b_repo = Repo::with_files(&[(".gitlab-ci.yml", "check:\n  script: [echo ok]\n")]);
    let a = s.project("alpha", a_repo.path()).await;
    let b = s.project("beta", b_repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, a).await;
    let (status, p) = send(
        s.http
            .post(s.api(&format!("/projects/{a}/trigger/pipeline")))
            .form(&[("token", token.as_str()), ("ref", "main")]),
    )
    .await;
    assert_eq!(status, 201);
    let id = p["id"].as_u64().unwrap();
    let start = std::time::Instant::now();
    let down = loop {
        let (_, bridges) = send(s.root(Method::GET, &format!("/projects/{a}/pipelines/{id}/bridges"))).await;
        if let Some(d) = bridges[0]["downstream_pipeline"]["id"].as_u64() {
            break d;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let mut root = Browser::new(&s);
    root.sign_in("root", "root-password-123").await;
    let (_, page, _) = root.get(&format!("/root/alpha/-/pipelines/{id}")).await;
    assert!(
        page.contains(&format!("href=\"/root/beta/-/pipelines/{down}\"")),
        "bridge links downstream"
    );
    let (_, page, _) = root.get(&format!("/root/beta/-/pipelines/{down}")).await;
    assert!(page.contains("Triggered by job") && page.contains(&format!("/root/alpha/-/pipelines/{id}")));
    let (_, page, _) = root.get("/root/beta/-/settings/ci_cd").await;
    assert!(page.contains("No other project is allowed."));
    let csrf = csrf_of(&page);
    let (status, _, _, _) = root
        .post(
            "/root/beta/-/settings/ci_cd/job_token_scope",
            &[("authenticity_token", &csrf), ("project_path", "root/alpha")],
        )
        .await;
    assert_eq!(status, 302);
    let (_, list) = send(s.root(Method::GET, &format!("/projects/{b}/job_token_scope/allowlist"))).await;
    assert_eq!(list.as_array().unwrap().len(), 2, "beta itself and alpha");
    let (status, _, _, _) = root
        .post(
            &format!("/root/beta/-/settings/ci_cd/job_token_scope/{a}"),
            &[("authenticity_token", &csrf)],
        )
        .await;
    assert_eq!(status, 302);
    let (_, list) = send(s.root(Method::GET, &format!("/projects/{b}/job_token_scope/allowlist"))).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn no_dead_ends_project_and_namespace_homes_the_admin_area_raw_logs_and_coming_back_after_sign_in() {
    let (s, _repo, pid) = setup().await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let (status, _) = send(
        s.http
            .post(s.api(&format!("/projects/{pid}/trigger/pipeline")))
            .form(&[("token", token.as_str()), ("ref", "main")]),
    )
    .await;
    assert_eq!(status, 201);
    // Every web_url the API hands out opens a page.
    let (_, project) = send(s.root(Method::GET, &format!("/projects/{pid}"))).await;
    let web_url = project["web_url"].as_str().unwrap().to_string();
    let path = web_url.strip_prefix(&s.base).unwrap().to_string();
    assert_eq!(path, "/root/demo");

    // Signing in from a deep link comes back to it; an unsafe target is ignored.
    let mut mia = Browser::new(&s);
    let (status, _, location) = mia.get("/root/demo/-/jobs/1/raw").await;
    assert_eq!(status, 302);
    let location = location.unwrap();
    assert_eq!(
        location,
        "/users/sign_in?redirect_to=%2Froot%2Fdemo%2F-%2Fjobs%2F1%2Fraw"
    );
    let (_, form, _) = mia.get(&location).await;
    assert!(
        form.contains(r#"name="redirect_to" value="/root/demo/-/jobs/1/raw""#),
        "{form}"
    );
    let csrf = csrf_of(&form);
    let (status, _, location, _) = mia
        .post(
            "/users/sign_in",
            &[
                ("authenticity_token", &csrf),
                ("user[login]", "mia"),
                ("user[password]", "password123"),
                ("redirect_to", "/root/demo/-/jobs/1/raw"),
            ],
        )
        .await;
    assert_eq!((status, location.as_deref()), (302, Some("/root/demo/-/jobs/1/raw")));
    for evil in [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "/..//evil.example",
        "/./x",
    ] {
        let mut b = Browser::new(&s);
        let (_, form, _) = b
            .get(&format!("/users/sign_in?redirect_to={}", evil.replace('/', "%2F")))
            .await;
        assert!(!form.contains("evil.example"), "{evil}");
        let csrf = csrf_of(&form);
        let (_, _, location, _) = b
            .post(
                "/users/sign_in",
                &[
                    ("authenticity_token", &csrf),
                    ("user[login]", "mia"),
                    ("user[password]", "password123"),
                    ("redirect_to", evil),
                ],
            )
            .await;
        assert_eq!(location.as_deref(), Some("/"), "{evil}");
    }

    // The raw log: plain text with the session, and as a download.
    let resp = mia
        .http
        .get(format!("{}/root/demo/-/jobs/1/raw", s.base))
        .header("Cookie", mia.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let resp = mia
        .http
        .get(format!("{}/root/demo/-/jobs/1/raw?download=1", s.base))
        .header("Cookie", mia.cookie_header())
        .send()
        .await
        .unwrap();
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("job-1.log")
    );
    let (_, job, _) = mia.get("/root/demo/-/jobs/1").await;
    assert!(
        !job.contains("/root/demo/-/jobs/1/raw?download=1") && job.contains("id=\"job-waiting\""),
        "a pending job without a log says it waits, and offers no empty download"
    );

    // An empty hosted project says to push first instead of offering a run of a missing branch.
    let (status, _) = send(s.root(Method::POST, "/projects").form(&[("name", "empty")])).await;
    assert_eq!(status, 201);
    let mut root = Browser::new(&s);
    root.sign_in("root", "root-password-123").await;
    let (_, page, _) = root.get("/root/empty/-/pipelines").await;
    assert!(
        page.contains(r#"id="empty-repository""#) && !page.contains("Run pipeline"),
        "{page}"
    );

    // The project's home: clone URL, default branch and recent pipelines; the namespace lists it.
    let (status, home, _) = mia.get("/root/demo").await;
    assert_eq!(status, 200);
    assert!(home.contains(&format!("{}/root/demo.git", s.base)), "{home}");
    assert!(
        home.contains("/root/demo/-/pipelines/1") && home.contains("main"),
        "{home}"
    );
    let (status, _, location) = mia.get("/root/demo/").await;
    assert_eq!((status, location.as_deref()), (301, Some("/root/demo")));
    let (status, ns, _) = mia.get("/root").await;
    assert_eq!(status, 200);
    assert!(ns.contains(r#"href="/root/demo""#), "{ns}");
    let (status, page, _) = mia.get("/nobody-here").await;
    assert_eq!(status, 404);
    assert!(page.contains("Page not found") && page.contains("Sign out"), "{page}");
    let (status, page, _) = mia.get("/no/such/page/at/all").await;
    assert_eq!(status, 404);
    assert!(
        page.contains("Page not found") && page.contains("mia"),
        "a styled 404 with the header"
    );

    // The Admin area has a home, for administrators only.
    let (status, _, _) = mia.get("/admin").await;
    assert_eq!(status, 404);
    let mut root = Browser::new(&s);
    root.sign_in("root", "root-password-123").await;
    let (status, admin, _) = root.get("/admin").await;
    assert_eq!(status, 200);
    for link in ["/admin/users", "/admin/runners", "/admin/application_settings/network"] {
        assert!(admin.contains(link), "{link}");
    }
    assert!(admin.contains("Job isolation") && admin.contains(env!("CARGO_PKG_VERSION")));
    let (status, _, location) = Browser::new(&s).get("/admin").await;
    assert_eq!(
        (status, location.as_deref()),
        (302, Some("/users/sign_in?redirect_to=%2Fadmin"))
    );
}

#[tokio::test]
async fn a_rejected_form_comes_back_with_what_was_entered_and_the_error_beside_the_field() {
    let (s, _repo, _pid) = setup().await;
    let mut mia = Browser::new(&s);
    mia.sign_in("mia", "password123").await;
    let (_, page, _) = mia.get("/root/demo/-/pipelines").await;
    let csrf = csrf_of(&page);
    let (status, page, _, _) = mia
        .post(
            "/root/demo/-/pipelines",
            &[
                ("authenticity_token", &csrf),
                ("ref", "no-such-branch"),
                ("variables[][key]", "DEPLOY_TO"),
                ("variables[][value]", "staging-7"),
            ],
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        page.contains(r#"id="run-error""#) && page.contains("no-such-branch"),
        "{page}"
    );
    assert!(page.contains(r#"value="no-such-branch""#) && page.contains(r#"value="staging-7""#));
    assert!(page.contains(r#"value="DEPLOY_TO""#));

    let (_, page, _) = mia.get("/root/demo/-/settings/ci_cd").await;
    let csrf = csrf_of(&page);
    let (status, page, _, _) = mia
        .post(
            "/root/demo/-/variables",
            &[
                ("authenticity_token", &csrf),
                ("variable[key]", "BAD KEY"),
                ("variable[value]", "kept-value"),
                ("variable[description]", "kept description"),
                ("variable[protected]", "true"),
            ],
        )
        .await;
    assert_eq!(status, 422);
    assert!(page.contains(r#"id="variable-error""#), "{page}");
    assert!(page.contains(r#"value="BAD KEY""#) && page.contains(">kept-value</textarea>"));
    assert!(page.contains(r#"value="kept description""#));
    // Accepted, the description shows beside the key; one over 255 characters is refused.
    let (status, _, _, _) = mia
        .post(
            "/root/demo/-/variables",
            &[
                ("authenticity_token", &csrf),
                ("variable[key]", "DOCUMENTED"),
                ("variable[value]", "v"),
                ("variable[description]", "Where the <deploy> goes"),
            ],
        )
        .await;
    assert_eq!(status, 302);
    let (_, page, _) = mia.get("/root/demo/-/settings/ci_cd").await;
    assert!(
        page.contains("variable-description\">Where the &#60;deploy&#62; goes</small>"),
        "{page}"
    );
    let long = "d".repeat(256);
    let (status, page, _, _) = mia
        .post(
            "/root/demo/-/variables",
            &[
                ("authenticity_token", &csrf),
                ("variable[key]", "TOO_LONG"),
                ("variable[value]", "v"),
                ("variable[description]", &long),
            ],
        )
        .await;
    assert_eq!(status, 422);
    assert!(page.contains("description is too long"), "{page}");
    // Reloading the address the refused form was shown at leads back to the form.
    let (status, _, location) = mia.get("/root/demo/-/variables").await;
    assert_eq!(
        (status, location.as_deref()),
        (302, Some("/root/demo/-/settings/ci_cd#js-cicd-variables-settings"))
    );

    let mut root = Browser::new(&s);
    root.sign_in("root", "root-password-123").await;
    let (_, page, _) = root.get("/admin/users").await;
    let csrf = csrf_of(&page);
    let (status, page, _, _) = root
        .post(
            "/admin/users",
            &[
                ("authenticity_token", &csrf),
                ("user[name]", "Nora"),
                ("user[username]", "nora"),
                ("user[email]", "nora@example.com"),
                ("user[password]", "short7"),
            ],
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        page.contains(r#"id="user-error""#) && page.contains(r#"value="nora@example.com""#),
        "{page}"
    );
    assert!(!page.contains("short7"), "the password is never sent back");

    let (_, page, _) = root.get("/").await;
    let csrf = csrf_of(&page);
    let (status, page, _, _) = root
        .post(
            "/projects",
            &[
                ("authenticity_token", &csrf),
                ("project[name]", "demo"),
                ("project[visibility]", "internal"),
            ],
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        page.contains("has already been taken") && page.contains(r#"value="demo""#),
        "{page}"
    );
    assert!(page.contains(r#"<option value="internal" selected>"#));
}

#[tokio::test]
async fn pages_and_logs_are_gzipped_with_a_csrf_token_masked_afresh_each_time() {
    let (s, _repo, _pid) = setup().await;
    let mut mia = Browser::new(&s);
    mia.sign_in("mia", "password123").await;
    let (_, first, _) = mia.get("/root/demo/-/settings/ci_cd").await;
    let (_, second, _) = mia.get("/root/demo/-/settings/ci_cd").await;
    let (a, b) = (csrf_of(&first), csrf_of(&second));
    assert_ne!(a, b, "the token is masked per response, so compression cannot leak it");
    assert_eq!(a.len(), 256);
    // Either masking still passes the check.
    let (status, _, _, _) = mia
        .post(
            "/root/demo/-/triggers",
            &[("authenticity_token", &a), ("trigger[description]", "one")],
        )
        .await;
    assert_eq!(status, 302);
    let page = mia
        .http
        .get(format!("{}/root/demo/-/settings/ci_cd", s.base))
        .header("Cookie", mia.cookie_header())
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(page.headers()["content-encoding"], "gzip");
    let css = mia
        .http
        .get(format!("{}/assets/spur.css", s.base))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(css.headers()["content-encoding"], "gzip");
    let plain = mia
        .http
        .get(format!("{}/root/demo/-/settings/ci_cd", s.base))
        .header("Cookie", mia.cookie_header())
        .send()
        .await
        .unwrap();
    assert!(
        plain.headers().get("content-encoding").is_none(),
        "only for clients that accept it"
    );
}

#[tokio::test]
async fn the_pipelines_list_nests_children_and_shows_stages_titles_and_warnings() {
    let s = Server::start_with(&[]);
    let config = "stages: [build, test]\nbuild:\n  stage: build\n  script: [echo]\nflaky:\n  stage: test\n  script: [exit 1]\n  allow_failure: true\nchild:\n  stage: test\n  trigger:\n    include: child.yml\n";
    let repo = Repo::with_files(&[(".gitlab-ci.yml", config), ("child.yml", "inner:\n  script: [echo]\n")]);
    let pid = s.project("graph", repo.path()).await;
    let (_, p) = send(
        s.root(Method::POST, &format!("/projects/{pid}/pipeline"))
            .form(&[("ref", "main")]),
    )
    .await;
    let id = p["id"].as_u64().unwrap();
    let done = crate::support::finished_pipeline(&s, pid, id).await;
    assert_eq!(done["status"], "success", "{done}");
    let mut b = Browser::new(&s);
    b.sign_in("root", "root-password-123").await;
    let (_, page, _) = b.get("/root/graph/-/pipelines").await;
    assert!(page.contains("passed with warnings"), "{page}");
    assert!(
        page.contains("title=\"build: success\"") && page.contains("title=\"test: warning\""),
        "{page}"
    );
    assert!(
        page.contains("class=\"commit-title\">files<"),
        "the commit's title: {page}"
    );
    let child = page.find("child pipeline").expect("the child under its parent");
    assert_eq!(page.matches("<tr class=\"child\">").count(), 1);
    assert!(page[..child].contains(&format!("#{id}<")), "{page}");
}
