"""The callbacks of ``jaxbp.callbacks`` beyond early stopping: validation into the metrics, the
progress display's plain lines, and when and what ``Checkpoints`` saves.

Oracles: the steps at which a callback must act, worked out by hand from the chunk plan; the text
a line must have, written out; the parameters ``fit`` returns and a later callback sees (the same
tree, bit for bit); and what a checkpoint file holds when read back.
"""

from __future__ import annotations

import io
import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxbp
from jaxbp.callbacks import Checkpoints, EarlyStopping, ProgressBar, Validation
from jaxbp.layers import presets
from jaxbp.training import callbacks, checkpoint, checkpoint_callback

SPEC = jaxbp.MLP(sizes=(3, 5, 2), activations=("tanh", "linear"))


def _fit_data():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(11, 3)), rng.normal(size=(11, 2))  # batch 2: 5 steps per epoch
    return jax.tree.map(np.asarray, SPEC.init(jax.random.key(0), jnp.float64)), x, y


def _bitwise(a, b) -> bool:
    leaves = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return all(np.array_equal(x, y) for x, y in leaves)


# --- Validation ----------------------------------------------------------------------------------


def test_validation_evaluates_at_multiples_of_every_and_later_callbacks_see_it():
    params, x, y = _fit_data()
    evaluated, seen = [], []

    def evaluate(p):
        evaluated.append(p)
        return {"val_loss": float(len(evaluated)), "val_accuracy": None}

    def watch(step, p, metrics):
        seen.append((step, metrics.get("val_loss"), "val_accuracy" in metrics))

    validation = Validation(evaluate, 5)
    jaxbp.fit(
        SPEC, "mse", params, x, y, lr=0.1, epochs=3, batch_size=2, chunk_steps=3,
        validate_every=5, callbacks=[validation, watch],
    )  # fmt: skip
    # chunks of 3 cut at 5 and 10 (validate_every) end at 3, 5, 8, 10, 13, 15
    assert [s for s, _, _ in seen] == [3, 5, 8, 10, 13, 15]
    assert seen[1] == (5, 1.0, True) and seen[3] == (10, 2.0, True) and seen[5] == (15, 3.0, True)
    assert seen[0] == (3, None, False) and seen[2] == (8, None, False)


def test_validation_at_the_total_step_too():
    got = []
    validation = Validation(lambda p: {"val_loss": p}, 4, total=6)
    for step in (2, 4, 6):
        metrics: dict = {}
        validation(step, float(step), metrics)
        got.append(metrics)
    assert got == [{}, {"val_loss": 4.0}, {"val_loss": 6.0}]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"evaluate": 3, "every": 1}, TypeError, "evaluate must be a function of the params"),
        ({"evaluate": print, "every": 0}, ValueError, "every must be an int >= 1, got 0"),
        ({"evaluate": print, "every": True}, ValueError, "every must be an int >= 1, got True"),
    ],
    ids=["evaluate-not-callable", "every-0", "every-bool"],
)
def test_validation_refuses_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        Validation(**kwargs)


# --- ProgressBar's plain lines -------------------------------------------------------------------


def test_progress_lines_at_epoch_ends_and_inside_long_epochs():
    stream = io.StringIO()  # not a terminal: lines, no bar
    bar = ProgressBar(30, 0, steps_per_epoch=3, lines=stream, line_seconds=0.0, number_format=".4f")  # fmt: skip
    bar(2, None, {"loss": 0.5})
    bar(3, None, {"loss": 9.0, "train_loss": 0.25, "val_loss": 0.5, "val_accuracy": 0.75})
    bar(6, None, {"loss": 9.0, "train_loss": 0.125, "val_loss": float("nan"), "val_accuracy": None})  # fmt: skip
    assert stream.getvalue().splitlines() == [
        "epoch  1/10  step 2/3  loss 0.5000",
        "epoch  1/10  loss 0.2500  val_loss 0.5000  val_acc 0.7500",
        "epoch  2/10  loss 0.1250  val_loss nan",
    ]


def test_progress_lines_inside_an_epoch_wait_line_seconds(monkeypatch):
    clock = iter([0.0, 10.0, 40.0, 41.0, 50.0])  # construction, then one reading per line asked
    monkeypatch.setattr(callbacks, "time", types.SimpleNamespace(monotonic=lambda: next(clock)))
    stream = io.StringIO()
    bar = ProgressBar(8, 0, steps_per_epoch=4, lines=stream)  # LINE_SECONDS: 30
    bar(1, None, {"loss": 1.0})  # at 10 s: too soon
    bar(2, None, {"loss": 2.0})  # at 40 s: printed (and the clock read again: 41 s)
    bar(3, None, {"loss": 3.0})  # at 50 s: 9 s after the last line
    assert stream.getvalue().splitlines() == ["epoch 1/2  step 2/4  loss 2"]


