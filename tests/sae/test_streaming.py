"""SAEs on out-of-core data: every source trains and encodes as the in-memory array holding the same rows."""

import numpy as np
import pytest
import scipy.sparse

from skdict import BatchTopKSAE, GatedSAE, JumpReLUSAE, MPSAE, ReLUSAE, TopKSAE
from skdict.metrics import explained_variance, l0
from skdict.sources import ChunkStream, as_source

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

CLASSES = [TopKSAE, BatchTopKSAE, ReLUSAE, JumpReLUSAE, GatedSAE, MPSAE]


def make(cls, **extra):
    return cls(**{"n_components": 48, "max_iter": 3, "batch_size": 64, "random_state": 0, **extra})


def assert_same_parameters(a, b):
    for name in a._params():
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


@pytest.mark.parametrize("cls", CLASSES)
def test_a_npy_file_trains_and_encodes_as_the_array_it_holds(cls, X, npy):
    in_memory = make(cls).fit(X)
    streamed = make(cls).fit(npy)
    assert_same_parameters(in_memory, streamed)
    for key in ("loss", "l0", "dead_fraction"):
        assert streamed.history_[key] == in_memory.history_[key], key
    # the denominator is merged over minibatches when streaming (one pass): equal to rounding
    np.testing.assert_allclose(streamed.history_["explained_variance"], in_memory.history_["explained_variance"], rtol=1e-12)
    codes = streamed.transform(npy)
    assert isinstance(codes, scipy.sparse.csr_array)
    np.testing.assert_array_equal(codes.toarray(), in_memory.transform(X))
    np.testing.assert_array_equal(streamed.predict(npy), in_memory.predict(X))
    np.testing.assert_allclose(streamed.score(npy), in_memory.score(X), rtol=1e-6)


def test_every_kind_of_source_gives_the_same_model(tmp_path, X):
    h5py = pytest.importorskip("h5py")
    zarr = pytest.importorskip("zarr")
    da = pytest.importorskip("dask.array")
    reference = make(TopKSAE).fit(X)
    (tmp_path / "shards").mkdir()
    for i, (a, b) in enumerate([(0, 400), (400, 900)]):
        np.save(tmp_path / "shards" / f"shard{i}.npy", X[a:b])
    with h5py.File(tmp_path / "acts.h5", "w") as f:
        f.create_dataset("acts", data=X, chunks=(128, 12))
    z = zarr.open(str(tmp_path / "acts.zarr"), mode="w", shape=X.shape, chunks=(100, 12), dtype="f4")
    z[:] = X
    np.save(tmp_path / "m.npy", X)
    with h5py.File(tmp_path / "acts.h5", "r") as f:
        sources = {
            "folder of shards": str(tmp_path / "shards"),
            "glob": str(tmp_path / "shards" / "shard*.npy"),
            "memmap": np.load(tmp_path / "m.npy", mmap_mode="r"),
            "hdf5": f["acts"],
            "zarr": z,
            "dask": da.from_array(X, chunks=(300, 12)),
            "list of chunks": [X[:500], X[500:]],
        }
        for name, source in sources.items():
            model = make(TopKSAE).fit(source)
            assert_same_parameters(reference, model)
            assert model.n_features_in_ == 12, name


def test_a_transcoder_streams_inputs_and_targets_together(tmp_path, X):
    Y = np.tanh(X[:, :5]).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", Y)
    reference = make(TopKSAE).fit(X, Y)
    streamed = make(TopKSAE).fit(str(tmp_path / "x.npy"), str(tmp_path / "y.npy"))
    assert streamed.is_transcoder_ and streamed.n_targets_ == 5
    assert_same_parameters(reference, streamed)
    np.testing.assert_allclose(
        streamed.score(str(tmp_path / "x.npy"), str(tmp_path / "y.npy")), reference.score(X, Y), rtol=1e-6
    )
    with pytest.raises(ValueError, match="one target row per input row"):
        make(TopKSAE).fit(str(tmp_path / "x.npy"), Y[:100])


def test_a_memmap_stays_an_array_for_inference(npy, X):
    model = make(TopKSAE).fit(X)
    codes = model.transform(np.load(npy, mmap_mode="r"))
    assert isinstance(codes, np.ndarray)
    np.testing.assert_array_equal(codes, model.transform(X))


@pytest.mark.usefixtures("small_buffer")
def test_block_shuffled_epochs_see_every_row_once_and_report_the_true_statistics(npy, X):
    # a learning rate too small to move the parameters within the epoch: history must equal the metrics
    model = TopKSAE(n_components=48, k=4, learning_rate=1e-12, max_iter=1, batch_size=64, dead_after=10**9,
                    random_state=0).fit(npy)
    assert model._training_data(npy, None, reset=False).within_buffer is False  # really streamed
    np.testing.assert_allclose(model.history_["explained_variance"][0], explained_variance(X, model.predict(X)), rtol=1e-5)
    np.testing.assert_allclose(model.history_["l0"][0], l0(model.transform(X)), rtol=1e-6)


