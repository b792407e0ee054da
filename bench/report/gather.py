"""Read the committed results into report sections: titled lists of blocks (text, tables, figures).

Every number comes from a results file, formatted here; nothing is typed in. A section whose files are
broken (missing, unreadable, a key absent) is not built and is listed with the file and key that broke
it; the rest of the report still builds. A section with no results yet is listed under "not run yet".
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.train.curves import trainable_parameters
from bench.analysis.format import interval, pct

NOT_POLICIES = {"reference", "verify", "perf", "demos", "baselines", "ablations"}  # results/ folders of other kinds
PRIVILEGED = {"scripted": "privileged scripted expert (reads simulator state; makes the demos)"}


class ResultFileError(ValueError):
    """A results file the report cannot read: names the file and the key."""


@dataclass
class Section:
    title: str
    blocks: list[dict] = field(default_factory=list)
    sources: list[Path] = field(default_factory=list)  # result files it read (for the provenance appendix)

    def text(self, text: str) -> None:
        self.blocks.append({"kind": "text", "text": text})

    def table(self, header: list[str], rows: list[list[str]], caption: str = "", size: float = 8.0) -> None:
        self.blocks.append({"kind": "table", "header": [str(h) for h in header],
                            "rows": [[str(c) for c in r] for r in rows], "caption": caption, "size": size})

    def figure(self, path: Path, caption: str, width: float = 1.0) -> None:  # width: a fraction of the text width
        self.blocks.append({"kind": "figure", "path": str(path), "caption": caption, "width": width})


def read_json(path: Path, *keys: str) -> dict:
    """A results JSON file that must have `keys`; ResultFileError names the file and the missing key."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ResultFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise ResultFileError(f"{path}: not JSON ({exc})") from None
    for key in keys:
        node = data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise ResultFileError(f"{path}: no key '{key}'")
            node = node[part]
    return data


def summary_rows(path: Path) -> pd.DataFrame:
    data = read_json(path, "rows", "provenance")
    table = pd.DataFrame(data["rows"])
    for col in ("suite", "task", "episodes", "successes", "success_rate", "ci_low", "ci_high"):
        if col not in table:
            raise ResultFileError(f"{path}: rows have no key '{col}'")
    return table


def pct_ci(r) -> str:
    return f"{pct(r['success_rate'])} {interval(r['ci_low'], r['ci_high'])}"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def policy_summaries(results: Path, suite: str) -> dict[str, Path]:
    """label -> <suite>_summary.json of every evaluated policy (results/<label>/); a file identical to an
    earlier one (a copy kept for comparison) is listed once, under the first label."""
    found, seen = {}, {}
    for path in sorted(results.glob(f"*/{suite}_summary.json")):
        label = path.parent.name
        if label in NOT_POLICIES:
            continue
        digest = _digest(path)
        if digest in seen:
            continue
        seen[digest] = label
        found[label] = path
    return found


def suites_with_results(results: Path) -> list[str]:
    from bench.sim.suites import SUITES

    return [s for s in SUITES if policy_summaries(results, s)]


