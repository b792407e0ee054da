"""The RoboCasa GR1 tabletop backend (GR00T-N1's "GR1 tabletop", DiT4DiT's second benchmark).

It runs in its own Python environment (praxis-robocasa-gr1: robosuite 1.5, MuJoCo 3.3, numpy 2),
made by `bench setup robocasa-gr1`. The catalog (task names, layouts) imports none of it.
"""
