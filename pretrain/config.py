"""Pre-training settings as typed dataclasses; recipes live in ``experiments/pretrain/*.yaml``.

Load with ``mimtrack.config.load_config(PretrainConfig, name_or_path, kind="pretrain", overrides=[...])``
or :func:`load_pretrain_config`. Layer numbers are 1-based, as in MAE-Lite (layer L = ``blocks[L-1]``).
"""

import dataclasses

from mimtrack.config import load_config
from mimtrack.errors import UserError
from mimtrack.pretrain.hiera import check_hiera_heads, check_hiera_image_size, is_hiera

METHODS = ("mae", "mocov3")


@dataclasses.dataclass
class ViTFields:
    """The backbone schema every command shares (``model`` of pre-training and transfer recipes,
    ``model.backbone`` of tracking recipes): the same keys with the same meaning everywhere."""

    arch: str = "vit_tiny"          # pretrain.vit registry name (vit_tiny, vit_small, vit_base) or pretrain.hiera's
                                    # (hiera_tiny: MAE-Lite's 6.5 M Hiera; hiera_base: the Hiera teacher)
    embed_dim: int | None = None    # None: the registry's value (Tiny 192, Small 384, Base 768)
    depth: int | None = None        # None: the registry's (12); ViT only (a Hiera's depth is its stages)
    num_heads: int | None = None    # None: the registry's (12 for MAE-Lite Tiny/Small; a 3-head Tiny is wrong)
    patch_size: int = 16            # ViT only (Hiera: a 7x7 stride-4 stem)


@dataclasses.dataclass
class ModelConfig(ViTFields):
    """The ViT being pre-trained (the future tracker backbone)."""

    img_size: int = 224


@dataclasses.dataclass
class MAEConfig:
    mask_ratio: float = 0.75
    decoder_dim: int = 96           # MAE-lite Tiny: 1 block, 96 wide, 3 heads (MAE ViT-B: 8 x 512, 16 heads)
    decoder_depth: int = 1
    decoder_heads: int = 3
    norm_pix_loss: bool = True      # per-patch normalised pixel targets
    decode_layer: int | None = None  # D2-MAE: reconstruct from this layer's output (8); None = last layer


@dataclasses.dataclass
class DistillConfig:
    """A frozen teacher seeing the student's visible tokens; MSE on last-layer attention logits."""

    enabled: bool = False
    teacher: str | None = None      # checkpoint path (MAE {'model': ...} or timm ViT); --teacher overrides
    teacher_arch: str = "vit_base"  # hiera_base for a Hiera student
    teacher_heads: int | None = None
    attn_weight: float = 1.0
    student_attn_layer: int | None = None   # None: the student's last block (D2: the extra 13th)
    teacher_attn_layer: int | None = None   # None: the teacher's last layer
    hidden_weight: float = 1.0
    student_hidden_layer: int | None = None  # hidden-feature distillation; None = off (MAE-Lite default)
    teacher_hidden_layer: int | None = None
    extra_attention_block: bool = False      # D2-MAE: a 13th attention-only block used for distillation


@dataclasses.dataclass
class MoCoConfig:
    dim: int = 256                  # projector / predictor output
    mlp_dim: int = 4096             # projector / predictor hidden width
    temperature: float = 0.2
    momentum: float = 0.99          # base value; cosine-increased to 1 over training


@dataclasses.dataclass
class DataConfig:
    scale: tuple[float, float] = (0.08, 1.0)        # RandomResizedCrop area range (MAE-lite 0.08, MAE 0.2)
    ratio: tuple[float, float] = (0.75, 4.0 / 3.0)
    interpolation: str = "random"   # bilinear | bicubic | random (timm's per-crop choice, MAE-Lite)
    hflip: float = 0.5
    num_workers: int = 8


@dataclasses.dataclass
class TrainConfig:
    epochs: int = 400
    warmup_epochs: int = 40
    batch_size: int = 256           # per process; lr scales with the total batch (all processes)
    blr: float = 1.5e-4             # base lr per 256 images
    lr: float | None = None         # absolute lr; None = blr * total_batch / 256
    min_lr: float = 0.0
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    amp: str = "none"               # none | bf16 | fp16 (CUDA only; fp16 with loss scaling), as in every recipe
    device: str = "cpu"             # cpu | cuda (under torchrun: cuda:LOCAL_RANK); --device sets it
    max_nan_steps: int = 20         # consecutive non-finite losses (skipped steps) before the run stops
    seed: int = 0
    checkpoint_every: int = 50      # also keep checkpoint_eNNNN.pth (weights) every this many epochs; 0 = never


