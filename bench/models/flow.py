"""Flow matching, one convention everywhere: t = 0 is data, t = 1 is noise.

    x_t = (1 - t) x0 + t z,  target velocity v = z - x0,  sampling integrates dx/dt = v from t=1 to t=0.

GR00T writes the same path with t flipped (t = 1 data); its Beta(1.5, 1) action
timesteps (s - b) / s become b / s here, which puts the weight on the noisy end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

SAMPLERS = ("uniform", "logit_normal", "beta")


@dataclass(frozen=True)
class TimestepSampler:
    """Draws training timesteps in [0, 1] (beta: [0, 1/s]).

    uniform       U(0, 1)
    logit_normal  sigmoid(N(mean, std)); `high_frac` of samples forced into [high_min, 1]
                  (the official video config: 5% above 0.98)
    beta          Beta(alpha, beta) / s (GR00T's action timesteps, alpha=1.5, beta=1, s=0.999)
    """

    kind: str = "uniform"
    mean: float = 0.0
    std: float = 1.0
    high_frac: float = 0.0
    high_min: float = 0.98
    alpha: float = 1.5
    beta: float = 1.0
    s: float = 0.999

    def __post_init__(self):
        if self.kind not in SAMPLERS:
            raise ValueError(f"unknown timestep distribution {self.kind!r}; choose one of {', '.join(SAMPLERS)}")

    def __call__(self, n: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        if self.kind == "uniform":
            return torch.rand(n, generator=generator, device=device)
        if self.kind == "logit_normal":
            t = torch.sigmoid(self.mean + self.std * torch.randn(n, generator=generator, device=device))
            if self.high_frac > 0:
                high = torch.rand(n, generator=generator, device=device) < self.high_frac
                u = torch.rand(n, generator=generator, device=device)
                t = torch.where(high, self.high_min + (1 - self.high_min) * u, t)
            return t
        # torch.distributions.Beta cannot take a generator; draw it from two gammas via the uniform stream.
        b = _beta_sample(self.alpha, self.beta, n, generator, device)
        return b / self.s

    def cdf(self, x: float) -> float:
        """The distribution's CDF (tests compare samples against it)."""
        from scipy import stats

        if self.kind == "uniform":
            return float(min(max(x, 0.0), 1.0))
        if self.kind == "logit_normal":
            if x <= 0:
                return 0.0
            if x >= 1:
                return 1.0
            base = stats.norm.cdf((math.log(x / (1 - x)) - self.mean) / self.std)
            high = min(max((x - self.high_min) / (1 - self.high_min), 0.0), 1.0)
            return float((1 - self.high_frac) * base + self.high_frac * high)
        return float(stats.beta.cdf(x * self.s, self.alpha, self.beta))


def _beta_sample(alpha: float, beta: float, n: int, generator, device) -> torch.Tensor:
    """Beta(alpha, beta) by inverting its CDF numerically (reproducible with a torch.Generator)."""
    from scipy import special

    u = torch.rand(n, generator=generator, dtype=torch.float64).numpy()
    return torch.from_numpy(special.betaincinv(alpha, beta, u)).float().to(device)


def interpolate(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = (1 - t) x0 + t z, with t broadcast over the trailing dimensions."""
    t = t.reshape(t.shape + (1,) * (x0.ndim - t.ndim))
    return (1 - t) * x0 + t * noise


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    return noise - x0


def euler_sample(velocity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], noise: torch.Tensor,
                 steps: int) -> torch.Tensor:
    """Integrate from t=1 (noise) to t=0 (data) in `steps` equal Euler steps."""
    if steps < 1:
        raise ValueError(f"need at least one Euler step, got {steps}")
    x = noise
    dt = 1.0 / steps
    for i in range(steps):
        t = torch.full((x.shape[0],), 1.0 - i * dt, device=x.device, dtype=x.dtype)
        x = x - dt * velocity(x, t)
    return x
