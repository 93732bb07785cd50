"""Users, their roles, and their AK/SK access keys."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from obfleet.store import generation
from obfleet.store.base import Base, BigId, IdMixin, TimestampMixin


class User(IdMixin, TimestampMixin, Base):
    __tablename__ = "iam_user"

    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    enabled: Mapped[bool] = mapped_column(default=True)
    # Console sessions carry the epoch they were made in; moving it on (logout, a new
    # password, disabling) ends them all, although their cookies have not expired.
    session_epoch: Mapped[int] = mapped_column(default=0)
    roles: Mapped[list[UserRole]] = relationship(
        cascade="all, delete-orphan", lazy="joined", order_by="UserRole.role"
    )

    @property
    def role_names(self) -> list[str]:
        return [r.role for r in self.roles]


class UserRole(Base):
    __tablename__ = "iam_user_role"
    __table_args__ = (UniqueConstraint("user_id", "role"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("iam_user.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(64))


class AccessKey(IdMixin, TimestampMixin, Base):
    """An AK/SK pair: the secret is kept encrypted, since the server must recompute signatures."""

    __tablename__ = "iam_access_key"

    access_key_id: Mapped[str] = mapped_column(String(64), unique=True)
    secret_encrypted: Mapped[str] = mapped_column(String(512))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("iam_user.id", ondelete="CASCADE"))
    user: Mapped[User] = relationship(lazy="joined")


# The commits of this process that changed a user or the roles a login is checked against
# (services/users.py reuses a login it read until one of these, or a short time, passes).
LOGINS_CHANGED = generation.watch(None, ("iam_user", "iam_user_role"))