def libero_section(results: Path, published: Path, figures: Path) -> Section:
    from bench.report.figures import forest_plot

    sec = Section("LIBERO: success per task")
    sec.text("Success rate in percent with its Wilson 95% interval, per task and over the suite (ALL), for every "
             "policy evaluated here (results/<policy>/). Every policy ran the same episodes (same initial states "
             "and seeds) under the official protocol. Our learned policies are tiny models trained from scratch "
             "on two CPU cores; they are not reproductions of the published full-scale models, whose numbers "
             "follow in a separate table.")
    for suite in suites_with_results(results):
        paths = policy_summaries(results, suite)
        tables = {label: summary_rows(p) for label, p in paths.items()}
        sec.sources += list(paths.values())
        first = next(iter(tables.values()))
        header = ["task"] + [label + (" *" if label in PRIVILEGED else "") for label in tables]
        rows = []
        for _, r in first.iterrows():
            name = "ALL" if r["task"] == "ALL" else f"{int(r['task_id'])}: {str(r['task']).replace('_', ' ')}"
            cells = []
            for t in tables.values():
                match = t[(t["task"] == r["task"])]
                cells.append(pct_ci(match.iloc[0]) if len(match) else "—")
            rows.append([name, *cells])
        episodes = ", ".join(f"{label}: {int(t[t['task'] == 'ALL']['episodes'].iloc[0])}" for label, t in tables.items())
        note = "; * " + "; ".join(f"{k}: {v}" for k, v in PRIVILEGED.items() if k in tables) if any(
            k in tables for k in PRIVILEGED) else ""
        sec.table(header, rows, caption=f"{suite}: success % [95% CI]. Episodes: {episodes}{note}.", size=7.0)
        fig = figures / f"forest_{suite}.png"
        forest_plot(tables, fig, title=f"{suite}: success with 95% intervals")
        sec.figure(fig, f"{suite}: every policy's success per task with its Wilson 95% interval (forest plot).")
    pub = pd.read_csv(published, comment="#")
    sec.sources.append(published)
    cols = [c for c in pub.columns if c not in ("source",)]
    sec.text("Published numbers (full-scale models, as reported; not measured here):")
    sec.table(cols, [["—" if pd.isna(v) else str(v) for v in row] for row in pub[cols].itertuples(index=False)],
              caption=f"Published LIBERO success % ({published.name}; sources in the file).", size=7.5)
    return sec


def findings_section(results: Path) -> Section | None:
    """The questions the suite asks, each answered from its studies (bench.studies.findings)."""
    from bench.studies.findings import FLOOR, PUBLISHED, findings_table

    header, rows, sources = findings_table(results)
    if not rows:
        return None
    sec = Section("Findings")
    sec.text("Each question the suite asks, answered from the committed results at the budget they were measured "
             "at: supported or refuted when the paired test (McNemar, over the same episodes) is significant at "
             f"0.05, unresolved otherwise; 'near the floor' marks arms that both succeed less than {FLOOR:.0%} of "
             "the time, where a difference says little about the question. 'Detectable' is the smallest difference those episodes would "
             "detect with 80% power. The models here are tiny and trained from scratch on two CPU cores: an "
             "answer is about them at that budget, beside what the paper reports for its full-scale models.")
    sec.table(header, rows, caption="Findings, generated from the results files listed below.", size=7.0)
    files = list(dict.fromkeys(p.strip() for src in sources for p in src.split(",")))
    sec.text("Read from " + ", ".join(files) + f"; the paper's claims from {PUBLISHED}.")
    sec.sources += [results / f for f in files]
    return sec


def comparisons_section(results: Path) -> Section | None:
    """Every committed `bench compare` output (the first run against each other one)."""
    csvs = sorted(p for p in results.glob("**/*.csv") if any(c.startswith("vs_") for c in
                                                              pd.read_csv(p, nrows=0).columns))
    if not csvs:
        return None
    sec = Section("Comparisons")
    sec.text("Each table sets a reference policy (A) against another (B) on the same episodes: the difference "
             "in success (points) with a paired bootstrap 95% interval, McNemar's exact test on the discordant "
             "episodes (Holm-corrected over the tasks), a one-sided Fisher exact p, and the minimum difference the "
             "episodes could detect with 80% power.")
    for path in csvs:
        table = pd.read_csv(path)
        sec.sources.append(path)
        rates = [c[: -len(":success_rate")] for c in table.columns if c.endswith(":success_rate")]
        for b in [c[3:-len(":diff")] for c in table.columns if c.startswith("vs_") and c.endswith(":diff")]:
            pre, a = f"vs_{b}:", rates[0]
            need = [pre + k for k in ("diff", "diff_low", "diff_high", "mcnemar_p", "holm_p", "fisher_p", "mdd",
                                      "significant")]
            missing = [k for k in need if k not in table]
            if missing:
                raise ResultFileError(f"{path}: no column '{missing[0]}'")
            rows = []
            for _, r in table.iterrows():
                name = "ALL" if r["task"] == "ALL" else f"{int(r['task_id'])}"
                diff = "—" if pd.isna(r[pre + "diff"]) else (
                    f"{pct(r[pre + 'diff'], True)} {interval(r[pre + 'diff_low'], r[pre + 'diff_high'], True)}")
                rows.append([name, pct_ci({"success_rate": r[f"{a}:success_rate"], "ci_low": r[f"{a}:ci_low"],
                                           "ci_high": r[f"{a}:ci_high"]}),
                             pct_ci({"success_rate": r[f"{b}:success_rate"], "ci_low": r[f"{b}:ci_low"],
                                     "ci_high": r[f"{b}:ci_high"]}), diff,
                             f"{r[pre + 'mcnemar_p']:.2g}" if pd.notna(r[pre + "mcnemar_p"]) else "—",
                             f"{r[pre + 'holm_p']:.2g}" if pd.notna(r[pre + "holm_p"]) else "—",
                             f"{r[pre + 'fisher_p']:.2g}", "—" if pd.isna(r[pre + "mdd"]) else f"{100 * r[pre + 'mdd']:.1f}",
                             "yes" if bool(r[pre + "significant"]) else "no"])
            sec.table(["task", f"{a} %", f"{b} %", "A − B, points", "McNemar p", "Holm p", "Fisher p(A > B)",
                       "MDD", "significant"], rows, caption=f"{a} (A) against {b} (B), from {path}.", size=7.0)
    return sec


