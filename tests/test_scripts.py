"""The setup and Kibana start scripts: valid shell, no secret in them, credentials quoted for curl."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from escluster.scripts import curl_config_user, kibana_start_script, setup_script


def bash_accepts(script: str) -> None:
    bash = shutil.which("bash")
    assert bash is not None
    result = subprocess.run([bash, "-n", "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_scripts_are_valid_shell() -> None:
    bash_accepts(setup_script(["https://a:9200", "https://b:9200"], "/x/ca.crt"))
    bash_accepts(kibana_start_script())


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
