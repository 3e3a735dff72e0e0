"""The label codecs under every dataset's decode/encode (lossd.data._labels), by hand.

Each expected array below is written out literally; the colours are chosen so that a swapped
channel, a shifted byte or an off-by-one in a table gives a different answer.
"""

import re

import numpy as np
import pytest

from lossd.data._labels import (
    check_unknown_policy,
    count_unknown_colours,
    decode_colours,
    decode_values,
    encode_colours,
    unknown_label_message,
)
from lossd.errors import DataFormatError, InvalidOptionError

# Colours that differ in one channel only, and one that is R/B symmetric to another.
COLOURS = {(255, 0, 0): 0, (0, 0, 255): 1, (0, 255, 0): 2, (1, 2, 3): 3, (0, 0, 0): 255}
PALETTE = ((255, 0, 0), (0, 0, 255), (0, 255, 0), (1, 2, 3))


def rgb(rows):
    return np.array(rows, dtype=np.uint8)


def test_decode_colours_by_hand():
    label = rgb([[(255, 0, 0), (0, 0, 255), (0, 255, 0)], [(1, 2, 3), (0, 0, 0), (255, 0, 0)]])
    decoded = decode_colours(label, COLOURS)
    assert decoded.dtype == np.uint8
    assert decoded.tolist() == [[0, 1, 2], [3, 255, 0]]


def test_a_colour_with_its_channels_reversed_is_unknown():
    # (3, 2, 1) is (1, 2, 3) read in BGR order: not in the table
    label = rgb([[(1, 2, 3), (3, 2, 1)]])
    assert count_unknown_colours(label, COLOURS) == {(3, 2, 1): 1}
    assert decode_colours(label, COLOURS, unknown="ignore").tolist() == [[3, 255]]


def test_unknown_colours_are_counted_per_colour():
    label = rgb([[(9, 9, 9), (255, 0, 0), (9, 9, 9)], [(0, 1, 0), (9, 9, 9), (0, 0, 255)]])
    assert count_unknown_colours(label, COLOURS) == {(9, 9, 9): 3, (0, 1, 0): 1}
    assert count_unknown_colours(rgb([[(0, 255, 0)]]), COLOURS) == {}


def test_unknown_colours_raise_with_each_colour_and_its_pixel_count():
    label = rgb([[(9, 9, 9), (255, 0, 0), (9, 9, 9)], [(0, 1, 0), (9, 9, 9), (0, 0, 255)]])
    with pytest.raises(DataFormatError) as info:
        decode_colours(label, COLOURS, source="tile_7.tif")
    message = str(info.value)
    assert message.startswith(
        "label 'tile_7.tif' has colours that are not in the dataset's table: "
        "(9, 9, 9) (3 px), (0, 1, 0) (1 px); expected only [(0, 0, 0), (0, 0, 255), "
    )
    assert "unknown_colour='ignore'" in message


def test_unknown_colours_are_ignored_on_request():
    label = rgb([[(9, 9, 9), (255, 0, 0)], [(0, 0, 255), (0, 0, 0)]])
    assert decode_colours(label, COLOURS, unknown="ignore").tolist() == [[255, 0], [1, 255]]


def test_the_policy_is_checked():
    assert check_unknown_policy("error") == "error"
    assert check_unknown_policy("ignore") == "ignore"
    with pytest.raises(
        InvalidOptionError, match=r"unknown_colour='skip' is not valid; expected one of "
    ):
        check_unknown_policy("skip")
    with pytest.raises(InvalidOptionError, match="'skip'"):
        decode_colours(rgb([[(9, 9, 9)]]), COLOURS, unknown="skip")  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionError, match="'skip'"):
        decode_values(np.array([[9]], np.uint8), {0: 0}, unknown="skip")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "label",
    [
        np.zeros((2, 2), np.uint8),  # no channel axis
        np.zeros((2, 2, 4), np.uint8),  # four channels
        np.zeros((2, 2, 3), np.uint16),  # not uint8
    ],
)
def test_a_colour_label_must_be_hxwx3_uint8(label):
    with pytest.raises(DataFormatError, match=r"label 'a\.png' has shape .* expected an H×W×3"):
        decode_colours(label, COLOURS, source="a.png")
    with pytest.raises(DataFormatError, match=r"label 'a\.png' has shape"):
        count_unknown_colours(label, COLOURS, source="a.png")


