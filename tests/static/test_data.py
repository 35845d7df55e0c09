"""The repository carries its data: the files match data/README.md, and nothing reads outside the clone."""

import hashlib
import re
import subprocess
from pathlib import Path

import pytest

from pickwise_common.settings import default_data_root

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = "../" + "shared"  # spelled in two parts so this file does not match itself


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / name for name in out.decode().split("\0") if name]


def test_no_tracked_file_names_the_folder_outside_the_repository() -> None:
    offenders = []
    for path in tracked_files():
        if not path.is_file():
            continue
        try:
            text = path.read_text(errors="strict")
        except (UnicodeDecodeError, OSError):
            continue  # binary: data, images
        if OUTSIDE in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_default_data_root_is_inside_the_repository() -> None:
    assert default_data_root().resolve() == (ROOT / "data").resolve()


def test_data_files_match_their_documented_sha256() -> None:
    readme = (ROOT / "data" / "README.md").read_text()
    documented = dict(re.findall(r"^\| `([^`]+)` \|.*?\| `([0-9a-f]{64})`", readme, flags=re.M))
    assert set(documented) == {"flipkart_mobiles.csv", "eval/flipkart_dev.jsonl", "retail/online_retail.csv.gz"}
    for name, digest in documented.items():
        assert hashlib.sha256((ROOT / "data" / name).read_bytes()).hexdigest() == digest, name
