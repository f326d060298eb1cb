"""The admin console (placeholder until the console lands)."""

from flask import Flask


def init_app(app: Flask) -> None:
    pass
