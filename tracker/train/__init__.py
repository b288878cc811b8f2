"""Tracker training: OSTrack's losses, optimisation and loop (tracker.md section 3), resumable, DDP-ready."""