def expert_and_demos_section(results: Path) -> Section | None:
    expert = sorted(results.glob("scripted/*_summary.json"))
    demos = sorted(results.glob("demos/*_summary.json"))
    if not expert and not demos:
        return None
    sec = Section("Expert and demonstrations")
    rows = []
    for path in expert:
        t = summary_rows(path)
        r = t[t["task"] == "ALL"].iloc[0]
        rows.append([str(r["suite"]), f"{int(r['successes'])}/{int(r['episodes'])}", pct_ci(r)])
        sec.sources.append(path)
    if rows:
        sec.text("The scripted expert (privileged: it reads object poses from the simulator) makes the training "
                 "demonstrations; only its successful episodes become demos.")
        sec.table(["suite", "successes", "success % [95% CI]"], rows, caption="Scripted expert, official protocol.")
    rows = []
    for path in demos:
        t = summary_rows(path)
        r = t[t["task"] == "ALL"].iloc[0]
        rows.append([str(r["suite"]), f"{int(r['successes'])}/{int(r['episodes'])}", f"{r['mean_steps']:.0f}"])
        sec.sources.append(path)
    if rows:
        sec.text("Every demo is replayed from its recorded initial state with its recorded actions; it must "
                 "succeed again, at exactly its recorded length.")
        sec.table(["training set", "demos replayed to success", "mean steps"], rows, caption="Demo replays.")
    return sec


