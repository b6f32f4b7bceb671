import pytest
from hypothesis import given
from hypothesis import strategies as st

from asi_slowdown.model.units import format_size, parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("4K", 4096),
        ("4k", 4096),
        ("4KiB", 4000),  # fio's kb_base=1024: the IEC spelling is base 10
        ("4kib", 4000),
        ("1MiB", 1_000_000),
        ("4kb", 4096),
        ("4KB", 4096),
        ("64M", 64 << 20),
        ("1G", 1 << 30),
        ("2T", 2 << 40),
        ("512", 512),
        (" 1g ", 1 << 30),
        ("1.5K", 1536),
        (4096, 4096),
    ],
)
def test_fio_size_strings(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize(
    "bad", ["", "K", "-4K", "4X", "4KK", "1.3", "nan", "inf", float("nan"), -1, True, "4 K B"]
)
def test_bad_sizes_name_the_field(bad):
    with pytest.raises(ValueError, match="^workload.file_size must be"):
        parse_size(bad, "workload.file_size")


@given(st.integers(0, 1 << 50))
def test_format_parse_round_trip(size):
    assert parse_size(format_size(size)) == size
