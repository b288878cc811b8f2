"""The one-stream ViT tracker (OSTrack-style): model, inference, training."""