def test_progress_prints_nothing_without_lines_or_without_an_epoch_length(capsys):
    stream = io.StringIO()
    for bar in (ProgressBar(6, 0, steps_per_epoch=3), ProgressBar(6, 0, lines=stream)):
        bar(3, None, {"loss": 1.0, "val_loss": 2.0})
        bar.close()
    assert stream.getvalue() == "" and capsys.readouterr() == ("", "")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"number_format": "xyz"}, ValueError, "number_format must be a format spec for floats"),
        ({"lines": "out.txt"}, TypeError, r"lines must be a text stream with write\(\).*got str"),
        ({"total": -1}, ValueError, r"total must be an int >= 0 \(or None\), got -1"),
        ({"steps_per_epoch": -4}, ValueError, r"steps_per_epoch must be an int >= 1 \(or None\)"),
        ({"initial": 1.5}, ValueError, "initial must be an int >= 0, got 1.5"),
        ({"line_seconds": -1}, ValueError, "line_seconds must be a number >= 0, got -1"),
        ({"examples_per_step": 0}, ValueError, "examples_per_step must be an int >= 1"),
    ],
    ids=[
        "format",
        "lines-a-path",
        "total",
        "steps-per-epoch",
        "initial",
        "line-seconds",
        "examples",
    ],
)
def test_progress_refuses_what_it_would_fail_on_or_show_wrongly(kwargs, error, message):
    # a bad format or a path as lines raised after the first chunk; negative counts printed
    # "epoch -1/-2"
    with pytest.raises(error, match=f"ProgressBar: {message}"):
        ProgressBar(**{"total": 8, "steps_per_epoch": 4, "lines": io.StringIO(), **kwargs})


def test_validation_and_early_stopping_refuse_names_that_are_not_names():
    # a string as metrics_added was split into letters ("its metrics: '_', 'a', ...")
    with pytest.raises(TypeError, match=r"Validation: metrics_added must be a tuple of metric names"):  # fmt: skip
        Validation(lambda p: {"val_loss": 1.0}, 2, metrics_added="val_loss")
    with pytest.raises(TypeError, match="EarlyStopping: metric must be the name of a metric"):
        EarlyStopping(2, metric=3)


def test_early_stopping_names_a_metric_that_is_an_array():
    # was NumPy's "only 0-dimensional arrays can be converted to Python scalars"
    stopper = EarlyStopping(2)
    with pytest.raises(TypeError, match=r"metrics\['val_loss'\] is ndarray .* after step 4, not a number"):  # fmt: skip
        stopper(4, None, {"val_loss": np.array([1.0, 2.0])})
    assert stopper(4, None, {"val_loss": np.float32(1.0)}) is None and stopper.best == 1.0


# --- Checkpoints -----------------------------------------------------------------------------------


def test_checkpoints_saves_every_minutes_inside_epochs(tmp_path, monkeypatch):
    clock = iter(range(0, 10**6, 61))  # every reading is 61 s after the last
    monkeypatch.setattr(checkpoint_callback, "time", types.SimpleNamespace(perf_counter=lambda: next(clock)))  # fmt: skip
    params, x, y = _fit_data()
    saver = Checkpoints(tmp_path / "run", every=1000, model=SPEC, keep=100, minutes=1)
    jaxbp.fit(SPEC, "mse", params, x, y, lr=0.1, epochs=2, batch_size=2, chunk_steps=2, callbacks=[saver])  # fmt: skip
    # chunks of 2 cut at the epoch end (5): 2, 4, 5, 7, 9, 10
    assert [checkpoint.load(p).step for p in saver.saved] == [2, 4, 5, 7, 9, 10]
    names = [p.name for p in checkpoint.list_checkpoints(tmp_path / "run")]
    assert names[:3] == ["checkpoint-00000000.s0000000002.jaxbp", "checkpoint-00000000.s0000000004.jaxbp", "checkpoint-00000001.jaxbp"]  # fmt: skip


