"""Write a large synthetic regression data set as two .npy files, block by block.

``x`` is standard normal, ``y = tanh(x @ W) @ v`` plus a little noise, with ``W`` and ``v`` drawn
from the seed: a smooth target an MLP can learn. Both are float32. The files are written one block
of rows at a time (the .npy header first, then each block's bytes), so the memory used is one
block, whatever the size; ``np.load(path, mmap_mode="r")`` reads them back.

    python benchmarks/make_synthetic.py --out /tmp/synth --gib 2 --features 256
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

HIDDEN = 32
NOISE = 0.01


def teacher(features: int, outputs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(features, HIDDEN)).astype(np.float32) / np.float32(math.sqrt(features))
    v = rng.normal(size=(HIDDEN, outputs)).astype(np.float32) / np.float32(math.sqrt(HIDDEN))
    return w, v


def _open_npy(path: Path, shape: tuple[int, ...]):
    handle = path.open("wb")
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False, "shape": shape}  # fmt: skip
    np.lib.format.write_array_header_1_0(handle, header)
    return handle


def write_dataset(
    directory: str | Path,
    rows: int,
    features: int,
    *,
    outputs: int = 1,
    seed: int = 0,
    block_rows: int = 65536,
) -> tuple[Path, Path]:
    """Write ``x.npy`` ``(rows, features)`` and ``y.npy`` ``(rows, outputs)``; return their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    w, v = teacher(features, outputs, seed)
    rng = np.random.default_rng(seed + 1)
    x_path, y_path = directory / "x.npy", directory / "y.npy"
    with _open_npy(x_path, (rows, features)) as fx, _open_npy(y_path, (rows, outputs)) as fy:
        for start in range(0, rows, block_rows):
            count = min(block_rows, rows - start)
            x = rng.standard_normal((count, features), dtype=np.float32)
            y = np.tanh(x @ w) @ v + np.float32(NOISE) * rng.standard_normal(
                (count, outputs), dtype=np.float32
            )
            fx.write(x.tobytes())
            fy.write(y.astype(np.float32).tobytes())
    return x_path, y_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory for x.npy and y.npy")
    parser.add_argument("--gib", type=float, default=None, help="size of x in GiB (sets --rows)")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=256)
    parser.add_argument("--outputs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = args.rows if args.gib is None else int(args.gib * 2**30 // (4 * args.features))
    x_path, y_path = write_dataset(
        args.out, rows, args.features, outputs=args.outputs, seed=args.seed
    )
    print(f"wrote {x_path} ({rows} x {args.features} float32, {x_path.stat().st_size / 2**30:.2f} GiB) and {y_path}")  # fmt: skip


if __name__ == "__main__":
    main()
