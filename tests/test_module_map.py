"""docs/architecture.md's module map ("Driver modules") names every module under driver/src:
a new file there without a line in the map fails here (issue #13, "one design that is easy to
change": the map is where a reader starts)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_map() -> str:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    start = text.index("## Driver modules")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def module_path(file: Path) -> str:
    """`pipeline/steps.rs` -> `pipeline::steps`, `pipeline/mod.rs` -> `pipeline`; the crate
    roots by file name."""
    rel = file.relative_to(ROOT / "driver" / "src")
    if rel.name in ("lib.rs", "main.rs") and len(rel.parts) == 1:
        return rel.name
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "mod":
        parts.pop()
    return "::".join(parts)


def test_the_module_map_names_every_driver_module():
    section = module_map()
    files = sorted((ROOT / "driver" / "src").rglob("*.rs"))
    assert files, "no driver sources found"
    missing = [module_path(f) for f in files if f"`{module_path(f)}`" not in section]
    assert not missing, (
        'docs/architecture.md ("Driver modules") does not name these modules of driver/src '
        f"(write each as `path::to::module`): {missing}"
    )
