"""Rerun recorded episodes and say, per episode, whether this machine reproduces them.

Verdicts, from strongest to weakest:
  exact      same success, steps and final simulator state digest: reproduced bit for bit
  outcome    same success (steps or state differ): the same result, not the same trajectory
  different  the success differs
  error      the rerun ended in an error, or the record has none to compare

What to expect is decided by the records' float math (bench/core/mathmode.py): equal math ids
mean the rerun should be exact; a different CPU kind in native mode, or another mode,
means exactness is not promised and only the statistics of a whole run compare.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.core.mathmode import mode_of
from bench.core.provenance import REPO_ROOT
from bench.core.records import latest_by_key, read_records
from bench.sim.suites import Protocol, Suite, get_suite

VERDICTS = ("exact", "outcome", "different", "error")
EXIT_CODES = {"exact": 0, "outcome": 1, "different": 3, "error": 4}  # 2 is a usage error, as for every command


class VerifyError(ValueError):
    """Records that cannot be rerun as recorded (unknown checkpoint, protocol, mixed runs)."""


@dataclass
class Source:
    """What the records say was run, enough to run it again."""

    records: list[dict]  # latest record per key
    suite: Suite
    protocol: Protocol
    policy: str
    checkpoint: str | None  # a local path whose hash equals the records' checkpoint_hash
    checkpoint_hash: str | None
    seed_option: int | None  # the policy's --seed, when the run overrode the protocol's seed
    math: str | None  # the records' math id (None: recorded before math was kept)
    invocations: list[dict]
    policy_args: dict | None = None  # the --policy-arg values the records' policy was built with


def _resolve_recorded_path(shown: str | None) -> Path | None:
    """A path as records show it (project-relative, ~/..., or absolute) as a local path."""
    if shown is None:
        return None
    p = Path(shown).expanduser()
    return p if p.is_absolute() else REPO_ROOT / p


def load_source(path: Path, checkpoint: Path | None = None) -> Source:
    """A run directory (episodes.jsonl + invocations.jsonl) or a bare episodes .jsonl file. `checkpoint`: where
    the file the records used is now, when it is no longer at its recorded path (its hash must match)."""
    path = Path(path)
    records_path = path / "episodes.jsonl" if path.is_dir() else path
    if not records_path.exists():
        raise VerifyError(f"{path}: no episodes.jsonl (pass a run directory or a records .jsonl file)")
    records = list(latest_by_key(read_records(records_path)).values())
    if not records:
        raise VerifyError(f"{records_path} holds no episode records")
    inv_path = records_path.parent / "invocations.jsonl"
    invocations = [json.loads(x) for x in inv_path.read_text().splitlines() if x.strip()] if inv_path.exists() else []

    def one(field: str):
        values = {json.dumps(r.get(field)) for r in records}
        if len(values) > 1:
            raise VerifyError(f"{records_path}: records mix several values of {field!r} ({', '.join(sorted(values))}); "
                              "verify one run at a time")
        return records[0].get(field)

    suite = get_suite(one("suite"))
    protocol_hash, policy, ckpt_hash = one("protocol_hash"), one("policy"), one("checkpoint_hash")
    math = records[0].get("math")
    if len({mode_of(r.get("math")) for r in records}) > 1:
        raise VerifyError(f"{records_path}: records mix math modes; verify one run at a time")
    protocol = _protocol(suite, protocol_hash, invocations, records_path)
    checkpoint = _checkpoint(one("checkpoint"), ckpt_hash, policy, records_path, checkpoint)
    seed_option = protocol.seed if protocol.seed != suite.protocol.seed else None
    return Source(records, suite, protocol, policy, checkpoint, ckpt_hash, seed_option, math, invocations,
                  one("policy_args"))


def _protocol(suite: Suite, protocol_hash: str, invocations: list[dict], where: Path) -> Protocol:
    if suite.protocol.hash() == protocol_hash:
        return suite.protocol
    for inv in invocations:
        if inv.get("protocol_hash") == protocol_hash and inv.get("protocol"):
            d = dict(inv["protocol"])
            for k in ("wait_action", "cameras"):
                d[k] = tuple(d[k])
            protocol = Protocol(**d)
            if protocol.hash() == protocol_hash:
                return protocol
    raise VerifyError(f"{where}: the records ran under protocol {protocol_hash}, not {suite.name}'s default "
                      f"({suite.protocol.hash()}), and no invocations.jsonl beside them says what it was")


def _checkpoint(shown: str | None, recorded_hash: str | None, policy: str, where: Path,
                given: Path | None = None) -> str | None:
    from bench.core.provenance import file_hash

    if shown is None:
        if given is not None:
            raise VerifyError(f"{where}: the {policy} records used no checkpoint; --checkpoint {given} has no use")
        return None
    local = Path(given) if given is not None else _resolve_recorded_path(shown)
    moved = "" if given is not None else " (if it has moved, pass its new place with --checkpoint)"
    if not local.exists():
        raise VerifyError(f"{where}: the {policy} records used {shown}, which is not here ({local}){moved}")
    if recorded_hash is not None and file_hash(local) != recorded_hash:
        raise VerifyError(f"{where}: {local} is not the file the records used (hash {file_hash(local)}, "
                          f"recorded {recorded_hash}){moved}")
    return str(local)


def select(records: list[dict], k: int | None) -> list[dict]:
    """K episodes spread over tasks: init 0 of each task, then init 1 of each, ... (all if k is None).
    Deterministic, so two people verifying the same records rerun the same episodes. Episodes
    whose record is an error are left out (there is no outcome to reproduce)."""
    usable = [r for r in records if not r.get("error")]
    by_task: dict[int, list[dict]] = {}
    for r in sorted(usable, key=lambda r: (r["task_id"], r["init_id"])):
        by_task.setdefault(r["task_id"], []).append(r)
    order = []
    for i in range(max((len(v) for v in by_task.values()), default=0)):
        order += [v[i] for _, v in sorted(by_task.items()) if i < len(v)]
    return order if k is None else order[:k]


@dataclass
class Verdict:
    key: str
    verdict: str
    recorded_success: bool
    rerun_success: bool | None
    recorded_steps: int
    rerun_steps: int | None
    recorded_state: str | None
    rerun_state: str | None
    note: str = ""


def judge(recorded: dict, rerun: dict | None) -> Verdict:
    rs, rr = recorded.get("final_state"), (rerun or {}).get("final_state")
    v = Verdict(recorded["key"], "error", bool(recorded["success"]), None if rerun is None else bool(rerun["success"]),
                int(recorded["steps"]), None if rerun is None else int(rerun["steps"]), rs, rr)
    if rerun is None or rerun.get("error"):
        v.note = "the rerun did not finish" if rerun is None else f"rerun {rerun.get('error_kind')}: {rerun['error']}"
        return v
    drawn = recorded.get("first_frame"), rerun.get("first_frame")
    if None not in drawn and drawn[0] != drawn[1]:
        v.note = ("the first frame differs: this renderer draws the initial scene otherwise (GL backend, Mesa, "
                  "MuJoCo), so the policy saw other pixels from its first step")
    if v.recorded_success != v.rerun_success:
        v.verdict = "different"
    elif rs is not None and rs == rr and v.recorded_steps == v.rerun_steps:
        v.verdict = "exact"
    else:
        v.verdict = "outcome"
        if rs is None:
            v.note = "; ".join(filter(None, [v.note, "no final_state recorded: only the outcome can be compared"]))
    return v


def reference_drift(records: list[dict], suite: str) -> str | None:
    """renderer_drift against the checkout's reference episodes of `suite` (results/reference/), if it has them."""
    path = REPO_ROOT / "results" / "reference" / f"{suite}_episodes.jsonl"
    return renderer_drift(records, read_records(path), str(path.relative_to(REPO_ROOT))) if path.exists() else None