def perf_section(results: Path, figures: Path) -> Section | None:
    from bench.report.figures import time_breakdown

    perf = results / "perf"
    if not perf.exists():
        return None
    sec = Section("Throughput, latency and where the time goes")
    rows = []
    if (perf / "eval.json").exists():
        d = read_json(perf / "eval.json", "ours_episodes_per_hour", "naive_episodes_per_hour", "ratio")
        rows.append(["episodes per hour: our runner vs a naive peer-style loop",
                     f"{d['ours_episodes_per_hour']:.0f} vs {d['naive_episodes_per_hour']:.0f}", f"{d['ratio']:.2f}x"])
        sec.sources.append(perf / "eval.json")
    if (perf / "math.json").exists():
        d = read_json(perf / "math.json", "median_chunk_latency_s", "chunk_latency_ratio_portable_over_native")
        lat = d["median_chunk_latency_s"]
        rows.append(["one action chunk: portable vs native float math",
                     f"{1e3 * lat['portable']:.0f} vs {1e3 * lat['native']:.0f} ms",
                     f"{d['chunk_latency_ratio_portable_over_native']:.2f}x"])
        if "end_to_end" in d:
            e = d["end_to_end"]
            rows.append(["a short bench run: portable vs native",
                         f"{e['median_wall_s']['portable']:.1f} vs {e['median_wall_s']['native']:.1f} s",
                         f"{e['wall_ratio_portable_over_native']:.2f}x"])
        sec.sources.append(perf / "math.json")
    if (perf / "remote.json").exists():
        d = read_json(perf / "remote.json", "median_chunk_s.in_process", "median_chunk_s.remote", "chunks_per_s_by_clients")
        m = d["median_chunk_s"]
        rows.append([f"one action chunk of {d.get('policy', '?')}: in-process vs through bench serve",
                     f"{1e3 * m['in_process']:.0f} vs {1e3 * m['remote']:.0f} ms",
                     f"{m['remote'] / m['in_process']:.2f}x"])
        rows.append(["bench serve: chunks per second by concurrent clients",
                     ", ".join(f"{k}: {v:.1f}" for k, v in d["chunks_per_s_by_clients"].items()), ""])
        sec.sources.append(perf / "remote.json")
    if (perf / "train.json").exists():
        d = read_json(perf / "train.json", "results", "batch_size", "matmul_peak_gflops")
        for r in d["results"]:
            old, new = r["paths"]["old"], r["paths"]["new"]
            rows.append([f"{r['model']} training samples/s at batch {d['batch_size']}: frame cache, bf16, compiled "
                         f"vs HDF5 reads, fp32, eager ({r['flops_per_sample'] / 1e9:.2f} GFLOP a sample)",
                         f"{new['samples_per_s']:.1f} vs {old['samples_per_s']:.1f} "
                         f"({100 * new['fraction_of_peak']:.0f}% of bf16, {100 * old['fraction_of_peak']:.0f}% of "
                         f"fp32 matmul peak)", f"{r['speedup']:.2f}x"])
        sec.sources.append(perf / "train.json")
    for path in sorted(perf.glob("policy_*.json")):
        d = read_json(path, "results", "provenance")
        cpu = (d["provenance"].get("machine") or {}).get("cpu") or "not recorded"
        for r in d["results"]:
            lat = ", ".join(f"batch {b}: {1e3 * s:.0f} ms" for b, s in r["latency_s"].items())
            rows.append([f"DiT4DiT {r['config']}, one action chunk ({path.name})", lat, f"CPU: {cpu}"])
            if r.get("train_samples_per_s"):
                rows.append([f"DiT4DiT {r['config']}, training samples/s fp32 vs bf16 autocast ({path.name})",
                             f"{r['train_samples_per_s']:.1f} vs {r['train_samples_per_s_bf16']:.1f}",
                             f"{r['train_bf16_speedup']:.2f}x"])
        sec.sources.append(path)
    micro = perf / "micro.json"
    if micro.exists():
        from bench.report.figures import micro_latency

        d = read_json(micro, "benchmarks", "machine_info")
        bench_rows = []
        for b in d["benchmarks"]:
            st = b.get("stats") or {}
            if "median" not in st or "iqr" not in st:
                raise ResultFileError(f"{micro}: benchmark {b.get('name')} has no stats.median/iqr")
            bench_rows.append({"name": b["name"].replace("test_", ""), "median_ms": 1e3 * st["median"],
                               "iqr_ms": 1e3 * st["iqr"], "rounds": st.get("rounds", "?")})
        sec.table(["micro-benchmark", "median ms", "IQR ms", "rounds"],
                  [[r["name"], f"{r['median_ms']:.1f}", f"{r['iqr_ms']:.1f}", r["rounds"]] for r in bench_rows],
                  caption=f"pytest-benchmark, one thread ({micro}; CPU: {d['machine_info'].get('cpu', {}).get('brand_raw', '?')}).")
        fig = figures / "micro.png"
        micro_latency(bench_rows, fig)
        sec.figure(fig, "Micro-benchmarks: median with its interquartile range.", width=0.75)
        sec.sources.append(micro)
    if rows:
        sec.table(["measurement", "values", "ratio / note"], rows,
                  caption="Measured in one run each (ratios within a run; the machine is shared and noisy).", size=7.5)
    timing = {}
    for label, summary in policy_summaries(results, "libero_spatial").items():
        path = summary.with_name("libero_spatial_episodes.jsonl")
        if not path.exists():
            continue
        recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if recs and all("timing" in r for r in recs):
            timing[label] = recs
    if timing:
        fig = figures / "time_breakdown.png"
        time_breakdown(timing, fig)
        sec.figure(fig, "Where an episode's time goes (libero_spatial evaluations; seconds per episode, mean): "
                        "rendering the cameras, stepping the physics, creating environments, and the rest (the policy "
                        "and the message passing).", width=0.85)
    return sec if sec.blocks else None


