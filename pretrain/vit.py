"""The Vision Transformer used across the project (pre-training encoder and tracker backbone).

Parameter names follow timm / OSTrack (``patch_embed.proj.weight``, ``blocks.N.attn.qkv.weight``,
``blocks.N.mlp.fc1.weight``, ``norm.weight``, ...), so MAE, MAE-Lite, DeiT and OSTrack weights map
one-to-one after their wrapper prefixes are stripped (see ``mimtrack.pretrain.checkpoints``).
"""

import torch
import torch.nn.functional as F
from torch import nn
from timm.layers import DropPath, Mlp, trunc_normal_
from timm.models.beit import Attention as BeitAttention

from mimtrack.errors import UserError

VIT_CONFIGS = {
    # MAE-Lite's ViT-Tiny uses 12 heads of dim 16, not DeiT/timm's 3 heads of dim 64 ("changed to 12 from 3" in
    # its code). The weight shapes do not depend on the head count, so MAE-Lite weights load into a 3-head model
    # without any error and then compute a different function: the default here must be 12.
    "vit_tiny": dict(embed_dim=192, depth=12, num_heads=12),
    # MAE-Lite's ViT-Small (SMALL.md): dim 384 with 12 heads (the MoCo-v3 convention, not DeiT-S's 6).
    "vit_small": dict(embed_dim=384, depth=12, num_heads=12),
    "vit_base": dict(embed_dim=768, depth=12, num_heads=12),
}


class PatchEmbed(nn.Module):
    """Non-overlapping patch x patch convolution; any image whose sides are multiples of the patch size."""

    def __init__(self, patch_size=16, in_chans=3, embed_dim=768):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        h, w = x.shape[-2:]
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"image size {h}x{w} is not a multiple of the patch size {self.patch_size}")
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, N, D), tokens in row-major grid order


class Attention(nn.Module):
    """Multi-head self-attention; ``return_attention=True`` also returns the (B, heads, N, N) probabilities."""

    def __init__(self, dim, num_heads=12, qkv_bias=True, attn_drop=0.0, proj_drop=0.0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed dim {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def attention_logits(self, x):
        """Pre-softmax scaled scores q.k^T / sqrt(head_dim), (B, heads, N, N): the attention-distillation target."""
        b, n, _ = x.shape
        q, k = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)[:2]
        return (q @ k.transpose(-2, -1)) * self.scale

    def forward(self, x, return_attention=False):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        if return_attention:
            # Explicit softmax: candidate elimination needs the template->search probabilities.
            attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
            attn = self.attn_drop(attn)
            x = attn @ v
        else:
            x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop.p if self.training else 0.0)
        x = self.proj_drop(self.proj(x.transpose(1, 2).reshape(b, n, c)))
        return (x, attn) if return_attention else x


