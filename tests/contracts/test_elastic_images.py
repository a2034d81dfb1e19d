"""Contracts of the Elasticsearch and Kibana images: what their entrypoints read, which user runs them,
what that user can read of the files the engines give it, and how Kibana's keystore tool parses values."""

from __future__ import annotations

import base64
import copy
import json

import pytest

from escluster.scripts import KIBANA_DOCKER, KIBANA_SECRET_DIR, kibana_start_script
from tests.conftest import rendered
from tests.contracts.conditions import ELASTICSEARCH_USER, KIBANA_USER, ProvidedFile
from tests.contracts.steps import setup_steps
from tests.contracts.workloads import ALL_STACKS, ELASTICSEARCH, KIBANA, processes
from tests.harness import Render

# elastic/elasticsearch `distribution/src/bin/elasticsearch-env-from-file`: the variables it handles.
FILE_VARIABLES = ("ELASTIC_PASSWORD_FILE", "KEYSTORE_PASSWORD_FILE")
FILE_MODES = (0o400, 0o600)


def check_file_variables(render: Render) -> None:
    """elastic/elasticsearch `distribution/src/bin/elasticsearch-env-from-file` (sourced by the image's
    `docker-entrypoint.sh`): for ELASTIC_PASSWORD_FILE and KEYSTORE_PASSWORD_FILE, the entrypoint exits
    unless the file exists, `stat -L -c %a` is exactly 400 or 600, and `cat` can read it as the image's
    user; and it exits when the variable is set together with the one it names."""
    for process in processes(render):
        if process.image != ELASTICSEARCH:
            continue
        for variable in FILE_VARIABLES:
            path = process.env.get(variable)
            if variable not in process.env:
                continue
            assert variable.removesuffix("_FILE") not in process.env, f"{process.name}: both {variable} and its value"
            file = process.files.get(str(path))
            assert file is not None, f"{process.name}: {variable} names {path}, which the engine does not provide"
            assert file.mode in FILE_MODES, (
                f"{process.name}: {path} has mode {file.mode:o}; the entrypoint wants 400 or 600"
            )
            assert process.user.can_read(file), (
                f"{process.name}: {path} belongs to {file.uid}:{file.gid}; uid {process.user.uid} cannot read it"
            )


def check_files_readable(render: Render) -> None:
    """Every file the engine gives an Elasticsearch or Kibana process is readable by the user it runs as
    (the images' users, in tests/contracts/conditions.py; owners and modes as each engine sets them)."""
    for process in processes(render):
        for path, file in process.files.items():
            assert process.user.can_read(file), (
                f"{process.name}: {path} ({file.uid}:{file.gid} {file.mode:o}) is unreadable for "
                f"uid {process.user.uid} gid {process.user.gid} groups {sorted(process.user.groups)}"
            )


def keystore_add_reads(content: str) -> object:
    """What elastic/kibana `src/cli_keystore/add.js` stores for a value read with `--stdin`:
    `value.trim()`, then `JSON.parse` when it parses."""
    value = content.strip()
    try:
        parsed: object = json.loads(value)
    except json.JSONDecodeError:
        return value
    return parsed


def kibana_system_password(render: Render) -> str:
    """The password the setup step gives kibana_system."""
    step = setup_steps(render)[0]
    if step.stdin:
        body = step.stdin.splitlines()[2]
    else:
        body = next(f.content for f in step.files.values() if f.path.endswith("kibana_system.json"))
    password = json.loads(body)["password"]
    assert isinstance(password, str)
    return password


