"""Laplacian-pyramid blending (Burt and Adelson 1983) on kornia."""

from facefill.blend.laplacian import LaplacianBlend, collapse, laplacian_blend, laplacian_pyramid

__all__ = ["LaplacianBlend", "collapse", "laplacian_blend", "laplacian_pyramid"]
