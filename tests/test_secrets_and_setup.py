"""Configured passwords stay secret end to end and reach the one place that uses them."""

from __future__ import annotations

import copy
import json

from escluster.scripts import curl_config_user
from escluster.security import ADMIN_USER
from tests import rules
from tests.harness import PROJECT, Render, read_stack_config, render

ELASTIC = "correct-horse-battery"
KIBANA = 'kib"ana\\pass'


def configured_render() -> Render:
    config = copy.deepcopy(read_stack_config("dev"))
    config[f"{PROJECT}:security"] = {"elastic_password": ELASTIC, "kibana_system_password": KIBANA}
    return render("dev", config, secret_keys=[f"{PROJECT}:security"])


def test_configured_passwords_replace_generated_ones_and_stay_secret() -> None:
    result = configured_render()
    assert result.configured_secrets == {ELASTIC, KIBANA}
    names = {r.name for r in result.of_type(rules.RANDOM_PASSWORD)}
    assert "dev-credentials-elastic" not in names and "dev-credentials-kibana-system" not in names
    rules.check_no_plain_secrets(result)
    assert result.outputs["elastic_password"] == ELASTIC


def test_configured_passwords_reach_the_setup_step_and_kibana_only() -> None:
    result = configured_render()
    setup = result.named("dev-setup")
    lines = setup.inputs["stdin"].splitlines()
    assert lines[0] + "\n" == curl_config_user(ADMIN_USER, "generated-dev-credentials-admin")
    assert json.loads(lines[1]) == {"password": ELASTIC}
    assert json.loads(lines[2]) == {"password": KIBANA}
    assert setup.input_is_secret("stdin")
    kibana = rules.uploads(result.named("dev-kibana-0"))
    assert json.loads(kibana["/run/secrets/kibana/elasticsearch.password"]) == KIBANA
    # No Elasticsearch node gets a password of the native realm, in a file or in its environment.
    node = result.named("dev-es-0")
    assert not any(ELASTIC in text or KIBANA in text for text in rules.uploads(node).values())
    assert not any("PASSWORD" in name for name in rules.env(node))


def test_kibana_encryption_keys_are_shared_by_every_instance() -> None:
    config = copy.deepcopy(read_stack_config("dev"))
    config[f"{PROJECT}:kibana"]["replicas"] = 2
    result = render("dev", config)
    keystores = [
        {path: text for path, text in rules.uploads(c).items() if path.startswith("/run/secrets/kibana/")}
        for c in rules.kibana_containers(result)
    ]
    assert len(keystores) == 2 and keystores[0] == keystores[1]
    assert len(keystores[0]) == 4
