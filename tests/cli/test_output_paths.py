"""Output paths: a name too long for the file system is refused before anything is computed, and
no output is ever written through a symbolic link planted at its name.

Oracles: the file system's own ``NAME_MAX`` (``os.pathconf``), the temporary name the plot is
first written to (``.NAME.XXXXXXXX.tmp``: 14 bytes more), and the bytes of the user's file the
link points at, which must be unchanged.
"""

from __future__ import annotations

import os

import pytest

from jaxbp import cli
from tests.helpers import TINY, train

USER_TEXT = b"my thesis, not a plot\n"


def explain(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["explain", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_plot_name_too_long_for_the_file_system_exits_2_before_computing(tmp_path, capsys):
    name_max = os.pathconf(tmp_path, "PC_NAME_MAX")
    name = "a" * 296 + ".png"  # 300 bytes
    code, out, err = explain(capsys, "relu-2-2-1", "--steps", "3", "--plot", str(tmp_path / name))
    assert (code, out) == (2, "") and "Traceback" not in err
    assert err.startswith("jaxbp explain: error: --plot: the file name is 300 bytes long; ")
    assert f"at most {name_max} bytes" in err and f"at most {name_max - 14} bytes" in err
    assert list(tmp_path.iterdir()) == []


def test_the_longest_plot_name_that_fits_is_written(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    name = "a" * (os.pathconf(tmp_path, "PC_NAME_MAX") - 14 - 4) + ".png"
    code, _, err = explain(capsys, "relu-2-2-1", "--steps", "3", "--plot", str(tmp_path / name))
    assert code == 0, err
    assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("flag", ["--plot", "--write-network"])
def test_an_explain_output_that_is_a_link_is_refused_and_its_target_untouched(tmp_path, capsys, flag):  # fmt: skip
    mine = tmp_path / "thesis.txt"
    mine.write_bytes(USER_TEXT)
    link = tmp_path / ("loss.png" if flag == "--plot" else "net.json")
    link.symlink_to(mine)
    code, _, err = explain(capsys, "relu-2-2-1", "--steps", "3", flag, str(link))
    assert code == 2 and f"{flag} {link} is a symbolic link; it is never written through" in err
    assert mine.read_bytes() == USER_TEXT and link.is_symlink()


def test_a_plot_link_planted_after_the_check_is_replaced_not_followed(tmp_path):
    pytest.importorskip("matplotlib")
    from jaxbp.worked.render.plot import save_png

    mine = tmp_path / "thesis.txt"
    mine.write_bytes(USER_TEXT)
    (tmp_path / "loss.png").symlink_to(mine)
    save_png([1.0, 0.5, 0.25], str(tmp_path / "loss.png"))
    assert mine.read_bytes() == USER_TEXT
    assert not (tmp_path / "loss.png").is_symlink()
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_run_marker_planted_as_a_link_is_refused_and_its_target_untouched(tmp_path, capsys):
    mine = tmp_path / "empty-notes.txt"
    mine.write_bytes(b"")  # empty: a marker that followed the link would write into it
    out = tmp_path / "run"
    out.mkdir()
    (out / ".jaxbp-run").symlink_to(mine)
    code, _, err = train(capsys, *TINY, "--epochs", "1", "--out", out)
    assert code == 2 and "Traceback" not in err
    assert f"{out / '.jaxbp-run'} is a symbolic link; a run's marker is never a link" in err
    assert mine.read_bytes() == b""
    assert sorted(p.name for p in out.iterdir()) == [".jaxbp-run"]


def test_run_outputs_planted_as_links_are_replaced_never_written_through(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    code, _, err = train(capsys, *TINY, "--epochs", "1", "--out", out)
    assert code == 0, err
    names = ["metrics.json", "curves.png"]  # (a link named as a checkpoint is read on resume)
    targets = {}
    for name in names:  # links where the next run writes these files
        (out / name).unlink(missing_ok=True)
        targets[name] = tmp_path / f"mine-{name}"
        targets[name].write_bytes(USER_TEXT)
        (out / name).symlink_to(targets[name])
    code, _, err = train(capsys, "--resume", out, "--epochs", "2")
    assert code == 0, err
    for name in names:
        assert targets[name].read_bytes() == USER_TEXT
        assert not (out / name).is_symlink() and (out / name).stat().st_size > 0


def test_an_atomic_write_onto_a_link_replaces_the_link_not_its_target(tmp_path):
    from jaxbp.training.files import atomic_write  # checkpoints, metrics.json, the plots

    mine = tmp_path / "thesis.txt"
    mine.write_bytes(USER_TEXT)
    (tmp_path / "checkpoint-00000003.jaxbp").symlink_to(mine)
    atomic_write(tmp_path / "checkpoint-00000003.jaxbp", b"new")
    assert mine.read_bytes() == USER_TEXT
    assert (tmp_path / "checkpoint-00000003.jaxbp").read_bytes() == b"new"
    assert not (tmp_path / "checkpoint-00000003.jaxbp").is_symlink()