def check_kibana_keystore_values(render: Render) -> None:
    """elastic/kibana `src/cli_keystore/add.js`: `kibana-keystore add --stdin` trims the value and stores
    `JSON.parse(value)` when it parses, so a raw `123456` would be the number 123456. Every value Kibana's
    start script adds must come back as a string, and `elasticsearch.password` as exactly the password
    the setup step gives kibana_system."""
    expected = kibana_system_password(render)
    for process in processes(render):
        if process.image != KIBANA:
            continue
        secrets = {path: file for path, file in process.files.items() if path.startswith(KIBANA_SECRET_DIR)}
        assert len(secrets) == 4, f"{process.name}: the keystore files are {sorted(secrets)}"
        for path, file in secrets.items():
            stored = keystore_add_reads(file.content)
            assert isinstance(stored, str), f"{process.name}: {path} would be stored as {type(stored).__name__}"
        stored = keystore_add_reads(secrets[f"{KIBANA_SECRET_DIR}/elasticsearch.password"].content)
        assert stored == expected, f"{process.name}: the keystore's password is not the one the setup step sets"


def check_commands_keep_the_images_entrypoints(render: Render) -> None:
    """The images' ENTRYPOINT and CMD (elastic/dockerfiles, generated from elastic/elasticsearch
    `Dockerfile.default` and elastic/kibana `docker_generator`): Elasticsearch `tini --
    docker-entrypoint.sh` with CMD `eswrapper`, where the entrypoint loads `*_FILE` variables and starts
    the node; Kibana `tini --` with CMD `kibana-docker`. A node keeps both (no command of ours); Kibana
    replaces only the CMD (Docker `command`, swarm and Kubernetes `args`) with a script that ends by
    exec'ing the image's CMD, so tini stays PID 1 and forwards signals."""
    for process in processes(render):
        if process.role == "node":
            assert not process.command, f"{process.name}: overrides the image's command {process.command}"
        if process.role == "kibana":
            assert process.command == ["bash", "-c", kibana_start_script()], f"{process.name}: {process.command}"
            assert kibana_start_script().rstrip().endswith(f"exec {KIBANA_DOCKER}")
            if process.resource.type.startswith("kubernetes:"):
                container = process.resource.inputs["spec"]["template"]["spec"]["containers"][0]
                assert "command" not in container, f"{process.name}: `command` replaces tini; use `args`"


CONTRACTS = {
    "*_FILE variables": check_file_variables,
    "files readable by the image's user": check_files_readable,
    "Kibana keystore values": check_kibana_keystore_values,
    "image entrypoints kept": check_commands_keep_the_images_entrypoints,
}


@pytest.mark.parametrize("stack", ALL_STACKS)
@pytest.mark.parametrize("contract", list(CONTRACTS), ids=str)
def test_stack_keeps_the_image_contract(stack: str, contract: str) -> None:
    CONTRACTS[contract](rendered(stack))


# ---- each contract fails when it is broken ---------------------------------------------------------


def upload(path: str, content: str, mode: str) -> dict[str, str]:
    return {"file": path, "content": content, "permissions": mode}


def dev_node_with_password_file(mode: str) -> Render:
    broken = copy.deepcopy(rendered("dev"))
    node = broken.named("dev-es-0")
    node.inputs["envs"].append("ELASTIC_PASSWORD_FILE=/run/secrets/elastic_password")
    node.inputs["uploads"].append(upload("/run/secrets/elastic_password", "secret-1", mode))
    return broken


def test_a_password_file_with_mode_0440_stops_the_entrypoint() -> None:
    """The original defect: ELASTIC_PASSWORD_FILE uploaded 0440."""
    with pytest.raises(AssertionError, match="has mode 440; the entrypoint wants 400 or 600"):
        check_file_variables(dev_node_with_password_file("0440"))


def test_a_root_owned_password_file_with_mode_0400_is_unreadable_for_uid_1000() -> None:
    """Mode 0400 alone does not fix Docker: uploads are root:root (no owner in the provider's tar header)."""
    with pytest.raises(AssertionError, match="belongs to 0:0; uid 1000 cannot read it"):
        check_file_variables(dev_node_with_password_file("0400"))


