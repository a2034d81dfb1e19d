"""What the stack remembers of its last `up` (the `cluster_state` output, read back through the engine's
readStackOutputs), and the changes the program refuses or adapts to because of it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pulumi
import pytest
from pulumi.runtime.rpc import UNKNOWN

from escluster.load import ConfigError, read_previous_state
from tests.conftest import rendered
from tests.harness import PROJECT, read_stack_config, render, render_failure

CLUSTER, K8S, KIBANA = f"{PROJECT}:cluster", f"{PROJECT}:kubernetes", f"{PROJECT}:kibana"
PATCH = "kubernetes:core/v1:PersistentVolumeClaimPatch"


def edited(stack: str, edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    config = copy.deepcopy(read_stack_config(stack))
    edit(config)
    return config


def test_the_state_is_exported_once_the_setup_step_reached_the_cluster() -> None:
    state = rendered("prod").outputs["cluster_state"]
    assert state["formed"] is True and state["version"] == "9.5.2" and state["kibana_version"] == "9.5.2"
    assert state["nodes"] == {f"prod-es-{i}": ["master", "data", "ingest"] for i in range(3)}
    assert state["storage"] == {"prod-es": {"size_bytes": 50 * 1024**3, "storage_class": "local-path"}}
    assert "cluster_state" not in rendered("prod").secret_outputs


def test_a_new_stack_reads_no_state() -> None:
    """The mocks answer readStackOutputs with nothing, as the engine does for a stack never deployed."""
    kibana = rendered("prod").named("prod-kibana")
    assert kibana.inputs["spec"]["strategy"]["type"] == "RollingUpdate"


def test_a_kibana_version_change_recreates_kibana() -> None:
    """Two Kibana versions must not run against one cluster at once (ECK switches to Recreate too)."""
    previous = rendered("prod").outputs
    same = render("prod", previous=previous).named("prod-kibana")
    assert same.inputs["spec"]["strategy"]["type"] == "RollingUpdate"
    newer = render("prod", edited("prod", lambda c: c[KIBANA].update(version="9.4.0")), previous=previous)
    assert newer.named("prod-kibana").inputs["spec"]["strategy"]["type"] == "Recreate"


def refused(stack: str, config: dict[str, Any], previous: dict[str, Any], *fragments: str) -> None:
    error, partial = render_failure(stack, config, previous=previous)
    assert isinstance(error, ConfigError), repr(error)
    assert str(error).startswith(f"Pulumi.{stack}.yaml: refused: the running cluster cannot take this change")
    for fragment in fragments:
        assert fragment in str(error)
    assert partial.resources == [], "something was registered before the refusal"


def test_a_smaller_volume_is_refused_before_anything_changes() -> None:
    shrink = edited("prod", lambda c: c[CLUSTER]["node_groups"][0].update(storage="20Gi"))
    refused("prod", shrink, rendered("prod").outputs, "cluster.node_groups[0].storage: 20g is smaller than the 50g")


def test_another_storage_class_is_refused_before_anything_changes() -> None:
    moved = edited("prod", lambda c: c[K8S].update(storage_class="ceph-rbd"))
    refused(
        "prod", moved, rendered("prod").outputs, "kubernetes.storage_class: node group es keeps its data on local-path"
    )


def test_another_cluster_name_is_refused() -> None:
    renamed = edited("lab", lambda c: c[CLUSTER].update(name="lab2"))
    refused("lab", renamed, rendered("lab").outputs, "cluster.name: the stack runs cluster lab")


def test_another_namespace_is_refused() -> None:
    moved = edited("prod", lambda c: c[K8S].update(namespace="search"))
    refused(
        "prod",
        moved,
        rendered("prod").outputs,
        "kubernetes.namespace: the cluster's data claims are in namespace elastic",
    )


def test_a_larger_volume_grows_each_claim_in_place() -> None:
    """volumeClaimTemplates are ignored after creation (immutable); a patch per pod's claim asks for the
    new size, which the StorageClass expands if it allows volume expansion."""
    before = rendered("prod")
    after = render(
        "prod", edited("prod", lambda c: c[CLUSTER]["node_groups"][0].update(storage="80Gi")), previous=before.outputs
    )
    claims = {p.name: p.inputs["spec"]["resources"]["requests"]["storage"] for p in after.of_type(PATCH)}
    assert claims == {f"data-prod-es-{i}": "80Gi" for i in range(3)}
    assert after.named("prod-es").ignore_changes == ["spec.volumeClaimTemplates"]
    unchanged = render("prod", previous=before.outputs)
    assert after.named("prod-es").inputs["spec"]["template"] == unchanged.named("prod-es").inputs["spec"]["template"]


def test_a_legacy_backend_is_asked_by_the_bare_stack_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """A self-managed backend in its legacy layout refuses `organization/project/stack` names (pulumi/pulumi
    pkg/backend/diy legacyReferenceStore); the program asks again by the stack's own name."""
    asked: list[str] = []
    outputs = rendered("dev").outputs

    def invoke(token: str, args: dict[str, str]) -> Any:
        asked.append(args["name"])
        if "/" in args["name"]:
            raise RuntimeError("invalid stack name")
        return SimpleNamespace(value={"outputs": outputs})

    monkeypatch.setattr(pulumi.runtime, "invoke", invoke)
    monkeypatch.setattr(pulumi, "get_stack", lambda: "dev")
    monkeypatch.setattr(pulumi, "get_project", lambda: PROJECT)
    monkeypatch.setattr(pulumi, "get_organization", lambda: "organization")
    state = read_previous_state()
    assert asked == ["organization/elastic-stack/dev", "dev"]
    assert state is not None and state.formed and state.cluster_name == "dev"


