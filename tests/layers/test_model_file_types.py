"""Model files accept only the JSON types their fields document; everything else is a
:class:`ModelFileError` naming the layer, the field and what it takes, before any array exists.

Oracle: each field's documented type (``features`` a positive int, ``bias`` true or false,
``init_scheme`` one of three names or null, sizes at most 2**31 - 1, XLA's int32 dimensions),
and JSON itself (no NaN, no Infinity, one value per key).
"""

from __future__ import annotations

import copy
import json
import os

import pytest

from jaxbp.layers import model_file, specs
from jaxbp.model.mlp import INITIALIZERS

BASE = {
    "input_shape": [8],
    "layers": [
        {"type": "Reshape", "shape": [8, 1]},
        {"type": "Conv1D", "features": 2, "kernel_size": 3},
        {"type": "Flatten"},
        {"type": "Dense", "features": 3},
    ],
}
HUGE = 2**31  # one past int32
# JSON values of every type: bool (an int to Python), floats, strings, lists, null, objects
WRONG = [True, False, 2.0, 2.5, "2", [[2]], None, {"a": 1}, -3, 0, HUGE, 10**20]


def load(tmp_path, data=None, text=None):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(data) if text is None else text)
    return model_file.load(path)


def with_field(layer: int, field: str, value) -> dict:
    data = copy.deepcopy(BASE)
    data["layers"][layer][field] = value
    return data


def test_the_base_description_loads(tmp_path):
    assert load(tmp_path, BASE).shapes[-1] == (3,)


@pytest.mark.parametrize("value", [*WRONG, [2]], ids=repr)
@pytest.mark.parametrize("layer", [1, 3], ids=["Conv1D", "Dense"])
def test_features_takes_only_a_positive_int(tmp_path, layer, value):
    name = "Conv1D" if layer == 1 else "Dense"
    with pytest.raises(model_file.ModelFileError, match=rf"layers\[{layer}\]: {name}: features must be a positive int \(at most 2,147,483,647\)"):  # fmt: skip
        load(tmp_path, with_field(layer, "features", value))


@pytest.mark.parametrize("value", [*(v for v in WRONG if not isinstance(v, bool)), 1], ids=repr)
@pytest.mark.parametrize("layer", [1, 3], ids=["Conv1D", "Dense"])
def test_bias_takes_only_true_or_false(tmp_path, layer, value):
    with pytest.raises(model_file.ModelFileError, match=rf"layers\[{layer}\]: \w+: bias must be true or false"):  # fmt: skip
        load(tmp_path, with_field(layer, "bias", value))


@pytest.mark.parametrize(
    "value", ["evil", "Glorot", *(v for v in WRONG if v is not None)], ids=repr
)
@pytest.mark.parametrize("layer", [1, 3], ids=["Conv1D", "Dense"])
def test_init_scheme_takes_only_a_known_name_or_null(tmp_path, layer, value):
    with pytest.raises(model_file.ModelFileError, match=rf"layers\[{layer}\]: \w+: unknown init_scheme .*; valid: 'glorot', 'he', 'lecun' or null"):  # fmt: skip
        load(tmp_path, with_field(layer, "init_scheme", value))


def test_every_init_scheme_a_file_may_name_initialises(tmp_path):
    assert set(specs.INIT_SCHEMES) == set(INITIALIZERS)
    for scheme in [*specs.INIT_SCHEMES, None]:
        assert load(tmp_path, with_field(3, "init_scheme", scheme)).layers[3].init_scheme == scheme


@pytest.mark.parametrize("field", ["kernel_size", "stride", "padding"])
@pytest.mark.parametrize("value", [True, 2.0, "2", [[[2]]], None, {"a": 1}, -3, HUGE, 10**20], ids=repr)  # fmt: skip
def test_conv_sizes_take_only_ints_within_int32(tmp_path, field, value):
    with pytest.raises(model_file.ModelFileError, match=rf"layers\[1\]: Conv1D: {field} must be "):  # fmt: skip
        load(tmp_path, with_field(1, field, value))


