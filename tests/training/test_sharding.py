"""Data-parallel fit: 8 simulated CPU devices and 2 processes against the manual chain rule.

The sharded runs happen in fresh processes (tests/sharding_worker.py), because the simulated
device count and ``jax.distributed`` must be set before JAX starts. This process rebuilds every
problem from its NumPy seed and trains it again with ``jaxbp.manual`` (NumPy float64, the chain
rule by hand, SGD or optax on its gradients): the oracle. Sharded and single-device results must
both equal it, and each other, within float64 round-off; the gradient reduction over devices
sums in another order, so bitwise equality is not expected.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import Mesh

import jaxbp
from tests import sharding_worker as worker
from tests.helpers import assert_close, device_env, free_port, run_processes

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "tests" / "sharding_worker.py"
TIMEOUT_S = 120


@pytest.fixture(scope="module")
def eight_devices(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("sharding")
    dump = directory / "hlo"
    out = directory / "devices.json"
    flags = f"--xla_dump_to={dump} --xla_dump_hlo_as_text --xla_dump_hlo_module_re=.*fit.*"
    run = subprocess.run(
        [sys.executable, str(WORKER), "devices", str(out)],
        env=device_env(8, XLA_FLAGS=flags),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(out.read_text())
    result["hlo"] = {path.name: path.read_text() for path in dump.glob("*after_optimizations.txt")}
    return result


# --- the oracle: manual chain rule, step by step ---------------------------------------------
def _orders(case: dict[str, Any], n: int) -> list[np.ndarray]:
    """Each epoch's example order, as fit documents it: a fold_in(key, epoch) permutation."""
    if "key" not in case:
        return [np.arange(n)] * case["epochs"]
    key = jax.random.key(case["key"])
    return [
        np.asarray(jax.random.permutation(jax.random.fold_in(key, epoch), n))
        for epoch in range(case["epochs"])
    ]


