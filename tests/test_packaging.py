"""What the installed distribution carries besides code: its license (metadata and text)."""
import importlib.metadata


def test_the_distribution_declares_the_mit_license_and_ships_its_text():
    dist = importlib.metadata.distribution("lamina")
    assert dist.metadata["License-Expression"] == "MIT", dict(dist.metadata)
    text = dist.read_text("licenses/LICENSE")
    assert text is not None, [str(f) for f in dist.files or []]
    assert text.startswith("MIT License") and "Copyright (c) 2026 the lamina authors" in text
