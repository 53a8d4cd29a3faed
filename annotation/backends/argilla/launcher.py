"""Run argilla-server's command line with the ``corpusforge-sql`` search engine registered.

Runs *inside the argilla-server environment* (``.venv-argilla/bin/python launcher.py ...``),
started by :mod:`annotation.backends.argilla.server`; it imports nothing from corpusforge.
The search engine must be registered in every process that may use it (the web server and the
rq worker, whose pool forks its workers from this process), before the server's modules run,
so this script loads ``search_engine.py`` from beside itself, then hands over:

    launcher.py start --host H --port P     the web server (``argilla_server start``)
    launcher.py worker --num-workers N      the rq worker pool (``argilla_server worker``)
    launcher.py prepare                     migrate the database to the newest revision; with
                                            CORPUSFORGE_ARGILLA_OWNER_USERNAME, _PASSWORD and
                                            _API_KEY set, also create that owner (secrets travel
                                            in the environment, not on the command line)

Any other arguments go to argilla-server's own command line unchanged.
"""

from __future__ import annotations

import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ENGINE_MODULE = "corpusforge_argilla_search_engine"


def register_search_engine() -> None:
    """Import ``search_engine.py`` under a name of its own (this folder is not a package here)."""
    if ENGINE_MODULE in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(ENGINE_MODULE, os.path.join(HERE, "search_engine.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[ENGINE_MODULE] = module
    spec.loader.exec_module(module)


def prepare() -> None:
    import asyncio

    from argilla_server.cli.database.migrate import migrate_db

    migrate_db(revision="head")
    username = os.environ.pop("CORPUSFORGE_ARGILLA_OWNER_USERNAME", "")
    password = os.environ.pop("CORPUSFORGE_ARGILLA_OWNER_PASSWORD", "")
    api_key = os.environ.pop("CORPUSFORGE_ARGILLA_OWNER_API_KEY", "")
    if username:
        asyncio.run(_create_owner(username, password, api_key))


async def _create_owner(username: str, password: str, api_key: str) -> None:
    from argilla_server.contexts import accounts
    from argilla_server.database import AsyncSessionLocal
    from argilla_server.models import User, UserRole

    async with AsyncSessionLocal() as db:
        existing = await accounts.get_user_by_username(db, username)
        if existing is not None:
            if existing.api_key != api_key:
                sys.exit(f"user {username!r} already exists with another API key; this database was not "
                         "made with these credentials")
            return
        await User.create(db, first_name=username, username=username, role=UserRole.owner, api_key=api_key,
                          password_hash=accounts.hash_password(password), workspaces=[])
    print(f"created owner {username!r}", flush=True)


def main(argv: list[str]) -> None:
    # running this file puts its folder first on sys.path; its siblings must not shadow anything
    if sys.path and os.path.abspath(sys.path[0] or os.getcwd()) == HERE:
        sys.path.pop(0)
    register_search_engine()
    if argv[:1] == ["prepare"]:
        prepare()
        return
    from argilla_server.cli import app

    sys.argv = ["argilla_server", *argv]
    app()


if __name__ == "__main__":
    main(sys.argv[1:])
