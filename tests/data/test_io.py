import numpy as np
import pytest
from PIL import Image

from facefill.data.io import companion_path, list_images, read_image, read_mask, write_image
from facefill.errors import ImageError


def test_read_variants(tmp_path, data_dir):
    import cv2

    rgb = read_image(data_dir / "faces" / "obama.jpg")
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
    gray = cv2.cvtColor(rgb[:, :, ::-1], cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    g = read_image(tmp_path / "g.png")
    assert g.shape == rgb.shape and np.array_equal(g[..., 0], g[..., 1])
    cv2.imwrite(str(tmp_path / "w16.png"), (rgb[:, :, ::-1].astype(np.uint16) * 257))
    assert np.abs(read_image(tmp_path / "w16.png").astype(int) - rgb).max() <= 1
    rgba = read_image(data_dir / "faces" / "obama2_rgba.png")
    assert rgba.shape[2] == 3


def test_transparent_pixels_become_white(tmp_path):
    arr = np.zeros((4, 4, 4), np.uint8)
    arr[..., 0] = 200  # red, fully transparent
    Image.fromarray(arr, "RGBA").save(tmp_path / "t.png")
    assert (read_image(tmp_path / "t.png") == 255).all()


@pytest.mark.parametrize("name, kwargs", [("r.jpg", {"quality": 95}), ("r.png", {}), ("r.webp", {"lossless": True})])
def test_exif_orientation_is_applied(tmp_path, name, kwargs):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = 255  # white on the left half
    exif = Image.Exif()
    exif[0x0112] = 6  # stored image must be rotated 90 degrees clockwise to display
    Image.fromarray(arr).save(tmp_path / name, exif=exif, **kwargs)
    out = read_image(tmp_path / name)
    assert out.shape[:2] == (40, 20)
    assert out[:15].mean() > 200 and out[25:].mean() < 50  # left half ends up on top
    Image.fromarray(arr).save(tmp_path / ("plain" + name[1:]), **kwargs)  # no EXIF: as stored
    assert read_image(tmp_path / ("plain" + name[1:])).shape[:2] == (20, 40)


def test_corrupt_and_missing_files_name_the_file(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(ImageError, match="bad.jpg"):
        read_image(tmp_path / "bad.jpg")
    with pytest.raises(ImageError, match="nope.png"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError, match="empty.png"):
        read_image(tmp_path / "empty.png")


def test_list_and_mirror(tmp_path):
    for rel in ["a.jpg", "a.valid.png", "sub/b.PNG", "sub/b.mask.png", "sub/c.fg.png", ".hidden/d.png", "notes.txt",
                "e.webp"]:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    found = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    # a companion beside its image is not an input; one without its image is listed (a command fails it loudly)
    assert found == ["a.jpg", "e.webp", "sub/b.PNG", "sub/c.fg.png"]


def test_read_mask_thresholds_and_checks_shape(tmp_path):
    import numpy as np

    m = np.array([[0, 127, 128, 255]], np.uint8).repeat(3, 0)
    path = write_image(companion_path(tmp_path / "x.png", ".mask.png"), m)
    assert path == tmp_path / "x.mask.png"
    got = read_mask(path)
    assert got.dtype == np.float32 and got.tolist() == [[0.0, 0.0, 1.0, 1.0]] * 3
    assert read_mask(path, (3, 4)) is not None and read_mask(path, (4, 4)) is None
    assert read_mask(tmp_path / "missing.mask.png") is None
    (tmp_path / "bad.mask.png").write_bytes(b"not a png")
    assert read_mask(tmp_path / "bad.mask.png") is None


def test_write_is_readable(tmp_path):
    img = (np.random.rand(8, 8, 3) * 255).astype(np.uint8)
    write_image(tmp_path / "x" / "y.png", img)
    assert np.array_equal(read_image(tmp_path / "x" / "y.png"), img)


def test_a_truncated_png_is_one_facefill_error_and_no_opencv_log_line(tmp_path, capfd):
    import subprocess
    import sys

    good = write_image(tmp_path / "t.png", np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    (tmp_path / "cut.png").write_bytes(good.read_bytes()[:300])
    code = ("from facefill.data.io import read_image\n"
            "try:\n    read_image(%r)\nexcept Exception as e:\n    print(type(e).__name__)" % str(tmp_path / "cut.png"))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)  # OpenCV logs from C++
    assert r.stdout.strip() == "ImageError" and "WARN" not in r.stderr, r.stderr


def test_writes_go_through_links_and_into_special_files(tmp_path):
    """Issue 33 #5: the temp-file-and-rename write replaced a symlink (its target left as it
    was) and, run as root, turned /dev/null into a regular file. A link is written through; a
    FIFO or device is written into, never replaced."""
    import os
    import stat
    import threading

    from facefill.data.io import write_bytes
    from facefill.pipeline.outputs import write_failures

    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    write_bytes(link, b"new")
    assert link.is_symlink() and target.read_text() == "new"
    dangling = tmp_path / "dangling.png"
    dangling.symlink_to(tmp_path / "made.png")
    write_image(dangling, np.zeros((4, 4, 3), np.uint8))
    assert dangling.is_symlink() and read_image(tmp_path / "made.png").shape == (4, 4, 3)

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    write_bytes(fifo, b"through the pipe")
    reader.join(10)
    assert got == [b"through the pipe"] and stat.S_ISFIFO(os.stat(fifo).st_mode)
    # the run record's own writes (failures.tsv) go through a link too
    (tmp_path / "out").mkdir()
    (tmp_path / "elsewhere.tsv").write_text("")
    (tmp_path / "out" / "failures.tsv").symlink_to(tmp_path / "elsewhere.tsv")
    write_failures(tmp_path / "out", [(tmp_path / "x.png", "broken")])
    assert (tmp_path / "out" / "failures.tsv").is_symlink() and "broken" in (tmp_path / "elsewhere.tsv").read_text()
