"""Representation analysis of ViTs: layer-wise linear probing, linear CKA, attention distance and entropy."""
