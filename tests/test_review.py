"""The offline review tools: byte-identical renders, secrets masked, and diffs that say which changes
replace or restart Elasticsearch nodes (the real program, rendered at a git ref and in a work tree)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from review.__main__ import diff_trees, main
from review.diff import StackDiff, diff_stack
from review.documents import SECRET_MARK, documents, dump
from review.report import markdown
from review.stacks import SECRET_PLACEHOLDER, read_stack_file, secret_placeholder, stack_config, stack_names
from tests.harness import PROJECT, ROOT, read_stack_config, render

PROGRAM = ("__main__.py", "Pulumi.yaml", "escluster", "components", "targets")
STACKS = stack_names(ROOT)
# What each example stack runs as Elasticsearch nodes: containers, swarm services or one StatefulSet.
ES_WORKLOADS = {"dev": 1, "lab": 3, "staging": 3, "prod": 1}


def render_cli(out: Path) -> dict[str, bytes]:
    subprocess.run(
        [sys.executable, "-m", "review", "render", "--out", str(out)], cwd=ROOT, check=True, capture_output=True
    )
    return {path.name: path.read_bytes() for path in sorted(out.iterdir())}


def test_two_renders_of_the_same_tree_are_byte_identical(tmp_path: Path) -> None:
    # Two interpreters, so nothing (hash seeds, caches, task order) is shared between the runs.
    first, second = render_cli(tmp_path / "first"), render_cli(tmp_path / "second")
    assert sorted(first) == [f"{stack}.yaml" for stack in STACKS]
    assert first == second


def test_a_render_is_sorted_yaml_with_one_document_per_resource() -> None:
    result = render("prod")
    docs = list(yaml.safe_load_all(dump(documents(result))))
    resources = [doc for doc in docs if "urn" in doc]
    assert len(resources) == len(result.resources)
    assert [doc["urn"] for doc in resources] == sorted(r.urn for r in result.resources)
    statefulset = next(doc for doc in resources if doc["type"] == "kubernetes:apps/v1:StatefulSet")
    assert set(statefulset) >= {"type", "name", "parent", "inputs", "options"}
    assert statefulset["options"]["dependsOn"] == sorted(statefulset["options"]["dependsOn"])
    assert statefulset["parent"].endswith("ElasticsearchNodeSet::prod-es")


def test_secrets_show_as_their_digest_and_never_as_values() -> None:
    config = read_stack_config("dev")
    config[f"{PROJECT}:security"] = {"elastic_password": "configured-elastic-pw"}
    result = render("dev", config, secret_keys=[f"{PROJECT}:security"])
    text = dump(documents(result))
    generated = [f"generated-{r.name}" for r in result.of_type("random:index/randomPassword:RandomPassword")]
    private_key = result.named("dev-es-0-key").outputs["private_key_pem"]
    for value in ["configured-elastic-pw", *generated, private_key, private_key.splitlines()[1]]:
        assert value not in text
    stack = next(yaml.safe_load_all(text))
    assert SECRET_MARK.match(stack["outputs"]["elastic_password"])
    # A private key goes only into secret inputs: its digest stands where it would be.
    container = next(d for d in yaml.safe_load_all(text) if d.get("name") == "dev-es-0" and d["custom"])
    key_upload = next(u for u in container["inputs"]["uploads"] if u["file"].endswith("dev-es-0.key"))
    assert SECRET_MARK.match(key_upload["content"])


def test_numbers_render_in_their_natural_type() -> None:
    """The engine carries every number as a double; the render writes 2048, not 2048.0."""
    docs = list(yaml.safe_load_all(dump(documents(render("dev")))))
    container = next(d for d in docs if d.get("name") == "dev-es-0" and d["custom"])
    assert container["inputs"]["memory"] == 2048 and isinstance(container["inputs"]["memory"], int)
    assert "2048.0" not in dump(docs)


def test_encrypted_stack_values_become_secret_placeholders(tmp_path: Path) -> None:
    """A stack file with `pulumi config set --secret` values renders offline, the values shown as the mark."""
    stack_file = tmp_path / "Pulumi.sealed.yaml"
    config = read_stack_config("dev")
    config[f"{PROJECT}:security"] = {"elastic_password": {"secure": "v1:c2VhbGVk"}, "cert_validity_days": 90}
    stack_file.write_text(yaml.safe_dump({"config": config}))
    values, secret_keys = read_stack_file(stack_file)
    placeholder = secret_placeholder("v1:c2VhbGVk")
    assert placeholder.startswith(SECRET_PLACEHOLDER) and placeholder != secret_placeholder("v1:b3RoZXI=")
    assert values[f"{PROJECT}:security"] == {"elastic_password": placeholder, "cert_validity_days": 90}
    assert secret_keys == [f"{PROJECT}:security"]
    text = dump(documents(render("dev", values, secret_keys=secret_keys)))
    assert SECRET_PLACEHOLDER not in text and "v1:c2VhbGVk" not in text


def test_stack_config_takes_the_project_defaults_under_the_stack_values(tmp_path: Path) -> None:
    """Pulumi.yaml `config:` (Pulumi's "Project file reference"): `key: value`, `key: {value: …}` and
    `key: {type, default}` give every stack a value; a key the stack file sets replaces it whole."""
    project = {
        "name": "p",
        "runtime": "python",
        "config": {
            "count": 2,
            "exposure": {"value": {"http_port": 9400}},
            "target": {"type": "string", "default": "docker"},
            "label": {"type": "string"},
            "kubernetes:context": "lab",
        },
    }
    (tmp_path / "Pulumi.yaml").write_text(yaml.safe_dump(project))
    (tmp_path / "Pulumi.s.yaml").write_text(yaml.safe_dump({"config": {"p:count": 3, "exposure": {"bind": "x"}}}))
    values, _ = stack_config(tmp_path, "s")
    assert values == {
        "p:count": 3,
        "p:exposure": {"bind": "x"},
        "p:target": "docker",
        "kubernetes:context": "lab",
    }


def test_the_render_reads_the_project_defaults(tmp_path: Path) -> None:
    copy_program(tmp_path)
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    project["config"]["exposure"] = {"value": {"bind_address": "127.0.0.1", "http_port": 9400}}
    (tmp_path / "Pulumi.yaml").write_text(yaml.safe_dump(project))
    stack = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    del stack["config"][f"{PROJECT}:exposure"], stack["config"][f"{PROJECT}:target"]  # both from Pulumi.yaml
    (tmp_path / "Pulumi.dev.yaml").write_text(yaml.safe_dump(stack))
    command = [sys.executable, "-m", "review", "render", "--root", str(tmp_path), "--stack", "dev"]
    run = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
    container = next(d for d in yaml.safe_load_all(run.stdout) if d.get("name") == "dev-es-0" and d["custom"])
    assert container["inputs"]["ports"][0]["external"] == 9400


# --- diffs: the program copied into a git repository, one commit as the base, edits in its work tree


def copy_program(root: Path) -> None:
    for name in PROGRAM:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, root / name)


def commit_all(root: Path, message: str) -> None:
    """A new git repository at `root` holding everything there as one commit."""
    git = ["git", "-C", str(root), "-c", "user.name=review", "-c", "user.email=review@example.invalid"]
    for command in (["init", "-q"], ["add", "."], ["commit", "-qm", message]):
        subprocess.run([*git, *command], check=True)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    copy_program(root)
    for stack in STACKS:
        shutil.copy(ROOT / f"Pulumi.{stack}.yaml", root)
    commit_all(root, "base")
    return root


@contextmanager
def stacks_edited(root: Path, edit: Callable[[dict[str, Any]], None]) -> Iterator[None]:
    """Every stack file of the work tree edited, as a change would; the committed files back afterwards."""
    restore = ["git", "-C", str(root), "checkout", "-q", "--", "."]
    subprocess.run(restore, check=True)
    for stack in STACKS:
        path = root / f"Pulumi.{stack}.yaml"
        document = yaml.safe_load(path.read_text())
        edit(document["config"])
        path.write_text(yaml.safe_dump(document))
    try:
        yield
    finally:
        subprocess.run(restore, check=True)


def diff_after(root: Path, edit: Callable[[dict[str, Any]], None]) -> dict[str, StackDiff]:
    with stacks_edited(root, edit):
        return {diff.stack: diff for diff in diff_trees(root, "HEAD", None)}


def kibana_memory(config: dict[str, Any]) -> None:
    config[f"{PROJECT}:kibana"]["memory"] = "2g"


def smaller_heap(config: dict[str, Any]) -> None:
    for group in config[f"{PROJECT}:cluster"]["node_groups"]:
        group["heap"] = "512m"


def test_an_unchanged_tree_diffs_to_nothing(project: Path) -> None:
    diffs = diff_after(project, lambda config: None)
    assert sorted(diffs) == STACKS
    for diff in diffs.values():
        assert diff.changes == [] and diff.outputs == [] and diff.base_error is None and diff.head_error is None
    assert markdown("t", diffs.values()).count("No changes.") == len(STACKS)


def test_a_kibana_only_change_touches_no_elasticsearch_node(project: Path) -> None:
    diffs = diff_after(project, kibana_memory)
    for stack, diff in diffs.items():
        assert diff.changes, f"{stack}: the Kibana change shows nowhere"
        assert all("kibana" in change.name for change in diff.changes), stack
        assert diff.es_node_warnings() == [], stack
    assert ":warning:" not in markdown("t", diffs.values())


def test_a_heap_change_reports_every_elasticsearch_node_restarting(project: Path) -> None:
    diffs = diff_after(project, smaller_heap)
    report = markdown("t", diffs.values())
    for stack, diff in diffs.items():
        warnings = diff.es_node_warnings()
        assert len(warnings) == ES_WORKLOADS[stack], stack
        for change in warnings:
            assert any("Xmx512m" in str(f.after) for f in change.fields), change
            assert f"**Elasticsearch nodes:** `{change.name}`" in report
    # prod's StatefulSet is OnDelete: the program's roll restarts the pods.
    (statefulset,) = diffs["prod"].es_node_warnings()
    assert statefulset.action == "update (restarts nodes)"
    assert str(statefulset.es_node_impact).startswith("pods restart one at a time (OnDelete) (pod-template change")
    assert all(c.action == "update (restarts node)" for c in diffs["staging"].es_node_warnings())
    assert all(c.action == "replace" for c in diffs["lab"].es_node_warnings())


def test_an_unknown_stack_is_an_error_that_lists_the_stacks(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("diff", "render"):
        base = ["--base", "HEAD"] if command == "diff" else []
        with pytest.raises(SystemExit) as exited:
            main([command, "--root", str(project), *base, "--stack", "nosuch"])
        assert exited.value.code == 2
        error = capsys.readouterr().err
        assert "nosuch" in error and f"the stacks there are: {', '.join(STACKS)}" in error


def test_a_broken_config_in_the_change_is_reported_and_fails_the_command(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def bad_heap(config: dict[str, Any]) -> None:
        if f"{PROJECT}:cluster" in config and config[f"{PROJECT}:cluster"]["name"] == "dev":
            config[f"{PROJECT}:cluster"]["node_groups"][0]["heap"] = "3g"

    with stacks_edited(project, bad_heap):
        status = main(["diff", "--root", str(project), "--base", "HEAD", "--stack", "dev"])
    report = capsys.readouterr().out
    assert status == 1
    assert ":x: **Render failed at this change:**" in report
    assert "Pulumi.dev.yaml" in report and "heap" in report and "more than 50%" in report


# --- what counts as a restart, on real rendered documents changed one field at a time


def rendered_docs(stack: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all(dump(documents(render(stack)))))


def impact_of(stack: str, name: str, edit: Callable[[dict[str, Any]], None]) -> str | None:
    """What editing the custom resource `name` of `stack` does to Elasticsearch nodes."""
    base = rendered_docs(stack)
    head = [dict(doc) for doc in yaml.safe_load_all(dump(base))]
    target = next(doc for doc in head if doc.get("name") == name and doc.get("custom"))
    edit(target)
    changes = [c for c in diff_stack(stack, base, [d for d in head if d]).changes if c.name == name]
    assert len(changes) == 1, changes
    return changes[0].es_node_impact


def remove(doc: dict[str, Any]) -> None:
    doc.clear()


@pytest.mark.parametrize(
    ("stack", "name", "edit", "restarts"),
    [
        ("dev", "dev-es-0", lambda d: d["inputs"].update(memory=4096), False),
        ("dev", "dev-es-0", lambda d: d["inputs"].update(envs=["ES_JAVA_OPTS=-Xms2g -Xmx2g"]), True),
        ("dev", "dev-es-0", lambda d: d["options"].update(protect=True), False),
        ("dev", "dev-es-0", lambda d: d.update(provider="urn:other::id"), True),
        ("dev", "dev-es-0", remove, True),
        ("dev", "dev-kibana-0", lambda d: d["inputs"].update(memory=4096), False),
        ("staging", "staging-es-0", lambda d: d["inputs"].update(labels=[{"label": "team", "value": "search"}]), False),
        ("staging", "staging-es-0", lambda d: d["inputs"]["updateConfig"].update(parallelism=2), False),
        ("staging", "staging-es-0", lambda d: d["inputs"]["taskSpec"]["containerSpec"].update(hostname="x"), True),
        ("prod", "prod-es", lambda d: d["inputs"]["spec"].update(replicas=5), False),
        ("prod", "prod-es", lambda d: d["inputs"]["spec"].update(replicas=2), True),
        ("prod", "prod-es", lambda d: d["inputs"]["spec"].update(replicas=0), True),
        ("prod", "prod-es", lambda d: d["inputs"]["spec"]["updateStrategy"].update(type="RollingUpdate"), False),
        ("prod", "prod-es", lambda d: d["inputs"]["spec"].update(serviceName="other"), True),
        ("prod", "prod-es", lambda d: d["inputs"]["spec"]["volumeClaimTemplates"][0]["spec"].update(x=1), False),
        ("prod", "prod-es", lambda d: d["inputs"]["spec"]["template"]["spec"].update(priorityClassName="x"), True),
        ("prod", "prod-kibana", lambda d: d["inputs"]["spec"]["template"]["spec"].update(priorityClassName="x"), False),
    ],
    ids=[
        "container memory (in place)",
        "container env",
        "container option only",
        "container provider",
        "container removed",
        "kibana container",
        "service labels",
        "service update config",
        "service task spec",
        "statefulset scale out",
        "statefulset scale in",
        "statefulset scale to zero",
        "statefulset update strategy",
        "statefulset immutable field",
        "statefulset claim templates (ignoreChanges)",
        "statefulset pod template",
        "kibana deployment template",
    ],
)
def test_which_changes_restart_an_elasticsearch_node(
    stack: str, name: str, edit: Callable[[dict[str, Any]], None], restarts: bool
) -> None:
    impact = impact_of(stack, name, edit)
    assert (impact is not None) == restarts, impact


def test_a_new_node_is_no_restart() -> None:
    head = rendered_docs("dev")
    base = [doc for doc in head if doc.get("name") != "dev-es-0" or not doc.get("custom")]
    (added,) = [c for c in diff_stack("dev", base, head).changes if c.name == "dev-es-0"]
    assert added.kind == "added" and added.es_node_impact is None


def test_a_base_that_cannot_be_rendered_is_reported(tmp_path: Path) -> None:
    """A base commit with a stack file but no Pulumi project fails that stack's base side, not the command."""
    shutil.copy(ROOT / "Pulumi.dev.yaml", tmp_path)
    commit_all(tmp_path, "stack file only")
    copy_program(tmp_path)
    (diff,) = diff_trees(tmp_path, "HEAD", None)
    assert diff.stack == "dev" and diff.head_error is None
    assert diff.base_error is not None and "Pulumi.yaml" in diff.base_error
    assert ":x: **Render failed at base:**" in markdown("t", [diff])


def test_a_password_set_anew_with_pulumi_config_shows_as_a_changed_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pulumi config set --secret` writes a new ciphertext: the diff shows the secret changed, never a value."""

    def stack_file_with(ciphertext: str) -> None:
        stack = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
        stack["config"][f"{PROJECT}:security"] = {"elastic_password": {"secure": ciphertext}}
        (tmp_path / "Pulumi.dev.yaml").write_text(yaml.safe_dump(stack))

    copy_program(tmp_path)
    stack_file_with("v1:b2xkLXBhc3N3b3Jk")
    commit_all(tmp_path, "base")
    stack_file_with("v1:bmV3LXBhc3N3b3Jk")
    assert main(["diff", "--root", str(tmp_path), "--base", "HEAD", "--stack", "dev"]) == 0
    report = capsys.readouterr().out
    assert "No changes." not in report
    (before,) = [line for line in report.splitlines() if line.startswith("- outputs.elastic_password: ")]
    (after,) = [line for line in report.splitlines() if line.startswith("+ outputs.elastic_password: ")]
    assert SECRET_MARK.match(before.split(": ")[1]) and SECRET_MARK.match(after.split(": ")[1])
    for text in ("v1:b2xk", "v1:bmV3", SECRET_PLACEHOLDER):
        assert text not in report