def contact_sheets_section(results: Path) -> Section | None:
    sheets = sorted(results.glob("*/videos/*_videos.png"))
    if not sheets:
        return None
    sec = Section("What the policies do: contact sheets")
    sec.text("The first episodes of each task, eight frames each, failures first (from bench run --video).")
    for path in sheets:
        sec.figure(path, f"{path.parent.parent.name}: {path.stem.replace('_videos', '')}", width=1.0)
        sec.sources.append(path)
    return sec


def run_label(results: Path, losses: Path) -> str:
    """A training run's name in the report: its folder under results/ ('dit4dit', 'dit4dit/gr1_proxy_train')."""
    return losses.parent.relative_to(results).as_posix()


def training_section(results: Path) -> Section | None:
    curves, seen = [], set()
    # a model's runs: results/<model>/losses.png (LIBERO) and results/<model>/<run>/losses.png (e.g. the GR1 proxy);
    # a copy kept for comparison is shown once
    for png in sorted([*results.glob("*/losses.png"), *results.glob("*/*/losses.png")]):
        csv = png.with_name("losses.csv")
        digest = _digest(csv) if csv.exists() else _digest(png)
        if digest not in seen:
            seen.add(digest)
            curves.append(png)
    if not curves:
        return None
    sec = Section("Training")
    rows = []
    for png in curves:
        cfg = png.parent / "train_config.json"
        if cfg.exists():
            d = read_json(cfg, "train", "data_fingerprint")
            t = d["train"]
            model = d.get("model") if isinstance(d.get("model"), str) else "dit4dit"  # older runs: the config
            n = trainable_parameters(d)
            rows.append([run_label(results, png), model, str(t["steps"]), str(t["batch_size"]),
                         t.get("precision", "fp32"), str(d.get("num_demos", "?")), f"{n:,}" if n else "?"])
            sec.sources.append(cfg)
        sec.figure(png, f"{run_label(results, png)}: training losses.", width=0.7)
    if rows:
        figures_first = sec.blocks
        sec.blocks = []
        sec.table(["run", "model", "steps", "batch", "precision", "demos", "trainable parameters"], rows,
                  caption="Training runs.")
        sec.blocks += figures_first
    learning = results / "baselines" / "learning_curves.png"
    if learning.exists():  # the recipe's curves: success and action error as the models train
        sec.figure(learning, "Learning curves: success on a fixed episode set (10 initial states of every task) and "
                   "held-out action error against training samples and CPU-hours, 95% intervals "
                   "(results/baselines/learning_curves.md states the samples each model needs to reach a success "
                   "level).", width=0.95)
        sec.sources.append(learning.with_suffix(".md"))
    replay = results / "baselines" / "replay_error.json"
    if replay.exists():  # is a closed-loop gap a pixel-path mismatch or the policy's own drift?
        from bench.analysis.replay import paired_against_first

        found = read_json(replay, "results")["results"]
        names = list(found)
        first, rows = found[names[0]], []
        for name, d in paired_against_first(found).items():
            r = found[name]
            rows.append([name, f"{r['mean']:.4f} [{r['ci_low']:.4f}, {r['ci_high']:.4f}]",
                         "" if d is None else f"{d['diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}], p {d['p']:.2g}"])
        sec.table(["policy", "action error along replayed demos [95% CI]", f"minus {names[0]}"], rows,
                  caption=f"Action error on the simulator's own rendering at {first['points']} chunk boundaries of "
                  f"{first['demos']} held-out demos replayed in the simulator: the states the demos visit, the pixels "
                  "bench run feeds. Where these errors are equal and closed-loop success is not, the gap lies in "
                  "what each policy does once its own actions leave the demos' states.")
        sec.sources.append(replay.with_suffix(".md"))
    return sec


def _not_recomputable(study: str) -> str:
    """Why a study's committed numbers cannot be recomputed from committed records ('' when they can)."""
    from bench.studies.catalog import ablation_studies

    return next((s.not_recomputable for s in ablation_studies() if s.name == study), "")


