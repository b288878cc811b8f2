"""YAML recipes (data only): ``tracking/``, ``pretrain/``, ``transfer/``.

Shipped as package data so that recipe names resolve after ``pip install``.
"""
