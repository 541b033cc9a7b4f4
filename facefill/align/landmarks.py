"""Face detection + landmark backends behind one interface.

Every backend returns :class:`Face` records with 68 landmarks in the iBUG-300W layout (jaw 0-16,
brows 17-26, nose 27-35, right-of-image... eyes 36-41 and 42-47, mouth 48-67), in pixel
coordinates of the image it was given, so alignment and masking do not care which one ran.

- ``dlib`` (default, the paper's choice): HOG detector (or the CNN "mmod" detector) and the
  68-point shape predictor, both read from the ``face_recognition_models`` package; works
  offline. The 68-point model's training data (iBUG 300-W) is commonly read as licensed for
  non-commercial use only.
- ``fan``: the ``face-alignment`` package (2D-FAN + S3FD). Its weights are not in any package;
  they must already be in torch hub's cache (``$TORCH_HOME/hub/checkpoints``), or this raises
  WeightsNotFoundError saying what to download where. Nothing is downloaded.
- ``mediapipe``: MediaPipe Face Mesh (478 points, from the ``mediapipe`` 0.10.21 wheel, which
  ships its models); mapped to the 68-point layout by :data:`MEDIAPIPE_TO_68`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from facefill.errors import CheckpointError, FacefillError, WeightsNotFoundError

LEFT_EYE = slice(36, 42)  # the eye on the left of the image (the subject's right eye)
RIGHT_EYE = slice(42, 48)


@dataclass(frozen=True)
class Face:
    """One detected face. ``landmarks``: (68, 2) float (x, y) pixels; ``box``: (x0, y0, x1, y1)."""

    landmarks: np.ndarray
    box: tuple[float, float, float, float]
    score: float

    @property
    def area(self) -> float:
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])


def eye_centres(landmarks: np.ndarray) -> np.ndarray:
    """(68, 2) landmarks -> (2, 2): mean of each eye's six points, image-left eye first."""
    return np.stack([landmarks[LEFT_EYE].mean(0), landmarks[RIGHT_EYE].mean(0)])


class LandmarkBackend(Protocol):
    name: str

    def detect(self, image: np.ndarray) -> list[Face]:
        """``(H, W, 3) uint8 RGB`` -> faces, best first (no particular order otherwise)."""
        ...


# ----------------------------------------------------------------------------------------- dlib


def dlib_model_path(name: str) -> Path:
    """Path of one of dlib's model files, by its key in :data:`facefill.weights.WEIGHTS`
    (``dlib-landmarks``, ``dlib-landmarks5``, ``dlib-cnn``, ``dlib-resnet``) or its file name,
    found by :func:`facefill.weights.find` (so ``$FACEFILL_<KEY>`` is honoured)."""
    from facefill.weights import WEIGHTS, find, key_of

    return find(name if name in WEIGHTS else key_of(name))


def _not_the_model(key: str, why: str) -> CheckpointError:
    from facefill.weights import WEIGHTS, find

    w = WEIGHTS[key]
    fix = f"point ${w.env} at that file or unset it" if os.environ.get(w.env) else w.how
    return CheckpointError(f"{find(key)} cannot be used as {w.file}, the {w.what.split(' (')[0]} ({why}); {fix}")


def _dlib_model(loader: Callable, key: str):
    """``loader(path)`` for dlib's model file ``key``; a file of another kind (garbage, or another
    of dlib's .dat files) is a one-line CheckpointError naming it, not dlib's RuntimeError."""
    try:
        return loader(str(dlib_model_path(key)))
    except RuntimeError as exc:  # dlib: "Error deserializing object of type long ..."
        raise _not_the_model(key, str(exc).strip().splitlines()[0][:120] or "unreadable") from None


def _import_dlib():
    try:
        import dlib
    except ImportError:
        raise FacefillError("dlib is not installed; pip install dlib-bin (prebuilt) or dlib") from None
    return dlib


class DlibBackend:
    """dlib HOG (``detector="hog"``, default) or CNN (``"cnn"``) detector + 68-point predictor.

    ``upsample``: times the image is upsampled before detection (1 finds faces down to about
    40 px; each step costs ~4x time).
    """

    name = "dlib"

    def __init__(self, detector: str = "hog", upsample: int = 1) -> None:
        dlib = _import_dlib()
        self._dlib = dlib
        self.detector_kind = detector
        self.upsample = upsample
        self.settings = {"detector": detector, "upsample": upsample}  # they change the crops: in the run record
        if detector == "hog":
            self._detector = dlib.get_frontal_face_detector()
        elif detector == "cnn":
            self._detector = _dlib_model(dlib.cnn_face_detection_model_v1, "dlib-cnn")
        else:
            raise FacefillError(f"unknown dlib detector {detector!r}; use hog or cnn")
        self._predictor = _dlib_model(dlib.shape_predictor, "dlib-landmarks")
        parts = self._predictor(np.zeros((8, 8, 3), np.uint8), dlib.rectangle(0, 0, 7, 7)).num_parts
        if parts != 68:  # the 5-point predictor loads too, and would align on 5 points
            raise _not_the_model("dlib-landmarks", f"a {parts}-point predictor")

    def detect(self, image: np.ndarray) -> list[Face]:
        image = np.ascontiguousarray(image)  # dlib misreads strided views (found no face at random)
        if self.detector_kind == "hog":
            rects, scores, _ = self._detector.run(image, self.upsample, 0.0)
        else:
            dets = self._detector(image, self.upsample)
            rects, scores = [d.rect for d in dets], [d.confidence for d in dets]
        faces = []
        for rect, score in zip(rects, scores):
            shape = self._predictor(image, rect)
            pts = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
            faces.append(Face(pts, (rect.left(), rect.top(), rect.right(), rect.bottom()), float(score)))
        return sorted(faces, key=lambda f: -f.score)




