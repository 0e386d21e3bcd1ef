"""A corpus of videos and photos predicted on Ray: `python -m drml_jax.corpus`.

`plan` (inputs to units, their CSVs, the manifest, what is complete; no
Ray), `workers` (the Ray actors: a unit to its CSV; the frames done), `engine`
(Ray started or joined, the units given to the workers, retries,
progress, Ctrl-C), `combined` (--parquet and --report from the CSVs); the
command `__main__.py`.
"""
