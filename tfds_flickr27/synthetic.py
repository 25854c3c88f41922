"""A small generated dataset in exactly the FlickrLogos-27 archive layout.

Used for the builder's ``dummy_data/`` (``make_dummy_data.py``), the tests, the demo and
the benchmarks when the real archive is absent; ``logo-batch make-synthetic`` writes one.

:func:`write_synthetic_archive` writes ``flickr_logos_27_dataset.tar.gz`` look-alikes: the
outer tar.gz holds ``flickr_logos_27_dataset/`` with the distractor URL list, the inner
``flickr_logos_27_dataset_images.tar.gz`` and both annotation files (CRLF, trailing
space, cumulative subsets). It reproduces the real archive's quirks: a zero-area box,
an image annotated with two classes (Pepsi and Cocacola), byte-identical images under
other names (one inside the training set, two crossing from the training set into the
query set) and ``none`` queries.

Each class's logo is a distinct shape + colour + letter drawn at random scale and
position on a noisy, textured background, so a tiny CNN learns it in seconds. The
archive is byte-identical for the same arguments (fixed tar and gzip mtimes).
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import math
import tarfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tfds_flickr27.annotations import CLASS_NAMES, NONE_LABEL
from tfds_flickr27.archive import IMAGES_ARCHIVE, QUERY_FILE, ROOT, TRAINING_FILE

IMAGES_DIR = IMAGES_ARCHIVE.removesuffix(".tar.gz")
DISTRACTOR_FILE = f"{ROOT}_distractor_set_urls.txt"
MTIME = 1_300_000_000  # fixed member mtime: same arguments, same bytes
NUM_SUBSETS = 3

_SHAPES = ("circle", "square", "triangle", "diamond", "star", "hexagon", "cross", "ring", "bar")
_COLOURS = (
    (220, 30, 30), (30, 160, 40), (30, 60, 220), (240, 200, 0), (200, 40, 200),
    (0, 190, 200), (250, 120, 0), (20, 20, 20), (245, 245, 245),
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Logo:
    """One drawn logo: class name and its box in pixels (x1, y1, x2, y2)."""

    label: str
    box: tuple[int, int, int, int]


@dataclasses.dataclass
class _Files:
    images: dict[str, bytes] = dataclasses.field(default_factory=dict)
    training_rows: list[tuple[str, str, int, tuple[int, int, int, int]]] = dataclasses.field(
        default_factory=list
    )  # (file, class, base subset, box)
    query_rows: list[tuple[str, str]] = dataclasses.field(default_factory=list)


def class_style(
    label: str, names: Sequence[str] = CLASS_NAMES
) -> tuple[str, tuple[int, int, int], str]:
    """Shape, RGB colour and letter that identify ``label``'s synthetic logo (``names``:
    the class list; its first 81 classes get distinct shape and colour pairs)."""
    index = list(names).index(label)
    shape = _SHAPES[index % 9]
    colour = _COLOURS[(index + 3 * (index // 9)) % 9]
    return shape, colour, label[0]


def _background(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A muted gradient with noise and a few grey strokes (clutter, never a logo)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(70, 170, size=3)
    slope = rng.uniform(-40, 40, size=(2, 3))
    pixels = base + xs[..., None] / width * slope[0] + ys[..., None] / height * slope[1]
    pixels += rng.normal(0, 14, size=pixels.shape)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 6))):
        grey = int(rng.integers(60, 190))
        points = [(int(rng.integers(0, width)), int(rng.integers(0, height))) for _ in range(2)]
        draw.line(points, fill=(grey, grey, grey), width=int(rng.integers(1, 4)))
    return image


def _polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    if shape == "triangle":
        angles, radii = [-90, 30, 150], [r] * 3
    elif shape == "diamond":
        angles, radii = [-90, 0, 90, 180], [r] * 4
    elif shape == "hexagon":
        angles, radii = list(range(0, 360, 60)), [r] * 6
    else:  # star
        angles, radii = list(range(-90, 270, 36)), [r, r * 0.45] * 5
    return [
        (cx + rad * math.cos(math.radians(a)), cy + rad * math.sin(math.radians(a)))
        for a, rad in zip(angles, radii, strict=True)
    ]


def _draw_logo(
    image: Image.Image, label: str, box: tuple[int, int, int, int], names: Sequence[str]
) -> None:
    """Draws ``label``'s shape filling ``box`` and its letter in the middle."""
    shape, colour, letter = class_style(label, names)
    draw = ImageDraw.Draw(image)
    x1, y1, x2, y2 = box
    cx, cy, r = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2
    edge = (0, 0, 0) if sum(colour) > 380 else (255, 255, 255)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "ring":
        draw.ellipse(box, fill=edge)
        draw.ellipse((x1, y1, x2, y2), outline=colour, width=max(2, int(r / 2.5)))
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    elif shape == "bar":
        draw.rectangle((x1, cy - r / 2, x2, cy + r / 2), fill=colour)
    elif shape == "cross":
        draw.rectangle((cx - r / 3, y1, cx + r / 3, y2), fill=colour)
        draw.rectangle((x1, cy - r / 3, x2, cy + r / 3), fill=colour)
    else:
        draw.polygon(_polygon(shape, cx, cy, r), fill=colour)
    font = ImageFont.load_default(size=max(6, int(r * 0.9)))
    draw.text((cx, cy), letter, fill=edge, font=font, anchor="mm")


