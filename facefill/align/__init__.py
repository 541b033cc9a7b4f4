"""Alignment: detect faces and 68 landmarks, warp eye centres to fixed positions.

The folder driver is :func:`facefill.pipeline.align.align_folder`."""

from facefill.align.core import AlignedFace, align_image
from facefill.align.landmarks import Face, eye_centres, get_backend

__all__ = ["AlignedFace", "Face", "align_image", "eye_centres", "get_backend"]
