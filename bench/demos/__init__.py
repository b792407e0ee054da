"""Demonstrations in LIBERO's HDF5 layout: reading, writing, (later) generating."""
