"""README.md is a guide that works: every command in its ```bash blocks runs as written,
in order, in one temporary folder, and every relative link of README.md and docs/*.md
points to a file (and a heading) that exists.

The README's commands use one set of names, which the workspace provides: ``downloads/``
holds a small generated FlickrLogos-27 archive, ``photos/`` a few images, ``my_logos/``
a folder of one's own logos; ``data``, ``runs/``, ``results.csv`` and ``report.html``
are made by the commands themselves. ``--weights imagenet`` (the default) cannot be
downloaded here, so Keras's cache (``KERAS_HOME``) is seeded with a MobileNetV2 weights
file of the name and format Keras looks for (random values: the commands must run,
not learn).
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from image_files import encode, halves, noise_jpeg

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
MARKDOWN = [README, *sorted((REPO / "docs").glob("*.md"))]

# Commands of README.md this test does not run, and why.
NOT_RUN = {
    "make demo": "creates .venv and trains for minutes; tests/test_demo.py runs the demo",
    "make test": "runs this suite",
}
# `logo-batch` commands being built on other branches: skipped while `logo-batch COMMAND
# --help` is a usage error (exit 2), run as written as soon as the command exists.
PENDING: tuple[str, ...] = ()
# Files those branches add, linked from the docs: checked once their command exists.
PENDING_LINKS: dict[str, str] = {}
# keras/src/applications/mobilenet_v2.py: the no-top weights of alpha 1.0 at 224 px,
# looked up in KERAS_HOME/models/ before any download (no hash is checked).
MOBILENET_V2_WEIGHTS = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
COMMAND_TIMEOUT = 1200  # seconds: a hung command fails the test instead of the CI run


def bash_commands(markdown: str) -> list[str]:
    """The commands of the ```bash blocks, in order: continuation lines joined, blank
    lines and comment lines left out."""
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", markdown, re.MULTILINE | re.DOTALL):
        block = re.sub(r"\\\n\s*", " ", block)
        commands += [line.strip() for line in block.splitlines()]
    return [command for command in commands if command and not command.startswith("#")]


COMMANDS = bash_commands(README.read_text())


def words(command: str) -> list[str]:
    """The command's words as bash splits them, a trailing comment left out."""
    return shlex.split(command, comments=True)


def pending_command(command: str) -> str | None:
    """The pending `logo-batch` command ``command`` runs, else ``None``."""
    first = words(command)[:2]
    return first[1] if first[:1] == ["logo-batch"] and first[1:] and first[1] in PENDING else None


def environment(**extra: str) -> dict[str, str]:
    """This checkout's code and console scripts first (``logo-batch``, ``tfds`` and
    ``python`` of this interpreter's environment), plus ``extra``."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return {**env, **extra}


@functools.cache
def exists(command: str) -> bool:
    """Whether ``logo-batch COMMAND`` exists (an unknown command is a usage error, 2)."""
    probe = subprocess.run(
        ["bash", "-c", f"logo-batch {shlex.quote(command)} --help"],
        env=environment(),
        capture_output=True,
        timeout=COMMAND_TIMEOUT,
    )
    return probe.returncode != 2


def why_not_run(command: str) -> str | None:
    """The reason ``command`` is not run, ``None`` when it runs."""
    plain = " ".join(words(command))
    if plain in NOT_RUN:
        return f"`{plain}`: {NOT_RUN[plain]}"
    pending = pending_command(command)
    if pending and not exists(pending):
        return f"`logo-batch {pending}` is being built (`logo-batch {pending} --help` exits 2)"
    return None


def outputs(command: str) -> list[str]:
    """What the command names as its output (``--output X``, ``--output-dir X``)."""
    w = words(command)
    return [w[i + 1] for i in range(len(w) - 1) if w[i] in ("--output", "--output-dir")]


def seed_keras_cache(keras_home: Path) -> None:
    """A MobileNetV2 base weights file where `--weights imagenet` looks first."""
    import keras

    keras.utils.set_random_seed(0)
    base = keras.applications.MobileNetV2(
        input_shape=(224, 224, 3), include_top=False, weights=None
    )
    (keras_home / "models").mkdir(parents=True)
    base.save(keras_home / "models" / MOBILENET_V2_WEIGHTS)  # the legacy .h5 format Keras reads


def write_own_logos(folder: Path, brands: int = 3, per_brand: int = 12) -> None:
    """``crops/<Brand>/*.jpg``: the smallest layout of one's own logos, distinct files."""
    for b in range(brands):
        crops = folder / "crops" / f"Brand {b}"
        crops.mkdir(parents=True)
        for i in range(per_brand):
            (crops / f"{i}.jpg").write_bytes(noise_jpeg(1000 * b + i))


class Workspace:
    """The folder the README's commands run in, and what has run there."""

    def __init__(self, root: Path):
        from tfds_flickr27 import ARCHIVE_NAME
        from tfds_flickr27.synthetic import write_synthetic_archive

        self.root = root
        self.env = environment(KERAS_HOME=str(root / "keras_home"))
        self.returncodes: dict[int, int] = {}
        (root / "downloads").mkdir()
        write_synthetic_archive(
            root / "downloads" / ARCHIVE_NAME,
            images_per_class=4,  # the fewest that gives every split of both configs
            query_per_class=1,
            none_queries=4,
            image_size=64,
        )
        (root / "photos").mkdir()
        for i in range(6):
            (root / "photos" / f"photo{i}.jpg").write_bytes(noise_jpeg(i))
        (root / "photos" / "wide.png").write_bytes(encode(halves(320, 200), "PNG"))
        write_own_logos(root / "my_logos")
        seed_keras_cache(root / "keras_home")

    def run(self, index: int) -> subprocess.CompletedProcess:
        """Runs command ``index`` as written (by bash, in the workspace), after every
        earlier command that runs and has not run yet; fails on an earlier failure."""
        for earlier in range(index):
            if earlier not in self.returncodes and why_not_run(COMMANDS[earlier]) is None:
                self.run(earlier)
            if self.returncodes.get(earlier, 0) != 0:
                pytest.fail(f"an earlier README command failed: {COMMANDS[earlier]}")
        done = subprocess.run(
            ["bash", "-c", COMMANDS[index]],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
        )
        self.returncodes[index] = done.returncode
        return done


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("readme"))


@pytest.mark.slow
@pytest.mark.parametrize(
    "index",
    range(len(COMMANDS)),
    ids=[f"{i:02d}-{'-'.join(words(c)[:2])}" for i, c in enumerate(COMMANDS)],
)
def test_readme_command_runs_as_written(index: int, request: pytest.FixtureRequest):
    command = COMMANDS[index]
    reason = why_not_run(command)
    if reason:
        pytest.skip(reason)
    workspace = request.getfixturevalue("workspace")  # made only when a command runs
    done = workspace.run(index)
    assert done.returncode == 0, (
        f"`{command}` exited {done.returncode}\n--- stdout\n{done.stdout[-3000:]}"
        f"\n--- stderr\n{done.stderr[-3000:]}"
    )
    for output in outputs(command):
        assert (workspace.root / output).exists(), f"`{command}` did not write {output}"


def test_the_commands_not_run_are_readme_commands():
    """The lists of commands this test leaves out name commands the README has."""
    assert set(NOT_RUN) <= {" ".join(words(c)) for c in COMMANDS}
    assert {pending_command(c) for c in COMMANDS} >= set(PENDING)


def test_the_readme_is_a_guide_of_at_most_300_lines():
    assert len(README.read_text().splitlines()) <= 300


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped (``-`` and
    ``_`` kept), spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """The anchors of a markdown file's headings (outside code blocks); a repeated
    heading gets ``-1``, ``-2``, ... as on GitHub."""
    text = re.sub(r"^```.*?^```", "", markdown, flags=re.MULTILINE | re.DOTALL)
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, re.MULTILINE):
        base = slug(heading)
        count = seen.get(base, 0)
        found.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return found


def relative_links(markdown: str) -> list[str]:
    """The targets of the links and images that are not URLs, outside code."""
    text = re.sub(r"^```.*?^```", "", markdown, flags=re.MULTILINE | re.DOTALL)
    text = re.sub(r"`[^`\n]*`", "", text)
    targets = re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", text)
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def in_repo(path: Path) -> str:
    """``path`` relative to the checkout, ``""`` outside it."""
    return str(path.relative_to(REPO)) if REPO in path.parents else ""


@pytest.mark.parametrize("path", MARKDOWN, ids=[in_repo(p) for p in MARKDOWN])
def test_every_relative_link_points_to_what_exists(path: Path):
    broken = []
    for target in relative_links(path.read_text()):
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        pending = PENDING_LINKS.get(in_repo(resolved))
        if pending and not exists(pending):
            continue  # a file of a command being built: checked once the command exists
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved.read_text()):
            broken.append(f"{target}: no heading #{anchor} in {resolved.name}")
    assert not broken, f"{in_repo(path)}: " + "; ".join(broken)
