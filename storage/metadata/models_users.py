"""ORM table of dashboard users (migration ``0005``).

Same ``Base`` as ``models.py``. Rows never leave ``storage.metadata``: ``users.UserStore``
converts them to :class:`storage.metadata.users.UserRecord`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.metadata.base import Base

USER_ROLES = ("admin", "engineer", "oncall", "executive")


class UserRow(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(f"role IN {USER_ROLES!r}", name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    # Tenant ids the user may see; NULL means every tenant.
    tenants: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]
    # in every session cookie; logout and password changes increment it (migration 0006)
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
