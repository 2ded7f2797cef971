//! Idempotency keys on the trigger and pipeline-create endpoints: a repeat of the same request
//! (however encoded) is answered from the first and creates nothing, also after `kill -9`;
//! another request with the key is refused; concurrent repeats create one pipeline; refusals
//! are not remembered.

use crate::support::{ROOT_TOKEN, Repo, Server, send, send_raw};
use reqwest::Method;
use serde_json::{Value, json};

const CONFIG: &str = "job:\n  script: [echo]\n";

async fn count(s: &Server, pid: u64) -> usize {
    let (_, list) = send(s.root(Method::GET, &format!("/projects/{pid}/pipelines?per_page=100"))).await;
    list.as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn a_repeated_trigger_is_answered_from_the_first_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s = Server::start_on(&data, &["--concurrent", "0"]);
    let repo = Repo::with_files(&[(".gitlab-ci.yml", CONFIG)]);
    let pid = s.project("idem", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let url = s.api(&format!("/projects/{pid}/trigger/pipeline"));
    let form = |key: &str, vars: &[(&str, &str)]| {
        let mut f = vec![("token".to_string(), token.clone()), ("ref".into(), "main".into())];
        f.extend(vars.iter().map(|(k, v)| (format!("variables[{k}]"), v.to_string())));
        s.http.post(&url).header("Idempotency-Key", key).form(&f)
    };

    let first = send_raw(form("k-1", &[("A", "1"), ("B", "2")])).await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let again = send_raw(form("k-1", &[("A", "1"), ("B", "2")])).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap()["id"], first["id"]);
    // The same request as JSON, variables in another order: still the same request.
    let as_json = json!({"token": token, "ref": "main", "variables": {"B": "2", "A": "1"}});
    let (status, replay) = send(s.http.post(&url).header("Idempotency-Key", "k-1").json(&as_json)).await;
    assert_eq!((status, &replay["id"]), (201, &first["id"]));
    assert_eq!(count(&s, pid).await, 1);

    // The key with another request is refused; another key creates.
    let (status, body) = send(form("k-1", &[("A", "other")])).await;
    assert_eq!(
        (status, body),
        (
            422,
            json!({"message": "Idempotency-Key was already used for a different request"})
        )
    );
    assert_eq!(send(form("k-2", &[("A", "1"), ("B", "2")])).await.0, 201);
    assert_eq!(count(&s, pid).await, 2);
    // Keys belong to their credential: another token's k-1 is its own.
    let (_, other) = s.trigger_token(ROOT_TOKEN, pid).await;
    let theirs = [("token", other.as_str()), ("ref", "main")];
    assert_eq!(
        send(s.http.post(&url).header("Idempotency-Key", "k-1").form(&theirs))
            .await
            .0,
        201
    );
    assert_eq!(count(&s, pid).await, 3);
    // A refusal is not remembered: the corrected retry with the same key is judged afresh.
    let wrong = [("token", token.as_str()), ("ref", "no-such-branch")];
    assert_eq!(
        send(s.http.post(&url).header("Idempotency-Key", "k-3").form(&wrong))
            .await
            .0,
        400
    );
    assert_eq!(send(form("k-3", &[])).await.0, 201);
    let bad = [("token", token.as_str()), ("ref", "main")];
    let (status, _) = send(s.http.post(&url).header("Idempotency-Key", "").form(&bad)).await;
    assert_eq!(status, 400, "an empty key");
    assert_eq!(count(&s, pid).await, 4);

    // Acknowledged means remembered: after kill -9 the repeat is still a replay.
    s.kill9();
    let s = Server::start_on(&data, &["--concurrent", "0"]);
    let url = s.api(&format!("/projects/{pid}/trigger/pipeline"));
    let repeat = [
        ("token", token.as_str()),
        ("ref", "main"),
        ("variables[A]", "1"),
        ("variables[B]", "2"),
    ];
    let resp = send_raw(s.http.post(&url).header("Idempotency-Key", "k-1").form(&repeat)).await;
    assert_eq!(resp.headers()["idempotent-replayed"], "true");
    assert_eq!(resp.json::<Value>().await.unwrap()["id"], first["id"]);
    assert_eq!(count(&s, pid).await, 4);

    // One key per request; a deleted pipeline is not answered again, the retry creates.
    let twice = s
        .http
        .post(&url)
        .header("Idempotency-Key", "k-1")
        .header("Idempotency-Key", "k-9")
        .form(&repeat);
    assert_eq!(send(twice).await.0, 400);
    let gone = format!("/projects/{pid}/pipelines/{}", first["id"]);
    assert_eq!(send(s.root(Method::DELETE, &gone)).await.0, 204);
    let (status, again) = send(s.http.post(&url).header("Idempotency-Key", "k-1").form(&repeat)).await;
    assert_eq!(status, 201);
    assert_ne!(again["id"], first["id"]);
    // A key never revives a revoked token.
    let (_, triggers) = send(s.root(Method::GET, &format!("/projects/{pid}/triggers"))).await;
    let mine = triggers
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["token"] == token.as_str())
        .unwrap()["id"]
        .clone();
    assert_eq!(
        send(s.root(Method::DELETE, &format!("/projects/{pid}/triggers/{mine}")))
            .await
            .0,
        204
    );
    let (status, _) = send(s.http.post(&url).header("Idempotency-Key", "k-1").form(&repeat)).await;
    assert_eq!(status, 404, "the replay needs a live token");
}

#[tokio::test]
async fn a_hundred_concurrent_retries_of_one_key_create_one_pipeline() {
    let s = Server::start();
    let repo = Repo::with_files(&[(".gitlab-ci.yml", CONFIG)]);
    let pid = s.project("race", repo.path()).await;
    let (_, token) = s.trigger_token(ROOT_TOKEN, pid).await;
    let url = s.api(&format!("/projects/{pid}/trigger/pipeline"));
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let req = s
            .http
            .post(&url)
            .header("Idempotency-Key", "once")
            .form(&[("token", token.as_str()), ("ref", "main")]);
        tasks.push(tokio::spawn(async move { send(req).await }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 201, "{body}");
        ids.insert(body["id"].as_u64().unwrap());
    }
    assert_eq!(ids.len(), 1, "every answer names the one pipeline");
    assert_eq!(count(&s, pid).await, 1);

    // POST /projects/:id/pipeline takes keys too, scoped to the user's token.
    let create = || {
        s.root(Method::POST, &format!("/projects/{pid}/pipeline"))
            .header("Idempotency-Key", "api-1")
            .json(&json!({"ref": "main", "variables": [{"key": "X", "value": "1"}]}))
    };
    let (status, made) = send(create()).await;
    assert_eq!(status, 201, "{made}");
    let replay = send_raw(create()).await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.json::<Value>().await.unwrap()["id"], made["id"]);
    assert_eq!(count(&s, pid).await, 2);
}
