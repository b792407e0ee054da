"""Trainable baselines, each registered through the model seam (bench/models/registry.py): groot, flare, pi05."""