class RelPosAttention(BeitAttention):
    """BEiT-style attention with a per-layer relative position bias (MAE-Lite ``projects/eval_tools/models_vit_rpe.py``
    ``Attention`` with ``qkv_bias=True, qv_bias=True, window_size=grid``), on timm's ``timm.models.beit.Attention``.

    Keys: ``qkv.weight`` (no qkv bias), ``q_bias``, ``v_bias``, ``relative_position_bias_table``
    [(2g-1)^2 + 3, heads] (the 3 extra rows: cls->token, token->cls, cls->cls), ``proj.*``. The key bias is fixed at
    0: a bias on the keys adds q.b_k to every logit of a query, which the softmax cancels, so a plain ViT's
    ``qkv.bias`` maps onto ``q_bias`` / ``v_bias`` exactly (:func:`rpe_state_from_plain`). The index table is a
    non-persistent buffer, recomputed from the grid.
    """

    def __init__(self, dim, num_heads, grid_size, attn_drop=0.0, proj_drop=0.0):
        if dim % num_heads:
            raise ValueError(f"embed dim {dim} is not divisible by {num_heads} heads")
        super().__init__(dim, num_heads, qkv_bias=True, attn_drop=attn_drop, proj_drop=proj_drop,
                         window_size=(grid_size, grid_size))
        self.head_dim = dim // num_heads

    def _qkv(self, x):
        b, n, _ = x.shape
        bias = torch.cat((self.q_bias, self.k_bias, self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias).reshape(b, n, 3, self.num_heads, self.head_dim)
        return qkv.permute(2, 0, 3, 1, 4).unbind(0)

    def attention_logits(self, x):
        """Pre-softmax scores q.k^T / sqrt(head_dim) + relative position bias, (B, heads, N, N)."""
        q, k, _ = self._qkv(x)
        if x.shape[1] != self.relative_position_index.shape[0]:
            raise ValueError(f"{x.shape[1]} tokens, but the relative position table is for a {self.window_size} "
                             "grid + cls (RPE models run at their training resolution)")
        return (q * self.scale) @ k.transpose(-2, -1) + self._get_rel_pos_bias()

    def forward(self, x, return_attention=False):
        b, n, c = x.shape
        attn = self.attention_logits(x).softmax(dim=-1)
        x = self.attn_drop(attn) @ self._qkv(x)[2]
        x = self.proj_drop(self.proj(x.transpose(1, 2).reshape(b, n, c)))
        return (x, attn) if return_attention else x


class Block(nn.Module):
    """Pre-norm transformer block: x + MHSA(LN(x)), then x + MLP(LN(x)).

    The two halves are separate methods so that a caller can act between them (OSTrack's
    candidate elimination drops tokens after attention and before the MLP). ``rel_pos_grid``: use
    :class:`RelPosAttention` for a grid of that side (relative-position-bias fine-tuning).
    """

    def __init__(self, dim, num_heads, mlp_ratio=4.0, qkv_bias=True, drop=0.0, attn_drop=0.0, drop_path=0.0,
                 rel_pos_grid=None):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        if rel_pos_grid:
            self.attn = RelPosAttention(dim, num_heads, rel_pos_grid, attn_drop=attn_drop, proj_drop=drop)
        else:
            self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU, drop=drop)
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward_attention(self, x, return_attention=False):
        if return_attention:
            y, attn = self.attn(self.norm1(x), return_attention=True)
            return x + self.drop_path1(y), attn
        return x + self.drop_path1(self.attn(self.norm1(x)))

    def forward_mlp(self, x):
        return x + self.drop_path2(self.mlp(self.norm2(x)))

    def attention_logits(self, x):
        """The attention logits this block computes for the stream ``x`` entering it."""
        return self.attn.attention_logits(self.norm1(x))

    def forward(self, x):
        return self.forward_mlp(self.forward_attention(x))


def resample_pos_embed(pos_embed, grid, num_prefix_tokens=1):
    """(1, P + g*g, D) table -> (1, grid*grid, D): drop the P prefix slots (cls, dist), then resize the
    g x g grid bicubically (align_corners=False), as OSTrack builds its template/search tables."""
    patch_pos = pos_embed[:, num_prefix_tokens:]
    old = int(round(patch_pos.shape[1] ** 0.5))
    if old * old != patch_pos.shape[1]:
        raise ValueError(f"pos_embed with {pos_embed.shape[1]} slots is not {num_prefix_tokens} prefix + a square grid")
    if old == grid:  # nothing to resize (Hiera and RPE models load at their own grid); a copy, never a view
        return patch_pos.clone()
    patch_pos = patch_pos.reshape(1, old, old, -1).permute(0, 3, 1, 2)
    patch_pos = F.interpolate(patch_pos.float(), size=(grid, grid), mode="bicubic", align_corners=False)
    return patch_pos.flatten(2).transpose(1, 2).to(pos_embed.dtype)


