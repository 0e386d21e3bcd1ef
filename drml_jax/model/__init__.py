"""The DRML network: its layers, the region layer, the dense conv forms, its state pytrees."""
