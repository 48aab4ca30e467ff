"""Client commands: log in, upload a sample, perform, follow jobs, list and download notes."""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli import session
from cli.app import cli
from cli.http_client import ApiError, Client

console = Console(stderr=True)
out = Console()
jobs_cli = typer.Typer(help="Follow jobs.", no_args_is_help=True)
recordings_cli = typer.Typer(help="Your voice notes.", no_args_is_help=True)
cli.add_typer(jobs_cli, name="jobs")
cli.add_typer(recordings_cli, name="recordings")

ApiUrl = typer.Option(None, "--api-url", envvar="NV_API_URL", help="API base URL (default: the running dev stack)")


def fail(err: ApiError) -> typer.Exit:
    console.print(f"[bold red]{err.code}[/]: {err.message}")
    if err.action:
        console.print(f"[yellow]→ {err.action}[/]")
    return typer.Exit(1)


@contextlib.contextmanager
def api(api_url: str | None, auth: bool = True):
    url = session.resolve_api_url(api_url)
    creds = session.load_credentials()
    token = None
    if auth:
        if not creds.get("access_token") or creds.get("expires_at", 0) < time.time():
            console.print("[red]Not logged in (or the session expired).[/] Run `newvisions login` first.")
            raise typer.Exit(1)
        token = creds["access_token"]
    with Client(url, token) as c:
        try:
            yield c
        except ApiError as err:
            raise fail(err) from None


def follow(c: Client, job_id: str, label: str) -> dict:
    """Follow a job over SSE with a progress bar; returns the finished job."""
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeElapsedColumn(), console=console, transient=False) as bar:
        task = bar.add_task(label, total=100)

        def update(view: dict) -> None:
            bar.update(task, completed=100 * (view.get("progress") or 0),
                       description=f"{label}: {view.get('stage') or view['state']}")

        job = c.wait(job_id, update)
        bar.update(task, completed=100 if job["state"] == "succeeded" else bar.tasks[0].completed)
    if job["state"] == "failed":
        err = job.get("error") or {}
        raise fail(ApiError(0, err.get("error", "JOB_FAILED"), err.get("message", ""), err.get("action", "")))
    return job


@cli.command()
def login(username: str = typer.Option(..., prompt=True),
          password: str = typer.Option(..., prompt=True, hide_input=True), api_url: str = ApiUrl) -> None:
    """Log in; the token is kept in your config directory (readable only by you)."""
    with api(api_url, auth=False) as c:
        body = c.login(username, password, session.device_token(c.base_url, username))
        path = session.save_credentials(c.base_url, username, body["access_token"], body["expires_in"],
                                        body.get("device_token"))
    console.print(f"Logged in as [bold]{username}[/] at {c.base_url} (credentials in {path})")


@cli.command()
def register(username: str = typer.Option(..., prompt=True), email: str = typer.Option(..., prompt=True),
             password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True),
             code: str = typer.Option(..., "--code", prompt="Activation code"), api_url: str = ApiUrl) -> None:
    """Create an account with an activation code, then log in."""
    with api(api_url, auth=False) as c:
        c.register(username, email, password, code)
        body = c.login(username, password)
        session.save_credentials(c.base_url, username, body["access_token"], body["expires_in"],
                                 body.get("device_token"))
    console.print(f"Welcome, [bold]{username}[/]. Next: `newvisions upload YOUR_SAMPLE.mp3`")


@cli.command()
def me(api_url: str = ApiUrl) -> None:
    """Your account and this month's characters."""
    with api(api_url) as c:
        profile = c.me()
    out.print(f"{profile['username']} <{profile['email']}>  role={profile['role']}  voice={profile['voice_state']}")
    out.print(f"characters: {profile['charCount']} / {profile['monthlyLimit']} this month")


