"""Integer join keys: read each sha and id once as a number, not hash text in every merge."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from devmetrics.metrics import SIGNALS

MISSING = -1  # a position or a non-negative deployment key that is not there
MIX = np.int64(-7046029254386353131)  # 0x9E3779B97F4A7C15, the golden-ratio constant
CODE_BITS = 32
SOURCE_BITS = 4  # the 4 deployment signals
TIME_BITS = 42  # milliseconds; leaves 21 bits (2 million) for repo ids
SHA_LENGTH = 40
PREFIX = 16  # hex digits read: 64 bits; two shas of one store sharing them is ~1e-7 likely
NIBBLE = np.zeros(256, dtype=np.uint8)
for _value, _digit in enumerate(b"0123456789abcdef"):
    NIBBLE[_digit] = NIBBLE[bytes([_digit]).upper()[0]] = _value


def arrow_text(values: pd.Series) -> pa.Array:
    """A column as one Arrow (large_)string array (no copy when it already is one)."""
    array = pa.array(values.astype("str"), from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        array = array.cast(pa.large_string())
    return array


def sha_numbers(shas: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(numbers, full): the first 64 bits of each sha as int64, and whether it is a full
    40-digit sha. Every int64 is some sha's number, so "missing" is the mask, not a value.

    Read straight from Arrow's text buffer: no Python object, no copy per sha.
    """
    text = arrow_text(shas)
    _, offsets_buffer, data_buffer = text.buffers()
    width = np.int64 if pa.types.is_large_string(text.type) else np.int32
    offsets = np.frombuffer(offsets_buffer, dtype=width)[text.offset : text.offset + len(text) + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer else np.zeros(0, np.uint8)
    if len(data) < PREFIX:
        data = np.concatenate([data, np.zeros(PREFIX, np.uint8)])
    full = (np.diff(offsets) == SHA_LENGTH) & text.is_valid().to_numpy(zero_copy_only=False)
    windows = np.lib.stride_tricks.sliding_window_view(data, PREFIX)  # a view: no copy
    heads = windows[np.minimum(offsets[:-1], len(windows) - 1)]
    digits = NIBBLE[heads].reshape(-1, PREFIX // 2, 2)
    octets = (digits[:, :, 0] << 4) | digits[:, :, 1]  # two hex digits -> one byte
    number = np.ascontiguousarray(octets).view(">u8").ravel().astype(np.int64)
    return number, full


def shared_codes(*columns: np.ndarray) -> list[np.ndarray]:
    """One code (0, 1, ...) per distinct value across all the columns."""
    codes, _ = pd.factorize(np.concatenate(columns))
    bounds = np.cumsum([0, *(len(column) for column in columns)])
    return [codes[start:end] for start, end in zip(bounds[:-1], bounds[1:], strict=True)]


def repo_key(repo_id: pd.Series, code: np.ndarray) -> pd.Series:
    """repo id and a code below 2**32 as one int64 (-1 where the code is missing).

    Both parts are non-negative, so every real key is >= 0 and -1 cannot be one.
    """
    key = repo_id.to_numpy(np.int64) * 2**CODE_BITS + code
    return pd.Series(np.where(code < 0, MISSING, key), index=repo_id.index)


def sha_keys(*pairs: tuple[pd.Series, pd.Series]) -> list[pd.Series]:
    """(repo_id, sha) columns -> comparable keys, one nullable Int64 Series per pair.

    <NA> where there is no full sha. A real key can be any int64 (about half are negative),
    so no number may stand for "no sha": test `.notna()`, never the sign or a sentinel.
    The repo is mixed in by multiplying with an odd constant: as unlikely to collide as
    the 64-bit prefix itself, and no hashing of text.
    """
    keys = []
    for repo, sha in pairs:
        number, full = sha_numbers(sha)
        with np.errstate(over="ignore"):
            key = number ^ (repo.to_numpy(np.int64) * MIX)
        keys.append(pd.Series(pd.arrays.IntegerArray(key, ~full), index=repo.index))
    return keys


def id_numbers(*columns: pd.Series) -> list[np.ndarray]:
    """Ids as int64 when all are integers (forge ids are), else codes of their text."""
    try:
        return [pc.cast(arrow_text(c), pa.int64()).fill_null(0).to_numpy() for c in columns]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return shared_codes(*(c.astype(object).fillna("").to_numpy() for c in columns))


def deployment_keys(deployments: pd.DataFrame, commits: pd.DataFrame) -> list[pd.Series]:
    """The natural key (repo_id, source, deployment_id) of deployments and commits as int64."""
    frames = (deployments, commits)
    ids = shared_codes(*id_numbers(*(frame["deployment_id"] for frame in frames)))
    keys = []
    for frame, number in zip(frames, ids, strict=True):
        source = pc.index_in(arrow_text(frame["source"]), value_set=pa.array(SIGNALS))
        source = source.fill_null(MISSING).to_numpy(zero_copy_only=False)
        code = np.where(source < 0, MISSING, source * 2 ** (CODE_BITS - SOURCE_BITS) + number)
        keys.append(repo_key(frame["repo_id"], code))
    return keys


def time_key(repo_id: pd.Series, times: pd.Series) -> np.ndarray:
    """repo id and time (milliseconds since 1970, good until 2109) as one sortable int64."""
    ms = times.to_numpy(dtype="datetime64[ms]", na_value=np.datetime64("NaT")).astype(np.int64)
    return repo_id.to_numpy(np.int64) * 2**TIME_BITS + ms


def asof_positions(
    left: tuple[pd.Series, pd.Series],
    right: tuple[pd.Series, pd.Series],
    forward: bool,
    strict: bool,
) -> np.ndarray:
    """For each (repo, time) on the left, the position of the next (forward) or previous
    right row of the same repo in time order, or -1. `strict` excludes equal times.

    One searchsorted over repo+time keys: merge_asof's `by` without its cost per group.
    """
    keys = time_key(*right)
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    wanted = time_key(*left)
    if forward:
        found = np.searchsorted(ordered, wanted, side="right" if strict else "left")
    else:
        found = np.searchsorted(ordered, wanted, side="left" if strict else "right") - 1
    inside = (found >= 0) & (found < len(ordered)) & left[1].notna().to_numpy()
    at = order[np.clip(found, 0, max(len(order) - 1, 0))] if len(order) else found
    same_repo = right[0].to_numpy(np.int64)[at] == left[0].to_numpy(np.int64) if len(order) else inside
    return np.where(inside & same_repo, at, MISSING)


def take(frame: pd.DataFrame, positions: np.ndarray, index: pd.Index) -> pd.DataFrame:
    """frame's rows at `positions` (-1: a row of missing values), indexed by `index`."""
    if frame.empty:  # keep the column dtypes (datetimes stay datetimes, as NaT)
        return frame.reset_index(drop=True).reindex(range(len(index))).set_axis(index)
    rows = frame.iloc[np.where(positions < 0, 0, positions)].set_axis(index)
    return rows.where(pd.Series(positions >= 0, index=index), axis=0)