def test_checkpoints_saves_and_stops_when_asked(tmp_path):
    params, x, y = _fit_data()
    seen = []
    saver = Checkpoints(tmp_path / "run", every=1000, model=SPEC, stop=lambda: len(seen) == 3)
    got, history = jaxbp.fit(
        SPEC, "mse", params, x, y, lr=0.1, epochs=3, batch_size=2, chunk_steps=2,
        callbacks=[lambda step, p, m: seen.append(step), saver],
    )  # fmt: skip
    assert seen == [2, 4, 5] and history["stop"] == "Checkpoints" and history["steps_done"] == 5
    saved = checkpoint.load(checkpoint.resolve(tmp_path / "run"))
    assert [p.name for p in saver.saved] == ["checkpoint-00000001.jaxbp"] and saved.step == 5
    assert _bitwise(saved.params, jax.device_get(got))


def test_checkpoints_counts_from_initial_and_flush_saves_the_last_state(tmp_path):
    params = jax.device_get(SPEC.init(jax.random.key(0)))
    saver = Checkpoints(tmp_path / "run", every=5, model=SPEC, initial=7)
    for step in (8, 9):  # a resumed run at step 7: the next multiple of 5 is 10
        assert saver(step, params, {"epoch": 1, "step_in_epoch": step - 5}) is None
    assert saver.saved == []
    saver(10, params, {"epoch": 2, "step_in_epoch": 0})
    saver(12, params, {"epoch": 2, "step_in_epoch": 2})
    assert [p.name for p in saver.saved] == ["checkpoint-00000002.jaxbp"]
    newest = saver.flush()
    assert newest is not None and newest.name == "checkpoint-00000002.s0000000002.jaxbp"
    assert checkpoint.load(newest).step == 12
    assert saver.flush() == newest and len(saver.saved) == 2  # nothing new to save


def test_checkpoints_writes_the_config_arrays_and_metrics_given(tmp_path):
    params = jax.device_get(SPEC.init(jax.random.key(0)))
    written = []
    mean = np.array([0.5, -1.0, 2.0])
    saver = Checkpoints(
        tmp_path / "run", every=1, model=SPEC, key=jax.random.key(3),
        config={"lr": 0.1}, arrays={"mean": mean},
        record=lambda step: {"done": step, "history": [1.0, 2.0]},
        on_save=lambda path, step: written.append((path.name, step)),
    )  # fmt: skip
    saver(4, params, {"epoch": 2, "step_in_epoch": 0, "loss": 7.0})
    saved = checkpoint.load(checkpoint.resolve(tmp_path / "run"))
    assert saved.config == {"lr": 0.1}
    assert saved.metrics == {"done": 4, "history": [1.0, 2.0]}
    np.testing.assert_array_equal(saved.arrays["mean"], mean)
    np.testing.assert_array_equal(saved.key, jax.random.key_data(jax.random.key(3)))
    assert written == [("checkpoint-00000002.jaxbp", 4)]


def test_plain_sgd_saves_no_optimizer_state_and_adam_saves_its_own(tmp_path):
    params, x, y = _fit_data()
    for name, rule in (("sgd", {"lr": 0.1}), ("adam", {"optimizer": optax.adam(0.05)})):
        saver = Checkpoints(tmp_path / name, every=5, model=SPEC)
        jaxbp.fit(SPEC, "mse", params, x, y, epochs=1, batch_size=2, callbacks=[saver], **rule)
        saved = checkpoint.load(saver.saved[-1])
        if name == "sgd":  # its step count is the checkpoint's step
            assert saved.opt_state is None
        else:
            assert any(path.endswith(".mu[0]['w']") for path in saved.opt_state)


def test_a_layer_network_is_saved_with_its_description(tmp_path):
    network = presets.PRESETS["logistic"].network
    params = jax.device_get(network.init(jax.random.key(0)))
    path = Checkpoints(tmp_path / "run", every=1, model=network).save(1, params, {})
    assert checkpoint.load(path).spec == network


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"minutes": -1}, "minutes must be a number >= 0, got -1"),
        ({"minutes": True}, "minutes must be a number >= 0, got True"),
        ({"initial": -2}, "initial must be an int >= 0, got -2"),
        ({"every": 0}, "every must be an int >= 1, got 0"),
    ],
    ids=["minutes-negative", "minutes-bool", "initial-negative", "every-0"],
)
def test_checkpoints_refuses_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Checkpoints(tmp_path, **{"every": 1, "model": SPEC, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"key": 3}, TypeError, r"Checkpoints: key must be one PRNG key.*got int 3"),
        (
            {"config": {"f": object()}},
            TypeError,
            r"config must be a dict of JSON values .* object is not JSON serializable",
        ),
        ({"arrays": [1, 2]}, TypeError, "arrays must be a dict of named arrays, got list"),
        ({"arrays": {"mean": np.array([np.nan])}}, ValueError, r"arrays\['mean'\] holds NaN"),
        ({"arrays": {"names": np.array(["a"])}}, TypeError, r"arrays\['names'\] .* real numbers"),
        ({"directory": None}, TypeError, "directory must be a path, got NoneType"),
    ],
    ids=[
        "key-an-int",
        "config-not-json",
        "arrays-a-list",
        "arrays-nan",
        "arrays-strings",
        "no-directory",
    ],
)
def test_checkpoints_refuses_what_its_first_save_would_fail_on(tmp_path, kwargs, error, message):
    # each used to raise at the first save, after training had started
    with pytest.raises(error, match=message):
        Checkpoints(**{"directory": tmp_path / "run", "every": 1, "model": SPEC, **kwargs})
    assert not (tmp_path / "run").exists()


