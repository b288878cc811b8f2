"""Tracker training: OSTrack's losses, optimisation and loop (OSTrack's ``lib/train/``), resumable, DDP-ready."""