def renderer_drift(records: list[dict], reference: list[dict], where: str) -> str | None:
    """A warning when episodes of this run that a reference run also has (same key and protocol) started from
    other pixels: the renderer differs from the reference machine's, so outcomes may differ from its records
    for reasons no policy controls. None when every shared first frame agrees, or none can be compared."""
    ref = {(r["key"], r["protocol_hash"]): r for r in reference if r.get("first_frame")}
    pairs = [(r, ref[(r["key"], r["protocol_hash"])]) for r in records
             if r.get("first_frame") and (r["key"], r["protocol_hash"]) in ref]
    pairs = [(a, b) for a, b in pairs if a["first_frame"].split(":")[0] == b["first_frame"].split(":")[0]]
    differ = [(a, b) for a, b in pairs if a["first_frame"] != b["first_frame"]]
    if not differ:
        return None
    a, b = differ[0]

    def stack(r: dict) -> str:
        sim = r.get("sim") or {}
        return f"GL {sim.get('gl') or 'unrecorded'}, mujoco {(sim.get('versions') or {}).get('mujoco')}"

    return (f"renderer drift: {len(differ)} of {len(pairs)} episodes shared with {where} started from other pixels "
            f"(e.g. {a['key']}; here {stack(a)}, there {stack(b)}): this machine draws the scenes otherwise, so "
            f"the policy sees other frames and outcomes may differ from those records for that reason alone")


def overall(verdicts: list[Verdict]) -> str:
    """The weakest verdict: a single different episode makes the whole check 'different'."""
    worst = max((VERDICTS.index(v.verdict) for v in verdicts), default=0)
    return VERDICTS[worst]


def expectation(recorded_math: str | None, here_math: str) -> str:
    """What a person should expect from this rerun, in one sentence."""
    if recorded_math == here_math:
        return f"same float math as recorded ({here_math}): every episode should be exact"
    if recorded_math is None:
        return (f"the records do not say which float math made them (recorded before it was kept); here "
                f"{here_math}: exact only if that was the same math on the same CPU kind")
    if mode_of(recorded_math) != mode_of(here_math):
        return (f"recorded with {recorded_math}, rerun with {here_math}: a different mode computes other bits, "
                "so exactness is not expected (pass --math " + mode_of(recorded_math) + " to rerun as recorded)")
    return (f"recorded with {recorded_math}, here {here_math}: other CPU or software, so exactness is not "
            "promised in this mode")