@pytest.mark.usefixtures("small_buffer")
def test_streamed_training_learns_as_well_as_in_memory(npy, X):
    in_memory = TopKSAE(n_components=48, k=4, max_iter=20, batch_size=64, learning_rate=3e-3, random_state=0).fit(X)
    streamed = TopKSAE(n_components=48, k=4, max_iter=20, batch_size=64, learning_rate=3e-3, random_state=0).fit(npy)
    assert streamed.score(X) > in_memory.score(X) - 0.03
    assert streamed.score(X) > 0.5


def test_a_generator_trains_one_epoch_and_refuses_more_before_touching_the_model(X):
    chunks = lambda: (X[i : i + 100] for i in range(0, 900, 100))  # noqa: E731
    model = make(TopKSAE, max_iter=1).fit(chunks())
    assert model.history_["l0"] and np.isfinite(model.score(X))
    # the same chunks as a re-iterable stream: the peeked first chunks of the generator are trained on, in order
    reference = make(TopKSAE, max_iter=1).fit(ChunkStream([X[i : i + 100] for i in range(0, 900, 100)]))
    assert_same_parameters(reference, model)
    fresh = make(TopKSAE, max_iter=2)
    with pytest.raises(ValueError, match="one-pass iterator .* max_iter=2"):
        fresh.fit(chunks())
    assert not hasattr(fresh, "components_")
    assert make(TopKSAE).partial_fit(chunks()).history_["loss"]


def test_a_nan_row_in_a_shard_is_named_and_the_trained_model_is_kept(tmp_path, X):
    for i, (a, b) in enumerate([(0, 400), (400, 900)]):
        np.save(tmp_path / f"shard{i}.npy", X[a:b])
    model = make(TopKSAE).fit(str(tmp_path))
    before = {name: value.copy() for name, value in model._params().items()}
    bad = X[400:].copy()
    bad[123, 4] = np.nan
    np.save(tmp_path / "shard1.npy", bad)
    with pytest.raises(ValueError, match=r"shard1\.npy: row 123 \(row 123 of chunk 0\) contains NaN"):
        model.partial_fit(str(tmp_path))
    for name, value in model._params().items():
        assert np.isfinite(value).all(), name
    assert model.score(X) > -1 and before  # the model is usable: parameters of its last good step


def test_a_file_of_the_wrong_width_names_both_widths(tmp_path, X, npy):
    model = make(TopKSAE).fit(npy)
    np.save(tmp_path / "narrow.npy", X[:, :7])
    for method in (model.transform, model.predict, model.score, model.partial_fit):
        with pytest.raises(ValueError, match=r"narrow\.npy has 7 features, but TopKSAE is expecting 12"):
            method(str(tmp_path / "narrow.npy"))


def test_a_configured_source_can_be_passed_directly(npy, X):
    model = make(TopKSAE).fit(as_source(npy))
    assert_same_parameters(make(TopKSAE).fit(X), model)


@pytest.mark.gpu
def test_a_npy_file_streams_to_the_gpu_as_the_array_it_holds(npy, X):
    import cupy

    on_gpu = make(TopKSAE, device="cuda").fit(X)
    streamed = make(TopKSAE, device="cuda").fit(npy)
    assert isinstance(streamed.components_, cupy.ndarray)
    for name in on_gpu._params():
        cupy.testing.assert_array_equal(getattr(on_gpu, name), getattr(streamed, name))
    codes = streamed.transform(npy)
    np.testing.assert_array_equal(codes.get().toarray(), cupy.asnumpy(on_gpu.transform(cupy.asarray(X))))


@pytest.mark.gpu
@pytest.mark.usefixtures("small_buffer")
def test_block_shuffled_batches_reach_the_gpu_whole(npy, X):
    model = TopKSAE(n_components=48, k=4, learning_rate=1e-12, max_iter=1, batch_size=64, dead_after=10**9,
                    device="cuda", random_state=0).fit(npy)
    np.testing.assert_allclose(model.history_["explained_variance"][0], explained_variance(X, model.predict(X)), rtol=1e-5)


def test_an_anchored_sae_trains_on_a_file_as_on_the_array(npy, X):
    from skdict import AnchoredSAE

    anchors = np.random.default_rng(3).normal(size=(4, 12))
    reference = AnchoredSAE(make(TopKSAE), anchors).fit(X)
    streamed = AnchoredSAE(make(TopKSAE), anchors).fit(npy)
    assert streamed.n_features_in_ == 12
    assert_same_parameters(reference.estimator_, streamed.estimator_)
    with pytest.raises(ValueError, match="anchors"):
        AnchoredSAE(make(TopKSAE), anchors[:, :5]).fit(npy)


def test_each_streamed_batch_has_its_target_moments_computed_once_off_the_training_thread(npy, monkeypatch):
    """The explained-variance denominators come from the prefetch thread's one pass per batch."""
    import threading

    import skdict.ops.moments as moments_module
    import skdict.sae._data as data_module

    calls = []
    original = moments_module.batch_moments

    def counted(Y):
        calls.append(threading.current_thread() is threading.main_thread())
        return original(Y)

    monkeypatch.setattr(moments_module, "batch_moments", counted)  # what RunningMoments.update calls
    monkeypatch.setattr(data_module, "batch_moments", counted, raising=False)
    model = make(TopKSAE, max_iter=2).fit(npy)
    # (a transcoder's init and inference statistics use RunningMoments directly; only the batches count here)
    assert len(calls) == model.n_steps_
    assert not any(calls), "batch moments computed on the training thread"
