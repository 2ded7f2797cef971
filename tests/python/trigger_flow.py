"""python-gitlab against spur: triggers CRUD, trigger_pipeline, pipelines and variables."""
import os
import sys
import warnings

import gitlab

warnings.simplefilter("error")  # pagination or base-URL warnings from python-gitlab fail the test

url, token, path = os.environ["SPUR_URL"], os.environ["SPUR_TOKEN"], os.environ["SPUR_PROJECT"]
gl = gitlab.Gitlab(url, private_token=token)
gl.auth()
assert gl.user.username == "root", gl.user
assert gl.version()[0] == "17.11.0", gl.version()

project = gl.projects.get(path)
assert project.path_with_namespace == path

# python-gitlab's own functional test: create, list contains it, delete
trigger = project.triggers.create({"description": "trigger1"})
assert trigger.token.startswith("glptt-") and len(trigger.token) == 46
assert trigger in project.triggers.list()
trigger.description = "renamed"
trigger.save()
assert project.triggers.get(trigger.id).description == "renamed"

for i in range(25):
    project.triggers.create({"description": f"bulk {i}"})
everything = project.triggers.list(get_all=True)
assert len(everything) == 26, len(everything)
assert len(list(project.triggers.list(iterator=True, per_page=10))) == 26

# the trigger call from GitLab's docs, anonymous with a lazy project
anon = gitlab.Gitlab(url)
lazy = anon.projects.get(project.id, lazy=True)
pipeline = lazy.trigger_pipeline("main", trigger.token, variables={"DEPLOY_ENV": "staging"})
assert pipeline.id and pipeline.project_id == project.id
assert pipeline.source == "trigger" if hasattr(pipeline, "source") else True

fetched = project.pipelines.get(pipeline.id)
assert fetched.ref == "main" and fetched.status == "pending" and fetched.source == "trigger"
variables = {v.key: v for v in fetched.variables.list()}
assert variables["DEPLOY_ENV"].value == "staging"
assert variables["TRIGGER_PAYLOAD"].variable_type == "file"
jobs = fetched.jobs.list(get_all=True)
assert [j.name for j in jobs] == ["test"], [j.name for j in jobs]
assert jobs[0].stage == "test" and jobs[0].pipeline["id"] == pipeline.id

# errors come back as python-gitlab exceptions with GitLab's codes and messages
try:
    lazy.trigger_pipeline("no-such-ref", trigger.token)
    sys.exit("expected a 400")
except gitlab.exceptions.GitlabCreateError as e:
    assert e.response_code == 400, e.response_code
    assert "Reference not found" in str(e.error_message), e.error_message
try:
    lazy.trigger_pipeline("main", "glptt-" + "0" * 40)
    sys.exit("expected a 404")
except gitlab.exceptions.GitlabCreateError as e:
    assert e.response_code == 404, e.response_code

assert any(p.id == pipeline.id for p in project.pipelines.list(get_all=True))
trigger.delete()
try:
    lazy.trigger_pipeline("main", trigger.token)
    sys.exit("a revoked token must not work")
except gitlab.exceptions.GitlabCreateError as e:
    assert e.response_code == 404
assert trigger not in project.triggers.list(get_all=True)
print("python-gitlab flow OK")
