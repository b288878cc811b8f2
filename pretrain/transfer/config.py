"""Transfer recipes as typed dataclasses; recipes live in ``experiments/transfer/*.yaml``.

Classification (fine-tuning, linear probing) uses :class:`ClassifyConfig`, segmentation :class:`SegmentConfig`.
Load with :func:`load_classify_config` / :func:`load_segment_config` (``--set key=value`` overrides).
Batch sizes are per process: the total batch is ``batch_size x world size`` and the learning rate follows it.
"""

import dataclasses

from mimtrack.config import load_config
from mimtrack.errors import UserError
from mimtrack.images import IMAGENET_MEAN, IMAGENET_STD
from mimtrack.pretrain.config import ViTFields
from mimtrack.pretrain.hiera import check_hiera_heads, check_hiera_image_size, is_hiera



@dataclasses.dataclass
class ViTConfig(ViTFields):
    """The classifier / segmenter's backbone (Hiera: ``num_heads`` are stage 1's)."""

    img_size: int = 224
    drop_path: float = 0.0
    global_pool: str = "avg"        # avg: mean of patch tokens + fc_norm (MAE fine-tune); token: cls after norm
    rel_pos_bias: bool = False      # ViT: BEiT-style per-layer relative position bias (MAE-Lite's RPE fine-tuning)


@dataclasses.dataclass
class ClassifyData:
    batch_size: int = 128           # per process
    num_workers: int = 4
    crop_pct: float = 0.875         # eval: resize to img_size / crop_pct, centre crop img_size
    interpolation: str = "bicubic"
    auto_augment: str | None = None  # timm RandAugment spec, e.g. rand-m10-mstd0.5-inc1; None: RRC + flip only
    color_jitter: float | None = None
    reprob: float = 0.0             # random erasing probability
    mixup: float = 0.0              # mixup alpha (0: off)
    cutmix: float = 0.0             # cutmix alpha (0: off)
    smoothing: float = 0.0          # label smoothing
    mean: list[float] = dataclasses.field(default_factory=lambda: list(IMAGENET_MEAN))
    std: list[float] = dataclasses.field(default_factory=lambda: list(IMAGENET_STD))


@dataclasses.dataclass
class ClassifyOptim:
    name: str = "adamw"             # a timm create_optimizer_v2 name: adamw, sgd, lars, ...
    blr: float = 1e-3               # base lr: lr = blr * total batch / 256 (MAE convention)
    lr: float | None = None         # absolute lr; overrides blr when set
    weight_decay: float = 0.05      # not applied to 1-D params, biases, pos_embed, cls_token
    layer_decay: float | None = None  # layer-wise lr decay (0.85 for MAE-Lite Tiny); None: off
    momentum: float = 0.9           # sgd / lars
    betas: list[float] = dataclasses.field(default_factory=lambda: [0.9, 0.999])
    warmup_epochs: float = 5.0      # linear warmup from 0, per iteration
    min_lr: float = 1e-6            # cosine floor
    clip_grad: float | None = None


@dataclasses.dataclass
class ClassifyTrain:
    epochs: int = 100
    ema_decay: float | None = None  # timm ModelEmaV3 decay; None: no EMA
    seed: int = 0
    device: str = "cpu"
    amp: str = "none"               # none | bf16 | fp16 (CUDA only; fp16 with loss scaling), as in every recipe
    max_nan_steps: int = 20         # consecutive non-finite losses (skipped steps) before the run stops
    eval_every: int = 1             # epochs
    head_init_std: float = 2e-5     # MAE: 2e-5 for fine-tuning, 0.01 for the linear probe


@dataclasses.dataclass
class ClassifyConfig:
    name: str = ""
    model: ViTConfig = dataclasses.field(default_factory=ViTConfig)
    data: ClassifyData = dataclasses.field(default_factory=ClassifyData)
    optim: ClassifyOptim = dataclasses.field(default_factory=ClassifyOptim)
    train: ClassifyTrain = dataclasses.field(default_factory=ClassifyTrain)
    pretrained: str | None = None   # a pre-trained ViT checkpoint (any format pretrain.checkpoints reads)


