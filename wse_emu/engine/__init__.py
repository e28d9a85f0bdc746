"""Engine layer: Numba kernels over the mesh state arrays; knows nothing of text."""
