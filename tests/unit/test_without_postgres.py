"""psycopg is an optional extra: everything on SQLite works without it installed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def test_the_sqlite_runtime_gateway_and_cli_import_and_run_without_psycopg(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        sys.modules["psycopg"] = None  # any `import psycopg` now raises ImportError
        sys.modules["psycopg_pool"] = None
        from interlock import Contract, Interlock
        from interlock.testing import drain
        import interlock.cli, interlock.gateway.server

        class Paid(Contract, event="invoice.paid"):
            invoice_id: str

        app = Interlock("nopg", "sqlite:///{tmp_path / "nopg.db"}")
        seen = []

        @app.flow(Paid, owner="billing", key="invoice_id")
        async def book(event: Paid) -> None:
            seen.append(event.invoice_id)

        async def main() -> None:
            await app.emit(Paid(invoice_id="in_1"))
            await drain(app)

        asyncio.run(main())
        assert seen == ["in_1"], seen
        try:
            from interlock.stores import open_store
            open_store("postgresql://postgres@127.0.0.1:5432/postgres")
        except Exception as exc:
            print(type(exc).__name__, exc)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    # Asking for PostgreSQL without the extra is one clear error that says what to install.
    assert "ConfigurationError" in done.stdout and "postgres" in done.stdout, done.stdout
