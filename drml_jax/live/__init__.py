"""Action units as frames happen: a camera, a stream or a browser's camera.

`python -m drml_jax.live` (`__main__.py`) reads a source on this machine and
writes one JSON line per processed frame; `python -m drml_jax.serve` serves
the page and the endpoints of `server.py`. Both read frames newest first
(`sources.py`), run the model on the engine timed fastest (`engines.py`) and
find, track and predict faces with `analysis.py`.
"""