def test_checkpoints_refuses_a_file_for_a_folder_before_the_run(tmp_path):
    mine = tmp_path / "notes"
    mine.write_text("mine")
    with pytest.raises(ValueError, match=r"Checkpoints: .*notes is not a folder \(a file is there\)"):  # fmt: skip
        Checkpoints(mine, every=1, model=SPEC)
    assert mine.read_text() == "mine"


def test_checkpoints_refuses_a_folder_of_an_earlier_run_and_leaves_it(tmp_path):
    params, x, y = _fit_data()  # 5 steps per epoch
    first = Checkpoints(tmp_path / "run", every=5, model=SPEC, keep=3)
    jaxbp.fit(SPEC, "mse", params, x, y, lr=0.1, epochs=3, batch_size=2, callbacks=[first])
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}
    assert sorted(before) == [f"checkpoint-0000000{e}.jaxbp" for e in (1, 2, 3)]
    # a second run from scratch would overwrite epochs 1 and 2, then be pruned below epoch 3
    with pytest.raises(ValueError, match=r"already holds 3 checkpoint\(s\) of an earlier run \(newest: checkpoint-00000003.jaxbp\)"):  # fmt: skip
        Checkpoints(tmp_path / "run", every=5, model=SPEC, keep=3)
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == before
    # continuing that run is allowed, and so is a folder holding only a step-0 checkpoint
    Checkpoints(tmp_path / "run", every=5, model=SPEC, initial=15)
    Checkpoints(tmp_path / "run0", every=5, model=SPEC).save(0, params, {})
    Checkpoints(tmp_path / "run0", every=5, model=SPEC)


# --- checked before the first step ---------------------------------------------------------------


def _recorder():
    calls = []

    def record(step, params, metrics):
        calls.append(step)

    return calls, record


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        ([42], TypeError, r"callbacks\[1\] is int 42, not callable; a callback is a function callback\(step, params, metrics\)"),
        ([lambda step: None], TypeError, r"callbacks\[1\] is function .*signature \(step\) does not take \(step, params, metrics\)"),
        ([None], TypeError, r"callbacks\[1\] is NoneType None, not callable"),
        ([callbacks.EarlyStopping], TypeError, r"callbacks\[1\] is type .*, a class, not a callback made from it; pass EarlyStopping\(\.\.\.\)"),
    ],
    ids=["int", "one-argument", "none", "class"],
)  # fmt: skip
def test_a_callback_that_is_not_one_is_refused_before_the_first_step(bad, error, message):
    params, x, y = _fit_data()
    calls, record = _recorder()
    with pytest.raises(error, match=message):
        jaxbp.fit(SPEC, "mse", params, x, y, lr=0.1, epochs=2, batch_size=2, callbacks=[record, *bad])  # fmt: skip
    assert calls == []  # nothing ran: not even the good callback before it


@pytest.mark.parametrize("bad", [callbacks.EarlyStopping(1), "stop", 3], ids=["one-callback", "str", "int"])  # fmt: skip
def test_callbacks_that_are_not_a_list_are_refused(bad):
    params, x, y = _fit_data()
    with pytest.raises(
        TypeError, match=r"callbacks must be a list of callbacks, got .*pass a list"
    ):
        jaxbp.fit(SPEC, "mse", params, x, y, lr=0.1, epochs=2, batch_size=2, callbacks=bad)