def _place(
    rng: np.random.Generator, width: int, height: int, taken: list[tuple[int, int, int, int]]
) -> tuple[int, int, int, int]:
    """A random square box not overlapping ``taken`` (after a few tries, any box)."""
    side_max = max(12, int(min(width, height) * 0.6))
    side_min = max(10, int(min(width, height) * 0.25))
    box = (0, 0, side_min, side_min)
    for _ in range(30):
        side = int(rng.integers(side_min, side_max + 1))
        x1 = int(rng.integers(0, width - side + 1))
        y1 = int(rng.integers(0, height - side + 1))
        box = (x1, y1, x1 + side, y1 + side)
        if all(box[2] <= t[0] or t[2] <= box[0] or box[3] <= t[1] or t[3] <= box[1] for t in taken):
            return box
    return box


def render_photo(
    rng: np.random.Generator,
    image_size: int,
    labels: list[str],
    names: Sequence[str] = CLASS_NAMES,
) -> tuple[bytes, list[Logo]]:
    """A JPEG with one logo per entry of ``labels`` (may be empty) and their boxes
    (``names``: the class list the logos' styles come from)."""
    width = image_size
    height = int(image_size * rng.uniform(0.7, 1.0))
    if rng.random() < 0.5:
        width, height = height, width
    image = _background(rng, width, height)
    logos: list[Logo] = []
    for label in labels:
        box = _place(rng, width, height, [logo.box for logo in logos])
        _draw_logo(image, label, box, names)
        logos.append(Logo(label, box))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue(), logos


def _generate(
    images_per_class: int, query_per_class: int, none_queries: int, image_size: int, seed: int
) -> _Files:
    rng = np.random.default_rng(seed)
    files = _Files()
    used: set[str] = set()

    def new_name() -> str:
        while True:
            name = f"{int(rng.integers(10**8, 5 * 10**9))}.jpg"
            if name not in used:
                used.add(name)
                return name

    for label in CLASS_NAMES:
        for i in range(images_per_class):
            labels = [label] * int(rng.choice([1, 1, 2]))
            if label == "Pepsi" and i == 0:
                labels = ["Pepsi", "Cocacola"]  # the real two-class image
            data, logos = render_photo(rng, image_size, labels)
            name = new_name()
            files.images[name] = data
            subset = 1 + i % NUM_SUBSETS
            if label == "RedBull" and i == images_per_class - 1:
                # The real zero-area box is its image's only annotation.
                x1, y1 = logos[0].box[:2]
                files.training_rows.append((name, label, subset, (x1, y1, x1, y1)))
                continue
            for logo in logos:
                files.training_rows.append((name, logo.label, subset, logo.box))
        for _ in range(query_per_class):
            data, _ = render_photo(rng, image_size, [label])
            name = new_name()
            files.images[name] = data
            files.query_rows.append((name, label))
    for _ in range(none_queries):
        data, _ = render_photo(rng, image_size, [])
        name = new_name()
        files.images[name] = data
        files.query_rows.append((name, NONE_LABEL))
    _add_duplicates(files, new_name)
    return files


