"""Process-group setup for ``torchrun`` launches (DDP), and a single process when not launched by it.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK (and MASTER_ADDR / MASTER_PORT) in each worker's environment;
without them training runs in one process and every helper here is a cheap no-op.
Backend: gloo on CPU, NCCL on CUDA. torch is imported in this module only, never by the CLI dispatcher.
"""

import contextlib
import dataclasses
import os

import torch
import torch.distributed as dist

from mimtrack.errors import UserError


@dataclasses.dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self):
        return self.rank == 0

    @property
    def distributed(self):
        return self.world_size > 1


def _env_int(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise UserError(f"environment variable {name}={value!r}: expected an integer") from None


def init_distributed(device="cpu"):
    """Join the process group torchrun describes (if any) and pick this process's device.

    ``device``: "cpu" or "cuda" ("cuda:N" is accepted; under torchrun each rank uses cuda:LOCAL_RANK).
    Returns a :class:`DistInfo`. Calling it again when the group already exists just describes it.
    """
    rank = _env_int("RANK", 0)
    world_size = _env_int("WORLD_SIZE", 1)
    local_rank = _env_int("LOCAL_RANK", 0)
    kind = str(device).split(":")[0]
    if kind not in ("cpu", "cuda"):
        raise UserError(f"--device {device!r}: expected cpu or cuda")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {device}: CUDA is not available on this machine")
        if world_size > 1:
            index = local_rank
        else:
            index = torch.device(device).index or 0
        if index >= torch.cuda.device_count():
            raise UserError(f"--device {device}: local rank {index} but only {torch.cuda.device_count()} GPU(s)")
        torch.cuda.set_device(index)
        dev = torch.device("cuda", index)
    else:
        dev = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if kind == "cuda" else "gloo", rank=rank, world_size=world_size)
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


def is_initialized():
    return dist.is_available() and dist.is_initialized()


def get_rank():
    return dist.get_rank() if is_initialized() else 0


def get_world_size():
    return dist.get_world_size() if is_initialized() else 1


def is_main():
    """True on rank 0 (and in a single process): the rank that logs and writes files."""
    return get_rank() == 0


def barrier():
    if is_initialized():
        dist.barrier()


def all_reduce_mean(t):
    """Mean of tensor ``t`` over all ranks (returned as a new tensor; ``t`` itself when single-process)."""
    if not is_initialized() or get_world_size() == 1:
        return t
    out = t.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / get_world_size()


def broadcast_object(obj, src=0):
    """Send a picklable object from rank ``src`` to every rank (returned on all of them)."""
    if not is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def cleanup():
    """Leave the process group (safe to call when none exists)."""
    if is_initialized():
        dist.destroy_process_group()


# ---------------------------------------------------------------- mixed precision: train.amp of every training recipe
AMP_MODES = ("none", "bf16", "fp16")
_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_amp(amp, device):
    """``train.amp`` means the same in every training command: none (fp32), bf16, or fp16 (with loss scaling).
    UserError for another value, or for mixed precision on a CPU device (training on the CPU is fp32)."""
    if amp not in AMP_MODES:
        raise UserError(f"config train.amp={amp!r}: expected none, bf16 or fp16")
    if amp != "none" and torch.device(device).type != "cuda":
        raise UserError(f"config train.amp={amp}: mixed precision needs --device cuda (training on CPU is fp32)")
    return amp


def autocast(amp, device):
    """The forward pass's autocast context for ``train.amp`` (a no-op for none)."""
    if amp == "none":
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=_AMP_DTYPES[amp])


def grad_scaler(amp):
    """A GradScaler for fp16 (its narrow range needs loss scaling; bf16 has fp32's), else None."""
    return torch.amp.GradScaler("cuda") if amp == "fp16" else None
