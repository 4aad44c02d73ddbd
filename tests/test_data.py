"""The raw UCI file: layout, missing values, deterministic splits."""

from __future__ import annotations

import numpy as np
import pytest

from carnn_pyfunc import data

SHA256 = "48b830e11feee5572525f8f1691ddb9d38d3d7b7063edcd8fca672c2a5e17d8d"


def test_shipped_file_is_the_uci_file_byte_for_byte():
    assert data.file_sha256(data.DEFAULT_DATA_PATH) == SHA256


def test_loader_reads_every_row_and_field(auto_mpg):
    assert auto_mpg.shape == (398, 9)
    assert list(auto_mpg.columns) == list(data.COLUMNS)
    first = auto_mpg.iloc[0]
    assert first["mpg"] == 18.0
    assert first["weight"] == 3504.0
    assert first["name"] == "chevrolet chevelle malibu"
    assert set(auto_mpg["origin"]) == {1.0, 2.0, 3.0}
    assert auto_mpg["year"].between(70, 82).all()


def test_question_mark_horsepower_is_missing_not_zero(auto_mpg):
    missing = auto_mpg["horsepower"].isna()
    assert missing.sum() == 6
    assert (auto_mpg["horsepower"].dropna() > 0).all()


def test_split_is_deterministic_for_a_seed(auto_mpg):
    a_train, a_test = data.split(auto_mpg, test_size=0.2, seed=3)
    b_train, b_test = data.split(auto_mpg, test_size=0.2, seed=3)
    assert a_train.equals(b_train)
    assert a_test.equals(b_test)
    assert len(a_test) == 80
    assert len(a_train) + len(a_test) == len(auto_mpg)


def test_other_seed_gives_other_split(auto_mpg):
    _, a_test = data.split(auto_mpg, test_size=0.2, seed=3)
    _, b_test = data.split(auto_mpg, test_size=0.2, seed=4)
    assert not np.array_equal(a_test["name"].to_numpy(), b_test["name"].to_numpy())


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('18.0 8 307.0 130.0 3504. 12.0 70\t"no origin"\n', "expected 8 numeric fields"),
        ("18.0 8 307.0 130.0 3504. 12.0 70 1 no tab\n", "expected 8 numeric fields"),
        ('18.0 8 big 130.0 3504. 12.0 70 1\t"x"\n', "could not convert"),
    ],
)
def test_malformed_line_is_reported_with_its_number(tmp_path, line, expected):
    path = tmp_path / "bad.data"
    path.write_text('18.0 8 307.0 130.0 3504. 12.0 70 1\t"ok car"\n' + line)
    with pytest.raises(data.DataFormatError, match=rf"bad.data:2: .*{expected}"):
        data.load_auto_mpg(path)
