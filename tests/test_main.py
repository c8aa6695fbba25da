"""The main job, ``python -m skdict``: options, tables and files, run in-process with --quick."""

import contextlib
import io
import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skdict import TopKSAE, _report
from skdict.__main__ import main

SAE_FAMILY = ["TopKSAE", "BatchTopKSAE", "ReLUSAE", "JumpReLUSAE", "GatedSAE", "MPSAE"]
#: Methods of each table, and whether the table has the M_IP and MCC columns.
TABLES = {
    "synthetic": (
        SAE_FAMILY + ["MatryoshkaSAE", "DL-FISTA", "SoftplusAdam", "LISTA-oracle", "AnchoredTopK", "AnchoredReLU"], True, False
    ),
    "ood": (["FISTA-oracle", "DL-FISTA", "TopKSAE", "ReLUSAE", "MPSAE"], True, True),
    "digits": (SAE_FAMILY, False, False),
}
ALL_METHODS = list(dict.fromkeys(name for methods, _, _ in TABLES.values() for name in methods))
OPTIONS = ["--quick", "--seed", "--output-dir", "--methods", "--device"]
REPO_ROOT = Path(__file__).resolve().parents[1]


def parse_tables(text):
    """``{dataset: {method: [cells...]}}`` from the printed report.

    A table is: a title line ``name: description``, a rule, the header, a rule,
    one line per method, a rule.
    """
    lines = text.splitlines()
    tables = {}
    i = 0
    while i < len(lines):
        if i + 3 < len(lines) and lines[i + 1].startswith("---") and lines[i + 3].startswith("---"):
            name = lines[i].split(":", 1)[0]
            rows = {}
            j = i + 4
            while j < len(lines) and not lines[j].startswith("---"):
                cells = lines[j].split()
                rows[cells[0]] = [cell.rstrip("*") for cell in cells[1:]]
                j += 1
            tables[name] = rows
            i = j + 1
        else:
            i += 1
    return tables


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One --quick run shared by the tests that read its output."""
    out = tmp_path_factory.mktemp("report")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        status = main(["--quick", "--seed", "0", "--device", "cpu", "--output-dir", str(out)])
    return status, stdout.getvalue(), out


def test_help_exits_zero_and_lists_every_option(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for option in OPTIONS:
        assert option in text
    for name in ALL_METHODS:
        assert name in text
    assert "skdict_report" in text  # the default output directory is stated


def test_module_entry_point_runs():
    """``python -m skdict --help`` works as a command, not only in-process."""
    done = subprocess.run(
        [sys.executable, "-m", "skdict", "--help"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "--quick" in done.stdout


def test_quick_run_prints_one_finite_row_per_method(quick_run):
    status, text, _ = quick_run
    assert status == 0
    tables = parse_tables(text)
    assert list(tables) == list(TABLES)
    for name, rows in tables.items():
        methods, has_mip, has_mcc = TABLES[name]
        assert list(rows) == methods, name
        for method, cells in rows.items():
            ev, l0, dead, recovery, *ground_truth, seconds = cells
            assert len(ground_truth) == has_mip + 2 * has_mcc, (name, cells)
            for value in ground_truth:
                assert 0.0 <= float(value) <= 1.0, (name, method, cells)
            for value in (ev, l0, dead, seconds):
                assert math.isfinite(float(value)), (name, method, cells)
            assert float(ev) <= 1.0
            assert float(l0) > 0
            assert 0.0 <= float(dead) <= 1.0
            assert float(seconds) >= 0
            if name == "digits":
                assert recovery == "n/a"
            else:
                assert 0.0 <= float(recovery) <= 1.0


def test_quick_run_numbers_are_sensible(quick_run):
    _, text, _ = quick_run
    tables = parse_tables(text)
    synthetic, digits = tables["synthetic"], tables["digits"]
    # TopK reconstructs most of the variance even with the quick sizes.
    assert float(synthetic["TopKSAE"][0]) > 0.5
    assert float(digits["TopKSAE"][0]) > 0.5
    # TopK keeps at most k=2 (synthetic) and k=16 (digits) latents per sample.
    assert float(synthetic["TopKSAE"][1]) <= 2.0
    assert float(digits["TopKSAE"][1]) <= 16.0
    # Every method of the family is actually sparse on digits (64 pixels, 128 latents).
    for method in SAE_FAMILY:
        assert float(digits[method][1]) < 64
    # Sparse coding on the true features is the ceiling of the OOD table: MCC ~ 1 in and out.
    ood = tables["ood"]
    assert float(ood["FISTA-oracle"][5]) > 0.99 and float(ood["FISTA-oracle"][6]) > 0.99
    # Anchored rows report recovery of the features that were not anchored.
    assert 0.0 <= float(synthetic["AnchoredTopK"][3]) <= 1.0


def test_quick_run_ends_with_the_triplet_line(quick_run):
    _, text, _ = quick_run
    line = next(line for line in text.splitlines() if line.startswith("TripletFeatureLearner:"))
    assert "PCC" in line


def test_quick_run_writes_report_and_plots(quick_run):
    _, text, out = quick_run
    report = (out / "report.txt").read_text()
    assert parse_tables(report) == parse_tables(text)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "plots skipped" in text
    else:
        pngs = sorted(p.name for p in out.glob("*.png"))
        assert "training_curves.png" in pngs
        assert "digits_TopKSAE_atoms.png" in pngs
        for name in pngs:
            assert f"plot written to {out / name}" in text
            assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_methods_option_selects_case_insensitively(tmp_path, capsys):
    status = main(["--quick", "--methods", "topksae", "--device", "cpu", "--output-dir", str(tmp_path)])
    assert status == 0
    tables = parse_tables(capsys.readouterr().out)
    assert {name: list(rows) for name, rows in tables.items()} == {
        "synthetic": ["TopKSAE"], "ood": ["TopKSAE"], "digits": ["TopKSAE"]
    }


def test_unknown_method_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["--methods", "TopKSAE,NoSuchSAE", "--output-dir", str(tmp_path)])
    assert info.value.code == 2
    assert "NoSuchSAE" in capsys.readouterr().err


def test_without_matplotlib_the_plot_is_skipped(tmp_path, capsys, monkeypatch):
    # A None entry in sys.modules makes ``import matplotlib.figure`` raise ImportError.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    status = main(["--quick", "--methods", "TopKSAE", "--device", "cpu", "--output-dir", str(tmp_path)])
    assert status == 0
    text = capsys.readouterr().out
    assert "plots skipped" in text and 'pip install -e ".[plot]"' in text
    assert not list(tmp_path.glob("*.png"))


def test_a_failed_fit_is_a_row_and_a_nonzero_exit(tmp_path, capsys, monkeypatch):
    def broken(problem, config):
        return TopKSAE(k=problem.X.shape[1] * 100, n_components=4)  # k > n_components: fit raises

    benchmark = _report.Benchmark(
        "digits", _report.load_digits, (("TopKSAE", _report.sae(TopKSAE, k=4)), ("Broken", broken))
    )
    monkeypatch.setattr(_report, "BENCHMARKS", [benchmark])
    status = main(["--quick", "--methods", "TopKSAE,Broken", "--device", "cpu", "--output-dir", str(tmp_path)])
    assert status == 1
    captured = capsys.readouterr()
    rows = parse_tables(captured.out)["digits"]
    assert rows["Broken"][:4] == ["nan", "nan", "nan", "n/a"]
    assert math.isfinite(float(rows["TopKSAE"][0]))
    assert "Broken failed: fit: ValueError" in captured.out
    assert "1 fit(s) failed: Broken" in captured.err


def test_cuda_without_a_usable_gpu_is_a_usage_error(tmp_path, capsys, monkeypatch):
    import skdict._array

    monkeypatch.setattr(skdict._array, "_cuda_status", lambda: (False, "CuPy is not installed."))
    with pytest.raises(SystemExit) as info:
        main(["--quick", "--device", "cuda", "--output-dir", str(tmp_path)])
    assert info.value.code == 2
    assert "pip install skdict[gpu]" in capsys.readouterr().err


def test_softplus_codes_are_counted_above_the_stated_threshold(quick_run):
    """SoftplusAdam's codes are never exactly 0: its L0/dead cells are marked and the footnote states the rule."""
    _, text, _ = quick_run
    row = next(line for line in text.splitlines() if line.startswith("SoftplusAdam "))
    ev, l0, dead = row.split()[1:4]
    assert l0.endswith("*") and dead.endswith("*") and not ev.endswith("*")
    assert f"|z_ij| > {_report.CODE_THRESHOLD:g} * max_j |z_ij| per row" in text
    # The exactly sparse methods are counted as they are: no mark.
    topk = next(line for line in text.splitlines() if line.startswith("TopKSAE "))
    assert "*" not in topk


