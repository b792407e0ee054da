"""Trainable models: DiT4DiT and the parts the baselines share with it.

    frames.py      one pixel path: rendered frame -> model frame (demos and observations alike)
    flow.py        flow-matching paths, targets, timestep samplers, Euler sampling
    vae.py         video autoencoders (a pixel space-to-depth one for CPU configs, Wan for full)
    text.py        text encoders (MiniLM for CPU configs, precomputed embeddings for full)
    video_dit.py   the video DiT (diffusers' Cosmos transformer) and its early-exit features
    action_dit.py  the GR00T-style action DiT (shared with the baselines)
    dit4dit.py     configs, the joint model, its two losses and action sampling

The harness (bench.eval.runner, bench.sim.suites) never imports this package; the
policy adapter (bench/policies/trained.py) is the only bridge; models register in registry.py.
"""
