"""DDP on 2 CPU processes (gloo) computes the gradients one process computes on the combined batch."""

import os
import socket

import torch
import torch.multiprocessing as mp

from tests.tracker.train_helpers import FakePairs, tiny_config


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _batch(cfg, indices):
    data = FakePairs(cfg, epoch=0, size=8, seed=3)
    items = [data[i] for i in indices]
    return {k: torch.stack([torch.as_tensor(it[k]) for it in items]) for k in items[0]}


def _gradients(trainer, batch):
    trainer.net.train()
    for m in trainer.model.modules():  # BatchNorm statistics are per process (as in OSTrack): use running ones
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
    trainer.train_step(batch, keep_rate=0.75)
    return {n: p.grad.detach().clone() for n, p in trainer.model.named_parameters() if p.grad is not None}


def _worker(rank, world_size, port, out_dir):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from mimtrack import distributed
    from mimtrack.tracker.train.trainer import Trainer

    info = distributed.init_distributed("cpu")
    try:
        cfg = tiny_config(grad_clip=1e9)
        cfg.model.backbone.drop_path = 0.0
        trainer = Trainer(cfg, os.path.join(out_dir, "run"), loader_factory=None, dist_info=info, progress=False)
        grads = _gradients(trainer, _batch(cfg, range(rank, 8, world_size)))  # this rank's slice of the batch
        torch.save(grads, os.path.join(out_dir, f"grads{rank}.pt"))
    finally:
        distributed.cleanup()


def test_two_process_ddp_gradients_equal_single_process_on_the_combined_batch(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    from mimtrack.tracker.train.trainer import Trainer

    cfg = tiny_config(grad_clip=1e9)
    cfg.model.backbone.drop_path = 0.0
    single = Trainer(cfg, tmp_path / "single", loader_factory=None, progress=False)
    expected = _gradients(single, _batch(cfg, [0, 2, 4, 6, 1, 3, 5, 7]))
    for rank in (0, 1):
        got = torch.load(tmp_path / f"grads{rank}.pt")
        assert got.keys() == expected.keys()
        for name, grad in expected.items():
            torch.testing.assert_close(got[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    assert any(g.abs().sum() > 0 for g in expected.values())
