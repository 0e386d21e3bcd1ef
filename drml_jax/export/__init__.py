"""A trained DRML as a file that other runtimes load.

`python -m drml_jax.export` (`__main__.py`) writes one of two formats,
each carrying the AUs, thresholds and preprocessing of
`drml_jax.predict.metadata`:

- `to_onnx.py`: one ONNX file, through the PyTorch reference model, for
  onnxruntime and any other ONNX runtime, in any language;
- `stablehlo.py`: one zip archive of `jax.export`'s serialized program,
  its weights and the metadata, for JAX on CPU, GPU or TPU.

Either takes the network's own input, (N, S, S, 3) float32 NHWC after
evaluation's preprocessing, and gives (N, C) logits, for any N, then (N, C)
intensities in [0, 5] for a model with the intensity head.
"""
