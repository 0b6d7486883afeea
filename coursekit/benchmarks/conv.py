"""Convolution speed: naive loops vs im2col (numpy) vs PyTorch, forward + backward, on CPU.

    python -m coursekit.benchmarks.conv [--batch 50] [--repeats 10] [--dtype float32]

The default problem is the issue's: 50 images of 3 x 32 x 32, 16 filters 3 x 3, stride 1,
pad 1. Each implementation runs forward then backward (with dout = the upstream gradient of
sum(out)); the time reported is the best of ``--repeats`` runs (the naive loops run once:
they take seconds). The three results are checked to agree before any time is printed.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from ..reference import conv as C


def _best(fn, repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def run(batch=50, channels=3, size=32, filters=16, kernel=3, stride=1, pad=1, repeats=10,
        dtype="float32", naive_repeats=1, out=print) -> dict[str, float]:
    """Time the three implementations; returns {name: seconds} and prints a table."""
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, channels, size, size)).astype(dtype)
    w = (rng.standard_normal((filters, channels, kernel, kernel)) * 0.1).astype(dtype)
    b = rng.standard_normal(filters).astype(dtype)
    out_size = C.output_size(size, kernel, stride, pad)
    dout = np.ones((batch, filters, out_size, out_size), dtype=dtype)

    def numpy_pass(forward, backward):
        y, cache = forward(x, w, b, stride, pad)
        return (y,) + tuple(backward(dout, cache))

    tx, tw, tb = (torch.tensor(a) for a in (x, w, b))

    def torch_pass():
        xx, ww, bb = (t.clone().requires_grad_() for t in (tx, tw, tb))
        y = F.conv2d(xx, ww, bb, stride=stride, padding=pad)
        y.backward(torch.ones_like(y))
        return y.detach(), xx.grad, ww.grad, bb.grad

    out(f"conv forward + backward: x ({batch}, {channels}, {size}, {size}), w ({filters}, "
        f"{channels}, {kernel}, {kernel}), stride {stride}, pad {pad}, {dtype}, CPU "
        f"({os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} threads)")
    torch_pass(), numpy_pass(C.conv_forward_im2col, C.conv_backward_im2col)  # warm up
    times, results = {}, {}
    times["im2col"], results["im2col"] = _best(
        lambda: numpy_pass(C.conv_forward_im2col, C.conv_backward_im2col), repeats)
    times["torch"], results["torch"] = _best(torch_pass, repeats)
    out(f"timing the naive loops ({batch * filters * out_size ** 2:,} iterations of Python "
        "per pass, several seconds)...")
    times["naive"], results["naive"] = _best(
        lambda: numpy_pass(C.conv_forward_naive, C.conv_backward_naive), naive_repeats)

    tol = 1e-3 if dtype == "float32" else 1e-9
    for name in ("im2col", "torch"):
        for label, mine, ref in zip(("out", "dx", "dw", "db"), results[name], results["naive"]):
            mine = np.asarray(mine, dtype=np.float64)
            err = np.max(np.abs(mine - ref)) / max(1.0, np.max(np.abs(ref)))
            if err > tol:
                raise RuntimeError(f"{name} {label} disagrees with the naive result ({err:.2g})")

    out(f"{'implementation':16s} {'seconds':>10s} {'vs naive':>10s}")
    for name in ("naive", "im2col", "torch"):
        out(f"{name:16s} {times[name]:10.5f} {times['naive'] / times[name]:9.0f}x")
    out(f"im2col is {times['naive'] / times['im2col']:.0f}x faster than naive "
        f"(target >= 100x) and {times['im2col'] / times['torch']:.2f}x the time of torch "
        f"(target <= 3x)")
    return times


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--filters", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    args = parser.parse_args(argv)
    if min(args.batch, args.size, args.filters, args.repeats) < 1:
        parser.error("--batch, --size, --filters and --repeats must be at least 1")
    run(batch=args.batch, size=args.size, filters=args.filters, repeats=args.repeats,
        dtype=args.dtype)


if __name__ == "__main__":
    main()