def test_overcomplete_table_explains_the_expected_dead_fraction(quick_run):
    _, text, _ = quick_run
    problem = _report.load_synthetic(_report.RunConfig(quick=True))
    m, n = problem.fit_params["n_components"], len(problem.features)
    assert m > n
    assert f"1 - {n}/{m} = {1 - n / m:.3f}" in text
    # The OOD table has as many latents as true features: no such note.
    ood = text.split("\nood:", 1)[1].split("\ndigits:", 1)[0]
    assert "Dead fraction:" not in ood


def test_active_codes_threshold_is_relative_to_each_row():
    codes = np.array([[1.0, 1e-4, -2e-3, 0.0], [1e-6, 2e-6, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    active = _report.active_codes(codes, 1e-3)
    # Row 0: max 1, so |z| > 1e-3 keeps 1 and -2e-3; row 1: max 2e-6 keeps both nonzeros; row 2 stays 0.
    expected = np.array([[1.0, 0.0, -2e-3, 0.0], [1e-6, 2e-6, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(active, expected)
    np.testing.assert_array_equal(codes[0, 1], 1e-4)  # the input is not modified


class _DenseCodes:
    """A fitted model whose codes are never exactly zero (like softplus codes): z_ij = exp(-|x_i . d_j|)."""

    def fit(self, X):
        self.components_ = np.eye(4, X.shape[1])
        return self

    def transform(self, X):
        return np.exp(-np.abs(X @ self.components_.T) * 10.0)

    def inverse_transform(self, codes):
        return codes @ self.components_


def test_evaluate_counts_dense_codes_above_the_threshold():
    """The report's L0 and dead fraction of a dense-code method follow the threshold rule exactly."""
    problem = _report.load_digits(_report.RunConfig(quick=True))
    exact = _report.evaluate("dense", _DenseCodes(), problem)
    thresholded = _report.evaluate("dense", _DenseCodes(), problem, code_threshold=0.1)
    assert exact.error is None and thresholded.error is None
    assert exact.l0 == 4.0  # every entry nonzero: L0 = n_components without a threshold
    Z = _DenseCodes().fit(problem.X).transform(problem.X)
    above = Z > 0.1 * Z.max(axis=1, keepdims=True)
    assert thresholded.l0 == pytest.approx(above.sum(axis=1).mean())
    assert thresholded.dead_fraction == pytest.approx(1.0 - above.any(axis=0).mean())
    assert 1.0 <= thresholded.l0 < 4.0
    assert thresholded.explained_variance == exact.explained_variance  # reconstructions use every code


def test_quick_budgets_are_smaller_and_the_full_run_is_unchanged():
    """--quick shrinks every size and budget; the default run keeps the settings its figures were measured at."""
    full, quick = _report.RunConfig(), _report.RunConfig(quick=True)
    sizes = {}
    for load in (_report.load_synthetic, _report.load_ood, _report.load_digits):
        a, b = load(full), load(quick)
        sizes[a.name] = (a.X.shape, a.fit_params["n_components"], a.fit_params["max_iter"])
        assert b.X.size * b.fit_params["max_iter"] < a.X.size * a.fit_params["max_iter"] / 2
    assert sizes == {
        "synthetic": ((6000, 96), 512, 20),
        "ood": ((10_000, 15), 32, 60),
        "digits": ((1797, 64), 256, 30),
    }
    synthetic = _report.load_synthetic(full)
    factories = dict(_report.SYNTHETIC_METHODS)
    assert factories["SoftplusAdam"](synthetic, full).max_iter == 300
    assert factories["SoftplusAdam"](synthetic, full).transform_max_iter == 100
    assert factories["DL-FISTA"](synthetic, full).max_iter == 15
    assert dict(_report.OOD_METHODS)["DL-FISTA"](synthetic, full).max_iter == 30
    for name in ("SoftplusAdam", "DL-FISTA"):
        assert factories[name](synthetic, quick).max_iter < factories[name](synthetic, full).max_iter


def test_help_says_what_quick_is(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "a few seconds per fit" not in text
    assert "--quick" in text and "smoke" in text


class _Unconverged(_DenseCodes):
    """Warns like an estimator whose budget ran out, twice (fit and transform)."""

    def fit(self, X):
        warnings.warn("Unconverged: max_iter=3 steps ended early; raise max_iter", ConvergenceWarning)
        return super().fit(X)

    def transform(self, X):
        warnings.warn("Unconverged: codes not converged; raise transform_max_iter", ConvergenceWarning)
        return super().transform(X)


def test_convergence_warnings_become_a_note_under_the_table(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(_report, "TRAINING", {**_report.TRAINING, "tol": 1.0})  # TopK stops early: converged
    benchmark = _report.Benchmark(
        "digits", _report.load_digits, (("TopKSAE", _report.sae(TopKSAE, k=4)), ("Short", lambda p, c: _Unconverged()))
    )
    monkeypatch.setattr(_report, "BENCHMARKS", [benchmark])
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        status = main(["--quick", "--methods", "TopKSAE,Short", "--device", "cpu", "--output-dir", str(tmp_path)])
    assert status == 0
    assert not [w for w in escaped if "Unconverged" in str(w.message)]  # kept in the report, not on stderr
    text = capsys.readouterr().out
    assert "(ConvergenceWarning) for Short: their figures are at these budgets" in " ".join(text.split())
    assert "TopKSAE" not in text.split("ConvergenceWarning) for", 1)[1].split(":", 1)[0]
    assert math.isfinite(float(parse_tables(text)["digits"]["Short"][0]))