def _manual_fit(case: dict[str, Any], params: list, x: np.ndarray, y: np.ndarray, lr: float):
    spec = jaxbp.MLP(case["sizes"], worker.ACTIVATIONS[len(case["sizes"]) - 1])
    n = x.shape[0]
    batch = case["batch_size"] or n
    optimizer = optax.adam(case["adam"]) if "adam" in case else None
    state = optimizer.init(jax.tree.map(jnp.asarray, params)) if optimizer else None
    losses = []
    for order in _orders(case, n):
        for step in range(n // batch):
            rows = order[step * batch : (step + 1) * batch]
            loss, grads = jaxbp.manual.backprop(spec, worker.LOSS, params, x[rows], y[rows])
            losses.append(loss)
            if optimizer is None:
                params = jaxbp.manual.sgd(params, grads, lr)
            else:
                updates, state = optimizer.update(grads, state, params)
                params = optax.apply_updates(params, updates)
    return params, np.array(losses)


def _expected(case: dict[str, Any]) -> tuple[Any, np.ndarray]:
    params, x, y = worker.problem(case)
    if "models" not in case:
        return _manual_fit(case, params, x, y, worker.LEARNING_RATE)
    results = [
        _manual_fit(case, jax.tree.map(lambda leaf, m=m: leaf[m], params), x, y, lr)
        for m, lr in enumerate(worker.learning_rates(case))
    ]
    stacked = jax.tree.map(lambda *leaves: np.stack(leaves), *[r[0] for r in results])
    return stacked, np.stack([r[1] for r in results], axis=-1)


def _arrays(tree: Any) -> Any:
    """JSON lists back to float64 arrays, leaf by leaf (a list of ``{"w", "b"}`` dicts)."""
    return [{k: np.asarray(v, np.float64) for k, v in layer.items()} for layer in tree]


@pytest.mark.parametrize("name", list(worker.CASES))
def test_eight_devices_train_like_one_device_and_the_manual_chain_rule(
    eight_devices: dict[str, Any], name: str
) -> None:
    assert eight_devices["device_count"] == 8
    got = eight_devices["cases"][name]
    params, losses = _expected(worker.CASES[name])
    sharded, single = _arrays(got["sharded"]), _arrays(got["single"])
    assert_close(sharded, params)
    assert_close(single, params)
    assert_close(sharded, single)
    assert_close(np.array(got["loss"]), losses)
    assert_close(np.array(got["single_loss"]), losses)


def test_eight_devices_train_a_users_dict_model_like_a_plain_jax_loop(
    eight_devices: dict[str, Any],
) -> None:
    params, x, labels = worker.own_problem()
    loss = optax.softmax_cross_entropy_with_integer_labels
    value_and_grad = jax.jit(
        jax.value_and_grad(lambda p, xb, yb: jnp.mean(loss(worker.own_model(p, xb), yb)))
    )
    key, losses = jax.random.key(4), []
    expected = jax.tree.map(jnp.asarray, params)
    for epoch in range(3):
        order = np.asarray(jax.random.permutation(jax.random.fold_in(key, epoch), 32))
        for step in range(4):
            rows = order[step * 8 : (step + 1) * 8]
            value, grads = value_and_grad(expected, x[rows], labels[rows])
            expected = jax.tree.map(lambda p, g: p - 0.2 * g, expected, grads)
            losses.append(value)
    for name in ("sharded", "single"):
        got = eight_devices["own_model"][name]
        assert_close({k: np.asarray(v) for k, v in got["params"].items()}, expected)
        assert_close(np.array(got["loss"]), np.array(losses))


def test_the_gradient_reduction_is_compiled_into_the_training_program(
    eight_devices: dict[str, Any],
) -> None:
    # XLA's partitioner, not jaxbp, inserts the collective: it must be in a compiled fit program.
    with_reduction = [name for name, text in eight_devices["hlo"].items() if "all-reduce" in text]
    assert with_reduction, sorted(eight_devices["hlo"])


@pytest.mark.parametrize(
    ("attempt", "pattern"),
    [
        (
            "rows",
            r"fit: x has 36 rows; it must divide by the 8 devices of mesh axis 'data'.*32 or 40",
        ),
        ("batch_size", r"fit: every step's batch \(batch_size 12\).*divide by the 8 devices"),
        ("models", r"fit_ensemble: the ensemble has 6 models; .*8 devices of mesh axis 'model'"),
    ],
)
def test_a_remainder_is_refused_with_a_clear_error(
    eight_devices: dict[str, Any], attempt: str, pattern: str
) -> None:
    message = eight_devices["errors"][attempt]
    assert message.startswith("ValueError: "), message
    assert re.search(pattern, message), message


def test_a_mesh_of_one_device_trains_like_the_manual_chain_rule() -> None:
    case = worker.CASES["mini"]
    params, x, y = worker.problem(case)
    spec = jaxbp.MLP(case["sizes"], worker.ACTIVATIONS[2])
    mesh = jax.make_mesh((1,), ("data",))
    got, history = jaxbp.fit(
        spec,
        worker.LOSS,
        jax.tree.map(jnp.asarray, params),
        x,
        y,
        lr=worker.LEARNING_RATE,
        epochs=case["epochs"],
        batch_size=case["batch_size"],
        mesh=mesh,
    )
    expected, losses = _manual_fit(case, params, x, y, worker.LEARNING_RATE)
    assert_close(got, expected)
    assert_close(history["loss"], losses)


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (("data",), "data"),
        (("batch", "model"), "batch"),
        (("model", "data"), "data"),
        (("model",), None),
    ],
)
def test_the_data_axis_is_the_first_axis_not_named_model(
    names: tuple, expected: str | None
) -> None:
    mesh = jax.make_mesh((1,) * len(names), names)
    assert jaxbp.training.sharding.data_axis(mesh) == expected


def test_shard_batch_refuses_data_that_is_not_a_batch_of_pairs() -> None:
    # rows that differ were placed silently; None was an IndexError, a ragged list NumPy's error
    mesh = jax.make_mesh((1,), ("data",))
    x, y = np.zeros((4, 3), np.float32), np.zeros((4, 1), np.float32)
    with pytest.raises(ValueError, match=r"shard_batch: x has 4 rows \(shape \(4, 3\)\) but y has 3"):  # fmt: skip
        jaxbp.shard_batch(mesh, x, y[:3])
    with pytest.raises(TypeError, match=r"shard_batch: y is None; pass an array"):
        jaxbp.shard_batch(mesh, x, None)
    with pytest.raises(ValueError, match=r"shard_batch: x is a ragged nested sequence"):
        jaxbp.shard_batch(mesh, [[1.0], [1.0, 2.0]], y[:2])
    placed_x, placed_y = jaxbp.shard_batch(mesh, x, y)
    assert placed_x.shape == (4, 3) and placed_y.shape == (4, 1)