def test_a_backend_that_cannot_be_read_is_one_readable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def invoke(token: str, args: dict[str, str]) -> Any:
        raise RuntimeError("backend unreachable")

    monkeypatch.setattr(pulumi.runtime, "invoke", invoke)
    monkeypatch.setattr(pulumi, "get_stack", lambda: "dev")
    with pytest.raises(
        ConfigError, match=r"stack dev: cannot read its last outputs from the backend \(backend unreachable\)"
    ):
        read_previous_state()


def test_a_state_output_this_program_did_not_write_is_an_error() -> None:
    error, partial = render_failure("dev", previous={"cluster_state": {"formed": True}})
    assert isinstance(error, ConfigError)
    assert "the stack output cluster_state is not one this program wrote" in str(error)
    assert partial.resources == []


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_a_failed_setup_step_leaves_the_last_state_in_place(stack: str) -> None:
    """The state is exported from the setup step's result: when the step fails, the program fails before
    exporting it, and the stack keeps what its last successful `up` recorded."""
    error, partial = render_failure(stack, failures={f"{stack}-setup": "setup gave up after 900 seconds"})
    assert "setup gave up" in str(error)
    assert partial.outputs == {}


def upgrade(stack: str) -> dict[str, Any]:
    return edited(stack, lambda c: c[CLUSTER].update(version="9.6.0"))


@pytest.mark.parametrize(
    ("stack", "failing"),
    [
        ("lab-groups", "labg-data-1-gate"),
        ("lab-groups", "labg-master-0-prepare"),
        ("swarm-groups", "swg-master-2-gate"),
        ("k8s-groups", "kg-rolling-roll"),
        ("lab-groups", "labg-kibana-0"),
        ("k8s-groups", "kg-kibana"),
    ],
)
def test_a_failed_step_of_a_change_leaves_the_last_state_in_place(stack: str, failing: str) -> None:
    """The state must not move on while a roll is half done (pulumi/pulumi deployment_executor keeps the
    stack outputs the program sent even when the update fails): every step of the run's changes must have
    passed before the state resolves, so a failed one leaves the last state."""
    formed_state = render(stack, read_stack_config(stack), previous=rendered(stack).outputs).outputs
    error, partial = render_failure(stack, upgrade(stack), previous=formed_state, failures={failing: "gate failed"})
    assert "gate failed" in str(error)
    assert "cluster_state" not in partial.outputs


def test_a_failure_outside_the_cluster_steps_still_shows_in_the_outputs() -> None:
    """The counterpart, so the test above can fail: the harness sees outputs a failed run sent (here
    Kibana's Service, which the state does not depend on)."""
    formed_state = render("k8s-groups", read_stack_config("k8s-groups"), previous=rendered("k8s-groups").outputs)
    error, partial = render_failure(
        "k8s-groups", upgrade("k8s-groups"), previous=formed_state.outputs, failures={"kg-kibana-http": "no room"}
    )
    assert "no room" in str(error)
    assert partial.outputs["cluster_state"]["version"] == "9.6.0"


def test_a_state_written_before_later_keys_existed_is_read() -> None:
    """9cfb054 wrote no seeds, drained or ca: a stack deployed by it must still run."""
    state = copy.deepcopy(dict(rendered("lab").outputs["cluster_state"]))
    for key in ("seeds", "drained", "drained_masters", "ca"):
        state.pop(key)
    result = render("lab", read_stack_config("lab"), previous={"cluster_state": state})
    assert result.outputs["cluster_state"]["ca"] == {"trusted": [1], "issuing": 1}


def unknown_state() -> dict[str, Any]:
    """The last outputs with the state saved unknown, as an invoke hands them to the program."""
    return {**rendered("lab").outputs, "cluster_state": UNKNOWN}


def test_a_state_saved_unknown_is_an_error_naming_the_way_out() -> None:
    """`pulumi up --continue-on-error` or `--target` can save an output unknown; the SDK drops a key whose
    value deserializes to None (pulumi/runtime/rpc.py deserialize_properties), so it looks missing."""
    error, partial = render_failure("lab", previous=unknown_state())
    assert isinstance(error, ConfigError)
    assert "hold no cluster_state" in str(error) and "cluster.bootstrapped: true" in str(error)
    assert partial.resources == []


def test_an_adopted_cluster_goes_on_from_an_unknown_state_as_formed() -> None:
    config = edited("lab", lambda c: c[CLUSTER].update(bootstrapped=True))
    result = render("lab", config, previous=unknown_state())
    settings = [f for f in result.of_type("docker:index/container:Container") if f.name.startswith("lab-es")]
    assert settings and all("initial_master_nodes" not in str(c.inputs) for c in settings)
    assert result.outputs["cluster_state"]["formed"] is True


def test_a_failed_claim_patch_leaves_the_last_state_in_place() -> None:
    """Growing `storage` records the new size only once every claim took it; otherwise the next run
    would see nothing to grow and never retry."""
    before = render("prod", read_stack_config("prod"), previous=rendered("prod").outputs)
    bigger = edited("prod", lambda c: c[CLUSTER]["node_groups"][0].update(storage="80Gi"))
    error, partial = render_failure(
        "prod",
        bigger,
        previous=before.outputs,
        failures={"data-prod-es-1": "the StorageClass does not allow expansion"},
    )
    assert "does not allow expansion" in str(error)
    assert "cluster_state" not in partial.outputs
