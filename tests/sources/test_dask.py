"""Dask beyond one machine: arrays persisted on a ``dask.distributed`` cluster, and sweeps through joblib's dask backend.

One two-worker ``LocalCluster`` (worker processes, one thread each) is shared by the module;
its client is the default client, as a user's would be.
"""

import threading

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

import skdict.sae._data as data_module
from skdict import TopKSAE
from skdict.sources import as_source
from skdict.sources._arrays import DaskSource

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
joblib = pytest.importorskip("joblib")

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

N_ROWS, N_FEATURES, CHUNK_ROWS = 900, 12, 100


@pytest.fixture(scope="module")
def client():
    """A LocalCluster of 2 worker processes, closed after the module's tests."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(0)
    return (rng.normal(size=(N_ROWS, N_FEATURES)) @ rng.normal(size=(N_FEATURES, N_FEATURES))).astype(np.float32)


@pytest.fixture(scope="module")
def dask_X(client, X):
    """``X`` in row chunks of 100, held in the workers' memory (``client.persist``)."""
    dX = client.persist(da.from_array(X, chunks=(CHUNK_ROWS, N_FEATURES)))
    distributed.wait(dX)
    assert set(client.who_has(dX).keys()) and all(client.who_has(dX).values())  # every chunk sits on a worker
    return dX


def make(**extra):
    return TopKSAE(**{"n_components": 48, "k": 4, "max_iter": 3, "batch_size": 64, "random_state": 0, **extra})


@pytest.fixture
def reads(monkeypatch):
    """Record ``(start, stop, thread name)`` of every read of a Dask source."""
    seen = []
    original = DaskSource._read

    def recording(self, start, stop):
        seen.append((start, stop, threading.current_thread().name))
        return original(self, start, stop)

    monkeypatch.setattr(DaskSource, "_read", recording)
    return seen


