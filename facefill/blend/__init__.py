"""Laplacian-pyramid blending (Burt and Adelson 1983), batched: OpenCV pyramids for CPU tensors,
torch convolutions on CUDA and for autograd."""

from facefill.blend.laplacian import LaplacianBlend, collapse, laplacian_blend, laplacian_pyramid

__all__ = ["LaplacianBlend", "collapse", "laplacian_blend", "laplacian_pyramid"]
