"""Ways of filling the context around a kept face (``hallucinate --method``).

Each way is a :class:`~facefill.fill.base.ContextFiller` (:mod:`facefill.fill.base`) registered by
name in :mod:`facefill.fill.registry`: the generator (:mod:`facefill.fill.model`), donor faces
(:mod:`facefill.fill.donor`) and the classical baselines (:mod:`facefill.fill.classic`). The
``hallucinate`` pipeline reads, aligns, masks and writes; it asks the filler only to prepare
itself on a device, for its run-record settings, how many variants it writes, to fill a batch and
for its summary notes. docs/architecture.md shows how a new way plugs in.

Light on purpose: ``facefill --help`` imports the registry; the fillers import torch when made.
"""
