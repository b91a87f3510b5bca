"""Speed benchmarks that print their figures: ``sier benchmark WHAT``, WHAT one of:

features: extracting MFCCs for each whole corpus from a cold cache with the parallel path
    (joblib, all cores) and with a single-process loop, and loading from a warm cache; medians
    of ``--repeats`` runs, and the parallel path's speed-up over the loop measured in the same run.
train: one training epoch on a fold of each corpus (default network) with AL and without AL;
    median seconds per epoch and utterances per second, on the CPU and, if present, on CUDA.
encoders: one training epoch with AL on fold 0 of each corpus for each encoder of the paper's
    Table 2 (2D CNN biGRU, TDNN biLSTM, 1D CNN GRU, each on its own features), on the CPU; the
    encoders take turns epoch by epoch so that a change in machine load hits all of them alike;
    medians of ``--repeats`` epochs of wall time and of this process's CPU time (all threads;
    less sensitive than wall time to other jobs on a shared machine), each also relative to the
    2D CNN biGRU's.
sweep: runs per hour of the papermill sweep runner with 1 and with 2 workers (same short runs).
lengths: whole Emo-DB runs (default network, 1 block, AL, 30 epochs, fold 0) with ``lengths="padded"``
    and ``lengths="masked"``, taking turns, medians of ``--repeats`` runs each: runs per hour of
    both and the ratio (features loaded once, as a sweep worker does), and the ceiling of that ratio:
    the frames a training epoch computes, padded against bucketed batches.
recipe: whole runs on Emo-DB fold 0 at 1 block, the recipe (decided on validation speakers,
    without AL: masked lengths, SWA, speed perturbation, ...) against the paper-literal run (AL,
    padded), taking turns; medians of ``--repeats`` runs each: runs per hour of both and the ratio.
checksums: hashing every recording of each corpus (the feature cache's key) and, given those
    hashes, checking them against the shipped lists (the published-corpus check); medians of
    ``--repeats``.
cluster: runs per hour of the same small sweep (synthetic corpus, 8 runs, tiny network, 1 epoch)
    with the thread pool and on a Dask LocalCluster, 2 workers each, taking turns; medians of
    ``--repeats`` sweeps and the ratio (needs the ``cluster`` extra).
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time

import torch

from .batching import batches, bucket_batches, frames_computed
from .cluster import run_on_dask
from .config import RunConfig, RunOptions
from .corpora import load_metadata
from .dataset import fold_data, load_corpus_features
from .experiments import run
from .download import check_published
from .features import extract_features, file_digests
from .folds import make_folds
from .model import adversarial_weight
from .paths import STUDY_RUNS
from .recipe import recipe_config, study
from .recipe_tables import tabled_recipe
from .registry import PAPER_CORPORA
from .sweep import plan_sweep, run_sweep
from .synthetic import make_synthetic_corpus
from .train import build_model, seed_everything, train_epoch


def _median_time(fn, repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def bench_checksums(corpora=PAPER_CORPORA, repeats: int = 3, data_root=None) -> None:
    """Seconds to hash a corpus's recordings and, given the hashes, to check them against the
    published lists: the check costs dictionary look-ups on top of the hashing the cache needs."""
    for corpus in corpora:
        meta = load_metadata(corpus, data_root)
        hashing, check = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            digests = file_digests(meta)
            hashing.append(time.perf_counter() - t)
            t = time.perf_counter()
            check_published(meta, digests)
            check.append(time.perf_counter() - t)
        print(f"{corpus}: {len(meta)} files; hashing median {statistics.median(hashing):.3f} s, published-corpus "
              f"check given the hashes median {1000 * statistics.median(check):.1f} ms "
              f"({statistics.median(check) / statistics.median(hashing):.0%} of the hashing)")


def bench_features(corpora=PAPER_CORPORA, repeats: int = 3, data_root=None) -> None:


    print(f"feature extraction, {os.cpu_count()} cores, medians of {repeats} runs")
    for corpus in corpora:
        meta = load_metadata(corpus, data_root)
        par, par_all = _median_time(lambda: extract_features(meta, use_cache=False, n_jobs=-1, progress=False), repeats)
        ser, ser_all = _median_time(lambda: extract_features(meta, use_cache=False, n_jobs=1, progress=False), repeats)
        with tempfile.TemporaryDirectory() as cache:
            extract_features(meta, cache=cache, progress=False)
            warm, warm_all = _median_time(lambda: extract_features(meta, cache=cache, progress=False), max(repeats, 5))
        print(f"{corpus:8s} {len(meta):5d} files | cold, parallel {par:7.2f} s | cold, single process {ser:7.2f} s "
              f"| speed-up {ser / par:4.2f}x | warm cache {warm * 1000:7.1f} ms "
              f"(runs: {', '.join(f'{t:.1f}' for t in par_all)} / {', '.join(f'{t:.1f}' for t in ser_all)})")


def _epoch_timer(config, meta, feats, device):
    """A function that trains one epoch of ``config``'s network on its fold with the training
    loop's own :func:`sierlib.train.train_epoch` (lambda fixed mid-schedule), and the fold."""
    data = fold_data(meta, feats, config.fold)
    seed_everything(config.seed)
    model = build_model(config, len(data["emotions"]), len(data["train_speakers"]), feats.X.shape[1]).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    tr = data["train"]
    lam = adversarial_weight(0.5, config.gamma) if config.al else 0.0

    def epoch():
        train_epoch(model, opt, tr, config.batch_size, torch.Generator().manual_seed(0), lambda step: lam, 0, device)
        if device.type == "cuda":
            torch.cuda.synchronize()

    return epoch, model, tr


