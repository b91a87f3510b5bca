"""sierlib: speaker-invariant speech emotion recognition with adversarial learning.

A thin library behind the notebooks. Its modules stand in layers, each importing only from the
layers below it (``tests/test_layers.py`` keeps it so; the README's "Architecture" draws it):

1. ground: ``paths`` (folders, atomic writes), ``paper`` (the paper's numbers), ``registry``
   (corpora, encoders, feature parameters as plain data)
2. configuration: ``config`` (``RunConfig``, ``RunOptions``)
3. data: ``audio``, ``download``, ``folds``, ``manifest``, ``corpora``, ``synthetic``,
   ``features``, ``feature_stats``, ``dataset``
4. network: ``layers``, ``encoders``, ``model``, ``batching``, ``train``
5. one run: ``records``, ``predict`` (saved networks: predict, embed), ``speakerinfo`` (speaker
   information of an embedding), ``experiments``
6. analysis: ``stats``, ``classical``, ``results``, ``recipe``, ``recipe_tables``, ``adversary``,
   ``crosscorpus``, ``report``, ``plots``
7. launching: ``sweep``, ``workers``, ``cluster``, ``headline``, ``benchmarks``
8. the command line: ``cli`` (``sier``)
"""
__version__ = "0.1.0"
