"""RoboCasa GR1's object assets: pointing the simulator at them, checking them, and a stand-in pack.

The wheel on PyPI holds the env code and the fixtures' XML, but neither the fixtures' meshes and
textures nor the object instances the tasks sample (objaverse, aigen_objs, sketchfab, lightwheel, ...
registries): RoboCasa's download scripts put those (about 5 GB) into `robocasa_gr1/models/assets`.
An assets directory here mirrors that tree: `objects/<registry>/<category>/<instance>/model.xml`, and
the fixtures' files under `fixtures/...`. `use()` points the package in the backend's own venv at it:
`objects` becomes a link, and each other file is linked in where the package lacks it.

The stand-in pack (`bench setup robocasa-gr1 --standin`) fills the same tree with generated files: for
every object category two instances (so both object splits, A and B, have one), each one primitive
box, and for every mesh or texture a fixture XML names but the wheel lacks, a small box mesh or a flat
texture. Every official task then constructs, resets and steps offline, but nothing it measures is
comparable to a run on the real assets (records say `assets: standin`).
"""

from __future__ import annotations

import json
import os
import re
import sys
import zlib
from pathlib import Path

REGISTRIES = {"objaverse": "objaverse", "aigen": "aigen_objs", "sketchfab": "sketchfab", "lightwheel": "lightwheel",
              "infinigen": "infinigen"}  # registry -> its folder
STANDIN_MARK = "STANDIN.json"


class AssetsError(RuntimeError):
    pass


def _package_assets_dir() -> Path:
    """Found without importing robocasa_gr1: its object registries are scanned once, at import."""
    import importlib.util

    spec = importlib.util.find_spec("robocasa_gr1")
    if spec is None or not spec.submodule_search_locations:
        raise AssetsError("robocasa_gr1 is not installed in this environment: run `bench setup robocasa-gr1`")
    return Path(spec.submodule_search_locations[0]) / "models" / "assets"


def use(assets: str | None) -> None:
    """Inside the GR1 environment: make robocasa_gr1 load objects from `assets` (before it is imported further)."""
    if not assets:
        raise AssetsError("no object assets for RoboCasa GR1: download them with RoboCasa's "
                          "download_kitchen_assets.py and download_groot_assets.py, then run `bench setup "
                          "robocasa-gr1 --assets DIR` (or `bench setup robocasa-gr1 --standin` to try the path "
                          "with generated stand-ins)")
    root = Path(assets).resolve()
    if not (root / "objects").is_dir():
        raise AssetsError(f"the GR1 assets recorded by bench setup, {root}, are gone or hold no objects/: run "
                          "`bench setup robocasa-gr1 --assets DIR` again")
    package = _package_assets_dir()
    link = package / "objects"
    if link.exists() and not link.is_symlink():
        raise AssetsError(f"{link} is a real directory (assets downloaded into the package?): pass "
                          f"`bench setup robocasa-gr1 --assets {package}` or move it away")
    if not (link.is_symlink() and link.resolve() == root / "objects"):
        _link(root / "objects", link)
    for path in root.rglob("*"):  # the fixtures' meshes and textures, where the package lacks them
        rel = path.relative_to(root)
        if rel.parts[0] == "objects" or not path.is_file():
            continue
        dest = package / rel
        if dest.is_symlink() and dest.resolve() == path:
            continue
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            _link(path, dest)