def _add_duplicates(files: _Files, new_name) -> None:
    """Byte-identical copies under new names: Adidas inside training, Fedex/Porsche to query."""
    for label, to_query in (("Adidas", False), ("Fedex", True), ("Porsche", True)):
        source = next(row[0] for row in files.training_rows if row[1] == label)
        name = new_name()
        files.images[name] = files.images[source]
        if to_query:
            files.query_rows.append((name, label))
        else:
            files.training_rows.extend(
                (name, lab, sub, box) for f, lab, sub, box in list(files.training_rows)
                if f == source
            )  # fmt: skip


def _training_text(rows: list[tuple[str, str, int, tuple[int, int, int, int]]]) -> bytes:
    """Per class, subset k lists every row of subsets <= k (cumulative), CRLF + trailing space."""
    lines = []
    for label in CLASS_NAMES:
        for subset in range(1, NUM_SUBSETS + 1):
            for name, lab, base, box in rows:
                if lab == label and base <= subset:
                    lines.append(f"{name} {lab} {subset} {' '.join(map(str, box))} \r\n")
    return "".join(lines).encode("ascii")


def _tar_gz(members: list[tuple[str, bytes | None]]) -> bytes:
    """A deterministic tar.gz of ``(name, data)``; ``data=None`` makes a directory."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.mtime = MTIME
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def write_synthetic_archive(
    path: str | Path,
    *,
    images_per_class: int = 8,
    query_per_class: int = 2,
    none_queries: int | None = None,
    image_size: int = 96,
    seed: int = 0,
) -> Path:
    """Writes a FlickrLogos-27-layout ``.tar.gz`` of generated images; returns its path.

    ``none_queries`` defaults to ``27 * query_per_class`` (half the query set, as in the
    real data). Raises ``ValueError`` for sizes too small to hold the quirks.
    """
    if images_per_class < 2 or query_per_class < 0 or image_size < 32:
        raise ValueError(
            "write_synthetic_archive: need images_per_class >= 2, query_per_class >= 0 and "
            f"image_size >= 32, got {images_per_class}, {query_per_class}, {image_size}"
        )
    none_queries = 27 * query_per_class if none_queries is None else none_queries
    files = _generate(images_per_class, query_per_class, none_queries, image_size, seed)
    images = [(f"{IMAGES_DIR}/", None)] + [
        (f"{IMAGES_DIR}/{name}", data) for name, data in sorted(files.images.items())
    ]
    query = "".join(f"{name}\t{label}\r\n" for name, label in files.query_rows)
    urls = "".join(
        f"http://farm{i % 5 + 1}.static.flickr.com/{1000 + i}/{10**9 + i}_synthetic.jpg\r\n"
        for i in range(5)
    )
    outer = _tar_gz(
        [
            (f"{ROOT}/", None),
            (f"{ROOT}/{DISTRACTOR_FILE}", urls.encode("ascii")),
            (f"{ROOT}/{IMAGES_ARCHIVE}", _tar_gz(images)),
            (f"{ROOT}/{QUERY_FILE}", query.encode("ascii")),
            (f"{ROOT}/{TRAINING_FILE}", _training_text(files.training_rows)),
        ]
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(outer)
    return path