def test_the_message_ranks_colours_by_count_and_lists_eight():
    unknown = {(k, 0, 0): k for k in range(1, 11)}  # colour (k, 0, 0) on k pixels
    message = unknown_label_message("x.png", unknown, [(0, 0, 0)])
    listed = ", ".join(f"({k}, 0, 0) ({k} px)" for k in range(10, 2, -1))
    assert f"table: {listed} and 2 more; expected only [(0, 0, 0)]" in message
    exactly_eight = unknown_label_message("x.png", dict(list(unknown.items())[:8]), [])
    assert "more" not in exactly_eight and "(1, 0, 0) (1 px); expected only []" in exactly_eight
    assert "has values that are not" in unknown_label_message("x", {3: 1}, [0], "values")


def test_decode_values_by_hand():
    values = {0: 255, 1: 0, 2: 1, 7: 6}
    raw = np.array([[0, 1, 2], [7, 1, 0]], np.uint8)
    decoded = decode_values(raw, values)
    assert decoded.dtype == np.uint8 and decoded.tolist() == [[255, 0, 1], [6, 0, 255]]
    # an H×W×1 label is read as H×W
    assert decode_values(raw[..., None], values).tolist() == decoded.tolist()


def test_unknown_values_raise_or_are_ignored():
    values = {1: 0, 2: 1}
    raw = np.array([[1, 9, 9], [2, 8, 1]], np.uint8)
    with pytest.raises(DataFormatError) as info:
        decode_values(raw, values, source="m.png")
    assert str(info.value).startswith(
        "label 'm.png' has values that are not in the dataset's table: 9 (2 px), 8 (1 px); "
        "expected only [1, 2]"
    )
    assert decode_values(raw, values, unknown="ignore").tolist() == [[0, 255, 255], [1, 255, 0]]


@pytest.mark.parametrize(
    "raw",
    [np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2), np.int32), np.zeros((2, 2, 2), np.uint8)],
)
def test_a_value_label_must_be_single_channel_uint8(raw):
    with pytest.raises(DataFormatError, match=r"label 'm\.png' has shape .* single-channel uint8"):
        decode_values(raw, {0: 0}, source="m.png")


@pytest.mark.parametrize("index", [0, 253, 255])
def test_a_table_may_map_to_any_class_index_or_ignore(index):
    assert decode_values(np.array([[4]], np.uint8), {4: index}).tolist() == [[index]]
    assert decode_colours(rgb([[(4, 5, 6)]]), {(4, 5, 6): index}).tolist() == [[index]]


@pytest.mark.parametrize("index", [-1, 254, 256])
def test_a_table_cannot_map_to_the_unknown_sentinel_or_outside_a_byte(index):
    with pytest.raises(ValueError, match=rf"label table maps 4 to {index}; expected 0\.\.253"):
        decode_values(np.array([[4]], np.uint8), {4: index})


def test_encode_colours_by_hand():
    indices = np.array([[0, 1, 2], [3, 255, 0]])
    encoded = encode_colours(indices, PALETTE)
    assert encoded.dtype == np.uint8 and encoded.shape == (2, 3, 3)
    assert encoded.tolist() == [
        [[255, 0, 0], [0, 0, 255], [0, 255, 0]],
        [[1, 2, 3], [0, 0, 0], [255, 0, 0]],
    ]
    white = encode_colours(indices, PALETTE, ignore_colour=(255, 255, 255))
    assert white[1, 1].tolist() == [255, 255, 255] and white[0, 0].tolist() == [255, 0, 0]


def test_encode_then_decode_is_the_identity():
    rng = np.random.default_rng(0)
    indices = rng.choice([0, 1, 2, 3, 255], size=(5, 7)).astype(np.uint8)
    assert np.array_equal(decode_colours(encode_colours(indices, PALETTE), COLOURS), indices)


@pytest.mark.parametrize(
    ("values", "bad"),
    [
        ([[4]], "[4]"),
        ([[254, 0]], "[254]"),
        ([[-1, 256, 3]], "[-1, 256]"),
        ([[-1, 0]], "[-1]"),  # below the byte only
        ([[256, 1]], "[256]"),  # above it only
        ([[255, 7, 0]], "[7]"),  # 255 is the ignore value, never listed
        ([[0, 9, 9]], "[9]"),
    ],
)
def test_encode_refuses_values_that_are_neither_classes_nor_ignore(values, bad):
    with pytest.raises(
        DataFormatError,
        match=re.escape(
            f"indices hold {bad}, which are neither class indices 0..3 nor 255 (ignore)"
        ),
    ):
        encode_colours(np.array(values), PALETTE)


def test_encode_takes_hxw_only_and_an_empty_map():
    with pytest.raises(DataFormatError, match=r"indices have shape \(2, 2, 1\); expected H×W"):
        encode_colours(np.zeros((2, 2, 1), np.uint8), PALETTE)
    assert encode_colours(np.zeros((0, 4), np.uint8), PALETTE).shape == (0, 4, 3)