def test_a_mesh_that_is_not_a_mesh_is_refused() -> None:
    case = worker.CASES["full"]
    params, x, y = worker.problem(case)
    spec = jaxbp.MLP(case["sizes"], worker.ACTIVATIONS[2])
    with pytest.raises(TypeError, match=r"fit: mesh must be a jax.sharding.Mesh, got list"):
        jaxbp.fit(spec, worker.LOSS, params, x, y, lr=0.1, epochs=1, mesh=jax.devices())


def test_a_mesh_that_lists_a_device_twice_is_refused_before_anything_is_placed(
    tmp_path: Path,
) -> None:
    # jax.sharding.Mesh accepts [d, d]; before, shard_batch failed in JAX's device_put with
    # "safe_zip() argument 1 has length 2 but argument 0 has length 1" and fit with a bare
    # AssertionError
    device = jax.devices()[0]
    case = worker.CASES["full"]
    params, x, y = worker.problem(case)
    spec = jaxbp.MLP(case["sizes"], worker.ACTIVATIONS[2])
    twice = r"mesh lists device .* 2 times \(its 2 entries are 1 distinct devices\)"
    data = Mesh(np.array([device, device]), ("data",))
    with pytest.raises(ValueError, match="shard_batch: " + twice):
        jaxbp.shard_batch(data, x, y)
    with pytest.raises(ValueError, match="fit: " + twice):
        jaxbp.fit(spec, worker.LOSS, params, x, y, lr=0.1, epochs=1, mesh=data)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    with pytest.raises(ValueError, match="fit: " + twice):
        jaxbp.fit(
            spec, worker.LOSS, params, str(tmp_path / "x.npy"), str(tmp_path / "y.npy"),
            lr=0.1, epochs=1, mesh=data,
        )  # fmt: skip
    stacked = jaxbp.init_ensemble(spec, jax.random.key(0), 2)
    models = Mesh(np.array([device, device]), ("model",))
    with pytest.raises(ValueError, match="fit_ensemble: " + twice):
        jaxbp.fit_ensemble(spec, worker.LOSS, stacked, x, y, lr=0.1, epochs=1, mesh=models)


def test_two_processes_feed_their_slices_and_train_like_one_process(tmp_path: Path) -> None:
    num_processes, port = 2, free_port()
    outs = [tmp_path / f"process{i}.json" for i in range(num_processes)]
    command = [sys.executable, str(WORKER), "process"]
    commands = [
        [*command, str(i), str(num_processes), str(port), str(outs[i])]
        for i in range(num_processes)
    ]
    # 2 devices per process: 4 in all, collectives within and across
    run_processes(commands, device_env(2), tmp_path, TIMEOUT_S)
    results = [json.loads(out.read_text()) for out in outs]
    assert [r["process_index"] for r in results] == [0, 1]
    assert all(r["device_count"] == 4 and r["local_device_count"] == 2 for r in results)
    for name in worker.PROCESS_CASES:
        first, second = (r["cases"][name] for r in results)
        assert first == second, f"{name}: the processes ended with different params or losses"
        params, losses = _expected(worker.CASES[name])
        assert_close(_arrays(first["sharded"]), params)
        assert_close(np.array(first["loss"]), losses)


def test_smoke_the_example_runs_unchanged_on_four_devices() -> None:
    code = "import runpy; runpy.run_path('examples/data_parallel.py')['main'](epochs=3)"
    run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=device_env(4),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "devices: 4" in run.stdout, run.stdout


def test_the_code_in_docs_scaling_runs_and_learns(capsys: pytest.CaptureFixture[str]) -> None:
    text = (ROOT / "docs" / "scaling.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "docs/scaling.md", "exec"), {})
    first, last = map(float, re.findall(r"[\d.]+", capsys.readouterr().out)[:2])
    assert last < 0.5 * first
