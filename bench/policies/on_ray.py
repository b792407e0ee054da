"""A policy hosted by a Ray actor (`bench run --executor ray --policy-gpus G`).

The policy is built and runs where the cluster has the resources it asks for (a node with G GPUs), once,
and the runner drives it through the ordinary policy contract: it still batches the observations of every
sim worker into one `act` call. The actor sets the run's float math before torch loads, as `bench run` does
for itself. A policy that raises fails only the episodes of that call, with the policy's own exception; an
actor that dies (its node lost) fails them as `remote`, which `--resume` runs again.
"""

from __future__ import annotations

from bench.policies.contract import EpisodeInfo, ObservationBatch, RemotePolicyError


class PolicyHostError(RuntimeError):
    """The policy could not be built on the cluster (the message is the policy's own error)."""


def _host_class():
    import ray

    @ray.remote(max_restarts=0)
    class PolicyHost:
        def __init__(self, name: str, options: dict, math: str):
            self.policy, self.error = None, None
            try:
                from bench.core.mathmode import apply, check, describe

                apply(math)  # this actor's process is fresh: torch is not loaded yet
                from bench.policies import make_policy

                self.policy = make_policy(name, **options)
                check(math)
                self.math = describe(math)
            except Exception as exc:  # reported by info(), so the CLI can say it plainly
                self.error = f"{type(exc).__name__}: {exc}"

        def info(self) -> dict:
            if self.error is not None:
                return {"error": self.error}
            p = self.policy
            path = getattr(p, "checkpoint_path", None)
            return {"spec": p.spec, "metadata": getattr(p, "metadata", None), "math": self.math,
                    "checkpoint_path": None if path is None else str(path),
                    "init_states": hasattr(p, "init_states"), "gpus": [str(g) for g in ray.get_gpu_ids()],
                    "node": ray.get_runtime_context().get_node_id()}

        def reset(self, episode: EpisodeInfo) -> None:
            self.policy.reset(episode)

        def act(self, batch: ObservationBatch):
            return self.policy.act(batch)

        def init_states(self, task) -> list:
            return list(self.policy.init_states(task))

        def describe_coverage(self) -> str:
            return self.policy.describe_coverage() if hasattr(self.policy, "describe_coverage") else ""

    return PolicyHost


class RayPolicy:
    """The runner's handle on a policy in a Ray actor asking for `gpus` GPUs (and one CPU)."""

    def __init__(self, name: str, options: dict, math: str, gpus: float):
        import ray

        self._ray = ray
        self.actor = _host_class().options(num_gpus=gpus, num_cpus=1).remote(name, options, math)
        info = self._call(self.actor.info)
        if "error" in info:
            ray.kill(self.actor)
            raise PolicyHostError(info["error"])
        self.spec, self.metadata, self.math = info["spec"], info["metadata"], info["math"]
        self.checkpoint_path = info["checkpoint_path"]
        self.placement = {"node": info["node"], "gpus": info["gpus"]}
        if info["init_states"]:  # only policies that bring their own initial states have the method
            self.init_states = lambda task: self._call(self.actor.init_states, task)
            self.describe_coverage = lambda: self._call(self.actor.describe_coverage)

    def _call(self, method, *args):
        ray = self._ray
        try:
            return ray.get(method.remote(*args))
        except ray.exceptions.RayTaskError as exc:  # the policy raised: hand the runner its own exception
            raise (getattr(exc, "cause", None) or exc) from None
        except ray.exceptions.RayActorError as exc:  # the actor (or its node) died
            raise RemotePolicyError(f"the policy's Ray actor died: {exc}") from None

    def reset(self, episode: EpisodeInfo) -> None:
        self._call(self.actor.reset, episode)

    def act(self, batch: ObservationBatch):
        return self._call(self.actor.act, batch)

    def close(self) -> None:
        self._ray.kill(self.actor)
