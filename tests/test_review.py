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
from review.stacks import SECRET_PLACEHOLDER, read_stack_file, stack_names
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


def test_secrets_show_as_the_mark_and_never_as_values() -> None:
    config = read_stack_config("dev")
    config[f"{PROJECT}:security"] = {"elastic_password": "configured-elastic-pw"}
    result = render("dev", config, secret_keys=[f"{PROJECT}:security"])
    text = dump(documents(result))
    generated = [f"generated-{r.name}" for r in result.of_type("random:index/randomPassword:RandomPassword")]
    for value in ["configured-elastic-pw", *generated]:
        assert value not in text
    stack = next(yaml.safe_load_all(text))
    assert stack["outputs"]["elastic_password"] == SECRET_MARK
    # A private key goes only into secret inputs: the mark stands where it would be.
    container = next(d for d in yaml.safe_load_all(text) if d.get("name") == "dev-es-0" and d["custom"])
    assert SECRET_MARK in [upload.get("content") for upload in container["inputs"]["uploads"]]


def test_encrypted_stack_values_become_secret_placeholders(tmp_path: Path) -> None:
    """A stack file with `pulumi config set --secret` values renders offline, the values shown as the mark."""
    stack_file = tmp_path / "Pulumi.sealed.yaml"
    config = read_stack_config("dev")
    config[f"{PROJECT}:security"] = {"elastic_password": {"secure": "v1:c2VhbGVk"}, "cert_validity_days": 90}
    stack_file.write_text(yaml.safe_dump({"config": config}))
    values, secret_keys = read_stack_file(stack_file)
    assert values[f"{PROJECT}:security"] == {"elastic_password": SECRET_PLACEHOLDER, "cert_validity_days": 90}
    assert secret_keys == [f"{PROJECT}:security"]
    text = dump(documents(render("dev", values, secret_keys=secret_keys)))
    assert SECRET_PLACEHOLDER not in text and "v1:c2VhbGVk" not in text


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
            assert f"**Elasticsearch node restart:** `{change.name}`" in report
    assert "rolling restart of every pod (pod-template change" in str(
        diffs["prod"].es_node_warnings()[0].es_node_impact
    )
    assert all("task restarted" in str(c.es_node_impact) for c in diffs["staging"].es_node_warnings())
    assert all("replaced (container input change" in str(c.es_node_impact) for c in diffs["lab"].es_node_warnings())


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
        ("dev", "dev-es-0", lambda d: d["inputs"].update(memory=4096), True),
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
        ("prod", "prod-es", lambda d: d["inputs"]["spec"]["volumeClaimTemplates"][0]["spec"].update(x=1), True),
        ("prod", "prod-es", lambda d: d["inputs"]["spec"]["template"]["spec"].update(priorityClassName="x"), True),
        ("prod", "prod-kibana", lambda d: d["inputs"]["spec"]["template"]["spec"].update(priorityClassName="x"), False),
    ],
    ids=[
        "container input",
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
