import cv2
import numpy as np
import torch

from facefill.align.warp import similarity_from_eyes, transform_points, warp_images


def test_similarity_sends_eyes_to_targets():
    eyes = torch.tensor([[[100.0, 120.0], [160.0, 110.0]], [[30.0, 40.0], [50.0, 40.0]]])
    m = similarity_from_eyes(eyes, 128, (0.4, 0.45), (0.6, 0.45))
    for i in range(2):
        out = transform_points(eyes[i].numpy(), m[i].numpy())
        np.testing.assert_allclose(out, [[51.2, 57.6], [76.8, 57.6]], atol=1e-9)
    # a similarity: equal scale on both axes, no shear
    a = m[0, :, :2]
    torch.testing.assert_close(a[0, 0], a[1, 1])
    torch.testing.assert_close(a[0, 1], -a[1, 0])


def test_kornia_warp_matches_cv2(data_dir):
    img = cv2.imread(str(data_dir / "faces" / "astronaut.jpg"))[:, :, ::-1].copy()
    eyes = torch.tensor([[[170.0, 125.0], [215.0, 121.0]]])
    m = similarity_from_eyes(eyes, 128, (0.35, 0.42), (0.65, 0.42))  # ~0.85x: no pre-shrink
    ours = warp_images(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255, m, 128, antialias=False)
    ours = ours[0].permute(1, 2, 0).numpy()
    ref = cv2.warpAffine(img, m[0].numpy(), (128, 128), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0).astype(np.float32) / 255
    assert np.abs(ours - ref).mean() < 1 / 255


def test_antialias_keeps_geometry():
    """A bright dot at a known source point lands at the mapped point after a 4x shrink."""
    img = torch.zeros(1, 1, 512, 512)
    img[..., 300:304, 200:204] = 1.0  # centre (201.5, 301.5)
    m = torch.tensor([[[0.25, 0.0, 10.0], [0.0, 0.25, 5.0]]], dtype=torch.float64)
    out = warp_images(img, m, 128)[0, 0]
    ys, xs = torch.nonzero(out > 0.05, as_tuple=True)
    w = out[ys, xs]
    cx, cy = (xs * w).sum() / w.sum(), (ys * w).sum() / w.sum()
    assert abs(cx - (0.25 * 201.5 + 10)) < 0.3 and abs(cy - (0.25 * 301.5 + 5)) < 0.3
