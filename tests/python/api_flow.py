"""python-gitlab against spur's wider API: repository branches, tags, files, tree and commits,
pipelines/latest and filters, group members and variables, artifacts by ref, PAT rotation,
commit statuses, compare, archives, badges, releases, test reports, environments, pipeline schedules, job erase, keyset pagination, job token scope."""
import base64
import os
import time
import warnings

import gitlab

warnings.simplefilter("error")  # pagination or base-URL warnings from python-gitlab fail the test

url, token, path = os.environ["SPUR_URL"], os.environ["SPUR_TOKEN"], os.environ["SPUR_PROJECT"]
gl = gitlab.Gitlab(url, private_token=token)
gl.auth()
project = gl.projects.get(path)

# Repository: read
branches = [b.name for b in project.branches.list(get_all=True)]
assert "main" in branches, branches
main = project.branches.get("main")
assert main.default and main.commit["id"], main
f = project.files.get(file_path=".gitlab-ci.yml", ref="main")
assert b"script" in base64.b64decode(f.content), f.content
raw = project.files.raw(file_path=".gitlab-ci.yml", ref="main")
assert b"script" in raw, raw
tree = project.repository_tree(ref="main", get_all=True)
assert any(e["path"] == ".gitlab-ci.yml" for e in tree), tree
commits = project.commits.list(ref_name="main", get_all=True)
assert commits and commits[0].title, commits
assert project.commits.get("main").id == commits[0].id

# Repository: write (branches and tags run push pipelines)
branch = project.branches.create({"branch": "py/feature", "ref": "main"})
assert branch.name == "py/feature"
tag = project.tags.create({"tag_name": "v9.9", "ref": "main", "message": "from python"})
assert tag.name == "v9.9" and "python" in tag.message
project.tags.delete("v9.9")
project.branches.delete("py/feature")
assert "py/feature" not in [b.name for b in project.branches.list(get_all=True)]

# Pipelines: latest, filters, booleans as python-gitlab sends them
pipeline = project.pipelines.create({"ref": "main"})
deadline = time.time() + 60
while project.pipelines.get(pipeline.id).status not in ("success", "failed", "canceled"):
    assert time.time() < deadline, "the pipeline never finished"
    time.sleep(0.2)
assert project.pipelines.latest(ref="main").id == pipeline.id
assert [p.id for p in project.pipelines.list(scope="finished", get_all=True)][0] == pipeline.id
jobs = pipeline.jobs.list(include_retried=True, get_all=True)
assert jobs, jobs

# Unit test reports
report = pipeline.test_report.get()
assert (report.total_count, report.failed_count) == (2, 1), report
assert report.test_suites[0]["name"] == "build", report
assert report.test_suites[0]["test_cases"][0]["system_output"] == "no", report
summary = pipeline.test_report_summary.get()
assert summary.total["count"] == 2 and summary.test_suites[0]["build_ids"], summary

# Environments and deployments
env = [e for e in project.environments.list(get_all=True) if e.name == "py-env"][0]
assert env.external_url == "https://py.example.com" and env.state == "available", env
deployments = project.deployments.list(environment="py-env", get_all=True)
assert deployments and all(d.status in ("success", "created", "running") for d in deployments), [d.status for d in deployments]
assert project.deployments.get(deployments[0].id).deployable["name"] == "build"
env.stop()
assert project.environments.get(env.id).state == "stopped"
project.environments.delete(env.id)
made = project.environments.create({"name": "py-made", "external_url": "https://made.example.com"})
assert made.tier == "other", made

# Pipeline schedules
sched = project.pipelineschedules.create({"description": "nightly", "ref": "main", "cron": "0 3 * * *",
                                          "cron_timezone": "Europe/Berlin"})
assert sched.ref == "refs/heads/main" and sched.next_run_at.endswith(":00:00.000Z"), sched
sched.variables.create({"key": "NIGHTLY", "value": "1"})
var = sched.variables.create({"key": "LATER", "value": "x"})
var.value = "y"
var.save()
sched.variables.delete("LATER")
sched = project.pipelineschedules.get(sched.id)
assert [v["key"] for v in sched.attributes["variables"]] == ["NIGHTLY"], sched.attributes
sched.cron = "30 4 * * 1-5"
sched.save()
assert project.pipelineschedules.get(sched.id).cron == "30 4 * * 1-5"
try:
    project.pipelineschedules.create({"description": "bad", "ref": "main", "cron": "* * *"})
    raise AssertionError("a bad cron was accepted")
except gitlab.exceptions.GitlabCreateError as e:
    assert e.response_code == 400 and "cron" in str(e.error_message), e.error_message