@cli.command()
def upload(sample: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
           wait: bool = typer.Option(True, help="Follow the clone job to the end"), api_url: str = ApiUrl) -> None:
    """Upload your voice sample (30 s - 3 min) and show its quality report."""
    with api(api_url) as c:
        accepted = c.upload_sample(sample)
        if not wait:
            out.print(accepted["job_id"])
            return
        job = follow(c, accepted["job_id"], "clone")
    result = job["result"]
    table = Table(title=f"Voice {result['action']}: {result['voice_clone_id']}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in result["quality"].items():
        table.add_row(key, f"{value:.2f}" if isinstance(value, float) else str(value))
    out.print(table)
    match = result.get("voice_match")
    if match:
        out.print(f"voice match: {_match_text(match)}: how much the new voice sounds like the sample")


def _match_text(match: dict) -> str:
    return f"{match['score']}/100 ({match['band']})"


@cli.command()
def routines(api_url: str = ApiUrl) -> None:
    """The routine types you can perform."""
    with api(api_url, auth=False) as c:
        for r in c.routines():
            out.print(f"[bold]{r['type']}[/]  {r['languages']['english']['title']} — "
                      f"{r['languages']['english']['description']}")


@cli.command("perform")
def perform_cmd(routine: str = typer.Option(..., "--routine", "-r"), topic: str = typer.Option(..., "--topic", "-t"),
                wait: bool = typer.Option(False, help="Follow the job and print where the note is"),
                api_url: str = ApiUrl) -> None:
    """Ask for a voice note in your voice."""
    with api(api_url) as c:
        accepted = c.perform(routine, topic)
        quota = accepted.get("quota", {})
        console.print(f"job {accepted['job_id']} accepted "
                      f"({quota.get('charCount')} / {quota.get('monthlyLimit')} characters used)")
        if not wait:
            out.print(accepted["job_id"])
            return
        job = follow(c, accepted["job_id"], "perform")
    r = job["result"]
    out.print(f"recording {r['recording_id']}: {r['duration_s']:.1f} s, {r['chars']['effective']} characters "
              f"charged ({r['charCount']} / {r['monthlyLimit']} this month)")
    if r.get("voice_match"):
        out.print(f"voice match: {_match_text(r['voice_match'])}")
    out.print(f"download: newvisions recordings download {r['recording_id']}")


@jobs_cli.command("show")
def jobs_show(job_id: str, api_url: str = ApiUrl) -> None:
    """Print a job's current state."""
    with api(api_url) as c:
        job = c.job(job_id)
    out.print_json(data=job)


@jobs_cli.command("wait")
def jobs_wait(job_id: str, api_url: str = ApiUrl) -> None:
    """Follow a job to its end with a progress bar."""
    with api(api_url) as c:
        job = follow(c, job_id, job_id[:8])
    out.print_json(data=job.get("result"))


@recordings_cli.command("list")
def recordings_list(limit: int = typer.Option(20, min=1, max=100), api_url: str = ApiUrl) -> None:
    """Your voice notes, newest first."""
    with api(api_url) as c:
        page = c.recordings(limit)
    table = Table(title=f"{page['total']} recordings")
    for col in ("id", "title", "date", "routine", "seconds", "chars", "voice match"):
        table.add_column(col)
    for item in page["items"]:
        match = item.get("voice_match")
        table.add_row(item["id"], item["title"] or "", item["date"] or "", item["routine_type"] or "",
                      f"{item['duration_s']:.1f}", str(item["chars_effective"]), _match_text(match) if match else "-")
    out.print(table)


@recordings_cli.command("download")
def recordings_download(recording_id: str, dest: Path = typer.Option(Path("out"), "--to", help="folder or file"),
                        api_url: str = ApiUrl) -> None:
    """Save a voice note's MP3."""
    with api(api_url) as c:
        target = dest if dest.suffix == ".mp3" else dest / f"{safe_name(recording_id)}.mp3"
        path = c.download(recording_id, target)
    out.print(str(path))


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:80] or "note"
