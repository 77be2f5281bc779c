"""docs/explain.md runs: every `jaxbp explain` command line, the Python block, the quoted errors
and the quoted Markdown excerpt are produced by the code as shown."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from jaxbp import cli
from tests.cli.test_cli_explain import BAD_NETWORKS

DOC = (Path(__file__).resolve().parents[1] / "docs" / "explain.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC, re.S)


def test_every_command_in_the_docs_runs(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    commands = [line.split("#")[0].split(">")[0] for line in _blocks("sh")[0].splitlines()]
    assert len(commands) == 11
    for command in commands:  # in order: --write-network my_net.json comes before --network
        argv = shlex.split(command)
        assert argv[:2] == ["jaxbp", "explain"]
        assert cli.main(argv[1:]) == 0, command
        capsys.readouterr()
    assert (tmp_path / "loss.png").exists() or pytest.importorskip("matplotlib") is None


def test_the_python_example_runs(capsys) -> None:
    exec(compile(_blocks("python")[0], "docs/explain.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("True 0.317")
    assert out[-1] == "()"


def test_quoted_errors_are_the_real_ones() -> None:
    quoted = [
        line for line in DOC.splitlines() if line.startswith("jaxbp explain: error: net.json: ")
    ]
    assert len(quoted) == 6
    messages = [message for _, message in BAD_NETWORKS.values()]
    for line in quoted:
        assert any(message in line for message in messages), line


def test_quoted_markdown_excerpt_is_the_real_output(capsys) -> None:
    assert cli.main(["explain", "relu-2-2-1", "--compare-published", "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    (excerpt,) = [block for block in _blocks("markdown") if "## Backward, layer 2" in block]
    for line in excerpt.splitlines():
        if line.startswith("Against jax.grad"):  # the round-off differs between machines
            line = line.split(" is ")[0]
        assert line in out or line == "...", line


def test_quoted_diagnostics_are_the_real_ones() -> None:
    import numpy as np

    import jaxbp
    from jaxbp.worked import grading as worked
    from jaxbp.worked.diagnostics import diagnose

    example = worked.EXAMPLES["relu-sigmoid-linear"]
    params = [
        {"w": np.asarray(w), "b": np.asarray(b)}
        for w, b in zip(example.weights, example.biases, strict=True)
    ]
    trace = jaxbp.explain(worked.spec_of(example), "half_se", params, example.x, example.y, 0.25)
    quoted = DOC.split("The diagnostics of `relu-sigmoid-linear`:")[1]
    quoted_lines = quoted.split("```")[1].strip().splitlines()
    assert quoted_lines == list(diagnose(trace).warnings)


def test_the_check_example_runs_as_shown(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_numbers.csv").write_text(_blocks("csv")[0])
    write, check = [shlex.split(line) for line in _blocks("sh")[1].splitlines()]
    assert cli.main(write[1:]) == 0
    capsys.readouterr()
    assert cli.main(check[1:]) == 1  # the example file holds three wrong numbers on purpose
    out = capsys.readouterr().out
    (table,) = [block for block in _blocks("markdown") if "`h1`" in block]
    for line in table.splitlines():
        assert line in out, line
