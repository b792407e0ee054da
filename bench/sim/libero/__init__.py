"""The LIBERO backend: robosuite 1.4 / MuJoCo 2.3 scenes from BDDL files (env id = the BDDL file's path)."""