def _link(target: Path, link: Path) -> None:
    """Atomic: a worker starting beside us never sees the link missing."""
    tmp = link.with_name(f".{link.name}-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    os.replace(tmp, link)


def check(assets: Path) -> dict[str, int]:
    """Instances per registry folder; raises AssetsError when the directory holds none of them."""
    counts = {}
    for folder in REGISTRIES.values():
        d = Path(assets) / "objects" / folder
        if d.is_dir():
            counts[folder] = sum(1 for _ in d.rglob("model.xml"))
    if not any(counts.values()):
        raise AssetsError(f"{assets} holds no object instances: expected objects/<registry>/<category>/<instance>/model.xml "
                          f"under one of {', '.join(REGISTRIES.values())} (RoboCasa's download_kitchen_assets.py "
                          "and download_groot_assets.py lay them out so)")
    return counts


def is_standin(assets: Path) -> bool:
    return (Path(assets) / STANDIN_MARK).is_file()


def _box_model(name: str, half: tuple[float, float, float], rgba: str) -> str:
    hx, hy, hz = half
    geom = f'type="box" size="{hx} {hy} {hz}" pos="0 0 0"'
    return f"""<mujoco model="{name}">
  <asset/>
  <worldbody>
    <body>
      <body name="object">
        <geom {geom} rgba="{rgba}" contype="0" conaffinity="0" group="1"/>
        <geom {geom} group="0"/>
      </body>
      <site rgba="0 0 0 0" size="0.005" pos="0 0 {-hz}" name="bottom_site"/>
      <site rgba="0 0 0 0" size="0.005" pos="0 0 {hz}" name="top_site"/>
      <site rgba="0 0 0 0" size="0.005" pos="{hx} {hy} 0" name="horizontal_radius_site"/>
    </body>
  </worldbody>
</mujoco>
"""


BOX_OBJ = "".join(f"v {x} {y} {z}\n" for x in (-0.01, 0.01) for y in (-0.01, 0.01) for z in (-0.01, 0.01)) + (
    "f 1 3 2\nf 2 3 4\nf 5 6 7\nf 6 8 7\nf 1 2 5\nf 2 6 5\nf 3 7 4\nf 4 7 8\nf 1 5 3\nf 3 5 7\nf 2 4 6\nf 4 8 6\n")


def missing_fixture_files(package: Path) -> list[Path]:
    """Files (relative to the package's assets) that its XMLs name but the wheel lacks."""
    import xml.etree.ElementTree as ET

    missing = set()
    for xml in package.rglob("*.xml"):
        if "objects" in xml.relative_to(package).parts[:1]:
            continue
        for el in ET.parse(xml).iter():
            name = el.get("file")
            if name and el.tag in ("mesh", "texture"):
                full = Path(os.path.normpath(xml.parent / name))
                if not full.exists() and package in full.parents:
                    missing.add(full.relative_to(package))
    # textures that styles (YAML) and fixture code name relative to the assets root
    for text in [*package.rglob("*.yaml"), *package.parent.rglob("*.py")]:
        for name in re.findall(r"textures/[\w./-]+?\.(?:png|jpg)", text.read_text(errors="ignore")):
            if not (package / name).exists():
                missing.add(Path(name))
    return sorted(missing)


def write_standin(root: Path) -> int:
    """Inside the GR1 environment: two box instances per (category, registry) robocasa_gr1 declares, and a
    small box mesh / flat texture for every fixture file the wheel lacks."""
    from PIL import Image
    from robocasa_gr1.models.objects.kitchen_object_utils import OBJ_CATEGORIES

    root = Path(root)
    n = 0
    for rel in missing_fixture_files(_package_assets_dir()):
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.suffix == ".obj":
            dest.write_text(BOX_OBJ)
        else:
            Image.new("RGB", (4, 4), (128, 128, 128)).save(dest)
        n += 1
    for category, by_registry in sorted(OBJ_CATEGORIES.items()):
        crc = zlib.crc32(category.encode())
        rgba = f"{(crc & 255) / 255:.3f} {((crc >> 8) & 255) / 255:.3f} {((crc >> 16) & 255) / 255:.3f} 1"
        for registry, meta in by_registry.items():
            # graspable things are hand-sized; containers and the rest are wide and flat
            half = (0.03, 0.025, 0.03) if meta.graspable else (0.1, 0.1, 0.02)
            for k in range(2):
                d = root / "objects" / REGISTRIES[registry] / category / f"standin_{category}_{k}"
                d.mkdir(parents=True, exist_ok=True)
                (d / "model.xml").write_text(_box_model(f"standin_{category}_{k}", half, rgba))
                n += 1
    (root / STANDIN_MARK).write_text(json.dumps({"instances": n, "what": "generated primitive stand-ins, not "
                                                 "RoboCasa's objects"}) + "\n")
    return n


if __name__ == "__main__":  # python -m bench.sim.robocasa_gr1.assets standin DIR  (run in the GR1 environment)
    if len(sys.argv) != 3 or sys.argv[1] != "standin":
        sys.exit("usage: python -m bench.sim.robocasa_gr1.assets standin DIR")
    print(write_standin(Path(sys.argv[2])))
