"""The detector's NumPy networks compute what mtcnn's own Keras networks do."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from drml_jax.predict import face_nets

# mtcnn's networks in its own Keras code, on the inputs given as JSON on
# stdin; their outputs (the faceness column of the softmax) as JSON on
# stdout. Keras 3 (TensorFlow's tf.keras) in a process of its own: the
# suite's processes load TensorFlow without Keras.
THEIRS = """
import json, sys
import numpy as np
from mtcnn.network.onet import ONet
from mtcnn.network.pnet import PNet
from mtcnn.network.rnet import RNet
from mtcnn.utils.tensorflow import load_weights
outputs = {}
for name, (cls, shape) in json.load(sys.stdin).items():
  net = {"pnet": PNet, "rnet": RNet, "onet": ONet}[cls]()
  net.build()
  net.set_weights(load_weights(name + ".lz4"))
  x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
  results = [np.asarray(r) for r in net(x)]
  results[-1] = results[-1][..., 1]
  outputs[name] = [r.tolist() for r in results]
json.dump(outputs, sys.stdout)
"""
SHAPES = {
  "pnet": ("pnet", (2, 37, 53, 3)),  # odd sizes: 'SAME' pooling pads one side
  "rnet": ("rnet", (5, 24, 24, 3)),
  "onet": ("onet", (5, 48, 48, 3)),
}


@pytest.mark.slow
def test_each_network_matches_mtcnns_keras_network():
  pytest.importorskip("keras")
  done = subprocess.run(
    [sys.executable, "-c", THEIRS],
    input=json.dumps(SHAPES),
    capture_output=True,
    text=True,
    env={**os.environ, "TF_USE_LEGACY_KERAS": "0", "CUDA_VISIBLE_DEVICES": ""},
    timeout=300,
    check=False,
  )
  assert done.returncode == 0, done.stderr[-3000:]
  theirs = json.loads(done.stdout)
  nets = face_nets.FaceNets()
  ours = {"pnet": nets.proposals, "rnet": nets.refined, "onet": nets.output}
  for name, (_, shape) in SHAPES.items():
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    for mine, expected in zip(ours[name](x), theirs[name], strict=True):
      # float32 sums in another order: measured 1e-6 at most.
      np.testing.assert_allclose(mine, expected, atol=1e-5, err_msg=name)


def test_pooling_pads_as_tensorflows_same_padding():
  # 5 wide, pool 3 stride 2: TensorFlow's SAME gives 3 outputs over the
  # windows [-1..1], [1..3], [3..5] (one column of padding each side).
  x = np.arange(5, dtype=np.float32).reshape(1, 1, 5, 1)
  x = np.repeat(x, 3, axis=1)
  pooled = face_nets.max_pool(x, 3, 2, same=True)
  assert pooled[0, 0, :, 0].tolist() == [1.0, 3.0, 4.0]
  assert face_nets.max_pool(x, 3, 2, same=False)[0, 0, :, 0].tolist() == [
    2.0,
    4.0,
  ]


def test_missing_weights_say_what_to_install(monkeypatch):
  monkeypatch.setattr(face_nets, "DISTRIBUTION", "no-such-distribution-xyz")
  with pytest.raises(RuntimeError, match="pip install mtcnn"):
    face_nets.load_weights("pnet")
