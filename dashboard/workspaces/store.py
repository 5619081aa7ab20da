"""Saved workspaces and share snapshots in a SQL database (SQLAlchemy 2).

Where: ``PMDASH_DATABASE_URL`` (any SQLAlchemy URL, e.g. ``postgresql+psycopg://user@host/pmdash``)
or else the SQLite file ``workspaces.sqlite3`` in :func:`data_dir` (``PMDASH_DATA_DIR``, default
the per-user data directory), created on first use.

Schema: two tables, ``workspaces`` and ``shares``, plus ``pmdash_meta`` whose row
``schema_version`` says which :data:`SCHEMA_VERSION` the tables follow.  :func:`ensure_schema`
(run when the app starts) creates missing tables, applies the :data:`MIGRATIONS` from the stored
version up, in one transaction, and refuses a database written by a newer pmdash.

Every change is one transaction: a process that dies half-way through a save leaves the previous
version as it was.  Saves over an existing workspace name the revision they started from and
fail with :class:`StaleWorkspaceError` when another tab or worker saved in between, so an update is
never silently lost (optimistic locking: ``UPDATE … WHERE revision = :seen``).

Who sees what: a workspace belongs to an *owner* (the reverse proxy's user, or a random key kept
in the browser, see ``dashboard.workspaces.web``); listing shows the owner's workspaces only.
A share is a frozen copy of a document under a random token of 256 bits
(``secrets.token_urlsafe(32)``); the database keeps only the token's SHA-256, so neither a
listing nor a copy of the database reveals a working link.
"""
from __future__ import annotations