def ablations_section(results: Path) -> Section | None:
    csvs = sorted((results / "ablations").glob("*.csv")) if (results / "ablations").exists() else []
    if not csvs:
        return None
    sec = Section("Ablations")
    sec.text("Each variant against its model's default, on the same episodes and held-out windows (paired); "
             "tiny models at the stated budget, with the published full-scale curve beside ours where one exists.")
    for path in csvs:
        t = pd.read_csv(path)
        for col in ("model", "value", "action_error", "action_error_low", "action_error_high", "successes", "episodes"):
            if col not in t:
                raise ResultFileError(f"{path}: no column '{col}'")
        rows = [[str(r.model), str(r.value), f"{r.action_error:.4f} [{r.action_error_low:.4f}, {r.action_error_high:.4f}]",
                 f"{int(r.successes)}/{int(r.episodes)}"] for r in t.itertuples()]
        caveat = _not_recomputable(f"ablations/{path.stem}")
        sec.table(["model", "setting", "action error [95% CI]", "successes"], rows,
                  caption=f"{path.stem} ({path})" + (f". Not recomputable: {caveat}." if caveat else ""))
        if path.with_suffix(".png").exists():
            sec.figure(path.with_suffix(".png"), f"{path.stem}")
        sec.sources.append(path)
    return sec


def zeroshot_section(results: Path) -> Section | None:
    """The zero-shot tables (bench analyze zeroshot), beside the paper's published zero-shot results."""
    files = sorted((results / "zeroshot").glob("*.json")) if (results / "zeroshot").exists() else []
    if not files:
        return None
    sec = Section("Zero-shot splits")
    sec.text("In-distribution success beside each zero-shot split of the training set (unseen instance, unseen "
             "category, more instances) and LIBERO-PRO's object and swap variants: Wilson 95% intervals, the drop "
             "with Newcombe's interval, Fisher p with Holm's correction over a policy's splits. Our suites are "
             "LIBERO variants written here; the paper's zero-shot results (below) are on RoboCasa GR1 and a real "
             "robot, with 2 B models, and compare with ours only in kind.")
    for path in files:
        data = read_json(path, "rows", "provenance")
        rows = []
        for r in data["rows"]:
            if r.get("episodes") is None:
                rows.append([r["policy"], r["split"], "not run", "—", "—", "—"])
                continue
            drop = "—" if r.get("drop") is None else \
                f"{100 * r['drop']:.1f} [{100 * r['drop_low']:.1f}, {100 * r['drop_high']:.1f}]"
            sig = "—" if r.get("significant") is None else ("yes" if r["significant"] else "no")
            rows.append([r["policy"], r["split"], pct_ci(r), str(int(r["episodes"])), drop, sig])
        sec.table(["policy", "split", "success % [95% CI]", "episodes", "drop (points) [95% CI]", "significant"],
                  rows, caption=f"{path.stem} ({path})")
        if path.with_suffix(".png").exists():
            sec.figure(path.with_suffix(".png"), path.stem, width=0.8)
        sec.sources.append(path)
    published = Path(__file__).resolve().parents[1] / "published" / "zero_shot_published.csv"
    if published.exists():
        t = pd.read_csv(published)
        sec.table(list(t.columns), [["—" if pd.isna(v) else str(v) for v in row] for row in t.itertuples(index=False)],
                  caption=f"published zero-shot success rates, % ({published.name})")
    return sec


