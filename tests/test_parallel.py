"""Data parallelism: 8 devices, and 2 processes (gloo), match 1 device; the
step compiles once."""

import functools
import socket

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from drml_jax.runtime import parallel
from tests import train_support as support

# 8 devices reduce the batch in another order than 1: float32 rounding only.
TOLERANCE = dict(rtol=1e-4, atol=1e-5)


def _assert_same_run(actual, expected):
  expected_losses = support.train_losses(expected)
  actual_losses = support.train_losses(actual)
  assert actual_losses.keys() == expected_losses.keys()
  np.testing.assert_allclose(
    list(actual_losses.values()), list(expected_losses.values()), **TOLERANCE
  )
  want, got = support.final_params(expected), support.final_params(actual)
  assert want.keys() == got.keys()
  for name in want:
    np.testing.assert_allclose(got[name], want[name], err_msg=name, **TOLERANCE)


def test_a_replicated_state_compiles_the_step_once_and_updates_in_place():
  # A state left on one device made the train step compile twice: once
  # for it, once for the mesh-sharded state the step returns (~13 s and
  # ~0.6 GB of compiler memory per run at 170x170). A state made from host
  # copies made the first step copy it (0.45 GB) instead of donating it.
  traces = []

  @functools.partial(jax.jit, donate_argnums=0)
  def step(state, images):
    traces.append(None)
    return {"w": state["w"] + images.mean(0), "n": state["n"] + 1}

  mesh = parallel.make_mesh()
  images = np.ones((2 * jax.device_count(), 3), np.float32)
  state = parallel.replicate({"w": jnp.zeros(3), "n": jnp.int32(0)}, mesh)
  buffers = [
    s.data.unsafe_buffer_pointer() for s in state["w"].addressable_shards
  ]
  for _ in range(3):
    state = step(state, parallel.shard_batch({"x": images}, mesh)["x"])
  assert len(traces) == 1
  assert int(state["n"]) == 3
  assert [
    s.data.unsafe_buffer_pointer() for s in state["w"].addressable_shards
  ] == buffers
  again = parallel.replicate(state, mesh)
  assert all(
    a is b for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(state))
  )


@pytest.mark.slow
def test_eight_devices_match_one(reference_run, tmp_path_factory, tmp_path):
  reference = reference_run
  base = support.base_dir(tmp_path_factory)
  done = support.run(
    support.tiny_args(tmp_path, base / "tfds", "--checkpoint-every-steps", "0"),
    support.env(devices=8),
  )
  assert "8 cpu device(s)" in done.stdout
  _assert_same_run(tmp_path, reference)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_match_one(reference_run, tmp_path_factory, tmp_path):
  reference = reference_run
  base = support.base_dir(tmp_path_factory)
  address = f"127.0.0.1:{_free_port()}"
  processes = [
    support.start(
      support.tiny_args(
        tmp_path,
        base / "tfds",
        "--checkpoint-every-steps",
        "0",
        "--coordinator-address",
        address,
        "--num-processes",
        "2",
        "--process-id",
        str(i),
      ),
      support.env(devices=1),
    )
    for i in range(2)
  ]
  outputs = [p.communicate(timeout=support.TIMEOUT_S) for p in processes]
  for p, (out, err) in zip(processes, outputs):
    assert p.returncode == 0, f"{out}\n{err}"
  assert "2 cpu device(s), 2 process(es)" in outputs[0][0]
  _assert_same_run(tmp_path, reference)
