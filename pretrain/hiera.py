"""Hiera (Ryali et al. 2023), MAE-Lite's hierarchical lightweight backbone, built on timm's Hiera.

MAE-Lite's Hiera-Tiny (``projects/mae_lite/hiera.py`` ``hiera_tiny_224``, wangsr126/MAE-Lite) is a narrowed Hiera:
embed dim 46, 1 head, stages (1, 2, 7, 2) -> dims 46 / 92 / 184 / 368, heads 1 / 2 / 4 / 8; 7x7 stride-4 patch stem
(56 x 56 tokens at 224 px), absolute position table (1, 3136, 46), mask units of 8 x 8 tokens (32 x 32 px, 7 x 7
units), mask-unit attention in stages 1-2 and global attention in 3-4, 2 x 2 max-pooling of the queries at the first
``q_pool`` stage transitions (3 for fine-tuning: strides 4 / 8 / 16 / 32; 2 during MAE: the last stage stays at
stride 16). ``q_pool`` has no weights, so one checkpoint serves both.

timm's ``timm.models.hiera.Hiera`` builds exactly this network (``Hiera(embed_dim=46, num_heads=1,
stages=(1, 2, 7, 2))``): :class:`HieraEncoder` is timm's model without its classifier head; the blocks, stem,
unroll / reroll and mask handling are timm's. Parameter names are MAE-Lite's (``patch_embed.proj.*``, ``pos_embed``,
``blocks.N.{norm1,proj,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.*``); MAE-Lite's fine-tuned classifier adds
``norm.*`` (after mean pooling) and ``head.projection.*`` (timm renames those ``head.norm`` / ``head.fc``;
:func:`hiera_state_from_timm` maps them back).
"""

from timm.models.hiera import Hiera as TimmHiera
from torch import nn

from mimtrack.errors import UserError
from mimtrack.pretrain.vit import registry_kwargs

HIERA_CONFIGS = {
    # MAE-Lite's 6.5 M model (timm's own hiera_tiny_224 is the official 96-d, 28 M one).
    "hiera_tiny": dict(embed_dim=46, num_heads=1, stages=(1, 2, 7, 2)),
    # The official MAE Hiera-Base (facebookresearch/hiera mae_hiera_base_224): MAE-Lite's distillation teacher.
    "hiera_base": dict(embed_dim=96, num_heads=1, stages=(2, 3, 16, 3)),
}


def is_hiera(arch):
    return arch in HIERA_CONFIGS


def hiera_kwargs(name, **overrides):
    """The registry config ``name`` updated with ``overrides`` (``None`` values are ignored)."""
    return registry_kwargs(HIERA_CONFIGS, "Hiera", name, overrides)


def check_hiera_heads(name, embed_dim, num_heads):
    """UserError unless the first stage's width divides into the heads (a ViT recipe's ``num_heads: 12`` with
    ``--set model.arch=hiera_tiny`` would give 46 / 12)."""
    kwargs = hiera_kwargs(name, embed_dim=embed_dim, num_heads=num_heads)
    if kwargs["embed_dim"] % kwargs["num_heads"]:
        raise UserError(f"config model.num_heads={kwargs['num_heads']}: {name}'s {kwargs['embed_dim']}-d first stage "
                        f"does not split into that many heads ({name} has {HIERA_CONFIGS[name]['num_heads']}; "
                        "--set model.num_heads=null keeps it)")


def check_hiera_image_size(img_size, where="model.img_size"):
    """Hiera's unroll needs the 4-px token grid to split into 8 x 8 mask units: sides a multiple of 32 px."""
    if img_size % 32 or img_size <= 0:
        raise UserError(f"config {where}={img_size}: Hiera needs a multiple of 32 px (stride-4 tokens in 8x8 units)")


class HieraEncoder(TimmHiera):
    """timm's Hiera without its classifier head: ``forward`` returns the last block's tokens (B, N, C).

    With ``q_pool=3`` the last stage is a 7 x 7 grid at 224 px and the tokens are in row-major order; with fewer
    pools (MAE) they are still grouped by mask unit (see timm's ``Unroll``).
    """

    num_prefix_tokens = 0  # no cls token: the position table is a bare grid (pretrain.checkpoints resizes it)

    def __init__(self, img_size=224, embed_dim=46, num_heads=1, stages=(1, 2, 7, 2), q_pool=3, mlp_ratio=4.0,
                 drop_path_rate=0.0, in_chans=3):
        check_hiera_image_size(img_size)
        super().__init__(img_size=(img_size, img_size), in_chans=in_chans, embed_dim=embed_dim, num_heads=num_heads,
                         num_classes=0, stages=tuple(stages), q_pool=q_pool, mlp_ratio=mlp_ratio,
                         drop_path_rate=drop_path_rate)
        del self.head  # pooling + norm + classifier belong to the task model (MAE-Lite's layout: norm.*, head.*)
        self.img_size = img_size
        self.embed_dim = embed_dim
        self.stage_dims = [self.blocks[i].dim_out for i in self.stage_ends]
        self.num_features = self.stage_dims[-1]

    @property
    def depth(self):
        return len(self.blocks)

    def forward(self, images, mask=None):
        return self.forward_features(images, mask=mask)

    def stage_maps(self, images):
        """The four stage outputs as (B, C_s, H / 4, H / 8, ...) maps (timm's reroll to spatial order)."""
        _, maps = self.forward_features(images, return_intermediates=True)
        return [m.permute(0, 3, 1, 2).contiguous() for m in maps]


