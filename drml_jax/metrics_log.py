"""A run's metrics: one JSON record a line, mirrored to TensorBoard events.

The events are written with TensorFlow's core summary op and the scalar
plugin's metadata, so TensorBoard shows them as scalars without the
`tensorboard` package being installed to write them.
"""

from __future__ import annotations

import json
import os

from drml_jax.report import write_atomic

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"


def read_records(workdir: str) -> list[dict]:
  """The records of a work directory's metrics file (none if it has none)."""
  path = os.path.join(workdir, METRICS_FILE)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


class MetricsLog:
  """Appends records {"kind", "step", ...} to metrics.jsonl and TensorBoard.

  Opening it for a run resumed at `resume_step` drops the records of later
  steps, which an interrupted run wrote after its last checkpoint.
  """

  def __init__(self, workdir: str, *, resume_step: int = 0):
    self.path = os.path.join(workdir, METRICS_FILE)
    kept = [r for r in read_records(workdir) if r["step"] <= resume_step]
    write_atomic(self.path, "".join(json.dumps(r) + "\n" for r in kept))
    self.records = kept
    from data_pipeline.builders.tf_cpu import tf  # pylint: disable=import-outside-toplevel
    from tensorflow.core.framework import summary_pb2  # pylint: disable=import-outside-toplevel
    self._tf = tf
    self._scalar = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
    self._writer = tf.summary.create_file_writer(os.path.join(workdir, TENSORBOARD_DIR))

  def write(self, record: dict) -> None:
    """Appends `record`; its numeric fields (and dicts of them) go to TensorBoard."""
    self.records.append(record)
    with open(self.path, "a") as f:
      f.write(json.dumps(record) + "\n")
    scalars = {}
    for name, value in record.items():
      if isinstance(value, dict):
        scalars.update({f"{name}/AU{key}": v for key, v in value.items()})
      elif name != "step":
        scalars[name] = value
    with self._writer.as_default(step=record["step"]):
      for name, value in scalars.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
          self._tf.summary.write(f"{record['kind']}/{name}", self._tf.constant(value, "float32"),
                                 metadata=self._scalar)
    self._writer.flush()

  def close(self) -> None:
    self._writer.close()
