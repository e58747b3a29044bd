"""The front page and the manual: short, every link resolving, no build diary, no citation of a
file outside the repository, and the configuration page listing every key with its default."""
import re
from pathlib import Path

import pytest
import yaml

from sslnb.params import flatten, keys, load_defaults
from sslnb.schema import markdown_table

from conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    out = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        m = re.match(r"#+ (.*)", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            out.add(slug)
    return out


def test_the_front_page_is_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 150


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue  # an absolute URL
        path, _, fragment = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        assert dest.exists(), f"{page.name}: link to {target} does not resolve"
        if fragment and dest.suffix == ".md":
            assert fragment in anchors(dest), f"{page.name}: no heading #{fragment} in {path}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_build_diary(page):
    """Build history lives in commit messages and each report's appendix: no commit hashes and
    no issue numbers in the front page or the manual."""
    text = page.read_text(encoding="utf-8")
    hashes = [h for h in re.findall(r"\b[0-9a-f]{7,40}\b", text)
              if re.search(r"\d", h) and re.search(r"[a-f]", h)]
    assert not hashes, f"{page.name}: {hashes}"
    assert not re.search(r"(?<![\w/])#\d+\b|\bissue\b", text, re.I), page.name


def test_nothing_cites_a_file_outside_the_repository():
    found = []
    for path in [*ROOT.glob("sslnb/**/*.py"), *ROOT.glob("tests/*.py"), *ROOT.glob("bench/*"),
                 *PAGES, *ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("params/**/*.yaml")]:
        if path.name == Path(__file__).name or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if "reference.md" in text or "../shared" in text:
            found.append(str(path.relative_to(ROOT)))
    assert not found, found


def test_the_configuration_page_lists_every_key_with_its_default():
    """The page's table is the declaration's (sslnb/schema.py and the methods' keys), and each
    row's default reads back as the value a run starts from."""
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert markdown_table(keys()) in page, "regenerate the table: sslnb.schema.markdown_table"
    rows = dict(re.findall(r"^\| `([\w.]+)` \| `([^`]*)` \|", page, re.M))
    defaults = flatten(load_defaults())
    assert set(rows) == set(defaults), set(rows) ^ set(defaults)
    for key, value in defaults.items():
        assert yaml.safe_load(rows[key]) == value, (key, rows[key], value)