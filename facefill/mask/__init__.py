"""Face-region masks: keep brows-to-chin, cheek-to-cheek; blank the rest."""

from facefill.mask.region import apply_mask, apply_mask_tensor, face_mask, face_polygon, mask_folder

__all__ = ["apply_mask", "apply_mask_tensor", "face_mask", "face_polygon", "mask_folder"]
