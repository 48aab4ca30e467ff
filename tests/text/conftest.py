"""A fake Gemini server per test module, served on loopback (the real SDK talks to it)."""

import pytest

from tests.fakes.gemini import running_fake_gemini
from tests.text import KEY


@pytest.fixture(scope="module")
def server():
    with running_fake_gemini(KEY) as (fake, base_url):
        yield fake, base_url


@pytest.fixture
def fake(server):
    server[0].reset()
    return server[0]
