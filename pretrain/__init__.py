"""Pre-training of lightweight ViTs (MAE-lite, distillation, MoCo-v3) and the ViT family the tracker builds on."""
