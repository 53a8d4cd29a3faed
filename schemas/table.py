"""Table definitions: one declaration per table, from which every other view is derived.

A :class:`Table` lists typed :class:`Column` s. From it we derive

* the polars schema used by pipeline stages (:meth:`Table.polars_schema`),
* the Hugging Face ``Features`` of a release (:meth:`Table.hf_features`),
* the column-level checks the validation layer turns into Great Expectations
  expectations (:meth:`Table.column_checks`),

so that the three cannot drift apart. This module imports nothing of ours.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import polars as pl


# --------------------------------------------------------------------------- types


@dataclass(frozen=True)
class DType:
    """Base of the small type vocabulary used by table definitions."""

    def polars(self) -> pl.DataType:  # pragma: no cover - abstract
        raise NotImplementedError

    def hf(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class String(DType):
    def polars(self) -> pl.DataType:
        return pl.String()

    def hf(self) -> Any:
        from datasets import Value

        return Value("string")


@dataclass(frozen=True)
class Int(DType):
    bits: int = 64

    def polars(self) -> pl.DataType:
        return {8: pl.Int8(), 16: pl.Int16(), 32: pl.Int32(), 64: pl.Int64()}[self.bits]

    def hf(self) -> Any:
        from datasets import Value

        return Value(f"int{self.bits}")


@dataclass(frozen=True)
class Float(DType):
    def polars(self) -> pl.DataType:
        return pl.Float64()

    def hf(self) -> Any:
        from datasets import Value

        return Value("float64")


@dataclass(frozen=True)
class Bool(DType):
    def polars(self) -> pl.DataType:
        return pl.Boolean()

    def hf(self) -> Any:
        from datasets import Value

        return Value("bool")


@dataclass(frozen=True)
class ImageData(DType):
    """An image: its encoded bytes (JPEG, PNG, ...) and an optional file name, as ``datasets`` stores
    an ``Image`` feature (a struct of ``bytes`` and ``path``); a release decodes it to a PIL image."""

    def polars(self) -> pl.DataType:
        return pl.Struct({"bytes": pl.Binary(), "path": pl.String()})

    def hf(self) -> Any:
        from datasets import Image

        return Image()


@dataclass(frozen=True)
class Label(DType):
    """A class label: stored as its integer index, named by ``names`` (HF ``ClassLabel``)."""

    names: tuple[str, ...] = ()

    def polars(self) -> pl.DataType:
        return pl.Int64()

    def hf(self) -> Any:
        from datasets import ClassLabel

        return ClassLabel(names=list(self.names))

    def index(self, name: str) -> int:
        return self.names.index(name)


@dataclass(frozen=True)
class ListOf(DType):
    inner: DType = field(default_factory=String)

    def polars(self) -> pl.DataType:
        return pl.List(self.inner.polars())

    def hf(self) -> Any:
        from datasets import List

        return List(self.inner.hf())


@dataclass(frozen=True)
class StructOf(DType):
    fields: tuple[tuple[str, DType], ...] = ()

    def polars(self) -> pl.DataType:
        return pl.Struct({name: dtype.polars() for name, dtype in self.fields})

    def hf(self) -> Any:
        return {name: dtype.hf() for name, dtype in self.fields}


# --------------------------------------------------------------------------- columns and tables


@dataclass(frozen=True)
class Column:
    """One column. Constraints here become validation checks; ``description`` feeds the card."""

    name: str
    dtype: DType
    description: str = ""
    nullable: bool = False
    unique: bool = False
    min_value: float | None = None
    max_value: float | None = None
    allowed: tuple[Any, ...] | None = None  # closed set of values (besides label indices)
    released: bool = True  # False: a working column of the stages, never part of a release


@dataclass(frozen=True)
class ColumnCheck:
    """A backend-neutral column check; ``validation/`` maps each kind to a GX expectation."""

    kind: str  # "not_null" | "unique" | "in_set" | "between" | "elements_in_set"
    column: str
    value_set: tuple[Any, ...] | None = None
    min_value: float | None = None
    max_value: float | None = None


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: str
    description: str = ""

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"table {self.name!r} declares a column twice: {names}")
        if self.primary_key not in names:
            raise ValueError(f"table {self.name!r}: primary key {self.primary_key!r} is not a column")

    # -- lookups
    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def released_columns(self) -> list[Column]:
        return [c for c in self.columns if c.released]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name!r} has no column {name!r}; columns: {self.column_names}")

    # -- derived views
    def polars_schema(self, *, released_only: bool = False) -> pl.Schema:
        cols = self.released_columns if released_only else self.columns
        return pl.Schema({c.name: c.dtype.polars() for c in cols})

    def subset_schema(self, names: Iterable[str]) -> pl.Schema:
        """The polars schema of some of the columns (for intermediate stages)."""
        return pl.Schema({n: self.column(n).dtype.polars() for n in names})

    def hf_features(self) -> Any:
        from datasets import Features

        return Features({c.name: c.dtype.hf() for c in self.released_columns})

    def column_checks(self) -> list[ColumnCheck]:
        """Checks implied by the declaration (types are enforced by the schema itself)."""
        checks: list[ColumnCheck] = []
        for c in self.released_columns:
            if not c.nullable:
                checks.append(ColumnCheck("not_null", c.name))
            if c.unique or c.name == self.primary_key:
                checks.append(ColumnCheck("unique", c.name))
            if c.allowed is not None:
                checks.append(ColumnCheck("in_set", c.name, value_set=tuple(c.allowed)))
            if isinstance(c.dtype, Label):
                checks.append(ColumnCheck("in_set", c.name, value_set=tuple(range(len(c.dtype.names)))))
            if isinstance(c.dtype, ListOf) and isinstance(c.dtype.inner, Label):
                names = c.dtype.inner.names
                checks.append(ColumnCheck("elements_in_set", c.name, value_set=tuple(range(len(names)))))
            if c.min_value is not None or c.max_value is not None:
                checks.append(ColumnCheck("between", c.name, min_value=c.min_value, max_value=c.max_value))
        return checks

    def conform(self, df: pl.DataFrame, *, released_only: bool = False) -> pl.DataFrame:
        """Select and order this table's columns, casting to the declared types.

        Raises ``ValueError`` naming the missing columns rather than failing deep inside polars.
        """
        schema = self.polars_schema(released_only=released_only)
        missing = [n for n in schema.names() if n not in df.columns]
        if missing:
            raise ValueError(f"table {self.name!r}: frame lacks columns {missing}; it has {df.columns}")
        return df.select([pl.col(n).cast(t) for n, t in schema.items()])