@pytest.fixture
def client_computes(monkeypatch):
    """Names of the threads from which a computation was sent to a ``distributed.Client``."""
    threads = []
    original = distributed.Client.get

    def recording(self, *args, **kwargs):
        threads.append(threading.current_thread().name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(distributed.Client, "get", recording)
    return threads


def tasks_on_cluster(client, run):
    """Run ``run()`` and return the names of the tasks the cluster's workers executed meanwhile."""
    with distributed.get_task_stream(client) as stream:
        result = run()
    return result, [task["key"] for task in stream.data]


def test_persisted_array_trains_encodes_and_scores_as_its_computed_array(client, X, dask_X, reads, client_computes):
    reference = make().fit(dask_X.compute())
    client_computes.clear()
    model = make().fit(dask_X)
    for name in reference._params():
        np.testing.assert_array_equal(getattr(model, name), getattr(reference, name), err_msg=name)
    assert model.history_["loss"] == reference.history_["loss"]
    # the epochs were read on the prefetch thread, and computed there through the default (distributed) client
    assert any(thread == "skdict-prefetch" for *_, thread in reads)
    assert "skdict-prefetch" in client_computes, client_computes
    codes = model.transform(dask_X)
    np.testing.assert_array_equal(codes.toarray(), reference.transform(X))
    np.testing.assert_array_equal(model.predict(dask_X), reference.predict(X))
    np.testing.assert_allclose(model.score(dask_X), reference.score(X), rtol=1e-6)


def test_forced_streaming_reads_whole_chunks_and_trains(client, X, dask_X, reads, monkeypatch):
    """A buffer of 200 rows and blocks of 150 (chunks are 100): block-shuffled epochs, never the whole array."""
    row_bytes = N_FEATURES * 4
    monkeypatch.setattr(data_module, "SHUFFLE_BUFFER_BYTES", 200 * row_bytes)
    monkeypatch.setattr(data_module, "BLOCK_BYTES", 150 * row_bytes)
    model = make(max_iter=5).fit(dask_X)
    in_memory = make(max_iter=5).fit(X)
    epoch_reads = [(start, stop) for start, stop, thread in reads if thread == "skdict-prefetch"]
    assert len(epoch_reads) == 5 * (N_ROWS // CHUNK_ROWS)  # every chunk once per epoch, one chunk per read
    assert all(start % CHUNK_ROWS == 0 and stop - start == CHUNK_ROWS for start, stop in epoch_reads)
    score = model.score(dask_X)
    assert np.isfinite(score) and score > 0.85 * in_memory.score(X), (score, in_memory.score(X))


def test_reads_are_aligned_to_irregular_row_chunks():
    """Shards of different lengths concatenated: every block starts and ends on a chunk edge."""
    values = np.arange(1000 * 3, dtype=np.float64).reshape(1000, 3)
    array = da.concatenate([da.from_array(values[:130], chunks=40), da.from_array(values[130:], chunks=290)])
    source = as_source(array)
    edges = set(np.cumsum((0, *array.chunks[0])).tolist())  # 0, 40, 80, 120, 130, 420, 710, 1000
    for block_rows in (1, 50, 100, 300, 600, 5000):
        bounds = source.block_bounds(block_rows)
        assert bounds[0][0] == 0 and bounds[-1][1] == 1000
        assert all(stop == next_start for (_, stop), (next_start, _) in zip(bounds, bounds[1:]))
        assert {edge for bound in bounds for edge in bound} <= edges, block_rows
        for (start, stop), following in zip(bounds, bounds[1:] + [(1000, 1000)]):
            inner = [edge for edge in edges if start < edge < stop]
            assert stop - start <= block_rows or not inner  # several chunks only while they fit in block_rows
            next_chunk_end = min([edge for edge in edges if edge > stop], default=None)
            assert next_chunk_end is None or next_chunk_end - start > block_rows  # and as many as fit
    rows = np.concatenate([source.read(start, stop) for start, stop in source.block_bounds(100)])
    np.testing.assert_array_equal(rows, values)


def test_unknown_chunk_sizes_are_refused_with_the_fix():
    array = da.from_array(np.ones((10, 2)), chunks=5)
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        as_source(array[array[:, 0] > 0])


def test_grid_search_through_joblib_dask_backend_equals_the_default_backend(client, X):
    """The same search on the cluster (joblib's dask backend) and here (the default backend)."""
    search = GridSearchCV(make(n_components=16, max_iter=2), {"k": [2, 4]}, cv=2)
    reference = search.fit(X)
    reference_scores = reference.cv_results_["mean_test_score"].copy()
    reference_atoms = reference.best_estimator_.components_.copy()

    def on_cluster():
        with joblib.parallel_backend("dask", scatter=[X]):
            return GridSearchCV(make(n_components=16, max_iter=2), {"k": [2, 4]}, cv=2, n_jobs=-1).fit(X)

    on_dask, tasks = tasks_on_cluster(client, on_cluster)
    assert tasks, "the search did not run on the cluster's workers"
    # The workers run other thread settings (Dask sets OMP_NUM_THREADS=1 there, fits run off the main
    # thread): float32 sums round differently (doc/reproducibility.rst), the search's outcome does not.
    np.testing.assert_allclose(on_dask.cv_results_["mean_test_score"], reference_scores, rtol=1e-6)
    assert on_dask.best_params_ == reference.best_params_
    # the best model is refitted here, in this process, by either backend: bit for bit the same
    np.testing.assert_array_equal(on_dask.best_estimator_.components_, reference_atoms)



def _fit_file(path, k):
    return make(k=k).fit(path)


def test_fits_of_a_file_sent_to_the_workers_come_back_fitted(client, X, tmp_path):
    """Models too big for a search: each worker reads the .npy itself, the fitted models return pickled."""
    path = str(tmp_path / "acts.npy")
    np.save(path, X)
    with joblib.parallel_backend("dask"):
        models = joblib.Parallel(n_jobs=-1)(joblib.delayed(_fit_file)(path, k) for k in (2, 4))
    for model, k in zip(models, (2, 4)):
        reference = make(k=k).fit(X)
        assert model.k == k and model.n_features_in_ == N_FEATURES
        np.testing.assert_allclose(model.score(X), reference.score(X), rtol=1e-5)


@pytest.mark.gpu
def test_cupy_blocks_are_read_on_the_gpu(X):
    """A Dask array of CuPy blocks (e.g. one chunk per GPU worker) is read as CuPy and trains as its CuPy array."""
    cupy = pytest.importorskip("cupy")
    X_gpu = cupy.asarray(X)
    dask_gpu = da.from_array(X_gpu, chunks=(CHUNK_ROWS, N_FEATURES), asarray=False)
    source = as_source(dask_gpu)
    assert source.device == "cuda"
    assert isinstance(source.read(0, CHUNK_ROWS), cupy.ndarray)
    with dask.config.set(scheduler="synchronous"):  # this process's GPU, not the cluster's workers
        model = make(device="cuda").fit(dask_gpu)
    reference = make(device="cuda").fit(X_gpu)
    for name in reference._params():
        cupy.testing.assert_array_equal(getattr(model, name), getattr(reference, name), err_msg=name)
