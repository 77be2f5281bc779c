"""Every array layout NumPy can hand over in a ``.npy`` or ``.npz`` data file is converted (either
byte order, any real dtype) or refused by name (Fortran order for a streamed ``.npy``, complex,
Python objects, records, strings, dates), before anything is trained.

Oracle: the same values saved little-endian in C order and read by NumPy itself, as float64.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from jaxbp.data import files as data
from jaxbp.data import npy as data_npy
from jaxbp.data._rows import row_reader


def values() -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4)).round(2)
    x[:, -1] = rng.integers(0, 2, 50)
    return x


def streamed(path) -> tuple[np.ndarray, np.ndarray, str]:
    loaded = data_npy.load_npy(path, "-1")
    features = loaded.feature_rows(row_reader(loaded.x)(np.arange(len(loaded.x))))
    return features, loaded.y, loaded.fingerprint


@pytest.mark.parametrize("dtype", [">f4", ">f8", "<f4", ">i4", ">u2", "f2", "?"])
def test_a_npy_of_either_byte_order_streams_the_very_values(tmp_path, dtype):
    x = values().astype(dtype)
    np.save(tmp_path / "native.npy", x.astype(x.dtype.newbyteorder("=")))
    np.save(tmp_path / "as-saved.npy", x)
    want = x.astype(np.float64)
    got = streamed(tmp_path / "as-saved.npy")
    np.testing.assert_array_equal(got[0], want[:, :-1])
    np.testing.assert_array_equal(got[1], want[:, -1])
    assert got[2] == streamed(tmp_path / "native.npy")[2]  # the same numbers, the same hash


def test_a_fortran_order_npy_is_refused_by_name_with_the_fix(tmp_path):
    np.save(tmp_path / "x.npy", np.asfortranarray(values()))
    with pytest.raises(data.DataError, match=r"x\.npy: the array is stored in Fortran \(column-major\) order.*np\.save\(path, np\.ascontiguousarray\(x\)\)"):  # fmt: skip
        data_npy.load_npy(tmp_path / "x.npy", "-1")


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [">f4", "<f8", ">i8"])
def test_a_npz_of_any_order_and_byte_order_loads_the_very_values(tmp_path, order, dtype):
    x = np.asarray(values()[:, :-1], dtype=dtype, order=order)
    np.savez(tmp_path / "d.npz", x=x, y=values()[:, -1].astype(">i4"))
    loaded = data.load_file(tmp_path / "d.npz")
    np.testing.assert_array_equal(loaded.x, x.astype(np.float64))
    np.testing.assert_array_equal(loaded.y, values()[:, -1])


REFUSED = [
    (
        "complex",
        np.complex128,
        "complex128; it must hold real numbers (bool, integer or float); keep the real part",
    ),
    (
        "objects",
        object,
        "object; it must hold real numbers (bool, integer or float); it holds Python objects, which are never unpickled",
    ),
    (
        "records",
        [("a", "f4"), ("b", "f4")],
        "[('a', '<f4'), ('b', '<f4')]; it must hold real numbers (bool, integer or float); it holds records of named fields",
    ),
    ("strings", "U5", "<U5; it must hold real numbers"),
    ("dates", "M8[s]", "datetime64[s]; it must hold real numbers"),
]


@pytest.mark.parametrize(("kind", "dtype", "message"), REFUSED, ids=[r[0] for r in REFUSED])
def test_a_npy_of_no_real_numbers_is_refused_by_dtype(tmp_path, kind, dtype, message):
    x = np.zeros((50, 4), dtype=dtype) if kind != "objects" else values().astype(object)
    np.save(tmp_path / "x.npy", x, allow_pickle=True)
    with pytest.raises(data.DataError, match=re.escape(f"x.npy: the array has dtype {message}")):
        data_npy.load_npy(tmp_path / "x.npy", "-1")


@pytest.mark.parametrize(("kind", "dtype", "message"), REFUSED, ids=[r[0] for r in REFUSED])
def test_a_npz_of_no_real_numbers_is_refused_by_dtype_without_unpickling(tmp_path, kind, dtype, message):  # fmt: skip
    x = np.zeros((50, 4), dtype=dtype) if kind != "objects" else values().astype(object)
    np.savez(tmp_path / "d.npz", x=x, y=np.zeros(50))
    with pytest.raises(data.DataError, match=re.escape(f"d.npz: array x has dtype {message}")):
        data.load_file(tmp_path / "d.npz")


def test_a_npy_with_no_columns_is_refused_as_such(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((50, 0)))
    with pytest.raises(data.DataError, match=r"the array has no columns \(shape \(50, 0\)\)"):
        data_npy.load_npy(tmp_path / "x.npy", "-1")


@pytest.mark.parametrize(
    ("header", "name", "places"),
    [
        ("value,x,value,target", "value", "1, 3"),
        ("a,b,target,b,b", "b", "2, 4, 5"),
        ("target,a,target", "target", "1, 3"),
        (" value ,value,target", "value", "1, 2"),  # cells are stripped, as the header's names are
    ],
)
def test_a_csv_column_name_used_twice_is_refused_with_its_positions(tmp_path, header, name, places):
    path = tmp_path / "d.csv"
    cells = header.count(",") + 1
    path.write_text(header + "\n" + ",".join(["1"] * cells) + "\n")
    with pytest.raises(
        data.DataError, match=re.escape(f"columns are named {name!r} (columns {places}")
    ):
        data.load_file(path)


def test_a_csv_header_of_300000_columns_is_checked_for_repeats_in_one_pass(tmp_path):
    path = tmp_path / "wide.csv"
    names = [f"c{i}" for i in range(300_000)]
    path.write_text(",".join([*names, "target"]) + "\n" + ",".join(["1"] * 300_001) + "\n")
    assert data.load_file(path).x.shape == (1, 300_000)  # a pairwise check would take hours


def npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_a_npy_cut_short_before_loading_names_both_sizes(tmp_path):
    raw = npy_bytes(np.ones((1000, 4)))  # a 128-byte header and 32,000 bytes of float64
    (tmp_path / "x.npy").write_bytes(raw[:16064])
    with pytest.raises(data.DataError, match=r"the file is 16,064 bytes but its header .* needs 32,128; it was cut short"):  # fmt: skip
        data_npy.load_npy(tmp_path / "x.npy", "-1")


@pytest.mark.parametrize(
    ("kind", "header"),
    [
        ("unclosed", b"{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }\n"),
        ("negative", b"{'descr': '<f8', 'fortran_order': False, 'shape': (-100, 4), }"),
    ],
)
def test_a_npy_with_a_bad_header_is_refused_not_a_traceback(tmp_path, kind, header):
    if kind == "unclosed":
        raw = b"\x93NUMPY\x01\x00\x20\x00" + header + b"x" * 10  # says 32 bytes, stops mid-dict
    else:
        raw = npy_bytes(np.ones((1000, 4))).replace(b"'shape': (1000, 4)", b"'shape': (-100, 4)")
    (tmp_path / "x.npy").write_bytes(raw)
    with pytest.raises(data.DataError, match=r"x\.npy: not a readable \.npy file"):
        data_npy.load_npy(tmp_path / "x.npy", "-1")


def test_random_bytes_named_npz_are_not_a_zip_and_never_unpickled(tmp_path):
    (tmp_path / "d.npz").write_bytes(np.random.default_rng(0).bytes(3000))
    with pytest.raises(data.DataError, match=r"d.npz: not a readable .npz file \(not a zip archive\)") as info:  # fmt: skip
        data.load_file(tmp_path / "d.npz")
    assert "allow_pickle" not in str(info.value)


def test_a_csv_with_a_byte_order_mark_names_its_first_column_plainly(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes("\ufefftarget,a\n0,1\n1,2\n".encode())  # as spreadsheet programs save it
    loaded = data.load_file(path)
    assert loaded.columns == ("a",)
    np.testing.assert_array_equal(loaded.y, [0, 1])
