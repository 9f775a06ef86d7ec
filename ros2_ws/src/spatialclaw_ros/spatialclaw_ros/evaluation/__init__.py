"""``spatialclaw eval``: score an endpoint on spatial benchmarks with their own scoring, through the paper's action
interfaces, and generate a metric benchmark with exact ground truth.

``dataset`` holds the JSONL row format and a row's frames, ``loaders`` reads the public benchmarks' layouts,
``scoring`` scores answers (letters, VSI-Bench MRA), ``interfaces`` and ``tool_calls`` are the four action
interfaces, ``runner`` runs rows (concurrent, resumable), ``report`` writes the markdown and HTML reports,
``generate`` writes the generated benchmark and ``command`` is the CLI subcommand.
"""
