"""The post-refresh hook: bring the data in ``$SNAP_DATA`` up to this revision's schemas.

* ``config.json``: :func:`kassa_appliance.appliance.config.migrate_config_document`,
  validated by the model and rewritten atomically (0600) when it changed. (snapd runs the
  configure hook after a refresh too; this keeps a file that no key maps to, or a failed
  configure, from leaving the daemon on an unreadable file.)
* the journal: opening :class:`kassa_appliance.fiscal.journal.Journal` migrates its SQLite schema.

Failing here makes snapd undo the refresh, so the old revision keeps running on data it
understands; the message says which file and what is wrong (never a secret's value).
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from kassa_appliance.appliance.config import (
    CONFIG_FILE_NAME,
    Config,
    config_to_json,
    migrate_config_document,
    write_private_file,
)
from kassa_appliance.appliance.config_errors import describe_validation_error


class MigrationError(Exception):
    """A data file cannot be brought to this revision's schema."""


def migrate_config_file(data_dir: Path) -> bool:
    """Rewrite config.json in the current schema; returns whether the file changed."""
    path = data_dir / CONFIG_FILE_NAME
    if not path.exists():
        return False
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        document, _ = migrate_config_document(raw)
        config = Config.model_validate(document)
    except ValidationError as error:
        problems = "; ".join(describe_validation_error(error))
        raise MigrationError(f"{path}: {problems}") from None
    except ValueError as error:  # JSON syntax, ConfigSchemaError
        raise MigrationError(f"{path}: {error}") from None
    text = config_to_json(config)
    if path.read_text(encoding="utf-8") == text:
        return False
    write_private_file(path, text)
    return True


def migrate_journal(data_dir: Path) -> bool:
    """Open (and so migrate) the journal if there is one; returns whether it existed."""
    from kassa_appliance.appliance.daemon import journal_path
    from kassa_appliance.fiscal.journal import Journal, JournalError

    path = journal_path(data_dir)
    if not path.exists():
        return False
    try:
        Journal(path).close()
    except JournalError as error:
        raise MigrationError(str(error)) from None
    return True


def post_refresh(data_dir: Path) -> None:
    migrate_config_file(data_dir)
    migrate_journal(data_dir)
