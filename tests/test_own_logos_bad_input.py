"""Bad files and rows in a logo folder: each is skipped and named (file or boxes.csv
line) with its reason, or the build stops with an error naming it."""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from logo_batch.cli import main
from tfds_logo_folder.layout import FolderError, read_folder
from tfds_logo_folder.plan import FolderIndex, plan
from tfds_logo_folder.scan import scan_files
from tfds_logo_folder.synthetic import write_synthetic_folder

BRANDS = ("Acme", "Bolt")
FRACTIONS = (0.7, 0.15, 0.15)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """4 crops and 6 photos (64 px, 2 of them with two logos) per brand, 2 none/ photos."""
    folder = tmp_path_factory.mktemp("bad_input") / "base"
    return write_synthetic_folder(
        folder, BRANDS, crops_per_brand=4, photos_per_brand=6, none_photos=2, image_size=64
    )


def add_row(folder: Path, row: str) -> str:
    """Appends a row to boxes.csv; returns its ``boxes.csv:<line>``."""
    path = folder / "boxes.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, row]) + "\n")
    return f"boxes.csv:{len(lines) + 1}"


def put(folder: Path, name: str, data: bytes) -> str:
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return name


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), (200, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg(size=(40, 30), exif_orientation: int | None = None) -> bytes:
    buffer = io.BytesIO()
    exif = Image.Exif()
    if exif_orientation:
        exif[0x0112] = exif_orientation
    Image.new("RGB", size, (0, 0, 200)).save(buffer, format="JPEG", exif=exif)
    return buffer.getvalue()


def photo(folder: Path) -> bytes:
    return (folder / "photos/00_000.jpg").read_bytes()


# Each case changes the base folder and returns (report field, key, text in the reason).
CASES: dict[str, Callable[[Path], tuple[str, str, str]]] = {
    "not a JPEG": lambda f: (
        "skipped_files",
        put(f, "crops/Acme/x.jpg", png()),
        "not a JPEG but PNG",
    ),
    "not an image": lambda f: ("skipped_files", put(f, "none/notes.jpg", b"hello"), "not a JPEG"),
    "truncated JPEG": lambda f: (
        "skipped_files",
        put(f, "crops/Bolt/cut.jpg", photo(f)[: len(photo(f)) // 2]),
        "decode",
    ),
    "its photo is skipped": lambda f: (
        "skipped_rows",
        put(f, "photos/broken.jpg", b"\xff\xd8broken") and add_row(f, "broken.jpg,Acme,1,1,9,9"),
        "its photo photos/broken.jpg is skipped",
    ),
    "box outside the photo": lambda f: (
        "rejected_boxes",
        add_row(f, "00_000.jpg,Acme,500,10,600,40"),
        "no pixel inside the",
    ),
    "box overhanging the photo": lambda f: (
        "clipped_boxes",
        add_row(f, "00_001.jpg,Acme,10,10,900,40"),
        "clipped to the",
    ),
    "zero-area box": lambda f: ("zero_area_boxes", add_row(f, "00_002.jpg,Acme,5,5,5,20"), "Acme"),
    "unknown file": lambda f: (
        "skipped_rows",
        add_row(f, "missing.jpg,Acme,1,1,9,9"),
        "unknown file: photos/missing.jpg is not in photos/",
    ),
    "too few fields": lambda f: (
        "skipped_rows",
        add_row(f, "00_000.jpg,Acme,1,1,9"),
        "expected 6 fields, found 5",
    ),
    "not a number": lambda f: (
        "skipped_rows",
        add_row(f, "00_000.jpg,Acme,1,one,9,9"),
        "must be numbers",
    ),
    "inverted box": lambda f: (
        "skipped_rows",
        add_row(f, "00_000.jpg,Acme,9,1,1,9"),
        "box is not x1 <= x2",
    ),
    "empty brand": lambda f: ("skipped_rows", add_row(f, "00_000.jpg, ,1,1,9,9"), "empty brand"),
    "brand none": lambda f: (
        "skipped_rows",
        add_row(f, "00_000.jpg,None,1,1,9,9"),
        "no-logo label",
    ),
    "repeated row": lambda f: (
        "skipped_rows",
        add_row(f, (f / "boxes.csv").read_text().splitlines()[1]),
        "repeats the box of boxes.csv:2",
    ),
    "photo without a row": lambda f: (
        "skipped_files",
        put(f, "photos/unboxed.jpg", jpeg()),
        "no box in boxes.csv",
    ),
    "crop outside a brand folder": lambda f: (
        "skipped_files",
        put(f, "crops/loose.jpg", jpeg()),
        "not in a brand folder",
    ),
    "stray entry": lambda f: ("skipped_files", put(f, "README.txt", b"hi"), "ignored"),
    "none/ copy of a logo photo": lambda f: (
        "skipped_files",
        put(f, "none/copy.jpg", photo(f)),
        "byte-identical to photos/00_000.jpg",
    ),
    "brand spelled in another case": lambda f: (
        "spellings",
        add_row(f, "01_000.jpg,BOLT,1,1,20,20"),
        "'BOLT' is brand 'Bolt' (as in crops/Bolt/000.jpg)",
    ),
    "rotated by EXIF": lambda f: (
        "rotated",
        put(f, "none/turned.jpg", jpeg(exif_orientation=6)),
        "none/turned.jpg",
    ),
}


def _index(folder: Path, fractions=FRACTIONS) -> FolderIndex:
    listing = read_folder(folder)
    return plan(listing, scan_files(folder, listing.files), fractions)


REPORTED = (
    "skipped_files", "skipped_rows", "rejected_boxes", "clipped_boxes", "zero_area_boxes",
    "spellings",
)  # fmt: skip
# What a case reports besides its own entry.
ALSO = {"its photo is skipped": {"photos/broken.jpg"}}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_file_or_row_is_skipped_and_named(base, tmp_path, case):
    folder = shutil.copytree(base, tmp_path / "logos")
    field, key, reason = CASES[case](folder)
    report = _index(folder).report
    if field == "rotated":
        assert report.rotated == [key]
    else:
        assert reason in getattr(report, field)[key]
    everything = {k for name in REPORTED for k in getattr(report, name)}
    assert everything - {key} == ALSO.get(case, set())  # the base folder is clean


def remove(folder: Path, *names: str) -> None:
    for name in names:
        path = folder / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()


ERRORS: dict[str, tuple[Callable[[Path], object], str]] = {
    "no header": (
        lambda f: (f / "boxes.csv").write_text("00_000.jpg,Acme,1,1,9,9\n"),
        "line 1 must be the header filename,brand,x1,y1,x2,y2",
    ),
    "not UTF-8": (
        lambda f: (f / "boxes.csv").write_bytes(b"filename,brand\n\xff\xfe\n"),
        "not UTF-8",
    ),
    "photos without boxes.csv": (lambda f: remove(f, "boxes.csv"), "there is no boxes.csv"),
    "nothing to learn": (lambda f: remove(f, "crops", "photos", "boxes.csv"), "no logos to learn"),
    "a brand with no training example": (  # with --split 0.5,0.25,0.25: Bolt's 2 crops
        lambda f: remove(f, "photos", "boxes.csv", "crops/Bolt/002.jpg", "crops/Bolt/003.jpg"),
        "no training example of 'Bolt'",
    ),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_a_folder_that_cannot_be_built_is_an_error_naming_it(base, tmp_path, case):
    folder = shutil.copytree(base, tmp_path / "logos")
    change, message = ERRORS[case]
    change(folder)
    fractions = (0.5, 0.25, 0.25) if "training" in case else FRACTIONS
    with pytest.raises(FolderError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _index(folder, fractions)


def test_a_brand_too_small_for_every_split_is_reported(base, tmp_path):
    folder = shutil.copytree(base, tmp_path / "logos")
    put(folder, "crops/Tiny/only.jpg", jpeg())
    report = _index(folder).report
    assert report.missing["crops"]["Tiny"] == ["validation", "test"]
    assert report.missing["images"]["Tiny"] == ["train", "validation", "test"]


def test_an_exif_rotated_photo_is_stored_as_shown_with_its_box(base, tmp_path, capsys):
    import tensorflow_datasets as tfds

    folder = shutil.copytree(base, tmp_path / "logos")
    # stored 40 wide, 30 high; orientation 6 shows it turned: 30 wide, 40 high
    put(folder, "photos/turned.jpg", jpeg((40, 30), exif_orientation=6))
    where = add_row(folder, "turned.jpg,Acme,0,0,30,40")
    data_dir = tmp_path / "d"
    code = main(["dataset", "build", str(folder), "--name", "turned", "--data-dir", str(data_dir)])
    out = capsys.readouterr().out
    assert code == 0 and "photos/turned.jpg" in out
    builder = tfds.builder("turned/images", data_dir=str(data_dir))
    for split in builder.info.splits:
        for example in tfds.as_numpy(builder.as_dataset(split=split)):
            if example["filename"] == b"photos/turned.jpg":
                assert example["image"].shape == (40, 30, 3)
                assert example["objects"]["bbox"].tolist() == [[0.0, 0.0, 1.0, 1.0]]
                return
    pytest.fail(f"photos/turned.jpg ({where}) not in turned/images")


def test_dataset_build_prints_every_skipped_file_and_line(base, tmp_path, capsys):
    folder = shutil.copytree(base, tmp_path / "logos")
    bad = put(folder, "crops/Acme/x.jpg", png())
    line = add_row(folder, "missing.jpg,Acme,1,1,9,9")
    for x2 in (900, 800):  # two boxes clipped to one: one crop
        add_row(folder, f"00_003.jpg,Acme,10,10,{x2},40")
    args = ["dataset", "build", str(folder), "--name", "bad", "--data-dir", str(tmp_path / "d")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "boxes clipped to their photo: 2" in out
    assert f"files skipped: 1\n  {bad}: not a JPEG but PNG" in out
    assert f"rows of boxes.csv skipped: 1\n  {line}: unknown file: photos/missing.jpg" in out
    assert main([*args[:2], str(tmp_path / "nowhere"), *args[3:]]) == 1
    assert "nowhere: not a folder" in capsys.readouterr().err
