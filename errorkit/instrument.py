"""``import errorkit.instrument`` as an entry point's first line runs :func:`errorkit.setup`."""

from errorkit._setup import setup

setup()