@pytest.mark.parametrize("value", [[True], [8.0], ["8"], [[8]], [None], [-8], [HUGE], 8.0, None], ids=repr)  # fmt: skip
def test_input_shape_takes_only_positive_ints_within_int32(tmp_path, value):
    data = copy.deepcopy(BASE)
    data["input_shape"] = value
    with pytest.raises(model_file.ModelFileError, match="input_shape must be a tuple of positive ints"):  # fmt: skip
        load(tmp_path, data)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_literals_are_refused_as_not_json(tmp_path, constant):
    text = json.dumps(BASE).replace('"features": 3', f'"features": {constant}')
    with pytest.raises(model_file.ModelFileError, match=f"{constant} is not a JSON value"):
        load(tmp_path, text=text)


def test_a_repeated_key_is_refused_not_silently_the_last(tmp_path):
    text = json.dumps(BASE).replace('"features": 3', '"features": 3, "features": 4')
    with pytest.raises(model_file.ModelFileError, match="the key 'features' appears twice"):
        load(tmp_path, text=text)


def test_an_int_of_thousands_of_digits_is_refused_by_its_length(tmp_path):
    text = json.dumps(BASE).replace('"features": 3', '"features": ' + "9" * 5000)
    with pytest.raises(model_file.ModelFileError, match="an integer of 5000 digits; sizes are at most 2,147,483,647"):  # fmt: skip
        load(tmp_path, text=text)


@pytest.mark.parametrize("value", [["Dense"], {"name": "Dense"}, 3, None, True], ids=repr)
def test_a_type_that_is_not_a_string_is_refused_naming_the_layer(tmp_path, value):
    data = with_field(3, "type", value)
    with pytest.raises(model_file.ModelFileError, match=r'layers\[3\]: expected an object with "type" one of'):  # fmt: skip
        load(tmp_path, data)


@pytest.mark.parametrize("depth", [100, 101, 400, 2000, 100_000])
def test_residual_blocks_nested_too_deeply_are_a_model_file_error(tmp_path, depth):
    block = '{"type": "Dense", "features": 8}'
    text = '{"input_shape": [8], "layers": [' + '{"type": "Residual", "layers": [' * depth
    text += block + "]}" * depth + "]}"
    if depth == 100:  # a deep but sane nesting still loads
        assert load(tmp_path, text=text).shapes[-1] == (8,)
        return
    with pytest.raises(model_file.ModelFileError, match=r"m.json(: (layers\[0\]: residual blocks )?nested too deeply| has [\d,]+ bytes)"):  # fmt: skip
        load(tmp_path, text=text)  # 101 and 400 (read, but each level recurses again): the limit


def test_a_byte_order_mark_is_read_as_the_text_after_it(tmp_path):
    path = tmp_path / "m.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(BASE).encode())  # as some Windows editors save
    assert model_file.load(path) == load(tmp_path, BASE)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda p: p.write_bytes(b'{"input_shape": [8\xff]}'),
            r"m.json is not UTF-8 text \(byte 18\)",
        ),
        (lambda p: p.mkdir(), r"m.json is not a regular file"),
        (lambda p: os.mkfifo(p), r"m.json is not a regular file"),  # would block a read forever
        (
            lambda p: p.write_bytes(b" " * (2**20 + 1)),
            r"m.json has 1,048,577 bytes; a model description is a few KiB",
        ),
    ],
    ids=["not-utf8", "folder", "fifo", "too-large"],
)
def test_a_file_that_is_no_description_is_a_model_file_error(tmp_path, make, match):
    path = tmp_path / "m.json"
    make(path)
    with pytest.raises(model_file.ModelFileError, match=match):
        model_file.load(path)


def test_save_replaces_a_file_whole_and_keeps_it_when_the_write_fails(tmp_path, monkeypatch):
    path = tmp_path / "m.json"
    net = load(tmp_path, BASE)
    path.write_text("my notes")
    model_file.save(path, net)
    assert model_file.load(path) == net and [p.name for p in tmp_path.iterdir()] == ["m.json"]
    before = path.read_bytes()

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    other = model_file.from_dict({**BASE, "layers": BASE["layers"][:2]})
    monkeypatch.setattr(os, "fsync", full_disk)  # the bytes written, then the disk refuses them
    with pytest.raises(OSError, match="No space left on device"):
        model_file.save(path, other)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.json"]