@dataclasses.dataclass
class PretrainConfig:
    name: str = "pretrain"
    method: str = "mae"             # mae (with optional distillation / D2) | mocov3
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    mae: MAEConfig = dataclasses.field(default_factory=MAEConfig)
    distill: DistillConfig = dataclasses.field(default_factory=DistillConfig)
    mocov3: MoCoConfig = dataclasses.field(default_factory=MoCoConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)


def check_config(cfg):
    """Raise UserError for settings that cannot train (named by their key)."""
    if cfg.method not in METHODS:
        raise UserError(f"config method={cfg.method!r}: expected one of {', '.join(METHODS)}")
    if not 0.0 <= cfg.mae.mask_ratio < 1.0:
        raise UserError(f"config mae.mask_ratio={cfg.mae.mask_ratio}: must lie in [0, 1)")
    if cfg.mae.decoder_dim % cfg.mae.decoder_heads or cfg.mae.decoder_dim % 4:
        raise UserError(f"config mae.decoder_dim={cfg.mae.decoder_dim}: must be a multiple of 4 and of "
                        f"mae.decoder_heads={cfg.mae.decoder_heads}")
    if is_hiera(cfg.model.arch):
        _check_hiera(cfg)
    elif cfg.model.img_size % cfg.model.patch_size:
        raise UserError(f"config model.img_size={cfg.model.img_size}: not a multiple of patch {cfg.model.patch_size}")
    if cfg.distill.enabled and cfg.method != "mae":
        raise UserError("config distill.enabled: distillation is implemented for method 'mae' only")
    uses_d2 = cfg.mae.decode_layer is not None or cfg.distill.extra_attention_block
    if uses_d2 and not cfg.distill.enabled:
        raise UserError("config mae.decode_layer / distill.extra_attention_block (D2-MAE) need distill.enabled: "
                        "the layers above the decode layer would get no gradient")
    if cfg.data.interpolation not in ("bilinear", "bicubic", "random"):
        raise UserError(f"config data.interpolation={cfg.data.interpolation!r}: bilinear, bicubic or random")
    t = cfg.train
    if t.epochs <= 0 or t.batch_size <= 0:
        raise UserError(f"config train.epochs={t.epochs} / train.batch_size={t.batch_size}: must be positive")
    if not 0 <= t.warmup_epochs <= t.epochs:
        raise UserError(f"config train.warmup_epochs={t.warmup_epochs}: must lie in [0, train.epochs={t.epochs}]")
    if t.device.split(":")[0] not in ("cpu", "cuda"):
        raise UserError(f"config train.device={t.device!r}: expected cpu or cuda")
    return cfg


def _check_hiera(cfg):
    """Hiera MAE: sides a multiple of 32 px; none of the ViT-only options (D2, hidden distillation, MoCo)."""
    check_hiera_image_size(cfg.model.img_size)
    check_hiera_heads(cfg.model.arch, cfg.model.embed_dim, cfg.model.num_heads)
    d = cfg.distill
    if cfg.method != "mae":
        raise UserError(f"config method={cfg.method!r} with model.arch={cfg.model.arch}: Hiera trains with mae only")
    if cfg.mae.decode_layer is not None or d.extra_attention_block:
        raise UserError("config mae.decode_layer / distill.extra_attention_block: D2-MAE is implemented for the ViT "
                        f"family, not model.arch={cfg.model.arch}")
    if d.student_hidden_layer is not None or d.teacher_hidden_layer is not None:
        raise UserError("config distill.student_hidden_layer / teacher_hidden_layer: hidden-feature distillation is "
                        f"implemented for the ViT family, not model.arch={cfg.model.arch}")
    if d.enabled and not is_hiera(d.teacher_arch):
        raise UserError(f"config distill.teacher_arch={d.teacher_arch}: a Hiera student needs a Hiera teacher "
                        "(hiera_base) to match attention maps token for token")


def load_pretrain_config(name_or_path, overrides=None):
    """A shipped recipe name (``mae_tiny``) or a YAML path, with ``key=value`` overrides, checked."""
    return check_config(load_config(PretrainConfig, name_or_path, kind="pretrain", overrides=overrides))