def test_a_swarm_secret_owned_by_uid_1000_with_mode_0400_keeps_the_contract() -> None:
    """What would satisfy the entrypoint where an engine can set the owner: a swarm secret with
    `file_uid: 1000` and mode 0400."""
    fixed = copy.deepcopy(rendered("staging"))
    service = fixed.named("staging-es-0")
    spec = service.inputs["taskSpec"]["containerSpec"]
    spec["env"]["ELASTIC_PASSWORD_FILE"] = "/usr/share/elasticsearch/config/users"
    for secret in spec["secrets"]:
        if secret["fileName"].endswith("/users"):
            secret["fileMode"] = 0o400
            secret["fileUid"] = "1000"
    check_file_variables(fixed)
    for secret in spec["secrets"]:
        if secret["fileName"].endswith("/users"):
            secret["fileMode"] = 0o440
    with pytest.raises(AssertionError, match="has mode 440"):
        check_file_variables(fixed)


def test_a_secret_file_only_its_root_owner_may_read_is_caught() -> None:
    broken = copy.deepcopy(rendered("dev"))
    for item in broken.named("dev-es-0").inputs["uploads"]:
        if item["file"].endswith("/config/users"):
            item["permissions"] = "0400"
    with pytest.raises(AssertionError, match=r"dev-es-0/main: .*/config/users \(0:0 400\) is unreadable"):
        check_files_readable(broken)


def test_a_kubernetes_secret_volume_only_root_may_read_is_caught() -> None:
    broken = copy.deepcopy(rendered("prod"))
    for volume in broken.named("prod-es").inputs["spec"]["template"]["spec"]["volumes"]:
        if volume["name"] == "file-realm":
            volume["secret"]["defaultMode"] = 0o400
    with pytest.raises(AssertionError, match=r"/config/users \(0:1000 400\) is unreadable for uid 1000"):
        check_files_readable(broken)


def test_a_raw_numeric_keystore_value_is_caught() -> None:
    broken = copy.deepcopy(rendered("dev"))
    for item in broken.named("dev-kibana-0").inputs["uploads"]:
        if item["file"].endswith("/elasticsearch.password"):
            item["content"] = "123456"
    with pytest.raises(AssertionError, match="would be stored as int"):
        check_kibana_keystore_values(broken)


def test_a_keystore_password_other_than_the_setup_steps_is_caught() -> None:
    broken = copy.deepcopy(rendered("staging"))
    secret = next(
        s for s in broken.of_type("docker:index/secret:Secret") if s.name.startswith("staging-kibana-es-password")
    )
    secret.inputs["data"] = base64.b64encode(json.dumps("other").encode()).decode()
    with pytest.raises(AssertionError, match="not the one the setup step sets"):
        check_kibana_keystore_values(broken)


def test_a_kibana_command_that_replaces_tini_is_caught() -> None:
    broken = copy.deepcopy(rendered("prod"))
    container = broken.named("prod-kibana").inputs["spec"]["template"]["spec"]["containers"][0]
    container["command"] = container.pop("args")
    with pytest.raises(AssertionError, match="prod-kibana/kibana"):
        check_commands_keep_the_images_entrypoints(broken)


def test_a_node_command_that_skips_the_entrypoint_is_caught() -> None:
    broken = copy.deepcopy(rendered("lab"))
    broken.named("lab-es-1").inputs["command"] = ["elasticsearch"]
    with pytest.raises(AssertionError, match="lab-es-1/main: overrides the image's command"):
        check_commands_keep_the_images_entrypoints(broken)


def test_the_user_model_reads_as_posix_does() -> None:
    """The permission model the contracts use, on the cases that matter here."""

    def file(uid: int, gid: int, mode: int) -> ProvidedFile:
        return ProvidedFile("/x", "", uid, gid, mode)

    assert ELASTICSEARCH_USER.can_read(file(0, 0, 0o440))  # through group 0
    assert not ELASTICSEARCH_USER.can_read(file(0, 0, 0o400))
    assert ELASTICSEARCH_USER.can_read(file(1000, 0, 0o400))
    assert KIBANA_USER.can_read(file(0, 0, 0o440))  # Kibana's user is in group 0 too
    assert not KIBANA_USER.can_read(file(0, 1001, 0o440))
    assert KIBANA_USER.can_read(file(0, 1001, 0o444))
