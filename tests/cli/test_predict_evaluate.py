"""``jaxbp predict`` and ``jaxbp evaluate`` (issue 21), in-process through ``jaxbp.cli.main``.

Oracles: a NumPy forward pass of the saved parameters (with the saved feature and target
scaling), class names sorted by hand, and the bytes of the user's files for "never overwritten".
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from jaxbp import cli
from jaxbp.training import checkpoint

NAMES = ("virginica", "setosa", "versicolor")
SORTED = ["setosa", "versicolor", "virginica"]


def run_command(capsys, *args) -> tuple[int, str, str]:
    code = cli.main([*map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _forward(params, x):
    a = x
    for i, layer in enumerate(params):
        z = a @ np.asarray(layer["w"], np.float64) + np.asarray(layer["b"], np.float64)
        a = z if i == len(params) - 1 else np.maximum(z, 0)
    return a


def _iris_rows(rng, count: int) -> tuple[np.ndarray, np.ndarray]:
    label = np.arange(count) % 3
    return rng.normal(size=(count, 2)) + 3 * label[:, None], label


def _write(path: Path, x: np.ndarray, labels, header="sepal_length,sepal_width,species") -> Path:
    rows = "".join(f"{a!r},{b!r},{label}\n" for (a, b), label in zip(x.tolist(), labels, strict=True))  # fmt: skip
    path.write_text(header + "\n" + rows)
    return path


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("iris")
    x, label = _iris_rows(np.random.default_rng(0), 150)
    path = _write(folder / "iris.csv", x, [NAMES[k] for k in label])
    code = cli.main(["train", "--data", str(path), "--target", "species", "--hidden", "8",
                     "--epochs", "5", "--batch-size", "8", "--quiet", "--out", str(folder / "run")])  # fmt: skip
    assert code == 0
    return folder / "run"


@pytest.fixture(scope="module")
def house_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("house")
    rng = np.random.default_rng(0)
    ab = rng.normal(size=(300, 2))
    price = 3000 * ab[:, 0] - 2000 * ab[:, 1] + 50000
    _write(folder / "house.csv", ab, price.tolist(), "a,b,price")
    code = cli.main(["train", "--data", str(folder / "house.csv"), "--target", "price", "--task",
                     "regression", "--hidden", "8", "--epochs", "3", "--quiet", "--out", str(folder / "run")])  # fmt: skip
    assert code == 0
    return folder / "run"


def test_predict_writes_the_class_names_a_numpy_forward_pass_gives(capsys, tmp_path, iris_run):
    x, _ = _iris_rows(np.random.default_rng(1), 12)
    # the columns in another order, and no target column: both fine
    path = tmp_path / "new.csv"
    path.write_text("sepal_width,sepal_length\n" + "".join(f"{b!r},{a!r}\n" for a, b in x.tolist()))
    code, _out, stderr = run_command(capsys, "predict", "--run", iris_run, "--data", path, "--out", tmp_path / "p.csv")  # fmt: skip
    assert code == 0, stderr
    saved = checkpoint.load(checkpoint.resolve(iris_run))
    z = (x - saved.arrays["mean"]) / saved.arrays["scale"]
    wanted = [SORTED[i] for i in np.argmax(_forward(saved.params, z), axis=1)]
    assert (tmp_path / "p.csv").read_text().splitlines() == ["prediction", *wanted]


def test_predict_gives_regression_values_in_the_targets_units(capsys, tmp_path, house_run):
    ab = np.random.default_rng(2).normal(size=(5, 2))
    path = tmp_path / "new.csv"
    path.write_text("a,b\n" + "".join(f"{a!r},{b!r}\n" for a, b in ab.tolist()))
    code, out, stderr = run_command(capsys, "predict", "--run", house_run, "--data", path)
    assert code == 0, stderr
    saved = checkpoint.load(checkpoint.resolve(house_run))
    scaling = json.loads((house_run / "targets.json").read_text())
    z = (ab - saved.arrays["mean"]) / saved.arrays["scale"]
    wanted = _forward(saved.params, z)[:, 0] * scaling["target_scale"] + scaling["target_mean"][0]
    lines = out.splitlines()
    assert lines[0] == "prediction"
    np.testing.assert_allclose([float(v) for v in lines[1:]], wanted, rtol=1e-5)


def test_predict_takes_a_npy_of_features(capsys, tmp_path, house_run):
    ab = np.random.default_rng(2).normal(size=(5, 2))
    np.save(tmp_path / "new.npy", ab)
    code, out, _ = run_command(
        capsys, "predict", "--run", house_run, "--data", tmp_path / "new.npy"
    )
    assert code == 0 and len(out.splitlines()) == 6


def test_evaluate_prints_accuracy_and_each_class_by_name(capsys, tmp_path, iris_run):
    x, label = _iris_rows(np.random.default_rng(3), 30)
    path = _write(tmp_path / "test.csv", x, [NAMES[k] for k in label])
    code, out, stderr = run_command(capsys, "evaluate", "--run", iris_run, "--data", path)
    assert code == 0, stderr
    saved = checkpoint.load(checkpoint.resolve(iris_run))
    z = (x - saved.arrays["mean"]) / saved.arrays["scale"]
    predicted = np.argmax(_forward(saved.params, z), axis=1)
    truth = np.array([SORTED.index(NAMES[k]) for k in label])
    assert out.startswith(f"accuracy {np.mean(predicted == truth):.4f} on 30 examples, loss ")
    for name in SORTED:
        assert f"  {name}: accuracy " in out and " on 10 examples" in out


def test_evaluate_gives_mse_and_mae_in_the_targets_units(capsys, tmp_path, house_run):
    ab = np.random.default_rng(4).normal(size=(20, 2))
    price = 3000 * ab[:, 0] - 2000 * ab[:, 1] + 50000
    path = _write(tmp_path / "test.csv", ab, price.tolist(), "a,b,price")
    code, out, stderr = run_command(capsys, "evaluate", "--run", house_run, "--data", path)
    assert code == 0, stderr
    saved = checkpoint.load(checkpoint.resolve(house_run))
    scaling = json.loads((house_run / "targets.json").read_text())
    z = (ab - saved.arrays["mean"]) / saved.arrays["scale"]
    error = _forward(saved.params, z)[:, 0] * scaling["target_scale"] + scaling["target_mean"][0] - price  # fmt: skip
    mse, mae = (float(v) for v in out.split(" on ")[0].replace("mse ", "").split(", mae "))
    np.testing.assert_allclose([mse, mae], [np.mean(error**2), np.mean(np.abs(error))], rtol=1e-4)


BAD = [
    ("missing-column", "a\n1\n", [], r"no column 'b'; the run was trained on the columns a, b"),
    ("extra-column", "a,b,id\n1,2,3\n", [], r"column 'id' was not a feature of the run"),
    ("nan-cell", "a,b\n1,2\nnan,2\n", [], r"line 3, column 'a': 'nan' is not a finite number"),
    ("text-cell", "a,b\n1,x\n", [], r"line 2, column 'b': 'x' is not a number"),
    ("header-only", "a,b\n", [], r"holds no examples"),
    ("empty-file", "", [], r"the file is empty"),
    ("ragged", "a,b\n1,2,3\n", [], r"line 2: 3 cells but the header has 2 columns"),
    ("overflow", "a,b\n1,1e300\n", [], r"new.csv: line 2, feature column 'b': the value 1e\+300 is .* standard deviations"),
    ("duplicate-column", "a,b,a\n1,2,3\n", [], r"several columns are named 'a'"),
    ("unicode-column", "a,b,größe\n1,2,3\n", [], r"column 'größe' was not a feature of the run"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "text", "extra", "match"), BAD, ids=[c[0] for c in BAD])
def test_bad_new_data_gets_one_line_and_exit_2(capsys, tmp_path, house_run, case, text, extra, match):  # fmt: skip
    path = tmp_path / "new.csv"
    path.write_text(text)
    out = tmp_path / "p.csv"
    code, stdout, stderr = run_command(capsys, "predict", "--run", house_run, "--data", path, "--out", out, *extra)  # fmt: skip
    assert code == 2 and stderr.count("\n") == 1 and "Traceback" not in stderr
    assert __import__("re").search(match, stderr), stderr
    assert not out.exists() and stdout == ""


@pytest.mark.parametrize("price", ["1e38", "1e300"])  # float32's largest / 4 is 8.5e37
def test_evaluate_refuses_a_target_whose_error_would_overflow(capsys, tmp_path, house_run, price):
    path = tmp_path / "t.csv"
    path.write_text(f"a,b,price\n1,2,50000\n1,2,{price}\n")
    code, stdout, stderr = run_command(capsys, "evaluate", "--run", house_run, "--data", path)
    assert (code, stdout) == (2, "") and stderr.count("\n") == 1, stderr
    assert f"t.csv: a target of size {float(price):.3g} does not fit --dtype float32" in stderr


def test_an_unknown_class_in_evaluate_is_named(capsys, tmp_path, iris_run):
    path = tmp_path / "t.csv"
    path.write_text("sepal_length,sepal_width,species\n1,2,setosa\n1,2,daisy\n")
    code, _, stderr = run_command(capsys, "evaluate", "--run", iris_run, "--data", path)
    assert code == 2 and "t.csv line 3, column 'species': class 'daisy' is not one the run was trained on" in stderr  # fmt: skip


def test_evaluate_names_a_text_label_given_to_a_run_of_numbered_classes(capsys, tmp_path):
    x = np.random.default_rng(0).normal(size=(40, 2))
    data = tmp_path / "numbered.csv"
    _write(data, x, [str(i % 2) for i in range(40)], header="a,b,target")
    run = tmp_path / "run"
    flags = ["--data", data, "--hidden", "4", "--epochs", "1", "--batch-size", "full", "--quiet"]
    assert run_command(capsys, "train", *flags, "--out", run)[0] == 0
    test = tmp_path / "test.csv"
    test.write_text("a,b,target\n1,2,1\n3,4,cat\n")
    code, _, stderr = run_command(capsys, "evaluate", "--run", run, "--data", test)
    assert code == 2 and stderr.count("\n") == 1, stderr
    assert "test.csv line 3, column 'target': 'cat' is not a number; the run's labels are the numbers 0 to 1" in stderr  # fmt: skip


def test_no_run_and_no_checkpoint_are_refused(capsys, tmp_path):
    path = tmp_path / "new.csv"
    path.write_text("a,b\n1,2\n")
    for run in (tmp_path / "absent", tmp_path):
        code, _, stderr = run_command(capsys, "predict", "--run", run, "--data", path)
        assert code == 2 and (
            "no such run directory" in stderr or "no checkpoint-*.jaxbp" in stderr
        )


def test_predict_never_replaces_a_users_file_or_follows_a_link(capsys, tmp_path, house_run):
    path = tmp_path / "new.csv"
    path.write_text("a,b\n1,2\n")
    mine = tmp_path / "mine.csv"
    mine.write_text("precious\n")
    link = tmp_path / "link.csv"
    link.symlink_to(mine)
    for out, flags, match in (
        (mine, [], "exists; pass --force"),
        (link, [], "is a symbolic link"),
        (link, ["--force"], "is a symbolic link"),
        (path, ["--force"], "is the --data file"),
        (tmp_path, [], "is a folder"),
        (tmp_path / "no" / "p.csv", [], "does not exist"),
        (house_run / "metrics.json", ["--force"], "is inside the run folder"),
    ):
        code, _, stderr = run_command(capsys, "predict", "--run", house_run, "--data", path, "--out", out, *flags)  # fmt: skip
        assert code == 2 and match in stderr, stderr
    assert (
        mine.read_text() == "precious\n" and link.is_symlink() and path.read_text() == "a,b\n1,2\n"
    )
    code, _, _ = run_command(capsys, "predict", "--run", house_run, "--data", path, "--out", mine, "--force")  # fmt: skip
    assert code == 0 and mine.read_text().startswith("prediction\n")


def test_predict_never_replaces_a_named_pipe_or_a_device_even_with_force(capsys, tmp_path, house_run):  # fmt: skip
    import os

    path = tmp_path / "new.csv"
    path.write_text("a,b\n1,2\n")
    pipe = tmp_path / "pipe.csv"
    os.mkfifo(pipe)
    code, _, stderr = run_command(capsys, "predict", "--run", house_run, "--data", path, "--out", pipe, "--force")  # fmt: skip
    assert code == 2 and "is a named pipe, not a file" in stderr and stderr.count("\n") == 1, stderr
    assert pipe.is_fifo()
    if os.geteuid() == 0:  # only root may make a device node: a copy of /dev/null
        device = tmp_path / "null.csv"
        os.mknod(device, 0o666 | __import__("stat").S_IFCHR, os.makedev(1, 3))
        code, _, stderr = run_command(capsys, "predict", "--run", house_run, "--data", path, "--out", device, "--force")  # fmt: skip
        assert code == 2 and "is a device, not a file" in stderr, stderr
        assert device.is_char_device()


def test_predict_never_replaces_the_checkpoint_it_loads(capsys, tmp_path, house_run):
    path = tmp_path / "new.csv"
    path.write_text("a,b\n1,2\n")
    loose = tmp_path / "model.jaxbp"  # a checkpoint copied out of its run folder
    loose.write_bytes(checkpoint.resolve(house_run).read_bytes())
    before = loose.read_bytes()
    code, _, stderr = run_command(capsys, "predict", "--run", loose, "--data", path, "--out", loose, "--force")  # fmt: skip
    assert code == 2 and "is the checkpoint --run loads" in stderr and stderr.count("\n") == 1
    assert loose.read_bytes() == before


def test_predict_with_stdout_closed_asks_for_out(capsys, tmp_path, house_run, monkeypatch):
    path = tmp_path / "new.csv"
    path.write_text("a,b\n1,2\n")
    monkeypatch.setattr("sys.stdout", None)  # what Python sets when started with `>&-`
    code = cli.main(["predict", "--run", str(house_run), "--data", str(path)])
    stderr = capsys.readouterr().err
    assert code == 2 and "standard output is closed" in stderr and stderr.count("\n") == 1


def test_predict_into_a_read_only_folder_exits_4_and_writes_nothing(capsys, tmp_path, house_run):
    import os

    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    path = tmp_path / "new.csv"
    path.write_text("a,b\n1,2\n")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        code, _, stderr = run_command(capsys, "predict", "--run", house_run, "--data", path, "--out", folder / "p.csv")  # fmt: skip
        assert code == 4 and "cannot write" in stderr
    finally:
        folder.chmod(0o755)
