"""The setup and Kibana start scripts: valid shell, no secret in them, credentials quoted for curl."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from escluster.scripts import SetupFiles, curl_config_user, es_readiness_script, kibana_start_script, setup_script


def bash_accepts(script: str) -> None:
    bash = shutil.which("bash")
    assert bash is not None
    result = subprocess.run([bash, "-n", "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_scripts_are_valid_shell() -> None:
    bash_accepts(setup_script(["https://a:9200", "https://b:9200"], SetupFiles("/x"), "docker logs a"))
    bash_accepts(kibana_start_script())
    bash_accepts(es_readiness_script("/x/ca.crt", "/x/probe.curlrc"))


def unquote_curl(line: str) -> str:
    """curl's reading of a `user = "…"` config line (its escapes: \\\\ \\" \\n \\r)."""
    body = line.strip().removeprefix('user = "').removesuffix('"')
    out, i = [], 0
    escapes = {"\\": "\\", '"': '"', "n": "\n", "r": "\r"}
    while i < len(body):
        if body[i] == "\\":
            out.append(escapes[body[i + 1]])
            i += 2
        else:
            assert body[i] != '"', "unescaped quote ends the value early"
            out.append(body[i])
            i += 1
    return "".join(out)


@given(st.text(min_size=6))
def test_curl_config_carries_any_password_exactly(password: str) -> None:
    line = curl_config_user("elastic", password)
    assert line.endswith("\n") and line.count("\n") == 1
    assert unquote_curl(line) == f"elastic:{password}"


def test_curl_reads_the_config_line(tmp_path: Path) -> None:
    password = 'p"a\\ss word'
    config = tmp_path / "curlrc"
    config.write_text(curl_config_user("elastic", password))
    # curl --libcurl prints the options it parsed as C source; the credentials must come out intact.
    result = subprocess.run(
        ["curl", "--config", str(config), "--libcurl", "-", "--max-time", "1", "http://127.0.0.1:9/"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert 'CURLOPT_USERPWD, "elastic:p\\"a\\\\ss word"' in result.stdout


FAKE_CURL = """#!/bin/sh
# Records how it was called; answers with the status code the test chose.
cat > "$RECORD.stdin"
printf '%s\\n' "$@" > "$RECORD.args"
printf '%s' "$STATUS"
[ "$FAIL" = 1 ] && exit 22
exit 0
"""


def run_probe(tmp_path: Path, status: str, fail: bool = False) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "curl").write_text(FAKE_CURL)
    (bin_dir / "curl").chmod(0o755)
    script = es_readiness_script("/certs/ca.crt", "/probe/probe.curlrc", started_marker=str(tmp_path / "started"))
    environment = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "RECORD": str(tmp_path / "curl"),
        "STATUS": status,
        "FAIL": "1" if fail else "0",
    }
    return subprocess.run(
        ["bash", "-c", script], env=environment, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )


def test_readiness_probe_first_waits_for_health_with_the_probe_users_config_file(tmp_path: Path) -> None:
    result = run_probe(tmp_path, status="")
    assert result.returncode == 0, result.stderr
    arguments = (tmp_path / "curl.args").read_text().splitlines()
    assert "--config" in arguments and arguments[arguments.index("--config") + 1] == "/probe/probe.curlrc"
    assert any("_cluster/health" in argument for argument in arguments)
    assert (tmp_path / "started").exists()


def test_readiness_probe_stays_unready_while_the_cluster_is_unhealthy(tmp_path: Path) -> None:
    result = run_probe(tmp_path, status="", fail=True)
    assert result.returncode != 0
    assert not (tmp_path / "started").exists()


def test_readiness_probe_after_start_only_asks_that_the_node_answers(tmp_path: Path) -> None:
    (tmp_path / "started").touch()
    assert run_probe(tmp_path, status="401").returncode == 0
    assert "_cluster/health" not in (tmp_path / "curl.args").read_text()
    assert run_probe(tmp_path, status="503").returncode != 0
