"""Serve plotly.js from the installed ``plotly`` package, so its version is the one
``uv.lock`` pins and no copy of the 4 MB bundle lives in the repository."""

from __future__ import annotations

import os

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PLOTLY_DIR = os.path.join(os.path.dirname(plotly.__file__), "package_data")
PREFIX = "vendor/plotly"
FILES = ("plotly.min.js",)


class PlotlyFinder(BaseFinder):
    def __init__(self, *args, **kwargs):
        self.storage = FileSystemStorage(location=PLOTLY_DIR)
        self.storage.prefix = PREFIX

    def check(self, **kwargs):
        return []

    def find(self, path, find_all=False, **kwargs):
        for name in FILES:
            if path == f"{PREFIX}/{name}":
                match = os.path.join(PLOTLY_DIR, name)
                if os.path.exists(match):
                    return [match] if find_all else match
        return [] if find_all else None

    def list(self, ignore_patterns):
        for name in FILES:
            yield name, self.storage
