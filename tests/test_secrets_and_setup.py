"""Configured passwords stay secret end to end; a failed setup job stops Kibana."""

from __future__ import annotations

import copy
import json

from components.setup_job import SetupJobFailed
from tests import rules
from tests.harness import PROJECT, Render, read_stack_config, render, render_failure

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


def test_configured_passwords_reach_their_files() -> None:
    result = configured_render()
    es = rules.uploads(result.named("dev-es-0"))
    assert es["/run/secrets/elastic_password"] == ELASTIC
    assert rules.env(result.named("dev-es-0"))["ELASTIC_PASSWORD_FILE"] == "/run/secrets/elastic_password"
    setup = rules.uploads(result.named("dev-setup"))
    assert json.loads(setup["/run/secrets/kibana_system_password.json"]) == {"password": KIBANA}
    assert setup["/run/secrets/elastic.curlrc"].startswith('user = "elastic:correct-horse-battery"')
    kibana = rules.uploads(result.named("dev-kibana-0"))
    assert kibana["/run/secrets/kibana/elasticsearch.password"] == KIBANA


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


def test_failed_setup_job_stops_before_kibana() -> None:
    error, partial = render_failure("dev", exit_codes={"dev-setup": 1})
    assert isinstance(error, SetupJobFailed)
    assert "setup job dev-setup exited with code 1" in str(error)
    assert "docker logs dev-setup" in str(error)
    assert [c.name for c in partial.of_type(rules.CONTAINER) if c.name.startswith("dev-kibana")] == []
