"""The tracker's settings as typed dataclasses; recipes live in ``experiments/tracking/*.yaml``.

Load with ``mimtrack.config.load_config(TrackerConfig, name_or_path, kind="tracking", overrides=[...])``
or simply :func:`load_tracker_config`.
"""

import dataclasses

from mimtrack.config import load_config


@dataclasses.dataclass
class BackboneConfig:
    """The ViT run one-stream over template and search tokens."""

    arch: str = "vit_tiny"          # a name in pretrain.vit's registry: vit_tiny, vit_small, vit_base
    embed_dim: int | None = None    # None: the registry's value (Tiny 192, Small 384, Base 768)
    depth: int | None = None        # None: the registry's value (12)
    num_heads: int | None = None    # None: the registry's value (12 for all three; MAE-Lite Tiny uses 12)
    patch_size: int = 16
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


@dataclasses.dataclass
class TrackerConfig:
    name: str = ""
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    crop: CropConfig = dataclasses.field(default_factory=CropConfig)
    inference: InferenceConfig = dataclasses.field(default_factory=InferenceConfig)


def load_tracker_config(name_or_path, overrides=None):
    """A shipped recipe name (``vit_tiny_256_ce``) or a YAML path -> :class:`TrackerConfig`."""
    cfg = load_config(TrackerConfig, name_or_path, kind="tracking", overrides=overrides)
    if not cfg.name:
        cfg.name = str(name_or_path)
    return cfg
