"""Makes the safetensors fixtures of SafeTensorsTests with numpy + safetensors, and the bounds
numpy computes for them, so the Swift reader is checked against an independent writer.

    pip install numpy safetensors && python3 make_safetensors_fixtures.py

Writes, next to this script:
  numpy_tanh.safetensors      W [k,d], b, a, c (float32) + X [n,d], y; metadata activation=tanh
  torch_relu.safetensors      a PyTorch-style state dict of Sequential(Linear, ReLU, Linear), float64, no metadata
  expected.json               numpy's bounds for both files (the centred one with q = |a|)
"""
import json
import os

import numpy as np
from safetensors.numpy import save_file

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20261129)


def bounds(W, b, a, X, act, dact):
    W, b, a, X = (v.astype(np.float64) for v in (W, b, a, X))
    op = np.linalg.svd(W, compute_uv=False).max()
    upper = min(op * np.linalg.norm(a), np.sum(np.abs(a) * np.linalg.norm(W, axis=1)))
    # The centred bound with q = |a|: ||W^T a|| / 2 + sqrt(sum a^2 / q) sqrt(lambda_max(W^T diag(q) W)) / 2.
    q = np.abs(a)
    weighted = np.sqrt(np.sum(a * a / q)) * np.linalg.svd(np.sqrt(q)[:, None] * W, compute_uv=False).max()
    centred = np.linalg.norm(W.T @ a) / 2 + min(weighted, upper) / 2
    Z = X @ W.T + b
    G = (a * dact(Z)) @ W  # input gradients, one row per point
    free = np.linalg.norm(G, axis=1)
    radial = np.sum(G * X, axis=1) / np.sum(X * X, axis=1)
    tangential = np.linalg.norm(G - radial[:, None] * X, axis=1)
    f = act(Z) @ a
    return {
        "lip_upper": float(upper),
        "lip_upper_centred_q_abs_a": float(centred),
        "max_gradient_norm_on_X": float(free.max()),
        "max_tangential_gradient_norm_on_X": float(tangential.max()),
        "outputs_first_rows": [float(v) for v in f[:3]],
    }


# A tanh network with its training data on the unit sphere.
d, k, n = 6, 5, 20
W = rng.normal(size=(k, d)).astype(np.float32)
b = rng.normal(size=k).astype(np.float32)
a = rng.normal(size=k).astype(np.float32)
c = np.array([0.25], dtype=np.float32)
X = rng.normal(size=(n, d))
X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
y = np.sign(rng.normal(size=n)).astype(np.float32)
save_file({"W": W, "b": b, "a": a, "c": c, "X": X, "y": y}, os.path.join(here, "numpy_tanh.safetensors"),
          metadata={"activation": "tanh", "seed": "3", "data": "sphere"})
tanh_bounds = bounds(W, b, a, X, np.tanh, lambda z: 1 - np.tanh(z) ** 2)
tanh_bounds["outputs_first_rows"] = [v + 0.25 for v in tanh_bounds["outputs_first_rows"]]

# A PyTorch Sequential(Linear(4, 3), ReLU(), Linear(3, 1)) state dict, float64, no metadata.
d2, k2 = 4, 3
W1 = rng.normal(size=(k2, d2))
b1 = np.abs(rng.normal(size=k2))
W2 = rng.normal(size=(1, k2))
b2 = np.array([-0.5])
save_file({"0.weight": W1, "0.bias": b1, "2.weight": W2, "2.bias": b2}, os.path.join(here, "torch_relu.safetensors"))
relu = lambda z: np.maximum(z, 0)
probe = rng.normal(size=(3, d2))
relu_bounds = bounds(W1, b1, W2[0], probe, relu, lambda z: (z > 0).astype(np.float64))
relu_bounds["probe_points"] = probe.tolist()
relu_bounds["outputs_first_rows"] = [v - 0.5 for v in relu_bounds["outputs_first_rows"]]

with open(os.path.join(here, "expected.json"), "w") as out:
    json.dump({"numpy_tanh": tanh_bounds, "torch_relu": relu_bounds}, out, indent=2, sort_keys=True)
    out.write("\n")
