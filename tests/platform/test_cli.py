"""The `newvisions` admin chores against the test stores."""

from __future__ import annotations

import subprocess

from tests.conftest import REPO, process_env


def _cli(base_env, *args) -> subprocess.CompletedProcess:
    import sys
    from pathlib import Path

    exe = str(Path(sys.executable).parent / "newvisions")
    return subprocess.run([exe, *args], cwd=REPO, env=process_env(base_env), capture_output=True, text=True,
                          timeout=60)


def test_codes_create_prints_one_usable_code_per_line(base_env, db, client):
    out = _cli(base_env, "codes", "create", "--count", "3")
    assert out.returncode == 0, out.stderr
    codes = out.stdout.split()
    assert len(codes) == 3 and len(set(codes)) == 3
    for i, code in enumerate(codes):
        resp = client.post("/auth/register", json={"username": f"cli_{code[-4:]}{i}",
                                                   "email": f"cli{i}{code[-4:]}@ex.com",
                                                   "password": "password123", "activation_code": code})
        assert resp.status_code == 201, resp.text


def test_admin_grant_gives_access_to_admin_routes(base_env, client, new_user):
    user, headers = new_user()
    assert client.post("/admin/diagnostics", headers=headers).status_code == 403
    out = _cli(base_env, "admin", "grant", user["username"])
    assert out.returncode == 0, out.stderr
    assert client.post("/admin/diagnostics", headers=headers).status_code == 202
    missing = _cli(base_env, "admin", "grant", "no_such_user_x")
    assert missing.returncode == 1 and "no user" in missing.stderr
