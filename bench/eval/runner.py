"""The evaluation runner: episodes spread over sim worker processes, observations
batched into one policy call, one JSON line per finished episode.

Flow: plan episodes -> start workers -> loop { hand idle workers the next
episode (same task first, so envs are reused); wait for observations; batch
them into one `policy.act`; send each worker the executed prefix of its chunk;
record episodes as they end } -> summary.

Faults never lose an episode: a worker that dies or exceeds the per-episode
timeout is killed and replaced, and its episode is recorded with the error. A
policy that raises or returns a bad shape or NaN fails only the episodes in
that call, with the reason.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from multiprocessing.connection import wait as wait_for
from pathlib import Path
from typing import Callable


from bench.core.mathmode import mode_of
from bench.policies.contract import EpisodeInfo, ObservationBatch, RemotePolicyError, check_spec, validate_chunks
from bench.core.provenance import file_hash, shown_path
from bench.core.records import EpisodeRecord, append_record, finished_keys, read_records
from bench.sim.backend import BackendNotReady, get_backend
from bench.sim.process import WorkerProcess
from bench.sim.worker import EpisodeStart
from bench.sim.suites import Protocol, Suite, TaskInfo


EXECUTORS = ("local", "ray")


@dataclass
class RunConfig:
    suite: Suite
    policy_name: str
    task_ids: list[int]
    out: Path
    episodes: int | None = None  # per task; None = the suite's default (50)
    workers: int = 2
    resume: bool = False
    videos_per_task: int = 0  # the first N episodes of each task get an mp4
    checkpoint: str | None = None
    protocol: Protocol | None = None  # None = the suite's protocol
    episode_timeout_s: float = 900.0
    record_resolution: int | None = None  # record LIBERO-format trajectories (demo generation)
    record_pixel_path: str = "render_resize_uint8"  # how recorded frames are made (bench.sim.frames)
    record_frame_every: int = 1  # record frames on every k-th step only (bench.sim.worker.frame_recorded)
    math: str | None = None  # the policy process's float math id (bench.core.mathmode), written into every record
    policy_args: dict | None = None  # the policy's --policy-arg values, written into every record
    executor: str = "local"  # where sim workers run: local processes, or Ray actors (bench.sim.ray_workers)
    ray_address: str | None = None  # the Ray cluster to join (None: start a local one)

    def __post_init__(self):
        if self.executor not in EXECUTORS:
            raise ValueError(f"unknown executor {self.executor!r}: valid {', '.join(EXECUTORS)}")
        self.out = Path(self.out)
        if self.protocol is None:
            self.protocol = self.suite.protocol
        if self.episodes is None:
            self.episodes = self.suite.episodes_per_task


@dataclass
class Planned:
    key: str
    task: TaskInfo
    init_id: int
    initial: object  # the initial condition handed to the sim: a state array or a seed
    wait_steps: int
    video: bool
    max_steps: int  # the policy's step budget after the wait steps


@dataclass
class _Worker:
    wid: int
    proc: WorkerProcess | None = None
    conn: object = None  # its bench.sim.codec.Channel
    env_id: str | None = None  # the env the worker holds
    sim: dict | None = None  # what the worker said about itself: backend, python, simulator versions
    episode: Planned | None = None
    started: float = 0.0
    steps: int = 0  # policy steps of the current episode, as last reported


class RunDirMismatch(ValueError):
    pass


def plan_episodes(cfg: RunConfig, policy) -> list[Planned]:
    """Every episode of the run, grouped by task. A policy may supply its own init states."""
    plan = []
    custom = getattr(policy, "init_states", None)
    for tid in cfg.task_ids:
        task = cfg.suite.task(tid)
        if custom is not None:
            # Demo states are where their actions begin, and those actions include the protocol's wait
            # steps: the budget grows by as many, or a demo that used its whole budget is cut short.
            states, wait = list(custom(task)), 0
            budget = cfg.protocol.max_steps + cfg.protocol.wait_steps
        else:
            states, wait = list(cfg.suite.initial_conditions(tid)), cfg.protocol.wait_steps
            budget = cfg.protocol.max_steps
            if cfg.episodes > len(states):
                raise ValueError(
                    f"--episodes {cfg.episodes} exceeds the {len(states)} initial states of "
                    f"{cfg.suite.name} task {tid}: use at most {len(states)}"
                )
        for i, state in enumerate(states[: cfg.episodes]):
            plan.append(Planned(f"{cfg.suite.name}/{tid}/{i}", task, i, state, wait,
                                i < cfg.videos_per_task, budget))
    if not plan and custom is not None:
        cover = policy.describe_coverage() if hasattr(policy, "describe_coverage") else ""
        raise ValueError(f"policy {cfg.policy_name!r} has no episodes for the selected tasks of "
                         f"{cfg.suite.name}. {cover}")
    return plan


def _check_run_dir(cfg: RunConfig, records: list[dict], checkpoint_hash: str | None) -> None:
    """A run directory holds one suite, one policy, one protocol, one checkpoint, one math mode."""
    ours = {"suite": cfg.suite.name, "policy": cfg.policy_name, "protocol_hash": cfg.protocol.hash(),
            "checkpoint_hash": checkpoint_hash}
    for r in records:
        if mode_of(r.get("math")) != mode_of(cfg.math):
            raise RunDirMismatch(
                f"{cfg.out} already holds episodes run with {mode_of(r.get('math'))} float math, this run uses "
                f"{mode_of(cfg.math)}: pass --math {mode_of(r.get('math'))} to continue it, or use another --out.")
        for k, v in ours.items():
            if r.get(k) != v:
                why = (" (records from before checkpoint hashes were kept say None)"
                       if k == "checkpoint_hash" and r.get(k) is None else "")
                raise RunDirMismatch(
                    f"{cfg.out} already holds episodes with {k}={r.get(k)!r}, this run has {k}={v!r}{why}: "
                    f"episodes of the two cannot share a summary. Use another --out (or move {cfg.out} away)."
                )


class Runner:
    def __init__(self, cfg: RunConfig, policy, on_episode: Callable[[EpisodeRecord], None] | None = None,
                 on_trajectory: Callable[[Planned, dict], None] | None = None):
        self.cfg, self.policy = cfg, policy
        self.on_episode = on_episode or (lambda rec: None)
        self.on_trajectory = on_trajectory  # gets (episode, trajectory) of successful recorded episodes
        self.records_path = cfg.out / "episodes.jsonl"
        self.ckpt_hash = file_hash(cfg.checkpoint)
        self.ckpt_shown = shown_path(cfg.checkpoint)  # as every record shows it
        self.policy_s = 0.0
        self.policy_calls = 0
        self.workers: list[_Worker] = []  # live during run(); tests use it to inject faults

    # ----------------------------------------------------------------- set-up
    def pending(self) -> list[Planned]:
        check_spec(self.policy.spec, self.cfg.protocol, self.cfg.policy_name, self.cfg.suite.name)
        plan = plan_episodes(self.cfg, self.policy)
        existing = read_records(self.records_path)
        if existing and not self.cfg.resume:
            raise RunDirMismatch(
                f"{self.records_path} already has {len(existing)} episode records: pass --resume to "
                f"continue that run, or choose another --out"
            )
        _check_run_dir(self.cfg, existing, self.ckpt_hash)
        done = finished_keys(existing)
        return [p for p in plan if p.key not in done]

    def _spawn(self, w: _Worker) -> None:
        backend = get_backend(self.cfg.suite.backend)
        if self.cfg.executor == "ray":
            from bench.sim.ray_workers import RayWorkerProcess, connect

            connect(self.cfg.ray_address)
            w.proc = RayWorkerProcess(backend, w.wid)
        else:
            w.proc = WorkerProcess(backend, w.wid)
        w.conn, w.env_id, w.episode, w.sim = w.proc.channel, None, None, None

    def _kill(self, w: _Worker) -> None:
        if w.proc is not None and w.proc.is_alive():
            w.proc.kill()
        if w.proc is not None:
            w.proc.join(timeout=10)
        if w.conn is not None:
            w.conn.close()
        w.proc = w.conn = None
        w.episode = None

    # ---------------------------------------------------------------- records
    def _record(self, w: _Worker, p: Planned, success: bool, steps: int, error: str | None = None,
                error_kind: str | None = None, timing: dict | None = None, video: str | None = None,
                final_state: str | None = None, first_frame: str | None = None) -> None:
        rec = EpisodeRecord(
            key=p.key, suite=self.cfg.suite.name, task_id=p.task.task_id, task=p.task.name,
            language=p.task.language, init_id=p.init_id, seed=self.cfg.protocol.seed,
            policy=self.cfg.policy_name, checkpoint=self.ckpt_shown, checkpoint_hash=self.ckpt_hash,
            protocol_hash=self.cfg.protocol.hash(), success=bool(success), steps=int(steps),
            wall_time_s=round(time.perf_counter() - w.started, 3), error=error, error_kind=error_kind,
            video=str(Path(video).relative_to(self.cfg.out)) if video else None, worker=w.wid,
            timing={k: round(v, 4) for k, v in (timing or {}).items()},
            finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), final_state=final_state,
            math=self.cfg.math, policy_args=self.cfg.policy_args or None,
            policy_meta=getattr(self.policy, "metadata", None), sim=w.sim,
            policy_notes=self._notes(p.key), first_frame=first_frame,
        )
        append_record(self.records_path, rec)
        w.episode = None
        self.on_episode(rec)

    def _notes(self, key: str) -> dict | None:
        notes = getattr(self.policy, "episode_notes", None)
        return notes(key) if callable(notes) else None

    # ------------------------------------------------------------------- loop
    def _assign(self, w: _Worker, queue: deque[Planned]) -> None:
        """Give an idle worker the next episode. Building an env costs ~7 s, so prefer
        (1) the task the worker's env holds, (2) a task no other worker holds, the one
        with most episodes left, (3) the task with most episodes left."""
        pick = next((p for p in queue if p.task.env_id == w.env_id), None)
        if pick is None:
            left: dict[str, int] = {}
            for p in queue:
                left[p.task.env_id] = left.get(p.task.env_id, 0) + 1
            held = {o.env_id for o in self.workers if o is not w}
            free = [t for t in left if t not in held]
            task = max(free or left, key=lambda t: left[t])
            pick = next(p for p in queue if p.task.env_id == task)
        queue.remove(pick)
        if w.proc is None:
            self._spawn(w)
        video = str(self.cfg.out / "videos" / f"{pick.key.replace('/', '_')}.mp4") if pick.video else None
        start = EpisodeStart(pick.key, pick.task, self.cfg.protocol, pick.initial, self.cfg.protocol.seed,
                             pick.wait_steps, pick.max_steps, self.policy.spec.cameras, video,
                             privileged=self.policy.spec.privileged, record=self.cfg.record_resolution,
                             record_pixel_path=self.cfg.record_pixel_path,
                             record_frame_every=self.cfg.record_frame_every)
        w.episode, w.started, w.env_id = pick, time.perf_counter(), pick.task.env_id
        w.steps = 0
        self.policy.reset(EpisodeInfo(pick.key, pick.task, pick.init_id, self.cfg.protocol.seed))
        try:
            w.conn.send(["start", start.to_message()])
        except (BrokenPipeError, OSError) as exc:
            self._worker_died(w, f"could not reach the worker: {exc}")

    def _worker_died(self, w: _Worker, why: str) -> None:
        p = w.episode
        if w.proc is not None:
            w.proc.join(timeout=2)  # reap it, so the exit code (e.g. -9 for SIGKILL) is known
        code = w.proc.exitcode if w.proc is not None else None
        self._kill(w)
        if p is not None:
            self._record(w, p, False, w.steps,
                         error=f"sim worker {w.wid} died ({why}; exit code {code})", error_kind="worker_died")

    def run(self, queue: list[Planned] | None = None, on_episode: Callable[[EpisodeRecord], None] | None = None
            ) -> None:
        """Run the queue (default: every pending episode); `on_episode` hears each record too, after the
        runner's own listener."""
        if on_episode is not None:
            own = self.on_episode
            self.on_episode = lambda rec: (own(rec), on_episode(rec))
        cfg = self.cfg
        queue = deque(self.pending() if queue is None else queue)
        if not queue:
            return
        n_workers = max(1, min(cfg.workers, len(queue)))
        workers = self.workers = [_Worker(i) for i in range(n_workers)]
        try:
            for w in workers:
                self._spawn(w)
            while queue or any(w.episode is not None for w in workers):
                for w in workers:
                    if w.episode is None and queue:
                        self._assign(w, queue)
                busy = [w for w in workers if w.episode is not None]
                if not busy:
                    continue
                now = time.perf_counter()
                next_deadline = min(w.started + cfg.episode_timeout_s for w in busy)
                ready = wait_for([w.conn for w in busy], timeout=max(0.0, min(1.0, next_deadline - now)))
                requests: list[tuple[_Worker, dict]] = []
                for w in busy:
                    if w.conn not in ready:
                        continue
                    try:
                        msg = w.conn.recv()
                    except (EOFError, OSError, ConnectionError):
                        self._worker_died(w, "its pipe closed")
                        continue
                    kind, key = msg[0], msg[1]
                    if kind == "hello":
                        if "error" in msg[2]:
                            raise BackendNotReady(
                                f"the {msg[2]['backend']} sim worker could not load its simulator: {msg[2]['error']}")
                        w.sim = msg[2]
                        continue
                    if w.episode is None or key != w.episode.key:
                        continue  # a stale answer for an episode already recorded
                    if kind == "obs":
                        w.steps = msg[2]["step"]
                        requests.append((w, msg[2]))
                    elif kind == "done":
                        res = msg[2]
                        if res["success"] and "trajectory" in res and self.on_trajectory is not None:
                            self.on_trajectory(w.episode, res["trajectory"])
                        self._record(w, w.episode, res["success"], res["steps"], timing=res["timing"],
                                     video=res["video"], final_state=res.get("final_state"),
                                     first_frame=res.get("first_frame"))
                    elif kind == "error":
                        self._record(w, w.episode, False, w.steps, error=msg[2], error_kind="sim")
                        w.env_id = None  # the worker dropped its env
                now = time.perf_counter()
                for w in busy:
                    if w.episode is None or any(w is r[0] for r in requests):
                        continue
                    if w.proc is not None and not w.proc.is_alive():
                        self._worker_died(w, "the process exited")
                    elif now - w.started > cfg.episode_timeout_s:
                        p = w.episode
                        self._kill(w)
                        self._record(w, p, False, w.steps, error_kind="timeout",
                                     error=f"episode exceeded the {cfg.episode_timeout_s:.0f} s timeout")
                if requests:
                    self._act(requests)
        finally:
            for w in workers:
                if w.conn is not None:
                    try:
                        w.conn.send(["close"])
                    except (BrokenPipeError, OSError):
                        pass
            for w in workers:
                if w.proc is not None:
                    w.proc.join(timeout=5)
                self._kill(w)

    def _act(self, requests: list[tuple[_Worker, dict]]) -> None:
        batch = ObservationBatch.stack([obs for _, obs in requests])
        t = time.perf_counter()
        kind = "policy"
        try:
            chunks = self.policy.act(batch)
            arr, errors = validate_chunks(chunks, len(batch), self.policy.spec)
        except RemotePolicyError as exc:  # the server, not the policy: --resume runs these again
            arr, errors, kind = None, [str(exc)] * len(batch), "remote"
        except Exception as exc:  # a policy bug fails these episodes, not the run
            arr, errors = None, [f"policy raised {type(exc).__name__}: {exc}"] * len(batch)
        self.policy_s += time.perf_counter() - t
        self.policy_calls += 1
        n_exec = self.cfg.protocol.executed_chunk
        for i, (w, obs) in enumerate(requests):
            if errors[i] is not None:
                self._record(w, w.episode, False, obs["step"], error=errors[i], error_kind=kind)
                continue
            try:
                w.conn.send(["chunk", w.episode.key, arr[i, :n_exec]])
            except (BrokenPipeError, OSError) as exc:
                self._worker_died(w, f"could not send actions: {exc}")
