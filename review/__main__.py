"""`python -m review render|diff`: offline renders and diffs of the stacks (see README "Reviewing a change")."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pulumi

from review.diff import StackDiff, diff_stack
from review.documents import documents, dump, load
from review.mockrun import Render, run_program_into
from review.report import markdown
from review.stacks import StackFileError, UnknownStackError, check_stacks, project_name, stack_config, stack_names

ERROR_SUFFIX = ".error.txt"
TOOL_HOME = Path(__file__).resolve().parent.parent


def render_stacks(root: Path, stacks: Sequence[str], out: Path | None) -> int:
    """Render each stack of the program at `root`; with `out`, one `<stack>.yaml` (or `.error.txt`) each."""
    try:
        project = project_name(root)
    except StackFileError as error:
        print(error, file=sys.stderr)
        return 1
    failed = 0
    for stack in stacks:
        try:
            config, secret_keys = stack_config(root, stack)
            result = Render(stack)
            run_program_into(result, root, project, config, secret_keys=secret_keys)
            text = dump(documents(result))
        except Exception as error:
            failed += 1
            # A RunError is the program's own readable message (a bad config names its key path), as is a
            # stack file's syntax error (file, line and column).
            readable = isinstance(error, (pulumi.RunError, StackFileError))
            message = str(error) if readable else f"{type(error).__name__}: {error}"
            print(f"stack {stack}: {message}", file=sys.stderr)
            if out is not None:
                (out / f"{stack}{ERROR_SUFFIX}").write_text(message + "\n")
            continue
        if out is None:
            sys.stdout.write(text)
        else:
            (out / f"{stack}.yaml").write_text(text)
    return 1 if failed else 0


def render_tree(root: Path, stacks: Sequence[str], out: Path) -> None:
    """Render a tree in a fresh interpreter: two trees' modules of the same names must not meet."""
    out.mkdir(parents=True, exist_ok=True)
    if not stacks:
        return
    # -P keeps the tree's own `review` (if any) off the path; the tree's program is put first by the render.
    command = [sys.executable, "-P", "-m", "review", "render", "--root", str(root), "--out", str(out)]
    environment = {**os.environ, "PYTHONPATH": str(TOOL_HOME)}
    for variable in ("PULUMI_CONFIG", "PULUMI_CONFIG_SECRET_KEYS", "DOCKER_HOST"):
        environment.pop(variable, None)
    run = subprocess.run(
        [*command, "--stack", *stacks], cwd=root, env=environment, check=False, capture_output=True, text=True
    )
    # A tree that cannot be rendered at all (no Pulumi.yaml, a crash before any stack) fails every stack.
    for stack in stacks:
        if not (out / f"{stack}.yaml").exists() and not (out / f"{stack}{ERROR_SUFFIX}").exists():
            (out / f"{stack}{ERROR_SUFFIX}").write_text(run.stderr[-2000:] or f"exit status {run.returncode}")


def checkout(root: Path, ref: str, into: Path) -> None:
    """The tree of `ref` (committed files only) at `into`."""
    archive = subprocess.run(["git", "-C", str(root), "archive", "--format=tar", ref], capture_output=True, check=False)
    if archive.returncode != 0:
        raise SystemExit(f"git archive {ref}: {archive.stderr.decode().strip()}")
    into.mkdir(parents=True)
    with tempfile.TemporaryFile() as buffer:
        buffer.write(archive.stdout)
        buffer.seek(0)
        with tarfile.open(fileobj=buffer) as tar:
            tar.extractall(into, filter="data")


def read_side(folder: Path, stack: str) -> tuple[list[dict[str, object]], str | None]:
    error = folder / f"{stack}{ERROR_SUFFIX}"
    if error.exists():
        return [], error.read_text()
    rendered = folder / f"{stack}.yaml"
    return (load(rendered.read_text()), None) if rendered.exists() else ([], None)


def diff_trees(root: Path, base_ref: str, stacks: Sequence[str] | None) -> list[StackDiff]:
    with tempfile.TemporaryDirectory() as scratch:
        base_root = Path(scratch) / "base"
        checkout(root, base_ref, base_root)
        known = sorted(set(stack_names(root)) | set(stack_names(base_root)))
        names = list(stacks) if stacks else known
        check_stacks(root, names, known)  # a stack in neither tree is a typo, not "no changes"
        for side, tree in (("base", base_root), ("head", root)):
            present = [s for s in names if (tree / f"Pulumi.{s}.yaml").exists()]
            render_tree(tree, present, Path(scratch) / side)
        result = []
        for stack in names:
            base, base_error = read_side(Path(scratch) / "base", stack)
            head, head_error = read_side(Path(scratch) / "head", stack)
            diff = diff_stack(stack, base, head)
            diff.base_error, diff.head_error = base_error, head_error
            result.append(diff)
        return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m review", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser("render", help="render stacks as sorted YAML under the mock runtime")
    diff = commands.add_parser("diff", help="Markdown summary of what the work tree changes against a git ref")
    for command in (render, diff):
        command.add_argument("--root", type=Path, default=Path.cwd(), help="the Pulumi project (default: .)")
        command.add_argument("--stack", nargs="+", help="stacks to take (default: every Pulumi.<stack>.yaml)")
    render.add_argument("--out", type=Path, help="write <stack>.yaml files here instead of to stdout")
    diff.add_argument("--base", required=True, help="the git ref to compare with, e.g. origin/main")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    try:
        if args.command == "render":
            stacks = args.stack or stack_names(root)
            check_stacks(root, stacks)
            if args.out is not None:
                args.out.mkdir(parents=True, exist_ok=True)
            return render_stacks(root, stacks, args.out)
        diffs = diff_trees(root, args.base, args.stack)
    except UnknownStackError as error:
        parser.error(str(error))  # exits with status 2, as for any other bad argument
    sys.stdout.write(markdown(f"Offline preview: `{args.base}` → this change", diffs))
    return 1 if any(d.head_error for d in diffs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
