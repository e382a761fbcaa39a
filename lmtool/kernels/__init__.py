"""Numba kernels: the only package that imports numba. Pure functions over preallocated arrays."""
