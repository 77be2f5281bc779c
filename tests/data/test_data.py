"""Loading, validating and splitting data for ``jaxbp train``, against hand-written expectations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jaxbp.data import files as data


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_csv_target_column_is_taken_out_wherever_it_is(tmp_path):
    path = write(tmp_path / "d.csv", "a,label,b\n1,0,2.5\n-3,1,4e1\n")
    dataset = data.load_file(path, target="label")
    np.testing.assert_array_equal(dataset.x, [[1.0, 2.5], [-3.0, 40.0]])
    np.testing.assert_array_equal(dataset.y, [0.0, 1.0])


def test_npz_with_x_and_y(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.arange(6).reshape(3, 2), y=np.array([[1.0], [2.0], [3.0]]))
    dataset = data.load_file(path)
    np.testing.assert_array_equal(dataset.x, [[0, 1], [2, 3], [4, 5]])
    assert dataset.y.shape == (3, 1)


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("text-cell", "a,target\n1,0\nabc,1\n", r"line 3, column 'a': 'abc' is not a number"),
        ("empty-cell", "a,target\n1,0\n,1\n", r"line 3, column 'a': '' is not a number"),
        (
            "no-target",
            "a,b\n1,0\n",
            r"no target column 'target'; the columns are a, b; pass --target",
        ),
        ("header-only", "a,target\n", r"holds no examples"),
        ("empty-file", "", r"the file is empty"),
        (
            "blank-line-1",
            "\na,target\n1,0\n",
            r"line 1 is empty; the first line must be the header",
        ),
        ("ragged", "a,target\n1,0,5\n", r"line 2: 3 cells but the header has 2 columns"),
        (
            "nan-feature",
            "a,target\n1,0\nnan,1\n",
            r"features \(x\) contain 1 NaN or Inf .*example 1",
        ),
        ("inf-target", "a,target\n1,inf\n2,1\n", r"targets \(y\) contain 1 NaN or Inf .*example 0"),
        ("only-target", "target\n1\n", r"no feature columns"),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 14 else None,
)
def test_bad_csv(tmp_path, name, text, match):
    with pytest.raises(data.DataError, match=match):
        data.load_file(write(tmp_path / f"{name}.csv", text))


def test_missing_file_and_unsupported_type(tmp_path):
    with pytest.raises(data.DataError, match=r"no such file; check the path given to --data"):
        data.load_file(tmp_path / "absent.csv")
    with pytest.raises(
        data.DataError, match=r"unsupported file type '.txt'; use .csv, .npz or .npy"
    ):
        data.load_file(write(tmp_path / "d.txt", "a\n"))


def test_undecodable_csv_and_damaged_npz(tmp_path):
    bad_csv = tmp_path / "bytes.csv"
    bad_csv.write_bytes(b"a,target\n\xff\xfe,1\n")
    with pytest.raises(data.DataError, match="not a readable CSV file"):
        data.load_file(bad_csv)
    bad_npz = tmp_path / "bytes.npz"
    bad_npz.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(data.DataError, match=r"not a readable \.npz file"):
        data.load_file(bad_npz)


def test_npz_needs_x_and_y_of_matching_length(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, features=np.ones((2, 2)), y=np.ones(2))
    with pytest.raises(data.DataError, match=r"no array 'x'; the file has features, y"):
        data.load_file(path)
    np.savez(path, x=np.ones((3, 2)), y=np.ones(2))
    with pytest.raises(data.DataError, match=r"y has shape \(2,\) but x has 3 examples"):
        data.load_file(path)
    np.savez(path, x=np.array(["a", "b"]).reshape(2, 1), y=np.ones(2))
    with pytest.raises(data.DataError, match=r"array x has dtype <U1; it must hold real numbers"):
        data.load_file(path)


@pytest.mark.parametrize(
    ("labels", "num_classes", "match"),
    [
        ([0, 1.5, 2], None, r"labels must be integers 0, 1, 2, ..., found 1.5"),
        ([0, -1, 2], None, r"labels must be >= 0, found -1"),
        ([0, 5, 2], 3, r"label 5 is out of range for a model with 3 classes \(labels 0..2\)"),
        ([0, 0, 0], None, r"at least 2 classes"),
        ([0, 1e9], None, r"label 1000000000 is out of range for the limit of 10,000 classes"),
        ([0, 2.0**62], None, r"label 4611686018427387904 is out of range for the limit of 10,000"),
        ([0, 1e30], 3, r"label 1e\+30 is out of range for a model with 3 classes"),
    ],
    ids=[
        "non-integer",
        "negative",
        "out-of-range",
        "one-class",
        "1e9",
        "2^62",
        "1e30-with-classes",
    ],
)
def test_bad_labels(labels, num_classes, match):
    with pytest.raises(data.DataError, match=match):
        data.check_labels("d.csv", np.array(labels, float), num_classes)


def test_labels_count_classes_from_the_largest():
    labels, num_classes = data.check_labels("d", np.array([2.0, 0.0, 4.0]), None)
    np.testing.assert_array_equal(labels, [2, 0, 4])
    assert labels.dtype == np.int64
    assert num_classes == 5


def test_stratified_split_keeps_each_class_mix_and_uses_every_example_once():
    # Class 0: 20 examples, class 1: 10. With val 0.1 and test 0.2 each class gives
    # round(0.2 * count) to test and round(0.1 * count) to validation: 4+2 and 2+1.
    y = np.array([0] * 20 + [1] * 10)
    x = np.arange(30, dtype=float)[:, None]
    train, val, test = data.split(x, y, seed=3, val_fraction=0.1, test_fraction=0.2, stratify=True)
    assert np.bincount(test.y).tolist() == [4, 2]
    assert np.bincount(val.y).tolist() == [2, 1]
    assert np.bincount(train.y).tolist() == [14, 7]
    used = np.concatenate([train.x[:, 0], val.x[:, 0], test.x[:, 0]])
    assert sorted(used.tolist()) == list(range(30))
    np.testing.assert_array_equal(y[train.x[:, 0].astype(int)], train.y)  # rows stay paired


def test_split_depends_only_on_the_seed():
    x, y = np.arange(40.0)[:, None], np.arange(40) % 2
    first = data.split(x, y, seed=1, val_fraction=0.1, test_fraction=0.2, stratify=True)
    again = data.split(x, y, seed=1, val_fraction=0.1, test_fraction=0.2, stratify=True)
    other = data.split(x, y, seed=2, val_fraction=0.1, test_fraction=0.2, stratify=True)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(first[0].x, other[0].x)


def test_split_refuses_an_empty_part():
    with pytest.raises(data.DataError, match="leave the test part empty"):
        data.split(np.ones((2, 1)), np.array([0, 1]), seed=0, val_fraction=0.0, test_fraction=0.2, stratify=True)  # fmt: skip


def test_standardizer_and_one_hot():
    x = np.array([[1.0, 5.0], [3.0, 5.0]])
    mean, scale = data.standardizer(x)
    np.testing.assert_array_equal(mean, [2.0, 5.0])
    np.testing.assert_array_equal(scale, [1.0, 1.0])  # std 1, and 1 for the constant column
    np.testing.assert_array_equal(data.one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])


def test_fingerprint_sees_any_change():
    x, y = np.ones((3, 2)), np.zeros(3)
    changed = x.copy()
    changed[2, 1] = 1.0 + 1e-15
    assert data.fingerprint(x, y) == data.fingerprint(x.copy(), y.copy())
    assert data.fingerprint(x, y) != data.fingerprint(changed, y)


def test_digits_is_bundled():
    pytest.importorskip("sklearn")
    digits = data.load_digits()
    assert digits.x.shape == (1797, 64)
    assert sorted(set(digits.y.tolist())) == list(range(10))


def test_a_duplicated_target_column_is_refused_not_used_as_a_feature(tmp_path):
    path = write(tmp_path / "d.csv", "a,target,b,target\n1,0,2,0\n3,1,4,1\n")
    with pytest.raises(data.DataError, match=r"2 columns are named 'target' \(columns 2, 4\)"):
        data.load_file(path)
    with pytest.raises(data.DataError, match=r"2 columns are named 'target' \(columns 2, 4, counting from 1\)"):  # fmt: skip
        data.load_file(path, target="a")  # as features too: each column needs its own name


def test_complex_arrays_are_refused_not_truncated(tmp_path):
    path = tmp_path / "c.npz"
    np.savez(path, x=np.ones((3, 2)) + 1j, y=np.array([0.0, 1.0, 0.0]))
    with pytest.raises(data.DataError, match=r"array x has dtype complex128; .*np\.real\(x\)"):
        data.load_file(path)


def test_an_npz_declaring_too_many_bytes_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "big.npz"
    np.savez(path, x=np.ones((50, 2)), y=np.zeros(50))
    monkeypatch.setattr(data, "MAX_NPZ_BYTES", 1000)
    with pytest.raises(
        data.DataError, match=r"its arrays declare 1,\d{3} bytes; the limit is 1,000"
    ):
        data.load_file(path)


def test_a_feature_whose_spread_overflows_is_refused_not_zeroed():
    # Values of 1e300 square to inf in float64: std() overflows (first principles).
    x = np.array([[1.0, 1e300], [2.0, -1e300], [3.0, 0.0]])
    with pytest.raises(data.DataError, match=r"feature column 'b' holds values up to 1e\+300"):
        data.standardizer(x, "d.csv", ("a", "b"))
    with pytest.raises(data.DataError, match=r"feature column 1 \(from 0\)"):
        data.standardizer(x)
    mean, scale = data.standardizer(np.array([[1e300], [1e300]]))  # constant: no spread
    assert mean[0] == 1e300 and scale[0] == 1.0


def test_a_csv_over_the_size_limit_is_refused_before_reading(tmp_path, monkeypatch):
    path = write(tmp_path / "d.csv", "a,target\n" + "1,0\n" * 100)
    monkeypatch.setattr(data, "MAX_CSV_BYTES", 100)
    with pytest.raises(
        data.DataError, match=r"409 bytes; a CSV may have at most 100; save larger data as \.npz"
    ):
        data.load_file(path)
