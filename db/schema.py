"""The catalog's tables. Only `functions` writes to them."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Model(Base):
    """One generation model: its identity, capabilities, price and flags."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[str] = mapped_column(String(50), default="1.0")
    # Exact money: micro-USD per pricing unit (a second for video).
    cost_micros: Mapped[int] = mapped_column(BigInteger)
    pricing_unit: Mapped[str] = mapped_column(String(32), default="second")
    supported_durations: Mapped[list] = mapped_column(JSON, default=list)
    supported_qualities: Mapped[list] = mapped_column(JSON, default=list)
    max_duration: Mapped[int | None] = mapped_column(Integer, nullable=True)
    fixed_duration: Mapped[int | None] = mapped_column(Integer, nullable=True)
    quality_multipliers: Mapped[dict] = mapped_column(JSON, default=dict)
    is_premium: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    is_deprecated: Mapped[bool] = mapped_column(Boolean, default=False)
    is_locked: Mapped[bool] = mapped_column(Boolean, default=False)
    provider: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(100), default="")
    tags: Mapped[list] = mapped_column(JSON, default=list)
    content_type: Mapped[str] = mapped_column(String(64), default="prompt_to_video")
    input_schema: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    replicate_model_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    model_parameters: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    requirements: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    deprecated_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (
        Index("ix_models_is_active", "is_active"),
        Index("ix_models_is_default", "is_default"),
        Index("ix_models_active_premium", "is_active", "is_premium"),
        Index("ix_models_provider", "provider"),
        # At most one default, enforced by the database itself.
        Index(
            "uq_models_one_default",
            "is_default",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
    )


class ModelStats(Base):
    """Usage statistics, apart from the model so that recording them never bumps its revision."""

    __tablename__ = "model_stats"

    model_pk: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    total_generations: Mapped[int] = mapped_column(BigInteger, default=0)
    successful_generations: Mapped[int] = mapped_column(BigInteger, default=0)
    # Sum of generation times in microseconds: the average is exact.
    total_time_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class CatalogState(Base):
    """A single row whose version every catalog change bumps in its own transaction."""

    __tablename__ = "catalog_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


class ModelHistory(Base):
    """One entry per change to a model: who, when, why, field by field, and the result."""

    __tablename__ = "model_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_pk: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    model_id: Mapped[str] = mapped_column(String(200))
    revision: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(320))
    source: Mapped[str] = mapped_column(String(32))
    at: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    changes: Mapped[list] = mapped_column(JSON, default=list)
    snapshot: Mapped[dict] = mapped_column(JSON)

    __table_args__ = (
        Index("uq_model_history_model_revision", "model_pk", "revision", unique=True),
    )


class User(Base):
    """A console account."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    role: Mapped[str] = mapped_column(String(16))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_sign_in_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Every console session carries the version it was signed in under; bumping it (sign-out,
    # a new password, an admin's "sign out", disabling the account) ends them all at once.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ApiToken(Base):
    """A service token; only its hash is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class SignInThrottle(Base):
    """Failed sign-ins per key (a hash of account, address or both) since `started` (ms): a
    window opens at a key's first failure and lasts the throttle's period."""

    __tablename__ = "sign_in_throttle"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    started: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_sign_in_throttle_started", "started"),)
