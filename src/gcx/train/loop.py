"""What every gcx trainer shares: Adam with the LR schedule, EMA weights, checkpoints, resume, progress log.

A checkpoint holds model, optimizer, EMA weights, step, generator state and the run's arguments
(plus what the trainer adds, such as its configuration), so a resumed run ends bit-identical to an
uninterrupted one with the same thread count: every random choice must come from `Run.gen`.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import torch
from torch import nn

CHECKPOINT = "last.pt"
PROGRESS = "progress.log"
STOP = "STOP"  # touch OUT/STOP: the run checkpoints and ends after the current step


def learning_rate(step: int, total: int, base: float, decay_frac: float, warmup: int = 0) -> float:
    """Linear warm-up over `warmup` steps, constant, then cosine decay to 1% over the last `decay_frac`.

    The decay is worth about 0.9 dB here; the warm-up keeps a fresh Adam state from kicking the
    weights of a model initialised from a trained one (its second moments start at zero).
    """
    start = int(total * (1 - decay_frac))
    if step < start:
        return base * min(1.0, (step + 1) / warmup) if warmup else base
    progress = min(1.0, (step - start) / max(1, total - start))
    return base * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress)))


def save_atomic(path: Path, obj: object) -> None:
    """torch.save through a temporary file: a run stopped mid-write leaves the previous file intact."""
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_state(out: str | os.PathLike[str], resume: bool) -> dict | None:
    """The checkpoint of a run folder when resuming and there is one, else None."""
    path = Path(out) / CHECKPOINT
    return torch.load(path, weights_only=False) if resume and path.exists() else None


def native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes bfloat16 matrix products natively (AMX or AVX512-BF16).

    Why it matters: `--bf16` made training about 2.8x faster on CPUs with AMX, but on CPUs without
    either (an AMD EPYC with AVX2 only, session 12) bfloat16 is emulated and about 10x slower than float32.
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return True  # cannot tell (not Linux): trust the flag
    flags = {f for line in cpuinfo.splitlines() if line.startswith("flags") for f in line.split(":", 1)[1].split()}
    return bool(flags & {"amx_bf16", "avx512_bf16"})


def add_arguments(p: argparse.ArgumentParser, steps: int, lr: float, decay_frac: float, threads: int = 2) -> None:
    """The options every trainer takes (schedule, checkpoints, resume, threads, seed)."""
    p.add_argument("--out", required=True, help="run folder: checkpoint, progress log (and caches)")
    p.add_argument("--steps", type=int, default=steps, help="total steps (sets the LR schedule)")
    p.add_argument("--stop-at", type=int, default=0, help="checkpoint and stop at this step (0: run to --steps)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt if it exists")
    p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--decay-frac", type=float, default=decay_frac, help="fraction of steps with cosine LR decay")
    p.add_argument("--warmup", type=int, default=0, help="steps of linear LR warm-up")
    p.add_argument("--ema", type=float, default=0.999, help="EMA decay of the exported weights")
    p.add_argument("--threads", type=int, default=threads)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ckpt-minutes", type=float, default=5.0)
    p.add_argument("--log-every", type=int, default=50)


class Run:
    """One training run: create it after seeding and building the model, then `update` once per step."""

    def __init__(self, model: nn.Module, args: argparse.Namespace, state: dict | None, meta: dict):
        self.model = model
        self.args = args
        self.meta = meta  # stored in every checkpoint beside the training state (configuration, ...)
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
        self.gen = torch.Generator().manual_seed(args.seed)
        self.ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
        # parameters frozen before the run starts keep their exact values in the EMA weights too
        self.frozen = {k for k, v in model.named_parameters() if not v.requires_grad}
        self.step = 0
        if state is not None:
            model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.ema = state["ema"]
            self.gen.set_state(state["rng"])
            self.step = state["step"]
        self.stop = min(args.steps, args.stop_at) if args.stop_at else args.steps
        self.log = (self.out / PROGRESS).open("a")
        if getattr(args, "bf16", False) and not native_bf16():
            warning = "# warning: --bf16 on a CPU without AMX or AVX512-BF16: emulated, about 10x slower than float32"
            print(warning, flush=True)
            self.log.write(warning + "\n")
        self.last_ckpt = self.last_log = time.monotonic()
        self.since_log = 0

    @property
    def running(self) -> bool:
        """False at the last step, or once OUT/STOP appears (consumed, so a resumed run goes on).

        Why a file: a background run stopped with `kill` loses up to --ckpt-minutes of work, and a
        fork (a decay run, an export) wants the checkpoint of the step it stopped at.
        """
        stop_file = self.out / STOP
        if self.step < self.stop and stop_file.exists():
            stop_file.unlink()
            self.log.write(f"# step {self.step}: stopped by {STOP}\n")
            return False
        return self.step < self.stop

    def start_step(self) -> float:
        """Set this step's learning rate and return it."""
        lr = learning_rate(self.step, self.args.steps, self.args.lr, self.args.decay_frac, self.args.warmup)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def update(self, loss: torch.Tensor) -> None:
        """Backward, clip the gradient norm to 1, step Adam, advance the EMA weights."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.step += 1
        self.since_log += 1
        decay = min(self.args.ema, (1 + self.step) / (10 + self.step))
        with torch.no_grad():
            for k, v in self.model.state_dict().items():
                if k in self.frozen:
                    continue
                if v.dtype.is_floating_point:
                    self.ema[k].mul_(decay).add_(v.detach(), alpha=1 - decay)
                else:
                    self.ema[k].copy_(v)

    def log_due(self) -> bool:
        return self.step % self.args.log_every == 0 or self.step == self.stop

    def end_step(self, line: str | None) -> None:
        """Write `line` (with the speed) if given, and checkpoint every few minutes."""
        now = time.monotonic()
        if line is not None:
            line = f"step {self.step} {line} steps/s {self.since_log / max(now - self.last_log, 1e-9):.2f}"
            print(line, flush=True)
            self.log.write(line + "\n")
            self.log.flush()
            self.since_log = 0
            self.last_log = now
        if now - self.last_ckpt > self.args.ckpt_minutes * 60:
            self.checkpoint()
            self.last_ckpt = now

    def checkpoint(self) -> Path:
        path = self.out / CHECKPOINT
        state = {
            **self.meta,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "ema": self.ema,
            "rng": self.gen.get_state(),
            "step": self.step,
            "args": vars(self.args),
        }
        save_atomic(path, state)
        return path

    def finish(self) -> Path:
        path = self.checkpoint()
        self.log.close()
        return path