def bench_train(corpora=PAPER_CORPORA, repeats: int = 3, data_root=None) -> None:
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    base = RunConfig()
    print(f"one training epoch, fold 0, default network (depth {base.n_cnn_layers}, kernel {base.kernel_size}, "
          f"{base.n_filters} filters, GRU {base.gru_hidden}, FC {base.fc_hidden}, batch {base.batch_size}), "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, medians of {repeats} epochs")
    for corpus in corpora:
        meta, feats = load_corpus_features(RunConfig(corpus=corpus), data_root, progress=False)
        for dev in devices:
            label = "cpu" if dev.type == "cpu" else f"cuda ({torch.cuda.get_device_name(dev)})"
            results = {}
            for gamma in (2.5, None):
                epoch, _, tr = _epoch_timer(RunConfig(corpus=corpus, gamma=gamma), meta, feats, dev)
                epoch()  # warm-up (allocations, kernel selection)
                results[gamma], _ = _median_time(epoch, repeats)
            n = len(tr["X"])
            print(f"{corpus:8s} {label:24s} {n:5d} utts | with AL {results[2.5]:6.2f} s/epoch "
                  f"({n / results[2.5]:6.0f} utt/s) | without AL {results[None]:6.2f} s/epoch "
                  f"({n / results[None]:6.0f} utt/s) | AL / no-AL time {results[2.5] / results[None]:4.2f}x")


def bench_encoders(corpora=("emodb",), repeats: int = 3, data_root=None,
                   encoders=("2dcnn_bigru", "tdnn_bilstm", "1dcnn_gru")) -> None:
    print(f"one training epoch with AL, fold 0, CPU, batch {RunConfig().batch_size}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads, encoders in turn, medians of {repeats} epochs")
    cpu = torch.device("cpu")
    for corpus in corpora:
        runs = {}
        for encoder in encoders:
            config = RunConfig(corpus=corpus, gamma=2.5, encoder=encoder)
            meta, feats = load_corpus_features(config, data_root, progress=False)
            epoch, model, tr = _epoch_timer(config, meta, feats, cpu)
            runs[encoder] = (epoch, model, tr, [], [])
        for _ in range(repeats):
            for encoder, (epoch, model, tr, wall, cpu_times) in runs.items():
                t, c = time.perf_counter(), time.process_time()
                epoch()
                wall.append(time.perf_counter() - t)
                cpu_times.append(time.process_time() - c)
        base_wall, base_cpu = (statistics.median(runs[encoders[0]][k]) for k in (3, 4))
        for encoder, (_, model, tr, wall, cpu_times) in runs.items():
            w, c = statistics.median(wall), statistics.median(cpu_times)
            n_params = sum(p.numel() for p in model.parameters())
            print(f"{corpus:8s} {encoder:12s} {tuple(tr['X'].shape[1:])!s:10s} {len(tr['X']):4d} utts "
                  f"{n_params:7d} params | wall {w:7.2f} s/epoch ({w / base_wall:4.2f}x) | CPU {c:7.2f} s/epoch "
                  f"({c / base_cpu:4.2f}x) | wall per epoch: {', '.join(f'{t:.1f}' for t in wall)}; "
                  f"CPU: {', '.join(f'{t:.1f}' for t in cpu_times)}")


def bench_sweep(corpora=("emodb",), repeats: int = 4, data_root=None, epochs: int = 2) -> None:
    """Sweep throughput through papermill with 1 and 2 workers, measured in the same run: the
    same ``repeats`` short runs (``epochs`` epochs each, default network) into a temporary folder,
    so kernel start-up and feature loading count as they do in a real sweep."""
    corpus = corpora[0]
    plan = plan_sweep(corpus, folds=list(range(repeats)), gammas=[2.5], depths=[1], epochs=epochs)
    print(f"sweep throughput: {len(plan)} runs of {epochs} epochs on {corpus}, default network, papermill")
    rates = {}
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            report = run_sweep(plan, workers=workers, out_dir=f"{tmp}/runs", notebook_dir=f"{tmp}/nbs",
                               data_root=data_root, progress=False)
        if report.failed:
            raise RuntimeError(str(report))
        rates[workers] = 3600 * len(plan) / report.wall_time_s
        print(f"  {workers} worker(s), {max(1, (os.cpu_count() or 1) // workers)} thread(s) each: "
              f"{report.wall_time_s:6.1f} s, {rates[workers]:5.1f} runs/hour")
    print(f"  2 workers / 1 worker: {rates[2] / rates[1]:.2f}x")


def bench_lengths(corpora=("emodb",), repeats: int = 3, data_root=None, epochs: int = 30, threads: int = 1) -> None:
    corpus = corpora[0]
    base = RunConfig(corpus=corpus, epochs=epochs)
    meta, feats = load_corpus_features(base, data_root, progress=False)
    print(f"whole runs on {corpus} fold 0 (default network, AL gamma {base.gamma}, {epochs} epochs), {threads} CPU "
          f"thread(s) as a sweep worker on 2 cores, padded and masked taking turns, {repeats} runs each; wall time "
          f"and this process's CPU time (less sensitive to other jobs on a shared machine)")
    times = {"padded": ([], []), "masked": ([], [])}
    for _ in range(repeats):
        for lengths, (wall, cpu) in times.items():
            t, c = time.perf_counter(), time.process_time()
            run(base.replace(lengths=lengths), RunOptions(device="cpu", torch_threads=threads), meta=meta,
                feats=feats, save=False, progress=False)
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    rate = {k: 3600 / statistics.median(w) for k, (w, _) in times.items()}
    for k, (wall, cpu) in times.items():
        print(f"  {k:6s}: median {statistics.median(wall):6.1f} s wall = {rate[k]:5.1f} runs/hour; "
              f"CPU {statistics.median(cpu):6.1f} s (wall: {', '.join(f'{t:.1f}' for t in wall)}; "
              f"CPU: {', '.join(f'{t:.1f}' for t in cpu)})")
    cpu_ratio = statistics.median(times["padded"][1]) / statistics.median(times["masked"][1])
    print(f"  masked / padded runs per hour: {rate['masked'] / rate['padded']:.2f}x by wall time, "
          f"{cpu_ratio:.2f}x by CPU time")
    # the arithmetic ceiling: frames computed per training epoch, padded against bucketed batches
    lengths = fold_data(meta, feats, base.fold, make_folds(meta), masked=True)["train"]["lengths"]
    gen = torch.Generator().manual_seed(base.seed)
    width = int(feats.X.shape[-1])
    padded = frames_computed(batches(len(lengths), base.batch_size, gen), torch.full_like(lengths, width))
    bucketed = frames_computed(bucket_batches(lengths, base.batch_size, gen), lengths)
    print(f"  ceiling: frames computed per training epoch, padded {padded} / bucketed {bucketed} = "
          f"{padded / bucketed:.2f}x ({padded / int(lengths.sum()):.2f}x with no padding at all); the measured "
          f"wall-time ratio is {rate['masked'] / rate['padded'] / (padded / bucketed):.0%} of it")


def bench_recipe(corpora=("emodb",), repeats: int = 3, data_root=None, threads: int = 1) -> None:
    """Runs per hour of the recipe's run against the paper-literal run (1 block, fold 0, taking
    turns), each with its features loaded once as a sweep worker has them."""
    corpus = corpora[0]
    chosen = tabled_recipe(study(STUDY_RUNS))  # the recipe of the tables
    runs = {"paper-literal (AL)": RunConfig(corpus=corpus),
            "recipe (without AL)": recipe_config(chosen, corpus=corpus, gamma=None)}
    loaded = {}
    for name, config in runs.items():
        meta, feats = load_corpus_features(config, data_root, progress=False)
        speed = {f: extract_features(meta, progress=False, **{**config.feature_params, "speed": f})
                 for f in config.speed_factors}
        loaded[name] = (meta, feats, speed)
    print(f"whole runs on {corpus} fold 0, 1 block, {threads} CPU thread(s) as a sweep worker on 2 cores, taking "
          f"turns, {repeats} runs each; the recipe: {chosen}")
    wall = {name: [] for name in runs}
    for _ in range(repeats):
        for name, config in runs.items():
            meta, feats, speed = loaded[name]
            t = time.perf_counter()
            run(config, RunOptions(device="cpu", torch_threads=threads), meta=meta, feats=feats, speed_feats=speed,
                save=False, progress=False)
            wall[name].append(time.perf_counter() - t)
    rate = {name: 3600 / statistics.median(w) for name, w in wall.items()}
    for name, w in wall.items():
        print(f"  {name:20s}: median {statistics.median(w):6.1f} s = {rate[name]:5.1f} runs/hour "
              f"({', '.join(f'{t:.1f}' for t in w)})")
    literal, recipe_name = list(runs)
    print(f"  recipe / paper-literal runs per hour: {rate[recipe_name] / rate[literal]:.2f}x")


def bench_cluster(repeats: int = 3, workers: int = 2) -> None:
    """The papermill sweep with ``workers`` threads (:func:`sierlib.sweep.run_sweep`) and on a
    Dask LocalCluster of ``workers`` processes (:func:`sierlib.cluster.run_on_dask`, cluster
    start and shutdown included), the same 8 short runs each time into a new folder. The runs are
    tiny (synthetic corpus, 1 epoch, 8 filters) so that what the Dask path adds per run and per
    sweep is as visible as it can be; the two take turns, so a change in machine load hits both."""
    tiny = dict(n_filters=8, gru_hidden=8, fc_hidden=8, epochs=1, batch_size=8)
    plan = plan_sweep("synthetic", folds=[0, 1], gammas=[None, 2.5], depths=[1], seeds=[0, 1], **tiny)
    cache = os.environ.get("SIER_CACHE")
    with tempfile.TemporaryDirectory() as tmp:
        root = make_synthetic_corpus(f"{tmp}/data", n_speakers=6, n_per_emotion=3, seed=0).parent
        os.environ["SIER_CACHE"] = f"{tmp}/cache"  # the kernels and the Dask workers inherit it
        try:
            extract_features(load_metadata("synthetic", root), n_jobs=1, progress=False)  # both read a warm cache
            paths = {"thread pool": lambda out, nbs: run_sweep(plan, workers=workers, out_dir=out, notebook_dir=nbs,
                                                                 data_root=root, device="cpu", progress=False),
                     "Dask LocalCluster": lambda out, nbs: run_on_dask(plan, cluster=f"local:{workers}", out_dir=out,
                                                                       notebook_dir=nbs, data_root=root, device="cpu",
                                                                       progress=False)}
            print(f"sweep throughput, thread pool against Dask: {len(plan)} runs on the synthetic corpus (1 epoch, "
                  f"tiny network), {workers} workers, {os.cpu_count()} cores, medians of {repeats} sweeps")
            times = {label: [] for label in paths}
            for i in range(repeats):
                for label, sweep in paths.items():
                    t = time.perf_counter()
                    report = sweep(f"{tmp}/{i}-{label}/runs", f"{tmp}/{i}-{label}/nbs")
                    times[label].append(time.perf_counter() - t)
                    if report.failed or len(report.finished) != len(plan):
                        raise RuntimeError(f"{label}: {report}")
        finally:
            if cache is None:
                os.environ.pop("SIER_CACHE")
            else:
                os.environ["SIER_CACHE"] = cache
    rates = {label: 3600 * len(plan) / statistics.median(ts) for label, ts in times.items()}
    for label, ts in times.items():
        print(f"  {label:18s} {statistics.median(ts):6.1f} s per sweep, {rates[label]:6.1f} runs/hour "
              f"(sweeps: {', '.join(f'{t:.1f}' for t in ts)} s)")
    print(f"  Dask / thread pool runs per hour: {rates['Dask LocalCluster'] / rates['thread pool']:.2f}x")