@dataclasses.dataclass
class SegModel:
    arch: str = "vit_tiny"
    embed_dim: int | None = None
    depth: int | None = None
    num_heads: int | None = None
    patch_size: int = 16
    drop_path: float = 0.1
    out_indices: list[int] = dataclasses.field(default_factory=lambda: [3, 5, 7, 11])  # blocks 4/6/8/12
    rel_pos_bias: bool = False      # ViT: start from an RPE fine-tuned backbone (tables resized to the crop's grid)
    fpn_channels: int = 256
    head_channels: int = 128
    num_classes: int = 150
    dropout: float = 0.1


@dataclasses.dataclass
class SegData:
    crop_size: int = 512
    scale: list[int] = dataclasses.field(default_factory=lambda: [2048, 512])  # (long, short) resize bound
    ratio_range: list[float] = dataclasses.field(default_factory=lambda: [0.5, 2.0])
    reduce_zero_label: bool = True  # ADE20K: 0 = other/ignore, classes 1..150 -> 0..149
    batch_size: int = 8             # per process (MAE-Lite: 2 x 8 GPUs = 16)
    num_workers: int = 4
    mean: list[float] = dataclasses.field(default_factory=lambda: list(IMAGENET_MEAN))
    std: list[float] = dataclasses.field(default_factory=lambda: list(IMAGENET_STD))


@dataclasses.dataclass
class SegOptim:
    lr: float = 1e-4
    weight_decay: float = 0.05
    layer_decay: float | None = 0.8
    betas: list[float] = dataclasses.field(default_factory=lambda: [0.9, 0.999])
    warmup_iters: int = 1500
    warmup_ratio: float = 1e-6      # warmup starts at lr * warmup_ratio
    poly_power: float = 1.0
    min_lr: float = 0.0


@dataclasses.dataclass
class SegTrain:
    iters: int = 160000
    eval_every: int = 16000
    checkpoint_every: int = 4000
    slide_stride: int = 341         # slide inference: crop_size windows at this stride
    seed: int = 0
    device: str = "cpu"
    amp: str = "none"               # none | bf16 | fp16, as above
    max_nan_steps: int = 20


@dataclasses.dataclass
class SegmentConfig:
    name: str = ""
    model: SegModel = dataclasses.field(default_factory=SegModel)
    data: SegData = dataclasses.field(default_factory=SegData)
    optim: SegOptim = dataclasses.field(default_factory=SegOptim)
    train: SegTrain = dataclasses.field(default_factory=SegTrain)
    pretrained: str | None = None


def _positive(where, value):
    if value <= 0:
        raise UserError(f"config {where}={value}: must be > 0")


def load_classify_config(name_or_path, overrides=None):
    cfg = load_config(ClassifyConfig, name_or_path, kind="transfer", overrides=overrides)
    if cfg.model.global_pool not in ("avg", "token"):
        raise UserError(f"config model.global_pool={cfg.model.global_pool!r}: expected avg or token")
    if is_hiera(cfg.model.arch):
        check_hiera_image_size(cfg.model.img_size)
        check_hiera_heads(cfg.model.arch, cfg.model.embed_dim, cfg.model.num_heads)
        if cfg.model.rel_pos_bias or cfg.model.global_pool != "avg":
            raise UserError(f"config model.arch={cfg.model.arch}: Hiera has no rel_pos_bias / token pooling "
                            "(it mean-pools its last stage)")
    _positive("data.batch_size", cfg.data.batch_size)
    _positive("train.epochs", cfg.train.epochs)
    _positive("train.eval_every", cfg.train.eval_every)
    if (cfg.data.mixup > 0 or cfg.data.cutmix > 0) and cfg.data.batch_size % 2:
        raise UserError(f"config data.batch_size={cfg.data.batch_size}: mixup/cutmix need an even batch")
    return cfg


def load_segment_config(name_or_path, overrides=None):
    cfg = load_config(SegmentConfig, name_or_path, kind="transfer", overrides=overrides)
    _positive("data.batch_size", cfg.data.batch_size)
    _positive("train.iters", cfg.train.iters)
    _positive("data.crop_size", cfg.data.crop_size)
    if cfg.data.crop_size % cfg.model.patch_size:
        raise UserError(f"config data.crop_size={cfg.data.crop_size}: not a multiple of the patch size "
                        f"{cfg.model.patch_size}")
    if len(cfg.model.out_indices) != 4:
        raise UserError(f"config model.out_indices={cfg.model.out_indices}: expected 4 block indices")
    return cfg
