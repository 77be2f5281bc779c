"""docs/course.md runs: its shell block, pasted into bash, writes the sheets and the gradebook it
quotes, and the quoted feedback lines are the real ones."""

from __future__ import annotations

from pathlib import Path

from tests.test_docs import FENCE, _run, _scratch, blocks

PAGE = Path(__file__).resolve().parents[1] / "docs" / "course.md"


def test_the_class_example_runs_and_its_quoted_output_is_real(tmp_path) -> None:
    (block,) = [b for b in blocks(PAGE) if b.language in ("bash", "sh")]
    assert block.skip is None
    work = _scratch(tmp_path)
    script = tmp_path / "block.sh"
    script.write_text(block.code)
    out = _run(["bash", "-eo", "pipefail", str(script)], work, bin_dir=tmp_path / "bin")
    assert "exit 1: some numbers are wrong or missing" in out
    text = PAGE.read_text()
    quoted = [m.group(2) for m in FENCE.finditer(text) if m.group(1) == ""]
    gradebook = next(q for q in quoted if q.startswith("student,name,status"))
    assert gradebook == (work / "gradebook.csv").read_text()
    lines = next(q for q in quoted if q.startswith("| `dW2[0,0]`")).splitlines()
    feedback = (work / "feedback" / "s02.md").read_text().splitlines()
    assert lines == [line for line in feedback if "✗" in line]
    assert sorted(p.name for p in (work / "sheets/students/s01").iterdir()) == [
        "blank.csv", "worksheet.html", "worksheet.md", "worksheet.tex",
    ]  # fmt: skip
