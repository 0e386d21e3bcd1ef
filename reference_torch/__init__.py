"""PyTorch reference implementation of DRML, for numerical cross-checks."""