# ------------------------------------------------------------------------------------------ FAN

FAN_WEIGHTS = ("fan", "s3fd")  # keys in facefill.weights.WEIGHTS; face-alignment reads them from torch hub's cache


def missing_fan_weights() -> list[str]:
    """The FAN weight files that are not in torch hub's cache, each with where to get it."""
    from facefill.weights import locate

    return [detail for key in FAN_WEIGHTS for path, detail in [locate(key)] if path is None]


class FanBackend:
    """face-alignment's 2D-FAN with its S3FD detector, from torch hub's cache only."""

    name = "fan"

    def __init__(self, device: str = "cpu") -> None:
        missing = missing_fan_weights()
        if missing:
            raise WeightsNotFoundError(
                "FAN weights not found (face-alignment reads them from torch hub's cache only): "
                + "; ".join(missing) + ". Download them on a machine with internet and copy them there "
                "(or set TORCH_HOME to a folder holding hub/checkpoints/ with them)"
            )
        from facefill.weights import vet_third_party

        for key in FAN_WEIGHTS:  # face-alignment loads S3FD with torch.load(weights_only=False)
            vet_third_party(key)
        try:
            import face_alignment
        except ImportError:
            raise FacefillError("the fan backend needs face-alignment: pip install face-alignment") from None
        self._fa = face_alignment.FaceAlignment(
            face_alignment.LandmarksType.TWO_D, device=device, face_detector="sfd", flip_input=False,
            compile=False,  # its default torch.compile costs minutes on first use
        )

    def detect(self, image: np.ndarray) -> list[Face]:
        result = self._fa.get_landmarks_from_image(image, return_bboxes=True)
        landmarks, _, boxes = result if isinstance(result, tuple) else (result, None, None)
        if not landmarks:
            return []
        faces = []
        for pts, box in zip(landmarks, boxes):
            faces.append(Face(np.asarray(pts, dtype=np.float64)[:, :2], tuple(map(float, box[:4])), float(box[4])))
        return sorted(faces, key=lambda f: -f.score)




# ------------------------------------------------------------------------------------ MediaPipe

#: MediaPipe Face Mesh indices closest to each iBUG-68 point (jaw, brows, nose, eyes, mouth).
MEDIAPIPE_TO_68 = [
    127, 234, 93, 132, 58, 172, 136, 150, 152, 379, 365, 397, 288, 361, 323, 454, 356,  # jaw
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,  # brows
    168, 197, 5, 4, 75, 97, 2, 326, 305,  # nose
    33, 160, 158, 133, 153, 144,  # image-left eye
    362, 385, 387, 263, 373, 380,  # image-right eye
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,  # outer lips
    78, 82, 13, 312, 308, 317, 14, 87,  # inner lips
]


class MediapipeBackend:
    """MediaPipe Face Mesh (legacy ``mp.solutions``, models inside the 0.10.21 wheel)."""

    name = "mediapipe"

    def __init__(self, max_faces: int = 8) -> None:
        try:
            import mediapipe as mp

            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=max_faces, refine_landmarks=False
            )
        except (ImportError, AttributeError):
            raise FacefillError(
                "the mediapipe backend needs mediapipe 0.10.21 (later releases ship no models): "
                "pip install mediapipe==0.10.21"
            ) from None

    def detect(self, image: np.ndarray) -> list[Face]:
        h, w = image.shape[:2]
        result = self._mesh.process(image)
        faces = []
        for lm in result.multi_face_landmarks or []:
            pts = np.array([[p.x * w, p.y * h] for p in lm.landmark], dtype=np.float64)
            sel = pts[MEDIAPIPE_TO_68]
            x0, y0 = pts.min(0)
            x1, y1 = pts.max(0)
            faces.append(Face(sel, (x0, y0, x1, y1), 1.0))
        return faces




BACKENDS = {"dlib": DlibBackend, "fan": FanBackend, "mediapipe": MediapipeBackend}


def get_backend(name: str, **kwargs) -> LandmarkBackend:
    """Build a backend by name (``dlib``, ``fan``, ``mediapipe``)."""
    try:
        cls = BACKENDS[name]
    except KeyError:
        raise FacefillError(f"unknown landmark backend {name!r}; choose one of {', '.join(BACKENDS)}") from None
    return cls(**kwargs)


class _Serialized:
    """A backend whose ``detect`` runs in one thread at a time: dlib's detector, called from two
    threads at once, returned garbage faces (a score of 2e37, a box off the photo)."""

    def __init__(self, backend: LandmarkBackend) -> None:
        import threading

        self.backend = backend
        self.name = backend.name
        self.settings = getattr(backend, "settings", {})
        self._lock = threading.Lock()

    def detect(self, image: np.ndarray) -> list[Face]:
        with self._lock:
            return self.backend.detect(image)


def lazy_backend(name: str, **kwargs) -> Callable[[], LandmarkBackend]:
    """A function returning the backend ``name``, built on its first call only (loading a
    backend's models is slow, and folders with sidecars never need one). Thread-safe: loader
    threads share one backend, built once, whose ``detect`` calls take turns."""
    import threading

    built: list[LandmarkBackend] = []
    lock = threading.Lock()

    def get() -> LandmarkBackend:
        with lock:
            if not built:
                built.append(_Serialized(get_backend(name, **kwargs)))
            return built[0]

    return get
