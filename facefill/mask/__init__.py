"""Face-region masks: keep brows-to-chin, cheek-to-cheek; blank the rest.

The folder driver is :func:`facefill.pipeline.mask.mask_folder`."""

from facefill.mask.region import face_mask, face_polygon, landmarks_for

__all__ = ["face_mask", "face_polygon", "landmarks_for"]
