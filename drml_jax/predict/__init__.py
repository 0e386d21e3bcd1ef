"""`python -m drml_jax.predict`: AUs on photos and videos, faces found, decoded and tracked."""
