import math

import torch
import torch.nn.functional as F
from torch import nn

from mimtrack.pretrain.mocov3 import MoCoV3, build_mlp, momentum_at, mocov3_vit


def small_moco(**kwargs):
    encoder = mocov3_vit("vit_tiny", img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4)
    return MoCoV3(encoder, dim=16, mlp_dim=32, **kwargs)


def test_momentum_cosine_schedule():
    assert momentum_at(0.0, 0.99) == 0.99
    assert math.isclose(momentum_at(1.0, 0.99), 1.0)
    assert math.isclose(momentum_at(0.5, 0.99), 0.995)
    assert math.isclose(momentum_at(0.25, 0.99), 1 - 0.5 * (1 + math.cos(math.pi / 4)) * 0.01)


def test_mlp_layout_is_mocov3s():
    mlp = build_mlp(3, 64, 32, 16)
    kinds = [type(m) for m in mlp]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear, nn.BatchNorm1d]
    assert all(m.bias is None for m in mlp if isinstance(m, nn.Linear))
    assert not mlp[-1].affine and mlp[1].affine  # the output BN has no affine parameters
    model = small_moco()
    assert not model.model.pos_embed.requires_grad and not model.model.patch_embed.proj.weight.requires_grad
    assert torch.all(model.model.pos_embed[0, 0] == 0)
    keys = model.state_dict().keys()
    assert "model.head.0.weight" in keys and "momentum_encoder.head.0.weight" in keys and "predictor.0.weight" in keys


def test_contrastive_loss_matches_hand_computation():
    model = small_moco(temperature=0.2)
    q, k = torch.randn(4, 16), torch.randn(4, 16)
    qn, kn = q / q.norm(dim=1, keepdim=True), k / k.norm(dim=1, keepdim=True)
    logits = qn @ kn.t() / 0.2
    manual = sum(-(logits[i, i] - torch.logsumexp(logits[i], 0)) for i in range(4)) / 4 * 0.4
    torch.testing.assert_close(model.contrastive_loss(q, k), manual)
    # identical, well-separated pairs give a smaller loss than random ones
    e = F.one_hot(torch.arange(4), 16).float()
    assert model.contrastive_loss(e, e) < model.contrastive_loss(q, k)


def test_forward_is_symmetric_and_updates_the_momentum_encoder():
    torch.manual_seed(0)
    model = small_moco(momentum=0.9)
    x1, x2 = torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        loss_a, _ = model((x1, x2), progress=1.0)  # momentum 1: the momentum encoder is left as it is
        loss_b, _ = model((x2, x1), progress=1.0)
    torch.testing.assert_close(loss_a, loss_b)

    with torch.no_grad():
        for p in model.model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    before = [p.clone() for p in model.momentum_encoder.parameters()]
    loss, logs = model((x1, x2), progress=0.0)
    assert math.isclose(float(logs["momentum"]), 0.9, rel_tol=1e-6)
    for old, base, new in zip(before, model.model.parameters(), model.momentum_encoder.parameters()):
        torch.testing.assert_close(new, 0.9 * old + 0.1 * base.detach())
    loss.backward()
    assert all(p.grad is None for p in model.momentum_encoder.parameters())
    assert model.predictor[0].weight.grad.abs().sum() > 0 and model.model.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    assert model.model.patch_embed.proj.weight.grad is None  # frozen random patch projection
