"""mimtrack: lightweight one-stream ViT tracking with MIM-distilled backbones.

This small package holds the plumbing shared by the three working packages:
the ``mimtrack`` command-line dispatcher, the user-error type, atomic file
writes and the typed YAML config loader. The work itself lives in
``evaluation`` (numpy-only benchmarks and metrics), ``pretrain`` (ViT backbones
and their pre-training) and ``tracker`` (the tracker, its training and
inference).
"""

__version__ = "0.1.0"
