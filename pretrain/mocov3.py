"""MoCo-v3 contrastive pre-training of a ViT (the baseline MAE-lite compares against).

Layout follows MoCo-v3: the projector is the encoder's ``head`` (``model.head.*``), a momentum copy of
encoder + projector (``momentum_encoder.*``) and a ``predictor``. The loss is symmetric InfoNCE between
the predicted queries of one view and the momentum keys of the other, keys gathered from all processes.
ViT specifics from MoCo-v3: fixed 2-D sin-cos positions and a frozen (random) patch projection, which
stabilises training; recipe for Tiny (MAE-Lite MOCOV3): 12 heads, tau 0.2, m 0.99, AdamW wd 0.1, blr 1.5e-4.
"""

import copy
import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from mimtrack.pretrain.mae import sincos_pos_embed_2d
from mimtrack.pretrain.vit import create_vit


def build_mlp(num_layers, input_dim, mlp_dim, output_dim, last_bn=True):
    """Linear (no bias) -> BN -> ReLU for hidden layers; the last Linear is followed by a BN without affine."""
    layers = []
    for i in range(num_layers):
        dim_in = input_dim if i == 0 else mlp_dim
        last = i == num_layers - 1
        layers.append(nn.Linear(dim_in, output_dim if last else mlp_dim, bias=False))
        if not last:
            layers += [nn.BatchNorm1d(mlp_dim), nn.ReLU(inplace=True)]
        elif last_bn:
            layers.append(nn.BatchNorm1d(output_dim, affine=False))
    return nn.Sequential(*layers)


def mocov3_vit(arch="vit_tiny", img_size=224, **overrides):
    """A registry ViT prepared the MoCo-v3 way: fixed sin-cos positions, frozen patch projection."""
    vit = create_vit(arch, img_size=img_size, **overrides)
    vit.pos_embed.data.copy_(sincos_pos_embed_2d(vit.embed_dim, vit.grid_size)[None])
    vit.pos_embed.requires_grad_(False)
    vit.patch_embed.requires_grad_(False)
    return vit


@torch.no_grad()
def gather_from_all(x):
    """Concatenate ``x`` from every process (no gradient); ``x`` itself in a single process."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)


def momentum_at(progress, base_momentum):
    """Cosine increase from ``base_momentum`` at the start (progress 0) to 1 at the end (progress 1)."""
    return 1.0 - 0.5 * (1.0 + math.cos(math.pi * progress)) * (1.0 - base_momentum)


class MoCoV3(nn.Module):
    """``forward((view1, view2), progress) -> (loss, logs)``; progress in [0, 1] drives the momentum."""

    def __init__(self, encoder, dim=256, mlp_dim=4096, temperature=0.2, momentum=0.99):
        super().__init__()
        self.temperature = temperature
        self.base_momentum = momentum
        self.model = encoder
        self.model.head = build_mlp(3, encoder.embed_dim, mlp_dim, dim)  # projector (MoCo-v3: base_encoder.head)
        self.predictor = build_mlp(2, dim, mlp_dim, dim)
        self.momentum_encoder = copy.deepcopy(self.model)
        self.momentum_encoder.requires_grad_(False)

    @staticmethod
    def embed(encoder, images):
        """The projected cls token of the final (normalised) tokens."""
        return encoder.head(encoder(images)[:, 0])

    @torch.no_grad()
    def update_momentum_encoder(self, m):
        for p_base, p_momentum in zip(self.model.parameters(), self.momentum_encoder.parameters()):
            p_momentum.mul_(m).add_(p_base.detach(), alpha=1.0 - m)

    def contrastive_loss(self, q, k):
        """InfoNCE of queries against all keys (positives on this process's diagonal), scaled by 2 tau."""
        q = F.normalize(q.float(), dim=1)
        k = F.normalize(gather_from_all(k.float()), dim=1)
        logits = q @ k.t() / self.temperature
        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        labels = torch.arange(q.shape[0], device=q.device) + q.shape[0] * rank
        return F.cross_entropy(logits, labels) * (2 * self.temperature)

    def forward(self, views, progress=0.0):
        x1, x2 = views
        q1 = self.predictor(self.embed(self.model, x1))
        q2 = self.predictor(self.embed(self.model, x2))
        m = momentum_at(progress, self.base_momentum)
        with torch.no_grad():
            self.update_momentum_encoder(m)
            k1 = self.embed(self.momentum_encoder, x1)
            k2 = self.embed(self.momentum_encoder, x2)
        loss = self.contrastive_loss(q1, k2) + self.contrastive_loss(q2, k1)
        return loss, {"ctr": loss.detach(), "momentum": torch.tensor(m)}

    def trainable_state_dict(self):
        return self.state_dict()