sched_id = sched.id
sched.play()  # python-gitlab keeps GitLab's answer ({"message": ...}) as the object's attributes
sched = project.pipelineschedules.get(sched_id)
deadline = time.time() + 30
while not sched.pipelines.list(get_all=True):
    assert time.time() < deadline, "the played schedule made no pipeline"
    time.sleep(0.2)
sched.take_ownership()
assert [s.id for s in project.pipelineschedules.list(scope="active", get_all=True)] == [sched.id]
sched.delete()
assert project.pipelineschedules.list(get_all=True) == []

# Artifacts by ref
data = project.artifacts.raw("main", "out/result.txt", "build")
assert data == b"built\n", data
archive = project.artifacts.download("main", "build")
assert archive[:2] == b"PK"

# Groups: members and variables
group = gl.groups.create({"name": "Py Group", "path": "py-group"})
user = gl.users.create({"email": "py@example.com", "username": "pyuser", "name": "Py", "password": "py-password-123"})
member = group.members.create({"user_id": user.id, "access_level": gitlab.const.AccessLevel.DEVELOPER})
assert member.access_level == 30
assert [m.username for m in group.members.list(get_all=True)].count("pyuser") == 1
var = group.variables.create({"key": "GROUP_VAR", "value": "group-value"})
assert group.variables.get("GROUP_VAR").value == "group-value"
var.value = "changed"
var.save()
assert group.variables.get("GROUP_VAR").value == "changed"
group.variables.delete("GROUP_VAR")
group.members.delete(user.id)

# Personal access tokens: list, self, rotate
pat = user.personal_access_tokens.create({"name": "py", "scopes": ["api"]})
gl_user = gitlab.Gitlab(url, private_token=pat.token)
me = gl_user.personal_access_tokens.get("self")
assert me.name == "py"
rotated = me.rotate()
assert rotated["token"] != pat.token
gl_new = gitlab.Gitlab(url, private_token=rotated["token"])
gl_new.auth()
assert gl_new.user.username == "pyuser"
try:
    gl_user.auth()
    raise AssertionError("the rotated token still works")
except gitlab.exceptions.GitlabAuthenticationError:
    pass

# Commit statuses: an external system reports on the head of main
head = project.commits.get("main")
status = head.statuses.create({"state": "running", "name": "py-ci", "target_url": "https://ci.example/1"})
assert status.status == "running", status
status = head.statuses.create({"state": "success", "name": "py-ci", "coverage": 91.5})
assert status.status == "success" and status.coverage == 91.5, status
assert "py-ci" in [s.name for s in head.statuses.list(get_all=True)]
refs = head.refs(type="branch")
assert {"type": "branch", "name": "main"} in refs, refs

# Compare and archives
cmp = project.repository_compare("main", "main")
assert cmp["commits"] == [] and cmp["compare_same_ref"], cmp
archive = project.repository_archive(sha="main", format="zip")
assert archive[:2] == b"PK"

# Badges
badge = project.badges.create({"link_url": "https://x/%{project_path}", "image_url": "https://x/%{default_branch}.svg"})
assert badge.rendered_link_url.endswith("/" + path), badge
assert badge.rendered_image_url == "https://x/main.svg"
project.badges.delete(badge.id)

# Releases: a new tag cut from main, links, an edit, the list, a delete that keeps the tag
release = project.releases.create({"tag_name": "v8.0", "ref": "main", "name": "Eight", "description": "notes",
                                   "assets": {"links": [{"name": "bin", "url": "https://example.com/bin"}]}})
assert release.tag_name == "v8.0" and release.commit["id"] == main.commit["id"], release
release = project.releases.get("v8.0")
link = release.links.create({"name": "docs", "url": "https://example.com/docs", "link_type": "runbook"})
assert {l.name for l in release.links.list(get_all=True)} == {"bin", "docs"}
release.links.delete(link.id)
release.description = "new notes"
release.save()
assert project.releases.get("v8.0").description == "new notes"
assert [r.tag_name for r in project.releases.list(get_all=True)] == ["v8.0"]
project.releases.delete("v8.0")
assert project.tags.get("v8.0").name == "v8.0"
project.tags.delete("v8.0")

# Erasing a finished job
job = project.jobs.get(jobs[0].id)
job.erase()
assert project.jobs.get(job.id).erased_at

# Keyset pagination, as python-gitlab iterates it
ids = [p.id for p in gl.projects.list(pagination="keyset", order_by="id", sort="asc", per_page=1, iterator=True)]
assert project.id in ids and ids == sorted(ids), ids

# The job token scope
scope = project.job_token_scope.get()
scope.enabled = False
scope.save()
assert project.job_token_scope.get().inbound_enabled is False
scope.enabled = True
scope.save()

print("python-gitlab api flow OK")