import hashlib
import os
import secrets
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from sqlalchemy import (
    CursorResult,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    String,
    create_engine,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from .payload import MAX_PAYLOAD_BYTES

SCHEMA_VERSION = 1
#: schema version n -> SQL statements that turn a version-n database into version n + 1.
MIGRATIONS: dict[int, tuple[str, ...]] = {}
MAX_NAME = 120
SHARE_TOKEN_BYTES = 32


class WorkspaceError(ValueError):
    """A refused workspace operation; the message is for the user."""


class StaleWorkspaceError(WorkspaceError):
    """The workspace was saved elsewhere since this tab opened it."""


class Base(DeclarativeBase):
    pass


class Meta(Base):
    __tablename__ = "pmdash_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class Workspace(Base):
    __tablename__ = "workspaces"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revision: Mapped[int] = mapped_column(Integer)
    payload_version: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    payload: Mapped[bytes] = mapped_column(LargeBinary)


class Share(Base):
    __tablename__ = "shares"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    payload_version: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    payload: Mapped[bytes] = mapped_column(LargeBinary)


@dataclass(frozen=True)
class WorkspaceInfo:
    """A workspace without its document (what a listing shows)."""

    id: str
    name: str
    created: datetime
    updated: datetime
    revision: int
    payload_version: int
    size: int


@dataclass(frozen=True)
class Document:
    """A stored document: its bytes, the payload version they were written with, a name."""

    name: str
    payload_version: int
    payload: bytes


# ----------------------------------------------------------------------------- where


def data_dir() -> Path:
    """``PMDASH_DATA_DIR``, else the per-user data directory: ``$XDG_DATA_HOME/pmdash``
    (``~/.local/share/pmdash``) on Linux, ``~/Library/Application Support/pmdash`` on macOS,
    ``%LOCALAPPDATA%\\pmdash`` on Windows.  Created when missing."""
    explicit = os.environ.get("PMDASH_DATA_DIR")
    if explicit:
        path = Path(explicit)
    elif sys.platform == "win32":
        path = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "pmdash"
    elif sys.platform == "darwin":
        path = Path.home() / "Library" / "Application Support" / "pmdash"
    else:
        path = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "pmdash"
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url() -> str:
    return os.environ.get("PMDASH_DATABASE_URL") or f"sqlite:///{data_dir() / 'workspaces.sqlite3'}"


def _sqlite_transactions(engine: Engine) -> None:
    """Real transactions on SQLite: pysqlite would otherwise defer BEGIN to the first write
    (SQLAlchemy's documented recipe); IMMEDIATE takes the write lock at BEGIN, so two workers'
    read-check-write sequences are serialised instead of failing half-way."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # readers do not wait for a writer
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str | None = None) -> Engine:
    url = url or database_url()
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        if engine.url.database and engine.url.database != ":memory:":
            Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True)  # created on first use
        _sqlite_transactions(engine)
        return engine
    return create_engine(url, pool_pre_ping=True)


def ensure_schema(engine: Engine) -> int:
    """Create or migrate the tables to :data:`SCHEMA_VERSION` (returns it); RuntimeError for a
    database of a newer schema.  Safe when several workers start at once."""
    for attempt in range(3):
        try:
            Base.metadata.create_all(engine)
            break
        except (OperationalError, ProgrammingError):  # another worker created a table meanwhile
            if attempt == 2:
                raise
    try:
        with Session(engine) as session, session.begin():
            row = session.get(Meta, "schema_version")
            if row is None:
                session.add(Meta(key="schema_version", value=str(SCHEMA_VERSION)))
                return SCHEMA_VERSION
            version = int(row.value)
            if version > SCHEMA_VERSION:
                raise RuntimeError(f"the workspace database has schema version {version}, newer than this "
                                   f"pmdash's {SCHEMA_VERSION}: upgrade pmdash (or point PMDASH_DATABASE_URL "
                                   "elsewhere)")
            while version < SCHEMA_VERSION:
                for statement in MIGRATIONS[version]:
                    session.execute(text(statement))
                version += 1
            row.value = str(version)
    except IntegrityError:  # another worker wrote the version row first
        return ensure_schema(engine)
    return version


# ----------------------------------------------------------------------------- operations


def _now() -> datetime:
    return datetime.now(UTC)


def _name(name) -> str:
    name = " ".join(str(name or "").split())
    if not name:
        raise WorkspaceError("give the workspace a name")
    if len(name) > MAX_NAME:
        raise WorkspaceError(f"a name may have at most {MAX_NAME} characters (this one has {len(name)})")
    return name


def _size(payload: bytes) -> int:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise WorkspaceError(f"this workspace is {len(payload) / 1e6:.1f} MB, more than the "
                             f"{MAX_PAYLOAD_BYTES / 1e6:g} MB allowed: nothing was saved")
    return len(payload)


def _info(w: Workspace) -> WorkspaceInfo:
    return WorkspaceInfo(w.id, w.name, w.created, w.updated, w.revision, w.payload_version, w.size)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class WorkspaceStore:
    """The operations of the Workspaces page, each one transaction on ``engine``."""

    def __init__(self, engine: Engine):
        self.engine = engine

    @classmethod
    def open(cls, url: str | None = None) -> WorkspaceStore:
        """A store on ``url`` (default :func:`database_url`) with its schema ensured."""
        store = cls(make_engine(url))
        ensure_schema(store.engine)
        return store

    def _owned(self, session: Session, owner: str, workspace_id: str) -> Workspace:
        w = session.get(Workspace, str(workspace_id))
        if w is None or w.owner != owner:
            raise WorkspaceError("no such workspace (it may have been deleted in another tab)")
        return w

    def create(self, owner: str, name: str, payload: bytes, payload_version: int) -> WorkspaceInfo:
        now = _now()
        w = Workspace(id=uuid.uuid4().hex, owner=owner, name=_name(name), created=now, updated=now, revision=1,
                      payload_version=payload_version, size=_size(payload), payload=payload)
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            session.add(w)
        return _info(w)

    def save(self, owner: str, workspace_id: str, payload: bytes, payload_version: int,
             seen_revision: int | None) -> WorkspaceInfo:
        """Overwrite a workspace's document.  With ``seen_revision`` the write happens only if
        nobody saved since that revision (else :class:`StaleWorkspaceError`)."""
        size = _size(payload)
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            current = self._owned(session, owner, workspace_id)
            condition = [Workspace.id == current.id]
            if seen_revision is not None:
                condition.append(Workspace.revision == int(seen_revision))
            done = cast(CursorResult, session.execute(
                update(Workspace).where(*condition).values(
                    payload=payload, payload_version=payload_version, size=size, updated=_now(),
                    revision=Workspace.revision + 1).execution_options(synchronize_session=False)))
            if done.rowcount != 1:
                raise StaleWorkspaceError(f"'{current.name}' was saved elsewhere since you opened it (now revision "
                                     f"{current.revision}, you had {seen_revision}): nothing was overwritten; "
                                     "save under a new name, or open it again")
            session.refresh(current)
            return _info(current)

    def list(self, owner: str) -> list[WorkspaceInfo]:
        with Session(self.engine) as session:
            rows = session.scalars(select(Workspace).where(Workspace.owner == owner)
                                   .order_by(Workspace.updated.desc(), Workspace.name))
            return [_info(w) for w in rows]

    def load(self, owner: str, workspace_id: str) -> tuple[WorkspaceInfo, Document]:
        with Session(self.engine) as session:
            w = self._owned(session, owner, workspace_id)
            return _info(w), Document(w.name, w.payload_version, w.payload)

    def rename(self, owner: str, workspace_id: str, name: str) -> WorkspaceInfo:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            w = self._owned(session, owner, workspace_id)
            w.name, w.updated = _name(name), _now()
        return _info(w)

    def duplicate(self, owner: str, workspace_id: str, name: str | None = None) -> WorkspaceInfo:
        with Session(self.engine) as session:
            w = self._owned(session, owner, workspace_id)
            source = (w.name, w.payload, w.payload_version)
        return self.create(owner, name or f"{source[0]} (copy)"[:MAX_NAME], source[1], source[2])

    def delete(self, owner: str, workspace_id: str) -> str:
        with Session(self.engine) as session, session.begin():
            w = self._owned(session, owner, workspace_id)
            session.delete(w)
            return w.name

    def count(self) -> int:
        with Session(self.engine) as session:
            return session.scalar(select(func.count()).select_from(Workspace)) or 0

    # ------------------------------------------------------------------------- shares

    def share(self, name: str, payload: bytes, payload_version: int) -> str:
        """Freeze a copy of a document; returns the token of its link (shown once, kept only
        as a hash)."""
        token = secrets.token_urlsafe(SHARE_TOKEN_BYTES)
        with Session(self.engine) as session, session.begin():
            session.add(Share(token_hash=token_hash(token), name=_name(name), created=_now(),
                              payload_version=payload_version, size=_size(payload), payload=payload))
        return token

    def open_share(self, token: str) -> Document | None:
        if not isinstance(token, str) or not 16 <= len(token) <= 128:
            return None
        with Session(self.engine) as session:
            s = session.get(Share, token_hash(token))
            return None if s is None else Document(s.name, s.payload_version, s.payload)


def database_location(engine: Engine) -> str:
    """The database URL as shown to users (password hidden)."""
    return engine.url.render_as_string(hide_password=True)