def _init_weights(module):
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class VisionTransformer(nn.Module):
    """Plain ViT encoder: patch embedding, cls token, absolute position table, blocks, final norm.

    No classifier: pre-training adds its decoder and the tracker its box head on top of the tokens.
    ``rel_pos_bias=True``: every block also learns a relative position bias for the ``img_size`` grid
    (MAE-Lite's RPE fine-tuning; the absolute table is kept, ``use_abs_pos_emb=True``).
    """

    def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=192, depth=12, num_heads=12,
                 mlp_ratio=4.0, qkv_bias=True, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.0,
                 rel_pos_bias=False):
        super().__init__()
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.patch_size = patch_size
        self.grid_size = img_size // patch_size
        self.num_prefix_tokens = 1
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid_size ** 2, embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        drop_path = torch.linspace(0, drop_path_rate, depth).tolist()  # stochastic depth rises linearly
        self.blocks = nn.ModuleList([
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, drop_rate, attn_drop_rate, drop_path[i],
                  rel_pos_grid=self.grid_size if rel_pos_bias else None)
            for i in range(depth)
        ])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.rel_pos_bias = rel_pos_bias
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.cls_token, std=0.02)
        self.apply(_init_weights)

    @property
    def depth(self):
        return len(self.blocks)

    def adapt_state_dict(self, state):
        """Foreign names -> ours before loading (``mimtrack.pretrain.checkpoints``): a plain ViT or MAE-Lite RPE file
        onto an RPE model (:func:`rpe_state_from_plain`); unchanged otherwise."""
        return rpe_state_from_plain(state, self) if self.rel_pos_bias else state

    def embed(self, images):
        """Images (B, 3, H, W) -> cls + patch tokens with position embeddings (B, 1 + N, D)."""
        x = self.patch_embed(images)
        grid = images.shape[-1] // self.patch_size
        if images.shape[-2] != images.shape[-1] or grid != self.grid_size:
            if images.shape[-2] != images.shape[-1]:
                raise ValueError("only square images are supported")
            pos = resample_pos_embed(self.pos_embed, grid, self.num_prefix_tokens)
        else:
            pos = self.pos_embed[:, self.num_prefix_tokens:]
        cls = self.cls_token + self.pos_embed[:, :1]
        return torch.cat([cls.expand(x.shape[0], -1, -1), x + pos], dim=1)

    def forward_tokens(self, x):
        """Run all blocks and the final norm over given tokens (B, N, D)."""
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def forward(self, images):
        return self.forward_tokens(self.pos_drop(self.embed(images)))


def registry_kwargs(registry, family, name, overrides):
    """``registry[name]`` updated with ``overrides`` (``None`` values are ignored); UserError for an unknown name."""
    if name not in registry:
        raise UserError(f"unknown {family} architecture {name!r} (known: {', '.join(registry)})")
    kwargs = dict(registry[name])
    kwargs.update({k: v for k, v in overrides.items() if v is not None})
    return kwargs


def vit_kwargs(name, **overrides):
    """The registry config ``name`` updated with ``overrides`` (``None`` values are ignored)."""
    return registry_kwargs(VIT_CONFIGS, "ViT", name, overrides)


def create_vit(name, **overrides):
    """A registry ViT by name (``vit_tiny``, ``vit_small``, ``vit_base``), e.g. ``create_vit("vit_tiny", img_size=256)``."""
    return VisionTransformer(**vit_kwargs(name, **overrides))


def rpe_state_from_plain(state, model):
    """Map a state dict onto an RPE ViT (``model``): a plain ViT's ``blocks.i.attn.qkv.bias`` [3D] becomes
    ``q_bias`` = its first D and ``v_bias`` = its last D (the key third is dropped, exactly: see
    :class:`RelPosAttention`); MAE-Lite's persisted ``relative_position_index`` buffers are dropped (recomputed).
    Files that already have ``q_bias`` / ``v_bias`` (MAE-Lite's RPE checkpoints) pass through; a missing
    ``relative_position_bias_table`` keeps its zero initialisation, as BEiT / MAE-Lite start RPE fine-tuning; a table
    for another grid (a 224-px classifier feeding 512-px segmentation) is resized with timm's
    ``resize_rel_pos_bias_table`` (BEiT's interpolation of the (2g-1)^2 offsets, the 3 cls entries kept)."""
    from timm.layers import resize_rel_pos_bias_table

    target = model.state_dict()
    out = {}
    for key, value in state.items():
        if key.endswith(".relative_position_index"):
            continue
        if key.endswith(".relative_position_bias_table") and key in target and value.shape != target[key].shape:
            grid = model.grid_size
            value = resize_rel_pos_bias_table(value, (grid, grid), tuple(target[key].shape))
        prefix = key[:-len("qkv.bias")]
        if key.endswith(".attn.qkv.bias") and prefix + "q_bias" in target and key not in target:
            dim = value.shape[0] // 3
            out[prefix + "q_bias"], out[prefix + "v_bias"] = value[:dim], value[2 * dim:]
            continue
        out[key] = value
    return out


def rpe_state_to_mae_lite(state, model):
    """Our RPE ViT's state dict -> MAE-Lite's ``models_vit_rpe.VisionTransformer`` layout: the same names plus the
    persisted ``relative_position_index`` buffer of every block (MAE-Lite registers it as a persistent buffer)."""
    out = dict(state)
    for name, module in model.named_modules():
        if isinstance(module, RelPosAttention):
            out[f"{name}.relative_position_index"] = module.relative_position_index.clone()
    return out