def test_early_stopping_without_its_metric_is_refused_before_the_first_step():
    params, x, y = _fit_data()
    calls, record = _recorder()
    stopper = callbacks.EarlyStopping(1)  # watches "val_loss", but no validation is passed
    with pytest.raises(ValueError, match=r"callbacks\[0\] EarlyStopping watches metric 'val_loss', which this run never computes \(its metrics: 'epoch', 'loss', 'losses', 'opt_state', 'step_in_epoch'\); pass validation="):  # fmt: skip
        jaxbp.fit(SPEC, "mse", params, x, y, lr=0.1, epochs=2, batch_size=2, callbacks=[stopper, record])  # fmt: skip
    assert calls == []
    typo = callbacks.EarlyStopping(1, metric="val_los")
    with pytest.raises(ValueError, match=r"watches metric 'val_los'.*'step_in_epoch', 'val_loss'\)"):  # fmt: skip
        jaxbp.fit(SPEC, "mse", params, x, y, lr=0.1, epochs=2, batch_size=2, validation=(x, y), callbacks=[typo])  # fmt: skip


def test_a_validation_that_declares_its_metrics_is_checked_before_the_run():
    params, x, y = _fit_data()
    evaluate = lambda p: {"val_accuracy": 0.5}  # noqa: E731
    declared = Validation(evaluate, 5, metrics_added=("val_accuracy",))
    watch = callbacks.EarlyStopping(0, metric="val_acc", mode="max")
    with pytest.raises(ValueError, match=r"watches metric 'val_acc'.*'val_accuracy'"):
        jaxbp.fit(SPEC, "mse", params, x, y, lr=0.1, epochs=2, batch_size=2, callbacks=[declared, watch])  # fmt: skip
    # the right name: the run goes on, and the constant accuracy stops it at the second evaluation
    watch = callbacks.EarlyStopping(0, metric="val_accuracy", mode="max")
    _, history = jaxbp.fit(SPEC, "mse", params, x, y, lr=0.1, epochs=3, batch_size=2, callbacks=[declared, watch])  # fmt: skip
    assert history["stop"] == "EarlyStopping" and history["steps_done"] == 10


def test_early_stopping_after_an_undeclared_callback_warns_when_it_never_acted():
    params, x, y = _fit_data()
    adds = Validation(lambda p: {"val_accuracy": 0.5}, 5)  # says nothing of what it adds
    watch = callbacks.EarlyStopping(1, metric="val_acc")
    with pytest.warns(jaxbp.TrainingWarning, match=r"callbacks\[1\] EarlyStopping watches metric 'val_acc', but no chunk of this run had it \(its metrics: .*'val_accuracy'\), so it never acted"):  # fmt: skip
        jaxbp.fit(SPEC, "mse", params, x, y, lr=0.1, epochs=2, batch_size=2, callbacks=[adds, watch])  # fmt: skip


@pytest.mark.parametrize("result", [np.True_, jnp.asarray(True)], ids=["numpy", "jax"])
def test_a_callback_returning_a_numpy_or_jax_true_stops(result):
    params, x, y = _fit_data()
    _, history = jaxbp.fit(SPEC, "mse", params, x, y, lr=0.1, epochs=2, batch_size=2, chunk_steps=1, callbacks=[lambda s, p, m: result])  # fmt: skip
    assert history["steps_done"] == 1 and history["stop"] == "<lambda>"


def test_none_means_no_callbacks():
    params, x, y = _fit_data()
    _, history = jaxbp.fit(SPEC, "mse", params, x, y, lr=0.1, epochs=1, batch_size=2, callbacks=None)  # fmt: skip
    assert history["loss"].shape == (5,)


def test_what_validation_and_early_stopping_cannot_use_is_named():
    params, x, y = _fit_data()
    listed = Validation(lambda p: [0.5], 5)
    with pytest.raises(TypeError, match=r"Validation: evaluate\(params\) returned list \[0.5\] after step 5; it must return a dict"):  # fmt: skip
        jaxbp.fit(SPEC, "mse", params, x, y, lr=0.1, epochs=1, batch_size=2, callbacks=[listed])
    missing = Validation(lambda p: {"val_accuracy": None}, 5)  # a regression has no accuracy
    watch = callbacks.EarlyStopping(1, metric="val_accuracy", mode="max")
    with pytest.raises(TypeError, match=r"metrics\['val_accuracy'\] is NoneType None after step 5, not a number"):  # fmt: skip
        jaxbp.fit(SPEC, "mse", params, x, y, lr=0.1, epochs=1, batch_size=2, callbacks=[missing, watch])  # fmt: skip


@pytest.mark.parametrize("name", ["stop_on_nonfinite", "progress"])
def test_flags_must_be_booleans(name):
    params, x, y = _fit_data()
    with pytest.raises(TypeError, match=f"fit: {name} must be True or False, got str 'no'"):
        jaxbp.fit(SPEC, "mse", params, x, y, lr=0.1, epochs=1, **{name: "no"})
