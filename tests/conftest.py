"""Shared test settings: offline, a private data folder, a headless matplotlib."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("ONCOLAB_OFFLINE", "1")


def pytest_configure(config):
    """The suite runs offline: take the offline decision up front, as a first hub call would,
    so that tests importing ultralytics, timm or transformers directly find the hubs switched off."""
    from oncolab.env import configure

    configure()


@pytest.fixture(autouse=True, scope="session")
def _data_dir(tmp_path_factory):
    os.environ["ONCOLAB_DATA"] = str(tmp_path_factory.mktemp("oncolab-data"))
    yield


@pytest.fixture(scope="session")
def small_cohort():
    """A 90-patient cohort with small images, shared by the unit tests (read-only)."""
    from oncolab.data import synthetic_cohort

    return synthetic_cohort(90, seed=3, image_size=96, slide_size=128)


def pytest_collection_modifyitems(config, items):
    """Run unit tests first, then the chapters (which leave executed notebooks in
    _build/smoke/), then the book build (which uses them), then the browser check of that build."""

    def rank(item):
        path = str(item.fspath)
        if path.endswith("test_browser.py"):
            return 3
        if item.get_closest_marker("book"):
            return 2
        if item.get_closest_marker("chapter"):
            return 1
        return 0

    items.sort(key=rank)