def write_report(out: Path, source_path: Path, verdicts: list[Verdict], expect: str, math_desc: dict,
                 provenance: dict) -> dict:
    counts = {name: sum(v.verdict == name for v in verdicts) for name in VERDICTS}
    payload = {"source": str(source_path), "overall": overall(verdicts), "counts": counts, "expectation": expect,
               "math": math_desc, "episodes": [asdict(v) for v in verdicts], "provenance": provenance}
    out.mkdir(parents=True, exist_ok=True)
    (out / "verify.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    rows = "\n".join(f"| {v.key} | {v.verdict} | {v.recorded_success} / {v.rerun_success} | "
                     f"{v.recorded_steps} / {v.rerun_steps} | {v.recorded_state} / {v.rerun_state} | {v.note} |"
                     for v in verdicts)
    (out / "verify.md").write_text(
        f"# bench verify: {payload['overall']}\n\nSource: `{source_path}`. {expect}.\n\n"
        + ", ".join(f"{n} {c}" for n, c in counts.items())
        + "\n\n| episode | verdict | success (recorded / rerun) | steps | final state | note |\n|---|---|---|---|---|---|\n"
        + rows + "\n", encoding="utf-8")
    return payload


@dataclass
class VerifyRequest:
    source: Path  # a run directory or an episodes .jsonl file
    episodes: int | None = 10  # None: every recorded episode
    workers: int = 2
    out: Path | None = None  # None: runs/verify/<time>
    math: str | None = None  # None: the records' own mode
    checkpoint: Path | None = None  # where the records' checkpoint (or demo file) lives now


@dataclass
class Verification:
    """A request resolved: what will be rerun, where, and what to expect (`prepare_verify`, then `run`)."""
    request: VerifyRequest
    source: Source
    chosen: list[dict]
    out: Path
    runner: object
    queue: list
    expect: str
    math_desc: dict
    provenance: dict

    def run(self, on_episode=None) -> tuple[list[Verdict], dict]:
        """Rerun the queue, judge every chosen record, write verify.{md,json}; (verdicts, report)."""
        from bench.core.records import latest_by_key, read_records
        from bench.eval.results import record_invocation

        record_invocation(self.out, self.provenance)
        self.runner.run(self.queue, on_episode)
        reruns = latest_by_key(read_records(self.out / "episodes.jsonl"))
        verdicts = [judge(r, reruns.get(r["key"])) for r in self.chosen]
        report = write_report(self.out, Path(self.request.source), verdicts, self.expect, self.math_desc,
                              self.provenance)
        return verdicts, report


def prepare_verify(req: VerifyRequest) -> Verification:
    """Load the records, put their float math in force (before torch loads), rebuild their policy and plan the
    reruns. VerifyError (a ValueError) names what cannot be rerun; a math mode that does not take effect is a
    MathModeError."""
    from datetime import datetime

    from bench.core.mathmode import MathModeError, apply, check, describe, mode_of
    from bench.core.provenance import provenance
    from bench.eval.evaluate import EvalError, build_policy
    from bench.eval.runner import RunConfig, Runner, plan_episodes
    from bench.sim.rendering import configure_headless_gl

    src = load_source(req.source, req.checkpoint)
    mode = req.math or mode_of(src.math)
    try:
        apply(mode)
    except MathModeError as exc:
        raise VerifyError(str(exc)) from None
    options = {"demos": src.checkpoint} if src.policy == "replay" else {"checkpoint": src.checkpoint}
    try:
        pol = build_policy(src.policy, seed=src.seed_option, policy_args=src.policy_args, **options)
    except EvalError as exc:
        raise VerifyError(str(exc)) from None
    check(mode)
    math_desc = describe(mode)
    chosen = select(src.records, req.episodes)
    if not chosen:
        raise VerifyError(f"{req.source}: every recorded episode ended in an error; nothing to verify")
    out = req.out or Path("runs") / "verify" / datetime.now().strftime("%Y%m%d-%H%M%S")
    if (out / "episodes.jsonl").exists():
        raise VerifyError(f"{out} already holds episode records; choose another --out")
    cfg = RunConfig(suite=src.suite, policy_name=src.policy, task_ids=sorted({r["task_id"] for r in chosen}), out=out,
                    episodes=max(r["init_id"] for r in chosen) + 1, workers=req.workers, checkpoint=src.checkpoint,
                    protocol=src.protocol, math=math_desc["id"], policy_args=src.policy_args)
    configure_headless_gl()
    keys = {r["key"] for r in chosen}
    queue = [p for p in plan_episodes(cfg, pol) if p.key in keys]
    return Verification(req, src, chosen, out, Runner(cfg, pol), queue, expectation(src.math, math_desc["id"]),
                        math_desc, provenance(src.protocol, math=math_desc))