def block_attention_logits(block, x):
    """Pre-softmax scaled scores q.k^T / sqrt(head_dim) that a timm ``HieraBlock`` computes for the stream ``x``
    entering it: (B, heads, windows, Nq, Nk) for mask-unit attention, (B, heads, Nq, Nk) for global attention.

    The same arithmetic as timm's ``MaskUnitAttention.forward`` (its fused path never materialises the scores):
    queries max-pooled over the q-stride, then scaled. MAE-Lite reads them with a hook on the identity that sits
    after ``(q * scale) @ k^T`` in its copy of Hiera, then squeezes the window axis of global attention.
    """
    attn = block.attn
    x = block.norm1(x)
    b, n, _ = x.shape
    windows = n // (attn.q_stride * attn.window_size) if attn.use_mask_unit_attn else 1
    qkv = attn.qkv(x).reshape(b, -1, windows, 3, attn.heads, attn.head_dim).permute(3, 0, 4, 2, 1, 5)
    q, k = qkv[0], qkv[1]
    if attn.q_stride > 1:
        q = q.view(b, attn.heads, windows, attn.q_stride, -1, attn.head_dim).amax(dim=3)
    logits = (q * attn.scale) @ k.transpose(-1, -2)
    return logits if attn.use_mask_unit_attn else logits[:, :, 0]


def hiera_state_from_timm(state):
    """timm's Hiera key names -> MAE-Lite's (``head.fc`` -> ``head.projection``, ``head.norm`` -> ``norm``).

    The inverse of the renaming in timm's ``timm.models.hiera.checkpoint_filter_fn``; MAE-Lite's and the official
    Hiera checkpoints already use MAE-Lite's names and pass unchanged.
    """
    out = {}
    for key, value in state.items():
        if key.startswith("head.fc."):
            key = "head.projection." + key[len("head.fc."):]
        elif key.startswith("head.norm."):
            key = "norm." + key[len("head.norm."):]
        out[key] = value
    return out


def create_hiera(name, img_size=224, q_pool=3, drop_path_rate=0.0, **overrides):
    """A registry Hiera encoder by name (``hiera_tiny``, ``hiera_base``)."""
    return HieraEncoder(img_size=img_size, q_pool=q_pool, drop_path_rate=drop_path_rate,
                        **hiera_kwargs(name, **overrides))


class HieraHead(nn.Module):
    """MAE-Lite's ``Head``: ``projection`` (Linear); ``probe=True`` puts BatchNorm1d(affine=False) before it (MAE's
    linear-probe head). MAE-Lite's head also applies a softmax in eval mode; logits are returned here."""

    def __init__(self, dim, num_classes, probe=False, init_std=2e-5):
        super().__init__()
        self.bn = nn.BatchNorm1d(dim, affine=False, eps=1e-6) if probe else nn.Identity()
        self.projection = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.projection.weight, std=init_std)
        nn.init.zeros_(self.projection.bias)

    def forward(self, x):
        return self.projection(self.bn(x))


class HieraClassifier(HieraEncoder):
    """MAE-Lite's fine-tuning Hiera (``hiera_tiny_224`` with ``q_pool=3``): mean of the last stage's tokens ->
    ``norm`` -> ``head.projection``. Its state dict is MAE-Lite's fine-tuned layout key for key."""

    def __init__(self, num_classes, probe=False, head_init_std=2e-5, **encoder_kwargs):
        super().__init__(**encoder_kwargs)
        self.norm = nn.LayerNorm(self.num_features, eps=1e-6)
        self.head = HieraHead(self.num_features, num_classes, probe, head_init_std)

    def pooled_features(self, images):
        return self.norm(self.forward_features(images).mean(dim=1))

    def forward(self, images):
        return self.head(self.pooled_features(images))

    def encoder_parameters(self):
        return [p for name, p in self.named_parameters() if not name.startswith(("norm.", "head."))]

    def encoder_eval(self):
        self.patch_embed.eval()
        self.blocks.eval()

    def adapt_state_dict(self, state):
        """A foreign checkpoint's names -> ours (``mimtrack.pretrain.checkpoints``): timm's ``head.norm`` / ``head.fc`` are
        MAE-Lite's ``norm`` / ``head.projection``."""
        return hiera_state_from_timm(state)

    def group_matcher(self, coarse=False):
        """Layer ids for layer-wise lr decay: stem 0, block i -> i + 1, norm and head after the last block (the
        ViT family's rule, MAE-Lite ``util/lr_decay.py``)."""
        return dict(stem=r"^(?:pos_embed|patch_embed)", blocks=r"^blocks\.(\d+)")

    def no_weight_decay(self):
        return {"pos_embed"}
