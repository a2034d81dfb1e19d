"""Stack files that are not valid YAML: the review tools name the file, line and column, without a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from review.stacks import StackFileError, read_stack_file
from tests.harness import ROOT

BROKEN = """config:
  elastic-stack:cluster:
    name: dev
    node_groups:
      - name: es
       count: 1
"""


def test_a_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(BROKEN)
    with pytest.raises(StackFileError) as caught:
        read_stack_file(path)
    assert str(caught.value).startswith("Pulumi.dev.yaml:6:")


def test_the_render_command_reports_it_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.dev.yaml").write_text(BROKEN)
    run = subprocess.run(
        [sys.executable, "-m", "review", "render", "--root", str(tmp_path), "--stack", "dev"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert run.returncode == 1
    assert "stack dev: Pulumi.dev.yaml:6:" in run.stderr
    assert "Traceback" not in run.stderr
