"""Each command's folder driver, one shape: inputs, outputs, config, callbacks -> a report.

``pipeline/<stage>.py`` reads its input folder, writes its output folder, and returns a report of
what was written, skipped and failed; it never prints or exits (the CLI in ``cli/<stage>.py``
renders). Output-safety rules shared by all of them live in :mod:`facefill.pipeline.outputs`.
"""
