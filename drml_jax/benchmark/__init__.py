"""DRML benchmarks: a library of timed rows and two command lines.

Library (imports no command-line module): `timing` (rows, timing, summary,
table, device facts), `jax_rows` (JAX steps, FLOPs, input pipeline),
`torch_rows` (the PyTorch forms). Command lines: `python -m
drml_jax.benchmark` (`__main__`, the full table) and `python -m
drml_jax.benchmark.region_layer` (the region layer alone).
"""
