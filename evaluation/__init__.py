"""Benchmark evaluation: dataset readers, metrics reproducing the official toolkits, reports.

numpy-only: nothing here imports torch.
"""
