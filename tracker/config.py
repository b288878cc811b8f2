"""The tracker's settings as typed dataclasses; recipes live in ``experiments/tracking/*.yaml``.

Load with ``mimtrack.config.load_config(TrackerConfig, name_or_path, kind="tracking", overrides=[...])``
or simply :func:`load_tracker_config`.
"""

import dataclasses

from mimtrack.config import load_config
from mimtrack.pretrain.config import ViTFields


@dataclasses.dataclass
class BackboneConfig(ViTFields):
    """The ViT run one-stream over template and search tokens (``arch``: a ViT of pretrain.vit's registry)."""

    drop_path: float = 0.1
    pretrained_grid: int = 14       # side of the pretrained pos_embed table the z/x tables are interpolated from


@dataclasses.dataclass
class CandidateEliminationConfig:
    """Candidate elimination (OSTrack CE): drop low-scoring search tokens inside some blocks."""

    locations: list[int] = dataclasses.field(default_factory=lambda: [3, 6, 9])   # 0-based block indices; [] = no CE
    keep_ratio: list[float] = dataclasses.field(default_factory=lambda: [0.7, 0.7, 0.7])
    template_range: str = "CTR_POINT"   # which template tokens score the search tokens: CTR_POINT or ALL


@dataclasses.dataclass
class HeadConfig:
    type: str = "center"            # OSTrack's CENTER head (three 4-conv branches)
    channels: int = 256


@dataclasses.dataclass
class ModelConfig:
    backbone: BackboneConfig = dataclasses.field(default_factory=BackboneConfig)
    ce: CandidateEliminationConfig = dataclasses.field(default_factory=CandidateEliminationConfig)
    head: HeadConfig = dataclasses.field(default_factory=HeadConfig)


@dataclasses.dataclass
class CropConfig:
    """Square crops around the target: side = ceil(sqrt(w*h) * factor), resized to size x size."""

    template_size: int = 128
    template_factor: float = 2.0
    search_size: int = 256
    search_factor: float = 4.0


@dataclasses.dataclass
class InferenceConfig:
    hann_window: bool = True        # multiply the score map by a centred Hann window
    device: str = "cpu"
    # Test-time search factor (OSTrack's TEST.SEARCH_FACTOR, kept apart from the training crops' DATA.SEARCH.FACTOR);
    # None: crop.search_factor, as in every OSTrack recipe.
    search_factor: float | None = None
    # Fraction of the predicted size change taken each frame (SiamRPN++'s ``lr``, the size damping of the Siamese
    # trackers); 1.0 takes the network's size as is (OSTrack).
    size_update: float = 1.0


@dataclasses.dataclass
class TrainDataset:
    """One training source: a dataset family, its split and its sampling weight."""

    name: str                       # lasot, got10k, coco, trackingnet, custom, or their -lmdb forms
    split: str = ""                 # e.g. lasot 'train', got10k 'vottrain' / 'train_full', coco 'train2017'
    ratio: float = 1.0              # relative probability of drawing a sample from this source


@dataclasses.dataclass
class DataConfig:
    """Pair sampling and processing (OSTrack's ``cfg.DATA``, ``lib/config/ostrack/config.py``)."""

    train: list[TrainDataset] = dataclasses.field(default_factory=list)
    val: list[TrainDataset] = dataclasses.field(default_factory=list)
    samples_per_epoch: int = 60000
    val_samples: int = 10000
    max_gap: int = 200              # causal sampling: search frame within (template, template + max_gap]
    min_visible_frames: int = 20
    template_center_jitter: float = 0.0
    template_scale_jitter: float = 0.0
    search_center_jitter: float = 3.0
    search_scale_jitter: float = 0.25
    grayscale_prob: float = 0.05
    flip_prob: float = 0.5
    brightness_jitter: float = 0.2
    # Fraction of pairs whose search crop comes from another sequence, so the template's object is absent: the
    # heatmap label is all background and the box losses skip them (DaSiamRPN's negative pairs, Zhu et al. 2018).
    # Without them a tracker can score well by finding the salient object near the centre, template unused.
    negative_pairs: float = 0.0
    # Fraction of pairs with another sequence's object pasted into the search crop beside the target, about its size
    # (copy-paste distractors): two salient objects, and only the template says which one to follow.
    paste_distractors: float = 0.0
    num_workers: int = 8


@dataclasses.dataclass
class TrainConfig:
    """Losses and optimisation (OSTrack's ``cfg.TRAIN``, ``lib/config/ostrack/config.py``)."""

    epochs: int = 300
    batch_size: int = 32            # per process; OSTrack's global batch is 32 x 4 GPUs
    lr: float = 4e-4
    backbone_lr_mult: float = 0.1
    weight_decay: float = 1e-4
    lr_drop_epoch: int = 240        # StepLR x0.1 at this epoch (80% of 300)
    grad_clip: float = 0.1
    focal_weight: float = 1.0
    giou_weight: float = 2.0
    l1_weight: float = 5.0
    ce_start_epoch: int = 20        # keep rate 1.0 before, cosine down to the model's ratio over ce_warm_epoch
    ce_warm_epoch: int = 80
    amp: str = "none"               # none | bf16 | fp16 (CUDA only; fp16 with loss scaling), as in every recipe
    device: str = "cpu"             # cpu | cuda (under torchrun: cuda:LOCAL_RANK); --device sets it
    pretrained: str | None = None   # backbone initialisation: a MAE / MAE-Lite / DeiT / timm checkpoint
    init: str | None = None         # fine-tuning: a tracker checkpoint whose whole network (backbone + head) starts the run
    checkpoint_every: int = 20      # epochs
    val_every: int = 20             # epochs
    seed: int = 42
    max_nan_steps: int = 20         # consecutive NaN losses before training stops with a checkpoint
    tensorboard: bool = False


@dataclasses.dataclass
class TrackerConfig:
    name: str = ""
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    crop: CropConfig = dataclasses.field(default_factory=CropConfig)
    inference: InferenceConfig = dataclasses.field(default_factory=InferenceConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)


def load_tracker_config(name_or_path, overrides=None):
    """A shipped recipe name (``vit_tiny_256_ce``) or a YAML path -> :class:`TrackerConfig`."""
    cfg = load_config(TrackerConfig, name_or_path, kind="tracking", overrides=overrides)
    if not cfg.name:
        cfg.name = str(name_or_path)
    return cfg
