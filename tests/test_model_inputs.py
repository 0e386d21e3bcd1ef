"""uint8 batches made into the model's inputs inside the jitted steps.

`ModelInputs` must give the very values the pipeline gave when it cropped,
mirrored and normalised on the host: a numpy reference of those steps here,
compared bit for bit; then one train step and one evaluation fed uint8
batches against the same steps fed the reference's float32 inputs.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from data_pipeline import model_inputs
from data_pipeline.model_inputs import ModelInputs
from drml_jax.model import train_state
from drml_jax.model.network import DRML
from drml_jax.train.steps import make_eval_step, make_train_step

SIZE = model_inputs.INPUT_SIZE
BATCH = 4


def _uint8_batch(image_size: int, seed: int = 0) -> dict:
  rng = np.random.default_rng(seed)
  slack = image_size - SIZE
  return {
    "image": rng.integers(0, 256, (BATCH, image_size, image_size, 3), np.uint8),
    "window": np.stack(
      [
        rng.integers(0, slack + 1, BATCH),
        rng.integers(0, slack + 1, BATCH),
        np.array([0, 1, 0, 1]),
      ],
      axis=1,
    ).astype(np.int32),
    "labels": rng.choice(np.array([-1, 0, 1], np.int8), (BATCH, 12)),
    "valid": np.array([True, True, True, False]),
  }


def _host_inputs(batch: dict, normalization: str, mean=None) -> np.ndarray:
  """The host path: slice, reverse the columns when mirrored, then divide by
  255 or reverse the channels and subtract the mean cut the same way."""
  rows = []
  for image, (top, left, mirrored) in zip(batch["image"], batch["window"]):
    cut = (slice(top, top + SIZE), slice(left, left + SIZE))
    image = image[cut].astype(np.float32)
    window_mean = None if mean is None else mean[cut]
    if mirrored:
      image = image[:, ::-1]
      window_mean = None if mean is None else window_mean[:, ::-1]
    if normalization == "rgb":
      rows.append(image / np.float32(255))
    else:
      rows.append(image[..., ::-1] - window_mean)
  return np.stack(rows)


@pytest.mark.parametrize("image_size", [200, SIZE])
@pytest.mark.parametrize("normalization", ["rgb", "bgr_mean"])
def test_model_inputs_are_the_host_paths_values(image_size, normalization):
  batch = _uint8_batch(image_size)
  mean = None
  if normalization == "bgr_mean":
    mean = np.random.default_rng(1).uniform(0, 255, (image_size,) * 2 + (3,))
    mean = mean.astype(np.float32)
  ours = jax.jit(
    ModelInputs(
      "crop" if image_size == 200 else "resize", normalization, mean=mean
    )
  )(batch)
  assert ours.dtype == jnp.float32 and ours.shape == (BATCH, SIZE, SIZE, 3)
  np.testing.assert_array_equal(
    np.asarray(ours), _host_inputs(batch, normalization, mean)
  )


def test_a_model_input_size_other_than_170_is_resized():
  batch = _uint8_batch(SIZE)
  small = ModelInputs("resize", "rgb", input_size=66)(batch)
  assert small.shape == (BATCH, 66, 66, 3)
  np.testing.assert_allclose(
    small, model_inputs.resize(_host_inputs(batch, "rgb"), 66), atol=1e-6
  )


def test_bgr_mean_without_a_mean_is_a_one_line_error():
  with pytest.raises(ValueError, match="^bgr_mean normalization needs"):
    ModelInputs("crop", "bgr_mean")
  with pytest.raises(ValueError, match="^unknown normalization 'yuv'"):
    ModelInputs("crop", "yuv")


def test_steps_fed_uint8_match_steps_fed_the_host_inputs():
  """Bit-identical inputs give the same step: the tolerances allow only for
  XLA fusing the input's cut into the first convolution in one program and
  not the other (float32 rounding of the same sums, ~1e-6 relative)."""
  batch = _uint8_batch(200)
  prepare = ModelInputs("crop", "rgb")
  host = {**batch, "image": _host_inputs(batch, "rgb")}
  model = DRML(12, grid=(2, 2), init="he", rngs=nnx.Rngs(0))
  tx = optax.sgd(1e-3, momentum=0.9)
  graphdefs, state = train_state.create(model, tx)

  train = {
    name: make_train_step(graphdefs.train, tx, donate=False, **kwargs)
    for name, kwargs in (("uint8", {"prepare": prepare}), ("host", {}))
  }
  after = {
    name: step(state, {"uint8": batch, "host": host}[name])
    for name, step in train.items()
  }
  np.testing.assert_allclose(after["uint8"][1], after["host"][1], rtol=1e-6)
  for ours, theirs in zip(
    jax.tree.leaves(after["uint8"][0].params),
    jax.tree.leaves(after["host"][0].params),
  ):
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)

  evaluate = make_eval_step(graphdefs.eval, prepare=prepare)
  counts, loss, probabilities, _ = evaluate(
    train_state.model_state(state), batch
  )
  expected = make_eval_step(graphdefs.eval)(
    train_state.model_state(state), host
  )
  np.testing.assert_array_equal(counts, expected[0])
  np.testing.assert_allclose(loss, expected[1], rtol=1e-6)
  np.testing.assert_allclose(probabilities, expected[2], rtol=1e-6, atol=1e-7)