def gr1_section(results: Path) -> Section | None:
    """Our policies on the GR1 proxy beside the published RoboCasa GR1 numbers (bench analyze gr1)."""
    files = sorted((results / "gr1").glob("*.json")) if (results / "gr1").exists() else []
    if not files:
        return None
    sec = Section("RoboCasa GR1 tabletop (proxy)")
    for path in files:
        data = read_json(path, "rows", "provenance", "caveat", "episode_cost")
        sec.text(data["caveat"])
        labels = [c.removesuffix("_rate") for c in data["rows"][0] if c.endswith("_rate")]
        pub = [c.removeprefix("published_") for c in data["rows"][0] if c.startswith("published_")]

        def cell(r, lab):
            if r.get(f"{lab}_rate") is None:
                return "not run"
            return f"{100 * r[f'{lab}_rate']:.0f} [{100 * r[f'{lab}_ci_low']:.0f}, {100 * r[f'{lab}_ci_high']:.0f}]"

        rows = [[r["task"].removeprefix("PosttrainPnPNovel").removesuffix("SplitA")]
                + [cell(r, lab) for lab in labels]
                + ["—" if r.get(f"published_{m}") is None else f"{100 * r[f'published_{m}']:.0f}" for m in pub]
                for r in data["rows"]]
        sec.table(["GR1 task"] + [f"{lab} (proxy)" for lab in labels] + [f"{m} (published)" for m in pub], rows,
                  caption=f"success %, ours with 95% intervals ({path})", size=7)
        if data["episode_cost"]:
            sec.table(["policy", "episodes", "mean steps", "episode s", "episodes / worker-hour"],
                      [[c["policy"], str(c["episodes"]), f"{c['mean_steps']:.0f}", f"{c['episode_s']:.2f}",
                        f"{c['episodes_per_worker_hour']:.0f}"] for c in data["episode_cost"]],
                      caption="measured cost of a proxy episode (one sim worker)")
        if path.with_suffix(".png").exists():
            sec.figure(path.with_suffix(".png"), path.stem, width=0.95)
        sec.sources.append(path)
    for png in sorted((results / "gr1").glob("*_training_curves.png")):  # bench curves: the models' runs overlaid
        sec.figure(png, f"{png.stem}: action loss of each model trained on the proxy's demos", width=0.7)
    return sec


TRAINED = ("dit4dit", "groot", "flare", "pi05")  # the models trained here, whose results the rows below wait for

# What is not run yet: (globs under results/ any of which is the result, why it is missing). Globs name the
# result files themselves, so a folder holding something else (the smoke ablations, the expert's proxy table)
# does not count as the result.
NOT_RUN = {
    "RoboCasa GR1, the real suite": (
        ("*/robocasa_gr1_summary.json", "*/robocasa_gr1_splitb_summary.json"),
        "needs RoboCasa's object and fixture assets (about 5 GB), a download this machine cannot reach: "
        "bench setup robocasa-gr1 --assets DIR, then bench run --suite robocasa_gr1 (the proxy stands in for it)"),
    "RoboCasa GR1 proxy, trained models": (
        tuple(f"{m}/gr1_tabletop_proxy_summary.json" for m in TRAINED),
        "no trained model is evaluated on the proxy yet: "
        "bench results trainings/<model>/gr1_tabletop_proxy, evaluations/<model>/gr1_tabletop_proxy, then "
        "gr1/gr1_tabletop_proxy"),
    "Zero-shot splits, trained models": (
        tuple(f"{m}/libero_spatial_zeroshot_*_summary.json" for m in TRAINED),
        "the six suites exist and the expert's results are committed; no trained model is evaluated on them yet: "
        "bench results evaluations/<model>/libero_spatial_zeroshot_<split>, then zeroshot/libero_spatial"),
    "Baselines against DiT4DiT": (("baselines/*comparison.csv",),
                                  "no baseline is evaluated yet: bench results evaluations/<model>/libero_spatial, then "
                                  "baselines/libero_spatial_comparison"),
    "Ablations": (("ablations/*.csv",), "not run yet at the small budget: `bench ablate --feature-timestep --budget small`"),
    "Micro-benchmarks (pytest-benchmark)": (("perf/micro.json",), "`pytest benchmarks --benchmark-json results/perf/micro.json` not run yet"),
}


def not_run(results: Path) -> list[dict]:
    return [{"what": what, "why": why} for what, (globs, why) in NOT_RUN.items()
            if not any(any(results.glob(g)) for g in globs)]


def provenance_rows(paths: list[Path]) -> list[list[str]]:
    """One row per result file: its command, commit and date, read from its provenance (JSON files, or the
    train_config of a run)."""
    rows = []
    for path in dict.fromkeys(paths):
        if path.suffix != ".json":
            continue
        try:
            raw = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        prov = raw.get("provenance") or {}
        if "commit_info" in raw:  # pytest-benchmark's own provenance
            info = raw["commit_info"]
            prov = {"command": "pytest benchmarks --benchmark-json", "created_at": raw.get("datetime"),
                    "git": {"commit": info.get("id"), "dirty": info.get("dirty")}}
        git = prov.get("git") or {}
        rows.append([str(path), str(prov.get("command", "—")), (git.get("commit") or "—")[:10]
                     + ("+dirty" if git.get("dirty") else ""), str(prov.get("created_at", "—"))[:19]])
    return rows
